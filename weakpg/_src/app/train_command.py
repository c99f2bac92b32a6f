"""``weakpg train``: its options, generated from the schema, and the run folders it writes."""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import time
import typing
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from weakpg._src.app import settings as schema
from weakpg._src.app.failures import EXPECTED, check_interrupted, fail, message, one_line_errors


def run_name(env_id: str, estimator: str, baseline: str | None, seed: int) -> str:
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
           resume: list[Path] | None, tensorboard: bool) -> None:
    """``weakpg train``: check everything, write the run folders, then compile and train.

    With ``tensorboard`` (or when resuming runs that have event files) every run folder
    gets ``tensorboard/``, kept equal to its ``metrics.csv``.
    """
    from weakpg._src import runs
    from weakpg._src.app import tensorboard as event_files
    from weakpg._src.config import MAX_SEED, check_int_range

    with one_line_errors():
        if resume:
            extra = [f"--{k}" for k in ("seeds", "out") if k in given]
            if extra:
                raise ValueError(f"{' and '.join(extra)} cannot be given with --resume, which continues "
                                 "existing run folders")
            config, seed_list = _resumed(resume, {k: v for k, v in given.items() if k in schema.SETTINGS})
            run_dirs = list(resume)
            from weakpg._src.checkpoints import check_resume

            check_resume(run_dirs, seed_list)
            for run_dir in run_dirs:
                runs.check_writable(run_dir)
        else:
            config = schema.from_dict(settings)
            check_int_range("seeds", seeds, 1)
            check_int_range("seed + seeds - 1", config.train.seed + seeds - 1, 0, MAX_SEED)
            runs.check_writable(out)
            seed_list = list(range(config.train.seed, config.train.seed + seeds))
            run_dirs = [out / run_name(config.env, config.train.estimator, config.train.baseline, s)
                        for s in seed_list]
        tensorboard = tensorboard or any((d / event_files.TENSORBOARD_DIR).is_dir() for d in resume or [])
        if tensorboard:
            event_files.require()
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
            check_interrupted()
            latest[row["seed"]] = row
            slowest = min(latest.values(), key=lambda r: r["env_steps" if by_steps else "iteration"])
            rate = slowest["iteration"] / max(time.perf_counter() - started, 1e-9)
            bar.update(task, completed=slowest["env_steps" if by_steps else "iteration"],
                       rate=f"{rate:.1f} it/s", ret=f"{slowest['episode_return']:.1f}")

        try:
            def write_configs() -> None:
                for run_dir, seed in zip(run_dirs, seed_list):
                    runs.write_json(run_dir / runs.CONFIG_FILE, {**schema.to_dict(config), "seed": seed})

            with runs.new_run_folders([] if resume else run_dirs):
                for run_dir in run_dirs:
                    runs.remove_temporaries(run_dir)  # left by a kill -9 during a write
                if not resume:
                    write_configs()
                # A resumed run's new budget is recorded once its folders have been read.
                new_budget = bool(resume) and bool(given.keys() & set(RESUME_BUDGET))
                writers = event_files.EventWriters(run_dirs) if tensorboard else contextlib.nullcontext()
                with writers as on_rows:
                    _, rows = train_seeds(env, policy, config.train, seeds=seed_list, run_dirs=run_dirs,
                                          resume=bool(resume), callback=on_row, on_rows=on_rows,
                                          before_training=write_configs if new_budget else None)
        except EXPECTED as error:
            failure = error  # reported once the progress bar is gone, so the error is the only line
    if failure is not None:
        kept = [str(d) for d in run_dirs if (d / runs.CHECKPOINT_FILE).exists()]
        raise fail(message(failure, f"continue with weakpg train --resume {' --resume '.join(kept)}" if kept
                             else "no run folder was kept: none had reached its first checkpoint"))
    for run_dir, seed_rows in zip(run_dirs, rows):
        last = seed_rows[-1]
        typer.echo(f"{run_dir}: {last['iteration']} iterations, {last['env_steps']:,} env steps, "
                   f"{last['wall_seconds']:.1f} s, episode return {last['episode_return']:.1f}, "
                   f"discounted return {last['discounted_return']:.2f}")


def _nullable(kind: type) -> typing.Callable[[str], Any]:
    """A parser of a value of ``kind``, or "none" (``schema.is_none``) for None."""

    def parse(value: Any) -> Any:
        if schema.is_none(value):
            return None
        if isinstance(value, kind):
            return value
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


def register(app: typer.Typer) -> None:
    """Add ``weakpg train`` to ``app``: an option per setting of ``RunConfig``, plus seeds, out
    and resume."""

    extra = {
        "seeds": (int, typer.Option(1, help="Train seeds --seed ... --seed + SEEDS - 1 in one vmapped "
                                    "program (one compilation), one run folder each.")),
        "out": (Path, typer.Option(Path("runs"), help="Folder that receives the run folders.")),
        "resume": (list[Path] | None, typer.Option(None, help="Continue the run in this folder from its "
                                                   "last checkpoint (repeat it for the seeds of one "
                                                   "multi-seed run). It takes a new budget (--iterations, "
                                                   "--env-steps); any other setting must equal the run's.")),
        "tensorboard": (bool, typer.Option(False, help="Also write the metrics as TensorBoard event files "
                                           "into each run folder's tensorboard/ (pip install "
                                           "'weakpg[tensorboard]'); --resume keeps existing ones up to "
                                           "date.")),
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
        _train(settings, given, kwargs["seeds"], kwargs["out"], kwargs["resume"], kwargs["tensorboard"])

    train.__signature__ = inspect.Signature(params)
    train.__annotations__ = {p.name: p.annotation for p in params}
    app.command()(train)
