"""Samplers, log-densities and the laws of the weak-derivative parts."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import weakpg
from weakpg import Bernoulli, Categorical, Gaussian, Poisson
from weakpg._src.distributions import rayleigh
from weakpg.testing import assert_unbiased

KEY = jax.random.key(7)
N = 20_000
P_MIN = 1e-3  # a correct sampler fails a KS test at this level one time in a thousand


def _draw(dist, param, coupled=True, n=N):
    keys = jax.random.split(KEY, n)
    return jax.vmap(lambda k: dist.weak_derivative(k, param, coupled=coupled))(keys)


def _ks_pvalue(sample, cdf) -> float:
    return stats.kstest(np.asarray(sample, np.float64), cdf).pvalue


def test_gaussian_mean_parts_are_rayleigh_shifts():
    dist = Gaussian(jnp.array([0.5, -1.0]), jnp.array([2.0, 0.5]))
    for coupled in (True, False):
        wd = _draw(dist, "mean", coupled)
        np.testing.assert_allclose(wd.constant[0], 1 / (np.array([2.0, 0.5]) * np.sqrt(2 * np.pi)), rtol=1e-6)
        for i, (mu, sigma) in enumerate([(0.5, 2.0), (-1.0, 0.5)]):
            r_pos = (wd.positive[:, i, i] - mu) / sigma
            r_neg = (mu - wd.negative[:, i, i]) / sigma
            assert _ks_pvalue(r_pos, stats.rayleigh.cdf) > P_MIN
            assert _ks_pvalue(r_neg, stats.rayleigh.cdf) > P_MIN
            # Negative control: the same test rejects a Maxwell law.
            assert _ks_pvalue(r_pos, stats.maxwell.cdf) < P_MIN
            # Other coordinates are one draw from p, shared by the pair.
            j = 1 - i
            np.testing.assert_array_equal(wd.positive[:, i, j], wd.negative[:, i, j])
            assert _ks_pvalue((wd.positive[:, i, j] - dist.mean[j]) / dist.scale[j], stats.norm.cdf) > P_MIN
        same_r = np.allclose(r_pos, r_neg)
        assert same_r == coupled


def test_quantile_coupling_has_rayleigh_marginals_and_is_comonotone():
    mu, sigma = np.array([0.5, -1.0]), np.array([2.0, 0.5])
    dist = Gaussian(jnp.asarray(mu), jnp.asarray(sigma))
    keys = jax.random.split(KEY, N)
    quantile = jax.vmap(lambda k: dist.weak_derivative(k, "mean", coupling="quantile"))(keys)
    mirror = _draw(dist, "mean")
    for i in range(2):
        r_pos = (quantile.positive[:, i, i] - mu[i]) / sigma[i]
        r_neg = (mu[i] - quantile.negative[:, i, i]) / sigma[i]
        assert _ks_pvalue(r_pos, stats.rayleigh.cdf) > P_MIN
        assert _ks_pvalue(r_neg, stats.rayleigh.cdf) > P_MIN
        # One uniform V: F_R(R+) = V and F_R(R-) = 1 - V, so the two survival functions sum to 1.
        np.testing.assert_allclose(np.exp(-r_pos**2 / 2) + np.exp(-r_neg**2 / 2), 1.0, atol=1e-5)
        # Comonotone: x+ and x- rise together; the mirror pair moves them in opposite directions.
        assert stats.spearmanr(quantile.positive[:, i, i], quantile.negative[:, i, i])[0] > 0.999
        assert stats.spearmanr(mirror.positive[:, i, i], mirror.negative[:, i, i])[0] < -0.999
        # The same key gives the same x+ under both couplings; only x- differs.
        np.testing.assert_array_equal(quantile.positive[:, i, i], mirror.positive[:, i, i])
    np.testing.assert_array_equal(quantile.constant, mirror.constant)


@pytest.mark.parametrize("coupling", ["quantile", "mirror"])
def test_coupled_mean_weak_derivative_is_unbiased(coupling):
    # d/d mu E[sin(x) + x^2] = cos(mu) exp(-sigma^2 / 2) + 2 mu for x ~ N(mu, sigma^2).
    mu, sigma = 0.4, 0.8
    f = lambda x: jnp.sin(x) + x**2
    wd = jax.vmap(lambda k: Gaussian(jnp.array(mu), jnp.array(sigma)).weak_derivative(
        k, "mean", coupling=coupling))(jax.random.split(KEY, N))
    samples = np.asarray(wd.constant * (f(wd.positive) - f(wd.negative)), np.float64)
    estimate = weakpg.estimators.GradientEstimate(samples.mean(), samples.std(ddof=1) / np.sqrt(N))
    exact = np.cos(mu) * np.exp(-sigma**2 / 2) + 2 * mu
    assert_unbiased(estimate, exact)
    # Negative control: x- reflected to the wrong side of the mean (mean 0, not the derivative).
    wrong = np.asarray(wd.constant * (f(wd.positive) - f(2 * mu - wd.negative)), np.float64)
    with pytest.raises(AssertionError, match="standard errors"):
        assert_unbiased(weakpg.estimators.GradientEstimate(wrong.mean(), wrong.std(ddof=1) / np.sqrt(N)),
                        exact)


@pytest.mark.parametrize("param, options, match", [
    ("mean", dict(coupling="antithetic"), "coupling must be one of 'mirror', 'quantile', got 'antithetic'"),
    ("mean", dict(coupling="quantile", coupled=False), "needs param='mean' and coupled=True"),
    ("scale", dict(coupling="quantile"), "needs param='mean' and coupled=True, got param='scale'"),
])
def test_a_coupling_that_does_not_apply_is_refused(param, options, match):
    with pytest.raises(ValueError, match=match):
        Gaussian(jnp.array(0.0), jnp.array(1.0)).weak_derivative(KEY, param, **options)


def test_gaussian_scale_parts_are_maxwell_and_gaussian():
    mu, sigma = 1.5, 0.7
    dist = Gaussian(jnp.array(mu), jnp.array(sigma))
    for coupled in (True, False):
        wd = _draw(dist, "scale", coupled)
        np.testing.assert_allclose(wd.constant[0], 1 / sigma, rtol=1e-6)
        m = (wd.positive - mu) / sigma
        assert _ks_pvalue(np.abs(m), stats.maxwell.cdf) > P_MIN
        assert abs(np.mean(m > 0) - 0.5) < 4 * 0.5 / np.sqrt(N)  # double-sided: symmetric
        eps = (wd.negative - mu) / sigma
        assert _ks_pvalue(eps, stats.norm.cdf) > P_MIN
        assert _ks_pvalue(np.abs(eps), stats.maxwell.cdf) < P_MIN
        # Coupled: eps = M U with U uniform on (0, 1), so |eps| <= |M| with the same sign.
        assert bool(np.all((np.abs(eps) <= np.abs(m)) & (np.sign(eps) == np.sign(m)))) == coupled


def test_poisson_parts():
    rate = 2.5
    for coupled in (True, False):
        wd = _draw(Poisson(jnp.array(rate)), "rate", coupled)
        assert np.all(wd.constant == 1)
        ks = np.arange(15)
        for sample, shift in ((wd.positive, 1), (wd.negative, 0)):
            counts = np.bincount(np.asarray(sample) - shift, minlength=15)[:15]
            expected = stats.poisson.pmf(ks, rate) * N
            keep = expected > 5
            chi2 = stats.chisquare(counts[keep], expected[keep] * counts[keep].sum() / expected[keep].sum())
            assert chi2.pvalue > P_MIN
        assert np.all(wd.positive - wd.negative == 1) == coupled


def test_categorical_parts():
    logits = jnp.array([0.2, -1.0, 1.3])
    wd = _draw(Categorical(logits), "logits")
    probs = np.asarray(jax.nn.softmax(logits))
    np.testing.assert_allclose(wd.constant[0], probs, rtol=1e-6)
    np.testing.assert_array_equal(wd.positive[0], [0, 1, 2])
    for j in range(3):
        freq = np.bincount(np.asarray(wd.negative[:, j]), minlength=3) / N
        assert np.all(np.abs(freq - probs) < 4 * np.sqrt(probs * (1 - probs) / N)), (freq, probs)


@pytest.mark.parametrize("param", ["probs", "logits"])
def test_bernoulli_parts(param):
    p = np.array([0.2, 0.9])
    dist = Bernoulli(probs=p) if param == "probs" else Bernoulli(logits=np.log(p / (1 - p)))
    wd = _draw(dist, param, n=2000)
    expected_c = np.ones(2) if param == "probs" else p * (1 - p)
    np.testing.assert_allclose(wd.constant[0], expected_c, rtol=1e-5)
    np.testing.assert_array_equal(np.diagonal(wd.positive, axis1=1, axis2=2), 1)
    np.testing.assert_array_equal(np.diagonal(wd.negative, axis1=1, axis2=2), 0)
    tol = 4 * np.sqrt(p[1] * (1 - p[1]) / 2000)
    np.testing.assert_allclose(np.mean(wd.positive[:, 0, 1]), p[1], atol=tol)


@pytest.mark.parametrize(
    "dist, x, reference",
    [
        (Gaussian(jnp.array([0.3, -2.0]), jnp.array([1.2, 0.4])), jnp.array([1.0, -1.5]),
         stats.norm.logpdf([1.0, -1.5], [0.3, -2.0], [1.2, 0.4]).sum()),
        (Categorical(jnp.array([0.1, 0.7, -0.4])), 1,
         np.log(np.exp(0.7) / np.exp([0.1, 0.7, -0.4]).sum())),
        (Bernoulli(probs=jnp.array([0.25, 0.6])), jnp.array([1, 0]), np.log(0.25 * 0.4)),
        (Bernoulli(logits=jnp.array([0.5])), jnp.array([1]),
         stats.bernoulli.logpmf(1, 1 / (1 + np.exp(-0.5)))),
        (Poisson(jnp.array([3.5, 0.2])), jnp.array([4, 0]), stats.poisson.logpmf([4, 0], [3.5, 0.2]).sum()),
    ],
)
def test_log_prob_matches_scipy(dist, x, reference):
    np.testing.assert_allclose(dist.log_prob(x), reference, rtol=1e-5)


@pytest.mark.parametrize(
    "dist, mean, var",
    [
        (Gaussian(jnp.array(1.0), jnp.array(2.0)), 1.0, 4.0),
        (Categorical(jnp.log(jnp.array([0.2, 0.3, 0.5]))), 1.3, 0.61),
        (Bernoulli(probs=jnp.array(0.3)), 0.3, 0.21),
        (Poisson(jnp.array(4.0)), 4.0, 4.0),
    ],
)
def test_sample_moments(dist, mean, var):
    x = np.asarray(dist.sample(KEY, (N,)), np.float64)
    assert x.shape == (N,)
    assert abs(x.mean() - mean) < 4 * np.sqrt(var / N)
    assert abs(x.var() - var) < 0.05 * var


def test_distributions_are_pytrees_under_jit_and_vmap():
    means = jnp.array([0.0, 1.0, 2.0])
    batch = jax.vmap(lambda m: Gaussian(m, jnp.array(1.0)))(means)
    np.testing.assert_array_equal(batch.mean, means)
    samples = jax.jit(jax.vmap(lambda d, k: d.sample(k)))(batch, jax.random.split(KEY, 3))
    assert samples.shape == (3,)
    # Gradients of log_prob come back as a distribution-shaped pytree, negative scale included.
    grad = jax.grad(lambda d: d.log_prob(jnp.array(0.0)))(Gaussian(jnp.array(0.0), jnp.array(1.0)))
    assert float(grad.scale) == -1.0


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: Gaussian(jnp.zeros(2), jnp.array([1.0, 0.0])),
         r"scale must lie in \(0.0, inf\).*got \[1. 0.\]"),
        (lambda: Gaussian(jnp.zeros(2), jnp.array([1.0, -3.0])), "bad entries: -3.0"),
        (lambda: Gaussian(jnp.array([0.0, jnp.nan]), jnp.ones(2)), "mean must be finite element-wise"),
        (lambda: Gaussian(jnp.zeros(2), jnp.ones(3)),
         r"mean and scale must have the same shape.*\(2,\).*\(3,\)"),
        (lambda: Poisson(jnp.array([1.0, 0.0])), r"rate must lie in \(0.0, inf\)"),
        (lambda: Bernoulli(probs=jnp.array([0.5, 1.2])), r"probs must lie in \[0.0, 1.0\].*1.2"),
        (lambda: Bernoulli(probs=-0.1), r"probs must lie in \[0.0, 1.0\]"),
        (lambda: Bernoulli(), "exactly one of probs or logits"),
        (lambda: Bernoulli(probs=0.5, logits=0.0), "exactly one of probs or logits"),
        (lambda: Categorical(jnp.zeros((2, 3))), r"logits must have shape \(K,\)"),
        (lambda: Categorical(jnp.array([0.0, jnp.inf])), "logits must be finite element-wise"),
        (lambda: Gaussian(0.0, 1.0).weak_derivative(KEY, "sigma"),
         "param must be one of 'mean', 'scale', got 'sigma'"),
    ],
)
def test_bad_parameters_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=1, max_size=4))
def test_scale_is_accepted_exactly_when_every_entry_is_positive(scales):
    scale = np.array(scales, np.float32)
    if np.all(scale > 0):
        Gaussian(np.zeros_like(scale), scale)
    else:
        with pytest.raises(ValueError, match=r"scale must lie in \(0.0, inf\)"):
            Gaussian(np.zeros_like(scale), scale)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 4), st.integers(0, 2**31 - 1))
def test_weak_derivative_pairs_differ_only_in_their_own_element(dim, seed):
    dist = Gaussian(np.linspace(-1.0, 1.0, dim), np.linspace(0.5, 2.0, dim))
    for param in dist.param_names:
        wd = dist.weak_derivative(jax.random.key(seed), param)
        assert wd.positive.shape == wd.negative.shape == (dim, dim)
        off_diagonal = ~np.eye(dim, dtype=bool)
        np.testing.assert_array_equal(np.asarray(wd.positive)[off_diagonal],
                                      np.asarray(wd.negative)[off_diagonal])


def test_rayleigh_draws_are_always_finite():
    # jax.random.rayleigh gives inf once in these 2^24 draws (its uniform hits 0);
    # ours clamps the uniform to (tiny, 1] and stays Rayleigh(1): mean sqrt(pi / 2).
    key, n = jax.random.key(0), 2**24
    assert not jnp.all(jnp.isfinite(jax.random.rayleigh(key, 1.0, (n,), jnp.float32)))
    r = rayleigh(key, (n,), jnp.float32)
    assert bool(jnp.all(jnp.isfinite(r)))
    assert abs(float(r.mean()) - math.sqrt(math.pi / 2)) < 4 * math.sqrt((4 - math.pi) / 2 / n)
