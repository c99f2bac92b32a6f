"""The measurement of the convergence study: diminishing-step gradient ascent on the LQR.

Algorithm 2 (``train.make_train_chunk``) runs theta_{k+1} = theta_k + alpha_k g_k with
alpha_k = alpha_0 / (k + 1)^p from a fixed gain K_0 on the scalar LQR, where
grad J(K) is exact (``LinearQuadratic.exact_gradient``) and the optimum K* solves the
discounted Riccati equation. For every method and p, many seeds run in one vmapped scan
(one compilation per method: p is traced), and ``measure`` records, per iteration, the
mean over seeds of ||grad J(theta_k)||^2, the fraction of seeds with
||grad J(theta_k)||^2 < eps and |K_k - K*|; per run, the least-squares slope of
log ||grad J||^2 against log k over the last decade of iterations, with a bootstrap over
seeds for its standard error.

A gain with sqrt(gamma) rho(A + B K) >= 1 makes J infinite; a seed whose iterate gets
there has left the problem, is counted and reported, and is left out of the means.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from weakpg._src import train
from weakpg._src.app.studies import problems
from weakpg._src.app.studies.base import QUICK_COMPILER_OPTIONS, SINGLE_THREADED_EIGEN
from weakpg._src.envs.linear_quadratic import LinearQuadratic

# A low discount keeps roll-outs short (3 env steps per PG-SF sample, 5 per PG-JD one) and
# the stable gains wide (-4.63 < K < 1.03), so thousands of iterations fit in minutes.
GAMMA = 0.5
START = -2.5  # K_0: stabilising, 1.4 from K* = -1.08, on the side where the noise stays moderate
STEP_BUDGET = 80  # expected env steps per iteration of every method: iterations compare at equal cost
EPS_FRACTION = 1e-2  # eps = 1e-2 ||grad J(theta_0)||^2: the gradient norm shrunk tenfold
NUM_BOOTSTRAP = 200


class Method(NamedTuple):
    """An estimator (a label of ``problems.ESTIMATORS``) and its alpha_0.

    alpha_0 keeps the first step's noise, alpha_0 times the standard error of g_0,
    comparable across methods: the plain score function's per-sample spread at K_0 is an
    order of magnitude above PG-JD's, and with PG-JD's alpha_0 many of its seeds leave the
    stable gains within a few iterations.
    """

    label: str
    lr: float


METHODS = (Method("JD coupled", 0.4), Method("SF + rollout baseline", 0.2), Method("SF", 0.06))


class Config(NamedTuple):
    """Budgets of one run: methods (labels of ``METHODS``), powers p, seeds, iterations,
    and the XLA options of the compiled training loops (None: the defaults)."""

    methods: tuple[str, ...]
    powers: tuple[float, ...]
    num_seeds: int
    iterations: int
    compiler_options: dict[str, Any] | None = None


FULL = Config(tuple(m.label for m in METHODS), (0.5, 0.6, 0.75, 0.9), 64, 2000,
              compiler_options=SINGLE_THREADED_EIGEN)
QUICK = Config(("JD coupled", "SF"), (0.6, 0.9), 16, 300, compiler_options=QUICK_COMPILER_OPTIONS)


class Runs(NamedTuple):
    """Training runs of one method: P powers x S seeds.

    Attributes:
      gains: K_k for k = 0..K, shape (K + 1, P, S, m, n).
      env_steps: env steps of every iteration, shape (K, P, S).
      noise: alpha_k times the global norm of the standard error of g_k, shape (K, P, S).
    """

    gains: np.ndarray
    env_steps: np.ndarray
    noise: np.ndarray


def train_runs(key: jax.Array, problem: problems.Problem, options: dict, *, lr: float,
               batch_size: int, powers: tuple[float, ...], num_seeds: int, iterations: int,
               compiler_options: dict[str, Any] | None = None) -> Runs:
    """Algorithm 2 from ``problem.params`` for every p in ``powers`` and ``num_seeds`` seeds.

    ``train.make_train_chunk`` with an evaluation every iteration that records the gain;
    p is a traced input, so every p and seed share one compilation.
    """
    config = train.TrainConfig(**options, gamma=problem.gamma, batch_size=batch_size, lr=lr,
                               optimizer="sgd", max_grad_norm=None, iterations=iterations,
                               env_steps=None, eval_every=1)
    chunk = train.make_train_chunk(problem.env, problem.policy, config, num_intervals=iterations,
                                   evaluate=lambda params: {"weights": params["weights"]})

    def one_run(run_key: jax.Array, power: jax.Array) -> tuple[jax.Array, ...]:
        start = train.init_state(problem.policy, config, key=run_key)._replace(params=problem.params)
        _, rows = chunk(start, train.Hyper(jnp.float32(lr), power))
        steps = jnp.diff(rows["env_steps"])
        return rows["weights"][1:], steps, rows["step_size"][1:] * rows["grad_stderr_norm"][1:]

    keys = jax.random.split(key, len(powers) * num_seeds)
    power = jnp.repeat(jnp.asarray(powers, jnp.float32), num_seeds)
    outputs = jax.jit(jax.vmap(one_run), compiler_options=compiler_options)(keys, power)  # each (P S, K, ...)

    def by_iteration(x: jax.Array) -> np.ndarray:
        x = np.moveaxis(np.asarray(x), 0, 1)
        return x.reshape((iterations, len(powers), num_seeds) + x.shape[2:])

    gains, steps, noise = map(by_iteration, outputs)
    start = np.broadcast_to(np.asarray(problem.params["weights"]), (1,) + gains.shape[1:])
    return Runs(np.concatenate([start, gains]), steps, noise)


@functools.partial(jax.jit, static_argnames=("env", "gamma"))
def _exact_gradients(gains: jax.Array, sigma: jax.Array, *, env: LinearQuadratic,
                     gamma: float) -> jax.Array:
    """dJ/dK at every gain of ``gains`` (N, m, n), one compilation per env and shape."""
    return jax.vmap(lambda k: env.exact_gradient(k, sigma, gamma)["weights"])(gains)


def squared_gradients(problem: problems.Problem, gains: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """||grad J(K)||^2 and whether K is stabilising (sqrt(gamma) rho(A + B K) < 1), per gain.

    ``gains`` has shape (..., m, n); both outputs have shape (...). The gradient of an
    unstable or non-finite gain is meaningless and returned as NaN.
    """
    env, sigma, gamma = problem.env, problem.policy.sigma, problem.gamma
    flat = gains.reshape((-1,) + gains.shape[-2:]).astype(np.float64)
    finite = np.all(np.isfinite(flat), axis=(1, 2))
    closed_loop = np.asarray(env.A, np.float64) + np.asarray(env.B, np.float64) @ np.where(
        finite[:, None, None], flat, 0.0)
    stable = finite & (np.sqrt(gamma) * np.max(np.abs(np.linalg.eigvals(closed_loop)), axis=1) < 1.0)
    safe = np.where(stable[:, None, None], flat, np.asarray(problem.params["weights"]))
    grad = _exact_gradients(jnp.asarray(safe, jnp.float32), sigma, env=env, gamma=gamma)
    squares = np.sum(np.asarray(grad, np.float64) ** 2, axis=(1, 2))
    return (np.where(stable, squares, np.nan).reshape(gains.shape[:-2]),
            stable.reshape(gains.shape[:-2]))


def log_log_slope(k: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope a of log y = a log k + c (y ~ k^a), for positive k and y."""
    x, v = np.log(np.asarray(k, np.float64)), np.log(np.asarray(y, np.float64))
    x = x - x.mean()
    return float(np.sum(x * (v - v.mean())) / np.sum(x * x))


