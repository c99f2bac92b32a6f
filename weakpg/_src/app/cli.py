"""The ``weakpg`` command line."""

from __future__ import annotations

import dataclasses
import importlib
import os
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

import weakpg
from weakpg._src import config as schema_checks
from weakpg._src.app import evaluate_command, render_command, train_command
from weakpg._src.app.failures import handle_signals, one_line_errors, progress

app = typer.Typer(
    help="weakpg: policy gradients from score functions and weak derivatives.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"weakpg {weakpg.__version__}")
        raise typer.Exit()


def cache_dir() -> Path:
    """Where the command line keeps JAX's persistent compilation cache."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "weakpg" / "jax"


def _use_compilation_cache(enabled: bool) -> None:
    """Turn JAX's persistent compilation cache on (in ``cache_dir()``) or off.

    Set through JAX's environment variables before JAX is imported; a
    ``JAX_COMPILATION_CACHE_DIR`` the user set wins. Every compiled program is cached,
    however fast it compiled.
    """
    if not enabled:
        os.environ["JAX_ENABLE_COMPILATION_CACHE"] = "false"
        return
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(cache_dir()))
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
    compile_cache: bool = typer.Option(
        True, help="Keep compiled programs in JAX's persistent cache (JAX_COMPILATION_CACHE_DIR, "
        "else ~/.cache/weakpg/jax), so a second run skips most compiling."),
) -> None:
    """weakpg: policy gradients from score functions and weak derivatives."""
    _use_compilation_cache(compile_cache)
    handle_signals()


@app.command()
def demo(
    samples: int = typer.Option(
        100_000, min=2, help="Monte Carlo samples per estimator (pairs for the weak derivative)."),
    seed: int = typer.Option(0, help="PRNG seed; the same seed gives the same numbers."),
) -> None:
    """Estimate d/dtheta E[f(z)] with every estimator and print it next to the exact value."""
    with one_line_errors():
        schema_checks.check_int_range("seed", seed, 0, schema_checks.MAX_SEED)
    import jax

    from weakpg._src.app.demo import run_demo

    rows = run_demo(jax.random.key(seed), samples)
    console = Console()
    console.print(f"Gradient estimates, {samples:,} samples each (seed {seed})")
    for problem in dict.fromkeys(row.problem for row in rows):
        table = Table(title=escape(problem))
        for column in ("param", "estimator", "estimate", "stderr", "exact", "|z|", "var/sample"):
            table.add_column(column, justify="left" if column == "estimator" else "right")
        for row in (r for r in rows if r.problem == problem):
            # Two samples can agree exactly: no spread, no z.
            z = f"{abs(row.mean - row.exact) / row.stderr:.2f}" if row.stderr > 0 else "-"
            table.add_row(row.parameter, row.estimator, f"{row.mean:.4f}", f"{row.stderr:.4f}",
                          f"{row.exact:.4f}", z, f"{row.variance_per_sample:.3f}")
        console.print(table)


train_command.register(app)
evaluate_command.register(app)
render_command.register(app)



reproduce_app = typer.Typer(help="Reproduce the learning-curve studies: the paper's Pendulum, CartPole, "
                            "and Brax tasks against Brax's PPO.", no_args_is_help=True)
app.add_typer(reproduce_app, name="reproduce")


def _add_reproduction(name: str, summary: str, module: str = "learning_curves") -> None:
    """Register ``weakpg reproduce <name>``, the study ``<module>.STUDIES[name]``.

    ``module`` is a module of ``weakpg._src.app.studies`` with ``STUDIES``, ``OUTPUT_FILES``
    and ``reproduce(setup, out, quick=, seeds=, progress=, tensorboard=)``.
    """

    def command(
        quick: bool = typer.Option(False, "--quick", help="A short budget (minutes on a laptop)."),
        seeds: int = typer.Option(None, help="Seeds per method (default 3 with --quick, else 5)."),
        out: Path = typer.Option(None, help="New or empty output folder "
                                 f"(default runs/reproduce-{name}[-quick]-<time>)."),
        env_steps: int = typer.Option(None, help="Override the env-step budget of every run."),
        tensorboard: bool = typer.Option(False, help="Also write each run's metrics as TensorBoard event "
                                         "files into its folder's tensorboard/ (pip install "
                                         "'weakpg[tensorboard]')."),
    ) -> None:
        study = importlib.import_module(f"weakpg._src.app.studies.{module}")
        seeds = seeds if seeds is not None else (3 if quick else 5)
        if out is None:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            out = Path("runs") / f"reproduce-{name}{'-quick' if quick else ''}-{stamp}"
        with one_line_errors():
            setup = study.STUDIES[name]
            if env_steps is not None:
                schema_checks.check_int_range("env_steps", env_steps, 1, schema_checks.MAX_ENV_STEPS)
                setup = dataclasses.replace(setup, env_steps=env_steps, quick_env_steps=env_steps)
            result = study.reproduce(setup, out, quick=quick, seeds=seeds, progress=progress,
                                     tensorboard=tensorboard)
        typer.echo((out / "summary.md").read_text())
        figures = " and ".join(str(out / f) for f in study.OUTPUT_FILES if f.endswith(".png"))
        typer.echo(f"figures: {figures}; table: {out / 'curves.csv'}; "
                   f"{len(result['methods'])} methods x {seeds} seeds")

    reproduce_app.command(name, help=summary)(command)


_add_reproduction("pendulum", "Pendulum-v1: PG-JD against PG-SF (with and without a roll-out baseline), "
                  "the paper's Fig. 1.")
_add_reproduction("cartpole", "CartPole-v1: PG-JD against PG-SF (with and without a roll-out baseline), "
                  "discrete actions.")
_add_reproduction("reacher", "Brax reacher, an MLP policy: PG-JD (all coordinates and k = 1), PG-SF with "
                  "a roll-out baseline and Brax's PPO (pip install 'weakpg[brax]').", "brax_curves")
_add_reproduction("double-pendulum", "Brax inverted_double_pendulum, an MLP policy: PG-JD, PG-SF with a "
                  "roll-out baseline and Brax's PPO (pip install 'weakpg[brax]').", "brax_curves")


@app.command()
def plot(
    run_dirs: list[Path] = typer.Argument(..., help="Run folders written by weakpg train."),
    out: Path = typer.Option(Path("curves.png"), help="PNG file to write."),
    discounted: bool = typer.Option(False, help="Plot the discounted return J instead of the "
                                    "episode return of the mean or most likely action."),
) -> None:
    """Draw the learning curves of existing runs into one PNG (mean and 95% band per method)."""
    from weakpg._src.app import plotting

    with one_line_errors():
        plotting.plot_runs(run_dirs, out, y="discounted_return" if discounted else "episode_return")
    typer.echo(f"wrote {out}")


@app.command()
def study(
    name: str = typer.Argument(..., help="unbiased, variance, convergence, samples, unbounded, or all."),
    quick: bool = typer.Option(False, "--quick", help="A smoke run in seconds (small samples, wide "
                               "error bars); the default is the full budget (minutes)."),
    seed: int = typer.Option(0, help="PRNG seed; the same seed gives the same numbers."),
    out: Path = typer.Option(None, help="New or empty output folder "
                             "(default runs/study-<name>[-quick]-<time>)."),
) -> None:
    """Measure one of the paper's theoretical claims (or all of them) and write CSV, PNG and
    markdown; `all` also writes report.md, the table of claims against measurements."""
    from weakpg._src.app.studies import report

    names = list(report.STUDIES) if name == "all" else [name]
    if out is None:
        out = Path("runs") / f"study-{name}{'-quick' if quick else ''}-{time.strftime('%Y%m%d-%H%M%S')}"
    with one_line_errors():
        if name != "all":
            schema_checks.check_choice("study", name, [*report.STUDIES, "all"])
        schema_checks.check_int_range("seed", seed, 0, schema_checks.MAX_SEED)
        results = report.run_studies(names, out, quick=quick, seed=seed,
                                     progress=progress)
    for result in results:
        for finding in result.findings:
            typer.echo(f"[{finding.verdict}] {finding.claim}: {finding.measurement}")
    main_file = report.REPORT_FILE if len(names) > 1 else f"{names[0]}.md"
    typer.echo(f"wrote {out / main_file} and {sum(len(r.files) for r in results)} data and figure files")


@app.command("sweep")
def sweep_runs(
    config: Path = typer.Argument(..., help="TOML file of train settings (the flags of weakpg train, "
                                  "as snake_case keys) with an optional [grid] table of lists."),
    seeds: int = typer.Option(None, help="Train every grid point from seeds 0..SEEDS-1 (default: the "
                              "seed the file gives, else 0)."),
    backend: str = typer.Option("local", help="local (processes on this machine) or ray."),
    address: str = typer.Option(None, help="For ray: the cluster (auto, host:port or ray://host:port); "
                                "default: a new local Ray instance."),
    workers: int = typer.Option(None, help="For local: runs at once (default min(runs, CPUs))."),
    out: Path = typer.Option(None, help="New or empty output folder (default runs/sweep-<config>-<time>)."),
    tensorboard: bool = typer.Option(False, help="Also write each run's metrics as TensorBoard event files "
                                     "into its folder's tensorboard/ (pip install 'weakpg[tensorboard]')."),
) -> None:
    """Train every grid point of a sweep file from several seeds in parallel; collect the run
    folders, summary.csv, sweep.json and curves.png."""
    from weakpg._src.app import sweep, sweep_plan

    if out is None:
        out = Path("runs") / f"sweep-{config.stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    kept = f"the runs that had finished (if any) stay in {out}, where the same command resumes the sweep"
    with one_line_errors(kept):
        try:
            result = sweep.run_sweep(sweep_plan.load_config(config), out, seeds=seeds, backend=backend,
                                     address=address, workers=workers, progress=progress,
                                     tensorboard=tensorboard)
        except RuntimeError as error:  # a failing run
            raise ValueError(f"{error}; {kept}" if (out / "runs").is_dir() else str(error)) from None
    typer.echo(f"{out}: {len(result['runs'])} runs ({backend}); table {out / 'summary.csv'}, "
               f"figure {out / 'curves.png'}")
