"""from_network: policies from flax (linen, nnx), equinox and plain functions, against exact gradients."""

from __future__ import annotations

import re
from pathlib import Path

import equinox as eqx
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import assert_estimates_agree
from flax import nnx

import weakpg
from weakpg._src import runs
from weakpg.envs import FiniteMDP, LinearQuadratic
from weakpg.policies import from_network
from weakpg.testing import assert_unbiased

N = 10_000
KEY = jax.random.key(11)
GAMMA, SIGMA = 0.9, 0.5
LQR = LinearQuadratic(A=[[0.8, 0.2], [-0.1, 0.9]], B=[[0.5, 0.0], [0.1, 0.4]],
                      Q=[[1.0, 0.0], [0.0, 0.5]], R=[[0.1, 0.0], [0.0, 0.2]],
                      noise_cov=0.05 * np.eye(2), init_cov=np.eye(2))
K = jnp.array([[-0.3, 0.1], [0.05, -0.4]])  # mean = K s
EXACT = LQR.exact_gradient(K, SIGMA, GAMMA)


def _linen():
    """mean = s @ kernel, kernel = K^T: dJ/d kernel = (dJ/dK)^T."""
    module = nn.Dense(2, use_bias=False)
    params = module.init(jax.random.key(0), jnp.zeros(2))
    params = jax.tree.map(lambda _: K.T, params)
    return module.apply, params, lambda g: {"params": {"kernel": g.T}}


def _nnx():
    model = nnx.Linear(2, 2, use_bias=False, rngs=nnx.Rngs(0))
    model.kernel[...] = K.T
    graphdef, params = nnx.split(model)
    return (lambda p, o: nnx.merge(graphdef, p)(o), params,
            lambda g: jax.tree.map(lambda _: g.T, params))


def _equinox():
    model = eqx.nn.Linear(2, 2, use_bias=False, key=jax.random.key(0))
    model = eqx.tree_at(lambda m: m.weight, model, K)
    params, static = eqx.partition(model, eqx.is_array)
    return (lambda p, o: eqx.combine(p, static)(o), params,
            lambda g: eqx.tree_at(lambda m: m.weight, params, g))


NETWORKS = {"flax-linen": _linen, "flax-nnx": _nnx, "equinox": _equinox}


@pytest.mark.parametrize("network", NETWORKS)
def test_network_weak_derivative_is_unbiased_on_an_lqr(network):
    apply, net_params, exact_of = NETWORKS[network]()
    learn_sigma = network == "equinox"
    policy = from_network(LQR, apply, net_params, sigma=SIGMA, learn_sigma=learn_sigma)
    params = policy.init(jax.random.key(0))
    est = weakpg.estimate_gradient(KEY, LQR, policy, params, estimator="jd", gamma=GAMMA, num_samples=N)
    exact = {"network": exact_of(EXACT["weights"])}
    if learn_sigma:
        np.testing.assert_allclose(params["log_sigma"], np.log([SIGMA, SIGMA]))
        exact["log_sigma"] = EXACT["log_sigma"]
    assert_unbiased(est, exact)
    with pytest.raises(AssertionError):  # negative control: the gradient with the wrong sign
        assert_unbiased(est, jax.tree.map(lambda g: -g, exact))


def test_a_linear_network_gives_linear_gaussian_numbers_exactly():
    linear = weakpg.LinearGaussian(LQR, sigma=SIGMA)
    network = from_network(LQR, lambda p, o: p @ o, K, sigma=SIGMA)
    a = weakpg.estimate_gradient(KEY, LQR, linear, {"weights": K}, estimator="jd", gamma=GAMMA,
                                 num_samples=512)
    b = weakpg.estimate_gradient(KEY, LQR, network, network.init(KEY), estimator="jd", gamma=GAMMA,
                                 num_samples=512)
    np.testing.assert_array_equal(a.mean["weights"], b.mean["network"])
    np.testing.assert_array_equal(a.stderr["weights"], b.stderr["network"])
    assert a.env_steps == b.env_steps


def test_flax_mlp_weak_derivative_and_score_function_agree():
    env = LinearQuadratic(A=[[0.9]], B=[[0.5]], Q=[[1.0]], R=[[0.1]], noise_cov=[[0.1]], init_cov=[[1.0]])
    module = nn.Sequential([nn.Dense(8), nn.tanh, nn.Dense(1)])
    policy = from_network(env, module.apply, module.init(jax.random.key(0), jnp.zeros(1)), sigma=SIGMA)
    params = policy.init(KEY)
    jd = weakpg.estimate_gradient(KEY, env, policy, params, estimator="jd", gamma=GAMMA, num_samples=4096)
    sf = weakpg.estimate_gradient(jax.random.key(12), env, policy, params, estimator="sf",
                                  baseline="rollout", gamma=GAMMA, num_samples=4096)
    assert_estimates_agree(jd, sf)
    with pytest.raises(AssertionError):  # negative control: a gradient off by a factor 2
        assert_estimates_agree(jd._replace(mean=jax.tree.map(lambda g: 2 * g, jd.mean)), sf)


def test_softmax_network_gradient_is_unbiased_on_a_finite_mdp():
    mdp = FiniteMDP.random(jax.random.key(3), num_states=5, num_actions=3)
    logits = jax.random.normal(jax.random.key(4), (5, 3))
    policy = from_network(mdp, lambda p, s: p["table"][s], {"table": logits})
    assert policy.num_actions == 3 and policy.action_shape == ()
    est = weakpg.estimate_gradient(KEY, mdp, policy, policy.init(KEY), estimator="jd", gamma=0.8,
                                   num_samples=4096)
    exact = {"network": {"table": mdp.exact_gradient(logits, 0.8)["logits"]}}
    assert_unbiased(est, exact)
    with pytest.raises(AssertionError):
        assert_unbiased(est, jax.tree.map(lambda g: -g, exact))


