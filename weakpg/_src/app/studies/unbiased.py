"""Study ``unbiased``: every estimator's mean against the exact gradient (Theorem 3).

Theorem 3 of the paper: the PG-JD estimate from phantom roll-outs is unbiased; the
score-function seed: a baseline that does not depend on the action keeps REINFORCE
unbiased, because E_a[b(s) grad log pi(a|s)] = b(s) grad int pi(da|s) = 0.

For each test bed and each estimator of ``problems.ESTIMATORS``, ``unbiased_measure``
gives running means and z_i = (mean_i - exact_i) / stderr_i at n = chunk, 2 chunk, ....
An unbiased estimator keeps |z_i| <= 4 (under normality P(|z| > 4) = 6.3e-5 per
comparison); a biased one has |z_i| growing like sqrt(n).

The negative control shows that the test sees bias: PG-SF whose roll-out baseline
restarts from the sampled action itself, b(s, a) = Q-hat'(s, a), an independent roll-out
(``ActionDependentBaseline``). Then E[(Q-hat(s, a) - Q-hat'(s, a)) grad log pi(a|s)] = 0:
the control's mean is 0, its bias the whole of -grad J.

This module holds the control, ``run`` (measure, write the CSV) and the findings, table
and figure.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from weakpg._src import runs
from weakpg._src.app import plotting
from weakpg._src.app.studies.base import QUICK_COMPILER_OPTIONS, Finding, StudyResult, markdown_table, verdict
from weakpg._src.app.studies.problems import ESTIMATORS, SIGMA, Estimator, Problem, flatten
from weakpg._src.app.studies.unbiased_measure import (
    Running,
    Setting,
    csv_rows,
    element_names,
    measure,
    settings,
)
from weakpg._src.distributions import Distribution
from weakpg._src.policies import Params, Policy

Array = jax.Array

NAME = "unbiased"
THRESHOLD = 4.0
CONTROL = Estimator("SF + action-dependent baseline (control)",
                    dict(estimator="sf", baseline="rollout", coupled=False))
JD_LABELS = tuple(e.label for e in ESTIMATORS if e.options["estimator"] == "jd")
SF_LABELS = tuple(e.label for e in ESTIMATORS if e.options["estimator"] == "sf")


class ActionDependentBaseline(Policy):
    """``policy`` whose score-function baseline branch replays the sampled action.

    PG-SF with ``baseline="rollout"`` draws the noise of a sample's two branches in one
    call of shape (num_samples, 2): branch 0 is the action a ~ pi, branch 1 the
    baseline's fresh action. This wrapper gives branch 1 the noise of branch 0, so the
    baseline is b(s, a) = Q-hat'(s, a), which depends on the action. With
    ``coupled=False`` Q-hat' is an independent roll-out, E[Q-hat - Q-hat' | s, a] = 0 and
    the estimator's mean is 0 instead of grad J (with ``coupled=True`` the two roll-outs
    would be identical and every sample exactly 0).

    The engine's draws have shape (steps, lanes) with lanes >= 32 for num_samples >= 32
    (``gradients.default_num_lanes``), so only the branch draw has a trailing axis of 2;
    use num_samples >= 32.
    """

    def __init__(self, policy: Policy):
        self.policy = policy
        self.action_shape = policy.action_shape
        self.num_actions = policy.num_actions

    def init(self, key: Array) -> Params:
        return self.policy.init(key)

    def dist_params(self, params: Params, obs: Array) -> dict[str, Array]:
        return self.policy.dist_params(params, obs)

    @property
    def learned_dist_params(self) -> tuple[str, ...]:
        return self.policy.learned_dist_params

    def distribution(self, dist_params: dict[str, Array]) -> Distribution:
        return self.policy.distribution(dist_params)

    def noise(self, key: Array, batch_shape: tuple[int, ...] = ()) -> Array:
        noise = self.policy.noise(key, batch_shape)
        if len(batch_shape) == 2 and batch_shape[1] == 2:
            noise = jnp.broadcast_to(noise[:, :1], noise.shape)
        return noise

    def act(self, dist_params: dict[str, Array], noise: Array) -> Array:
        return self.policy.act(dist_params, noise)

    def env_action(self, action: Array) -> Array:
        return self.policy.env_action(action)


def _cases(setting: Setting) -> list[tuple[str, Policy, dict[str, Any]]]:
    """(label, policy, options) of every estimator, and of the control where it runs."""
    policy = setting.problem.policy
    control = [(CONTROL.label, ActionDependentBaseline(policy), CONTROL.options)] if setting.control else []
    return [(e.label, policy, e.options) for e in ESTIMATORS] + control


def resolution(running: Running, exact: np.ndarray) -> float:
    """The smallest bias delta * grad J that the final n flags: min_i 4 stderr_i / |exact_i|."""
    with np.errstate(divide="ignore"):
        return float(np.min(THRESHOLD * running.stderr[-1] / np.abs(exact)))


def _plot(path: Path, results: dict[str, dict[str, Running]], problems: list[Problem]) -> None:
    """One panel per problem: the running mean of its largest gradient element over the
    exact value, +-2 stderr, for every estimator; the control heads to 0, the rest to 1."""
    ncols = min(3, len(problems))
    nrows = -(-len(problems) // ncols)
    with plotting.figure(path, nrows=nrows, ncols=ncols, figsize=(5 * ncols, 3.8 * nrows)) as (_, axes):
        axes = np.atleast_1d(axes).ravel()
        for ax, problem in zip(axes, problems):
            exact = flatten(problem.exact)
            i = int(np.argmax(np.abs(exact)))
            for label, running in results[problem.name].items():
                ratio, band = running.mean[:, i] / exact[i], 2 * running.stderr[:, i] / abs(exact[i])
                (line,) = ax.plot(running.n, ratio, marker="o", markersize=3, label=label)
                ax.fill_between(running.n, ratio - band, ratio + band, color=line.get_color(), alpha=0.15,
                                linewidth=0)
            ax.axhline(1.0, color="black", linewidth=0.8)
            ax.set_xscale("log", base=2)
            ax.set_ylim(-0.5, 2.0)
            ax.set_title(f"{problem.name}: {element_names(problem.exact)[i]}", fontsize=9)
            ax.set_xlabel("samples n")
            ax.set_ylabel("running mean / exact (+-2 se)")
            ax.grid(True, alpha=0.3)
        for ax in axes[len(problems):]:
            ax.axis("off")
        axes[0].legend(fontsize=7)


def _unbiased_finding(claim: str, labels: tuple[str, ...], results: dict[str, dict[str, Running]],
                      problems: list[Problem]) -> Finding:
    """max |z| over ``labels``' elements at the final n, where it exceeds 4, and the range of
    resolutions (what bias the test could have seen)."""
    worst = {p.name: max(float(np.max(np.abs(results[p.name][label].z[-1]))) for label in labels)
             for p in problems}
    resolutions = [resolution(results[p.name][label], flatten(p.exact)) for p in problems for label in labels]
    count = len(labels) * sum(flatten(p.exact).size for p in problems)
    failed = [name for name, z in worst.items() if z > THRESHOLD]
    where = f"; above {THRESHOLD:g} on {', '.join(failed)}" if failed else ""
    return Finding(claim, f"max |z| {max(worst.values()):.2f} over {count} elements "
                          f"({len(labels)} estimators x {len(problems)} problems) at the final n, "
                          f"{THRESHOLD:g} allowed{where}; a bias of {min(resolutions):.1%} to "
                          f"{max(resolutions):.0%} of grad J (by case) would have shown",
                   verdict([z <= THRESHOLD for z in worst.values()]))


def _control_finding(results: dict[str, dict[str, Running]]) -> Finding:
    """The control's max |z| at the final n on each problem where it runs; it must exceed 4."""
    detected = {name: float(np.max(np.abs(by_label[CONTROL.label].z[-1])))
                for name, by_label in results.items() if CONTROL.label in by_label}
    missed = [name for name, z in detected.items() if z <= THRESHOLD]
    where = f"; missed on {', '.join(missed)}" if missed else ""
    return Finding("Negative control: an action-dependent baseline is biased, and this test sees it",
                   f"control's max |z| at the final n is {min(detected.values()):.1f} on its hardest "
                   f"problem (of the {len(detected)} at gamma 0.9 where it runs), {THRESHOLD:g} "
                   f"needed{where}",
                   verdict([z > THRESHOLD for z in detected.values()]))


