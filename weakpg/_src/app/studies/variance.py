"""Theorems 7-8 and Corollary 9: the variance of weak-derivative and score-function samples.

Theorems 7-8 bound the expected variance of the plain PG-JD and PG-SF estimates and
Corollary 9 compares the bounds for the Gaussian policy: the weak derivative's is lower.
``variance_measure`` measures the variances themselves, per sample and per env step, for
every estimator on the scalar LQR and on Pendulum-v1; this module is the study around
it: ``run`` (measure, write the CSVs), the findings that judge the ratios against the
claims, the report's tables and the figure.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np

from weakpg._src import runs
from weakpg._src.app import plotting
from weakpg._src.app.studies import problems
from weakpg._src.app.studies.base import Finding, StudyResult, markdown_table, verdict
from weakpg._src.app.studies.variance_measure import (
    ACCOUNTINGS,
    COMPARISONS,
    FULL,
    GAMMA_SWEEP_SIGMA,
    LQR,
    PENDULUM,
    PENDULUM_GAMMA,
    QUICK,
    SIGMA_SWEEP_GAMMA,
    Case,
    Config,
    cases,
    lqr_testbed,
    measure,
    pendulum_testbed,
    ratio_rows,
)

NAME = "variance"
TITLE = "Variance (Theorems 7-8, Corollary 9): weak derivative against score function"
NUM_STDERR = 2.0  # a ratio is significantly below (above) a threshold beyond this many stderr
MAX_Z = 4.0  # |z| allowed for an unbiased mean, as in weakpg.testing.assert_unbiased
COUPLED_FACTOR = 3.0  # README / bench/variance.py: coupled PG-JD 3-4x below the best baseline


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