def test_training_checkpoints_and_resumes_a_flax_policy(tmp_path):
    apply, net_params, _ = _linen()
    policy = from_network(LQR, apply, net_params, sigma=SIGMA)
    config = weakpg.train.TrainConfig(iterations=2, eval_every=1, batch_size=64, lr=0.01, eval_episodes=8)
    trained, rows = weakpg.train.train(LQR, policy, config, run_dir=tmp_path)
    kernel = trained.params["network"]["params"]["kernel"]
    assert [r["iteration"] for r in rows] == [0, 1, 2] and not np.array_equal(kernel, K.T)
    with np.load(tmp_path / "checkpoint.npz") as data:
        assert "['network']['params']['kernel']" in bytes(data[runs._HEADER]).decode()
    resumed, resumed_rows = weakpg.train.train(LQR, policy, config, run_dir=tmp_path, resume=True)
    np.testing.assert_array_equal(resumed.params["network"]["params"]["kernel"], kernel)
    np.testing.assert_equal([list(r.values()) for r in resumed_rows], [list(r.values()) for r in rows])


def test_readme_flax_example_runs(tmp_path, monkeypatch):
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme.split("## Network policies", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert jax.tree.structure(namespace["grad"].mean) == jax.tree.structure(namespace["params"])
    assert (tmp_path / "runs" / "flax-pendulum" / "checkpoint.npz").is_file()


@pytest.mark.parametrize(
    "apply, params, kwargs, match",
    [
        ("not a function", {"K": K}, {}, "apply must be a function"),
        (lambda p, o: p["K"] @ o, {}, {}, "params must be a pytree holding at least one array"),
        (lambda p, o: o, {"K": jnp.zeros((2, 2), jnp.int32)}, {}, r"params\[.K.\] must be an array of"),
        (lambda p, o: p["K"] @ o, {"K": "K"}, {}, r"params\['K'\] must be an array of floats"),
        (lambda p, o: p["K"] @ o, {"K": K.at[0, 0].set(jnp.nan)}, {}, r"params\['K'\]"),
        (lambda p, o: p["K"][0] @ o, {"K": K}, {}, r"must give the mean, shape \(2,\) .* got \(\)"),
        (lambda p, o: jnp.zeros(3) @ o, {"K": K}, {}, "fails on an observation"),
        (lambda p, o: (p["K"] @ o > 0).astype(jnp.int32), {"K": K}, {}, "must give floats"),
        (lambda p, o: p["K"] @ o, {"K": K}, {"sigma": 0.0}, "sigma"),
        (lambda p, o: p["K"] @ o, {"K": K}, {"squash": "sigmoid"}, "squash"),
    ],
)
def test_bad_input_is_rejected(apply, params, kwargs, match):
    with pytest.raises(ValueError, match=match):
        from_network(LQR, apply, params, **kwargs)


def test_bad_input_for_discrete_actions_is_rejected():
    mdp = FiniteMDP.random(jax.random.key(3), num_states=5, num_actions=3)
    table = {"table": jnp.zeros((5, 3))}
    with pytest.raises(ValueError, match=r"must give the logits, shape \(3,\)"):
        from_network(mdp, lambda p, s: p["table"], table)
    with pytest.raises(ValueError, match="learn_sigma is for Gaussian policies"):
        from_network(mdp, lambda p, s: p["table"][s], table, learn_sigma=True)
    with pytest.raises(ValueError, match="env must be a weakpg Environment"):
        from_network("Pendulum-v1", lambda p, s: p["table"][s], table)


def test_init_function_gives_each_seed_its_own_network():
    module = nn.Dense(2, kernel_init=nn.initializers.normal(0.1))  # small gains keep the LQR stable
    obs = jnp.zeros(2)
    policy = from_network(LQR, module.apply, init=lambda key: module.init(key, obs), sigma=SIGMA)
    a, b = (policy.init(jax.random.key(s))["network"]["params"]["kernel"] for s in (0, 1))
    np.testing.assert_array_equal(a, module.init(jax.random.key(0), obs)["params"]["kernel"])
    assert not np.allclose(a, b)
    config = weakpg.train.TrainConfig(batch_size=16, iterations=1, env_steps=None, eval_every=1,
                                      eval_episodes=2, gamma=GAMMA)
    state, _ = weakpg.train.train_seeds(LQR, policy, config, seeds=[0, 1])
    kernels = state.params["network"]["params"]["kernel"]  # one row per seed
    assert kernels.shape == (2, 2, 2) and not np.allclose(kernels[0], kernels[1])


@pytest.mark.parametrize(
    "params, init, match",
    [
        (None, None, "exactly one of the two"),
        ({"K": K}, lambda key: {"K": K}, "exactly one of the two"),
        (None, {"K": K}, "init must be a function init"),
        (None, lambda key: {"K": K.at[0, 0].set(jnp.inf)}, r"params\['K'\]"),
    ],
)
def test_bad_init_is_rejected(params, init, match):
    with pytest.raises(ValueError, match=match):
        from_network(LQR, lambda p, o: p["K"] @ o, params, init=init)
