"""The ``weakpg`` command line."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import weakpg
from weakpg._src import validation

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


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """weakpg: policy gradients from score functions and weak derivatives."""


@app.command()
def demo(
    samples: int = typer.Option(
        100_000, min=2, help="Monte Carlo samples per estimator (pairs for the weak derivative)."),
    seed: int = typer.Option(0, help="PRNG seed; the same seed gives the same numbers."),
) -> None:
    """Estimate d/dtheta E[f(z)] with every estimator and print it next to the exact value."""
    import jax

    from weakpg._src.demo import run_demo

    rows = run_demo(jax.random.key(seed), samples)
    console = Console()
    console.print(f"Gradient estimates, {samples:,} samples each (seed {seed})")
    for problem in dict.fromkeys(row.problem for row in rows):
        table = Table(title=escape(problem))
        for column in ("param", "estimator", "estimate", "stderr", "exact", "|z|", "var/sample"):
            table.add_column(column, justify="left" if column == "estimator" else "right")
        for row in (r for r in rows if r.problem == problem):
            table.add_row(row.parameter, row.estimator, f"{row.mean:.4f}", f"{row.stderr:.4f}",
                          f"{row.exact:.4f}", f"{abs(row.mean - row.exact) / row.stderr:.2f}",
                          f"{row.variance_per_sample:.3f}")
        console.print(table)


def _fail(message: str) -> typer.Exit:
    """Print one line to stderr and return the exit to raise (status 2)."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def _run_name(env_id: str, estimator: str, baseline: str | None, seed: int) -> str:
    method = estimator if baseline is None else f"{estimator}-{baseline}"
    # No ":" from "gymnasium:<ID>": Windows refuses it and scp or rsync read it as a host.
    return f"{env_id.replace(':', '-')}__{method}__{seed}__{time.strftime('%Y%m%d-%H%M%S')}"


@app.command()
def train(
    env: str = typer.Option("Pendulum-v1", help="Environment id: a gymnax one (Pendulum-v1, CartPole-v1, "
                            "MountainCarContinuous-v0, Acrobot-v1), or gymnasium:<ID> for a gymnasium "
                            "environment whose state can be saved and restored (e.g. "
                            "gymnasium:CartPole-v1, gymnasium:HalfCheetah-v5)."),
    estimator: str = typer.Option("jd", help="jd (weak derivative, PG-JD) or sf (score function, PG-SF)."),
    baseline: str = typer.Option("none", help="For sf: none, rollout or value."),
    policy: str = typer.Option("linear-rbf", help="linear-rbf, linear (identity features) or mlp; "
                               "discrete actions get a softmax with logits linear in the features "
                               "(CartPole: linear, its velocities are unbounded)."),
    gamma: float = typer.Option(0.95, help="Discount factor in (0, 1)."),
    sigma: float = typer.Option(1.0, help="Initial standard deviation of a Gaussian policy (> 0); "
                                "unused for discrete actions."),
    learn_sigma: bool = typer.Option(False, help="Learn log-sigma too (Gaussian-scale weak derivative)."),
    batch_size: int = typer.Option(1024, help="Gradient samples per iteration (>= 1)."),
    steps: int = typer.Option(None, help="Number of iterations (gradient steps)."),
    env_steps: int = typer.Option(None, help="Budget of environment steps; training stops at the first "
                                  "of --steps and --env-steps (default --env-steps 1000000)."),
    lr: float = typer.Option(0.05, help="Initial step size alpha_0 (> 0)."),
    schedule: float = typer.Option(
        0.0, help="p in alpha_k = alpha_0 / (k + 1)^p, in [0, 1]; 0 keeps the step constant."),
    optimizer: str = typer.Option("adam", help="sgd (the paper's plain ascent) or adam."),
    max_grad_norm: float = typer.Option(None, help="Clip each gradient estimate to this global norm."),
    eval_every: int = typer.Option(5, help="Evaluate (and checkpoint) every this many iterations."),
    eval_episodes: int = typer.Option(16, help="Episodes per evaluation, from fixed start states; each "
                                      "reports the return of the mean (Gaussian) or most likely (softmax) "
                                      "action over the task's standard episode."),
    seed: int = typer.Option(0, help="PRNG seed; the same seed and flags give the same numbers."),
    out: Path = typer.Option(Path("runs"), help="Folder that receives the run folder."),
    resume: Path = typer.Option(None, help="Continue the run in this folder from its last checkpoint."),
) -> None:
    """Train a policy with stochastic gradient ascent (Algorithm 2) and record a run folder."""
    from weakpg._src import runs, runspec

    try:
        if resume is not None:
            setup = runs.open_run(resume)
            if not (resume / runs.CHECKPOINT_FILE).is_file():
                raise ValueError(f"{resume} has no checkpoint to resume from")
            runspec.build(setup)
            run_dir = resume
        else:
            setup = runspec.make_setup({
                "env": env, "policy": policy, "sigma": sigma, "learn_sigma": learn_sigma,
                "iterations": steps, "env_steps": env_steps, "eval_every": eval_every,
                "eval_episodes": eval_episodes, "estimator": estimator,
                "baseline": None if baseline == "none" else baseline, "gamma": gamma,
                "batch_size": batch_size, "optimizer": optimizer, "lr": lr, "schedule_power": schedule,
                "max_grad_norm": max_grad_norm, "seed": seed})
            run_dir = out / _run_name(setup["env"], setup["estimator"], setup["baseline"], setup["seed"])
            run_dir.mkdir(parents=True, exist_ok=False)
            runs.write_json(run_dir / runs.CONFIG_FILE, setup)
    except (ValueError, FileExistsError, OSError) as error:
        raise _fail(str(error)) from None

    # The bar counts whichever budget bounds the run, in its own unit.
    by_steps = setup["env_steps"] is not None
    unit, total = ("env steps", setup["env_steps"]) if by_steps else ("iterations", setup["iterations"])
    latest = {"episode_return": float("nan")}
    with Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                  TextColumn(f"{{task.completed:,.0f}}/{{task.total:,.0f}} {unit}"),
                  TextColumn("{task.fields[rate]}"), TextColumn("return {task.fields[ret]}"),
                  TimeElapsedColumn(), console=Console(stderr=True)) as bar:
        task = bar.add_task(run_dir.name[:40], total=total, rate="", ret="")
        started = time.perf_counter()

        def on_iteration(metrics: dict[str, float]) -> None:
            latest.update(metrics)
            rate = metrics["iteration"] / max(time.perf_counter() - started, 1e-9)
            bar.update(task, completed=metrics["env_steps"] if by_steps else metrics["iteration"],
                       rate=f"{rate:.1f} it/s", ret=f"{latest['episode_return']:.1f}")

        try:
            rows = runspec.run(setup, run_dir, resume=resume is not None, callback=on_iteration)
        except ValueError as error:
            raise _fail(str(error)) from None
    last = rows[-1]
    typer.echo(f"{run_dir}: {last['iteration']} iterations, {last['env_steps']:,} env steps, "
               f"{last['wall_seconds']:.1f} s, episode return {last['episode_return']:.1f}, "
               f"discounted return {last['discounted_return']:.2f}")


