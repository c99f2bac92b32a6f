"""Brax learning studies: PG-JD and PG-SF with an MLP policy against Brax's own PPO.

``reproduce(study, ...)`` trains the ``BraxStudy``'s MLP policy (``brax_setups``) with
each weakpg method, and Brax's PPO with its published settings (``brax_ppo``), from
several seeds, one run at a time so that each run's wall-clock is its own. It writes
the curves against env steps and against wall-clock (the mean across seeds with a 95%
band), and a summary that compares the methods at equal env steps (the end of the
budget) and at equal wall-clock (the shortest method's mean run time).
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from weakpg._src import runs, validation
from weakpg._src.app import plotting
from weakpg._src.app import tensorboard as event_files
from weakpg._src.app.studies.base import markdown_table
from weakpg._src.app.studies.brax_ppo import PPO_FIELDS, train_ppo
from weakpg._src.app.studies.brax_setups import (
    INVERTED_DOUBLE_PENDULUM,
    PPO_LABEL,
    PPO_SLUG,
    REACHER,
    BraxStudy,
)
from weakpg._src.driver import precompile, train_seeds
from weakpg._src.envs.brax_envs import EPISODE_STEPS, BraxEnvironment
from weakpg._src.gradients import make_gradient_estimator

CURVE_FIELDS = ("method", "seed", "env_steps", "wall_seconds", "episode_return")
OUTPUT_FILES = ("runs", "curves.csv", "curves.png", "curves_wall.png", "summary.md")
STUDIES = {"reacher": REACHER, "double-pendulum": INVERTED_DOUBLE_PENDULUM}
Row = dict[str, Any]
_CACHE_OFF = "off: PPO builds its programs anew on every call, so its timed runs include compiling"


def value_at(rows: Sequence[Row], x: str, at: float) -> float:
    """The episode return of the last evaluation with ``x`` <= ``at``: where a run stopped
    at ``at`` would stand. The first row, the initial policy's (before any env step), holds
    from the start."""
    before = [r["episode_return"] for r in rows[1:] if r[x] <= at]
    return before[-1] if before else rows[0]["episode_return"]


def mean_and_halfwidth(values: Sequence[float]) -> tuple[float, float]:
    """Mean across seeds and the half-width of its 95% band, 1.96 std / sqrt(n) (nan for n = 1)."""
    mean, stderr = plotting.mean_and_stderr(values)
    return float(mean), float(plotting.BAND_Z * stderr)


def compare(curves: dict[str, list[list[Row]]]) -> dict[str, Any]:
    """Each method at equal env steps (its final evaluation) and at equal wall-clock.

    The equal wall-clock is ``seconds``, the shortest mean final ``wall_seconds`` across
    methods: every method's runs had at least that long on average, and each is read at
    its last evaluation by then. Returns {"seconds", "methods": label -> {"env_steps",
    "final", "final_band", "at_seconds", "at_seconds_band", "wall_seconds"}, "best_final",
    "best_at_seconds"}.
    """
    seconds = min(float(np.mean([run[-1]["wall_seconds"] for run in method_runs]))
                  for method_runs in curves.values())
    table = {}
    for label, runs_ in curves.items():
        final, final_band = mean_and_halfwidth([run[-1]["episode_return"] for run in runs_])
        at, at_band = mean_and_halfwidth([value_at(run, "wall_seconds", seconds) for run in runs_])
        table[label] = {"env_steps": float(np.mean([run[-1]["env_steps"] for run in runs_])),
                        "wall_seconds": float(np.mean([run[-1]["wall_seconds"] for run in runs_])),
                        "final": final, "final_band": final_band,
                        "at_seconds": at, "at_seconds_band": at_band}

    def best(field: str) -> str:
        return max(table, key=lambda label: table[label][field])

    return {"seconds": seconds, "methods": table, "best_final": best("final"),
            "best_at_seconds": best("at_seconds")}


def _cell(mean: float, band: float) -> str:
    return f"{mean:.1f}" if np.isnan(band) else f"{mean:.1f} ± {band:.1f}"


def _apart(table: dict[str, dict], best: str, field: str) -> str:
    """Whether ``best``'s 95% band on ``field`` clears every other method's."""
    low = table[best][field] - np.nan_to_num(table[best][f"{field}_band"], nan=0.0)
    others = [table[m][field] + np.nan_to_num(table[m][f"{field}_band"], nan=0.0)
              for m in table if m != best]
    return "its 95% band clears every other method's" if all(low > o for o in others) else (
        "its 95% band overlaps another method's")


def _summary(study: BraxStudy, env: BraxEnvironment, quick: bool, seeds: int, result: dict) -> str:
    table, seconds = result["methods"], result["seconds"]
    ppo = study.ppo.train_kwargs()
    lines = [
        f"# PG-JD, PG-SF and Brax PPO on {study.title}",
        "",
        f"Each method trained on brax:{study.name} (backend {study.backend!r}, {env.observation_shape[0]} "
        f"observations, {env.action_shape[0]} action dimension(s)) from {seeds} seed(s), "
        f"{'quick mode, ' if quick else ''}{study.budget(quick):,} env steps per run (phantom roll-outs "
        "included), one run at a time on this machine, so each run's wall-clock is its own, "
        "evaluations included. Before its timed runs, each weakpg method compiled its training "
        "program and Brax PPO ran once untimed (seed 0, discarded), so that the timed runs find "
        "their programs compiled; the table's compiling time is that compilation for weakpg, "
        "the untimed run's extra time for PPO. JAX's persistent compilation cache was "
        f"{'on' if result['compilation_cache'] else _CACHE_OFF}. Every evaluation is the mean "
        f"1000-step return of the mean action over {study.eval_episodes} episodes (weakpg's "
        "evaluator; Brax's for PPO, deterministic).",
        "",
        f"weakpg: an MLP {'x'.join(map(str, study.hidden))} (tanh) through `from_network` and flax, "
        f"sigma {study.sigma:g} fixed, gamma {study.gamma:g}, batch {study.batch_size}, "
        f"{study.optimizer} {study.lr:g}. {study.tuning}.",
        "",
        f"Brax PPO: `brax.training.agents.ppo.train` with Brax's published settings for {study.name} "
        f"(reward scaling {ppo['reward_scaling']:g}, action repeat {ppo['action_repeat']}, unroll "
        f"{ppo['unroll_length']}, {ppo['num_minibatches']} minibatches, {ppo['num_updates_per_batch']} "
        f"updates per batch, discount {ppo['discounting']:g}, learning rate {ppo['learning_rate']:g}, "
        f"entropy cost {ppo['entropy_cost']:g}, normalised observations, its default networks), but "
        f"num_envs {ppo['num_envs']} and batch size {ppo['batch_size']}, the published "
        f"{study.ppo.num_envs} and {study.ppo.batch_size} divided by {study.ppo.scale}: published, one "
        f"update takes {study.ppo.scale * study.ppo.env_steps_per_update():,} env steps "
        f"({study.ppo.published_env_steps:,} in all), here {study.ppo.env_steps_per_update():,}.",
        "",
        f"Mean and 95% band across seeds (1.96 standard errors), at the end of the budget (equal env "
        f"steps) and at {seconds:.1f} s of wall-clock (the shortest method's mean run time: equal "
        "wall-clock):",
        "",
        markdown_table(
            ("Method", "Env steps", "Final return", "Wall seconds", f"Return at {seconds:.1f} s",
             "Compiling (s)"),
            [(label, f"{e['env_steps']:,.0f}", _cell(e["final"], e["final_band"]),
              f"{e['wall_seconds']:.1f}", _cell(e["at_seconds"], e["at_seconds_band"]),
              f"{e['compile_seconds']:.1f}") for label, e in table.items()]),
        "",
        f"At equal env steps {result['best_final']} ends highest; "
        f"{_apart(table, result['best_final'], 'final')}. At equal wall-clock "
        f"{result['best_at_seconds']} stands highest; "
        f"{_apart(table, result['best_at_seconds'], 'at_seconds')}.",
        "",
        "Curves: `curves.png` (return against env steps) and `curves_wall.png` (against wall-clock), "
        "the mean across seeds with a 95% band; the numbers are in `curves.csv`, each run in `runs/`.",
        "",
    ]
    return "\n".join(lines)


def _check(study: BraxStudy) -> tuple[BraxEnvironment, Any]:
    """The environment and policy, every method's settings checked before any work."""
    env = study.make_env()
    policy = study.make_policy(env)
    for method in study.methods():
        config = study.train_config(method, 0, quick=False, action_dim=env.action_shape[0])
        make_gradient_estimator(env, policy, **config.estimator_options())
    return env, policy


