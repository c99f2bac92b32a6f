"""Algorithm 2: convergence on the LQR, learning on Pendulum, exact resume."""

from __future__ import annotations

import numpy as np
import pytest

import weakpg
from weakpg._src import runs
from weakpg._src.train import TrainConfig, train
from weakpg.envs import LinearQuadratic

A, B, Q, R, GAMMA = 0.9, 0.5, 1.0, 0.1, 0.9
LQR = LinearQuadratic(A=[[A]], B=[[B]], Q=[[Q]], R=[[R]], noise_cov=[[0.1]], init_cov=[[1.0]])


def optimal_gain() -> float:
    """K* of the discounted scalar LQR from the Riccati equation (policy noise does not move it)."""
    p = Q
    for _ in range(10_000):
        p = Q + GAMMA * A * p * A - (GAMMA * A * p * B) ** 2 / (R + GAMMA * B * p * B)
    return -GAMMA * B * p * A / (R + GAMMA * B * p * B)


@pytest.mark.parametrize("estimator", ["jd", "sf"])
def test_sgd_with_diminishing_steps_reaches_the_lqr_optimum(estimator):
    policy = weakpg.LinearGaussian(LQR, sigma=0.5)
    config = TrainConfig(estimator=estimator, baseline="rollout" if estimator == "sf" else None,
                         gamma=GAMMA, batch_size=512, optimizer="sgd", lr=0.05, schedule_power=0.6)
    state, rows = train(LQR, policy, config, iterations=300, eval_every=100)
    k = float(state.params["weights"][0, 0])
    k_star = optimal_gain()
    assert abs(k - k_star) < 0.05, (k, k_star)
    assert abs(0.0 - k_star) > 1.0  # the start (K = 0) was far from the optimum
    exact = LQR.exact_gradient(state.params["weights"], 0.5, GAMMA)["weights"]
    assert abs(float(exact[0, 0])) < 0.2  # nearly stationary by the exact gradient
    assert [r["iteration"] for r in rows] == [0, 100, 200, 300]
    np.testing.assert_allclose([r["step_size"] for r in rows[1:]], [0.05 / k**0.6 for k in (100, 200, 300)],
                               rtol=1e-5)


@pytest.mark.parametrize("estimator, baseline", [("jd", None), ("sf", "rollout")])
def test_short_pendulum_run_improves_the_return(estimator, baseline):
    # The discounted return J is what the ascent maximises. (Plain PG-SF, without a
    # baseline, does not move J measurably in 30 iterations at this batch size.)
    env = weakpg.envs.make("Pendulum-v1")
    policy = weakpg.LinearGaussian(env, sigma=1.0, features="rbf")
    config = TrainConfig(estimator=estimator, baseline=baseline, gamma=0.95, batch_size=256,
                         optimizer="adam", lr=0.05, schedule_power=0.0)
    _, rows = train(env, policy, config, iterations=30, eval_every=30, eval_episodes=32)
    first, last = rows[0], rows[-1]
    # Fixed start states and noise: the same policy gets the same score, so any change is learning.
    assert last["discounted_return"] > first["discounted_return"] + 0.05 * abs(first["discounted_return"])


def test_resume_reproduces_an_uninterrupted_run(tmp_path):
    policy = weakpg.LinearGaussian(LQR, sigma=0.5)
    config = TrainConfig(estimator="jd", gamma=GAMMA, batch_size=128, lr=0.05)
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    whole.mkdir()
    cut.mkdir()
    train(LQR, policy, config, iterations=12, eval_every=3, run_dir=whole)
    train(LQR, policy, config, iterations=6, eval_every=3, run_dir=cut)
    train(LQR, policy, config, iterations=12, eval_every=3, run_dir=cut, resume=True)
    cut_rows = _without_wall_clock(cut / runs.METRICS_FILE)
    assert cut_rows == _without_wall_clock(whole / runs.METRICS_FILE)


def _without_wall_clock(path) -> list[list[str]]:
    """The CSV's cells, every column but wall_seconds (the one that may differ)."""
    lines = [line.split(",") for line in path.read_text().splitlines()]
    keep = [i for i, name in enumerate(lines[0]) if name != "wall_seconds"]
    assert len(lines) > 2 and len(keep) == len(lines[0]) - 1
    return [[cells[i] for i in keep] for cells in lines]


def test_corrupt_checkpoint_is_refused(tmp_path):
    policy = weakpg.LinearGaussian(LQR, sigma=0.5)
    config = TrainConfig(estimator="jd", gamma=GAMMA, batch_size=64)
    train(LQR, policy, config, iterations=2, eval_every=1, run_dir=tmp_path)
    (tmp_path / runs.CHECKPOINT_FILE).write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot be read"):
        train(LQR, policy, config, iterations=4, eval_every=1, run_dir=tmp_path, resume=True)


def test_callback_can_stop_training():
    policy = weakpg.LinearGaussian(LQR, sigma=0.5)
    config = TrainConfig(estimator="jd", gamma=GAMMA, batch_size=64)
    seen = []
    _, rows = train(LQR, policy, config, iterations=50, eval_every=10,
                    callback=lambda m: seen.append(m["iteration"]) or m["iteration"] < 4)
    assert seen == [1, 2, 3, 4]
    assert rows[-1]["iteration"] == 4


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(gamma=1.5), r"gamma must lie in \(0.0, 1.0\), got 1.5"),
        (dict(batch_size=0), "batch_size must be a Python int >= 1, got 0"),
        (dict(optimizer="rmsprop"), "optimizer must be one of 'sgd', 'adam', got 'rmsprop'"),
        (dict(lr=-0.1), r"lr must lie in \(0.0, inf\), got -0.1"),
        (dict(schedule_power=1.5), r"schedule_power must lie in \[0.0, 1.0\], got 1.5"),
    ],
)
def test_bad_config_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kwargs)