reproduce_app = typer.Typer(help="Reproduce the paper's experiments.", no_args_is_help=True)
app.add_typer(reproduce_app, name="reproduce")


def _add_reproduction(name: str, summary: str) -> None:
    """Register ``weakpg reproduce <name>``, the study ``experiments.STUDIES[name]``."""

    def command(
        quick: bool = typer.Option(False, "--quick", help="A short budget (minutes on a laptop)."),
        seeds: int = typer.Option(None, help="Seeds per method (default 3 with --quick, else 5)."),
        out: Path = typer.Option(None, help="New or empty output folder "
                                 f"(default runs/reproduce-{name}[-quick]-<time>)."),
        env_steps: int = typer.Option(None, help="Override the env-step budget of every run."),
    ) -> None:
        from weakpg._src import experiments

        seeds = seeds if seeds is not None else (3 if quick else 5)
        if out is None:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            out = Path("runs") / f"reproduce-{name}{'-quick' if quick else ''}-{stamp}"
        try:
            setup = experiments.STUDIES[name]
            if env_steps is not None:
                budget = validation.check_positive_int("env_steps", env_steps)
                setup = dataclasses.replace(setup, env_steps=budget, quick_env_steps=budget)
            result = experiments.reproduce(setup, out, quick=quick, seeds=seeds,
                                           progress=lambda line: typer.echo(line, err=True))
        except ValueError as error:
            raise _fail(str(error)) from None
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
    from weakpg._src import plotting

    try:
        plotting.plot_runs(run_dirs, out, y="discounted_return" if discounted else "episode_return")
    except (ValueError, OSError) as error:
        raise _fail(str(error)) from None
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
    from weakpg._src.studies import report

    names = list(report.STUDIES) if name == "all" else [name]
    if out is None:
        out = Path("runs") / f"study-{name}{'-quick' if quick else ''}-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        if name != "all":
            validation.check_choice("study", name, [*report.STUDIES, "all"])
        results = report.run_studies(names, out, quick=quick, seed=seed,
                                     progress=lambda line: typer.echo(line, err=True))
    except ValueError as error:
        raise _fail(str(error)) from None
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
    from weakpg._src import sweep

    if out is None:
        out = Path("runs") / f"sweep-{config.stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        result = sweep.run_sweep(sweep.load_config(config), out, seeds=seeds, backend=backend,
                                 address=address, workers=workers,
                                 progress=lambda line: typer.echo(line, err=True))
    except (ValueError, RuntimeError) as error:
        raise _fail(str(error)) from None
    typer.echo(f"{out}: {len(result['runs'])} runs ({backend}); table {out / 'summary.csv'}, "
               f"figure {out / 'curves.png'}")
