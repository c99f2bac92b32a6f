"""Corollary 6 study: the engine's step counts against the geometric / Pascal prediction."""

import csv
import math

import numpy as np
import pytest
from scipy import stats

from weakpg._src.app.studies import samples

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("samples")
    return out, samples.run(out, quick=True, seed=0, progress=lambda line: None)


def test_quick_run_measures_what_it_predicts(quick):
    out, result = quick
    with open(out / "samples.csv") as f:
        rows = list(csv.DictReader(f))
    assert {(r["estimator"], float(r["gamma"])) for r in rows} == {
        (e, g) for e in samples.QUICK.estimators for g in samples.QUICK.gammas}
    for row in rows:
        values = {k: float(v) for k, v in row.items() if k not in ("estimator", "problem")}
        assert all(math.isfinite(v) for v in values.values())
        assert abs(values["z_mean"]) <= samples.MAX_Z and abs(values["z_total"]) <= samples.MAX_Z
        assert abs(values["z_variance"]) <= samples.MAX_Z
        # The prediction in the table is the closed form, not the measurement.
        b = int(values["branches"])
        assert values["predicted_per_sample"] == pytest.approx((b + values["gamma"]) / (1 - values["gamma"]))
    assert [f.verdict for f in result.findings] == ["holds", "holds"]
    assert (out / "samples.png").read_bytes()[:8] == PNG_SIGNATURE
    assert result.files == ("samples.csv", "samples.png")
    assert "| SF | scalar LQR | 0.99 |" in result.markdown


@pytest.mark.parametrize("branches, coupled", [(1, True), (2, True), (2, False), (4, False)])
def test_steps_per_sample_formula_matches_a_direct_simulation(branches, coupled):
    gamma, n = 0.8, 400_000
    rng = np.random.default_rng(0)
    geometric = lambda size: rng.geometric(1 - gamma, size) - 1  # noqa: E731  (on {0, 1, ...})
    occupancy = geometric(n)
    if coupled:
        branch_steps = branches * (geometric(n) + 1)
    else:
        branch_steps = (geometric((n, branches)) + 1).sum(axis=1)
    steps = occupancy + branch_steps
    mean, variance, kappa4 = samples.steps_per_sample(gamma, branches, coupled=coupled)
    assert abs(steps.mean() - mean) < 4 * math.sqrt(variance / n)
    assert steps.var() == pytest.approx(variance, rel=0.03)
    assert stats.kstat(steps.astype(np.float64), 4) == pytest.approx(kappa4, rel=0.15)


def test_pascal_pmf_is_scipys_negative_binomial():
    grid = np.arange(0, 400)
    np.testing.assert_allclose(samples.pascal_pmf(grid, 64, 0.2), stats.nbinom.pmf(grid, 64, 0.2),
                               rtol=1e-9, atol=1e-300)


def test_compare_detects_one_extra_step_per_sample():
    # Independent horizons, b = 1: an iteration of B samples costs B + NegBin(2B, 1 - gamma).
    gamma, batch, n = 0.9, 32, 400
    steps = batch + stats.nbinom.rvs(2 * batch, 1 - gamma, size=n, random_state=1).astype(float)
    right = samples.compare(steps, gamma=gamma, branches=1, coupled=False, batch_size=batch)
    wrong = samples.compare(steps + batch, gamma=gamma, branches=1, coupled=False, batch_size=batch)
    assert abs(right["z_mean"]) <= samples.MAX_Z and abs(right["z_variance"]) <= samples.MAX_Z
    assert wrong["z_mean"] > samples.MAX_Z and wrong["z_total"] > samples.MAX_Z