def _compilation_cache() -> bool:
    """Whether JAX's persistent compilation cache is on (it serves PPO's timed runs)."""
    import jax

    return bool(jax.config.jax_compilation_cache_dir)


def reproduce(study: BraxStudy, out_dir: str | Path, *, quick: bool, seeds: int,
              progress: Callable[[str], None] | None = None, tensorboard: bool = False) -> dict[str, Any]:
    """Run ``study``: every weakpg method and Brax PPO from seeds 0..seeds-1; write the results.

    Each run lands in ``out_dir/runs/<method>__seed<seed>/`` (``config.json``,
    ``metrics.csv``; the weakpg runs also their checkpoint); then ``curves.csv``,
    ``curves.png``, ``curves_wall.png`` and ``summary.md``. Everything is written in a
    staging folder renamed into place at the end, so an error or an interrupt leaves
    ``out_dir`` as it was. ``progress`` gets one line per finished run; ``tensorboard``
    adds each run's event files. Returns ``compare``'s result plus "quick", "seeds",
    "env_steps" and "out_dir".
    """
    seeds = validation.check_positive_int("seeds", seeds)
    if tensorboard:
        event_files.require()
    out_dir = Path(out_dir)
    runs.check_output_folder(out_dir, OUTPUT_FILES)
    env, policy = _check(study)
    action_dim = env.action_shape[0]

    def new_run_dir(staging: Path, slug: str, seed: int, config: dict[str, Any]) -> Path:
        run_dir = staging / "runs" / f"{slug}__seed{seed}"
        run_dir.mkdir(parents=True)
        runs.write_json(run_dir / runs.CONFIG_FILE, {
            "env_id": f"brax:{study.name}", "backend": study.backend, "quick": quick, **config,
            "study": dataclasses.asdict(study)})
        return run_dir

    def report(label: str, seed: int, rows: list[Row]) -> None:
        if progress is not None:
            last = rows[-1]
            progress(f"{label} seed {seed}: episode return {last['episode_return']:.1f} after "
                     f"{last['env_steps']:,} env steps ({last['wall_seconds']:.0f} s)")

    with runs.staged_folder(out_dir, OUTPUT_FILES) as staging:
        curves: dict[str, list[list[Row]]] = {}
        compile_seconds: dict[str, float] = {}
        for method in study.methods():
            for seed in range(seeds):
                config = study.train_config(method, seed, quick=quick, action_dim=action_dim)
                if seed == 0:  # untimed: compiles the program every timed run of the method uses
                    warm = time.perf_counter()
                    precompile(env, policy, config, episode_length=EPISODE_STEPS)
                    compile_seconds[method.label] = time.perf_counter() - warm
                run_dir = new_run_dir(staging, method.slug, seed, {
                    "method": method.label, **dataclasses.asdict(config)})
                writers = event_files.EventWriters([run_dir]) if tensorboard else contextlib.nullcontext()
                with writers as on_rows:
                    _, (rows,) = train_seeds(env, policy, config, seeds=[seed], run_dirs=[run_dir],
                                             episode_length=EPISODE_STEPS, on_rows=on_rows)
                curves.setdefault(method.label, []).append(rows)
                report(method.label, seed, rows)
        warm = time.perf_counter()
        train_ppo(study, seed=0, quick=quick)  # untimed: Brax compiles as it trains
        ppo_untimed = time.perf_counter() - warm
        for seed in range(seeds):
            rows = train_ppo(study, seed=seed, quick=quick)
            run_dir = new_run_dir(staging, PPO_SLUG, seed, {
                "method": PPO_LABEL, "seed": seed, "env_steps": study.budget(quick),
                "ppo_train": study.ppo.train_kwargs()})
            runs.write_csv(run_dir / runs.METRICS_FILE, [{k: r[k] for k in PPO_FIELDS} for r in rows])
            if tensorboard:
                event_files.write_events(run_dir, rows)
            curves.setdefault(PPO_LABEL, []).append(rows)
            report(PPO_LABEL, seed, rows)
        # PPO's: the untimed run less its timed twin.
        compile_seconds[PPO_LABEL] = max(0.0, ppo_untimed - curves[PPO_LABEL][0][-1]["wall_seconds"])

        result = compare(curves)
        for label, seconds in compile_seconds.items():
            result["methods"][label]["compile_seconds"] = seconds
        result["compilation_cache"] = _compilation_cache()
        runs.write_csv(staging / "curves.csv", [
            {"method": label, "seed": seed, **{k: row[k] for k in CURVE_FIELDS[2:]}}
            for label, runs_ in curves.items() for seed, rows in enumerate(runs_) for row in rows])
        title = f"brax:{study.name}: 1000-step return of the mean action"
        plotting.plot_curves(curves, staging / "curves.png", x="env_steps", title=title)
        plotting.plot_curves(curves, staging / "curves_wall.png", x="wall_seconds", title=title)
        runs.atomic_write(staging / "summary.md", _summary(study, env, quick, seeds, result).encode())
    return {**result, "quick": quick, "seeds": seeds, "env_steps": study.budget(quick),
            "out_dir": str(out_dir)}
