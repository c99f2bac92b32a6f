"""Learning curves: the mean across runs with a 95% band, as in the paper's Fig. 1.

Runs of one method rarely share their x values (PG-JD and PG-SF spend a random number of
environment steps per iteration), so each run's curve is interpolated linearly onto one
grid: the union of the runs' x values, clipped to the range every run covers. At each
grid point the band is mean +- 1.96 standard errors across runs.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from weakpg._src import runs
from weakpg._src.driver import METRIC_FIELDS

_ESTIMATOR_LABELS = {"jd": "PG-JD", "sf": "PG-SF"}
BAND_Z = 1.96  # a 95% band: the mean +- 1.96 standard errors
_AXIS_LABELS = {"env_steps": "environment steps", "wall_seconds": "wall-clock seconds",
                "discounted_return": "discounted return J",
                "episode_return": "episode return (mean action)"}


@contextlib.contextmanager
def figure(path: str | Path, *, nrows: int = 1, ncols: int = 1,
           figsize: tuple[float, float] = (7, 4.5)) -> Iterator[tuple[Any, Any]]:
    """``with figure(path) as (fig, axes):`` draw, then the PNG is written atomically.

    ``axes`` is what ``plt.subplots`` returns (one Axes, or an array of them). Uses the
    non-interactive Agg backend; nothing is written if the block raises. ValueError,
    before anything is drawn, unless ``path`` ends in ".png" and its folder exists.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"the figure {path} must be a .png file (PNG is what is written), "
                         f"got the suffix {path.suffix or 'none'!r}")
    if not path.parent.is_dir():
        raise ValueError(f"the figure {path} cannot be written: its folder {path.parent} does not exist")
    runs.check_writable(path.parent)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, figsize=figsize)
    try:
        yield fig, axes
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=120)
    finally:
        plt.close(fig)
    runs.atomic_write(Path(path), buffer.getvalue())


def method_label(estimator: str, baseline: str | None = None) -> str:
    """The paper's name for a method: "PG-JD", "PG-SF", "PG-SF + rollout baseline"."""
    label = _ESTIMATOR_LABELS.get(estimator, estimator)
    return f"{label} + {baseline} baseline" if baseline else label


def common_grid(xs_list: Sequence[np.ndarray]) -> np.ndarray:
    """The sorted union of the runs' x values inside the range every run covers."""
    start = max(float(np.min(xs)) for xs in xs_list)
    stop = min(float(np.max(xs)) for xs in xs_list)
    union = np.unique(np.concatenate([np.asarray(xs, np.float64) for xs in xs_list]))
    return union[(union >= start) & (union <= stop)]


