"""The paper's closing remark (Sec. VI), measured: gradient samples against the size of the state.

With a linear mean mu = K s, the score of the Gaussian policy, (a - K s) s^T / sigma^2, is
unbounded in s; the paper says this "results in convergence issues" on unbounded state
spaces, while with the Jordan decomposition convergence "is ensured due to the absence
of explicit function of s". Through the chain rule d mu / dK = s, a weak-derivative
sample c (Q(s, a+) - Q(s, a-)) s^T carries a factor s as well, so the study measures how
fast each sample grows instead of assuming it (``unbounded_measure``: growth,
distributions at fixed states, learning on an unstable LQR). This module is the study
around the measurements: ``run`` (measure, write the CSVs), the findings, tables and figure.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np

from weakpg._src import runs
from weakpg._src.app import plotting
from weakpg._src.app.studies import problems
from weakpg._src.app.studies.base import Finding, StudyResult, markdown_table
from weakpg._src.app.studies.unbounded_measure import (
    FIT_FROM,
    FULL,
    GAMMA,
    GAP_TOL,
    LEARNERS,
    LEARNING_ENV,
    LEARNING_START,
    QUICK,
    STATE_ESTIMATORS,
    Budget,
    best_rate,
    measure_distributions,
    measure_growth,
    measure_learning,
)

NAME = "unbounded"
TITLE = "The closing remark (Sec. VI): gradient samples and learning with unbounded states"
GROWS = 0.5  # a growth exponent above this counts as growing with |s|
MARGIN = 0.5  # "grows more slowly": an exponent smaller than SF's by at least this


def _growth_findings(exponents: dict[tuple[str, str], float], budget: Budget) -> tuple[Finding, Finding]:
    """The remark as stated (JD does not grow) and its weaker reading (JD grows more slowly)."""
    listed = "; ".join(
        f"{p}: " + ", ".join(f"{e.label} {exponents[(p, e.label)]:.2f}" for e in budget.estimators)
        for p in budget.problems)
    where = f"exponent p of the per-sample RMS ~ r^p over start scales r >= {FIT_FROM:g}: {listed}"
    sf = {p: exponents[(p, "SF")] for p in budget.problems}
    jd = {(p, e.label): exponents[(p, e.label)] for p in budget.problems for e in budget.estimators
          if e.options["estimator"] == "jd"}
    jd_grows = [v > GROWS for v in jd.values()]
    if any(v <= GROWS for v in sf.values()) or all(jd_grows):
        strong = "does not hold"
    else:
        strong = "mixed" if any(jd_grows) else "holds"
    slower = [sf[p] - v >= MARGIN for (p, _), v in jd.items()]
    weak = "holds" if all(slower) else "does not hold" if not any(slower) else "mixed"
    return (
        Finding("Sec. VI remark: with a linear mean the score-function sample grows with the state's "
                "norm, the weak-derivative sample does not", f"{where}; growth means p > {GROWS:g}", strong),
        Finding("Weaker reading of the remark: the weak-derivative sample grows more slowly with the "
                "state's norm than the score-function sample",
                f"{where}; slower means p at least {MARGIN:g} below SF's (every JD variant)", weak),
    )


def _learning_finding(rows: list[dict], budget: Budget) -> Finding:
    """The remark's two halves, each method at its best alpha_0 of the grid.

    PG-SF has convergence issues: some run diverges at every alpha_0, or fewer than half its
    runs converge at its best one. PG-JD converges: at its best alpha_0 no run diverges and
    at least half converge. Both halves: holds; one: mixed; neither: does not hold.
    """
    parts, issues, converges = [], False, False
    for learner in budget.learners:
        mine = [r for r in rows if r["method"] == learner.label]
        rate = best_rate(mine)
        count = lambda o, a, mine=mine: sum(r["outcome"] == o for r in mine if r["alpha_0"] == a)
        diverged = [count("diverged", a) for a in budget.learning_rates]
        parts.append(f"{learner.label}: {count('converged', rate)}/{budget.seeds} converged and "
                     f"{count('diverged', rate)} diverged at its best alpha_0 {rate:g}, diverged "
                     f"{min(diverged)}-{max(diverged)}/{budget.seeds} across alpha_0")
        if learner.label == "PG-SF":
            issues = min(diverged) > 0 or count("converged", rate) < budget.seeds / 2
        if learner.label == "PG-JD":
            converges = count("diverged", rate) == 0 and count("converged", rate) >= budget.seeds / 2
    verdict = ("does not hold", "mixed", "holds")[issues + converges]
    return Finding(
        "Sec. VI remark: with unbounded states PG-SF has convergence issues while PG-JD converges",
        f"unstable scalar LQR, s_0 ~ N(0, 20^2), {budget.iterations} iterations of "
        f"{budget.steps_per_iteration} env steps, alpha_0 in {list(budget.learning_rates)}: "
        + "; ".join(parts) + f" (converged: final (J* - J) / (-J*) <= {GAP_TOL:g})", verdict)


def _plot_growth(ax: Any, growth: list[dict], budget: Budget) -> None:
    for i, estimator in enumerate(budget.estimators):
        for p, style in zip(budget.problems, ("-", "--")):
            mine = [r for r in growth if r["problem"] == p and r["estimator"] == estimator.label]
            ax.loglog([r["radius"] for r in mine], [r["rms"] for r in mine], style, marker="o",
                      color=f"C{i}", label=f"{estimator.label} ({p})")
    ax.axvline(FIT_FROM, color="grey", lw=0.5)
    ax.set(xlabel="start scale r (s_0 ~ N(0, r^2 init_cov))", ylabel="per-sample RMS of the gradient",
           title="Roll-out gradient samples against the size of the state")
    ax.legend(fontsize=7)


def _plot_spread(ax: Any, distributions: list[dict]) -> None:
    for i, label in enumerate(STATE_ESTIMATORS):
        mine = [r for r in distributions if r["estimator"] == label]
        ax.loglog([r["state"] for r in mine], [r["rms"] / abs(r["exact"]) for r in mine],
                  marker="o", color=f"C{i}", label=label)
    ax.set(xlabel="|s|", ylabel="RMS / |exact gradient|",
           title="Exact Q at a fixed state: relative spread of one sample")
    ax.legend(fontsize=8)


def _plot_histograms(ax: Any, samples: dict[str, np.ndarray], states: tuple[float, ...]) -> None:
    edges = np.linspace(-4, np.log10(max(np.abs(v).max() for v in samples.values())) + 0.5, 60)
    for label in ("SF", "JD coupled"):
        color = f"C{STATE_ESTIMATORS.index(label)}"  # the colours of the spread panel
        for index, style in ((0, ":"), (len(states) - 1, "-")):
            values = np.log10(np.maximum(np.abs(samples[label][index]), 1e-4))
            ax.hist(values, bins=edges, histtype="step", ls=style, color=color, density=True,
                    label=f"{label}, |s| = {states[index]:g}")
    ax.set(xlabel="log10 |gradient sample|", ylabel="density",
           title="Distribution of one sample (exact Q), small and large |s|")
    ax.legend(fontsize=8)


def _plot_learning(ax: Any, curves: dict[str, tuple[float, np.ndarray]]) -> None:
    for i, (label, (rate, gaps)) in enumerate(curves.items()):
        shown = np.clip(gaps, 1e-5, None)
        ax.plot(np.median(shown, axis=0), color=f"C{i}", label=f"{label}, alpha_0 {rate:g} (median)")
        for run in shown:
            ax.plot(run, color=f"C{i}", lw=0.4, alpha=0.5)
    ax.axhline(GAP_TOL, color="grey", lw=0.5)
    ax.set(yscale="log", xlabel="iteration", ylabel="(J* - J) / |J*| (a diverged run ends its line)",
           title="Learning on the unstable LQR, best alpha_0 per method")
    ax.legend(fontsize=8)


def _plot(path: Path, growth: list[dict], distributions: list[dict], samples: dict[str, np.ndarray],
          curves: dict[str, tuple[float, np.ndarray]], budget: Budget) -> None:
    """Four panels: growth against r, relative spread against |s|, histograms, learning curves."""
    with plotting.figure(path, nrows=2, ncols=2, figsize=(12, 9)) as (_, axes):
        _plot_growth(axes[0, 0], growth, budget)
        _plot_spread(axes[0, 1], distributions)
        _plot_histograms(axes[1, 0], samples, budget.states)
        _plot_learning(axes[1, 1], curves)


def run(out_dir: Path, *, quick: bool, seed: int, progress: Callable[[str], None]) -> StudyResult:
    """Measure growth, distributions and learning; write unbounded*.csv and unbounded.png."""
    budget = QUICK if quick else FULL
    key = jax.random.key(seed)
    say = lambda line: progress(f"{NAME}: {line}")  # noqa: E731
    growth, exponents = measure_growth(jax.random.fold_in(key, 0), budget, say)
    say("distribution of one sample at fixed states, exact Q")
    distributions, samples = measure_distributions(jax.random.fold_in(key, 1), budget)
    k_star = LEARNING_ENV.optimal_gain(GAMMA)
    outcomes, medians, curves = measure_learning(jax.random.fold_in(key, 2), budget, k_star, say)

    files = (f"{NAME}.csv", f"{NAME}_samples.csv", f"{NAME}_learning.csv", f"{NAME}_curves.csv",
             f"{NAME}.png")
    for name, rows in zip(files, (growth, distributions, outcomes, medians)):
        runs.write_csv(out_dir / name, rows)
    _plot(out_dir / files[-1], growth, distributions, samples, curves, budget)
    findings = (*_growth_findings(exponents, budget), _learning_finding(outcomes, budget))
    return StudyResult(NAME, TITLE, findings,
                       _markdown(budget, growth, distributions, outcomes, k_star), files)


def _cell(rows: list[dict], column: str, **where: object) -> object:
    """``column`` of the one row whose fields match ``where``."""
    return next(r[column] for r in rows if all(r[k] == v for k, v in where.items()))


def _markdown(budget: Budget, growth: list[dict], distributions: list[dict], outcomes: list[dict],
              k_star: np.ndarray) -> str:
    low, high = budget.radii[0], budget.radii[-1]
    growth_table = markdown_table(
        ("Problem", "Roll-out estimator", f"RMS at r = {low:g}", f"RMS at r = {high:g}",
         f"exponent (r >= {FIT_FROM:g})"),
        [(p, e.label, *(f"{_cell(growth, 'rms', problem=p, estimator=e.label, radius=r):.3g}"
                        for r in (low, high)),
          f"{_cell(growth, 'exponent', problem=p, estimator=e.label, radius=low):.2f}")
         for p in budget.problems for e in budget.estimators])
    small, large = budget.states[0], budget.states[-1]
    spread = lambda label, s: (_cell(distributions, "rms", estimator=label, state=s)
                               / abs(_cell(distributions, "exact", estimator=label, state=s)))
    state_table = markdown_table(
        ("Exact Q, fixed state", f"exponent (\\|s\\| >= {FIT_FROM:g})",
         f"RMS / \\|exact\\| at \\|s\\| = {small:g}", f"at \\|s\\| = {large:g}"),
        [(label, f"{_cell(distributions, 'exponent', estimator=label, state=small):.2f}",
          f"{spread(label, small):.3g}", f"{spread(label, large):.3g}") for label in STATE_ESTIMATORS])
    learning_rows = []
    for learner in budget.learners:
        mine = [r for r in outcomes if r["method"] == learner.label]
        best = best_rate(mine)
        for rate in budget.learning_rates:
            at = [r for r in mine if r["alpha_0"] == rate]
            learning_rows.append((
                learner.label + (" (best)" if rate == best else ""), at[0]["batch_size"], f"{rate:g}",
                *(sum(r["outcome"] == o for r in at) for o in ("converged", "stalled", "diverged")),
                f"{np.median([r['final_gap'] for r in at]):.3g}"))
    learning_table = markdown_table(
        ("Method", "batch", "alpha_0", "converged", "stalled", "diverged", "median final gap"),
        learning_rows)
    return "\n".join([
        f"Linear-Gaussian policy a = K s + {problems.SIGMA:g} eps, gamma {GAMMA:g}. Growth: the LQRs "
        f"of the other studies with s_0 ~ N(0, r^2 init_cov), {budget.num_samples} roll-out samples "
        "per estimate and the same random numbers at every r; the exponent is the log-log slope of "
        "the per-sample RMS sqrt(E||g||^2). Distributions: one-sample estimates of grad_K E_a Q(s, a) "
        f"at fixed states of the scalar LQR with the exact Q, {budget.draws} draws each. Learning: "
        "Algorithm 2 with alpha_k = alpha_0 / (k + 1)^0.6 on the scalar LQR A = 1.05, B = 0.5, Q = 1, "
        f"R = 0.1, noise 0.1, s_0 ~ N(0, 20^2), from K = {LEARNING_START[0][0]:g} "
        f"(K* = {k_star[0, 0]:.3f}), {budget.seeds} seeds per alpha_0, {budget.iterations} iterations "
        f"of {budget.steps_per_iteration} env steps each (batch sizes set by the steps per sample); "
        f"gap = (J* - J) / (-J*), converged when the final gap is at most {GAP_TOL:g}, diverged when "
        "sqrt(gamma) rho(A + B K) >= 1 (J = -inf) or K is NaN at some iteration.",
        "", growth_table, "", state_table, "", learning_table, "",
        "Notes. Both samples carry the chain-rule factor d mu / dK = s, so the weak-derivative sample "
        "is not free of s: on the LQR the SF sample grows like |s|^3 and the coupled JD sample like "
        "|s|^2, one power less, because Q(s, a+) - Q(s, a-) with a shared Rayleigh draw is linear "
        "in s. The same power is removed from SF by any difference that cancels the s^2 part of Q: "
        "a roll-out baseline with common random numbers, or the baseline Q(s, mu) with the exact Q. "
        "Uncoupled JD roll-outs have independent random horizons, whose returns differ by O(|s|^2), "
        "so they grow like SF. Relative to the exact gradient (which grows like |s|^2) the SF sample "
        "spreads in proportion to |s|, and on the unstable LQR one large sample is enough to throw K "
        "out of the stabilising region."
        + (" PG-SF with a roll-out baseline (common random numbers) is in the learning table to test "
           "whether that difference of coupled returns, rather than the weak derivative as such, is "
           "what PG-JD gains." if LEARNERS[2] in budget.learners else ""),
    ])
