"""The ``weakpg`` command line."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

import weakpg

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
