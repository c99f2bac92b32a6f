"""Statistical assertions: compare a Monte Carlo estimate with an exact value.

One helper for every statistical test in weakpg: an estimate with standard error s
agrees with the exact value x when |mean - x| <= k s for every element (k = 4 by
default: a correct estimator fails with probability about 6e-5 per element).
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np


def z_scores(mean: Any, stderr: Any, exact: Any) -> Any:
    """Element-wise (mean - exact) / stderr for matching pytrees.

    A zero standard error gives z = 0 when the mean equals the exact value and inf
    otherwise, so a deterministic but wrong estimator is never accepted.
    """

    def one(m: Any, s: Any, x: Any) -> np.ndarray:
        m, s, x = (np.asarray(v, dtype=np.float64) for v in (m, s, x))
        diff = m - x
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(s > 0, diff / s, np.where(diff == 0, 0.0, np.inf))

    return jax.tree.map(one, mean, stderr, exact)


def assert_unbiased(estimate: Any, exact: Any, *, num_stderr: float = 4.0) -> None:
    """Raise AssertionError unless every element lies within ``num_stderr`` standard errors.

    Args:
      estimate: anything with ``.mean`` and ``.stderr`` pytrees (a GradientEstimate).
      exact: the exact value, a pytree shaped like ``estimate.mean``.
      num_stderr: the allowed |z|.
    """
    z = z_scores(estimate.mean, estimate.stderr, exact)
    stderr_ok = all(np.all(np.isfinite(np.asarray(s))) for s in jax.tree.leaves(estimate.stderr))
    worst = max(float(np.max(np.abs(v))) for v in jax.tree.leaves(z))
    if not stderr_ok or not worst <= num_stderr:
        raise AssertionError(
            f"estimate differs from the exact value by up to {worst:.2f} standard errors "
            f"(allowed {num_stderr}); z-scores: {jax.tree.map(lambda v: np.round(v, 2), z)}; "
            f"mean: {estimate.mean}; exact: {exact}; stderr: {estimate.stderr}")
