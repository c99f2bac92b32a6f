"""The evaluation: the paper's J of the stochastic policy, the episode return of the mean action."""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from weakpg._src.envs.base import Environment
from weakpg._src.evaluation import evaluation_horizon, make_evaluator, standard_episode_length
from weakpg.policies import LinearGaussian
from weakpg.testing import assert_unbiased

GAMMA = 0.9


class RewardIsAction(Environment):
    """One constant observation; the reward of a step is the (scalar) action taken."""

    observation_shape, action_shape, max_episode_steps = (1,), (1,), 50

    def reset(self, key):
        return jnp.zeros(())

    def step(self, key, state, action):
        return state, action[0]

    def observe(self, state):
        return jnp.ones(1)


class Estimate(NamedTuple):
    mean: np.ndarray
    stderr: np.ndarray


def _policy(env: Environment, mean_action: float, sigma: float) -> tuple[LinearGaussian, dict]:
    policy = LinearGaussian(env, sigma=sigma)  # mean = weights @ obs
    return policy, {"weights": jnp.array([[mean_action]], jnp.float32)}


def test_the_horizon_covers_the_episode_and_the_discounted_tail():
    assert evaluation_horizon(0.9, episode_length=10) == math.ceil(math.log(1e-4) / math.log(0.9)) == 88
    assert evaluation_horizon(0.5, episode_length=200) == 200
    assert standard_episode_length(RewardIsAction()) == 50


def test_returns_are_the_exact_sums_of_a_known_reward():
    """Mean action m: episode return 50 m; J = m (1 - gamma^H) / (1 - gamma) up to the noise's mean."""
    env = RewardIsAction()
    policy, params = _policy(env, 0.5, sigma=1e-6)
    out = make_evaluator(env, policy, gamma=GAMMA, key=jax.random.key(0), num_episodes=8)(params)
    horizon = evaluation_horizon(GAMMA, episode_length=50)
    np.testing.assert_allclose(out["episode_return"], 25.0, rtol=1e-6)
    np.testing.assert_allclose(out["discounted_return"], 0.5 * (1 - GAMMA**horizon) / (1 - GAMMA), rtol=1e-5)


def test_the_episode_return_uses_the_mean_action_and_the_same_noise_every_call():
    env = RewardIsAction()
    noisy, params = _policy(env, -1.0, sigma=3.0)
    evaluate = jax.jit(make_evaluator(env, noisy, gamma=GAMMA, key=jax.random.key(1), num_episodes=4))
    first, again = evaluate(params), evaluate(params)
    assert first == again  # common random numbers: the same noise and starts every call
    np.testing.assert_allclose(first["episode_return"], -50.0, rtol=1e-6)  # no exploration noise
    assert abs(float(first["discounted_return"]) + 1 / (1 - GAMMA)) > 1e-3  # J sees the noise



class RewardIsTimeThenNan(Environment):
    """The state counts the steps; the reward of step t is t, and nan from step 50 on."""

    observation_shape, action_shape, max_episode_steps = (1,), (1,), 50

    def reset(self, key):
        return jnp.zeros(())

    def step(self, key, state, action):
        return state + 1, jnp.where(state < 50, state, jnp.nan)

    def observe(self, state):
        return jnp.ones(1)


def test_the_episode_return_ends_with_its_episode_when_the_discounted_horizon_is_longer():
    """gamma 0.99 runs 917 steps for J, the episode return sums the first 50 only: 0 + ... + 49.

    The steps after the episode are run (both kinds share one scan) but never counted,
    not even as 0 * nan; J counts them, and is nan.
    """
    env = RewardIsTimeThenNan()
    policy, params = _policy(env, 0.0, sigma=1.0)
    out = make_evaluator(env, policy, gamma=0.99, key=3, num_episodes=4)(params)
    assert evaluation_horizon(0.99, episode_length=50) == 917
    assert float(out["episode_return"]) == sum(range(50))
    assert np.isnan(out["discounted_return"])


def test_an_int_key_is_the_seed_of_the_evaluation_key():
    env = RewardIsAction()
    noisy, params = _policy(env, -1.0, sigma=3.0)
    by_key, by_seed, other = (make_evaluator(env, noisy, gamma=GAMMA, key=k, num_episodes=4)(params)
                              for k in (jax.random.key(7), 7, 8))
    assert by_key == by_seed == make_evaluator(env, noisy, gamma=GAMMA, key=np.int64(7),
                                               num_episodes=4)(params)
    assert by_seed["discounted_return"] != other["discounted_return"]

def _discounted_returns(lqr, policy, params, keys, episodes):
    """One evaluator per key: independent estimates of J, each from ``episodes`` episodes."""
    evaluate = lambda key: make_evaluator(lqr, policy, gamma=GAMMA, key=key, num_episodes=episodes,
                                          episode_length=20)(params)["discounted_return"]
    return np.asarray(jax.jit(jax.vmap(evaluate))(keys), np.float64)


@pytest.mark.parametrize("gain, sigma", [(-0.5, 0.5), (0.0, 1.0)])
def test_the_discounted_return_is_the_exact_J_of_the_stochastic_policy(lqr, gain, sigma):
    """64 evaluations of 256 episodes each: their mean is J(K, sigma) within 4 standard errors.

    Truncating at gamma^H < 1e-4 biases J by about 1e-4 |J|, far below one standard error.
    The negative control, J at another discount, is rejected by the same check.
    """
    policy = LinearGaussian(lqr, sigma=sigma)
    params = {"weights": jnp.array([[gain]], jnp.float32)}
    values = _discounted_returns(lqr, policy, params, jax.random.split(jax.random.key(2), 64), 256)
    measured = Estimate(values.mean(), values.std(ddof=1) / np.sqrt(values.size))
    assert_unbiased(measured, lqr.exact_value([[gain]], sigma, GAMMA))
    with pytest.raises(AssertionError):
        assert_unbiased(measured, lqr.exact_value([[gain]], sigma, 0.85))


@pytest.mark.parametrize("bad, message", [
    ({"num_episodes": 0}, "num_episodes must be"),
    ({"episode_length": -1}, "episode_length must be"),
    ({"key": -1}, r"key must be an int in \[0, 4294967295\], got -1"),
    ({"key": "seven"}, "key must be a PRNG key .* or an int seed .*, got 'seven'"),
    ({"key": True}, "key must be a PRNG key .*, got True"),
])
def test_bad_arguments_are_refused_when_the_evaluator_is_built(lqr, bad, message):
    policy = LinearGaussian(lqr)
    with pytest.raises(ValueError, match=message):
        make_evaluator(lqr, policy, gamma=GAMMA, **{"key": jax.random.key(0), **bad})


def test_an_environment_or_policy_that_is_not_weakpgs_is_refused(lqr):
    policy = LinearGaussian(lqr)
    with pytest.raises(ValueError, match=r"env must be a weakpg Environment .*, got None"):
        make_evaluator(None, policy, gamma=GAMMA, key=0)
    with pytest.raises(ValueError, match="policy must be a weakpg Policy, got 'linear'"):
        make_evaluator(lqr, "linear", gamma=GAMMA, key=0)
