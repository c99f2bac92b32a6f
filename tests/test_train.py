"""make_train: Algorithm 2 as one pure program, vmapped over seeds and step sizes."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import GAMMA, NanRewardAfter

import weakpg
from weakpg._src.app.studies import problems
from weakpg._src.compiler_options import CPU_COMPILER_OPTIONS
from weakpg._src.config import TrainConfig
from weakpg._src.driver import train
from weakpg._src.gradients import make_gradient_estimator
from weakpg._src.train import (
    FAULTS,
    Hyper,
    hyper,
    init_state,
    make_train,
    make_train_chunk,
    make_train_step,
)

PENDULUM = weakpg.envs.make("Pendulum-v1")
LINEAR = weakpg.LinearGaussian(PENDULUM, sigma=1.0)
SMALL = TrainConfig(batch_size=32, iterations=12, env_steps=None, eval_every=4, eval_episodes=4,
                    max_grad_norm=100.0)


@pytest.fixture(scope="module")
def pendulum_train():
    return make_train(PENDULUM, LINEAR, SMALL)


@pytest.fixture(scope="module")
def compiled_train(pendulum_train):
    """``pendulum_train`` compiled as the driver compiles (XLA options change the last bits)."""
    return jax.jit(pendulum_train, compiler_options=CPU_COMPILER_OPTIONS)


def _assert_rows_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(np.asarray(a[name]), np.asarray(b[name]), err_msg=name)


# A batched program is compiled apart from the unbatched one, and XLA on the CPU fuses a
# multiply into the add that consumes it (one rounding instead of two) where its fusions
# put both in one kernel, which differs between the two programs: from 4 seeds up a few
# rows differ in their last bits (2.3e-7 relative at most over these 12 iterations).
ROUNDING = 1e-5


def _assert_rows_match(batched: dict, rows: dict) -> None:
    """Counters and masks exactly, floats (the same nans included) to ``ROUNDING``."""
    assert batched.keys() == rows.keys()
    for name in rows:
        a, b = np.asarray(batched[name]), np.asarray(rows[name])
        if np.issubdtype(b.dtype, np.floating):
            np.testing.assert_allclose(a, b, rtol=ROUNDING, err_msg=name)
        else:
            np.testing.assert_array_equal(a, b, err_msg=name)


def test_vmap_over_keys_equals_the_unbatched_runs_key_by_key(pendulum_train, compiled_train):
    keys = jax.vmap(jax.random.key)(jnp.arange(5))  # the seeds of a reproduction
    _, batched = jax.jit(jax.vmap(pendulum_train, (0, None)), compiler_options=CPU_COMPILER_OPTIONS)(
        keys, hyper(SMALL))
    for i in range(5):
        _, rows = compiled_train(keys[i], hyper(SMALL))
        _assert_rows_match(jax.tree.map(lambda x, i=i: x[i], batched), rows)
    assert not np.array_equal(batched["grad_norm"][0], batched["grad_norm"][1])  # the seeds differ


def test_vmap_over_step_sizes_equals_separate_configs(pendulum_train, compiled_train):
    lrs = jnp.array([0.05, 0.2])
    batched_train = jax.jit(jax.vmap(pendulum_train, (None, Hyper(0, None))),
                            compiler_options=CPU_COMPILER_OPTIONS)
    _, batched = batched_train(jax.random.key(0), Hyper(lrs, jnp.float32(0.0)))
    for i, lr in enumerate([0.05, 0.2]):
        _, rows = compiled_train(jax.random.key(0), Hyper(jnp.float32(lr), jnp.float32(0.0)))
        _assert_rows_match(jax.tree.map(lambda x, i=i: x[i], batched), rows)
    np.testing.assert_allclose(batched["step_size"][:, -1], [0.05, 0.2], rtol=1e-6)


def test_a_named_vmap_axis_skips_what_every_run_skips_and_changes_no_number(lqr):
    # The seeds spend the env-step budget early (not at once): later rows are invalid for all.
    policy = weakpg.LinearGaussian(lqr, sigma=0.5)
    config = TrainConfig(gamma=GAMMA, batch_size=16, lr=0.01, iterations=12, env_steps=2000, eval_every=1,
                         eval_episodes=2)
    evaluated = []

    def counted(params):  # records each seed's evaluation that runs
        jax.debug.callback(lambda weights: evaluated.append(weights), params["weights"])
        return {"weights": params["weights"]}

    keys, rows, counts = jax.vmap(jax.random.key)(jnp.arange(3)), {}, {}
    for axis in (None, "seed"):
        evaluated.clear()
        train_fn = jax.vmap(make_train(lqr, policy, config, evaluate=counted, axis_name=axis), (0, None),
                            axis_name=axis)
        _, rows[axis] = jax.jit(train_fn, compiler_options=CPU_COMPILER_OPTIONS)(keys, hyper(config))
        jax.effects_barrier()
        counts[axis] = len(evaluated)
    _assert_rows_equal(rows[None], rows["seed"])
    valid = np.asarray(rows["seed"]["valid"])  # (seed, row)
    kept = int(valid.any(axis=0).sum())  # rows up to the last seed's end of budget
    assert valid[:, :kept].any(axis=0).all() and not valid[:, kept:].any()
    assert not valid[:, kept - 1].all() and kept < valid.shape[1] - 2  # the seeds end apart, early
    assert counts[None] == 3 * valid.shape[1]  # unnamed: every row evaluated for every seed
    assert counts["seed"] == 3 * kept  # named: not the rows no seed keeps


def test_rows_are_those_the_driver_records(compiled_train):
    _, rows = compiled_train(jax.random.key(SMALL.seed), hyper(SMALL))
    assert rows["valid"].all() and list(rows["iteration"]) == [0, 4, 8, 12]
    _, recorded = train(PENDULUM, LINEAR, SMALL)
    for name in ("iteration", "env_steps", "episode_return", "discounted_return", "grad_norm"):
        np.testing.assert_array_equal([r[name] for r in recorded], np.asarray(rows[name]), err_msg=name)


def test_an_env_step_budget_stops_mid_interval_and_later_rows_are_invalid():
    config = TrainConfig(batch_size=32, iterations=40, env_steps=2000, eval_every=10, eval_episodes=2)
    _, rows = jax.jit(make_train(PENDULUM, LINEAR, config))(jax.random.key(0), hyper(config))
    valid = np.asarray(rows["valid"])
    assert list(valid) == [True, True, False, False, False]
    stop = int(rows["iteration"][1])
    assert 0 < stop < 10 and int(rows["env_steps"][1]) >= 2000  # ended on the budget, not the interval
    assert int(rows["iteration"][-1]) == stop  # the state stays put once the budget is spent


def test_the_estimator_settings_reach_the_training_step_and_are_checked_against_the_policy():
    env = problems.LQR_4D
    policy = weakpg.LinearGaussian(env, sigma=0.5)
    config = TrainConfig(coordinates=2, coupling="quantile", gamma=0.9, batch_size=64, iterations=1)
    state = init_state(policy, config)
    _, metrics = jax.jit(make_train_step(env, policy, config))(state)
    estimate = jax.jit(make_gradient_estimator(env, policy, **config.estimator_options()))
    direct = estimate(jax.random.split(state.key)[1], state.params)
    assert int(metrics["env_steps"]) == int(direct.env_steps)
    np.testing.assert_allclose(float(metrics["grad_norm"]), float(optax.tree.norm(direct.mean)), rtol=1e-5)
    with pytest.raises(ValueError, match=r"coordinates must be an int in \[1, d\] = \[1, 4\] .* got 5"):
        make_train(env, policy, dataclasses.replace(config, coordinates=5))  # before anything is traced


def test_make_train_needs_a_static_number_of_iterations():
    with pytest.raises(ValueError, match="make_train needs a static number of iterations"):
        make_train(PENDULUM, LINEAR, TrainConfig(iterations=None, env_steps=1000))


@pytest.mark.parametrize("estimator", ["jd", "sf"])
def test_sgd_with_diminishing_steps_reaches_the_lqr_optimum(lqr, estimator):
    policy = weakpg.LinearGaussian(lqr, sigma=0.5)
    config = TrainConfig(estimator=estimator, baseline="rollout" if estimator == "sf" else None,
                         gamma=GAMMA, batch_size=512, optimizer="sgd", lr=0.05, schedule_power=0.6,
                         iterations=300, env_steps=None, eval_every=100)
    state, rows = train(lqr, policy, config)
    k = float(state.params["weights"][0, 0])
    k_star = float(lqr.optimal_gain(GAMMA)[0, 0])
    assert abs(k - k_star) < 0.05, (k, k_star)
    assert abs(0.0 - k_star) > 1.0  # the start (K = 0) was far from the optimum
    exact = lqr.exact_gradient(state.params["weights"], 0.5, GAMMA)["weights"]
    assert abs(float(exact[0, 0])) < 0.2  # nearly stationary by the exact gradient
    assert [r["iteration"] for r in rows] == [0, 100, 200, 300]
    np.testing.assert_allclose([r["step_size"] for r in rows[1:]], [0.05 / k**0.6 for k in (100, 200, 300)],
                               rtol=1e-5)


@pytest.mark.parametrize("estimator, baseline", [("jd", None), ("sf", "rollout")])
def test_short_pendulum_run_improves_the_return(estimator, baseline):
    # The discounted return J is what the ascent maximises. (Plain PG-SF, without a
    # baseline, does not move J measurably in 30 iterations at this batch size.)
    policy = weakpg.LinearGaussian(PENDULUM, sigma=1.0, features="rbf")
    config = TrainConfig(estimator=estimator, baseline=baseline, gamma=0.95, batch_size=256,
                         optimizer="adam", lr=0.05, schedule_power=0.0, iterations=30, env_steps=None,
                         eval_every=30, eval_episodes=32)
    _, rows = train(PENDULUM, policy, config)
    first, last = rows[0], rows[-1]
    # Fixed start states and noise: the same policy gets the same score, so any change is learning.
    assert last["discounted_return"] > first["discounted_return"] + 0.05 * abs(first["discounted_return"])


def test_a_non_finite_gradient_is_not_taken_and_stops_the_chunk(lqr):
    # Roll-outs of more than 3 steps see a nan reward; the evaluation is kept finite so that
    # the fault is the gradient estimate's.
    env = NanRewardAfter(lqr, after=3)
    policy = weakpg.LinearGaussian(env, sigma=0.5)
    config = TrainConfig(gamma=GAMMA, batch_size=16, iterations=8, env_steps=None, eval_every=2)
    chunk = jax.jit(make_train_chunk(env, policy, config, num_intervals=4,
                                     evaluate=lambda params: {"episode_return": jnp.float32(0.0)}))
    start = init_state(policy, config)
    state, rows = chunk(start, hyper(config))
    assert int(rows["fault"][-1]) == FAULTS.index("the gradient estimate")
    # The first gradient already sees a nan: no iteration is taken, and the state is the start.
    assert int(state.iteration) == 0 and not rows["valid"][1:].any()
    for got, want in zip(jax.tree.leaves(state.params), jax.tree.leaves(start.params)):
        np.testing.assert_array_equal(got, want)
