"""PG-JD and PG-SF against exact policy gradients, and deliberately broken variants."""

from __future__ import annotations

from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import NanRewardAfter, assert_estimates_agree

import weakpg
from weakpg._src.app.studies.unbiased import ActionDependentBaseline
from weakpg._src.errors import NonFiniteError
from weakpg.distributions import Gaussian, WeakDerivative
from weakpg.envs import FiniteMDP, LinearQuadratic
from weakpg.testing import assert_unbiased

N = 20_000
KEY = jax.random.key(11)

SCALAR_LQR = LinearQuadratic(A=[[0.9]], B=[[0.5]], Q=[[1.0]], R=[[0.1]],
                             noise_cov=[[0.1]], init_cov=[[1.0]])
LQR_2D = LinearQuadratic(A=[[0.8, 0.2], [-0.1, 0.9]], B=[[0.5, 0.0], [0.1, 0.4]],
                         Q=[[1.0, 0.0], [0.0, 0.5]], R=[[0.1, 0.0], [0.0, 0.2]],
                         noise_cov=0.05 * np.eye(2), init_cov=np.eye(2))
SIGMA = 0.5
LQR_CASES = {
    "scalar": (SCALAR_LQR, jnp.array([[-0.4]])),
    "2d": (LQR_2D, jnp.array([[-0.3, 0.1], [0.05, -0.4]])),
}
ESTIMATORS = {
    "jd-coupled": dict(estimator="jd"),
    "jd-uncoupled": dict(estimator="jd", coupled=False),
    "sf": dict(estimator="sf"),
    "sf-rollout-baseline": dict(estimator="sf", baseline="rollout"),
    "sf-value-baseline": dict(estimator="sf", baseline="value"),
}


def _lqr_exact(env, weights, gamma, learn_sigma=False):
    exact = env.exact_gradient(weights, SIGMA, gamma)
    return exact if learn_sigma else {"weights": exact["weights"]}


@pytest.mark.parametrize("options", ESTIMATORS.values(), ids=ESTIMATORS.keys())
@pytest.mark.parametrize("case", LQR_CASES)
def test_lqr_estimators_are_unbiased(case, options):
    env, weights = LQR_CASES[case]
    policy = weakpg.LinearGaussian(env, sigma=SIGMA)
    est = weakpg.estimate_gradient(KEY, env, policy, {"weights": weights}, gamma=0.9,
                                   num_samples=N, **options)
    assert_unbiased(est, _lqr_exact(env, weights, 0.9))


@pytest.mark.parametrize("estimator", ["jd", "sf"])
def test_learned_sigma_gradient_is_unbiased(estimator):
    env, weights = LQR_CASES["scalar"]
    policy = weakpg.LinearGaussian(env, sigma=SIGMA, learn_sigma=True)
    params = {"weights": weights, "log_sigma": jnp.log(jnp.array([SIGMA]))}
    est = weakpg.estimate_gradient(KEY, env, policy, params, estimator=estimator, gamma=0.9,
                                   num_samples=N)
    assert_unbiased(est, _lqr_exact(env, weights, 0.9, learn_sigma=True))


MDP = FiniteMDP.random(jax.random.key(3), num_states=5, num_actions=3)
MDP_LOGITS = jax.random.normal(jax.random.key(4), (5, 3))
MDP_ESTIMATORS = {k: ESTIMATORS[k] for k in ("jd-coupled", "jd-uncoupled", "sf", "sf-rollout-baseline")}


@pytest.mark.parametrize("options", MDP_ESTIMATORS.values(), ids=MDP_ESTIMATORS.keys())
def test_finite_mdp_estimators_are_unbiased(options):
    policy = weakpg.Softmax(MDP)
    est = weakpg.estimate_gradient(KEY, MDP, policy, {"logits": MDP_LOGITS}, gamma=0.8,
                                   num_samples=N, **options)
    assert_unbiased(est, MDP.exact_gradient(MDP_LOGITS, 0.8))


