"""Theorems 7-8 and Corollary 9: the variance of weak-derivative and score-function samples.

One gradient sample g (a state of the discounted occupancy measure and its phantom
branches) has covariance C, and its per-sample variance is tr C = sum_i Var[g_i]. One
estimate of N samples gives tr C ~ N sum_i stderr_i^2; R independent estimates give its
mean and a standard error taken from their spread, which does not trust the tails (the
samples are heavy-tailed at large gamma). A sample with b branches costs on average
s = (b + gamma) / (1 - gamma) env steps, so an estimate from a budget of E steps has
variance tr C s / E: the variance per env step, tr C s, is the variance at a budget of
one step, the equal-budget comparison.

Theorems 7-8 bound the expected variance of the plain PG-JD and PG-SF estimates and
Corollary 9 compares the bounds for the Gaussian policy: the weak derivative's is lower.
We measure the variances themselves, per sample (the paper's accounting) and per env
step (JD's second roll-out counted), for every estimator of ``problems.ESTIMATORS``: on
the scalar LQR as functions of sigma and of gamma, and on Pendulum-v1 at a few sigmas.
Sigma is an argument of the compiled estimator, so one compilation serves every sigma.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np

from weakpg._src import runs, testing
from weakpg._src.app import plotting
from weakpg._src.app.studies import problems
from weakpg._src.app.studies.base import QUICK_COMPILER_OPTIONS, Finding, StudyResult, markdown_table, verdict
from weakpg._src.app.studies.problems import flatten
from weakpg._src.envs.base import Environment
from weakpg._src.envs.gymnax_envs import GymnaxEnvironment
from weakpg._src.features import RBF, Features
from weakpg._src.gradients import PolicyGradientEstimate, make_gradient_estimator
from weakpg._src.policies import LinearGaussian, Params

Array = jax.Array

NAME = "variance"
TITLE = "Variance (Theorems 7-8, Corollary 9): weak derivative against score function"
LQR = "scalar LQR"
PENDULUM = "Pendulum-v1"
SIGMA_SWEEP_GAMMA = 0.9  # the LQR's sigma sweep runs at this gamma,
GAMMA_SWEEP_SIGMA = problems.SIGMA  # its gamma sweep at this sigma
PENDULUM_GAMMA = 0.95
PENDULUM_RBF_GRID = (3, 3, 3)  # 27 centres (plus a constant), as in bench/throughput.py
PENDULUM_WEIGHT_SCALE = 0.5
PENDULUM_WEIGHT_KEY = 1  # fixed, so the problem does not change with the seed
NUM_STDERR = 2.0  # a ratio is significantly below (above) a threshold beyond this many stderr
MAX_Z = 4.0  # |z| allowed for an unbiased mean, as in weakpg.testing.assert_unbiased
BASELINES = ("SF + rollout baseline", "SF + value baseline")
COUPLED_FACTOR = 3.0  # README / bench/variance.py: coupled PG-JD 3-4x below the best baseline
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


def significance(value: float, stderr: float, threshold: float) -> str:
    """Where ``value`` lies against ``threshold``: "below" / "above" when more than
    NUM_STDERR standard errors below / above it, else "within noise"."""
    if value + NUM_STDERR * stderr < threshold:
        return "below"
    if value - NUM_STDERR * stderr > threshold:
        return "above"
    return "within noise"


def _where(row: dict) -> str:
    return f"{row['testbed']} (sigma {row['sigma']:g}, gamma {row['gamma']:g})"


def ratio_finding(claim: str, ratios: list[dict], comparison: str, per: str,
                  threshold: float) -> Finding:
    """The claim "``comparison`` per ``per`` is below ``threshold``", judged case by case."""
    selected = [r for r in ratios if r["comparison"] == comparison and r["per"] == per]
    marks = [significance(r["ratio"], r["ratio_se"], threshold) for r in selected]
    values = [r["ratio"] for r in selected]
    parts = [f"{comparison} per {per}: {min(values):.3g} to {max(values):.3g}; significantly below "
             f"{threshold:.3g} in {marks.count('below')} of {len(selected)} cases"]
    for mark in ("within noise", "above"):
        where = [_where(r) for r, m in zip(selected, marks) if m == mark]
        name = "not significant" if mark == "within noise" else "ABOVE"
        if len(where) == len(selected):
            parts.append(f"{name} in every case")
        elif where:
            parts.append(f"{name} at " + ", ".join(where))
    return Finding(claim, "; ".join(parts), verdict([m == "below" for m in marks]))


def findings(ratios: list[dict], bias_rows: list[dict]) -> tuple[Finding, ...]:
    """The paper's claims (and ours) against the measured ratios and the LQR bias check."""
    out = [
        ratio_finding("Corollary 9: for the Gaussian policy the (uncoupled) weak-derivative sample "
                      "has lower variance than the score-function sample (per sample, the "
                      "paper's accounting)", ratios, "JD uncoupled / SF", "sample", 1.0),
        ratio_finding("Corollary 9 at equal budgets: JD's lower variance survives the cost of its "
                      "second roll-out (per env step)", ratios, "JD uncoupled / SF", "env step", 1.0),
        ratio_finding("Corollary 9 read broadly (the abstract: lower than 'the popular score-function "
                      "approach'): plain PG-JD also beats PG-SF with a baseline at equal budgets",
                      ratios, "JD uncoupled / best SF + baseline", "env step", 1.0),
        ratio_finding(f"Ours (README, bench/variance.py): coupled PG-JD is at least "
                      f"{COUPLED_FACTOR:g}x below the best PG-SF with a baseline at equal budgets",
                      ratios, "JD coupled / best SF + baseline", "env step", 1.0 / COUPLED_FACTOR),
        ratio_finding("Ours: coupling the branches (common random numbers) lowers JD's variance",
                      ratios, "JD coupled / JD uncoupled", "sample", 1.0),
    ]
    if bias_rows:
        zs = [r["max_abs_z"] for r in bias_rows]
        mse = [r["mse_over_expected"] for r in bias_rows]
        out.append(Finding(
            "Theorem 3, as a check on these variances: on the LQR every estimator's mean is the "
            "exact gradient, so its MSE is its variance / N",
            f"max |z| {max(zs):.2f} over {len(zs)} (case, estimator) pairs (allowed {MAX_Z:g}); "
            f"MSE / (variance / N) {min(mse):.2f} to {max(mse):.2f}, mean {np.mean(mse):.2f} "
            "(1 when the standard errors are right)",
            verdict([z <= MAX_Z for z in zs])))
    return tuple(out)


