"""The measurements of the unbounded-states study: gradient samples and learning against |s|.

On an LQR, Q is quadratic: an SF sample (Q(s, a) - b) (a - mu) s^T / sigma^2 should grow
like |s|^3, a coupled JD sample, whose difference Q(s, a+) - Q(s, a-) is linear in s,
like |s|^2. Three measurements:

1. growth: the per-sample RMS sqrt(E||g||^2) of the roll-out estimators on the LQRs of
   ``problems`` with the start distribution scaled, s_0 ~ N(0, r^2 init_cov), against r,
   and its log-log slope over r >= FIT_FROM (below, the noise floor |s| ~ 0.5 dominates);
2. distributions: samples of grad_K E_{a ~ pi(.|s)} Q(s, a) = s dQ/dmu at fixed states of
   the scalar LQR with the exact Q (``weakpg.estimators`` with one sample per draw);
3. learning: Algorithm 2 (PG-JD, PG-SF, PG-SF with a roll-out baseline) on an open-loop
   unstable scalar LQR with s_0 ~ N(0, 20^2), a grid of alpha_0 and many seeds, at equal
   environment steps per iteration. A run diverges when K leaves the region
   sqrt(gamma) rho(A + B K) < 1 where J is finite (or becomes NaN), converges when its
   final relative gap (J* - J) / |J*| is at most GAP_TOL, and stalls otherwise.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from weakpg._src.app.studies import problems
from weakpg._src.app.studies.problems import Estimator
from weakpg._src.config import TrainConfig
from weakpg._src.distributions import Gaussian
from weakpg._src.envs.linear_quadratic import LinearQuadratic
from weakpg._src.estimators import score_function, weak_derivative
from weakpg._src.gradients import PolicyGradientEstimate, make_gradient_estimator
from weakpg._src.policies import LinearGaussian
from weakpg._src.train import Hyper, init_state, make_train_chunk

GAMMA = 0.9
FIT_FROM = 4.0  # start scales where s_0 dominates the stationary spread of the closed loop
GAP_TOL = 0.05  # a run converged when its final (J* - J) / |J*| is at most this

# Open loop unstable (A = 1.05) with s_0 ~ N(0, 20^2): a gain that stops stabilising
# makes the states, and every later gradient sample, explode.
LEARNING_ENV = LinearQuadratic(A=[[1.05]], B=[[0.5]], Q=[[1.0]], R=[[0.1]], noise_cov=[[0.1]],
                               init_cov=[[400.0]])
LEARNING_START = ((-0.2,),)  # stabilising (A + B K = 0.95), far from K* (about -1.57)

# The fitted value baseline is left out: its regression mixes the batch, so one sample's
# size is not a function of its own state alone.
GROWTH_ESTIMATORS = tuple(e for e in problems.ESTIMATORS if e.options.get("baseline") != "value")
LEARNERS = (
    Estimator("PG-JD", dict(estimator="jd")),
    Estimator("PG-SF", dict(estimator="sf")),
    Estimator("PG-SF + rollout baseline", dict(estimator="sf", baseline="rollout")),
)
# One-sample estimators of the distribution-level gradient at a fixed state (``state_samples``).
STATE_ESTIMATORS = ("SF", "SF + baseline Q(s, mu)", "JD uncoupled", "JD coupled")


@dataclasses.dataclass(frozen=True)
class Budget:
    """What one run measures.

    Attributes:
      problems: LQRs of ``problems.LQRS`` for the growth measurement.
      estimators: roll-out estimators whose growth is measured.
      radii: start scales r (s_0 ~ N(0, r^2 init_cov)).
      num_samples: gradient samples per estimate in the growth measurement.
      states: fixed states |s| of the distribution-level samples (scalar LQR).
      draws: distribution-level samples per state and estimator.
      learners: methods of the learning run.
      learning_rates: the grid of alpha_0, shared by every method.
      seeds: learning runs per method and alpha_0.
      iterations: iterations of every learning run.
      steps_per_iteration: environment steps per iteration (sets each method's batch).
    """

    problems: tuple[str, ...]
    estimators: tuple[Estimator, ...]
    radii: tuple[float, ...]
    num_samples: int
    states: tuple[float, ...]
    draws: int
    learners: tuple[Estimator, ...]
    learning_rates: tuple[float, ...]
    seeds: int
    iterations: int
    steps_per_iteration: int


FULL = Budget(problems=("scalar LQR", "2-D LQR"), estimators=GROWTH_ESTIMATORS,
              radii=(0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0), num_samples=4096,
              states=(0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0), draws=20_000,
              learners=LEARNERS, learning_rates=(1e-6, 3e-6, 1e-5, 3e-5, 1e-4, 3e-4), seeds=12,
              iterations=100, steps_per_iteration=2000)
QUICK = Budget(problems=("scalar LQR",), estimators=(GROWTH_ESTIMATORS[0], GROWTH_ESTIMATORS[-1]),
               radii=(1.0, 4.0, 16.0, 64.0), num_samples=1024, states=(1.0, 4.0, 16.0, 64.0),
               draws=2000, learners=LEARNERS[:2], learning_rates=(3e-6, 1e-4), seeds=4,
               iterations=60, steps_per_iteration=2000)


def growth_exponent(x: np.ndarray, y: np.ndarray, *, min_x: float = 0.0) -> float:
    """Least-squares slope p of log y = log c + p log x over x >= min_x: y ~ c x^p.

    Args:
      x, y: positive values of the same shape (k,), at least two of them with x >= min_x.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    fit = x >= min_x
    return float(np.polyfit(np.log(x[fit]), np.log(y[fit]), 1)[0])


def scaled_start(env: LinearQuadratic, radius: jax.Array | float) -> LinearQuadratic:
    """``env`` with s_0 ~ N(0, radius^2 init_cov); ``radius`` may be traced (one compilation)."""
    return LinearQuadratic(A=env.A, B=env.B, Q=env.Q, R=env.R, noise_cov=env.noise_cov,
                           init_cov=radius**2 * env.init_cov)


def per_sample_rms(estimate: PolicyGradientEstimate, num_samples: int) -> jax.Array:
    """sqrt(E||g||^2) of one sample g: sqrt(sum of (variance + mean^2)), variance = stderr^2 N."""
    return jnp.sqrt(sum(jnp.sum(se**2 * num_samples + m**2) for m, se in
                        zip(jax.tree.leaves(estimate.mean), jax.tree.leaves(estimate.stderr))))


def sample_rms(key: jax.Array, problem: problems.Problem, estimator: Estimator,
               radii: tuple[float, ...], num_samples: int) -> np.ndarray:
    """Per-sample RMS of ``estimator`` at each start scale, shape (len(radii),).

    Every scale uses the same key, so s_0 = r z with the same z everywhere (common random
    numbers): the curve changes with r only, and its slope is not lost in the heavy tails.
    """
    @jax.jit
    def rms(radius: jax.Array) -> jax.Array:
        estimate = make_gradient_estimator(
            scaled_start(problem.env, radius), problem.policy, gamma=problem.gamma,
            num_samples=num_samples, **estimator.options)(key, problem.params)
        return per_sample_rms(estimate, num_samples)

    return np.array([rms(r) for r in radii], np.float64)


def state_samples(key: jax.Array, problem: problems.Problem, states: tuple[float, ...],
                  draws: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Samples of grad_K E_{a ~ pi(.|s)} Q(s, a) = s dQ/dmu at fixed states, exact Q (scalar LQR).

    Each draw is a one-sample estimate of the distribution-level gradient dQ/dmu
    (``score_function`` / ``weak_derivative``), times s. "SF + baseline Q(s, mu)" subtracts
    Q at the mean action, a baseline that depends on s but not on a.

    Returns ({label: (len(states), draws)}, exact gradients of shape (len(states),)).
    """
    weights = problem.params["weights"]
    sigma = problem.policy.sigma

    def at(s: jax.Array) -> tuple[dict[str, jax.Array], jax.Array]:
        state = s[None]
        q = lambda a: problem.env.exact_q(weights, sigma, problem.gamma, state, a)
        dist = Gaussian(weights @ state, sigma)
        one_sample = {
            "SF": lambda k: score_function(k, q, dist, 1),
            "SF + baseline Q(s, mu)": lambda k: score_function(k, q, dist, 1,
                                                               baseline=lambda d: q(d.mean)),
            "JD uncoupled": lambda k: weak_derivative(k, q, dist, 1, coupled=False),
            "JD coupled": lambda k: weak_derivative(k, q, dist, 1),
        }
        keys = jax.random.split(key, draws)
        samples = {label: jax.vmap(lambda k, f=f: f(k).mean["mean"][0] * s)(keys)
                   for label, f in one_sample.items()}
        return samples, jax.grad(q)(dist.mean)[0] * s

    samples, exact = jax.jit(jax.vmap(at))(jnp.asarray(states, jnp.float32))
    return {k: np.asarray(v, np.float64) for k, v in samples.items()}, np.asarray(exact, np.float64)


def stabilising(env: LinearQuadratic, weights: np.ndarray, gamma: float) -> np.ndarray:
    """sqrt(gamma) rho(A + B K) < 1 and K finite (J > -inf), for weights of shape (..., m, n)."""
    finite = np.all(np.isfinite(weights), axis=(-2, -1))
    closed = np.asarray(env.A) + np.asarray(env.B) @ np.where(finite[..., None, None], weights, 0.0)
    return finite & (np.sqrt(gamma) * np.max(np.abs(np.linalg.eigvals(closed)), axis=-1) < 1.0)


def relative_gaps(env: LinearQuadratic, weights: np.ndarray, k_star: np.ndarray, *, sigma: float,
                  gamma: float) -> np.ndarray:
    """(J* - J(K)) / |J*| for weights of shape (..., m, n); inf where K does not stabilise."""
    ok = stabilising(env, weights, gamma)
    safe = np.where(ok[..., None, None], weights, k_star).reshape((-1,) + k_star.shape)
    values = jax.jit(jax.vmap(lambda k: env.exact_value(k, sigma, gamma)))(jnp.asarray(safe, jnp.float32))
    j_star = float(env.exact_value(k_star, sigma, gamma))
    gaps = (j_star - np.asarray(values, np.float64).reshape(ok.shape)) / abs(j_star)
    return np.where(ok, gaps, np.inf)


def learning_gains(key: jax.Array, policy: LinearGaussian, learner: Estimator, budget: Budget,
                   batch_size: int) -> np.ndarray:
    """K_k of Algorithm 2 for every alpha_0 and seed, shape (rates, seeds, iterations + 1, m, n).

    alpha_0 is traced, so one compilation serves the whole grid. The runs go one by one:
    vmapping the grid doubled the compilation time for little gain at these sizes. They
    start from LEARNING_START with alpha_k = alpha_0 / (k + 1)^0.6.
    """
    start = jnp.asarray(LEARNING_START, jnp.float32)
    config = TrainConfig(gamma=GAMMA, batch_size=batch_size, optimizer="sgd", schedule_power=0.6,
                         iterations=budget.iterations, env_steps=None, eval_every=1, **learner.options)
    chunk = make_train_chunk(LEARNING_ENV, policy, config, num_intervals=budget.iterations,
                             evaluate=lambda params: {"weights": params["weights"]})

    @jax.jit
    def run(rate: jax.Array, run_key: jax.Array) -> jax.Array:
        state = init_state(policy, config, key=run_key)._replace(params={"weights": start})
        _, rows = chunk(state, Hyper(rate, jnp.float32(config.schedule_power)))
        return rows["weights"]  # row 0 is the start

    keys = jax.random.split(key, budget.seeds)
    return np.array([[run(rate, k) for k in keys] for rate in budget.learning_rates], np.float64)


def outcome(gaps: np.ndarray) -> str:
    """"diverged" if any gap is infinite, else "converged" if the last is <= GAP_TOL, else "stalled"."""
    if not np.all(np.isfinite(gaps)):
        return "diverged"
    return "converged" if gaps[-1] <= GAP_TOL else "stalled"


def best_rate(rows: list[dict]) -> float:
    """The alpha_0 with most converged runs (then fewest diverged, then smallest median gap)."""
    def score(rate: float) -> tuple[int, int, float]:
        mine = [r for r in rows if r["alpha_0"] == rate]
        return (sum(r["outcome"] == "converged" for r in mine),
                -sum(r["outcome"] == "diverged" for r in mine),
                -float(np.median([r["final_gap"] for r in mine])))

    return max(sorted({r["alpha_0"] for r in rows}), key=score)


def measure_growth(key: jax.Array, budget: Budget,
            progress: Callable[[str], None]) -> tuple[list[dict], dict[tuple[str, str], float]]:
    """Rows (problem, estimator, radius, rms, exponent) and the exponents by (problem, estimator)."""
    rows, exponents = [], {}
    for p_index, name in enumerate(budget.problems):
        problem = problems.lqr_problem(name, GAMMA)
        progress(f"gradient samples against the start scale on the {problem.name}")
        for e_index, estimator in enumerate(budget.estimators):
            rms = sample_rms(jax.random.fold_in(key, 10 * p_index + e_index), problem, estimator,
                             budget.radii, budget.num_samples)
            exponent = growth_exponent(budget.radii, rms, min_x=FIT_FROM)
            exponents[(name, estimator.label)] = exponent
            rows += [{"problem": name, "estimator": estimator.label, "radius": r, "rms": v,
                      "exponent": exponent} for r, v in zip(budget.radii, rms)]
    return rows, exponents


def measure_distributions(key: jax.Array, budget: Budget) -> tuple[list[dict], dict[str, np.ndarray]]:
    """Rows (estimator, state, exact, mean, rms, quantiles of |g|, exponent) and the samples."""
    samples, exact = state_samples(key, problems.lqr_problem("scalar LQR", GAMMA), budget.states,
                                   budget.draws)
    rows = []
    for label in STATE_ESTIMATORS:
        rms = np.sqrt(np.mean(samples[label] ** 2, axis=1))
        exponent = growth_exponent(budget.states, rms, min_x=FIT_FROM)
        quantiles = np.quantile(np.abs(samples[label]), (0.5, 0.9, 0.99), axis=1)
        rows += [{"estimator": label, "state": s, "exact": exact[i], "mean": samples[label][i].mean(),
                  "rms": rms[i], "q50_abs": quantiles[0, i], "q90_abs": quantiles[1, i],
                  "q99_abs": quantiles[2, i], "exponent": exponent}
                 for i, s in enumerate(budget.states)]
    return rows, samples


def measure_learning(key: jax.Array, budget: Budget, k_star: np.ndarray, progress: Callable[[str], None]
              ) -> tuple[list[dict], list[dict], dict[str, tuple[float, np.ndarray]]]:
    """Per-run outcomes, per-iteration medians, and each method's (best alpha_0, gaps of its runs)."""
    policy = LinearGaussian(LEARNING_ENV, sigma=problems.SIGMA)
    outcomes, medians, curves = [], [], {}
    for index, learner in enumerate(budget.learners):
        progress(f"learning with {learner.label} on the unstable LQR")
        batch = problems.num_samples_for_budget(
            budget.steps_per_iteration, GAMMA,
            problems.branches_per_sample(learner.options, LEARNING_ENV, policy))
        gains = learning_gains(jax.random.fold_in(key, index), policy, learner, budget, batch)
        gaps = relative_gaps(LEARNING_ENV, gains, k_star, sigma=problems.SIGMA, gamma=GAMMA)
        ok = stabilising(LEARNING_ENV, gains, GAMMA)
        mine = []
        for i, rate in enumerate(budget.learning_rates):
            for seed in range(budget.seeds):
                left = np.flatnonzero(~ok[i, seed])
                mine.append({"method": learner.label, "alpha_0": rate, "seed": seed, "batch_size": batch,
                             "outcome": outcome(gaps[i, seed]),
                             "diverged_at": int(left[0]) if left.size else -1,
                             "final_gap": gaps[i, seed, -1], "final_gain": gains[i, seed, -1, 0, 0]})
            medians += [{"method": learner.label, "alpha_0": rate, "iteration": k,
                         "median_gap": np.median(gaps[i, :, k]), "stabilising_fraction": np.mean(ok[i, :, k])}
                        for k in range(budget.iterations + 1)]
        best = best_rate(mine)
        curves[learner.label] = (best, gaps[budget.learning_rates.index(best)])
        outcomes += mine
    return outcomes, medians, curves
