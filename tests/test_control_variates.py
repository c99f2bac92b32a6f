"""Control variates keep every estimator unbiased and lower its variance where theory says.

Exact gradients are closed forms. The negative control estimates the coefficient on the
same draws as the estimate and must be rejected by the same helper.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from weakpg import Gaussian, Poisson, control_variates, estimators
from weakpg.testing import assert_unbiased

KEY = jax.random.key(20261124)
N = 20_000
A = 0.7
MU, SIGMA = jnp.array([0.3, -1.2]), jnp.array([0.8, 1.5])
GAUSS = Gaussian(MU, SIGMA)


def exp_f(z: jax.Array) -> jax.Array:
    return jnp.sum(jnp.exp(A * z))


EXP_EXACT = {"mean": A * jnp.exp(A * MU + 0.5 * A**2 * SIGMA**2),
             "scale": A**2 * SIGMA * jnp.exp(A * MU + 0.5 * A**2 * SIGMA**2)}
# The demo's problems: E[z^2], z ~ N(1, 2^2), and E[x^2], x ~ Poisson(3).
DEMO_GAUSS, DEMO_GAUSS_EXACT = Gaussian(jnp.asarray(1.0), jnp.asarray(2.0)), {"mean": 2.0, "scale": 4.0}
DEMO_POISSON, DEMO_POISSON_EXACT = Poisson(jnp.asarray(3.0)), {"rate": 7.0}


def square(z: jax.Array) -> jax.Array:
    return jnp.square(z.astype(jnp.float32))


ESTIMATORS = {
    "sf": estimators.score_function_samples,
    "wd-coupled": estimators.weak_derivative_samples,
    "wd-uncoupled": functools.partial(estimators.weak_derivative_samples, coupled=False),
    "pathwise": estimators.pathwise_samples,
}
BASELINE = control_variates.moving_average_baseline(control_variates.MovingAverage(4.0, 3))


def _variance(samples: dict[str, jax.Array]) -> dict[str, np.ndarray]:
    return {k: np.var(np.asarray(v, np.float64), axis=0, ddof=1) for k, v in samples.items()}


# Compiling dominates these tests: LLVM at -O0 halves it, and the programs run in < 1 s.
QUICK = {"xla_backend_optimization_level": 0}
PROBLEMS = {"exp": (GAUSS, exp_f), "demo-gauss": (DEMO_GAUSS, square), "demo-poisson": (DEMO_POISSON, square)}
# (problem, estimator, control variate) of the tests; "none" is the plain estimator.
RUNS = ([("exp", est, cv) for est in ESTIMATORS for cv in ("none", "delta", "baseline")]
        + [(problem, "sf", cv) for problem in ("demo-gauss", "demo-poisson") for cv in ("none", "baseline")]
        + [("demo-poisson", "wd-coupled", "baseline")])


@functools.partial(jax.jit, compiler_options=QUICK)
def _all_samples(key: jax.Array) -> dict[tuple[str, str, str], dict[str, jax.Array]]:
    """Per-sample gradients of every run, and of the delta method with c = 1 on the
    quadratic demo problem, as one program."""
    out = {}
    for problem, est, cv in RUNS:
        dist, f = PROBLEMS[problem]
        if cv == "none":
            # The controlled estimates' first N draws (N // 4 more are held out).
            plain = ESTIMATORS[est](key, f, dist, N + N // 4)
            out[problem, est, cv] = {k: v[:N] for k, v in plain.items()}
        else:
            control = BASELINE if cv == "baseline" else control_variates.delta_method(f, dist)
            out[problem, est, cv] = control_variates.controlled_samples(
                key, ESTIMATORS[est], f, dist, N, control)
    delta = control_variates.delta_method(square, DEMO_GAUSS)
    for est, fn in ESTIMATORS.items():
        out["demo-gauss", est, "delta, c = 1"] = control_variates.controlled_samples(
            key, fn, square, DEMO_GAUSS, 64, delta, coefficient=1.0)
    return out


@pytest.fixture(scope="module")
def samples():
    return _all_samples(KEY)


@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("cv", ["delta", "baseline"])
def test_controlled_estimates_are_unbiased(samples, estimator: str, cv: str):
    assert_unbiased(estimators.summarize(samples["exp", estimator, cv]), EXP_EXACT)
    if ("demo-poisson", estimator, cv) in samples:
        assert_unbiased(estimators.summarize(samples["demo-poisson", estimator, cv]), DEMO_POISSON_EXACT)


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_delta_method_lowers_the_variance_of_every_estimator(samples, estimator: str):
    plain, delta = _variance(samples["exp", estimator, "none"]), _variance(samples["exp", estimator, "delta"])
    for name in plain:
        assert np.all(delta[name] < 0.7 * plain[name]), (name, delta[name] / plain[name])


def test_a_baseline_helps_only_the_score_function(samples):
    # A constant's weak-derivative and pathwise samples are 0, so the estimated
    # coefficient is 0 and the samples are those of the plain estimator, exactly.
    for name in ("wd-coupled", "wd-uncoupled", "pathwise"):
        for param, x in samples["exp", name, "none"].items():
            np.testing.assert_array_equal(samples["exp", name, "baseline"][param], x)
    for problem in ("demo-gauss", "demo-poisson"):
        plain = _variance(samples[problem, "sf", "none"])
        based = _variance(samples[problem, "sf", "baseline"])
        for param in plain:
            assert based[param] < 0.75 * plain[param], (problem, param, based[param] / plain[param])


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_delta_method_is_exact_for_quadratic_f(samples, estimator: str):
    est = estimators.summarize(samples["demo-gauss", estimator, "delta, c = 1"])
    for name, value in DEMO_GAUSS_EXACT.items():
        np.testing.assert_allclose(est.mean[name], value, rtol=1e-5)
        assert float(est.stderr[name]) < 1e-5


R, SMALL_N = 4000, 8


def _repeated(estimate_fn) -> estimators.GradientEstimate:
    """R independent estimates of SMALL_N samples each: their mean and its standard error."""
    means = jax.jit(jax.vmap(estimate_fn), compiler_options=QUICK)(jax.random.split(KEY, R))
    return estimators.GradientEstimate(
        {k: jnp.mean(v, axis=0) for k, v in means.items()},
        {k: jnp.std(v, axis=0, ddof=1) / np.sqrt(R) for k, v in means.items()})


@pytest.mark.parametrize("problem", ["gauss", "poisson"])
def test_coefficient_from_the_same_draws_is_biased_and_held_out_is_not(problem: str):
    dist, exact = (DEMO_GAUSS, DEMO_GAUSS_EXACT) if problem == "gauss" else (DEMO_POISSON, DEMO_POISSON_EXACT)
    sf = estimators.score_function_samples

    def held_out(key):
        g = control_variates.controlled_samples(key, sf, square, dist, SMALL_N, BASELINE,
                                                num_held_out=SMALL_N)
        return {k: jnp.mean(v, axis=0) for k, v in g.items()}

    def same_draws(key):
        gf, gh = sf(key, square, dist, SMALL_N), sf(key, BASELINE.value, dist, SMALL_N)
        c = control_variates.optimal_coefficients(gf, gh)
        return {k: jnp.mean(gf[k] - c[k] * gh[k], axis=0) for k in gf}

    assert_unbiased(_repeated(held_out), exact)
    with pytest.raises(AssertionError, match="standard errors"):
        assert_unbiased(_repeated(same_draws), exact)


def test_moving_average_is_the_zero_debiased_average():
    decay = 0.9
    batches = [jnp.array([1.0, 3.0]), jnp.array([5.0]), jnp.array([-2.0, 0.0, 1.0])]
    state = control_variates.MovingAverage()
    for k, batch in enumerate(batches, start=1):
        state = control_variates.update_moving_average(state, batch, decay=decay)
        means = [float(jnp.mean(b)) for b in batches[:k]]
        total = sum(decay ** (k - j) * (1 - decay) * m for j, m in enumerate(means, start=1))
        np.testing.assert_allclose(state.value, total / (1 - decay**k), rtol=1e-6)
        assert int(state.count) == k
    assert float(control_variates.moving_average_baseline(state).value(jnp.zeros(2))) == float(state.value)


SF = estimators.score_function_samples


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: control_variates.delta_method(square, DEMO_POISSON), "delta_method needs a Gaussian"),
        (lambda: control_variates.baseline(jnp.ones(2)), r"b must be a scalar, got shape \(2,\)"),
        (lambda: control_variates.baseline(float("inf")), "b must be finite, got inf"),
        (lambda: control_variates.update_moving_average(control_variates.MovingAverage(), jnp.ones(2),
                                                        decay=1.0), r"decay must lie in \[0.0, 1.0\)"),
        (lambda: control_variates.controlled(KEY, SF, square, DEMO_GAUSS, 10, BASELINE, coefficient="best"),
         "coefficient must be one of 'held_out', got 'best'"),
        (lambda: control_variates.controlled(KEY, SF, square, DEMO_GAUSS, 10, BASELINE, num_held_out=1),
         "num_held_out must be >= 2, got 1"),
        (lambda: control_variates.controlled(KEY, SF, square, DEMO_GAUSS, 0, BASELINE),
         "num_samples must be a Python int >= 1, got 0"),
        (lambda: control_variates.controlled(KEY, SF, square, DEMO_GAUSS, 10, (square, square)),
         "control_variate must be a ControlVariate"),
        (lambda: control_variates.controlled(KEY, "sf", square, DEMO_GAUSS, 10, BASELINE),
         "estimator must be a per-sample estimator"),
    ],
)
def test_bad_control_variate_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()