_MARKS = {"below": "✓", "above": "✗", "within noise": "≈"}
_TABLE_COLUMNS = (("JD uncoupled / SF", "sample"), ("JD uncoupled / SF", "env step"),
                  ("JD uncoupled / best SF + baseline", "env step"), ("JD coupled / SF", "env step"),
                  ("JD coupled / best SF + baseline", "env step"), ("JD coupled / JD uncoupled", "sample"))


def _ratio_table(ratios: list[dict], cases_: list[tuple]) -> str:
    index = {(r["testbed"], r["sigma"], r["gamma"], r["comparison"], r["per"]): r for r in ratios}
    table_rows = []
    for case in cases_:
        cells = []
        for comparison, per in _TABLE_COLUMNS:
            row = index[(*case, comparison, per)]
            mark = _MARKS[significance(row["ratio"], row["ratio_se"], 1.0)]
            best = row["against"].removeprefix("SF + ").removesuffix(" baseline")
            cells.append(f"{row['ratio']:.3g} ± {row['ratio_se']:.2g} {mark}"
                         + (f" ({best})" if "best" in comparison else ""))
        table_rows.append((case[0], f"{case[1]:g}", f"{case[2]:g}", *cells))
    return markdown_table(("test bed", "sigma", "gamma", *(f"{c}, per {p}" for c, p in _TABLE_COLUMNS)),
                          table_rows)


