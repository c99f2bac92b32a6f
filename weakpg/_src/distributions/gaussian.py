"""The diagonal Gaussian and its weak derivatives (paper, Example 1)."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from weakpg._src import validation
from weakpg._src.config import COUPLINGS
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
    """R ~ Rayleigh(1), R = sqrt(-2 log U) with U ~ U[tiny, 1): always finite.

    ``jax.random.rayleigh`` returns inf when its uniform draw is 0 (probability 2^-23
    per float32 draw), which would turn a whole PG-JD estimate into NaN.
    """
    return jnp.sqrt(-2.0 * jnp.log(_uniform(key, shape, dtype)))


def comonotone_rayleigh_pair(key: Array, shape: tuple[int, ...], dtype: Any) -> tuple[Array, Array]:
    """(F_R^{-1}(1 - U), F_R^{-1}(U)) from one U, F_R^{-1}(u) = sqrt(-2 log(1 - u)): two
    Rayleigh(1) draws, the first equal to ``rayleigh(key, ...)``'s, antitone in each other.

    The Gaussian mean's parts x+ = mean + scale R+, x- = mean - scale R- are then both
    decreasing in U: the comonotone (quantile) coupling of the two parts.
    """
    u = _uniform(key, shape, dtype)
    return jnp.sqrt(-2.0 * jnp.log(u)), jnp.sqrt(-2.0 * jnp.log1p(-u))


def _uniform(key: Array, shape: tuple[int, ...], dtype: Any) -> Array:
    """U ~ U[tiny, 1): log U and log(1 - U) are both finite."""
    return jax.random.uniform(key, shape, dtype, minval=jnp.finfo(dtype).tiny, maxval=1.0)


@pytree_dataclass
class Gaussian(Distribution):
    """Diagonal Gaussian N(mean, diag(scale^2)); ``mean`` and ``scale`` share one shape.

    Weak derivatives (per element i, other elements shared between the pair):
      mean:  c = 1 / (scale sqrt(2 pi)), x+ = mean + scale R+, x- = mean - scale R-,
             R+, R- ~ Rayleigh(1) (paper, Example 1). Uncoupled: independent R+ and R-.
             Coupled, ``coupling="mirror"``: R- = R+, so x- mirrors x+ about the mean:
             the part of f even about the mean cancels exactly, while the noise of the
             odd part doubles (for linear f the variance is twice the uncoupled one).
             Coupled, ``coupling="quantile"``: x+ = F+^{-1}(V), x- = F-^{-1}(V) from one
             V ~ U(0, 1), the comonotone coupling of the two parts: R+ = F_R^{-1}(V),
             R- = F_R^{-1}(1 - V), F_R^{-1}(v) = sqrt(-2 log(1 - v)). For monotone f it
             minimises Var[f(x+) - f(x-)] over all couplings (linear f: 2 Var[R] (1 + rho)
             with rho = corr(R+, R-) = -0.947, 38x below mirror); the even part of f no
             longer cancels.
      scale: c = 1 / scale, x+ = mean + scale M, M ~ double-sided Maxwell,
             x- ~ N(mean, scale^2) itself. Coupled: x- = mean + scale M U with
             U ~ Uniform(0, 1), since M U ~ N(0, 1); uncoupled: an independent draw.
             ``coupling`` is for the mean only.
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

    def weak_derivative(self, key: Array, param: str, *, coupled: bool = True,
                        coupling: str = "mirror") -> WeakDerivative:
        self._check_param(param)
        validation.check_choice("coupling", coupling, COUPLINGS)
        if coupling != "mirror" and (param != "mean" or not coupled):
            raise ValueError(f"coupling={coupling!r} couples the mean's pair and needs param='mean' and "
                             f"coupled=True, got param={param!r} and coupled={coupled!r}")
        mean, scale = as_float(self.mean), as_float(self.scale)
        k_base, k_pos, k_neg = jax.random.split(key, 3)
        shape, dtype = self.event_shape, mean.dtype
        base = self.sample(k_base)
        if param == "mean":
            if coupling == "quantile":
                r_pos, r_neg = comonotone_rayleigh_pair(k_pos, shape, dtype)
            else:
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
