"""The convergence study (Theorems 4-5): one quick run checked for content, and the rate
fit and verdicts checked on iterates whose behaviour is known."""

from __future__ import annotations

import csv
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from weakpg._src.app.studies import convergence, convergence_measure, problems
from weakpg._src.app.studies.base import VERDICTS


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("convergence")
    lines: list[str] = []
    result = convergence.run(out, quick=True, seed=0, progress=lines.append)
    return out, result, lines


def _table(path) -> list[dict]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return [{k: v if k == "method" else float(v) for k, v in row.items()} for row in rows]


def _riccati_gain(env, gamma: float) -> np.ndarray:
    """K* from scipy's discrete algebraic Riccati solver on (sqrt(gamma) A, sqrt(gamma) B)."""
    a, b, q, r = (np.asarray(x, np.float64) for x in (env.A, env.B, env.Q, env.R))
    p = scipy.linalg.solve_discrete_are(np.sqrt(gamma) * a, np.sqrt(gamma) * b, q, r)
    return -np.linalg.solve(r + gamma * b.T @ p @ b, gamma * b.T @ p @ a)


def test_writes_the_files_it_lists(study):
    out, result, lines = study
    assert result.name == "convergence"
    assert result.files == ("convergence.csv", "convergence_fits.csv", "convergence.png")
    for name in result.files:
        assert (out / name).stat().st_size > 0
    assert (out / "convergence.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "convergence.png").stat().st_size > 20_000
    assert len(lines) == len(convergence_measure.QUICK.methods)


def test_tables_are_finite_and_cover_every_case(study):
    out, _, _ = study
    curves, fits = _table(out / "convergence.csv"), _table(out / "convergence_fits.csv")
    for row in curves + fits:
        assert all(math.isfinite(v) for k, v in row.items() if k != "method"), row
        assert row["escaped_seeds"] == 0
    cases = {(f["method"], f["p"]) for f in fits}
    quick = convergence_measure.QUICK
    assert cases == {(m, p) for m in quick.methods for p in quick.powers}
    for f in fits:
        assert f["seeds"] == convergence_measure.QUICK.num_seeds
        assert f["iterations"] == convergence_measure.QUICK.iterations
        # Every method spends about STEP_BUDGET env steps per iteration.
        assert abs(f["env_steps_per_iteration"] / convergence_measure.STEP_BUDGET - 1) < 0.1


def test_fitted_slopes_are_negative(study):
    out, _, _ = study
    for f in _table(out / "convergence_fits.csv"):
        assert f["slope"] < 0, f
        assert 0 < f["slope_stderr"] < 0.5, f
    jd = [f for f in _table(out / "convergence_fits.csv") if f["method"] == "JD coupled"]
    assert all(convergence.within_bound(f["slope"], f["slope_stderr"]) for f in jd)


def test_gradient_norm_falls_by_a_large_factor(study):
    out, _, _ = study
    for f in _table(out / "convergence_fits.csv"):
        factor = 20 if f["method"] == "JD coupled" else 1.5
        assert f["final_mean_sq_grad"] < f["initial_sq_grad"] / factor, f


def test_iterates_approach_the_riccati_optimum(study):
    out, _, _ = study
    problem = problems.lqr_problem("scalar LQR", convergence_measure.GAMMA)
    optimum = _riccati_gain(problem.env, convergence_measure.GAMMA)
    np.testing.assert_allclose(problem.env.optimal_gain(convergence_measure.GAMMA), optimum, rtol=1e-8)
    grad = problem.env.exact_gradient(jnp.asarray(optimum, jnp.float32), problem.policy.sigma,
                                      convergence_measure.GAMMA)["weights"]
    assert float(jnp.max(jnp.abs(grad))) < 1e-3
    start_error = abs(convergence_measure.START - float(optimum[0, 0]))
    curves = _table(out / "convergence.csv")
    assert all(r["mean_gain_error"] == pytest.approx(start_error, rel=1e-5) for r in curves
               if r["iteration"] == 0)
    for f in _table(out / "convergence_fits.csv"):
        bound = 0.25 if f["method"] == "JD coupled" else 0.9
        assert f["mean_gain_error"] < bound * start_error, f
        assert f["max_gain_error"] >= f["mean_gain_error"]


def test_fraction_within_eps_rises_from_zero(study):
    out, result, _ = study
    curves, fits = _table(out / "convergence.csv"), _table(out / "convergence_fits.csv")
    for f in fits:
        assert f["eps"] == pytest.approx(convergence_measure.EPS_FRACTION * f["initial_sq_grad"])
        rows = [r for r in curves if r["method"] == f["method"] and r["p"] == f["p"]]
        fractions = [r["fraction_within_eps"] for r in rows]
        assert fractions[0] == 0.0 and all(0.0 <= x <= 1.0 for x in fractions)
        assert fractions[-1] == f["fraction_within_eps"]
    best_jd = max(f["fraction_within_eps"] for f in fits if f["method"] == "JD coupled")
    assert best_jd == 1.0
    seeds = convergence_measure.QUICK.num_seeds
    assert f"{seeds}/{seeds}" in result.findings[0].measurement


def test_findings_are_computed_from_the_fits(study):
    out, result, _ = study
    fits = _table(out / "convergence_fits.csv")
    theorem4, theorem5 = result.findings
    assert theorem4.claim.startswith("Theorem 4") and theorem5.claim.startswith("Theorem 5")
    assert {theorem4.verdict, theorem5.verdict} <= set(VERDICTS)
    assert theorem5.verdict == convergence.verdict(
        [convergence.within_bound(f["slope"], f["slope_stderr"]) for f in fits])
    for f in fits:
        assert f"{f['slope']:.2f}" in theorem5.measurement
    assert "| JD coupled |" in result.markdown and "| SF |" in result.markdown
    assert "K*" in result.markdown


def test_log_log_slope_recovers_known_rates():
    k = convergence_measure.log_spaced(1, 1000, 20)
    for rate in (0.25, 0.5, 1.0, 2.0):
        assert convergence_measure.log_log_slope(k, 3.0 * k**-rate) == pytest.approx(-rate, abs=1e-9)
    assert convergence_measure.log_log_slope(k, np.full(k.shape, 0.7)) == pytest.approx(0.0, abs=1e-12)
    assert convergence_measure.log_log_slope(k, k**0.3) == pytest.approx(0.3)
    stalled = 1.0 + 0.3 * np.sin(k)  # fluctuates without decaying: a slope near 0, far above -1/2
    assert convergence_measure.log_log_slope(k, stalled) > -0.1


def test_fitted_slope_and_bootstrap_on_synthetic_seeds():
    rng = np.random.default_rng(0)
    k = np.arange(1001.0)
    ks = convergence_measure.log_spaced(100, 1000, 12)
    noise = rng.lognormal(0.0, 0.3, size=(1001, 32))
    decaying = (k[:, None] + 1) ** -0.8 * noise
    decaying[:, 3] = np.nan  # a seed that escaped is left out
    slope, stderr = convergence_measure.fitted_slope(jax.random.key(0), decaying, ks)
    assert slope == pytest.approx(-0.8, abs=0.05) and 0 < stderr < 0.05
    assert convergence.within_bound(slope, stderr)
    slope, stderr = convergence_measure.fitted_slope(jax.random.key(0), noise, ks)
    assert abs(slope) < 0.05
    assert not convergence.within_bound(slope, stderr)


def test_verdicts():
    assert convergence.verdict([True, True]) == "holds"
    assert convergence.verdict([True, False]) == "mixed"
    assert convergence.verdict([False, False]) == "does not hold"
    assert convergence.within_bound(-0.6, 0.01)
    assert convergence.within_bound(-0.45, 0.05)
    assert not convergence.within_bound(-0.3, 0.05)
    assert not convergence.within_bound(float("nan"), float("nan"))


def _fake_training(monkeypatch, path) -> None:
    """Patch train_runs to return the deterministic gains K_k = path(k) for every run, and
    skip the figure (the quick run draws it)."""

    def train_runs(key, problem, options, *, lr, batch_size, powers, num_seeds, iterations,
                   compiler_options=None):
        del key, options, lr, compiler_options
        gains = path(np.arange(iterations + 1.0))
        gains = np.broadcast_to(gains[:, None, None, None, None],
                                (iterations + 1, len(powers), num_seeds, 1, 1))
        steps = np.full((iterations, len(powers), num_seeds), 5.0 * batch_size)
        return convergence_measure.Runs(gains, steps, np.full(steps.shape, 0.1))

    monkeypatch.setattr(convergence_measure, "train_runs", train_runs)
    monkeypatch.setattr(convergence, "_plot", lambda curves, fits, path: None)


def test_the_analysis_measures_a_known_rate(monkeypatch, tmp_path):
    """K_k - K* = (K_0 - K*) / sqrt(k + 1): ||grad J||^2 ~ 1/k, slope -1, every seed converges."""
    optimum = float(problems.SCALAR_LQR.optimal_gain(convergence_measure.GAMMA)[0, 0])
    _fake_training(monkeypatch, lambda k: optimum + (convergence_measure.START - optimum) / np.sqrt(k + 1))
    result = convergence.run(tmp_path, quick=True, seed=0, progress=lambda line: None)
    for f in _table(tmp_path / "convergence_fits.csv"):
        assert f["slope"] == pytest.approx(-1.0, abs=0.1)
        assert f["fraction_within_eps"] == 1.0
    assert [f.verdict for f in result.findings] == ["holds", "holds"]


def test_iterates_moving_away_fail_both_claims(monkeypatch, tmp_path):
    """A wrong-sign step walks away from K*: the slope is positive, no seed is within eps."""
    _fake_training(monkeypatch, lambda k: convergence_measure.START - 1.5 * k / (k + 10.0))
    result = convergence.run(tmp_path, quick=True, seed=0, progress=lambda line: None)
    for f in _table(tmp_path / "convergence_fits.csv"):
        assert f["slope"] > 0
        assert f["fraction_within_eps"] == 0.0
    assert [f.verdict for f in result.findings] == ["does not hold", "does not hold"]


def test_a_gain_that_leaves_the_stable_set_is_counted(monkeypatch, tmp_path):
    """Gains past the stability boundary are escapes: counted, out of the means, never within eps."""
    _fake_training(monkeypatch, lambda k: convergence_measure.START - 3.0 * k / (k + 10.0))
    result = convergence.run(tmp_path, quick=True, seed=0, progress=lambda line: None)
    seeds = convergence_measure.QUICK.num_seeds
    for f in _table(tmp_path / "convergence_fits.csv"):
        assert f["escaped_seeds"] == seeds and f["fraction_within_eps"] == 0.0
    assert f"seeds that left the stable gains: {seeds * len(convergence_measure.QUICK.powers) * 2}" in \
        result.findings[0].measurement
    assert result.findings[0].verdict == "does not hold"
