"""weakpg.monte_carlo has optax 0.2.4's signatures, shapes and meaning.

optax 0.2.4 is not needed: each output is compared with an exact answer, the gradient of
a closed-form expectation (within 4 standard errors) or the per-sample formula on the draws.
"""

from __future__ import annotations

import functools
import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import weakpg
from weakpg import estimators
from weakpg.monte_carlo import control_variates as cv
from weakpg.monte_carlo import stochastic_gradient_estimators as sge
from weakpg.testing import assert_unbiased

RNG = jax.random.PRNGKey(1)  # optax's raw uint32 keys
N = 10_000  # jitted: jaxlib 0.10.2 on CPU miscompiles some vmapped grads past 10922 rows of 3
MEAN, LOG_SCALE = jnp.array([0.5, -1.0, 1.5]), jnp.array([0.2, -0.3, 0.0])
PARAMS = [MEAN, LOG_SCALE]
SCALE = jnp.exp(LOG_SCALE)
WEIGHTS = jnp.array([1.0, 0.5, -2.0])


def weighted_quadratic(x: jax.Array) -> jax.Array:
    return jnp.sum(WEIGHTS * x) ** 2


# E[(w.x)^2] = (w.mu)^2 + sum w^2 s^2, s = exp(log_scale): optax's log-scale parametrisation.
QUADRATIC_EXACT = [2 * WEIGHTS * jnp.sum(WEIGHTS * MEAN), 2 * WEIGHTS**2 * SCALE**2]


def cosine(x: jax.Array) -> jax.Array:
    return jnp.sum(jnp.cos(x))


# E[cos x] = cos(mu) exp(-s^2 / 2); not a polynomial, so no estimator is exact with a delta method.
COSINE_EXACT = [-jnp.sin(MEAN) * jnp.exp(-SCALE**2 / 2), -jnp.cos(MEAN) * jnp.exp(-SCALE**2 / 2) * SCALE**2]

# Each jacobian estimator with its static arguments, compiled once for the module; LLVM at
# -O0 halves the compile time that dominates these tests.
QUICK = {"xla_backend_optimization_level": 0}
_jit = functools.partial(jax.jit, static_argnums=(0, 2, 4), compiler_options=QUICK)
JACOBIANS = {
    "score_function": _jit(sge.score_function_jacobians),
    "pathwise": _jit(sge.pathwise_jacobians),
    "measure_valued": _jit(sge.measure_valued_jacobians),
    "measure_valued_uncoupled": _jit(functools.partial(sge.measure_valued_jacobians, coupling=False)),
}


def _estimate(jacobians) -> estimators.GradientEstimate:
    summary = estimators.summarize(dict(enumerate(jacobians)))
    return estimators.GradientEstimate(list(summary.mean.values()), list(summary.stderr.values()))


@pytest.mark.parametrize("name", JACOBIANS)
def test_jacobians_have_optax_shapes_and_log_scale_meaning(name: str):
    jacobians = JACOBIANS[name](weighted_quadratic, PARAMS, weakpg.monte_carlo.multi_normal, RNG, N)
    assert isinstance(jacobians, list) and [j.shape for j in jacobians] == [(N, 3), (N, 3)]
    assert_unbiased(_estimate(jacobians), QUADRATIC_EXACT)


def test_score_function_and_pathwise_rows_are_the_formulas_on_optax_draws():
    # optax draws x = loc + exp(log_scale) eps with eps = normal(rng, (N, D)); the rows are
    # f(x) d log p / d (loc, log_scale) and d f(x) / d (loc, log_scale).
    eps = jax.random.normal(RNG, (64, 3))
    x = MEAN + SCALE * eps
    fx = jax.vmap(weighted_quadratic)(x)[:, None]
    sf = sge.score_function_jacobians(weighted_quadratic, PARAMS, sge.multi_normal, RNG, 64)
    np.testing.assert_allclose(sf[0], fx * eps / SCALE, rtol=2e-4, atol=1e-4)
    np.testing.assert_allclose(sf[1], fx * (eps**2 - 1), rtol=2e-4, atol=1e-4)
    grad = 2 * jnp.sum(WEIGHTS * x, axis=1, keepdims=True) * WEIGHTS
    pw = sge.pathwise_jacobians(weighted_quadratic, PARAMS, sge.multi_normal, RNG, 64)
    np.testing.assert_allclose(pw[0], grad, rtol=2e-4, atol=1e-4)
    np.testing.assert_allclose(pw[1], grad * eps * SCALE, rtol=2e-4, atol=1e-4)