def _variance_table(rows: list[dict], cases_: list[tuple]) -> str:
    index = {(r["testbed"], r["sigma"], r["gamma"], r["estimator"]): r for r in rows}
    labels = [e.label for e in problems.ESTIMATORS]
    return markdown_table(
        ("test bed", "sigma", "gamma", *labels),
        [(case[0], f"{case[1]:g}", f"{case[2]:g}",
          *(f"{index[(*case, e)]['var_per_step']:.3g} ± {index[(*case, e)]['var_per_step_se']:.2g}"
            for e in labels)) for case in cases_])


def _where_jd_is_not_lower(ratios: list[dict]) -> str:
    parts = []
    for comparison, _, _ in COMPARISONS:
        for per in ACCOUNTINGS:
            marks = [significance(r["ratio"], r["ratio_se"], 1.0) for r in ratios
                     if r["comparison"] == comparison and r["per"] == per]
            if marks.count("below") < len(marks):
                parts.append(f"{comparison} per {per} ({len(marks) - marks.count('below')} of "
                             f"{len(marks)} cases, {marks.count('above')} significantly higher)")
    if not parts:
        return "JD is significantly lower in every comparison and case."
    return "JD is NOT lower for " + "; ".join(parts) + "."


def _markdown(config: Config, rows: list[dict], ratios: list[dict], bias_rows: list[dict]) -> str:
    cases_ = list(dict.fromkeys((r["testbed"], r["sigma"], r["gamma"]) for r in rows))
    samples = ", ".join(f"{problems.num_samples_for_budget(config.budget, g, 1):,} at gamma {g:g}"
                        for g in sorted({r["gamma"] for r in rows}))
    pendulum = (f"; Pendulum-v1 (RBF policy on a 3x3x3 grid, fixed weights) at sigma "
                f"{', '.join(f'{s:g}' for s in config.pendulum_sigmas)} and gamma {PENDULUM_GAMMA:g}"
                if config.pendulum_sigmas else "; no Pendulum in quick mode")
    notes = [_where_jd_is_not_lower(ratios),
             "Theorems 7-8 bound the expected variance and Corollary 9 compares the bounds; we compare "
             "the variances themselves. Per env step a JD sample costs (2 + gamma) / (1 + gamma), about "
             "1.5x, the steps of a plain SF sample, so the per-step ratio is the per-sample ratio times "
             "that. The coupled estimator (common random numbers for the branches after the first "
             "action) is ours, not the paper's. The best baseline is picked per case after measuring, "
             "which favours PG-SF slightly. Pendulum has no exact gradient; its variances need none."]
    if bias_rows:
        notes.append(f"On the LQR the pooled means agree with the exact gradient (max |z| "
                     f"{max(r['max_abs_z'] for r in bias_rows):.2f}) and the MSE of one estimate is on "
                     f"average {np.mean([r['mse_over_expected'] for r in bias_rows]):.2f} times its "
                     "variance / N: these are the variances of unbiased estimates.")
    return "\n".join([
        f"Every estimator ran {config.repetitions} independent estimates per case, each of N samples "
        f"({samples}: one {config.budget:,}-step PG-SF budget), on the scalar LQR "
        f"(a = -0.4 s + sigma eps) at sigma {', '.join(f'{s:g}' for s in config.lqr_sigmas)} "
        f"(gamma {SIGMA_SWEEP_GAMMA:g}) and gamma {', '.join(f'{g:g}' for g in config.lqr_gammas)} "
        f"(sigma {GAMMA_SWEEP_SIGMA:g}){pendulum}. Per-sample variance tr C = N sum_i stderr_i^2, "
        "averaged over the repetitions with the standard error of their spread; variance per env "
        "step = tr C (b + gamma) / (1 - gamma), the variance of an estimate with a budget of one "
        "step (the equal-budget comparison). Ratios carry delta-method standard errors: "
        f"✓ JD significantly lower (ratio + {NUM_STDERR:g} stderr < 1), ✗ JD significantly "
        "HIGHER, ≈ neither.",
        "",
        _ratio_table(ratios, cases_),
        "",
        "Variance per env step (tr C (b + gamma) / (1 - gamma), ± stderr):",
        "",
        _variance_table(rows, cases_),
        "",
        " ".join(notes),
    ])


