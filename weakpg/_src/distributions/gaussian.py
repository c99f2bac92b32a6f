"""The diagonal Gaussian and its weak derivatives (paper, Example 1)."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from weakpg._src import validation
from weakpg._src.distributions.base import (
    Distribution,
    WeakDerivative,
    pytree_dataclass,
    replace_diagonal,
    sum_event,
)
from weakpg._src.validation import as_float

Array = jax.Array


def rayleigh(key: Array, shape: tuple[int, ...], dtype: Any) -> Array:
    """R ~ Rayleigh(1), R = sqrt(-2 log U) with U ~ U(tiny, 1]: always finite.

    ``jax.random.rayleigh`` returns inf when its uniform draw is 0 (probability 2^-23
    per float32 draw), which would turn a whole PG-JD estimate into NaN.
    """
    u = jax.random.uniform(key, shape, dtype, minval=jnp.finfo(dtype).tiny, maxval=1.0)
    return jnp.sqrt(-2.0 * jnp.log(u))


@pytree_dataclass
class Gaussian(Distribution):
    """Diagonal Gaussian N(mean, diag(scale^2)); ``mean`` and ``scale`` share one shape.

    Weak derivatives (per element i, other elements shared between the pair):
      mean:  c = 1 / (scale sqrt(2 pi)), x+ = mean + scale R, x- = mean - scale R,
             R ~ Rayleigh(1) (paper, Example 1). Coupled: one R for both parts, so
             x- mirrors x+ about the mean: the part of f even about the mean cancels
             exactly, while the noise of the odd part doubles (for linear f the
             variance is twice the uncoupled one). Uncoupled: independent R+ and R-.
      scale: c = 1 / scale, x+ = mean + scale M, M ~ double-sided Maxwell,
             x- ~ N(mean, scale^2) itself. Coupled: x- = mean + scale M U with
             U ~ Uniform(0, 1), since M U ~ N(0, 1); uncoupled: an independent draw.
    """

    mean: Any
    scale: Any

    def __post_init__(self):
        validation.check_finite("mean", self.mean)
        validation.check_array("scale", self.scale, low=0.0, low_open=True)
        validation.check_same_shape("mean", self.mean, "scale", self.scale)

    @property
    def param_names(self) -> tuple[str, ...]:
        return ("mean", "scale")

    @property
    def event_shape(self) -> tuple[int, ...]:
        return jnp.shape(self.mean)

    def sample(self, key: Array, shape: tuple[int, ...] = ()) -> Array:
        eps = jax.random.normal(key, tuple(shape) + self.event_shape, jnp.result_type(float))
        return as_float(self.mean) + as_float(self.scale) * eps

    def log_prob(self, x: Array) -> Array:
        z = (as_float(x) - as_float(self.mean)) / as_float(self.scale)
        log_density = -0.5 * z**2 - jnp.log(as_float(self.scale)) - 0.5 * math.log(2 * math.pi)
        return sum_event(log_density, len(self.event_shape))

    def weak_derivative(self, key: Array, param: str, *, coupled: bool = True) -> WeakDerivative:
        self._check_param(param)
        mean, scale = as_float(self.mean), as_float(self.scale)
        k_base, k_pos, k_neg = jax.random.split(key, 3)
        shape, dtype = self.event_shape, mean.dtype
        base = self.sample(k_base)
        if param == "mean":
            r_pos = rayleigh(k_pos, shape, dtype)
            r_neg = r_pos if coupled else rayleigh(k_neg, shape, dtype)
            constant = 1.0 / (scale * math.sqrt(2 * math.pi))
            positive, negative = mean + scale * r_pos, mean - scale * r_neg
        else:
            m = jax.random.double_sided_maxwell(k_pos, 0.0, 1.0, shape, dtype)
            if coupled:
                eps = m * jax.random.uniform(k_neg, shape, dtype)
            else:
                eps = jax.random.normal(k_neg, shape, dtype)
            constant = 1.0 / scale
            positive, negative = mean + scale * m, mean + scale * eps
        return WeakDerivative(
            constant, replace_diagonal(base, positive), replace_diagonal(base, negative))
