"""Monte Carlo estimators of grad_theta E_{p(z; theta)}[f(z)].

Three estimators, each a pure function of ``(key, f, dist, num_samples, options)``:

* ``score_function``: mean of (f(z) - b) grad_theta log p(z; theta), z ~ p. Unbiased for
  any baseline b that does not depend on z, since E[grad log p] = 0 (REINFORCE;
  Williams 1992; "Unbiased Estimates in Policy Gradient").
* ``weak_derivative``: mean of c_i (f(z_i^+) - f(z_i^-)) per parameter element i, from
  the Hahn-Jordan decomposition of d p / d theta_i (see ``distributions``).
* ``pathwise``: mean of d f(mean + scale eps) / d theta, eps ~ N(0, 1); Gaussian only,
  f differentiable; for comparison.

Each returns a ``GradientEstimate`` keyed by the distribution's ``param_names``; its
sibling ``*_samples`` returns the N per-sample gradients themselves, ``{name: (N,) +
param shape}``, from which the estimate follows by ``summarize``. ``f`` is any callable
JAX can trace (a lambda, ``jnp.sum``, ``np.sum``, a builtin, a ``functools.partial``, a
bound method). The functions trace under ``jax.jit`` (with ``f`` and ``num_samples``
static) and ``jax.vmap`` (over batches of distributions).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from weakpg._src import validation
from weakpg._src.distributions import Distribution, Gaussian

Array = jax.Array
Baseline = None | float | Array | str | Callable[[Distribution], Array]


class GradientEstimate(NamedTuple):
    """A Monte Carlo gradient: sample mean and its standard error, per parameter.

    Attributes:
      mean: ``{param_name: array shaped like the parameter}``.
      stderr: the same structure; sample standard deviation / sqrt(num_samples),
        ``inf`` when ``num_samples == 1`` (no spread can be measured from one sample).
    """

    mean: dict[str, Array]
    stderr: dict[str, Array]


def summarize(samples: dict[str, Array]) -> GradientEstimate:
    """Mean and standard error over the leading (sample) axis of each array."""

    def stderr(x: Array) -> Array:
        n = x.shape[0]
        if n == 1:
            return jnp.full(x.shape[1:], jnp.inf, x.dtype)
        return jnp.std(x, axis=0, ddof=1) / jnp.sqrt(n)

    return GradientEstimate(
        mean={k: jnp.mean(v, axis=0) for k, v in samples.items()},
        stderr={k: stderr(v) for k, v in samples.items()})


def _check_inputs(f: Callable[[Array], Array], dist: Any, num_samples: Any) -> int:
    if not isinstance(dist, Distribution):
        raise ValueError(
            f"dist must be a weakpg Distribution (Gaussian, Categorical, Bernoulli, "
            f"Poisson), got {type(dist).__name__}")
    num_samples = validation.check_num_samples(num_samples)
    if not callable(f):
        raise ValueError(f"f must be a callable from one sample to a scalar, got {f!r}")
    sample = jax.ShapeDtypeStruct(dist.event_shape, jax.eval_shape(
        lambda d: d.sample(jax.random.key(0)), dist).dtype)
    # Wrapped: eval_shape caches on a weak reference to its function, which some
    # callables (np.sum, a numpy ufunc dispatcher) do not allow.
    out = jax.eval_shape(lambda x: f(x), sample)
    if out.shape != ():
        raise ValueError(
            f"f must map one sample of shape {dist.event_shape} to a scalar, "
            f"got output shape {out.shape}")
    return num_samples


def _grads_by_name(dist: Distribution, grads: Distribution) -> dict[str, Array]:
    return {name: getattr(grads, name) for name in dist.param_names}


def _broadcast_scalar(values: Array, like: Array) -> Array:
    """Reshape per-sample scalars (N,) to broadcast against ``like`` (N, ...)."""
    return values.reshape(values.shape + (1,) * (like.ndim - 1))


def _baseline_values(baseline: Baseline, dist: Distribution, fz: Array) -> Array:
    """Baseline per sample: 0, a constant, a function of the distribution, or leave-one-out."""
    if baseline is None:
        return jnp.zeros_like(fz)
    if baseline == "loo":
        return (jnp.sum(fz) - fz) / (fz.shape[0] - 1)
    value = baseline(dist) if callable(baseline) else baseline
    if jnp.shape(value) != ():
        raise ValueError(f"baseline must be a scalar, got shape {jnp.shape(value)}")
    validation.check_finite("baseline", value)
    return jnp.broadcast_to(jnp.asarray(value, fz.dtype), fz.shape)


def score_function(
    key: Array,
    f: Callable[[Array], Array],
    dist: Distribution,
    num_samples: int,
    *,
    baseline: Baseline = None,
) -> GradientEstimate:
    """Score-function (REINFORCE) estimate of grad E_p[f(z)]: ``summarize`` of
    ``score_function_samples`` (same arguments)."""
    return summarize(score_function_samples(key, f, dist, num_samples, baseline=baseline))


def score_function_samples(
    key: Array,
    f: Callable[[Array], Array],
    dist: Distribution,
    num_samples: int,
    *,
    baseline: Baseline = None,
) -> dict[str, Array]:
    """Per-sample score-function (REINFORCE) gradients of E_p[f(z)].

    Sample n: (f(z_n) - b_n) grad_theta log p(z_n; theta), z_n ~ p i.i.d., with
    z = ``dist.sample(key, (num_samples,))``.

    Args:
      key: PRNG key.
      f: map from one sample (shape ``dist.event_shape``) to a scalar.
      dist: the distribution p(.; theta); theta are its ``param_names``.
      num_samples: N >= 1 (N >= 2 for ``baseline="loo"``).
      baseline: b, independent of z_n: ``None`` (b = 0), a scalar constant, a callable
        ``dist -> scalar``, or ``"loo"``, the leave-one-out mean of f over the other
        N - 1 samples (independent of z_n, hence unbiased).

    Returns:
      ``{param_name: array of shape (num_samples,) + parameter shape}``.
    """
    num_samples = _check_inputs(f, dist, num_samples)
    if isinstance(baseline, str):
        validation.check_choice("baseline", baseline, ("loo",))
        if num_samples < 2:
            raise ValueError(f"baseline='loo' needs num_samples >= 2, got {num_samples}")
    elif baseline is not None and not callable(baseline):
        validation.check_finite("baseline", baseline)
    z = dist.sample(key, (num_samples,))
    fz = jax.vmap(f)(z)
    weights = fz - _baseline_values(baseline, dist, fz)
    scores = jax.vmap(jax.grad(lambda d, x: d.log_prob(x)), in_axes=(None, 0))(dist, z)
    scores = _grads_by_name(dist, scores)
    return {k: _broadcast_scalar(weights, s) * s for k, s in scores.items()}


def _eval_each(f: Callable[[Array], Array], xs: Array, param_shape: tuple[int, ...]) -> Array:
    """Apply f to each of the ``prod(param_shape)`` samples stacked in ``xs``."""
    event_shape = xs.shape[len(param_shape):]
    flat = xs.reshape((-1,) + event_shape)
    return jax.vmap(f)(flat).reshape(param_shape)


def weak_derivative(
    key: Array,
    f: Callable[[Array], Array],
    dist: Distribution,
    num_samples: int,
    *,
    coupled: bool = True,
) -> GradientEstimate:
    """Weak-derivative (measure-valued) estimate of grad E_p[f(z)]: ``summarize`` of
    ``weak_derivative_samples`` (same arguments)."""
    return summarize(weak_derivative_samples(key, f, dist, num_samples, coupled=coupled))


def weak_derivative_samples(
    key: Array,
    f: Callable[[Array], Array],
    dist: Distribution,
    num_samples: int,
    *,
    coupled: bool = True,
) -> dict[str, Array]:
    """Per-sample weak-derivative (measure-valued) gradients of E_p[f(z)].

    Sample n, parameter element i: c_i (f(z_{n,i}^+) - f(z_{n,i}^-)) with
    (c, z^+, z^-) from ``dist.weak_derivative``; 2 evaluations of f per element.

    Args:
      key: PRNG key.
      f: map from one sample to a scalar.
      dist: the distribution; every parameter in ``dist.param_names`` is estimated.
      num_samples: N >= 1 pairs per parameter element.
      coupled: draw each pair from common random numbers (see ``distributions``).

    Returns:
      ``{param_name: array of shape (num_samples,) + parameter shape}``.
    """
    num_samples = _check_inputs(f, dist, num_samples)
    keys = jax.random.split(key, len(dist.param_names))
    samples = {}
    for name, k in zip(dist.param_names, keys):
        param_shape = jnp.shape(getattr(dist, name))

        def one(k_n: Array, name: str = name, param_shape: tuple[int, ...] = param_shape) -> Array:
            c, positive, negative = dist.weak_derivative(k_n, name, coupled=coupled)
            return c * (_eval_each(f, positive, param_shape) - _eval_each(f, negative, param_shape))

        samples[name] = jax.vmap(one)(jax.random.split(k, num_samples))
    return samples


def pathwise(
    key: Array,
    f: Callable[[Array], Array],
    dist: Gaussian,
    num_samples: int,
) -> GradientEstimate:
    """Pathwise (reparameterisation) estimate of grad E_p[f(z)] for a Gaussian:
    ``summarize`` of ``pathwise_samples`` (same arguments)."""
    return summarize(pathwise_samples(key, f, dist, num_samples))


def pathwise_samples(
    key: Array,
    f: Callable[[Array], Array],
    dist: Gaussian,
    num_samples: int,
) -> dict[str, Array]:
    """Per-sample pathwise (reparameterisation) gradients of E_p[f(z)] for a Gaussian.

    Sample n: with z_n = mean + scale eps_n, eps_n ~ N(0, I) (the draws of
    ``dist.sample(key, (num_samples,))``): d/d mean = f'(z_n), d/d scale = f'(z_n) eps_n.
    f must be differentiable. Returns ``{"mean": (N,) + shape, "scale": (N,) + shape}``.
    """
    if not isinstance(dist, Gaussian):
        raise ValueError(
            f"pathwise needs a Gaussian distribution, got {type(dist).__name__}; "
            "use score_function or weak_derivative for discrete families")
    num_samples = _check_inputs(f, dist, num_samples)
    eps = jax.random.normal(key, (num_samples,) + dist.event_shape, jnp.result_type(float))
    z = jnp.asarray(dist.mean, eps.dtype) + jnp.asarray(dist.scale, eps.dtype) * eps
    grad_f = jax.vmap(jax.grad(f))(z)
    return {"mean": grad_f, "scale": grad_f * eps}
