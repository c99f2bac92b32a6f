"""Brax environments: trajectories against Brax's own step, absorbing terminals, PG-JD against PG-SF.

Brax programs take tens of seconds to compile on a CPU, so the tests use the cheapest
environment and backend (inverted_pendulum on "spring"), share one environment and one
compiled program per estimator.
"""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import assert_estimates_agree

import weakpg
from weakpg.envs import BRAX_BACKENDS, BRAX_NAMES, make

STEPS = 40
GAMMA = 0.9


@pytest.fixture(scope="module")
def env():
    return make("brax:inverted_pendulum")


def _actions() -> jax.Array:
    """Two action sequences: a gentle one that keeps the pole up, a push that tips it over."""
    t = jnp.arange(STEPS, dtype=jnp.float32)
    return jnp.stack([0.05 * jnp.sin(0.3 * t), jnp.ones(STEPS)])[:, :, None]


@pytest.fixture(scope="module")
def trajectories(env):
    """(weakpg, brax) observations, rewards and done flags along both action sequences."""

    def weakpg_run(actions):
        def step(state, action):
            state, reward = env.step(jax.random.key(0), state, action)
            return state, (state.obs, reward, state.done)

        return jax.lax.scan(step, env.reset(jax.random.key(5)), actions)[1]

    def brax_run(actions):
        def step(state, action):
            state = env._env.step(state, action)
            return state, (state.obs, state.reward, state.done)

        return jax.lax.scan(step, env._env.reset(jax.random.key(5)), actions)[1]

    return jax.jit(jax.vmap(weakpg_run))(_actions()), jax.jit(jax.vmap(brax_run))(_actions())


def test_attributes(env):
    assert env.observation_shape == (4,) and env.action_shape == (1,) and not env.discrete
    assert env.max_episode_steps == 1000 and env.backend == "spring"
    np.testing.assert_array_equal(env.action_low, [-1.0])
    np.testing.assert_array_equal(env.action_high, [1.0])
    assert repr(env) == "BraxEnvironment('inverted_pendulum', backend='spring')"


def test_trajectory_equals_brax_step_before_a_terminal(trajectories):
    (obs, reward, done), (brax_obs, brax_reward, brax_done) = trajectories
    assert not np.any(brax_done[0]), "the gentle sequence must keep the pole up"
    np.testing.assert_allclose(obs[0], brax_obs[0], rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(reward[0], brax_reward[0])
    np.testing.assert_array_equal(reward[0], np.ones(STEPS))
    first = int(np.argmax(brax_done[1]))
    assert brax_done[1, first] == 1 and 0 < first < STEPS - 5, "the push must tip the pole over"
    np.testing.assert_allclose(obs[1, :first + 1], brax_obs[1, :first + 1], rtol=1e-6, atol=1e-7)


def test_terminal_state_is_absorbing_with_reward_zero(trajectories):
    (obs, reward, done), (brax_obs, _, _) = trajectories
    first = int(np.argmax(done[1]))
    np.testing.assert_array_equal(reward[1, :first + 1], 1.0)  # the step into the terminal state counts
    np.testing.assert_array_equal(reward[1, first + 1:], 0.0)
    np.testing.assert_array_equal(done[1, first:], 1.0)
    np.testing.assert_array_equal(obs[1, first:], np.broadcast_to(obs[1, first], obs[1, first:].shape))
    assert not np.allclose(brax_obs[1, -1], obs[1, -1])  # Brax itself keeps moving


@pytest.mark.long
def test_pg_jd_and_pg_sf_agree(env):
    policy = weakpg.LinearGaussian(env, sigma=0.5)
    params = policy.init(jax.random.key(0))
    options = dict(gamma=GAMMA, num_samples=2048, num_lanes=128)
    jd = weakpg.estimate_gradient(jax.random.key(1), env, policy, params, estimator="jd", **options)
    sf = weakpg.estimate_gradient(jax.random.key(2), env, policy, params, estimator="sf",
                                  baseline="rollout", **options)
    assert_estimates_agree(jd, sf)
    with pytest.raises(AssertionError):  # negative control: a gradient off by a factor 2
        assert_estimates_agree(jd._replace(mean=jax.tree.map(lambda g: 2 * g, jd.mean)), sf)


def test_unknown_name_and_backend_list_the_allowed_values():
    with pytest.raises(ValueError, match="brax environment must be one of .*'reacher'.*got 'cartpole'"):
        make("brax:cartpole")
    with pytest.raises(ValueError, match="backend of brax:reacher must be one of .*'spring'.*got 'physx'"):
        make("brax:reacher", backend="physx")
    with pytest.raises(ValueError, match="backend='spring' applies to brax:<name> environments only"):
        make("Pendulum-v1", backend="spring")
    assert "humanoid" in BRAX_NAMES and BRAX_BACKENDS[0] == "spring"


def test_swimmer_that_this_jax_cannot_run_is_a_clear_error():
    with pytest.raises(ValueError, match="brax:swimmer on backend 'generalized' does not run with JAX"):
        make("brax:swimmer", backend="generalized")


def test_missing_brax_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "brax", None)  # import brax now raises ImportError
    with pytest.raises(ValueError) as error:
        make("brax:reacher")
    assert str(error.value) == "brax environments need Brax: pip install 'weakpg[brax]'"