def test_measure_valued_estimation_of_the_mean_and_the_scale():
    dist = sge.multi_normal(*PARAMS)
    mean = sge.measure_valued_estimation_mean(weighted_quadratic, dist, RNG, 2000, False)
    std = sge.measure_valued_estimation_std(weighted_quadratic, dist, RNG, 2000, coupling=False)
    assert mean.shape == std.shape == (2000, 3)
    # The scale's gradient itself, not the log scale's.
    assert_unbiased(_estimate([mean, std]), [QUADRATIC_EXACT[0], 2 * WEIGHTS**2 * SCALE])


def test_multi_normal_samples_and_densities_like_optax():
    dist = sge.multi_normal(*PARAMS)
    x = dist.sample((5,), RNG)
    np.testing.assert_allclose(x, MEAN + SCALE * jax.random.normal(RNG, (5, 3)), rtol=1e-6)
    expected = jnp.sum(jax.scipy.stats.norm.logpdf(x, MEAN, SCALE), axis=-1)
    np.testing.assert_allclose(dist.log_prob(x), expected, rtol=1e-5)
    assert [p.shape for p in dist.params] == [(3,), (3,)] and dist.log_scale is LOG_SCALE


def test_any_weakpg_family_through_the_chain_rule():
    # Beyond optax: a Poisson of rate l = exp(theta); E[x^2] = l + l^2, d/d theta = (1 + 2 l) l.
    theta = jnp.array([0.2, 1.0])
    rate = jnp.exp(theta)
    jac = sge.measure_valued_jacobians(lambda x: jnp.sum(x**2).astype(jnp.float32), [theta],
                                       lambda t: weakpg.Poisson(jnp.exp(t)), RNG, 2000)
    assert jac[0].shape == (2000, 2)
    assert_unbiased(_estimate(jac), [(1 + 2 * rate) * rate])


# Control variates.

def test_delta_method_value_and_expectation():
    h, expected_h, update = cv.control_delta_method(lambda x: jnp.sum(jnp.log(x**2)))
    params = [jnp.ones(4), jnp.ones(4)]
    # optax's case: log(mu^2) - sigma^2 / mu^2 per dimension at mu = 1, sigma = e.
    np.testing.assert_allclose(expected_h(params, None), -np.e**2 * 4, rtol=1e-5)
    x = jnp.array([1.5, 0.5, 2.0, 1.0])
    d = x - 1.0
    np.testing.assert_allclose(h(params, x, None), jnp.sum(2 * d - d**2), rtol=1e-5)
    assert update(params, x[None], "state") == "state"


def test_moving_average_baseline_updates_as_optax():
    f = lambda x: jnp.sum(WEIGHTS * x)  # noqa: E731
    draws = sge.multi_normal(*PARAMS).sample((100,), RNG)
    batch_mean = float(jnp.mean(jax.vmap(f)(draws)))
    h, expected_h, _ = cv.moving_avg_baseline(f)
    assert float(h(PARAMS, draws[0], (jnp.array(2.0), 0))) == 2.0 == float(expected_h(PARAMS, (2.0, 0)))
    for decay, debias, heuristic, state, value in [
        (0.9, False, False, (1.0, 0), 0.9 * 1.0 + 0.1 * batch_mean),
        (0.9, False, True, (1.0, 0), 0.1 * 1.0 + 0.9 * batch_mean),  # min(0.9, 1/10)
        (0.9, False, True, (2.0, 1), 2 / 11 * 2.0 + 9 / 11 * batch_mean),
        (0.9, True, False, (0.0, 0), batch_mean),
    ]:
        update = cv.moving_avg_baseline(f, decay, debias, heuristic)[2]
        new_value, count = update(PARAMS, draws, (jnp.asarray(state[0]), state[1]))
        np.testing.assert_allclose(new_value, value, rtol=1e-5)
        assert count == state[1] + 1


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3), compiler_options=QUICK)
def _controlled(function, control_variate, estimator: str, estimate_coefficients: bool, state):
    return cv.control_variates_jacobians(
        function, control_variate, getattr(sge, f"{estimator}_jacobians"), PARAMS, sge.multi_normal,
        RNG, N, state, estimate_coefficients, 100)


@pytest.mark.parametrize("estimator, estimate_coefficients",
                         [("score_function", True), ("pathwise", False), ("measure_valued", True)])
def test_control_variates_jacobians_with_the_delta_method(estimator: str, estimate_coefficients: bool):
    jacobians, state = _controlled(cosine, cv.control_delta_method, estimator, estimate_coefficients, None)
    assert state is None and [j.shape for j in jacobians] == [(N, 3), (N, 3)]
    assert_unbiased(_estimate(jacobians), COSINE_EXACT)


