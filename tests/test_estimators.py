"""Every (family, parameter, estimator, f) is within 4 standard errors of the exact gradient.

Exact gradients come from ``jax.grad`` of closed-form expectations. Each family is also
run through a deliberately wrong estimator, which the same helper must reject.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any
from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from weakpg import Bernoulli, Categorical, Gaussian, Poisson, estimators
from weakpg.distributions import WeakDerivative
from weakpg.testing import assert_unbiased

N = 40_000
KEY = jax.random.key(20261123)
A = 0.7  # the exponent in f(z) = exp(A z)


@dataclasses.dataclass(frozen=True)
class Case:
    """A distribution, a test function f and E[f] as a function of the parameters."""

    name: str
    dist: Any
    f: Callable[[jax.Array], jax.Array]
    expectation: Callable[[dict[str, jax.Array]], jax.Array]

    def exact_gradient(self) -> dict[str, jax.Array]:
        params = {name: jnp.asarray(getattr(self.dist, name), jnp.float32)
                  for name in self.dist.param_names}
        return jax.grad(self.expectation)(params)


MU, SIGMA = jnp.array([0.3, -1.2]), jnp.array([0.8, 1.5])
GAUSS = Gaussian(MU, SIGMA)
GAUSSIAN_CASES = [
    Case("gauss-z", GAUSS, lambda z: jnp.sum(z), lambda p: jnp.sum(p["mean"])),
    Case("gauss-z2", GAUSS, lambda z: jnp.sum(z**2),
         lambda p: jnp.sum(p["mean"] ** 2 + p["scale"] ** 2)),
    Case("gauss-exp", GAUSS, lambda z: jnp.sum(jnp.exp(A * z)),
         lambda p: jnp.sum(jnp.exp(A * p["mean"] + 0.5 * A**2 * p["scale"] ** 2))),
    Case("gauss-cos", GAUSS, lambda z: jnp.sum(jnp.cos(z)),
         lambda p: jnp.sum(jnp.cos(p["mean"]) * jnp.exp(-0.5 * p["scale"] ** 2))),
    Case("gauss-product", GAUSS, lambda z: z[0] * z[1],
         lambda p: p["mean"][0] * p["mean"][1]),
    Case("gauss-scalar-z2", Gaussian(jnp.array(0.5), jnp.array(2.0)), lambda z: z**2,
         lambda p: p["mean"] ** 2 + p["scale"] ** 2),
]

LOGITS = jnp.array([0.4, -0.3, 1.1, 0.0])
CATEGORICAL_CASES = [
    Case("cat-indicator", Categorical(LOGITS), lambda x: (x == 2).astype(jnp.float32),
         lambda p: jax.nn.softmax(p["logits"])[2]),
    Case("cat-poly", Categorical(LOGITS), lambda x: (x**2 - 3 * x).astype(jnp.float32),
         lambda p: jax.nn.softmax(p["logits"]) @ (jnp.arange(4.0) ** 2 - 3 * jnp.arange(4.0))),
]


def _bernoulli_poly(p: jax.Array) -> jax.Array:
    # E[(x0 + 2 x1)^2] for independent Bernoulli, using x^2 = x.
    return p[0] + 4 * p[0] * p[1] + 4 * p[1]


PROBS = jnp.array([0.3, 0.85])
BERNOULLI_CASES = [
    Case("bern-probs-indicator", Bernoulli(probs=PROBS),
         lambda x: (x[0] * (1 - x[1])).astype(jnp.float32), lambda p: p["probs"][0] * (1 - p["probs"][1])),
    Case("bern-probs-poly", Bernoulli(probs=PROBS),
         lambda x: ((x[0] + 2 * x[1]) ** 2).astype(jnp.float32), lambda p: _bernoulli_poly(p["probs"])),
    Case("bern-logits-poly", Bernoulli(logits=jnp.log(PROBS / (1 - PROBS))),
         lambda x: ((x[0] + 2 * x[1]) ** 2).astype(jnp.float32),
         lambda p: _bernoulli_poly(jax.nn.sigmoid(p["logits"]))),
]

RATE = jnp.array([3.0, 0.6])
POISSON_CASES = [
    Case("pois-x", Poisson(RATE), lambda x: jnp.sum(x).astype(jnp.float32), lambda p: jnp.sum(p["rate"])),
    Case("pois-x2", Poisson(RATE), lambda x: jnp.sum(x**2).astype(jnp.float32),
         lambda p: jnp.sum(p["rate"] + p["rate"] ** 2)),
    Case("pois-indicator", Poisson(RATE), lambda x: (x[0] == 2).astype(jnp.float32),
         lambda p: p["rate"][0] ** 2 * jnp.exp(-p["rate"][0]) / 2),
]

ALL_CASES = GAUSSIAN_CASES + CATEGORICAL_CASES + BERNOULLI_CASES + POISSON_CASES

ESTIMATORS: dict[str, Callable[[Any, Case], estimators.GradientEstimate]] = {
    "sf": lambda key, c: estimators.score_function(key, c.f, c.dist, N),
    "sf-constant-baseline": lambda key, c: estimators.score_function(key, c.f, c.dist, N, baseline=1.5),
    "sf-callable-baseline": lambda key, c: estimators.score_function(
        key, c.f, c.dist, N, baseline=lambda d: jax.tree.leaves(d)[0].sum()),
    "sf-loo-baseline": lambda key, c: estimators.score_function(key, c.f, c.dist, N, baseline="loo"),
    "wd-coupled": lambda key, c: estimators.weak_derivative(key, c.f, c.dist, N),
    "wd-uncoupled": lambda key, c: estimators.weak_derivative(key, c.f, c.dist, N, coupled=False),
}


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_estimator_is_unbiased(case: Case, estimator: str):
    assert_unbiased(ESTIMATORS[estimator](KEY, case), case.exact_gradient())


@pytest.mark.parametrize("case", GAUSSIAN_CASES, ids=lambda c: c.name)
def test_pathwise_is_unbiased(case: Case):
    assert_unbiased(estimators.pathwise(KEY, case.f, case.dist, N), case.exact_gradient())


# Negative controls: the same helper rejects each deliberately wrong estimator.

def _wrong_weak_derivative(key, case: Case) -> estimators.GradientEstimate:
    # The real estimator, run on a family whose weak derivative reports 2c instead of c.
    family = type(case.dist)
    right = family.weak_derivative

    def doubled(self, key, param, *, coupled=True):
        c, positive, negative = right(self, key, param, coupled=coupled)
        return WeakDerivative(2 * c, positive, negative)

    with mock.patch.object(family, "weak_derivative", doubled):
        return estimators.weak_derivative(key, case.f, case.dist, N)


def _sf_with_sample_dependent_baseline(key, case: Case) -> estimators.GradientEstimate:
    # (f(z) - b(z)) grad log p(z) with b(z) = z-dependent: the estimate of grad E[f - b].
    def b(z):
        return 0.5 * jnp.sum(z).astype(jnp.float32) + 1.0
    return estimators.score_function(key, lambda z: case.f(z) - b(z), case.dist, N)


def _pathwise_without_noise_factor(key, case: Case) -> estimators.GradientEstimate:
    # Wrong reparameterisation: d f / d scale taken as f'(z) instead of f'(z) eps.
    est = estimators.pathwise(key, case.f, case.dist, N)
    return estimators.GradientEstimate(
        {"mean": est.mean["mean"], "scale": est.mean["mean"]},
        {"mean": est.stderr["mean"], "scale": est.stderr["mean"]})


WRONG = {
    "wd-doubled-c": (_wrong_weak_derivative, ALL_CASES),
    "sf-z-dependent-baseline": (_sf_with_sample_dependent_baseline,
                                [c for c in ALL_CASES if c.name != "cat-indicator"]),
    "pathwise-no-eps": (_pathwise_without_noise_factor,
                        [c for c in GAUSSIAN_CASES if c.name in ("gauss-z2", "gauss-exp")]),
}


@pytest.mark.parametrize("wrong", WRONG)
def test_wrong_estimators_are_rejected(wrong: str):
    estimate_fn, cases = WRONG[wrong]
    for case in cases:
        exact = case.exact_gradient()
        if all(np.allclose(v, 0) for v in jax.tree.leaves(exact)):
            continue  # doubling a zero gradient leaves it unbiased
        with pytest.raises(AssertionError, match="standard errors"):
            assert_unbiased(estimate_fn(KEY, case), exact)


def _variance_ratio(f, dist, param: str) -> np.ndarray:
    """Per-sample variance of the coupled weak derivative over the uncoupled one."""
    coupled = estimators.weak_derivative(KEY, f, dist, N)
    uncoupled = estimators.weak_derivative(KEY, f, dist, N, coupled=False)
    return np.asarray(coupled.stderr[param] / uncoupled.stderr[param]) ** 2


def test_comonotone_couplings_lower_variance_for_monotone_f():
    # Gaussian scale (x- = mean + scale M U) and Poisson (x+ = N + 1, x- = N) move both
    # parts of the pair in the same direction, so f(x+) - f(x-) varies less.
    f = lambda z: jnp.sum(jnp.exp(0.5 * z) + z**3 / 10)  # noqa: E731
    assert np.all(_variance_ratio(f, Gaussian(jnp.array([0.2, -0.4]), jnp.array([1.0, 0.7])), "scale") < 0.5)
    g = lambda x: jnp.sum(x**2 + x).astype(jnp.float32)  # noqa: E731
    assert np.all(_variance_ratio(g, Poisson(jnp.array([2.0, 5.0])), "rate") < 0.1)


def test_mirror_coupling_of_the_gaussian_mean():
    # x+- = mean +- scale R with one R cancels the part of f that is even about the mean,
    # and doubles the noise of the odd part: for linear f the ratio is exactly
    # Var(2R) / Var(R1 + R2) = 2.
    gauss = Gaussian(jnp.array([0.2]), jnp.array([1.0]))
    peaked = lambda z: -jnp.sum((z - 0.5) ** 2)  # noqa: E731
    assert _variance_ratio(peaked, gauss, "mean")[0] < 0.2
    linear = lambda z: jnp.sum(3 * z)  # noqa: E731
    ratio = _variance_ratio(linear, gauss, "mean")[0]
    assert abs(ratio - 2.0) < 0.1, ratio


def test_estimators_trace_under_jit_and_vmap():
    f = lambda z: jnp.sum(z**2)  # noqa: E731
    means = jnp.array([[0.0, 1.0], [2.0, -1.0], [0.5, 0.5]])

    @jax.jit
    def batched(key, means):
        return jax.vmap(lambda m: estimators.weak_derivative(key, f, Gaussian(m, SIGMA), 5000))(means)

    est = batched(KEY, means)
    assert est.mean["mean"].shape == (3, 2)
    for i in range(3):
        one = jax.tree.map(lambda x, i=i: x[i], est)
        assert_unbiased(one, {"mean": 2 * means[i], "scale": 2 * SIGMA})
    eager = estimators.weak_derivative(KEY, f, Gaussian(means[1], SIGMA), 5000)
    np.testing.assert_allclose(eager.mean["mean"], est.mean["mean"][1], rtol=1e-5)


def test_same_key_gives_same_numbers():
    case = GAUSSIAN_CASES[2]
    for estimator in ESTIMATORS.values():
        a, b = estimator(KEY, case), estimator(KEY, case)
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
            np.testing.assert_array_equal(x, y)


def test_single_sample_has_infinite_stderr():
    est = estimators.weak_derivative(KEY, lambda z: jnp.sum(z), GAUSS, 1)
    assert np.all(np.isinf(est.stderr["mean"]))
    with pytest.raises(AssertionError):
        assert_unbiased(est, {"mean": jnp.ones(2), "scale": jnp.zeros(2)})


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: estimators.score_function(KEY, jnp.sum, GAUSS, 0),
         "num_samples must be a Python int >= 1, got 0"),
        (lambda: estimators.weak_derivative(KEY, jnp.sum, GAUSS, 2.5),
         "num_samples must be a Python int >= 1, got 2.5"),
        (lambda: estimators.score_function(KEY, jnp.sum, GAUSS, 1, baseline="loo"), "needs num_samples >= 2"),
        (lambda: estimators.score_function(KEY, jnp.sum, GAUSS, 10, baseline="mean"),
         "baseline must be one of 'loo', got 'mean'"),
        (lambda: estimators.score_function(KEY, jnp.sum, GAUSS, 10, baseline=float("nan")),
         "baseline must be finite, got nan"),
        (lambda: estimators.score_function(KEY, jnp.sum, GAUSS, 10, baseline=lambda d: d.mean),
         "baseline must be a scalar"),
        (lambda: estimators.weak_derivative(KEY, lambda z: z, GAUSS, 10), "f must map one sample of shape"),
        (lambda: estimators.pathwise(KEY, jnp.sum, Poisson(RATE), 10), "pathwise needs a Gaussian"),
        (lambda: estimators.weak_derivative(KEY, jnp.sum, {"mean": 0.0}, 10),
         "dist must be a weakpg Distribution"),
    ],
)
def test_bad_estimator_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# Any callable JAX can trace: the same numbers as the lambda, eager and under jax.jit.

class _Weighted:
    """f as a bound method of an object holding its weights."""

    def __init__(self, weights: jax.Array):
        self.weights = weights

    def value(self, z: jax.Array) -> jax.Array:
        return jnp.sum(self.weights * z)


CALLABLES = {
    "np.sum": np.sum,
    "jnp.sum": jnp.sum,
    "builtin-sum": sum,
    "partial": functools.partial(jnp.sum, axis=0),
    "bound-method": _Weighted(jnp.ones(2)).value,
}
SAMPLE_FUNCTIONS = {
    "sf": estimators.score_function_samples,
    "wd": estimators.weak_derivative_samples,
    "pathwise": estimators.pathwise_samples,
}


def _with_every_callable(key: jax.Array) -> dict[tuple[str, str], dict[str, jax.Array]]:
    return {(est, name): fn(key, f, GAUSS, 64)
            for est, fn in SAMPLE_FUNCTIONS.items() for name, f in CALLABLES.items()}


def test_every_kind_of_callable_works_eager_and_jitted():
    # One compiled program holds every (estimator, callable) pair: compiling each
    # alone would cost a second apiece.
    jitted = jax.jit(_with_every_callable)(KEY)
    references = {est: fn(KEY, lambda z: jnp.sum(z), GAUSS, 64) for est, fn in SAMPLE_FUNCTIONS.items()}
    for (est, name), eager in _with_every_callable(KEY).items():
        for got in (eager, jitted[est, name]):
            for param, value in references[est].items():
                np.testing.assert_allclose(got[param], value, rtol=1e-5, atol=1e-6,
                                           err_msg=f"{est}, {name}")


def test_callable_as_a_static_argument_of_jit():
    # np.sum has no weak reference and a bound method is a new object at each access:
    # both must hash as jit's static arguments.
    sf = jax.jit(estimators.score_function, static_argnums=(1, 3))
    for f in (np.sum, _Weighted(jnp.ones(2)).value):
        assert_unbiased(sf(KEY, f, Poisson(RATE), 2000), {"rate": jnp.ones(2)})


# Per-sample gradients: the estimates are exactly their mean and standard error.

def test_per_sample_gradients_give_the_estimate_exactly():
    case = GAUSSIAN_CASES[2]
    pairs = [
        (estimators.score_function_samples(KEY, case.f, case.dist, 100, baseline="loo"),
         estimators.score_function(KEY, case.f, case.dist, 100, baseline="loo")),
        (estimators.weak_derivative_samples(KEY, case.f, case.dist, 100, coupled=False),
         estimators.weak_derivative(KEY, case.f, case.dist, 100, coupled=False)),
        (estimators.pathwise_samples(KEY, case.f, case.dist, 100),
         estimators.pathwise(KEY, case.f, case.dist, 100)),
    ]
    for samples, estimate in pairs:
        assert set(samples) == set(case.dist.param_names)
        for name, x in samples.items():
            param = getattr(case.dist, name)
            assert x.shape == (100,) + jnp.shape(param)
            np.testing.assert_array_equal(estimate.mean[name], jnp.mean(x, axis=0))
            np.testing.assert_array_equal(
                estimate.stderr[name], jnp.std(x, axis=0, ddof=1) / jnp.sqrt(100.0))