_PANELS = (
    (f"{LQR} vs sigma (gamma {SIGMA_SWEEP_GAMMA:g})", "sigma",
     lambda r: r["testbed"] == LQR and r["gamma"] == SIGMA_SWEEP_GAMMA),
    (f"{LQR} vs gamma (sigma {GAMMA_SWEEP_SIGMA:g})", "gamma",
     lambda r: r["testbed"] == LQR and r["sigma"] == GAMMA_SWEEP_SIGMA),
    (f"{PENDULUM} vs sigma (gamma {PENDULUM_GAMMA:g})", "sigma", lambda r: r["testbed"] == PENDULUM),
)


def _plot(rows: list[dict], path: Path) -> None:
    with plotting.figure(path, ncols=len(_PANELS), figsize=(16, 4.8)) as (_, axes):
        for ax, (title, x_name, keep) in zip(axes, _PANELS):
            ax.set_title(title)
            selected = [r for r in rows if keep(r)]
            if not selected:
                ax.text(0.5, 0.5, "not measured in this run", ha="center", va="center",
                        transform=ax.transAxes)
                ax.set_xticks([])
                ax.set_yticks([])
                continue
            for label, _ in problems.ESTIMATORS:
                line = sorted((r for r in selected if r["estimator"] == label), key=lambda r: r[x_name])
                x = np.array([r[x_name] for r in line])
                x = 1.0 / (1.0 - x) if x_name == "gamma" else x
                ax.errorbar(x, [r["var_per_step"] for r in line],
                            yerr=[NUM_STDERR * r["var_per_step_se"] for r in line],
                            fmt="o-", capsize=3, label=label)
            values = sorted({r[x_name] for r in selected})
            ticks = [1.0 / (1.0 - v) for v in values] if x_name == "gamma" else values
            if len(ticks) > 1:  # a log axis needs a range
                ax.set_xscale("log")
            ax.set_xticks(ticks, [f"{v:g}" for v in values])
            ax.set_xticks([], minor=True)
            ax.set_yscale("log")
            ax.set_xlabel("gamma (at 1 / (1 - gamma))" if x_name == "gamma" else "sigma")
            ax.set_ylabel("variance per env step (2 stderr bars)")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)


def run(out_dir: Path, *, quick: bool, seed: int, progress: Callable[[str], None]) -> StudyResult:
    """Measure every estimator's variance on every case; write CSVs, PNG, findings."""
    config = QUICK if quick else FULL
    key = jax.random.key(seed)
    testbeds = {LQR: lqr_testbed(), PENDULUM: pendulum_testbed() if config.pendulum_sigmas else None}
    groups: dict[tuple[str, float], list[tuple[int, Case]]] = {}
    for index, case in enumerate(cases(config)):
        groups.setdefault((case.testbed, case.gamma), []).append((index, case))
    rows, bias_rows = [], []
    for (testbed, _), group in groups.items():
        group_rows, group_bias = measure(key, testbeds[testbed], group, config, progress)
        rows += group_rows
        bias_rows += group_bias
    ratios = ratio_rows(rows)
    runs.write_csv(out_dir / f"{NAME}.csv", rows)
    runs.write_csv(out_dir / f"{NAME}_ratios.csv", ratios)
    runs.write_csv(out_dir / f"{NAME}_bias.csv", bias_rows)
    _plot(rows, out_dir / f"{NAME}.png")
    return StudyResult(NAME, TITLE, findings(ratios, bias_rows), _markdown(config, rows, ratios, bias_rows),
                       (f"{NAME}.csv", f"{NAME}_ratios.csv", f"{NAME}_bias.csv", f"{NAME}.png"))
