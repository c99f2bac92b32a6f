"""Mean-squared error of one policy-gradient estimate at equal environment-step budgets.

For a budget of E environment steps per estimate, every estimator gets
num_samples = round(E / expected steps per sample), where a sample with b branches costs
T' + b (T + 1) steps, T', T ~ Geom(1 - gamma) on {0, 1, ...}, so (b + gamma) / (1 - gamma)
on average: b = 1 for PG-SF (and its value baseline), b = 2 for PG-SF with a roll-out
baseline and for PG-JD with one action dimension (one phantom pair per dimension).
R independent estimates give the empirical MSE = mean_r ||g_r - grad J||^2 and its
standard error.

Problems: the scalar LQR of ``weakpg._src.app.studies.problems`` (exact gradient) at gamma 0.9
and 0.99, and the Pendulum-v1 test bed of ``weakpg._src.app.studies.variance_measure`` (RBF
features, fixed weights) at gamma 0.95, whose gradient is a large-sample PG-JD reference whose own
squared error is checked against the MSEs it is used for. The estimators and the step
accounting are those of the studies (``weakpg study variance`` measures the per-sample
variances behind these MSEs).

Run ``python -m bench.variance`` (about 4 minutes on 2 CPU cores) or ``--quick``.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import weakpg
from weakpg._src.app.studies import problems, variance_measure
from weakpg._src.app.studies.problems import ESTIMATORS, branches_per_sample, num_samples_for_budget

Array = jax.Array
Params = Any

# JD coupled / SF MSE ratios reported by the prototype, as (low, high).
PROTOTYPE_RATIOS = {
    "LQR, gamma=0.9": (0.02, 0.02),
    "LQR, gamma=0.99": (0.0007, 0.0007),
    "Pendulum-v1, gamma=0.95": (0.0004, 0.0025),
}
TARGET_BASELINE_FACTOR = 3.0  # JD coupled should be 3-4x below the best SF with baseline
REFERENCE_MAX_FRACTION = 0.02  # reference squared error / smallest reported MSE

PENDULUM_SIGMA = 1.0


@dataclasses.dataclass(frozen=True)
class Config:
    """Budgets of one run.

    Attributes:
      lqr_budget: env steps per LQR estimate.
      lqr_repetitions: independent estimates per estimator on the LQR.
      pendulum_budget: env steps per Pendulum estimate.
      pendulum_repetitions: independent estimates per estimator on Pendulum.
      reference_factor: the Pendulum reference has this many times the samples of one
        JD coupled estimate, so its squared error is about 1/reference_factor of that
        estimate's MSE.
      reference_chunk: samples per call when building the reference (bounds memory).
    """

    lqr_budget: int = 100_000
    lqr_repetitions: int = 200
    pendulum_budget: int = 100_000
    pendulum_repetitions: int = 300
    reference_factor: int = 200
    reference_chunk: int = 20_000


QUICK = Config(lqr_budget=5_000, lqr_repetitions=8, pendulum_budget=3_000,
               pendulum_repetitions=8, reference_factor=100, reference_chunk=20_000)


class Problem(NamedTuple):
    """A gradient to estimate.

    Attributes:
      name: label in the tables.
      env, policy, params: what is differentiated (params is a pytree).
      gamma: discount factor.
      truth: grad J at params (pytree like params), exact or a reference.
      truth_sq_error: estimated ||truth - grad J||^2 (0 when exact).
    """

    name: str
    env: weakpg.envs.Environment
    policy: weakpg.policies.Policy
    params: Params
    gamma: float
    truth: Params
    truth_sq_error: float


class Row(NamedTuple):
    """One estimator's figures on one problem."""

    estimator: str
    num_samples: int
    env_steps: float  # mean over repetitions
    mse: float
    mse_stderr: float


def squared_norm(tree: Params) -> Array:
    """sum of squares over every leaf of a pytree."""
    return sum(jnp.sum(jnp.square(x)) for x in jax.tree.leaves(tree))