def test_control_variates_jacobians_with_a_moving_average():
    jacobians, (value, count) = _controlled(cosine, cv.moving_avg_baseline, "score_function", True,
                                            (jnp.array(0.0), 0))
    draws = sge.multi_normal(*PARAMS).sample((N,), RNG)
    np.testing.assert_allclose(value, jnp.mean(jax.vmap(cosine)(draws)), rtol=1e-4)  # debiased step 1
    assert count == 1
    # optax sets the baseline from the same draws before using it: a bias of O(1/N),
    # far inside the standard error here.
    assert_unbiased(_estimate(jacobians), COSINE_EXACT)


def test_coefficients_come_from_held_out_draws():
    coefficients = cv.estimate_control_variate_coefficients(
        cosine, cv.control_delta_method, sge.score_function_jacobians, PARAMS, sge.multi_normal, RNG, 200)
    held_out = jax.random.split(RNG)[0]
    h = cv.control_delta_method(cosine)[0]
    jac_f = sge.score_function_jacobians(cosine, PARAMS, sge.multi_normal, held_out, 200)
    jac_h = sge.score_function_jacobians(lambda x: h(PARAMS, x, None), PARAMS, sge.multi_normal,
                                         held_out, 200)
    assert len(coefficients) == 2
    for c, jf, jh in zip(coefficients, jac_f, jac_h):
        cov = jnp.sum(jnp.mean((jf - jf.mean(0)) * (jh - jh.mean(0)), axis=0))
        np.testing.assert_allclose(c, cov / (jnp.sum(jnp.var(jh, axis=0)) + 1e-3), rtol=1e-4)


# optax 0.2.4's signatures: (name, default) of every parameter.
OPTAX_SIGNATURES = {
    sge.score_function_jacobians: "function params dist_builder rng num_samples",
    sge.pathwise_jacobians: "function params dist_builder rng num_samples",
    sge.measure_valued_jacobians: "function params dist_builder rng num_samples coupling=True",
    sge.measure_valued_estimation_mean: "function dist rng num_samples coupling=True",
    sge.measure_valued_estimation_std: "function dist rng num_samples coupling=True",
    cv.control_delta_method: "function",
    cv.moving_avg_baseline: "function decay=0.99 zero_debias=True use_decay_early_training_heuristic=True",
    cv.control_variates_jacobians: (
        "function control_variate_from_function grad_estimator params dist_builder rng num_samples "
        "control_variate_state=None estimate_cv_coeffs=False estimate_cv_coeffs_num_samples=20"),
    cv.estimate_control_variate_coefficients: (
        "function control_variate_from_function grad_estimator params dist_builder rng num_samples "
        "control_variate_state=None eps=0.001"),
}


def test_signatures_are_optax_0_2_4s():
    for fn, expected in OPTAX_SIGNATURES.items():
        params = inspect.signature(fn).parameters.values()
        got = " ".join(p.name if p.default is inspect.Parameter.empty else f"{p.name}={p.default!r}"
                       for p in params)
        assert got == expected, fn.__name__
        assert all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in params), fn.__name__
    for name in ("score_function_jacobians", "pathwise_jacobians", "measure_valued_jacobians",
                 "control_delta_method", "moving_avg_baseline", "control_variates_jacobians"):
        assert hasattr(weakpg.monte_carlo, name)  # optax.monte_carlo's own exports


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: sge.score_function_jacobians(cosine, MEAN, sge.multi_normal, RNG, 10),
         "params must be a non-empty list or tuple"),
        (lambda: sge.pathwise_jacobians(cosine, PARAMS, lambda m, s: (m, s), RNG, 10),
         "dist_builder\\(\\*params\\) must be a weakpg distribution or weakpg.monte_carlo.multi_normal"),
        (lambda: sge.pathwise_jacobians(cosine, [jnp.ones(2)], weakpg.Poisson, RNG, 10),
         "pathwise needs a Gaussian"),
        (lambda: sge.measure_valued_estimation_mean(cosine, weakpg.Poisson(jnp.ones(2)), RNG, 10),
         "dist must be a Gaussian, got Poisson"),
        (lambda: sge.score_function_jacobians(cosine, PARAMS, sge.multi_normal, RNG, 0),
         "num_samples must be a Python int >= 1, got 0"),
        (lambda: cv.moving_avg_baseline(cosine, decay=1.5), r"decay must lie in \[0.0, 1.0\)"),
        (lambda: cv.control_variates_jacobians(cosine, cv.control_delta_method, "sf", PARAMS,
                                               sge.multi_normal, RNG, 10),
         "grad_estimator must be a callable"),
    ],
)
def test_bad_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()
