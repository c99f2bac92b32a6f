"""Per-sample variance reduction of each control variate with each estimator.

The demo's problems (``weakpg demo``): d/d(mean, scale) E[z^2], z ~ N(1, 2^2), and
d/d rate E[x^2], x ~ Poisson(3); and, because the delta method is exact for a quadratic
f, d/d(mean, scale) E[exp(0.7 z)] and E[cos z], z ~ N(0.3, 0.8^2). For every estimator
(score function, weak derivative coupled and uncoupled, pathwise) and control variate
(delta method; a baseline, the moving average's control variate, at 1.0; both with the
held-out coefficient, M = N / 4)
it prints the per-sample variance of the plain and the controlled gradient samples and
their ratio (controlled / plain; the held-out draws are not counted). 100,000 samples,
seed 0. Run: ``python -m bench.control_variates``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from weakpg import Gaussian, Poisson, control_variates, estimators

NUM_SAMPLES = 100_000
ESTIMATORS = {
    "score function": estimators.score_function_samples,
    "weak derivative, coupled": estimators.weak_derivative_samples,
    "weak derivative, uncoupled": functools.partial(estimators.weak_derivative_samples, coupled=False),
    "pathwise": estimators.pathwise_samples,
}


def _square(z: jax.Array) -> jax.Array:
    return jnp.square(z.astype(jnp.result_type(float)))


PROBLEMS = {
    "E[z^2], z ~ N(1, 2^2)": (Gaussian(jnp.asarray(1.0), jnp.asarray(2.0)), _square),
    "E[x^2], x ~ Poisson(3)": (Poisson(jnp.asarray(3.0)), _square),
    "E[exp(0.7 z)], z ~ N(0.3, 0.8^2)": (Gaussian(jnp.asarray(0.3), jnp.asarray(0.8)),
                                         lambda z: jnp.exp(0.7 * z)),
    "E[cos z], z ~ N(0.3, 0.8^2)": (Gaussian(jnp.asarray(0.3), jnp.asarray(0.8)), jnp.cos),
}


def variances(key: jax.Array, estimator, f, dist, control_variate) -> tuple[dict, dict]:
    """Per-sample variances of the plain samples and of the controlled ones, same N draws."""
    held_out = NUM_SAMPLES // 4
    plain = estimator(key, f, dist, NUM_SAMPLES + held_out)
    controlled = control_variates.controlled_samples(key, estimator, f, dist, NUM_SAMPLES, control_variate)
    return ({k: float(jnp.var(v[:NUM_SAMPLES], ddof=1)) for k, v in plain.items()},
            {k: float(jnp.var(v, ddof=1)) for k, v in controlled.items()})


def main() -> None:
    key = jax.random.key(0)
    print(f"{'problem':34} {'estimator':27} {'control variate':16} {'param':6} "
          f"{'plain var':>11} {'controlled':>11} {'ratio':>9}")
    for problem, (dist, f) in PROBLEMS.items():
        cvs = {"baseline (1.0)": control_variates.baseline(1.0)}
        if isinstance(dist, Gaussian):
            cvs["delta method"] = control_variates.delta_method(f, dist)
        for est_name, estimator in ESTIMATORS.items():
            if est_name == "pathwise" and not isinstance(dist, Gaussian):
                continue
            for cv_name, cv in cvs.items():
                plain, controlled = variances(key, estimator, f, dist, cv)
                for param in plain:
                    print(f"{problem:34} {est_name:27} {cv_name:16} {param:6} {plain[param]:11.4g} "
                          f"{controlled[param]:11.4g} {controlled[param] / plain[param]:9.3g}")


if __name__ == "__main__":
    main()