def measure(key: Array, problem: Problem, *, budget: int, repetitions: int) -> list[Row]:
    """Empirical MSE of every entry of ``ESTIMATORS`` at ``budget`` env steps per estimate."""
    rows = []
    for index, (name, options) in enumerate(ESTIMATORS):
        b = branches_per_sample(options, problem.env, problem.policy)
        num_samples = num_samples_for_budget(budget, problem.gamma, b)
        estimate = jax.jit(weakpg.make_gradient_estimator(
            problem.env, problem.policy, gamma=problem.gamma, num_samples=num_samples, **options))
        keys = jax.random.split(jax.random.fold_in(key, index), repetitions)
        repeats = variance_measure.repeat(estimate, keys, problem.params)
        errors = np.sum(np.square(repeats.means - problems.flatten(problem.truth)), axis=1)
        rows.append(Row(name, num_samples, float(repeats.env_steps.mean()), float(errors.mean()),
                        float(errors.std(ddof=1) / np.sqrt(repetitions))))
    return rows


def lqr_problem(gamma: float) -> Problem:
    """The studies' scalar LQR: A=0.9, B=0.5, Q=1, R=0.1, noise 0.1, s_0 ~ N(0, 1);
    a = -0.4 s + 0.5 eps."""
    lqr = problems.lqr_problem("scalar LQR", gamma)
    return Problem(f"LQR, gamma={gamma}", lqr.env, lqr.policy, lqr.params, gamma, lqr.exact, 0.0)