# Broken variants, rejected by the same helper.

def test_wrong_weak_derivative_constant_is_caught():
    right = Gaussian.weak_derivative

    def doubled(self, key, param, **options):
        c, positive, negative = right(self, key, param, **options)
        return WeakDerivative(2 * c, positive, negative)

    env, weights = LQR_CASES["scalar"]
    with mock.patch.object(Gaussian, "weak_derivative", doubled):
        est = weakpg.estimate_gradient(KEY, env, weakpg.LinearGaussian(env, sigma=SIGMA),
                                       {"weights": weights}, estimator="jd", gamma=0.9, num_samples=N)
    with pytest.raises(AssertionError, match="standard errors"):
        assert_unbiased(est, _lqr_exact(env, weights, 0.9))


def test_action_dependent_baseline_is_caught():
    env, weights = LQR_CASES["scalar"]
    # The baseline replays the sampled action in an independent roll-out: mean 0, not grad J.
    policy = ActionDependentBaseline(weakpg.LinearGaussian(env, sigma=SIGMA))
    est = weakpg.estimate_gradient(KEY, env, policy, {"weights": weights}, estimator="sf",
                                   baseline="rollout", coupled=False, gamma=0.9, num_samples=N)
    with pytest.raises(AssertionError, match="standard errors"):
        assert_unbiased(est, _lqr_exact(env, weights, 0.9))


@pytest.mark.parametrize("estimator, per_sample", [("sf", lambda g: (1 + g) / (1 - g)),
                                                   ("jd", lambda g: (2 + g) / (1 - g))])
def test_env_steps_per_sample_match_theory(estimator, per_sample):
    # T' + (T + 1) for sf, T' + 2 (T + 1) for one jd pair, T', T ~ Geom(1 - gamma) on {0, 1, ...}.
    env, weights = LQR_CASES["scalar"]
    gamma = 0.9
    est = weakpg.estimate_gradient(KEY, env, weakpg.LinearGaussian(env, sigma=SIGMA),
                                   {"weights": weights}, estimator=estimator, gamma=gamma, num_samples=N)
    branches = 1 if estimator == "sf" else 2
    sd = np.sqrt((gamma + branches**2 * gamma) / (1 - gamma) ** 2)
    assert abs(est.env_steps / N - per_sample(gamma)) < 4 * sd / np.sqrt(N)
    assert est.env_steps <= est.lane_steps


def test_same_key_same_numbers_and_jit_inside_a_larger_function():
    env, weights = LQR_CASES["2d"]
    policy = weakpg.LinearGaussian(env, sigma=SIGMA)
    params = {"weights": weights}
    a = weakpg.estimate_gradient(KEY, env, policy, params, estimator="jd", gamma=0.9, num_samples=512)
    b = weakpg.estimate_gradient(KEY, env, policy, params, estimator="jd", gamma=0.9, num_samples=512)
    np.testing.assert_array_equal(a.mean["weights"], b.mean["weights"])
    assert a.env_steps == b.env_steps
    estimate = weakpg.make_gradient_estimator(env, policy, estimator="jd", gamma=0.9, num_samples=512)

    @jax.jit
    def ascent_step(key, params):
        return jax.tree.map(lambda p, g: p + 0.01 * g, params, estimate(key, params).mean)

    stepped = ascent_step(KEY, params)
    np.testing.assert_allclose(stepped["weights"], weights + 0.01 * a.mean["weights"], rtol=1e-5)