def _cell(running: Running | None, exact: np.ndarray) -> str:
    if running is None:
        return "not run"
    return f"{np.max(np.abs(running.z[-1])):.2f} ({resolution(running, exact):.1%})"


def _markdown(results: dict[str, dict[str, Running]], settings_: list[Setting]) -> str:
    """Setup, the table of max |z| and resolution per estimator and problem, and notes."""
    problems = [s.problem for s in settings_]
    labels = [e.label for e in ESTIMATORS] + [CONTROL.label]
    header = ("estimator",) + tuple(f"{p.name} (n={s.chunk * s.num_chunks:,})"
                                    for p, s in zip(problems, settings_))
    rows = [(label,) + tuple(_cell(results[p.name].get(label), flatten(p.exact)) for p in problems)
            for label in labels]
    elements = sum(flatten(p.exact).size for p in problems)
    comparisons = len(ESTIMATORS) * elements
    false_alarm = math.erfc(THRESHOLD / math.sqrt(2))  # P(|z| > 4), z ~ N(0, 1)
    resolutions = {(p.name, e.label): resolution(results[p.name][e.label], flatten(p.exact))
                   for p in problems for e in ESTIMATORS}
    best, worst = min(resolutions, key=resolutions.get), max(resolutions, key=resolutions.get)
    lines = [
        "Every estimator of grad J, with its standard error, from n samples pooled over independent "
        "chunks (n = chunk, 2 chunk, 4 chunk, ...), against the exact gradient of each problem "
        "(the discounted Lyapunov equation for the LQRs, linear algebra for the MDPs); the policy "
        f"is a linear Gaussian with sigma {SIGMA:g} on the LQRs and a tabular softmax on the MDPs. "
        f"z = (estimate - exact) / stderr per gradient element; |z| <= {THRESHOLD:g} is accepted. "
        "The control is PG-SF whose roll-out baseline restarts from the sampled action, "
        "b(s, a) = an independent estimate of Q(s, a): its mean is 0, its bias -grad J.",
        "",
        "Cell: max |z| over the gradient elements at the final n; in brackets the resolution, "
        "the smallest bias delta * grad J that the test flags at that n (min_i 4 stderr_i / |grad_i J|).",
        "",
        markdown_table(header, rows, align="l" + "r" * len(problems)),
        "",
        f"- Comparisons: {comparisons} elements of unbiased estimators at the final n "
        f"({elements} per estimator). Under normality P(|z| > {THRESHOLD:g}) = {false_alarm:.1e} each, "
        f"so {comparisons * false_alarm:.2g} false alarms are expected at the final n (Bonferroni: a "
        f"family-wise level of {min(1.0, comparisons * false_alarm):.2g}); the CSV also holds the "
        "smaller n, whose running means are nested, not independent.",
        f"- Resolution is what this budget can see, and it depends on the estimator's spread: from "
        f"{resolutions[best]:.1%} ({best[1]}, {best[0]}) to {resolutions[worst]:.1%} ({worst[1]}, "
        f"{worst[0]}). A bias below the bracketed share would pass unseen.",
    ]
    skipped = [p.name for p, s in zip(problems, settings_) if not s.control]
    if skipped:
        sf = ", ".join(f"{resolutions[(name, ESTIMATORS[0].label)]:.0%}" for name in skipped)
        lines.append(f"- The control is not run on {' and '.join(skipped)}: its spread there is that "
                     f"of plain SF, whose resolution is {sf}, so a bias as large as the gradient "
                     "itself is not reliably flagged at this n.")
    lines += [
        "- The value baseline is fitted on the other half of each chunk (cross-fitting), so it never "
        "sees the action it is subtracted from; its stderr treats the samples of a chunk as independent.",
        "- Files: unbiased.csv (every problem, estimator, n and element: estimate, stderr, exact, z, "
        "env_steps) and unbiased.png (running mean of the largest element over its exact value, "
        "+-2 stderr; y clipped to [-0.5, 2]).",
    ]
    return "\n".join(lines)


