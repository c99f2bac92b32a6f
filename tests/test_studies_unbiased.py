"""The ``unbiased`` study: every estimator within 4 standard errors, the control far outside."""

from __future__ import annotations

import csv
import math
from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from weakpg._src.app.studies import unbiased, unbiased_measure
from weakpg._src.app.studies.problems import ESTIMATORS, lqr_problem
from weakpg._src.distributions import Gaussian, WeakDerivative

LABELS = [e.label for e in ESTIMATORS]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("unbiased")
    lines = []
    result = unbiased.run(out, quick=True, seed=0, progress=lines.append)
    with open(out / "unbiased.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return out, result, rows, lines


def _final_max_abs_z(rows, label):
    mine = [r for r in rows if r["estimator"] == label]
    final = max(int(r["n"]) for r in mine)
    return max(abs(float(r["z"])) for r in mine if int(r["n"]) == final)


def test_files_are_written_and_listed(study):
    out, result, _, lines = study
    assert result.name == "unbiased"
    assert result.files == ("unbiased.csv", "unbiased.png")
    assert all((out / name).is_file() for name in result.files)
    assert (out / "unbiased.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert lines and all(line.startswith("unbiased: ") for line in lines)


def test_csv_holds_every_estimator_at_growing_n_with_consistent_finite_z(study):
    _, _, rows, _ = study
    assert {r["estimator"] for r in rows} == set(LABELS) | {unbiased.CONTROL.label}
    for label in LABELS + [unbiased.CONTROL.label]:
        ns = sorted({int(r["n"]) for r in rows if r["estimator"] == label})
        assert len(ns) >= 3 and all(b == 2 * a for a, b in zip(ns, ns[1:]))
    for r in rows:
        estimate, stderr, exact, z = (float(r[k]) for k in ("estimate", "stderr", "exact", "z"))
        assert math.isfinite(z) and stderr > 0
        assert z == pytest.approx((estimate - exact) / stderr, rel=1e-6)
        assert int(r["env_steps"]) > int(r["n"])


def test_unbiased_estimators_stay_within_4_stderr_at_every_n(study):
    _, _, rows, _ = study
    for r in rows:
        if r["estimator"] != unbiased.CONTROL.label:
            assert abs(float(r["z"])) <= unbiased.THRESHOLD, r


def test_the_action_dependent_control_is_detected_at_the_final_n(study):
    _, _, rows, _ = study
    assert _final_max_abs_z(rows, unbiased.CONTROL.label) > unbiased.THRESHOLD


def test_findings_hold_and_the_markdown_names_every_estimator(study):
    _, result, rows, _ = study
    assert [f.verdict for f in result.findings] == ["holds"] * 3
    assert "Theorem 3" in result.findings[0].claim
    worst_jd = max(_final_max_abs_z(rows, label) for label in unbiased.JD_LABELS)
    assert f"max |z| {worst_jd:.2f}" in result.findings[0].measurement
    for label in LABELS + [unbiased.CONTROL.label]:
        assert f"| {label} |" in result.markdown
    assert "|---" in result.markdown


def test_pooled_chunks_equal_the_pooled_samples():
    samples = np.random.default_rng(0).normal(size=(8, 50, 3))
    means = samples.mean(axis=1)
    stderrs = samples.std(axis=1, ddof=1) / np.sqrt(50)
    pooled_mean, pooled_stderr = unbiased_measure.pool_chunks(means, stderrs, 50)
    assert pooled_mean.shape == (4, 3)
    for k, chunks in enumerate((1, 2, 4, 8)):
        flat = samples[:chunks].reshape(-1, 3)
        np.testing.assert_allclose(pooled_mean[k], flat.mean(axis=0))
        np.testing.assert_allclose(pooled_stderr[k], flat.std(axis=0, ddof=1) / np.sqrt(len(flat)))


def test_the_control_replays_only_the_score_function_branch_noise():
    policy = lqr_problem("scalar LQR", 0.9).policy
    control = unbiased.ActionDependentBaseline(policy)
    key = jax.random.key(0)
    branches = control.noise(key, (64, 2))
    np.testing.assert_array_equal(branches[:, 0], branches[:, 1])
    np.testing.assert_array_equal(control.noise(key, (16, 64)), policy.noise(key, (16, 64)))


def test_measure_flags_a_wrong_weak_derivative_constant():
    right = Gaussian.weak_derivative

    def doubled(self, key, param, **options):
        c, positive, negative = right(self, key, param, **options)
        return WeakDerivative(2 * c, positive, negative)

    problem = lqr_problem("scalar LQR", 0.9)
    with mock.patch.object(Gaussian, "weak_derivative", doubled):
        running = unbiased_measure.measure(problem, problem.policy, dict(estimator="jd"), jax.random.key(0),
                                           chunk=1024, num_chunks=2,
                                           compiler_options=unbiased.QUICK_COMPILER_OPTIONS)
    assert np.all(np.isfinite(running.z))
    assert np.max(np.abs(running.z[-1])) > unbiased.THRESHOLD
    np.testing.assert_allclose(running.mean[-1], 2 * unbiased.flatten(problem.exact),
                               atol=float(5 * jnp.max(running.stderr[-1])))