def test_mlp_policy_weak_derivative_and_score_function_agree():
    # No closed form for an MLP mean, so the two unbiased estimators must agree with each
    # other within their combined standard errors.
    env = SCALAR_LQR
    policy = weakpg.MLPGaussian(env, hidden=(8,), sigma=SIGMA)
    params = policy.init(jax.random.key(0))
    jd = weakpg.estimate_gradient(KEY, env, policy, params, estimator="jd", gamma=0.9, num_samples=N)
    sf = weakpg.estimate_gradient(KEY, env, policy, params, estimator="sf", baseline="rollout",
                                  gamma=0.9, num_samples=N)
    assert jax.tree.structure(jd.mean) == jax.tree.structure(params)
    assert_estimates_agree(jd, sf)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(gamma=1.0), r"gamma must lie in \(0.0, 1.0\)"),
        (dict(gamma=0.0), r"gamma must lie in \(0.0, 1.0\)"),
        (dict(gamma="0.9"), "gamma must be of type float, got '0.9'"),
        (dict(num_samples=0), r"num_samples must be an int in \[1, 1048576\], got 0"),
        (dict(num_samples=np.int64(0)), r"num_samples must be an int in \[1, 1048576\], got 0"),
        (dict(estimator="reinforce"), "estimator must be one of 'jd', 'sf', got 'reinforce'"),
        (dict(baseline="mean"), "baseline must be one of None, 'rollout', 'value', got 'mean'"),
        (dict(estimator="jd", baseline="rollout"), "applies to estimator='sf' only"),
        (dict(params={"weights": jnp.zeros((1, 2))}), r"params\['weights'\] must have shape \(1, 1\)"),
        (dict(params={"weights": jnp.full((1, 1), jnp.nan)}), r"params\['weights'\] must be finite"),
        (dict(policy=weakpg.LinearGaussian(LQR_2D)), "policy actions do not fit the environment"),
        (dict(num_lanes=0), "num_lanes must be an int >= 1"),
    ],
)
def test_bad_arguments_raise_before_computing(kwargs, match):
    env = SCALAR_LQR
    args = dict(env=env, policy=weakpg.LinearGaussian(env), params={"weights": jnp.zeros((1, 1))},
                estimator="sf", gamma=0.9, num_samples=10)
    args.update(kwargs)
    with mock.patch("weakpg._src.gradients.run_jobs") as engine:
        with pytest.raises(ValueError, match=match):
            weakpg.estimate_gradient(KEY, **args)
    engine.assert_not_called()


def test_unknown_env_id_and_discrete_mismatch():
    with pytest.raises(ValueError, match="env_id must be one of 'Pendulum-v1'"):
        weakpg.envs.make("Pendulum-v9")
    with pytest.raises(ValueError, match="needs continuous actions"):
        weakpg.LinearGaussian(MDP)
    with pytest.raises(ValueError, match="Softmax needs discrete actions"):
        weakpg.Softmax(SCALAR_LQR)


def test_a_non_finite_estimate_raises_and_names_the_parameter(lqr):
    env = NanRewardAfter(lqr, after=3)
    policy = weakpg.LinearGaussian(env, sigma=0.5)
    with pytest.raises(NonFiniteError, match=r"the gradient estimate of params\['weights'\] is not finite"):
        weakpg.estimate_gradient(jax.random.key(0), env, policy, policy.init(jax.random.key(1)),
                                 estimator="jd", gamma=0.9, num_samples=8)


@pytest.mark.parametrize("params, options, message", [
    ({"weights": jnp.zeros((1, 1), jnp.int32)}, {}, r"must hold floats .* got dtype int32"),
    ({"weights": np.zeros((1, 1), bool)}, {}, r"params\['weights'\] must hold floats .* got dtype bool"),
    (None, {"coupled": "no"}, "coupled must be of type bool, got 'no'"),
])
def test_params_that_cannot_be_differentiated_and_bad_flags_are_refused(lqr, params, options, message):
    policy = weakpg.LinearGaussian(lqr, sigma=0.5)
    params = policy.init(jax.random.key(0)) if params is None else params
    with pytest.raises(ValueError, match=message):
        weakpg.estimate_gradient(jax.random.key(0), lqr, policy, params, estimator="jd", gamma=0.9,
                                 num_samples=8, **options)
