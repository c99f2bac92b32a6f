"""The interface every distribution family shares, and the helpers of their weak derivatives.

A weak (measure-valued) derivative writes the derivative of a density with respect to
one scalar parameter theta_i as a scaled difference of two probability densities,

    d/d theta_i p(x; theta) = c_i * (p_i^+(x) - p_i^-(x)),

so that d/d theta_i E_p[f(x)] = c_i * (E_{p_i^+}[f] - E_{p_i^-}[f]) (Hahn-Jordan
decomposition; Bhatt, Koppel and Krishnamurthy, "Policy Gradient using Weak Derivatives
for Reinforcement Learning", Example 1, eqs. (8)-(11); Mohamed et al. 2020, "Monte Carlo
Gradient Estimation in Machine Learning", Sec. 6 and Table 1).

Every family is a product over the elements of its parameters (the "event"): for the
derivative with respect to element i, the sample pair differs only in element i; every
other element is one draw from p shared by both members of the pair
(``replace_diagonal``). ``Categorical`` is the exception: one categorical variable whose K
logits are its K parameters. Distributions are immutable pytrees (``pytree_dataclass``), so
they pass through ``jax.jit`` and ``jax.vmap``.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp

from weakpg._src import validation

Array = jax.Array


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


def replace_diagonal(base: Array, values: Array) -> Array:
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


def pytree_dataclass(cls: type) -> type:
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


def sum_event(x: Array, event_ndim: int) -> Array:
    """``x`` summed over its last ``event_ndim`` axes (the event)."""
    return jnp.sum(x, axis=tuple(range(x.ndim - event_ndim, x.ndim)))
