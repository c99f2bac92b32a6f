"""The introductory demo: every estimator of one gradient, next to the exact value.

Two problems with closed-form gradients:
  Gaussian: d/d(mean, scale) E[z^2], z ~ N(mean, scale^2); exact (2 mean, 2 scale).
  Poisson:  d/d rate E[x^2], x ~ Poisson(rate); exact 1 + 2 rate.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from weakpg._src import estimators
from weakpg._src.distributions import Distribution, Gaussian, Poisson

Array = jax.Array


class DemoRow(NamedTuple):
    """One estimator's result for one scalar parameter."""

    problem: str
    parameter: str
    estimator: str
    mean: float
    stderr: float
    variance_per_sample: float
    exact: float


def _square(z: Array) -> Array:
    return jnp.square(z.astype(jnp.result_type(float)))


def _estimators(dist: Distribution) -> dict[str, Callable[[Array, int], estimators.GradientEstimate]]:
    f = _square
    table = {
        "score function": lambda k, n: estimators.score_function(k, f, dist, n),
        "score function, loo baseline": lambda k, n: estimators.score_function(
            k, f, dist, n, baseline="loo"),
        "weak derivative, coupled": lambda k, n: estimators.weak_derivative(k, f, dist, n),
        "weak derivative, uncoupled": lambda k, n: estimators.weak_derivative(
            k, f, dist, n, coupled=False),
    }
    if isinstance(dist, Gaussian):
        table["pathwise"] = lambda k, n: estimators.pathwise(k, f, dist, n)
    return table


def run_demo(key: Array, num_samples: int, *, mean: float = 1.0, scale: float = 2.0,
             rate: float = 3.0) -> list[DemoRow]:
    """Estimate both demo gradients with every applicable estimator."""
    problems = [
        (f"E[z^2], z ~ N({mean:g}, {scale:g}^2)", Gaussian(jnp.asarray(mean), jnp.asarray(scale)),
         {"mean": 2 * mean, "scale": 2 * scale}),
        (f"E[x^2], x ~ Poisson({rate:g})", Poisson(jnp.asarray(rate)), {"rate": 1 + 2 * rate}),
    ]
    rows = []
    for problem_key, (problem, dist, exact) in zip(jax.random.split(key, len(problems)), problems):
        for name, estimate_fn in _estimators(dist).items():
            est = estimate_fn(problem_key, num_samples)
            for param, value in exact.items():
                stderr = float(est.stderr[param])
                rows.append(DemoRow(problem, param, name, float(est.mean[param]), stderr,
                                    stderr**2 * num_samples, value))
    return rows
