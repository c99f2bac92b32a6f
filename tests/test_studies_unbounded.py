"""The `unbounded` study: its quick run's outputs, and the small functions it is built from."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from weakpg._src.app.studies import unbounded, unbounded_measure
from weakpg._src.app.studies.base import StudyResult

GAMMA = unbounded_measure.GAMMA


def read(path: Path) -> list[dict[str, float | str]]:
    """A CSV table with its numbers as floats and its labels as strings."""
    def value(text: str) -> float | str:
        try:
            return float(text)
        except ValueError:
            return text

    with open(path, newline="") as f:
        return [{k: value(v) for k, v in row.items()} for row in csv.DictReader(f)]


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> tuple[StudyResult, object]:
    out = tmp_path_factory.mktemp("unbounded")
    return unbounded.run(out, quick=True, seed=0, progress=lambda line: None), out


def test_growth_exponent_recovers_power_laws():
    x = np.array([1.0, 2.0, 4.0, 8.0, 16.0])
    assert unbounded_measure.growth_exponent(x, 3.0 * x**2.5) == pytest.approx(2.5, abs=1e-9)
    assert unbounded_measure.growth_exponent(x, 0.1 * x**-1.0) == pytest.approx(-1.0, abs=1e-9)
    assert unbounded_measure.growth_exponent(x, np.full(5, 7.0)) == pytest.approx(0.0, abs=1e-9)
    # A floor hides the power law at small x; fitting from min_x recovers it.
    x = 2.0 ** np.arange(11)
    floored = 100.0 + x**3
    assert unbounded_measure.growth_exponent(x, floored) < 2.8
    assert unbounded_measure.growth_exponent(x, floored, min_x=100.0) == pytest.approx(3.0, abs=0.01)


def test_optimal_gain_is_a_stationary_maximum():
    env = unbounded_measure.LEARNING_ENV
    k_star = env.optimal_gain(GAMMA)
    gradient = env.exact_gradient(k_star, 0.5, GAMMA)["weights"]
    value = float(env.exact_value(k_star, 0.5, GAMMA))
    assert abs(float(gradient[0, 0])) < 1e-3 * abs(value)
    for delta in (-0.1, 0.1):
        assert float(env.exact_value(k_star + delta, 0.5, GAMMA)) < value


def test_stabilising_and_outcome():
    env = unbounded_measure.LEARNING_ENV  # A = 1.05, B = 0.5: stabilising for about -4.2 < K < 0.008
    weights = np.array([-0.2, -4.5, 0.1, np.nan]).reshape(4, 1, 1)
    assert unbounded_measure.stabilising(env, weights, GAMMA).tolist() == [True, False, False, False]
    assert unbounded_measure.outcome(np.array([2.0, 0.5, 0.01])) == "converged"
    assert unbounded_measure.outcome(np.array([2.0, 0.5, 0.2])) == "stalled"
    assert unbounded_measure.outcome(np.array([2.0, np.inf, 0.01])) == "diverged"


def test_verdicts_follow_the_exponents():
    budget = unbounded_measure.QUICK
    bounded = {("scalar LQR", "SF"): 3.0, ("scalar LQR", "JD coupled"): 0.1}
    assert [f.verdict for f in unbounded._growth_findings(bounded, budget)] == ["holds", "holds"]
    same = {("scalar LQR", "SF"): 3.0, ("scalar LQR", "JD coupled"): 2.9}
    assert [f.verdict for f in unbounded._growth_findings(same, budget)] == ["does not hold"] * 2


def test_files_are_written(study):
    result, out = study
    assert result.name == "unbounded"
    for name in result.files:
        assert (out / name).stat().st_size > 0
    assert (out / "unbounded.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [f.verdict for f in result.findings][:2] == ["does not hold", "holds"]


def test_sf_grows_faster_than_coupled_jd(study):
    _, out = study
    rows = read(out / "unbounded.csv")
    assert rows and all(math.isfinite(r["rms"]) and r["rms"] > 0 for r in rows)
    sf = [r for r in rows if r["estimator"] == "SF"]
    jd = [r for r in rows if r["estimator"] == "JD coupled"]
    assert np.all(np.diff([r["rms"] for r in sf]) > 0)
    # The LQR's Q is quadratic: about 3 for SF, 2 for coupled JD.
    assert sf[0]["exponent"] > 2.5
    assert sf[0]["exponent"] - jd[0]["exponent"] > 0.5


def test_distribution_samples(study):
    _, out = study
    rows = read(out / "unbounded_samples.csv")
    assert rows and all(math.isfinite(v) for r in rows for k, v in r.items() if k != "estimator")
    by = {(r["estimator"], r["state"]): r for r in rows}
    states = sorted({r["state"] for r in rows})
    for label in unbounded_measure.STATE_ESTIMATORS:
        assert by[(label, states[-1])]["q90_abs"] > by[(label, states[0])]["q90_abs"]
    # Relative spread: grows with |s| for SF, stays put for coupled JD.
    spread = lambda label, s: by[(label, s)]["rms"] / abs(by[(label, s)]["exact"])
    assert spread("SF", states[-1]) > 5 * spread("SF", states[0])
    assert spread("JD coupled", states[-1]) < 2 * spread("JD coupled", states[0])


def test_learning_outcomes_per_seed(study):
    _, out = study
    budget = unbounded_measure.QUICK
    rows = read(out / "unbounded_learning.csv")
    assert len(rows) == len(budget.learners) * len(budget.learning_rates) * budget.seeds
    for learner in budget.learners:
        for rate in budget.learning_rates:
            seeds = sorted(r["seed"] for r in rows if r["method"] == learner.label and r["alpha_0"] == rate)
            assert seeds == list(range(budget.seeds))
    for r in rows:
        assert r["outcome"] in ("converged", "stalled", "diverged")
        assert (r["outcome"] == "diverged") == (r["diverged_at"] >= 0)
        converged = r["diverged_at"] < 0 and r["final_gap"] <= unbounded_measure.GAP_TOL
        assert (r["outcome"] == "converged") == converged
    curves = read(out / "unbounded_curves.csv")
    assert len(curves) == len(budget.learners) * len(budget.learning_rates) * (budget.iterations + 1)


def test_learning_verdict_follows_the_outcomes():
    budget = unbounded_measure.QUICK

    def rows(jd: str, sf: str) -> list[dict]:
        return [{"method": label, "alpha_0": rate, "seed": seed, "outcome": outcome,
                 "final_gap": 0.0 if outcome == "converged" else np.inf}
                for label, outcome in (("PG-JD", jd), ("PG-SF", sf))
                for rate in budget.learning_rates for seed in range(budget.seeds)]

    verdict = lambda jd, sf: unbounded._learning_finding(rows(jd, sf), budget).verdict
    assert verdict("converged", "diverged") == "holds"
    assert verdict("converged", "converged") == "mixed"
    assert verdict("diverged", "converged") == "does not hold"
