"""Random-coordinate PG-JD and the quantile coupling: MSE per environment step.

PG-JD runs a phantom pair per coordinate of each learned Gaussian parameter; with
``coordinates=k`` it runs k of the d pairs, chosen uniformly, weighted d/k. A sample then
costs T' + 2k (T + 1) steps instead of T' + 2d (T + 1). For a fixed budget of E env steps
per estimate every estimator gets num_samples = round(E / expected steps per sample), and R
independent estimates give the empirical MSE = mean_r ||g_r - grad J||^2 and its standard
error; MSE x (env steps per estimate) is the MSE per env step (the MSE at a budget of one
step: lower is better, and equal budgets compare by it directly).

1. The studies' LQR with a 4-dimensional action (``problems.LQR_4D``, exact gradient),
   gamma 0.9, sigma 0.5: PG-JD coupled (mirror and quantile) and uncoupled for
   k = 1, 2, 3, 4 and all d (None), PG-JD coupled with a learned sigma, and PG-SF with
   the roll-out baseline for reference.
2. Quantile against mirror coupling on Pendulum-v1 (the variance study's RBF test bed,
   sigma 1, gamma 0.95, one action dimension), against a large PG-JD reference whose own
   squared error is printed next to the MSEs.

Run ``python -m bench.coordinates [--plot docs/coordinates.png]`` (about 6 minutes on 2
loaded CPU cores) or ``--quick``.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import weakpg
from bench.variance import Config as VarianceConfig
from bench.variance import Problem, Row, pendulum_problem, ratio_with_stderr
from weakpg._src.app.studies import problems, variance_measure

Array = jax.Array

SIGMA, GAMMA = problems.SIGMA, 0.9
COORDINATES = (1, 2, 3, 4, None)


@dataclasses.dataclass(frozen=True)
class Config:
    """Budgets of one run: env steps per estimate and repetitions per estimator, per problem;
    the Pendulum reference has ``reference_factor`` times the samples of one estimate."""

    lqr_budget: int = 100_000
    lqr_repetitions: int = 200
    pendulum_budget: int = 100_000
    pendulum_repetitions: int = 200
    reference_factor: int = 200


QUICK = Config(lqr_budget=5_000, lqr_repetitions=6, pendulum_budget=3_000, pendulum_repetitions=6,
               reference_factor=20)


def label(options: dict[str, Any]) -> str:
    """"JD coupled, mirror, k=2", "JD uncoupled, all d", "SF + rollout baseline", ..."""
    if options["estimator"] == "sf":
        return "SF + rollout baseline"
    k = options.get("coordinates")
    coupling = f", {options.get('coupling', 'mirror')}" if options.get("coupled", True) else ""
    return (f"JD {'coupled' if options.get('coupled', True) else 'uncoupled'}{coupling}, "
            f"{'all d' if k is None else f'k={k}'}")


def measure(key: Array, problem: Problem, estimators: list[dict[str, Any]], *, budget: int,
            repetitions: int) -> list[Row]:
    """Empirical MSE of each estimator at ``budget`` env steps per estimate."""
    rows = []
    for index, options in enumerate(estimators):
        b = problems.branches_per_sample(options, problem.env, problem.policy)
        num_samples = problems.num_samples_for_budget(budget, problem.gamma, b)
        estimate = jax.jit(weakpg.make_gradient_estimator(
            problem.env, problem.policy, gamma=problem.gamma, num_samples=num_samples, **options))
        keys = jax.random.split(jax.random.fold_in(key, index), repetitions)
        repeats = variance_measure.check_finite(
            variance_measure.repeat(estimate, keys, problem.params), label(options))
        errors = np.sum(np.square(repeats.means - problems.flatten(problem.truth)), axis=1)
        rows.append(Row(label(options), num_samples, float(repeats.env_steps.mean()),
                        float(errors.mean()), float(errors.std(ddof=1) / np.sqrt(repetitions))))
    return rows


def lqr_4d(learn_sigma: bool) -> Problem:
    """``problems.LQR_4D`` at its weights, sigma 0.5, gamma 0.9: the exact gradient in K (and
    log sigma when learned)."""
    env, weights = problems.LQR_4D, jnp.asarray(problems.WEIGHTS_4D, jnp.float32)
    policy = weakpg.LinearGaussian(env, sigma=SIGMA, learn_sigma=learn_sigma)
    exact = env.exact_gradient(weights, SIGMA, GAMMA)
    params = {"weights": weights}
    if learn_sigma:
        params["log_sigma"] = jnp.full((4,), jnp.log(SIGMA))
    else:
        exact = {"weights": exact["weights"]}
    name = f"4-D LQR{', learned sigma' if learn_sigma else ''}, gamma={GAMMA}"
    return Problem(name, env, policy, params, GAMMA, exact, 0.0)


def lqr_estimators() -> list[dict[str, Any]]:
    jd = [dict(estimator="jd", coordinates=k, **extra) for extra in
          (dict(), dict(coupling="quantile"), dict(coupled=False)) for k in COORDINATES]
    return jd + [dict(estimator="sf", baseline="rollout")]


def format_table(problem: Problem, rows: list[Row], budget: int, repetitions: int, reference: str) -> str:
    """Estimator, samples, env steps, MSE, its relative stderr, MSE per env step, ratio to ``reference``."""
    by_name = ratios(rows, reference)
    lines = [f"{problem.name}: budget {budget} env steps per estimate, {repetitions} repetitions; "
             f"ratio: MSE per env step / that of {reference}",
             f"{'estimator':<32}{'samples':>9}{'env steps':>11}{'MSE':>11}{'rel se':>8}"
             f"{'MSE/step':>11}{'ratio':>10}{'+-':>9}"]
    for r in rows:
        ratio, se = by_name[r.estimator]
        lines.append(f"{r.estimator:<32}{r.num_samples:>9d}{r.env_steps:>11.0f}{r.mse:>11.4g}"
                     f"{r.mse_stderr / r.mse:>8.1%}{r.mse * r.env_steps:>11.4g}{ratio:>10.4g}{se:>9.2g}")
    return "\n".join(lines)


def ratios(rows: list[Row], reference: str) -> dict[str, tuple[float, float]]:
    """Each row's MSE per env step over ``reference``'s, with its standard error."""
    per_step = {r.estimator: Row(r.estimator, r.num_samples, r.env_steps, r.mse * r.env_steps,
                                 r.mse_stderr * r.env_steps) for r in rows}
    return {name: ratio_with_stderr(row, per_step[reference]) for name, row in per_step.items()}


def plot(path: str, lqr: dict[str, tuple[float, float]], learned: dict[str, tuple[float, float]],
         pendulum: dict[str, tuple[float, float]]) -> None:
    """MSE per env step against k on the 4-D LQR (left) and the couplings on Pendulum (right)."""
    from weakpg._src.app.plotting import figure

    ks = [1, 2, 3, 4]
    with figure(path, ncols=2, figsize=(11, 4.2)) as (_, (left, right)):
        for name, table, marker in (("JD coupled, mirror", lqr, "o"), ("JD coupled, quantile", lqr, "s"),
                                    ("JD coupled, mirror", learned, "^")):
            prefix = name if table is lqr else name + ", learned sigma (to its own all d)"
            ys = [table[f"{name}, k={k}"] for k in ks] + [table[f"{name}, all d"]]
            line = left.errorbar(ks + [4.35], [y for y, _ in ys], yerr=[2 * s for _, s in ys], marker=marker,
                                 capsize=3, label=prefix)
            left.plot([4.35], [ys[-1][0]], marker="*", markersize=12, color=line[0].get_color())
        sf = lqr["SF + rollout baseline"]
        left.axhline(sf[0], color="grey", linestyle="--", label="SF + rollout baseline")
        uncoupled = [v[0] for name, v in lqr.items() if name.startswith("JD uncoupled")]
        left.set(xticks=ks + [4.35], xticklabels=["1", "2", "3", "4", "all d"],
                 xlabel="coordinates k (of d = 4)", ylabel="MSE per env step / JD coupled, mirror, all d",
                 title=f"4-D LQR, gamma 0.9 (bars: 2 stderr; JD uncoupled {min(uncoupled):.0f}-"
                       f"{max(uncoupled):.0f}, off the axis)")
        left.legend(fontsize=8)
        names = list(pendulum)
        right.bar(range(len(names)), [pendulum[n][0] for n in names],
                  yerr=[2 * pendulum[n][1] for n in names], capsize=4, color="tab:blue")
        right.set(yscale="log", xticks=range(len(names)),
                  ylabel="MSE per env step / JD coupled, mirror", title="Pendulum-v1, gamma 0.95")
        right.set_xticklabels([n.removesuffix(", all d").replace(", ", "\n") for n in names], fontsize=8)


def run(config: Config, seed: int, plot_path: str | None = None) -> None:
    """Measure and print the tables (and plot them to ``plot_path``)."""
    print(f"JAX {jax.__version__} on {jax.devices()[0].platform}; seed {seed}; {config}")
    key = jax.random.key(seed)
    reference = "JD coupled, mirror, all d"
    found = []
    for index, learn_sigma in enumerate((False, True)):
        start = time.perf_counter()
        problem = lqr_4d(learn_sigma)
        estimators = lqr_estimators() if not learn_sigma else [
            dict(estimator="jd", coordinates=k) for k in COORDINATES]
        rows = measure(jax.random.fold_in(key, index), problem, estimators, budget=config.lqr_budget,
                       repetitions=config.lqr_repetitions)
        print(format_table(problem, rows, config.lqr_budget, config.lqr_repetitions, reference))
        print(f"{time.perf_counter() - start:.0f} s\n")
        found.append(ratios(rows, reference))
    start = time.perf_counter()
    reference_config = VarianceConfig(pendulum_budget=config.pendulum_budget,
                                      reference_factor=config.reference_factor)
    problem, size = pendulum_problem(jax.random.fold_in(key, 2), reference_config)
    estimators = [dict(estimator="jd"), dict(estimator="jd", coupling="quantile"),
                  dict(estimator="jd", coupled=False), dict(estimator="sf", baseline="rollout")]
    rows = measure(jax.random.fold_in(key, 3), problem, estimators, budget=config.pendulum_budget,
                   repetitions=config.pendulum_repetitions)
    print(format_table(problem, rows, config.pendulum_budget, config.pendulum_repetitions, reference))
    smallest = min(r.mse for r in rows)
    print(f"reference: PG-JD coupled (mirror), {size} samples; its squared error (sum of stderr^2) "
          f"{problem.truth_sq_error:.3g} = {problem.truth_sq_error / smallest:.2%} of the smallest MSE")
    print(f"{time.perf_counter() - start:.0f} s")
    if plot_path is not None:
        plot(plot_path, *found, ratios(rows, reference))
        print(f"wrote {plot_path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny budgets, a smoke test")
    parser.add_argument("--seed", type=int, default=0, help="PRNG seed (default 0)")
    parser.add_argument("--plot", metavar="PNG", help="also draw the ratios into this PNG")
    args = parser.parse_args()
    start = time.perf_counter()
    run(QUICK if args.quick else Config(), args.seed, args.plot)
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
