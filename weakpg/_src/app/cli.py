"""The ``weakpg`` command line."""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import os
import signal
import sys
import time
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import weakpg
from weakpg._src import config as schema_checks
from weakpg._src.app import settings as schema
from weakpg._src.errors import NonFiniteError

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
    _SIGNALLED.clear()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _interrupt)
    sys.unraisablehook = _unraisable


@app.command()
def demo(
    samples: int = typer.Option(
        100_000, min=2, help="Monte Carlo samples per estimator (pairs for the weak derivative)."),
    seed: int = typer.Option(0, help="PRNG seed; the same seed gives the same numbers."),
) -> None:
    """Estimate d/dtheta E[f(z)] with every estimator and print it next to the exact value."""
    with _one_line_errors():
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


def _fail(message: str) -> typer.Exit:
    """Print one line to stderr and return the exit to raise (status 2)."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


_SIGNALLED: list[str] = []  # the signals received, for _check_interrupted


def _interrupt(signum: int, _frame: Any) -> None:
    """SIGINT and SIGTERM: an exception, so every clean-up runs.

    Python may run a handler inside a callback that swallows exceptions (the garbage
    collector's); the signal is recorded, ``_unraisable`` keeps quiet about it, and the
    next ``_check_interrupted`` raises it again.
    """
    _SIGNALLED.append(signal.Signals(signum).name)
    raise KeyboardInterrupt(_SIGNALLED[-1])


def _unraisable(hook: Any) -> None:
    if not (isinstance(hook.exc_value, KeyboardInterrupt) and _SIGNALLED):
        sys.__unraisablehook__(hook)


def _check_interrupted() -> None:
    """Raise the interrupt of a signal that an exception-swallowing callback received."""
    if _SIGNALLED:
        raise KeyboardInterrupt(_SIGNALLED[0])


def _progress(line: str) -> None:
    """A progress line to stderr; also where a swallowed interrupt surfaces."""
    _check_interrupted()
    typer.echo(line, err=True)


EXPECTED = (KeyboardInterrupt, ValueError, OSError, NonFiniteError)  # what a command reports in one line


def _message(error: BaseException, interrupted: str) -> str:
    if isinstance(error, KeyboardInterrupt):
        return f"interrupted by {error or 'SIGINT'}; {interrupted}"
    return str(error)


@contextlib.contextmanager
def _one_line_errors(interrupted: str = "nothing was written") -> Iterator[None]:
    """Every failure a command expects, and an interrupt, as one line and exit status 2."""
    try:
        yield
    except EXPECTED as error:
        raise _fail(_message(error, interrupted)) from None


def _run_name(env_id: str, estimator: str, baseline: str | None, seed: int) -> str:
    method = estimator if baseline is None else f"{estimator}-{baseline}"
    # No ":" from "gymnasium:<ID>": Windows refuses it and scp or rsync read it as a host.
    return f"{env_id.replace(':', '-')}__{method}__{seed}__{time.strftime('%Y%m%d-%H%M%S')}"


RESUME_BUDGET = ("iterations", "env_steps")  # the settings --resume may change: a larger budget


def _resumed(paths: list[Path], given: dict[str, Any]) -> tuple[schema.RunConfig, list[int]]:
    """The common configuration of the runs to resume and their seeds.

    ``given`` holds the settings typed on the command line: ``RESUME_BUDGET`` replace the
    run's budget, any other must equal the run's value.
    """
    from weakpg._src import runs

    configs = []
    for path in paths:
        flat = runs.open_run(path)
        if "method" in flat and "setup" in flat:
            raise ValueError(f"{path} is a run of weakpg reproduce, which train --resume does not continue; "
                             "run the reproduction again")
        try:
            configs.append(schema.from_dict(flat, complete=True))
        except ValueError as error:
            raise ValueError(f"{path / runs.CONFIG_FILE}: {error}") from None
    if len({dataclasses.replace(c, train=dataclasses.replace(c.train, seed=0)) for c in configs}) > 1:
        raise ValueError("the runs given to --resume differ in more than their seed; resume them one "
                         "at a time")
    flat = schema.to_dict(configs[0])
    for name, value in given.items():
        if name not in RESUME_BUDGET and value != flat[name]:
            flag = "--" + name.replace("_", "-")
            raise ValueError(f"{flag} {value} conflicts with the run's {name} {flat[name]}: --resume "
                             "continues a run as it was configured and takes only a new budget "
                             "(--iterations, --env-steps)")
    budget = {k: given[k] for k in RESUME_BUDGET if k in given}
    if budget:
        budget = {**dict.fromkeys(RESUME_BUDGET), **budget}
    config = schema.from_dict({**flat, **budget})
    return config, [c.train.seed for c in configs]


def _train(settings: dict[str, Any], given: dict[str, Any], seeds: int, out: Path,
           resume: list[Path] | None) -> None:
    """``weakpg train``: check everything, write the run folders, then compile and train."""
    from weakpg._src import runs
    from weakpg._src.config import MAX_SEED, check_int_range

    with _one_line_errors():
        if resume:
            extra = [f"--{k}" for k in ("seeds", "out") if k in given]
            if extra:
                raise ValueError(f"{' and '.join(extra)} cannot be given with --resume, which continues "
                                 "existing run folders")
            config, seed_list = _resumed(resume, {k: v for k, v in given.items() if k in schema.SETTINGS})
            run_dirs = list(resume)
            for run_dir in run_dirs:
                runs.check_writable(run_dir)
        else:
            config = schema.from_dict(settings)
            check_int_range("seeds", seeds, 1)
            check_int_range("seed + seeds - 1", config.train.seed + seeds - 1, 0, MAX_SEED)
            runs.check_writable(out)
            seed_list = list(range(config.train.seed, config.train.seed + seeds))
            run_dirs = [out / _run_name(config.env, config.train.estimator, config.train.baseline, s)
                        for s in seed_list]
        env, policy = schema.build(config)

    from weakpg._src.driver import train_seeds

    budget = config.train
    by_steps = budget.env_steps is not None  # the bar counts whichever budget bounds the run
    unit, total = ("env steps", budget.env_steps) if by_steps else ("iterations", budget.iterations)
    latest: dict[int, dict[str, float]] = {}
    failure: BaseException | None = None
    with Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                  TextColumn(f"{{task.completed:,.0f}}/{{task.total:,.0f}} {unit}"),
                  TextColumn("{task.fields[rate]}"), TextColumn("return {task.fields[ret]}"),
                  TimeElapsedColumn(), console=Console(stderr=True), transient=True) as bar:
        label = run_dirs[0].name[:40] + (f" (+{len(run_dirs) - 1} seeds)" if len(run_dirs) > 1 else "")
        task = bar.add_task(label, total=total, rate="", ret="")
        started = time.perf_counter()

        def on_row(row: dict[str, float]) -> None:
            _check_interrupted()
            latest[row["seed"]] = row
            slowest = min(latest.values(), key=lambda r: r["env_steps" if by_steps else "iteration"])
            rate = slowest["iteration"] / max(time.perf_counter() - started, 1e-9)
            bar.update(task, completed=slowest["env_steps" if by_steps else "iteration"],
                       rate=f"{rate:.1f} it/s", ret=f"{slowest['episode_return']:.1f}")

        try:
            with runs.new_run_folders([] if resume else run_dirs):
                for run_dir, seed in zip(run_dirs, seed_list):
                    runs.remove_temporaries(run_dir)  # left by a kill -9 during a write
                    if not resume or given.keys() & set(RESUME_BUDGET):
                        runs.write_json(run_dir / runs.CONFIG_FILE, {**schema.to_dict(config), "seed": seed})
                _, rows = train_seeds(env, policy, config.train, seeds=seed_list, run_dirs=run_dirs,
                                      resume=bool(resume), callback=on_row)
        except EXPECTED as error:
            failure = error  # reported once the progress bar is gone, so the error is the only line
    if failure is not None:
        kept = [str(d) for d in run_dirs if (d / runs.CHECKPOINT_FILE).exists()]
        raise _fail(_message(failure, f"continue with weakpg train --resume {' --resume '.join(kept)}" if kept
                             else "no run folder was kept: none had reached its first checkpoint"))
    for run_dir, seed_rows in zip(run_dirs, rows):
        last = seed_rows[-1]
        typer.echo(f"{run_dir}: {last['iteration']} iterations, {last['env_steps']:,} env steps, "
                   f"{last['wall_seconds']:.1f} s, episode return {last['episode_return']:.1f}, "
                   f"discounted return {last['discounted_return']:.2f}")


def _nullable(kind: type) -> typing.Callable[[str], Any]:
    """A parser of a value of ``kind``, or "none" for None."""

    def parse(value: Any) -> Any:
        if value is None or value == "none" or isinstance(value, kind):
            return None if value == "none" else value
        try:
            return kind(value)
        except ValueError:
            raise typer.BadParameter(f"{value!r} is not a valid {kind.__name__} or 'none'") from None

    return parse


def _setting_option(name: str) -> inspect.Parameter:
    """The ``weakpg train`` option of one setting of the schema, with its default and help."""

    field, annotation = schema.SETTINGS[name]
    flag = "--" + name.replace("_", "-")
    kind = next(a for a in typing.get_args(annotation) or (annotation,) if a is not type(None))
    if kind is bool:
        option = typer.Option(field.default, f"{flag}/--no-{name.replace('_', '-')}",
                              help=field.metadata["help"])
    elif schema.is_nullable(name):
        option = typer.Option(schema.NONE if field.default is None else field.default, flag,
                              help=field.metadata["help"], parser=_nullable(kind),
                              metavar=f"{kind.__name__.upper()}|none")
    else:
        option = typer.Option(field.default, flag, help=field.metadata["help"])
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option,
                             annotation=Any if schema.is_nullable(name) else kind)


def _register_train() -> None:
    """``weakpg train``: an option per setting of ``RunConfig``, plus seeds, out and resume."""

    extra = {
        "seeds": (int, typer.Option(1, help="Train seeds --seed ... --seed + SEEDS - 1 in one vmapped "
                                    "program (one compilation), one run folder each.")),
        "out": (Path, typer.Option(Path("runs"), help="Folder that receives the run folders.")),
        "resume": (list[Path] | None, typer.Option(None, help="Continue the run in this folder from its "
                                                   "last checkpoint (repeat it for the seeds of one "
                                                   "multi-seed run). It takes a new budget (--iterations, "
                                                   "--env-steps); any other setting must equal the run's.")),
    }
    params = [inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context)]
    params += [_setting_option(name) for name in schema.SETTINGS]
    params += [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=o, annotation=a)
               for n, (a, o) in extra.items()]

    def train(ctx: typer.Context, **kwargs: Any) -> None:
        """Train a policy with stochastic gradient ascent (Algorithm 2) and record a run folder per
        seed."""
        # By name: typer may carry its own copy of click, whose ParameterSource is another enum.
        typed = {name for name in kwargs
                 if getattr(ctx.get_parameter_source(name), "name", None) in ("COMMANDLINE", "ENVIRONMENT")}
        settings = {name: kwargs[name] for name in schema.SETTINGS}
        given = {name: kwargs[name] for name in typed if name != "resume"}
        _train(settings, given, kwargs["seeds"], kwargs["out"], kwargs["resume"])

    train.__signature__ = inspect.Signature(params)
    train.__annotations__ = {p.name: p.annotation for p in params}
    app.command()(train)


_register_train()


reproduce_app = typer.Typer(help="Reproduce the paper's learning_curves.", no_args_is_help=True)
app.add_typer(reproduce_app, name="reproduce")


def _add_reproduction(name: str, summary: str) -> None:
    """Register ``weakpg reproduce <name>``, the study ``learning_curves.STUDIES[name]``."""

    def command(
        quick: bool = typer.Option(False, "--quick", help="A short budget (minutes on a laptop)."),
        seeds: int = typer.Option(None, help="Seeds per method (default 3 with --quick, else 5)."),
        out: Path = typer.Option(None, help="New or empty output folder "
                                 f"(default runs/reproduce-{name}[-quick]-<time>)."),
        env_steps: int = typer.Option(None, help="Override the env-step budget of every run."),
    ) -> None:
        from weakpg._src.app.studies import learning_curves

        seeds = seeds if seeds is not None else (3 if quick else 5)
        if out is None:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            out = Path("runs") / f"reproduce-{name}{'-quick' if quick else ''}-{stamp}"
        with _one_line_errors():
            setup = learning_curves.STUDIES[name]
            if env_steps is not None:
                schema_checks.check_int_range("env_steps", env_steps, 1, schema_checks.MAX_ENV_STEPS)
                setup = dataclasses.replace(setup, env_steps=env_steps, quick_env_steps=env_steps)
            result = learning_curves.reproduce(setup, out, quick=quick, seeds=seeds,
                                               progress=_progress)
        typer.echo((out / "summary.md").read_text())
        typer.echo(f"figures: {out / 'curves.png'} and {out / 'curves_discounted.png'}; "
                   f"table: {out / 'curves.csv'}; {len(result['methods'])} methods x {seeds} seeds")

    reproduce_app.command(name, help=summary)(command)


_add_reproduction("pendulum", "Pendulum-v1: PG-JD against PG-SF (with and without a roll-out baseline), "
                  "the paper's Fig. 1.")
_add_reproduction("cartpole", "CartPole-v1: PG-JD against PG-SF (with and without a roll-out baseline), "
                  "discrete actions.")


@app.command()
def plot(
    run_dirs: list[Path] = typer.Argument(..., help="Run folders written by weakpg train."),
    out: Path = typer.Option(Path("curves.png"), help="PNG file to write."),
    discounted: bool = typer.Option(False, help="Plot the discounted return J instead of the "
                                    "episode return of the mean or most likely action."),
) -> None:
    """Draw the learning curves of existing runs into one PNG (mean and 95% band per method)."""
    from weakpg._src.app import plotting

    with _one_line_errors():
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
    with _one_line_errors():
        if name != "all":
            schema_checks.check_choice("study", name, [*report.STUDIES, "all"])
        schema_checks.check_int_range("seed", seed, 0, schema_checks.MAX_SEED)
        results = report.run_studies(names, out, quick=quick, seed=seed,
                                     progress=_progress)
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
) -> None:
    """Train every grid point of a sweep file from several seeds in parallel; collect the run
    folders, summary.csv, sweep.json and curves.png."""
    from weakpg._src.app import sweep

    if out is None:
        out = Path("runs") / f"sweep-{config.stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        result = sweep.run_sweep(sweep.load_config(config), out, seeds=seeds, backend=backend,
                                 address=address, workers=workers,
                                 progress=_progress)
    except (ValueError, RuntimeError) as error:
        raise _fail(str(error)) from None
    typer.echo(f"{out}: {len(result['runs'])} runs ({backend}); table {out / 'summary.csv'}, "
               f"figure {out / 'curves.png'}")
