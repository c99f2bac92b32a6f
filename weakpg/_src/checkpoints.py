"""A run folder between two chunks: its checkpoint and rows, and the program that continues it.

``save`` writes ``metrics.csv``, then ``checkpoint.npz`` (the state, its PRNG key as raw
data, the iteration, the wall-clock and the seeds of the program), each atomically;
``load`` reads them back so that a resumed run writes exactly the rows of an
uninterrupted one, even after ``kill -9`` between the two writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import jax

from weakpg._src import runs
from weakpg._src.train import TrainState
from weakpg._src.validation import first_non_finite

Row = dict[str, float]


def storable(state: TrainState) -> tuple[TrainState, str]:
    """The state with its PRNG key as raw uint32 data, and the key's implementation."""
    return state._replace(key=jax.random.key_data(state.key)), str(jax.random.key_impl(state.key))


def load(run_dir: Path, template: TrainState, fields: Sequence[str]
         ) -> tuple[TrainState, float, list[Row]]:
    """A run folder's checkpoint, its wall-clock and the rows up to it.

    A folder without a checkpoint (killed before its first one was written) starts again
    from ``template``, the initial state: its rows are all redone. ``fields``: the columns
    of ``metrics.csv``.
    """
    if not (run_dir / runs.CHECKPOINT_FILE).exists():
        return template, 0.0, []
    loaded, header = runs.load_checkpoint(run_dir / runs.CHECKPOINT_FILE, storable(template)[0])
    bad = first_non_finite(loaded.params)
    if bad is not None:
        raise ValueError(f"checkpoint {run_dir / runs.CHECKPOINT_FILE} holds non-finite parameters "
                         f"(params{bad}); it was not written by weakpg, which never saves a nan or an inf")
    state = loaded._replace(key=jax.random.wrap_key_data(loaded.key, impl=header["key_impl"]))
    rows = runs.read_metrics(run_dir / runs.METRICS_FILE, fields)
    if not rows or rows[-1]["iteration"] < header["iteration"]:
        last = f"iteration {rows[-1]['iteration']}" if rows else "no row at all"
        raise ValueError(f"{run_dir / runs.METRICS_FILE} ends at {last}, before its checkpoint at "
                         f"iteration {header['iteration']}: rows are missing, so the run cannot be "
                         "continued without losing its history")
    # Rows written after the checkpoint (a kill between the two writes) are redone.
    return state, header["wall_seconds"], [r for r in rows if r["iteration"] <= header["iteration"]]


def save(run_dir: Path, state: TrainState, rows: list[Row], seeds: list[int]) -> None:
    """Write ``rows`` to ``metrics.csv``, then ``state`` to ``checkpoint.npz`` with the
    program's ``seeds`` (both atomic)."""
    runs.write_csv(run_dir / runs.METRICS_FILE, rows)
    arrays, impl = storable(state)
    runs.save_checkpoint(run_dir / runs.CHECKPOINT_FILE, arrays, {
        "iteration": int(state.iteration), "env_steps": int(state.env_steps),
        "wall_seconds": rows[-1]["wall_seconds"], "key_impl": impl, "seeds": seeds})


def check_resume(run_dirs: Sequence[str | Path], seeds: Sequence[int]) -> None:
    """Refuse to resume folders in a program of other seeds than the one that trained them:
    programs of other batch sizes round differently. A folder without a checkpoint starts
    again (any program); a checkpoint from before it recorded its seeds is not checked."""
    for run_dir in run_dirs:
        path = Path(run_dir) / runs.CHECKPOINT_FILE
        trained = (runs.checkpoint_header(path) or {}).get("seeds")
        if trained is not None and not (isinstance(trained, list) and trained):
            raise ValueError(f"checkpoint {path} cannot be read: its seeds {trained!r} are not a list")
        if trained is not None and trained != list(seeds):
            how = "alone" if len(trained) == 1 else "with all its seeds' folders, in their order"
            raise ValueError(f"{run_dir} was trained in one program with seeds {trained}, which alone "
                             f"continues it exactly: resume it {how}, not with seeds {list(seeds)}")
