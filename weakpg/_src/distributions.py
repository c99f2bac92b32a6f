"""Distributions with samplers, log-densities and weak derivatives.

A weak (measure-valued) derivative writes the derivative of a density with respect to
one scalar parameter theta_i as a scaled difference of two probability densities,

    d/d theta_i p(x; theta) = c_i * (p_i^+(x) - p_i^-(x)),

so that d/d theta_i E_p[f(x)] = c_i * (E_{p_i^+}[f] - E_{p_i^-}[f]) (Hahn-Jordan
decomposition; Bhatt, Koppel and Krishnamurthy, "Policy Gradient using Weak Derivatives
for Reinforcement Learning", Example 1, eqs. (8)-(11); Mohamed et al. 2020, "Monte Carlo
Gradient Estimation in Machine Learning", Sec. 6 and Table 1).

Every family here is a product over the elements of its parameters (the "event"):
``Gaussian(mean[d], scale[d])`` is a diagonal Gaussian on R^d. For the derivative with
respect to element i, the sample pair differs only in element i; every other element is
one draw from p shared by both members of the pair. ``Categorical`` is the exception: one
categorical variable whose K logits are its K parameters.

Distributions are immutable pytrees, so they pass through ``jax.jit`` and ``jax.vmap``;
batches of distributions are handled with ``jax.vmap``.
"""

from __future__ import annotations

import abc
import dataclasses
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from weakpg._src import validation
from weakpg._src.validation import as_float

Array = jax.Array


def rayleigh(key: Array, shape: tuple[int, ...], dtype: Any) -> Array:
    """R ~ Rayleigh(1), R = sqrt(-2 log U) with U ~ U(tiny, 1]: always finite.

    ``jax.random.rayleigh`` returns inf when its uniform draw is 0 (probability 2^-23
    per float32 draw), which would turn a whole PG-JD estimate into NaN.
    """
    u = jax.random.uniform(key, shape, dtype, minval=jnp.finfo(dtype).tiny, maxval=1.0)
    return jnp.sqrt(-2.0 * jnp.log(u))


class WeakDerivative(NamedTuple):
    """One draw of the weak derivative of a distribution w.r.t. one parameter array.

    For a parameter of shape P and samples of shape E (the event shape):

    Attributes:
      constant: c, shape P; d/d theta_i p = c_i (p_i^+ - p_i^-).
      positive: shape P + E; ``positive[i]`` is a draw from p_i^+.
      negative: shape P + E; ``negative[i]`` is a draw from p_i^-.
    """

    constant: Array
    positive: Array
    negative: Array



def _replace_diagonal(base: Array, values: Array) -> Array:
    """Stack copies of ``base`` (shape E) with element i replaced by ``values[i]``.

    Returns shape E + E: entry ``[i]`` equals ``base`` except at i, where it is
    ``values[i]``. For a scalar event the result is ``values``.
    """
    shape = base.shape
    n = base.size
    flat = jnp.where(jnp.eye(n, dtype=bool), values.reshape(1, n), base.reshape(1, n))
    return flat.reshape(shape + shape)


class Distribution(abc.ABC):
    """Interface shared by every family.

    ``param_names`` lists the fields that are differentiable parameters; estimators
    return gradients keyed by these names.
    """

    @property
    @abc.abstractmethod
    def param_names(self) -> tuple[str, ...]:
        """Names of the differentiable parameter fields."""

    @property
    @abc.abstractmethod
    def event_shape(self) -> tuple[int, ...]:
        """Shape of one sample."""

    @abc.abstractmethod
    def sample(self, key: Array, shape: tuple[int, ...] = ()) -> Array:
        """Draw samples of shape ``shape + event_shape``."""

    @abc.abstractmethod
    def log_prob(self, x: Array) -> Array:
        """Log density (or mass) of ``x`` (shape ``... + event_shape``), summed over the event."""

    @abc.abstractmethod
    def weak_derivative(self, key: Array, param: str, *, coupled: bool = True) -> WeakDerivative:
        """One draw of (c, positive part, negative part) for parameter ``param``.

        With ``coupled=True`` the two parts are drawn from common random numbers
        where the family has a coupling (see each family's docstring).
        """

    def _check_param(self, param: str) -> None:
        validation.check_choice("param", param, self.param_names)


def _pytree_dataclass(cls: type) -> type:
    """Frozen dataclass registered as a pytree whose fields are all data leaves.

    Unflattening bypasses ``__init__``: JAX rebuilds distributions from tracers,
    placeholders and gradients (a negative "scale" cotangent is fine), and the
    argument checks in ``__post_init__`` are for users' constructions only.
    """
    cls = dataclasses.dataclass(frozen=True)(cls)
    names = tuple(f.name for f in dataclasses.fields(cls))

    def flatten(obj):
        return tuple(getattr(obj, n) for n in names), None

    def unflatten(_, children):
        obj = object.__new__(cls)
        for n, child in zip(names, children):
            object.__setattr__(obj, n, child)
        return obj

    jax.tree_util.register_pytree_node(cls, flatten, unflatten)
    return cls


@_pytree_dataclass
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
        return _sum_event(log_density, len(self.event_shape))

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
            constant, _replace_diagonal(base, positive), _replace_diagonal(base, negative))


