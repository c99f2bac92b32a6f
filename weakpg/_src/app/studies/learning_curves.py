"""Learning-curve studies: PG-JD against PG-SF, from several seeds, on one environment.

``reproduce(setup, ...)`` trains the policy a ``StudySetup`` (``learning_setups``)
describes with each method from several seeds, evaluates it along the way with common
random numbers (``train.make_evaluator``) and writes the curves, two figures and a
summary table with standard errors across seeds. ``STUDIES`` names the setups that
``weakpg reproduce`` runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from weakpg._src import runs, validation
from weakpg._src.app import plotting
from weakpg._src.app import tensorboard as event_files
from weakpg._src.app.studies.learning_setups import CARTPOLE, METHODS, PENDULUM, StudySetup
from weakpg._src.driver import train_seeds
from weakpg._src.policies import Policy, Softmax

CURVE_FIELDS = ("method", "seed", "iteration", "env_steps", "wall_seconds", "discounted_return",
                "episode_return")
OUTPUT_FILES = ("runs", "curves.csv", "curves.png", "curves_discounted.png", "summary.md")
STUDIES = {"pendulum": PENDULUM, "cartpole": CARTPOLE}


def _summarise(finals: dict[str, list[dict]]) -> dict[str, dict[str, float]]:
    table = {}
    for label, rows in finals.items():
        entry = {"seeds": len(rows)}
        for field in ("episode_return", "discounted_return"):
            mean, stderr = plotting.mean_and_stderr([r[field] for r in rows])
            entry[field], entry[f"{field}_stderr"] = float(mean), float(stderr)
        entry["env_steps"] = float(np.mean([r["env_steps"] for r in rows]))
        entry["wall_seconds"] = float(np.mean([r["wall_seconds"] for r in rows]))
        table[label] = entry
    return table


def _comparison(table: dict[str, dict[str, float]], field: str) -> dict[str, Any]:
    """The best method on ``field``, the runner-up, and the gap in standard errors."""
    best, second = sorted(table, key=lambda label: table[label][field], reverse=True)[:2]
    gap = table[best][field] - table[second][field]
    stderr = math.hypot(table[best][f"{field}_stderr"], table[second][f"{field}_stderr"])
    if math.isnan(stderr) or stderr > 0:
        z = gap / stderr  # nan: a single seed has no standard error
    else:  # every seed of both methods ended at one value (CartPole's ceiling of 500, say)
        z = math.inf if gap > 0 else 0.0
    return {"best": best, "runner_up": second, "gap": gap, "gap_in_stderr": z,
            "significant": bool(z > 2)}


def _cell(mean: float, stderr: float) -> str:
    return f"{mean:.1f}" if math.isnan(stderr) else f"{mean:.1f} ± {stderr:.1f}"


def _sentence(c: dict[str, Any], what: str, table: dict[str, dict[str, float]], field: str) -> str:
    if c["gap"] == 0:
        return (f"{c['best']} and {c['runner_up']} ended level in {what} "
                f"({table[c['best']][field]:.1f}).")
    head = (f"{c['best']} ended highest in {what} ({table[c['best']][field]:.1f} against "
            f"{table[c['runner_up']][field]:.1f} for the runner-up, {c['runner_up']})")
    if math.isnan(c["gap_in_stderr"]):
        return f"{head}; with one seed there is no standard error, so no claim that the gap is real."
    if math.isinf(c["gap_in_stderr"]):
        return f"{head}; every seed of each ended at one value, so the gap of {c['gap']:.1f} is exact."
    verdict = "exceeds" if c["significant"] else "does not exceed"
    return (f"{head}; the gap of {c['gap']:.1f} is {c['gap_in_stderr']:.1f} standard errors, so it "
            f"{verdict} 2 standard errors.")


def _greedy_action(policy: Policy) -> str:
    """What evaluation's episode return follows: the zero-noise action of ``policy.act``."""
    return "most likely action" if isinstance(policy, Softmax) else "mean action"


def _policy_sentence(setup: StudySetup, policy: Policy) -> str:
    if isinstance(policy, Softmax):
        return f"Policy: softmax over the {policy.num_actions} actions."
    squash = "tanh-squashed actions" if setup.squash == "tanh" else "actions clipped by the environment"
    return f"Policy: sigma {setup.sigma:g} ({'learned' if setup.learn_sigma else 'fixed'}), {squash}."


