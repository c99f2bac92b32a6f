"""Run folders: configuration, metrics and checkpoints, each written atomically.

A run folder holds ``config.json``, ``metrics.csv`` (one row per evaluation) and
``checkpoint.npz``. Every file is written to a temporary name in the same folder and
renamed into place, so a run killed at any moment leaves either the old or the new
version of each file, never half of one. Checkpoints are plain arrays (``.npz``, loaded
with ``allow_pickle=False``) plus a JSON header stored inside the same file, so params,
optimizer state, PRNG key, iteration and step count always change together.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jax
import numpy as np

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.csv"
CHECKPOINT_FILE = "checkpoint.npz"
_HEADER = "__header__"
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; a plain open would honour the umask
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def check_output_folder(out_dir: Path, outputs: tuple[str, ...] = ()) -> None:
    """ValueError unless ``out_dir`` is new or an empty folder.

    ``outputs`` are file names this command writes; a folder holding one of them is
    reported as holding a previous result.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"out_dir {out_dir} is a file, not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        held = "a previous result" if any((out_dir / f).exists() for f in outputs) else "other files"
        raise ValueError(f"out_dir {out_dir} already holds {held}; give a new or empty folder")


@contextlib.contextmanager
def staged_folder(out_dir: Path, outputs: tuple[str, ...] = ()) -> Iterator[Path]:
    """``with staged_folder(out) as staging:`` write into ``staging``; it becomes ``out``.

    ``staging`` is a hidden folder beside ``out_dir``, renamed to ``out_dir`` when the
    block ends and removed if it raises (or is interrupted), so ``out_dir`` never holds
    half of a result. ``out_dir`` must be new or empty (``check_output_folder``).
    """
    out_dir = Path(out_dir)
    check_output_folder(out_dir, outputs)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.parent / f".{out_dir.name}.{uuid.uuid4().hex[:8]}.partial"
    staging.mkdir()
    try:
        yield staging
        if out_dir.is_dir():
            check_output_folder(out_dir, outputs)  # still empty: nothing else wrote there meanwhile
            out_dir.rmdir()
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def write_json(path: Path, obj: Any) -> None:
    atomic_write(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """The whole table, rewritten atomically (metrics files are small)."""
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    atomic_write(path, buffer.getvalue().encode())


def _number(text: str) -> int | float | str:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def read_csv(path: Path) -> list[dict[str, int | float | str]]:
    """Rows of a table written by ``write_csv``: integers, floats, and text where neither.

    ValueError (naming the file) when it is missing or not such a table.
    """
    try:
        with open(path, newline="") as f:
            return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(f)]
    except (OSError, ValueError, csv.Error) as error:
        raise ValueError(f"{path} cannot be read as a metrics table: {error}") from None


def _leaves_with_names(tree: Any) -> list[tuple[str, Any]]:
    return [(jax.tree_util.keystr(path), leaf)
            for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]]


def save_checkpoint(path: Path, tree: Any, header: dict[str, Any]) -> None:
    """Store the array leaves of ``tree`` and a JSON ``header`` in one ``.npz`` file."""
    arrays = {f"leaf{i}": np.asarray(leaf) for i, (_, leaf) in enumerate(_leaves_with_names(tree))}
    header = dict(header, leaf_names=[name for name, _ in _leaves_with_names(tree)])
    arrays[_HEADER] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write(path, buffer.getvalue())


def load_checkpoint(path: Path, template: Any) -> tuple[Any, dict[str, Any]]:
    """Read a checkpoint into the structure of ``template``; ValueError if it does not fit."""
    try:
        with np.load(path, allow_pickle=False) as data:
            header = json.loads(bytes(data[_HEADER]).decode())
            names = [name for name, _ in _leaves_with_names(template)]
            if header.get("leaf_names") != names:
                raise ValueError(f"its parameters {header.get('leaf_names')} do not match the "
                                 f"run's configuration, which expects {names}")
            leaves = []
            for i, (name, want) in enumerate(_leaves_with_names(template)):
                got = data[f"leaf{i}"]
                if got.shape != np.shape(want):
                    raise ValueError(f"{name} has shape {got.shape}, expected {np.shape(want)}")
                leaves.append(jax.numpy.asarray(got, dtype=np.asarray(want).dtype))
    except (OSError, KeyError, EOFError, json.JSONDecodeError, UnicodeDecodeError,
            ValueError) as error:
        raise ValueError(f"checkpoint {path} cannot be read: {error}") from None
    return jax.tree.unflatten(jax.tree.structure(template), leaves), header


def open_run(path: Path) -> dict[str, Any]:
    """The configuration of an existing run folder; ValueError if ``path`` is not one."""
    path = Path(path)
    config_path = path / CONFIG_FILE
    if not config_path.is_file():
        raise ValueError(f"{path} is not a weakpg run folder: {CONFIG_FILE} is missing")
    try:
        return json.loads(config_path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{config_path} is not valid JSON: {error}") from None