def fitted_slope(key: jax.Array, squares: np.ndarray, ks: np.ndarray) -> tuple[float, float]:
    """Slope of the seed mean of ``squares`` (K + 1, S) at iterations ``ks``, and its
    standard error from ``NUM_BOOTSTRAP`` resamplings of the seeds (NaN seeds are left out)."""
    kept = squares[:, np.all(np.isfinite(squares), axis=0)][ks]
    if kept.shape[1] == 0:
        return float("nan"), float("nan")
    resampled = np.asarray(jax.random.randint(key, (NUM_BOOTSTRAP, kept.shape[1]), 0, kept.shape[1]))
    boot = [log_log_slope(ks, kept[:, i].mean(axis=1)) for i in resampled]
    return log_log_slope(ks, kept.mean(axis=1)), float(np.std(boot, ddof=1))


def log_spaced(start: float, stop: int, num: int) -> np.ndarray:
    """Distinct integers about evenly spaced in log between ``start`` and ``stop``."""
    return np.unique(np.round(np.geomspace(start, stop, num)).astype(int))


def _finite_mean(x: np.ndarray) -> float:
    """Mean of the finite entries (NaN when there are none)."""
    finite = x[np.isfinite(x)]
    return float(finite.mean()) if finite.size else float("nan")


def measure(key: jax.Array, problem: problems.Problem, method: Method, config: Config,
             optimum: np.ndarray) -> tuple[list[dict], list[dict]]:
    """Curve rows (log-spaced k) and one fit row per p for one method."""
    options = next(e.options for e in problems.ESTIMATORS if e.label == method.label)
    branches = problems.branches_per_sample(options, problem.env, problem.policy)
    batch = problems.num_samples_for_budget(STEP_BUDGET, problem.gamma, branches)
    result = train_runs(jax.random.fold_in(key, 0), problem, options, lr=method.lr,
                        batch_size=batch, powers=config.powers, num_seeds=config.num_seeds,
                        iterations=config.iterations, compiler_options=config.compiler_options)
    squares, stable = squared_gradients(problem, result.gains)
    initial = float(squares[0, 0, 0])  # every run starts from problem.params
    eps = EPS_FRACTION * initial
    escaped_by = np.cumsum(~stable, axis=0) > 0  # (K + 1, P, S): has left the stable gains by k
    gone = escaped_by[-1]  # a seed that ever left is out of the means
    squares = np.where(gone, np.nan, squares)
    error = np.linalg.norm((result.gains - optimum).reshape(result.gains.shape[:3] + (-1,)), axis=-1)
    error = np.where(gone, np.nan, error)
    within = ~escaped_by & (np.nan_to_num(squares, nan=np.inf) < eps)
    steps = np.concatenate([np.zeros_like(result.env_steps[:1]), np.cumsum(result.env_steps, axis=0)])
    fit_ks = log_spaced(config.iterations / 10, config.iterations, 12)
    curve_ks = np.concatenate([[0], log_spaced(1, config.iterations, 40)])
    curves, fits = [], []
    for i, power in enumerate(config.powers):
        common = {"method": method.label, "alpha0": method.lr, "batch_size": batch, "p": power}
        for k in curve_ks:
            alive = squares[k, i][np.isfinite(squares[k, i])]
            curves.append({
                **common, "iteration": int(k), "env_steps": float(steps[k, i].mean()),
                "mean_sq_grad": _finite_mean(alive),
                "sq_grad_stderr": float(alive.std(ddof=1) / np.sqrt(alive.size)) if alive.size > 1
                else float("nan"),
                "fraction_within_eps": float(within[k, i].mean()),
                "mean_gain_error": _finite_mean(error[k, i]),
                "escaped_seeds": int(escaped_by[k, i].sum())})
        slope, stderr = fitted_slope(jax.random.fold_in(key, 1 + i), squares[:, i], fit_ks)
        last_error = error[-1, i][np.isfinite(error[-1, i])]
        fits.append({
            **common, "seeds": config.num_seeds, "iterations": config.iterations,
            "env_steps_per_iteration": float(result.env_steps[:, i].mean()),
            # The first step is alike for every p: pooled over all the method's runs.
            "first_step_noise": float(result.noise[0].mean()),
            # alpha_0 times the standard error of a mean of B samples, back to one sample
            "sample_sd_at_start": float(result.noise[0].mean() / method.lr * np.sqrt(batch)),
            "initial_sq_grad": initial,
            "final_mean_sq_grad": _finite_mean(squares[-1, i]),
            "slope": slope, "slope_stderr": stderr, "fit_from": int(fit_ks[0]), "fit_to": int(fit_ks[-1]),
            "eps": eps, "fraction_within_eps": float(within[-1, i].mean()),
            "mean_gain_error": _finite_mean(last_error),
            "max_gain_error": float(last_error.max()) if last_error.size else float("nan"),
            "escaped_seeds": int(gone[i].sum())})
    return curves, fits
