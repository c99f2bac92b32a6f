"""Argument checks for the public boundary.

Every check raises ``ValueError`` naming the argument, the bad value and what is
allowed. Checks on array values run only on concrete arrays: inside ``jax.jit`` or
``jax.vmap`` the values are tracers and the caller's concrete inputs were checked
before the trace.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from weakpg._src.config import check_choice as check_choice  # one rule, shared with the schema


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
    if not bad.any():
        return
    rule = "be finite" if low is None and high is None else f"lie in {allowed}"
    if x.size == 1:
        raise ValueError(f"{name} must {rule}, got {_describe(x)}")
    raise ValueError(
        f"{name} must {rule} element-wise, got {_describe(x)} (bad entries: {_describe(x[bad])})")


def check_finite(name: str, value: Any) -> None:
    """Raise unless every element of ``value`` is finite."""
    check_array(name, value)


def first_non_finite(tree: Any) -> str | None:
    """The key path (``jax.tree_util.keystr``) of the first leaf of ``tree`` holding a nan or
    an inf; None when every entry is finite."""
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        if not np.isfinite(np.asarray(leaf)).all():
            return jax.tree_util.keystr(path)
    return None


def check_positive_int(name: str, value: Any) -> int:
    """Return ``value`` as an int after checking it is an integer >= 1."""
    if (isinstance(value, bool) or not isinstance(value, (int, np.integer))
            or value < 1):
        raise ValueError(f"{name} must be a Python int >= 1, got {value!r}")
    return int(value)


def check_num_samples(num_samples: Any) -> int:
    """Return ``num_samples`` as an int after checking it is an integer >= 1."""
    return check_positive_int("num_samples", num_samples)


def check_shape(name: str, value: Any, expected: tuple[int, ...]) -> None:
    """Raise unless ``value`` has shape ``expected``."""
    got = np.shape(value)
    if got != expected:
        raise ValueError(f"{name} must have shape {expected}, got shape {got}")


def as_float(x: Any) -> jax.Array:
    """``x`` as an array of the default float type (float32, or float64 under x64)."""
    return jnp.asarray(x, dtype=jnp.result_type(float))


def check_same_shape(name_a: str, a: Any, name_b: str, b: Any) -> None:
    """Raise unless ``a`` and ``b`` have the same shape."""
    sa, sb = np.shape(a), np.shape(b)
    if sa != sb:
        raise ValueError(
                f"{name_a} and {name_b} must have the same shape, got {name_a}.shape={sa} "
                f"and {name_b}.shape={sb}")