def run(out_dir: Path, *, quick: bool, seed: int, progress: Callable[[str], None]) -> StudyResult:
    """Measure every estimator (and the control) on every test bed; write CSV, PNG, findings."""
    settings_ = settings(quick)
    problems = [s.problem for s in settings_]
    key = jax.random.key(seed)
    results: dict[str, dict[str, Running]] = {}
    rows: list[dict[str, Any]] = []
    for p_index, setting in enumerate(settings_):
        problem = setting.problem
        results[problem.name] = {}
        for e_index, (label, policy, options) in enumerate(_cases(setting)):
            running = measure(problem, policy, options, jax.random.fold_in(jax.random.fold_in(key, p_index),
                                                                           e_index),
                              chunk=setting.chunk, num_chunks=setting.num_chunks,
                              compiler_options=QUICK_COMPILER_OPTIONS if quick else None)
            results[problem.name][label] = running
            rows += csv_rows(problem, label, running)
        final_z = {label: float(np.max(np.abs(r.z[-1]))) for label, r in results[problem.name].items()}
        control = final_z.pop(CONTROL.label, None)
        progress(f"{NAME}: {problem.name}: max |z| {max(final_z.values()):.2f} (unbiased)"
                 + (f", {control:.1f} (control)" if control is not None else "")
                 + f", n={setting.chunk * setting.num_chunks}")
    runs.write_csv(out_dir / f"{NAME}.csv", rows)
    _plot(out_dir / f"{NAME}.png", results, problems)
    findings = (
        _unbiased_finding("Theorem 3: the PG-JD estimate (coupled and uncoupled) is unbiased",
                          JD_LABELS, results, problems),
        _unbiased_finding("First seed: a baseline that ignores the action keeps the score-function "
                          "estimator unbiased (SF, SF + rollout, SF + value baseline)",
                          SF_LABELS, results, problems),
        _control_finding(results),
    )
    return StudyResult(name=NAME, title="Unbiasedness: every estimator's mean against the exact gradient",
                       findings=findings,
                       markdown=_markdown(results, settings_),
                       files=(f"{NAME}.csv", f"{NAME}.png"))
