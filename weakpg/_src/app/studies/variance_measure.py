"""The measurement of the variance study: per-sample and per-env-step variances of every estimator.

One gradient sample g (a state of the discounted occupancy measure and its phantom
branches) has covariance C, and its per-sample variance is tr C = sum_i Var[g_i]. One
estimate of N samples gives tr C ~ N sum_i stderr_i^2; R independent estimates give its
mean and a standard error taken from their spread, which does not trust the tails (the
samples are heavy-tailed at large gamma). A sample with b branches costs on average
s = (b + gamma) / (1 - gamma) env steps, so an estimate from a budget of E steps has
variance tr C s / E: the variance per env step, tr C s, is the variance at a budget of
one step, the equal-budget comparison.

Every estimator of ``problems.ESTIMATORS`` is measured per sample (the paper's
accounting) and per env step (JD's second roll-out counted): on the scalar LQR as
functions of sigma and of gamma, and on Pendulum-v1 at a few sigmas. Sigma is an argument
of the compiled estimator, so one compilation serves every sigma. ``ratio_rows`` turns
the variances into the ratios of ``COMPARISONS``; ``variance`` judges them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import numpy as np

from weakpg._src import testing
from weakpg._src.app.studies import problems
from weakpg._src.app.studies.base import QUICK_COMPILER_OPTIONS
from weakpg._src.app.studies.problems import flatten
from weakpg._src.envs.base import Environment
from weakpg._src.envs.gymnax_envs import GymnaxEnvironment
from weakpg._src.features import RBF, Features
from weakpg._src.gradients import PolicyGradientEstimate, make_gradient_estimator
from weakpg._src.policies import LinearGaussian, Params

Array = jax.Array

LQR = "scalar LQR"
PENDULUM = "Pendulum-v1"
SIGMA_SWEEP_GAMMA = 0.9  # the LQR's sigma sweep runs at this gamma,
GAMMA_SWEEP_SIGMA = problems.SIGMA  # its gamma sweep at this sigma
PENDULUM_GAMMA = 0.95
PENDULUM_RBF_GRID = (3, 3, 3)  # 27 centres (plus a constant), as in bench/throughput.py
PENDULUM_WEIGHT_SCALE = 0.5
PENDULUM_WEIGHT_KEY = 1  # fixed, so the problem does not change with the seed
BASELINES = ("SF + rollout baseline", "SF + value baseline")
# (label, numerator, denominators: the lowest of them, per accounting, is the one used)
COMPARISONS = (
    ("JD uncoupled / SF", "JD uncoupled", ("SF",)),
    ("JD uncoupled / best SF + baseline", "JD uncoupled", BASELINES),
    ("JD coupled / SF", "JD coupled", ("SF",)),
    ("JD coupled / best SF + baseline", "JD coupled", BASELINES),
    ("JD coupled / JD uncoupled", "JD coupled", ("JD uncoupled",)),
)
ACCOUNTINGS = {"sample": "var_per_sample", "env step": "var_per_step"}


class Config(NamedTuple):
    """What one run measures.

    Attributes:
      lqr_sigmas: sigmas of the scalar LQR at gamma ``SIGMA_SWEEP_GAMMA``.
      lqr_gammas: discount factors of the scalar LQR at sigma ``GAMMA_SWEEP_SIGMA``.
      pendulum_sigmas: sigmas of Pendulum-v1 at ``PENDULUM_GAMMA`` (empty: no Pendulum).
      budget: env steps of one SF estimate; at each gamma every estimator takes the same
        num_samples_for_budget(budget, gamma, 1) samples (one compilation per estimator).
      repetitions: independent estimates per (case, estimator).
      compiler_options: XLA options of the compiled estimators (None: the defaults).
    """

    lqr_sigmas: tuple[float, ...]
    lqr_gammas: tuple[float, ...]
    pendulum_sigmas: tuple[float, ...]
    budget: int
    repetitions: int
    compiler_options: dict[str, Any] | None = None


FULL = Config((0.1, 0.25, 0.5, 1.0, 2.0), (0.8, 0.9, 0.95, 0.99), (0.5, 1.0, 2.0), 200_000, 10)
QUICK = Config((0.5, 2.0), (SIGMA_SWEEP_GAMMA,), (), 20_000, 6, compiler_options=QUICK_COMPILER_OPTIONS)


class Case(NamedTuple):
    """One measured configuration: a test bed (``LQR`` or ``PENDULUM``) at a sigma and gamma."""

    testbed: str
    sigma: float
    gamma: float


class Testbed(NamedTuple):
    """A problem for a linear-Gaussian policy whose sigma is left open.

    Attributes:
      env: the environment.
      features: the policy's features: mean = weights @ features(obs).
      params: {"weights": (action_dim, features.dim)}, fixed.
      exact: (sigma, gamma) -> grad J at params (a pytree like params), or None where
        it is not known.
    """

    env: Environment
    features: Features
    params: Params
    exact: Callable[[float, float], Params] | None


class Repeats(NamedTuple):
    """R independent estimates, flattened over the P parameters.

    Attributes:
      means, stderrs: (R, P) float64.
      env_steps: (R,) float64.
    """

    means: np.ndarray
    stderrs: np.ndarray
    env_steps: np.ndarray


class Measured(NamedTuple):
    """A measured value and its standard error."""

    value: float
    stderr: float


def lqr_testbed() -> Testbed:
    """``problems.lqr_problem("scalar LQR")``: a = -0.4 s + sigma eps, exact gradient."""
    problem = problems.lqr_problem(LQR, SIGMA_SWEEP_GAMMA)
    return Testbed(problem.env, problem.policy.features, problem.params,
                   lambda sigma, gamma: problems.lqr_problem(LQR, gamma, sigma=sigma).exact)


def pendulum_testbed() -> Testbed:
    """Pendulum-v1, RBF features on a 3 x 3 x 3 grid, weights 0.5 N(0, I) from a fixed key."""
    env = GymnaxEnvironment(PENDULUM)
    features = RBF.grid(env.observation_low, env.observation_high, PENDULUM_RBF_GRID)
    shape = (*env.action_shape, features.dim)
    weights = PENDULUM_WEIGHT_SCALE * jax.random.normal(jax.random.key(PENDULUM_WEIGHT_KEY), shape)
    return Testbed(env, features, {"weights": weights}, None)


def cases(config: Config) -> list[Case]:
    """The LQR's sigma sweep, then its gamma sweep (the shared case once), then Pendulum."""
    sigma_sweep = [Case(LQR, sigma, SIGMA_SWEEP_GAMMA) for sigma in config.lqr_sigmas]
    gamma_sweep = [Case(LQR, GAMMA_SWEEP_SIGMA, gamma) for gamma in config.lqr_gammas]
    pendulum = [Case(PENDULUM, sigma, PENDULUM_GAMMA) for sigma in config.pendulum_sigmas]
    return list(dict.fromkeys(sigma_sweep + gamma_sweep + pendulum))