def _summary_markdown(setup: StudySetup, policy: Policy, quick: bool, seeds: int,
                      table: dict[str, dict[str, float]], comparisons: dict[str, dict]) -> str:
    budget = setup.budget(quick)
    schedule = f" / (k + 1)^{setup.schedule_power:g}" if setup.schedule_power else ", constant"
    lrs = ", ".join(f"{m.label} {setup.lr_overrides.get(m.label, setup.lr):g}" for m in METHODS)
    kind = "linear softmax" if isinstance(policy, Softmax) else "linear-Gaussian"
    greedy = _greedy_action(policy)
    lines = [
        f"# PG-JD against PG-SF on {setup.title}",
        "",
        f"Each method trained a {kind} policy on {setup.env_id} (no time limit: the paper's "
        f"infinite-horizon discounted problem) from {seeds} seed(s), "
        f"{'quick mode, ' if quick else ''}{budget:,} environment steps per run, phantom roll-outs "
        "included. Evaluations use one fixed set of start states and noise for every method and "
        "iteration (common random numbers): the discounted return J of the stochastic policy (the "
        f"quantity of the paper's Fig. 1) and the undiscounted {setup.episode_length}-step return of "
        f"the {greedy} (what other libraries report for {setup.env_id}).",
        "",
        f"{setup.provenance} Features: {setup.features!r}, {policy.features.dim} of them, "
        f"{setup.features_note}. {_policy_sentence(setup, policy)} "
        f"Optimisation: gamma {setup.gamma:g}, batch {setup.batch_size}, {setup.optimizer}, "
        f"step size alpha_0 ({lrs}){schedule}, "
        f"gradient clipping {setup.max_grad_norm if setup.max_grad_norm is not None else 'none'}; "
        f"evaluation every {setup.eval_every} iterations on {setup.eval_episodes} episodes.",
        "",
        f"Final evaluation, mean ± standard error across {seeds} seed(s):",
        "",
        f"| Method | Episode return ({greedy}, {setup.episode_length} steps) | Discounted return J | "
        "Env steps | Wall seconds |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, e in table.items():
        lines.append(f"| {label} | {_cell(e['episode_return'], e['episode_return_stderr'])} | "
                     f"{_cell(e['discounted_return'], e['discounted_return_stderr'])} | "
                     f"{e['env_steps']:,.0f} | {e['wall_seconds']:.1f} |")
    lines += [
        "",
        _sentence(comparisons["discounted_return"], "discounted return J", table, "discounted_return"),
        _sentence(comparisons["episode_return"], "episode return", table, "episode_return"),
        "",
        "Curves: `curves_discounted.png` (J, as in Fig. 1) and `curves.png` (episode return), the "
        "mean across seeds with a 95% band; the numbers are in `curves.csv`, each run in `runs/`.",
        "",
    ]
    return "\n".join(lines)


def reproduce(setup: StudySetup, out_dir: str | Path, *, quick: bool, seeds: int,
              progress: Callable[[str], None] | None = None, tensorboard: bool = False) -> dict[str, Any]:
    """Run the study ``setup`` describes and write its curves, figures and summary.

    Trains every method of ``METHODS`` from seeds 0..seeds-1, each run in
    ``out_dir/runs/<method>__seed<seed>/``, then writes ``curves.csv``, ``curves.png``
    (episode return), ``curves_discounted.png`` (J, the paper's Fig. 1) and ``summary.md``.
    Everything is written into a temporary folder beside ``out_dir`` and renamed into
    place at the end, so an error or an interrupt leaves ``out_dir`` as it was.
    ``progress`` receives one line per finished run. With ``tensorboard`` each run folder
    also gets ``tensorboard/``, its metrics as TensorBoard event files (``app.tensorboard``).

    Returns {"methods": label -> final-evaluation statistics, "comparisons": field ->
    best method, runner-up and gap in standard errors, "setup", "quick", "seeds",
    "env_steps", "out_dir"}.
    """
    seeds = validation.check_positive_int("seeds", seeds)
    if tensorboard:
        event_files.require()
    out_dir = Path(out_dir)
    runs.check_output_folder(out_dir, OUTPUT_FILES)
    setup.train_config(METHODS[0], 0, setup.budget(quick))  # checks the settings before any work
    env = setup.make_env()
    policy = setup.make_policy(env)
    budget = setup.budget(quick)
    greedy = f"return of the {_greedy_action(policy)} ({setup.episode_length} steps)"

    with runs.staged_folder(out_dir, OUTPUT_FILES) as staging:
        curves, finals, curve_rows = {}, {}, []
        for method in METHODS:  # the seeds of a method: one vmapped program, one compilation
            config = setup.train_config(method, 0, budget)
            run_dirs = [staging / "runs" / f"{method.slug}__seed{seed}" for seed in range(seeds)]
            for seed, run_dir in enumerate(run_dirs):
                run_dir.mkdir(parents=True)
                runs.write_json(run_dir / runs.CONFIG_FILE, {
                    "env_id": setup.env_id, "method": method.label, "quick": quick, "env_steps": budget,
                    **dataclasses.asdict(dataclasses.replace(config, seed=seed)),
                    "setup": dataclasses.asdict(setup)})
            writers = event_files.EventWriters(run_dirs) if tensorboard else contextlib.nullcontext()
            with writers as on_rows:
                _, seed_rows = train_seeds(env, policy, config, seeds=range(seeds), run_dirs=run_dirs,
                                           episode_length=setup.episode_length, on_rows=on_rows)
            for seed, rows in enumerate(seed_rows):
                curves.setdefault(method.label, []).append(rows)
                finals.setdefault(method.label, []).append(rows[-1])
                curve_rows += [{"method": method.label, "seed": seed,
                                **{k: row[k] for k in CURVE_FIELDS[2:]}} for row in rows]
                if progress is not None:
                    last = rows[-1]
                    progress(f"{method.label} seed {seed}: episode return {last['episode_return']:.1f}, "
                             f"J {last['discounted_return']:.1f} after {last['env_steps']:,} env steps "
                             f"({last['wall_seconds']:.0f} s)")

        table = _summarise(finals)
        comparisons = {field: _comparison(table, field) for field in ("discounted_return", "episode_return")}
        runs.write_csv(staging / "curves.csv", curve_rows)
        plotting.plot_curves(curves, staging / "curves.png", y="episode_return",
                             title=f"{setup.env_id}: {greedy}")
        plotting.plot_curves(curves, staging / "curves_discounted.png", y="discounted_return",
                             title=f"{setup.env_id}: discounted return J (gamma {setup.gamma:g})")
        runs.atomic_write(staging / "summary.md",
                          _summary_markdown(setup, policy, quick, seeds, table, comparisons).encode())
    return {"methods": table, "comparisons": comparisons, "setup": dataclasses.asdict(setup),
            "quick": quick, "seeds": seeds, "env_steps": budget, "out_dir": str(out_dir)}
