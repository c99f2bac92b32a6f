"""Agent.act: the mean or most likely action, draws from pi(. | obs), numpy or JAX, single or batched."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import weakpg
from weakpg import envs
from weakpg.agents import Agent, policy_action
from weakpg.estimators import GradientEstimate
from weakpg.policies import LinearGaussian, MLPGaussian, Softmax
from weakpg.testing import assert_unbiased

DRAWS = 20_000


@pytest.fixture(scope="module")
def pendulum():
    return envs.make("Pendulum-v1")


@pytest.fixture(scope="module")
def cartpole():
    return envs.make("CartPole-v1")


def _random_params(policy, key):
    """Parameters away from the zero initialisation, so means and logits differ by observation."""
    params = policy.init(key)
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(key, len(leaves))
    return jax.tree.unflatten(tree, [leaf + 0.5 * jax.random.normal(k, leaf.shape)
                                     for leaf, k in zip(leaves, keys)])


GAUSSIANS = {
    "linear": lambda env: LinearGaussian(env, sigma=0.7),
    "linear-rbf": lambda env: LinearGaussian(env, sigma=0.7, features="rbf"),
    "mlp": lambda env: MLPGaussian(env, sigma=0.7, hidden=(8,)),
    "mlp-learned-sigma": lambda env: MLPGaussian(env, sigma=0.7, hidden=(8,), learn_sigma=True),
}
OBS = np.array([[0.6, -0.8, 1.5], [-1.0, 0.0, -3.0], [0.0, 1.0, 0.2]], np.float32)


@pytest.mark.parametrize("kind", GAUSSIANS)
def test_gaussian_act_without_key_is_the_mean(pendulum, kind):
    policy = GAUSSIANS[kind](pendulum)
    params = _random_params(policy, jax.random.key(1))
    agent = Agent(policy, params, pendulum)
    means = np.stack([np.asarray(policy.dist_params(params, o)["mean"]) for o in OBS])
    single = agent.act(OBS[0])
    assert isinstance(single, np.ndarray) and single.shape == (1,)
    np.testing.assert_allclose(single, means[0], rtol=1e-6)
    batch = agent.act(OBS)
    assert isinstance(batch, np.ndarray) and batch.shape == (3, 1)
    np.testing.assert_allclose(batch, means, rtol=1e-5)
    as_jax = agent.act(jnp.asarray(OBS))
    assert isinstance(as_jax, jax.Array)
    np.testing.assert_allclose(np.asarray(as_jax), means, rtol=1e-5)
    np.testing.assert_allclose(agent.act(OBS.tolist()), means, rtol=1e-5)  # lists count as numpy


@pytest.mark.parametrize("kind", GAUSSIANS)
def test_gaussian_act_with_key_draws_from_the_policy(pendulum, kind):
    policy = GAUSSIANS[kind](pendulum)
    params = _random_params(policy, jax.random.key(2))
    agent = Agent(policy, params, pendulum)
    dist = policy.dist_params(params, OBS[1])
    draws = agent.act(np.repeat(OBS[1:2], DRAWS, axis=0), jax.random.key(3))[:, 0]
    assert draws.shape == (DRAWS,)
    mean, sigma = float(dist["mean"][0]), float(dist["scale"][0])
    fourth = np.mean((draws - draws.mean()) ** 4)
    stats = GradientEstimate({"mean": draws.mean(), "var": np.var(draws, ddof=1)},
                             {"mean": draws.std(ddof=1) / np.sqrt(DRAWS),
                              "var": np.sqrt((fourth - np.var(draws) ** 2) / DRAWS)})
    assert_unbiased(stats, {"mean": mean, "var": sigma**2})
    with pytest.raises(AssertionError):  # the same test sees a mean off by a tenth of sigma
        assert_unbiased(stats, {"mean": mean + 0.1 * sigma, "var": sigma**2})
    # One key, one draw: a single observation's draw is reproducible, another key differs.
    once = agent.act(OBS[1], jax.random.key(4))
    np.testing.assert_array_equal(once, agent.act(OBS[1], jax.random.key(4)))
    assert not np.array_equal(once, agent.act(OBS[1], jax.random.key(5)))


def test_tanh_squash_acts_inside_the_bounds(pendulum):
    policy = LinearGaussian(pendulum, sigma=1.0, squash="tanh")
    params = {"weights": jnp.full((1, 3), 10.0)}
    agent = Agent(policy, params, pendulum)
    action = agent.act(OBS[0])
    np.testing.assert_allclose(action, 2.0 * np.tanh(10.0 * OBS[0].sum()), rtol=1e-6)
    assert np.all(np.abs(agent.act(OBS, jax.random.key(0))) <= 2.0)


def test_softmax_act_is_the_most_likely_action_or_a_draw(cartpole):
    policy = Softmax(cartpole)
    params = _random_params(policy, jax.random.key(6))
    agent = Agent(policy, params, cartpole)
    obs = np.array([[0.1, -0.5, 0.05, 1.0], [0.0, 0.4, -0.1, -2.0]], np.float32)
    logits = np.stack([np.asarray(policy.dist_params(params, o)["logits"]) for o in obs])
    best = agent.act(obs)
    np.testing.assert_array_equal(best, logits.argmax(-1))
    assert agent.act(obs[0]).shape == () and np.issubdtype(agent.act(obs[0]).dtype, np.integer)
    draws = agent.act(np.repeat(obs[:1], DRAWS, axis=0), jax.random.key(7))
    freq = np.bincount(draws, minlength=2) / DRAWS
    probs = np.asarray(jax.nn.softmax(logits[0]))
    stats = GradientEstimate({"p": freq}, {"p": np.sqrt(freq * (1 - freq) / DRAWS)})
    assert_unbiased(stats, {"p": probs})
    with pytest.raises(AssertionError):
        assert_unbiased(stats, {"p": probs + np.array([0.02, -0.02])})


def test_policy_action_is_what_act_computes(pendulum):
    policy = GAUSSIANS["mlp"](pendulum)
    params = _random_params(policy, jax.random.key(8))
    noise = policy.noise(jax.random.key(9))
    np.testing.assert_allclose(policy_action(policy, params, OBS[0], noise),
                               policy.dist_params(params, OBS[0])["mean"] + 0.7 * noise, rtol=1e-6)
    np.testing.assert_allclose(Agent(policy, params, pendulum).act(OBS[0], jax.random.key(9)),
                               policy_action(policy, params, OBS[0], noise), rtol=1e-6)


def test_bad_observations_and_keys_are_refused(pendulum):
    policy = LinearGaussian(pendulum)
    agent = Agent(policy, policy.init(jax.random.key(0)), pendulum)
    for obs in (np.zeros(4), np.zeros((2, 2, 3)), np.zeros(())):
        with pytest.raises(ValueError, match=r"obs must have shape \(3,\)"):
            agent.act(obs)
    with pytest.raises(TypeError, match="key must be a JAX PRNG key"):
        agent.act(OBS[0], 3)


def test_weakpg_exports_agent_and_load():
    assert weakpg.Agent is Agent
    assert weakpg.load is weakpg.agents.load