def mean_and_stderr(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """Mean across runs (axis 0) and its standard error, std(ddof=1) / sqrt(n) (nan for n = 1)."""
    x = np.asarray(values, np.float64)
    stderr = x.std(axis=0, ddof=1) / np.sqrt(len(x)) if len(x) > 1 else np.full(x.shape[1:], np.nan)
    return x.mean(axis=0), stderr


def mean_and_band(xs_list: Sequence[np.ndarray], ys_list: Sequence[np.ndarray],
                  grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean across runs and the half-width of its 95% band on ``grid``.

    Each run i gives y_i(grid) by linear interpolation of (xs_list[i], ys_list[i]); with
    n runs, mean = (1/n) sum_i y_i and half-width = 1.96 std(y_i, ddof=1) / sqrt(n)
    (zero for a single run: one run says nothing about the spread). Returns two arrays
    shaped like ``grid``.
    """
    grid = np.asarray(grid, np.float64)
    curves = np.stack([np.interp(grid, np.asarray(xs, np.float64), np.asarray(ys, np.float64))
                       for xs, ys in zip(xs_list, ys_list, strict=True)])
    mean, stderr = mean_and_stderr(curves)
    return mean, BAND_Z * stderr if len(curves) > 1 else np.zeros_like(mean)


def _run_xy(rows: list[dict], x: str, y: str, where: str) -> tuple[np.ndarray, np.ndarray]:
    if not rows:
        raise ValueError(f"{where} has no metrics rows")
    missing = {x, y} - set(rows[0])
    if missing:
        raise ValueError(f"{where} has no column {sorted(missing)}; it has {sorted(rows[0])}")
    xs = np.array([row[x] for row in rows], np.float64)
    ys = np.array([row[y] for row in rows], np.float64)
    bad = np.flatnonzero(~(np.isfinite(xs) & np.isfinite(ys)))
    if bad.size:
        raise ValueError(f"{where} holds a non-finite {x} or {y} in row {bad[0] + 1}: "
                         f"{x}={xs[bad[0]]}, {y}={ys[bad[0]]}")
    order = np.argsort(xs, kind="stable")
    return xs[order], ys[order]


def plot_curves(curves: dict[str, list[list[dict]]], path: str | Path, *, x: str = "env_steps",
                y: str = "episode_return", title: str = "Learning curves") -> None:
    """Draw one line per method, the mean over its runs with a 95% band; save a PNG.

    Args:
      curves: method label -> runs, each run the metrics rows of ``train()``.
      path: the PNG to write (atomically).
      x, y: the metrics columns on the axes.
      title: the figure title.
    """
    if not curves:
        raise ValueError("curves is empty: give at least one method with one run")
    data = {}
    for label, method_runs in curves.items():
        if not method_runs:
            raise ValueError(f"method {label!r} has no runs")
        data[label] = [_run_xy(rows, x, y, f"run {i} of {label!r}") for i, rows in enumerate(method_runs)]

    with figure(path, figsize=(7, 4.5)) as (_, ax):
        for label, xy in data.items():
            xs_list, ys_list = zip(*xy)
            grid = common_grid(xs_list)
            mean, half = mean_and_band(xs_list, ys_list, grid)
            (line,) = ax.plot(grid, mean, label=f"{label} (n={len(xy)})")
            ax.fill_between(grid, mean - half, mean + half, color=line.get_color(), alpha=0.2,
                            linewidth=0)
        ax.set_xlabel(_AXIS_LABELS.get(x, x))
        ax.set_ylabel(_AXIS_LABELS.get(y, y))
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend(title="mean, 95% band")


def plot_runs(run_dirs: Sequence[str | Path], path: str | Path, *, y: str = "episode_return") -> None:
    """Plot run folders, runs of one estimator and baseline averaged as one method.

    Each folder needs ``config.json`` (with "estimator", and "baseline" and "seed" where
    they apply) and ``metrics.csv``; ValueError names the folder that lacks them. The
    legend names each method and the seeds of its runs; ``y`` is the metrics column drawn.
    """
    if not run_dirs:
        raise ValueError("run_dirs is empty: give at least one run folder")
    seen, curves, seeds = set(), {}, {}
    for run_dir in map(Path, run_dirs):
        config = runs.open_run(run_dir)
        if "estimator" not in config:
            raise ValueError(f"{run_dir / runs.CONFIG_FILE} does not name an 'estimator'")
        if run_dir.resolve() in seen:
            raise ValueError(f"run folder {run_dir} is given twice")
        seen.add(run_dir.resolve())
        metrics = run_dir / runs.METRICS_FILE
        if not metrics.is_file():
            raise ValueError(f"{run_dir} has no {runs.METRICS_FILE}: the run never reached an evaluation")
        label = method_label(config["estimator"], config.get("baseline"))
        curves.setdefault(label, []).append(runs.read_metrics(metrics, METRIC_FIELDS))
        seeds.setdefault(label, []).append(str(config.get("seed", "?")))
    labelled = {f"{label}, seed{'s' * (len(seeds[label]) > 1)} {', '.join(seeds[label])}": method_runs
                for label, method_runs in curves.items()}
    plot_curves(labelled, path, y=y, title=f"{len(seen)} run(s)")
