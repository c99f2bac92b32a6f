"""Theorems 4-5: stochastic gradient ascent with diminishing steps, measured on the LQR.

``convergence_measure`` trains every method at every step-size power p from many seeds
and records the exact ||grad J(theta_k)||^2 along the way. This module is the study
around it: ``run`` (measure, write the CSVs) and the findings, table and figure that
hold the measurements against

  Theorem 4 (almost-sure convergence): the fraction of seeds with
      ||grad J(theta_k)||^2 < eps, and |K_k - K*|;
  Theorem 5 (rate): the log-log slope of the mean over seeds of ||grad J(theta_k)||^2
      against the O(1/sqrt(k)) bound (slope -1/2; a steeper slope is within the bound).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np

from weakpg._src import runs
from weakpg._src.app import plotting
from weakpg._src.app.studies import problems
from weakpg._src.app.studies.base import Finding, StudyResult, markdown_table, verdict
from weakpg._src.app.studies.convergence_measure import (
    EPS_FRACTION,
    FULL,
    GAMMA,
    METHODS,
    QUICK,
    START,
    STEP_BUDGET,
    Config,
    measure,
)

NAME = "convergence"
TITLE = "Convergence (Theorems 4-5): diminishing-step gradient ascent on the LQR"
CONVERGED_FRACTION = 0.9  # a run "converged" when this fraction of its seeds is within eps
BOUND_SLOPE = -0.5  # log-log slope of the O(1/sqrt(k)) bound


def within_bound(slope: float, stderr: float) -> bool:
    """Whether a fitted slope is at most -1/2 within two standard errors (NaN: no)."""
    return bool(slope - 2.0 * stderr <= BOUND_SLOPE)


def run(out_dir: Path, *, quick: bool, seed: int, progress: Callable[[str], None]) -> StudyResult:
    """Train every (method, p) over many seeds; write CSVs and a PNG; return the findings."""
    config = QUICK if quick else FULL
    problem = problems.lqr_problem("scalar LQR", GAMMA, weights=((START,),))
    optimum = problem.env.optimal_gain(GAMMA)
    key = jax.random.key(seed)
    curves, fits = [], []
    for index, method in enumerate(METHODS):
        if method.label not in config.methods:
            continue
        started = time.perf_counter()
        method_curves, method_fits = measure(jax.random.fold_in(key, index), problem, method, config,
                                              optimum)
        curves += method_curves
        fits += method_fits
        slopes = ", ".join(f"{f['slope']:.2f}" for f in method_fits)
        progress(f"  {method.label}: {len(config.powers)} powers x {config.num_seeds} seeds x "
                 f"{config.iterations} iterations, slopes {slopes} "
                 f"({time.perf_counter() - started:.0f} s)")
    runs.write_csv(out_dir / f"{NAME}.csv", curves)
    runs.write_csv(out_dir / f"{NAME}_fits.csv", fits)
    _plot(curves, fits, out_dir / f"{NAME}.png")
    return StudyResult(NAME, TITLE, _findings(fits, config), _markdown(fits, config, problem, optimum),
                       (f"{NAME}.csv", f"{NAME}_fits.csv", f"{NAME}.png"))


def _converged(fit: dict) -> bool:
    return fit["fraction_within_eps"] >= CONVERGED_FRACTION and fit["escaped_seeds"] == 0


def _findings(fits: list[dict], config: Config) -> tuple[Finding, ...]:
    fractions = "; ".join(
        f"{label}: " + ", ".join(f"{round(f['fraction_within_eps'] * f['seeds'])}/{f['seeds']}"
                                 for f in fits if f["method"] == label)
        for label in config.methods)
    escaped = sum(f["escaped_seeds"] for f in fits)
    slopes = "; ".join(
        f"{label}: " + ", ".join(f"{f['slope']:.2f} ± {f['slope_stderr']:.2f}"
                                 for f in fits if f["method"] == label)
        for label in config.methods)
    powers = ", ".join(f"{p:g}" for p in config.powers)
    return (
        Finding("Theorem 4: with alpha_k = alpha_0 / (k + 1)^p the iterates converge almost "
                "surely to a stationary point",
                f"seeds with ||grad J||^2 < eps = {fits[0]['eps']:.3g} after {config.iterations} "
                f"iterations, p = {powers}: {fractions}; seeds that left the stable gains: "
                f"{escaped}",
                verdict([_converged(f) for f in fits])),
        Finding("Theorem 5: E||grad J(theta_k)||^2 decays at least as fast as O(1/sqrt(k))",
                f"log-log slope (± bootstrap stderr) over k = {fits[0]['fit_from']}-"
                f"{fits[0]['fit_to']}, p = {powers}: {slopes}; bound -0.5",
                verdict([within_bound(f["slope"], f["slope_stderr"]) for f in fits])),
    )


def _markdown(fits: list[dict], config: Config, problem: problems.Problem, optimum: np.ndarray) -> str:
    table = markdown_table(
        ("method", "alpha_0", "B", "p", "env steps / iter", "sample sd at K_0", "first-step noise",
         "E‖∇J‖² at k=0", f"at k={config.iterations}", "slope ± se", "within eps",
         "mean (max) |K−K*|", "escaped"),
        [(f["method"], f"{f['alpha0']:g}", f["batch_size"], f"{f['p']:g}",
          f"{f['env_steps_per_iteration']:.1f}", f"{f['sample_sd_at_start']:.2f}",
          f"{f['first_step_noise']:.2f}", f"{f['initial_sq_grad']:.3g}", f"{f['final_mean_sq_grad']:.3g}",
          f"{f['slope']:.2f} ± {f['slope_stderr']:.2f}", f"{f['fraction_within_eps']:.0%}",
          f"{f['mean_gain_error']:.3g} ({f['max_gain_error']:.3g})", f["escaped_seeds"]) for f in fits],
        align="lrrrrrrrrrrrr")
    env = problem.env
    a, b = float(env.A[0, 0]), float(env.B[0, 0])
    low, high = sorted((sign / np.sqrt(GAMMA) - a) / b for sign in (-1.0, 1.0))
    by_method = {label: [f for f in fits if f["method"] == label] for label in config.methods}
    jd = by_method["JD coupled"][0]
    notes = [
        "The slope is the least-squares fit of log E||grad J(theta_k)||^2 (the mean over seeds "
        f"of the iterate's exact value) against log k over k = {jd['fit_from']}-{jd['fit_to']}: "
        "the iterate itself rather than the running minimum or average that such theorems "
        "bound, so a fast start cannot make it look steeper, and the last decade rather than "
        "the start, which the initial transient dominates.",
        "alpha_0 differs by method so that the first step's noise (alpha_0 times the standard "
        "error of g_0) is comparable. The per-sample standard deviation at K_0 (from g_0's "
        "standard error: a low estimate, the samples are heavy-tailed) is "
        + ", ".join(f"{label} {group[0]['sample_sd_at_start']:.2f}" for label, group in by_method.items())
        + f"; at PG-JD's alpha_0 = {jd['alpha0']:g} the first step's noise would be "
        + ", ".join(f"{label} {group[0]['first_step_noise'] * jd['alpha0'] / group[0]['alpha0']:.2f}"
                    for label, group in by_method.items() if label != "JD coupled")
        + f", against a distance of {min(START - low, high - START):.2f} from K_0 to the nearest "
        "unstable gain.",
    ]
    if "SF" in by_method:
        ratios = [s["final_mean_sq_grad"] / j["final_mean_sq_grad"]
                  for j, s in zip(by_method["JD coupled"], by_method["SF"])]
        notes.append(f"At equal env steps (k = {config.iterations}, about {STEP_BUDGET} steps per "
                     "iteration for every method) plain PG-SF's E||grad J||^2 is "
                     f"{min(ratios):.0f}-{max(ratios):.0f} times PG-JD's across p.")
    shallow = [f for f in fits if not within_bound(f["slope"], f["slope_stderr"])]
    if shallow:
        notes.append("Slopes above -0.5 (beyond two standard errors): " + ", ".join(
            f"{f['method']} at p = {f['p']:g} ({f['slope']:.2f})" for f in shallow) + ". With small "
            "steps that shrink fast the iterates are still on their way after "
            f"{config.iterations} iterations: the deterministic part of the error decays like "
            "exp(-c sum_j alpha_j), sum_j alpha_j ~ k^(1-p), and bounds of this type of proof "
            "weaken from k^(-1/2) at p = 1/2 to k^(-min(p, 1-p)) elsewhere, so such a slope "
            "does not contradict the theorem, but it does not show the k^(-1/2) rate either.")
    slow = [f for f in fits if not _converged(f)]
    if slow:
        notes.append(f"Runs with fewer than {CONVERGED_FRACTION:.0%} of their seeds within eps "
                     "(or with escapes): " + ", ".join(
                         f"{f['method']} at p = {f['p']:g} ({f['fraction_within_eps']:.0%})" for f in slow)
                     + ". Almost-sure convergence is a statement about k -> infinity; a fraction "
                     "below one at a finite k is what a slowly converging run looks like, and "
                     "`convergence.png` shows whether it is still rising.")
    return "\n".join([
        f"Scalar LQR (A {a:g}, B {b:g}, Q {float(env.Q[0, 0]):g}, R {float(env.R[0, 0]):g}, "
        f"noise {float(env.noise_cov[0, 0]):g}), gamma {GAMMA:g}, sigma {float(problems.SIGMA):g}: "
        f"J is finite for {low:.2f} < K < {high:.2f} and the Riccati equation gives "
        f"K* = {float(optimum.ravel()[0]):.4f}. Every (method, p) ran {config.num_seeds} seeds "
        f"for {config.iterations} iterations of alpha_k = alpha_0 / (k + 1)^p from K_0 = "
        f"{START:g}, with B samples per iteration so that every method spends about "
        f"{STEP_BUDGET} env steps per iteration. ||grad J||^2 is exact at every iterate; "
        f"eps = {EPS_FRACTION:g} ||grad J(theta_0)||^2; a seed whose gain leaves the stable "
        "interval counts as escaped and is left out of the means.",
        "",
        table,
        "",
        *[n + "\n" for n in notes],
        "`convergence.png`: E||grad J(theta_k)||^2 against k (log-log) per method and p, "
        "with a k^(-1/2) reference line, and the fraction of seeds within eps against k.",
    ])


def _plot(curves: list[dict], fits: list[dict], path: Path) -> None:
    methods = list(dict.fromkeys(f["method"] for f in fits))
    with plotting.figure(path, nrows=2, ncols=len(methods),
                         figsize=(4.5 * len(methods), 7.5)) as (_, axes):
        axes = np.asarray(axes).reshape(2, len(methods))
        for column, method in enumerate(methods):
            top, bottom = axes[:, column]
            for fit in (f for f in fits if f["method"] == method):
                rows = [r for r in curves
                        if r["method"] == method and r["p"] == fit["p"] and r["iteration"] > 0]
                k = [r["iteration"] for r in rows]
                (line,) = top.plot(k, [r["mean_sq_grad"] for r in rows], label=f"p = {fit['p']:g}")
                bottom.plot(k, [r["fraction_within_eps"] for r in rows], color=line.get_color(),
                            label=f"p = {fit['p']:g}")
            k = np.asarray(k, np.float64)
            top.plot(k, fits[0]["initial_sq_grad"] * k**BOUND_SLOPE, "k--", alpha=0.6, label="k^(-1/2)")
            top.set(xscale="log", yscale="log", xlabel="iteration k", ylabel="E||grad J(theta_k)||^2",
                    title=method)
            bottom.set(xscale="log", ylim=(-0.02, 1.02), xlabel="iteration k",
                       ylabel=f"fraction of seeds with ||grad J||^2 < {fits[0]['eps']:.2g}")
            for ax in (top, bottom):
                ax.grid(True, alpha=0.3)
                ax.legend(fontsize=8)