def reference_gradient(key: Array, env: weakpg.envs.Environment, policy: weakpg.policies.Policy,
                       params: Params, *, gamma: float, num_samples: int,
                       chunk: int) -> tuple[Params, float, int]:
    """JD coupled gradient from ceil(num_samples / chunk) calls of ``chunk`` samples.

    Returns (mean of the chunk means, its squared error sum_i stderr_i^2 summed over
    every parameter, total samples).
    """
    num_chunks = -(-num_samples // chunk)
    estimate = jax.jit(weakpg.make_gradient_estimator(
        env, policy, estimator="jd", gamma=gamma, num_samples=chunk))
    outs = [estimate(k, params) for k in jax.random.split(key, num_chunks)]
    mean = jax.tree.map(lambda *m: sum(m) / num_chunks, *(o.mean for o in outs))
    variance = sum(float(squared_norm(o.stderr)) for o in outs) / num_chunks**2
    return mean, variance, num_chunks * chunk


def pendulum_problem(key: Array, config: Config) -> tuple[Problem, int]:
    """The study's Pendulum-v1 test bed (RBF features, fixed weights) at sigma PENDULUM_SIGMA.

    The truth is a JD coupled reference with ``reference_factor`` times the samples of
    one JD coupled estimate at the budget; returns the problem and the reference's size.
    """
    testbed, gamma = variance_measure.pendulum_testbed(), variance_measure.PENDULUM_GAMMA
    env, params = testbed.env, testbed.params
    policy = weakpg.LinearGaussian(env, sigma=PENDULUM_SIGMA, features=testbed.features)
    jd_options = dict(ESTIMATORS)["JD coupled"]
    jd_samples = num_samples_for_budget(
        config.pendulum_budget, gamma, branches_per_sample(jd_options, env, policy))
    truth, sq_error, size = reference_gradient(
        key, env, policy, params, gamma=gamma,
        num_samples=config.reference_factor * jd_samples, chunk=config.reference_chunk)
    return Problem(f"Pendulum-v1, gamma={gamma}", env, policy, params, gamma, truth, sq_error), size


def ratio_with_stderr(a: Row, b: Row) -> tuple[float, float]:
    """a.mse / b.mse and its delta-method standard error (independent estimates)."""
    return variance_measure.ratio(variance_measure.Measured(a.mse, a.mse_stderr),
                                  variance_measure.Measured(b.mse, b.mse_stderr))


def format_table(problem: Problem, rows: list[Row], budget: int, repetitions: int) -> str:
    """One problem's table: estimator, samples, env steps, MSE, stderr, ratio to SF."""
    sf = next(r for r in rows if r.estimator == "SF")
    lines = [f"{problem.name}: budget {budget} env steps per estimate, {repetitions} repetitions",
             f"{'estimator':<23}{'num_samples':>12}{'env steps':>12}{'MSE':>12}{'stderr':>11}"
             f"{'rel se':>8}{'MSE / SF':>12}"]
    for r in rows:
        lines.append(f"{r.estimator:<23}{r.num_samples:>12d}{r.env_steps:>12.0f}{r.mse:>12.4g}"
                     f"{r.mse_stderr:>11.3g}{r.mse_stderr / r.mse:>8.1%}{r.mse / sf.mse:>12.4g}")
    return "\n".join(lines)


def verdict(ratio: float, stderr: float, low: float, high: float) -> str:
    """'beat' / 'match' / 'fall short of' a prototype range, within 2 standard errors."""
    if ratio + 2 * stderr < low:
        return "beat"
    if ratio - 2 * stderr > high:
        return "fall short of"
    return "match"


def format_comparison(results: dict[str, list[Row]]) -> str:
    """JD coupled / SF against the prototype, and JD coupled / best SF with a baseline."""
    lines = ["Comparison (ratio +- stderr; 'match' = within 2 stderr of the prototype):"]
    for name, rows in results.items():
        by_name = {r.estimator: r for r in rows}
        jd = by_name["JD coupled"]
        ratio, se = ratio_with_stderr(jd, by_name["SF"])
        low, high = PROTOTYPE_RATIOS[name]
        figure = f"{low:g}" if low == high else f"{low:g}-{high:g}"
        lines.append(f"  {name}: JD coupled / SF = {ratio:.3g} +- {se:.2g}; prototype {figure}: "
                     f"we {verdict(ratio, se, low, high)} it")
        best = min((by_name[b] for b in variance_measure.BASELINES), key=lambda r: r.mse)
        ratio, se = ratio_with_stderr(jd, best)
        met = "met" if 1 / ratio >= TARGET_BASELINE_FACTOR else "not met"
        lines.append(f"  {name}: JD coupled / best SF with baseline ({best.estimator}) = "
                     f"{ratio:.3g} +- {se:.2g}, i.e. {1 / ratio:.2f}x below; "
                     f"target 3-4x below: {met}")
    return "\n".join(lines)


def format_reference(problem: Problem, size: int, rows: list[Row]) -> str:
    """The reference's squared error against the smallest MSE it is used for."""
    smallest = min(r.mse for r in rows)
    fraction = problem.truth_sq_error / smallest
    ok = "below" if fraction < REFERENCE_MAX_FRACTION else "NOT below"
    return (f"Reference: JD coupled, {size} samples; its squared error (sum of stderr^2) "
            f"{problem.truth_sq_error:.3g} = {fraction:.2%} of the smallest MSE ({smallest:.4g}), "
            f"{ok} {REFERENCE_MAX_FRACTION:.0%}")


def run(config: Config, seed: int) -> None:
    """Measure and print every table and the comparison."""
    print(f"JAX {jax.__version__} on {jax.devices()[0].platform}; seed {seed}; {config}")
    key = jax.random.key(seed)
    results = {}
    for index, gamma in enumerate((0.9, 0.99)):
        problem = lqr_problem(gamma)
        start = time.perf_counter()
        rows = measure(jax.random.fold_in(key, index), problem, budget=config.lqr_budget,
                       repetitions=config.lqr_repetitions)
        results[problem.name] = rows
        print(format_table(problem, rows, config.lqr_budget, config.lqr_repetitions))
        print(f"truth: exact gradient {np.asarray(problem.truth['weights']).ravel()}; "
              f"{time.perf_counter() - start:.0f} s\n")
    start = time.perf_counter()
    problem, size = pendulum_problem(jax.random.fold_in(key, 2), config)
    rows = measure(jax.random.fold_in(key, 3), problem, budget=config.pendulum_budget,
                   repetitions=config.pendulum_repetitions)
    results[problem.name] = rows
    print(format_table(problem, rows, config.pendulum_budget, config.pendulum_repetitions))
    print(format_reference(problem, size, rows))
    print(f"{time.perf_counter() - start:.0f} s\n")
    print(format_comparison(results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny budgets, a smoke test")
    parser.add_argument("--seed", type=int, default=0, help="PRNG seed (default 0)")
    args = parser.parse_args()
    start = time.perf_counter()
    run(QUICK if args.quick else Config(), args.seed)
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
