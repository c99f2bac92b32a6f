"""gymnax environments through weakpg: no time limit, absorbing terminals, both estimators."""

from __future__ import annotations

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import assert_estimates_agree

import weakpg
from weakpg.envs import GYMNAX_IDS

KEY = jax.random.key(0)


@pytest.mark.parametrize("env_id", GYMNAX_IDS)
def test_reset_step_observe(env_id):
    env = weakpg.envs.make(env_id)
    state = env.reset(KEY)
    obs = env.observe(state)
    assert obs.shape == env.observation_shape
    action = jnp.zeros(env.action_shape) if not env.discrete else jnp.array(0)
    next_state, reward = jax.jit(env.step)(KEY, state, action)
    assert jax.tree.structure(next_state) == jax.tree.structure(state)
    assert reward.shape == ()


def test_no_time_limit():
    # gymnax would reset Pendulum after 200 steps; phantom roll-outs must not.
    env = weakpg.envs.make("Pendulum-v1")

    def body(state, _):
        next_state, _ = env.step(KEY, state, jnp.array([0.0]))
        return next_state, next_state

    _, states = jax.lax.scan(body, env.reset(KEY), None, length=500)
    thetas = np.asarray(states.theta)
    # A reset would jump back to the start; free swinging changes theta by < 0.41 per step.
    assert np.max(np.abs(np.diff(thetas))) < 8 * 0.05 + 1e-6
    assert int(states.time[-1]) == 500


def test_terminal_states_are_absorbing():
    env = weakpg.envs.make("CartPole-v1")
    state = env.reset(KEY)
    rewards = []
    for _ in range(200):  # always pushing left: the pole falls within a few dozen steps
        state, reward = env.step(KEY, state, jnp.array(0))
        rewards.append(float(reward))
    rewards = np.array(rewards)
    first_zero = int(np.argmax(rewards == 0.0))
    assert bool(state.terminated) and 0 < first_zero < 200
    assert np.all(rewards[:first_zero] == 1.0) and np.all(rewards[first_zero:] == 0.0)
    frozen, reward = env.step(KEY, state, jnp.array(1))
    assert reward == 0.0
    np.testing.assert_array_equal(env.observe(frozen), env.observe(state))


@pytest.mark.parametrize(
    "env_id, make_policy",
    [
        ("Pendulum-v1", lambda env: weakpg.LinearGaussian(env, sigma=1.0, features="rbf", squash="tanh")),
        ("CartPole-v1", lambda env: weakpg.Softmax(env)),
    ],
    ids=["pendulum-rbf-tanh", "cartpole-softmax"],
)
def test_weak_derivative_and_score_function_agree(env_id, make_policy):
    # No closed form here: two unbiased estimators must agree within their combined errors.
    env = weakpg.envs.make(env_id)
    policy = make_policy(env)
    params = jax.tree.map(lambda x: 0.3 * jax.random.normal(jax.random.key(1), x.shape),
                          policy.init(KEY))
    common = dict(gamma=0.9, num_samples=20_000)
    jd = weakpg.estimate_gradient(KEY, env, policy, params, estimator="jd", **common)
    sf = weakpg.estimate_gradient(jax.random.key(1), env, policy, params, estimator="sf",
                                  baseline="rollout", **common)
    assert_estimates_agree(jd, sf)
    assert max(float(jnp.max(jnp.abs(g))) for g in jax.tree.leaves(jd.mean)) > 0


def test_making_an_env_skips_gymnax_and_flax_heavy_imports_and_both_still_import():
    """make() loads gymnax's classic control only, and no flax but flax.struct; a later
    ``import gymnax`` or ``import flax`` is the usual one."""
    code = """
import sys
import weakpg
env = weakpg.envs.make("Pendulum-v1")
heavy = sorted(m for m in ("seaborn", "scipy.stats", "matplotlib", "gymnax", "flax", "flax.linen")
               if m in sys.modules)
import gymnax
gymnax_env, params = gymnax.make("CartPole-v1")
import flax
print(heavy, type(env._env) is gymnax.environments.Pendulum, type(gymnax_env).__name__,
      params.max_steps_in_episode, callable(flax.struct.dataclass), callable(flax.linen.Dense))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[]", "True", "CartPole", "500", "True", "True"]


@pytest.mark.parametrize("env_id", GYMNAX_IDS)
def test_spaces_are_gymnaxs_own(env_id):
    """Shapes, bounds and number of actions, traced into one program, equal gymnax's spaces."""
    env = weakpg.envs.make(env_id)
    observation = env._env.observation_space(env._params)
    assert env.observation_shape == tuple(observation.shape)
    for ours, theirs in ((env.observation_low, observation.low), (env.observation_high, observation.high)):
        np.testing.assert_array_equal(ours, np.broadcast_to(theirs, observation.shape))
        assert isinstance(ours, np.ndarray) and ours.dtype == np.float32
    action = env._env.action_space(env._params)
    if hasattr(action, "n"):
        assert (env.action_shape, env.num_actions) == ((), action.n)
        assert env.action_low is None and env.action_high is None
    else:
        assert (env.action_shape, env.num_actions) == (tuple(action.shape), None)
        np.testing.assert_array_equal(env.action_low, np.broadcast_to(action.low, action.shape))
        np.testing.assert_array_equal(env.action_high, np.broadcast_to(action.high, action.shape))