def sigma_estimator(testbed: Testbed, options: dict, *, gamma: float,
                    num_samples: int) -> Callable[[Array, Array], PolicyGradientEstimate]:
    """``estimate(key, sigma)``: the estimator ``options`` for LinearGaussian(sigma) at the
    test bed's params.

    The policy is built inside the function, so under ``jax.jit`` sigma is a traced
    argument and one compilation serves every sigma.
    """

    def estimate(key: Array, sigma: Array) -> PolicyGradientEstimate:
        policy = LinearGaussian(testbed.env, sigma=sigma, features=testbed.features)
        return make_gradient_estimator(testbed.env, policy, gamma=gamma, num_samples=num_samples,
                                       **options)(key, testbed.params)

    return estimate


def repeat(estimate: Callable[..., PolicyGradientEstimate], keys: Array, *args: Any) -> Repeats:
    """``estimate(key, *args)`` for every key, R = len(keys).

    A loop over one compiled call: a vmapped engine would wait for the slowest estimate.
    """
    outs = jax.device_get([estimate(key, *args) for key in keys])
    return Repeats(np.stack([flatten(o.mean) for o in outs]), np.stack([flatten(o.stderr) for o in outs]),
                   np.array([o.env_steps for o in outs], np.float64))


def check_finite(repeats: Repeats, what: str) -> Repeats:
    """``repeats`` unchanged; RuntimeError naming ``what`` if an estimate is not finite.

    A non-finite estimate is a bug (it once came from ``jax.random.rayleigh``), never
    something to average over or leave out quietly.
    """
    bad = ~(np.isfinite(repeats.means).all(axis=1) & np.isfinite(repeats.stderrs).all(axis=1))
    if bad.any():
        raise RuntimeError(f"{what}: {int(bad.sum())} of {bad.size} estimates are not finite")
    return repeats


def per_sample_variance(stderrs: np.ndarray, num_samples: int) -> Measured:
    """tr C from R estimates of N samples each: v_r = N sum_i stderr_ri^2 (stderrs (R, P));
    the mean of the v_r and its standard error std(v_r) / sqrt(R)."""
    v = num_samples * np.sum(np.square(stderrs), axis=1)
    return Measured(float(v.mean()), float(v.std(ddof=1) / np.sqrt(v.size)))


