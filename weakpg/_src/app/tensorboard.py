"""TensorBoard event files that mirror a run's ``metrics.csv`` (``--tensorboard``).

A run folder's ``tensorboard/`` holds one event file (tensorboardX's ``SummaryWriter``)
with a scalar per metrics row for every column of ``metrics.csv`` but ``env_steps``,
which is the step: methods that spend different numbers of env steps per iteration line
up on the sample budget. One more tag, ``env_steps_per_second``, is the rate between a
row and the one before it, (env_steps_k - env_steps_{k-1}) / (wall_seconds_k -
wall_seconds_{k-1}), compile time included; the first row has none. A nan or an inf
cell (the gradient metrics of the first row, a standard error from one sample) gets no
point. An event's wall time is the run's ``wall_seconds`` plus one origin per writer, so
TensorBoard's "relative" axis is ``wall_seconds``.

The event files are a view of ``metrics.csv``, rebuilt rather than patched: a writer
opened on a run folder deletes the event files it holds and writes every row so far,
then appends each new one (``EventWriters``). A resumed run (after ``kill -9`` too) thus
holds each step once, with the values of ``metrics.csv``; rows are written only once
they are in ``metrics.csv`` and its checkpoint. ``write_events`` writes a finished
run's folder in one go.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from weakpg._src import runs
from weakpg._src.driver import METRIC_FIELDS

TENSORBOARD_DIR = "tensorboard"
STEP = "env_steps"
RATE = "env_steps_per_second"
TAGS = (*(f for f in METRIC_FIELDS if f != STEP), RATE)
EVENT_FILES = "events.out.tfevents.*"
FLUSH_SECONDS = 5
Row = dict[str, float]


def _summary_writer() -> Any:
    """tensorboardX's ``SummaryWriter``; ValueError naming the extra when it is missing."""
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        raise ValueError("--tensorboard needs tensorboardX: pip install 'weakpg[tensorboard]'") from None
    return SummaryWriter


def require() -> None:
    """ValueError (one line naming the extra) unless the event files can be written."""
    _summary_writer()


def scalars(rows: Sequence[Row], k: int) -> dict[str, float]:
    """The points of row ``k`` of ``rows``: tag -> value, each finite.

    Every ``TAGS`` column the row holds (a Brax study's PPO rows hold no discounted return
    and no gradient norms), and ``env_steps_per_second`` from row k - 1 to row k
    when k > 0 and the wall-clock advanced.
    """
    row = rows[k]
    points = {tag: float(row[tag]) for tag in TAGS if tag != RATE and tag in row}
    if k > 0 and row["wall_seconds"] > rows[k - 1]["wall_seconds"]:
        points[RATE] = (row[STEP] - rows[k - 1][STEP]) / (row["wall_seconds"] - rows[k - 1]["wall_seconds"])
    return {tag: value for tag, value in points.items() if math.isfinite(value)}


def _remove_events(folder: Path) -> None:
    for path in folder.glob(EVENT_FILES):
        path.unlink(missing_ok=True)


class _RunWriter:
    """The event file of one ``tensorboard/`` folder, holding the first ``written`` rows."""

    def __init__(self, folder: Path, last_wall_seconds: float):
        _remove_events(folder)  # a previous session's view, rebuilt from the rows
        # Flushed (with an fsync) by the writer's thread every FLUSH_SECONDS, not per chunk: a
        # kill loses at most that much of the view, which a resume rebuilds anyway.
        self.writer = _summary_writer()(logdir=str(folder), flush_secs=FLUSH_SECONDS)
        self.origin = time.time() - last_wall_seconds
        self.written = 0

    def append(self, rows: Sequence[Row]) -> None:
        for k in range(self.written, len(rows)):
            for tag, value in scalars(rows, k).items():
                self.writer.add_scalar(tag, value, global_step=int(rows[k][STEP]),
                                       walltime=self.origin + rows[k]["wall_seconds"])
        self.written = len(rows)


class EventWriters:
    """The event files of some run folders, kept equal to their rows as training goes.

    ``writers(index, rows)`` (the driver's ``on_rows``) takes all rows so far of the run
    in ``run_dirs[index]``: the first call opens its event file afresh and writes them
    all, later ones append the new rows. ``close()`` (or the end of a ``with`` block)
    closes every file.
    """

    def __init__(self, run_dirs: Sequence[str | Path]):
        require()
        self.run_dirs = [Path(d) for d in run_dirs]
        self._open: dict[int, _RunWriter] = {}

    def __call__(self, index: int, rows: Sequence[Row]) -> None:
        if not rows:
            return
        if index not in self._open:
            self._open[index] = _RunWriter(self.run_dirs[index] / TENSORBOARD_DIR, rows[-1]["wall_seconds"])
        self._open[index].append(rows)

    def close(self) -> None:
        for run in self._open.values():
            run.writer.close()
        self._open.clear()

    def __enter__(self) -> EventWriters:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_events(run_dir: str | Path, rows: Sequence[Row]) -> None:
    """Write a finished run's ``run_dir/tensorboard/`` from its ``rows``, whole.

    The folder is written in a staging folder and renamed into place, so it appears
    complete or not at all; ``run_dir/tensorboard`` must be new or empty.
    """
    require()
    with runs.staged_folder(Path(run_dir) / TENSORBOARD_DIR) as staging:
        run = _RunWriter(staging, rows[-1]["wall_seconds"] if rows else 0.0)
        try:
            run.append(rows)
        finally:
            run.writer.close()