@_pytree_dataclass
class Categorical(Distribution):
    """Categorical over {0, ..., K-1} with probabilities softmax(logits), logits shape (K,).

    Weak derivative w.r.t. logit j: d pi_k / d l_j = pi_j (delta_jk - pi_k), so
    c_j = pi_j, the positive part is the point mass on j and the negative part is pi.
    The positive part is deterministic, so ``coupled`` has no effect: each j gets its
    own draw from pi.
    """

    logits: Any

    def __post_init__(self):
        validation.check_finite("logits", self.logits)
        if validation.is_concrete(self.logits) and jnp.ndim(self.logits) != 1:
            raise ValueError(
                f"logits must have shape (K,) with K >= 1, got shape {jnp.shape(self.logits)}")

    @property
    def param_names(self) -> tuple[str, ...]:
        return ("logits",)

    @property
    def event_shape(self) -> tuple[int, ...]:
        return ()

    @property
    def probs(self) -> Array:
        return jax.nn.softmax(as_float(self.logits))

    def sample(self, key: Array, shape: tuple[int, ...] = ()) -> Array:
        return jax.random.categorical(key, as_float(self.logits), shape=tuple(shape))

    def log_prob(self, x: Array) -> Array:
        return jax.nn.log_softmax(as_float(self.logits))[x]

    def weak_derivative(self, key: Array, param: str, *, coupled: bool = True) -> WeakDerivative:
        self._check_param(param)
        num_classes = jnp.shape(self.logits)[0]
        return WeakDerivative(
            self.probs, jnp.arange(num_classes), self.sample(key, (num_classes,)))


@_pytree_dataclass
class Bernoulli(Distribution):
    """Independent Bernoulli variables, given either ``probs`` in [0, 1] or ``logits``.

    Samples are int32 in {0, 1}. The differentiable parameter is whichever field was
    given. Weak derivative per element (Mohamed et al. 2020, Table 1):
      probs:  c = 1, positive part the point mass on 1, negative part the point mass on 0;
      logits: c = p (1 - p) with the same parts (chain rule through p = sigmoid(logit)).
    Both parts are deterministic, so ``coupled`` has no effect.
    """

    probs: Any = None
    logits: Any = None

    def __post_init__(self):
        if (self.probs is None) == (self.logits is None):
            raise ValueError(
                "Bernoulli takes exactly one of probs or logits, got "
                f"probs={self.probs!r} and logits={self.logits!r}")
        if self.probs is not None:
            validation.check_array("probs", self.probs, low=0.0, high=1.0)
        else:
            validation.check_finite("logits", self.logits)

    @property
    def param_names(self) -> tuple[str, ...]:
        return ("probs",) if self.probs is not None else ("logits",)

    @property
    def event_shape(self) -> tuple[int, ...]:
        return jnp.shape(self.probs if self.probs is not None else self.logits)

    @property
    def p(self) -> Array:
        """Success probabilities."""
        return as_float(self.probs) if self.probs is not None else jax.nn.sigmoid(as_float(self.logits))

    def sample(self, key: Array, shape: tuple[int, ...] = ()) -> Array:
        draws = jax.random.bernoulli(key, self.p, tuple(shape) + self.event_shape)
        return draws.astype(jnp.int32)

    def log_prob(self, x: Array) -> Array:
        x = as_float(x)
        if self.probs is not None:
            log_mass = jax.scipy.special.xlogy(x, self.p) + jax.scipy.special.xlog1py(1 - x, -self.p)
        else:
            logits = as_float(self.logits)
            log_mass = x * jax.nn.log_sigmoid(logits) + (1 - x) * jax.nn.log_sigmoid(-logits)
        return _sum_event(log_mass, len(self.event_shape))

    def weak_derivative(self, key: Array, param: str, *, coupled: bool = True) -> WeakDerivative:
        self._check_param(param)
        p = self.p
        constant = jnp.ones_like(p) if param == "probs" else p * (1 - p)
        base = self.sample(key)
        ones, zeros = jnp.ones_like(base), jnp.zeros_like(base)
        return WeakDerivative(
            constant, _replace_diagonal(base, ones), _replace_diagonal(base, zeros))


@_pytree_dataclass
class Poisson(Distribution):
    """Independent Poisson variables with ``rate`` > 0; samples are int32.

    Weak derivative per element: d/d lambda Pois(k; lambda) = Pois(k - 1; lambda) -
    Pois(k; lambda), so c = 1, positive part 1 + Poisson(lambda), negative part
    Poisson(lambda). Coupled: x+ = N + 1 and x- = N from one draw N.
    """

    rate: Any

    def __post_init__(self):
        validation.check_array("rate", self.rate, low=0.0, low_open=True)

    @property
    def param_names(self) -> tuple[str, ...]:
        return ("rate",)

    @property
    def event_shape(self) -> tuple[int, ...]:
        return jnp.shape(self.rate)

    def sample(self, key: Array, shape: tuple[int, ...] = ()) -> Array:
        return jax.random.poisson(key, as_float(self.rate), tuple(shape) + self.event_shape)

    def log_prob(self, x: Array) -> Array:
        x, rate = as_float(x), as_float(self.rate)
        log_mass = jax.scipy.special.xlogy(x, rate) - rate - jax.scipy.special.gammaln(x + 1)
        return _sum_event(log_mass, len(self.event_shape))

    def weak_derivative(self, key: Array, param: str, *, coupled: bool = True) -> WeakDerivative:
        self._check_param(param)
        k_base, k_pos, k_neg = jax.random.split(key, 3)
        base = self.sample(k_base)
        n_pos = self.sample(k_pos)
        n_neg = n_pos if coupled else self.sample(k_neg)
        return WeakDerivative(
            jnp.ones_like(as_float(self.rate)),
            _replace_diagonal(base, n_pos + 1), _replace_diagonal(base, n_neg))


def _sum_event(x: Array, event_ndim: int) -> Array:
    return jnp.sum(x, axis=tuple(range(x.ndim - event_ndim, x.ndim)))
