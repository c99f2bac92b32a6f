"""Argument checks for the public boundary.

Every check raises ``ValueError`` naming the argument, the bad value and what is
allowed. Checks on array values run only on concrete arrays: inside ``jax.jit`` or
``jax.vmap`` the values are tracers and the caller's concrete inputs were checked
before the trace.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np


def is_concrete(x: Any) -> bool:
    """True when ``x`` is numbers or arrays whose values can be read.

    False for JAX tracers and for the placeholders JAX passes through pytree
    constructors (``object()``, ``ShapeDtypeStruct``), so checks skip them.
    """
    leaves = jax.tree.leaves(x)
    return bool(leaves) and all(
        isinstance(leaf, (int, float, np.ndarray, np.number))
        or (isinstance(leaf, jax.Array) and not isinstance(leaf, jax.core.Tracer))
        for leaf in leaves)


def _describe(x: np.ndarray) -> str:
    if x.size == 1:
        return repr(x.reshape(()).item())
    return np.array2string(x, threshold=8, precision=4)


def check_array(
        name: str, value: Any, *, low: float | None = None, high: float | None = None,
        low_open: bool = False, high_open: bool = False,
) -> None:
    """Raise unless every element of ``value`` is finite and inside the interval.

    The interval is ``[low, high]``, with either end open when asked.
    """
    if not is_concrete(value):
        return
    x = np.asarray(value, dtype=np.float64)
    lo = "(" if low_open else "["
    hi = ")" if high_open or high is None else "]"
    allowed = f"{lo}{'-inf' if low is None else low}, {'inf' if high is None else high}{hi}"
    bad = ~np.isfinite(x)
    if low is not None:
        bad |= (x <= low) if low_open else (x < low)
    if high is not None:
        bad |= (x >= high) if high_open else (x > high)
    if bad.any():
        raise ValueError(
                f"{name} must lie in {allowed} element-wise, got {_describe(x)} "
                f"(bad entries: {_describe(x[bad])})")


def check_finite(name: str, value: Any) -> None:
    """Raise unless every element of ``value`` is finite."""
    check_array(name, value)


def check_num_samples(num_samples: Any) -> int:
    """Return ``num_samples`` as an int after checking it is an integer >= 1."""
    if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)):
        raise ValueError(
                f"num_samples must be a Python int >= 1, got {num_samples!r} "
                f"of type {type(num_samples).__name__}")
    if num_samples < 1:
        raise ValueError(f"num_samples must be an int >= 1, got {num_samples}")
    return int(num_samples)


def check_same_shape(name_a: str, a: Any, name_b: str, b: Any) -> None:
    """Raise unless ``a`` and ``b`` have the same shape."""
    sa, sb = np.shape(a), np.shape(b)
    if sa != sb:
        raise ValueError(
                f"{name_a} and {name_b} must have the same shape, got {name_a}.shape={sa} "
                f"and {name_b}.shape={sb}")


def check_choice(name: str, value: Any, allowed: tuple[Any, ...]) -> None:
    """Raise unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise ValueError(
                f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
