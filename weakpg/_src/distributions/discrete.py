"""Discrete families: Categorical, Bernoulli and Poisson, and their weak derivatives.

Their parts are point masses or shifted draws (Mohamed et al. 2020, Table 1), so most
of them need no common random numbers.
"""

from __future__ import annotations

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


@pytree_dataclass
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


@pytree_dataclass
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
        return sum_event(log_mass, len(self.event_shape))

    def weak_derivative(self, key: Array, param: str, *, coupled: bool = True) -> WeakDerivative:
        self._check_param(param)
        p = self.p
        constant = jnp.ones_like(p) if param == "probs" else p * (1 - p)
        base = self.sample(key)
        ones, zeros = jnp.ones_like(base), jnp.zeros_like(base)
        return WeakDerivative(
            constant, replace_diagonal(base, ones), replace_diagonal(base, zeros))


@pytree_dataclass
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
        return sum_event(log_mass, len(self.event_shape))

    def weak_derivative(self, key: Array, param: str, *, coupled: bool = True) -> WeakDerivative:
        self._check_param(param)
        k_base, k_pos, k_neg = jax.random.split(key, 3)
        base = self.sample(k_base)
        n_pos = self.sample(k_pos)
        n_neg = n_pos if coupled else self.sample(k_neg)
        return WeakDerivative(
            jnp.ones_like(as_float(self.rate)),
            replace_diagonal(base, n_pos + 1), replace_diagonal(base, n_neg))