def ratio(a: Measured, b: Measured) -> Measured:
    """a / b and its delta-method standard error for independent a and b:
    (a / b) sqrt((se_a / a)^2 + (se_b / b)^2)."""
    value = a.value / b.value
    return Measured(value, value * float(np.hypot(a.stderr / a.value, b.stderr / b.value)))


def unbiasedness(repeats: Repeats, exact: np.ndarray) -> tuple[float, float, float]:
    """(max |z|, MSE, expected MSE) of R estimates against the exact gradient (P,).

    z: the pooled mean, mean_r m_r, against ``exact`` in its standard error
    sqrt(sum_r s_r^2) / R. MSE = mean_r ||m_r - exact||^2, which is the expected MSE
    mean_r sum_i s_ri^2 (the variance of one estimate) when the estimator is unbiased.
    """
    num = len(repeats.means)
    pooled_stderr = np.sqrt(np.sum(np.square(repeats.stderrs), axis=0)) / num
    z = testing.z_scores(repeats.means.mean(axis=0), pooled_stderr, exact)
    mse = float(np.mean(np.sum(np.square(repeats.means - exact), axis=1)))
    return float(np.max(np.abs(z))), mse, float(np.mean(np.sum(np.square(repeats.stderrs), axis=1)))


def measure(key: Array, testbed: Testbed, group: Sequence[tuple[int, Case]], config: Config,
            progress: Callable[[str], None]) -> tuple[list[dict], list[dict]]:
    """Every estimator on cases of one test bed and one gamma, differing in sigma.

    ``group`` holds (index, case) pairs; the estimates of case i and estimator e use keys
    split from fold_in(fold_in(key, i), e). Returns the variance rows and, where the
    test bed knows grad J, the unbiasedness rows.
    """
    gamma = group[0][1].gamma
    num_samples = problems.num_samples_for_budget(config.budget, gamma, 1)
    shape_policy = LinearGaussian(testbed.env, features=testbed.features)
    rows, bias_rows = [], []
    for e_index, (label, options) in enumerate(problems.ESTIMATORS):
        estimate = jax.jit(sigma_estimator(testbed, options, gamma=gamma, num_samples=num_samples),
                           compiler_options=config.compiler_options)
        branches = problems.branches_per_sample(options, testbed.env, shape_policy)
        steps = problems.expected_steps_per_sample(gamma, branches)
        for index, case in group:
            keys = jax.random.split(jax.random.fold_in(jax.random.fold_in(key, index), e_index),
                                    config.repetitions)
            repeats = check_finite(repeat(estimate, keys, case.sigma),
                                   f"{label} on {case.testbed} (sigma {case.sigma:g}, gamma {gamma:g})")
            per_sample = per_sample_variance(repeats.stderrs, num_samples)
            head = {"testbed": case.testbed, "sigma": case.sigma, "gamma": gamma, "estimator": label}
            rows.append({
                **head, "num_samples": num_samples, "repetitions": config.repetitions,
                "branches": branches, "steps_per_sample": steps,
                "measured_steps_per_sample": float(repeats.env_steps.mean()) / num_samples,
                "var_per_sample": per_sample.value, "var_per_sample_se": per_sample.stderr,
                "var_per_step": per_sample.value * steps, "var_per_step_se": per_sample.stderr * steps})
            if testbed.exact is not None:
                z, mse, expected = unbiasedness(repeats, flatten(testbed.exact(case.sigma, gamma)))
                bias_rows.append({**head, "max_abs_z": z, "mse": mse, "expected_mse": expected,
                                  "mse_over_expected": mse / expected})
        progress(f"  {group[0][1].testbed}, gamma {gamma:g}, {label}: variance per env step "
                 + ", ".join(f"{r['var_per_step']:.3g} (sigma {r['sigma']:g})"
                             for r in rows[-len(group):]))
    return rows, bias_rows


def ratio_rows(rows: list[dict]) -> list[dict]:
    """Every comparison of ``COMPARISONS`` on every case, per sample and per env step."""
    by_case: dict[tuple, dict[str, dict]] = {}
    for row in rows:
        by_case.setdefault((row["testbed"], row["sigma"], row["gamma"]), {})[row["estimator"]] = row
    out = []
    for (testbed, sigma, gamma), by_estimator in by_case.items():
        for label, numerator, denominators in COMPARISONS:
            for per, column in ACCOUNTINGS.items():
                against = min((by_estimator[name][column], name) for name in denominators)[1]
                r = ratio(*(Measured(by_estimator[name][column], by_estimator[name][f"{column}_se"])
                            for name in (numerator, against)))
                out.append({"testbed": testbed, "sigma": sigma, "gamma": gamma, "comparison": label,
                            "per": per, "against": against, "ratio": r.value, "ratio_se": r.stderr})
    return out
