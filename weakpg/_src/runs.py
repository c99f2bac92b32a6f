"""Run folders: configuration, metrics and checkpoints, each written atomically.

A run folder holds ``config.json``, ``metrics.csv`` (one row per evaluation) and
``checkpoint.npz``. Every file is written to a temporary name in the same folder
(``.<name>.<random>.tmp``) and renamed into place, so a run killed at any moment leaves
either the old or the new version of each file, never half of one; a temporary left by
``kill -9`` is removed by ``remove_temporaries`` (run by every resume). Checkpoints are
plain arrays (``.npz``, loaded with ``allow_pickle=False``) plus a JSON header stored
inside the same file, so params, optimizer state, PRNG key, iteration and step count
always change together. Results made of many files are written into a hidden staging
folder (``staged_folder``) renamed into place at the end. Every reader raises
ValueError naming the file and what is wrong with it.
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
import zipfile
from collections.abc import Iterator, Sequence
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


def remove_temporaries(folder: Path) -> None:
    """Delete the temporaries ``atomic_write`` left in ``folder`` when it was killed."""
    for path in Path(folder).glob(".*.tmp"):
        if path.is_file():
            path.unlink(missing_ok=True)


def check_writable(path: Path) -> None:
    """ValueError unless ``path`` can be created (or written, if it exists) by this process.

    Checked before any work starts, so a long run does not die at its first write.
    """
    path = Path(path)
    existing = next(p for p in (path, *path.parents) if p.exists() or p == p.parent)
    if not existing.is_dir():
        raise ValueError(f"{path} cannot be created: {existing} is a file, not a folder")
    try:
        tempfile.TemporaryFile(dir=existing).close()
    except OSError as error:
        raise ValueError(f"{path} cannot be written: {existing} is not writable "
                         f"({error.strerror or error})") from None


def check_output_folder(out_dir: Path, outputs: tuple[str, ...] = ()) -> None:
    """ValueError unless ``out_dir`` is new or an empty folder.

    ``outputs`` are file names this command writes; a folder holding one of them is
    reported as holding a previous result.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"out_dir {out_dir} is a file, not a folder")
    check_writable(out_dir)
    if out_dir.is_dir() and any(out_dir.iterdir()):
        held = "a previous result" if any((out_dir / f).exists() for f in outputs) else "other files"
        raise ValueError(f"out_dir {out_dir} already holds {held}; give a new or empty folder")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_staging(out_dir: Path) -> None:
    """Delete the staging folders of ``out_dir`` whose process is gone (killed with -9)."""
    out_dir = Path(out_dir)
    for path in out_dir.parent.glob(f".{out_dir.name}.*.partial"):
        pid = path.name.removeprefix(f".{out_dir.name}.").split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def staged_folder(out_dir: Path, outputs: tuple[str, ...] = ()) -> Iterator[Path]:
    """``with staged_folder(out) as staging:`` write into ``staging``; it becomes ``out``.

    ``staging`` is a hidden folder beside ``out_dir`` (``.<out>.<pid>-<random>.partial``),
    renamed to ``out_dir`` when the block ends and removed if it raises (or is
    interrupted), so ``out_dir`` never holds half of a result; one left by a process
    killed with -9 is removed by the next ``staged_folder`` of the same ``out_dir``.
    ``out_dir`` must be new or empty (``check_output_folder``).
    """
    out_dir = Path(out_dir)
    check_output_folder(out_dir, outputs)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(out_dir)
    staging = out_dir.parent / f".{out_dir.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.partial"
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


@contextlib.contextmanager
def new_run_folders(paths: Sequence[Path]) -> Iterator[None]:
    """Create the run folders ``paths``; if the block fails, remove those without a checkpoint.

    A run that stopped before its first checkpoint holds nothing to resume, so no failure
    (an error, a nan, an interrupt) leaves a new folder of that kind behind, nor a parent
    folder made for it that is left empty; one with a checkpoint is kept for ``--resume``.
    """
    paths = [Path(p) for p in paths]
    made = {a for p in paths for a in p.parents if not a.exists()}
    created = []
    try:
        for path in paths:
            path.mkdir(parents=True, exist_ok=False)
            created.append(path)
        yield
    except BaseException:
        for path in created:
            if not (path / CHECKPOINT_FILE).exists():
                shutil.rmtree(path, ignore_errors=True)
        for folder in sorted(made, key=lambda a: len(a.parts), reverse=True):  # deepest first
            with contextlib.suppress(OSError):  # kept when not empty
                folder.rmdir()
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


def read_metrics(path: Path, fields: Sequence[str]) -> list[dict[str, int | float]]:
    """The rows of a metrics table with exactly the columns ``fields``, every cell a number.

    "iteration" and "env_steps" are ints, the rest floats (nan and inf allowed: the step
    metrics of the first row are nan, a standard error from one sample is inf).
    ValueError names the file, the line and what is wrong.
    """
    try:
        with open(path, newline="") as f:
            lines = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise ValueError(f"{path} cannot be read as a metrics table: {error}") from None
    if not lines:
        raise ValueError(f"{path} is empty: it holds no header and no rows")
    if lines[0] != list(fields):
        raise ValueError(f"{path} has the columns {lines[0]}, expected {list(fields)}")
    rows = []
    for number, cells in enumerate(lines[1:], start=2):
        if len(cells) != len(fields):
            raise ValueError(f"{path} line {number} has {len(cells)} cells, expected {len(fields)}")
        try:
            row = {k: int(v) if k in ("iteration", "env_steps") else float(v) for k, v in zip(fields, cells)}
        except ValueError:
            raise ValueError(f"{path} line {number} holds something other than numbers: {cells}") from None
        rows.append(row)
    return rows


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


@contextlib.contextmanager
def _reading_checkpoint(path: Path) -> Iterator[None]:
    """Turn any failure to read the checkpoint at ``path`` into one ValueError naming it."""
    not_ours = (f"checkpoint {path} cannot be read: it is not a weakpg checkpoint (an .npz archive of "
                "arrays and a header)")
    try:
        yield
    except OSError as error:
        raise ValueError(f"checkpoint {path} cannot be read: {error}") from None
    except (EOFError, zipfile.BadZipFile, KeyError, json.JSONDecodeError, UnicodeDecodeError):
        raise ValueError(f"{not_ours}; it is truncated or was written by something else") from None
    except ValueError as error:
        if "pickle" in str(error):  # numpy's advice to load pickled data is not one to give
            raise ValueError(not_ours) from None
        raise ValueError(f"checkpoint {path} cannot be read: {error}") from None


def _header(data: Any) -> dict[str, Any]:
    """The JSON header of an open checkpoint archive."""
    header = json.loads(bytes(data[_HEADER]).decode())
    if not isinstance(header, dict):
        raise ValueError("its header is not a JSON object")
    return header


def load_checkpoint(path: Path, template: Any, *, part: str = "") -> tuple[Any, dict[str, Any]]:
    """Read a checkpoint into the structure of ``template``; ValueError if it does not fit.

    ``part`` reads one subtree of what was saved, named by its key path: ``".params"`` reads
    a ``TrainState``'s parameters alone (``template``: the policy's parameters), whatever
    optimizer state was saved beside them.
    """
    with _reading_checkpoint(path), np.load(path, allow_pickle=False) as data:
        header = _header(data)
        saved = header.get("leaf_names")
        names = [part + name for name, _ in _leaves_with_names(template)]
        within = saved if not part or not isinstance(saved, list) else [
            n for n in saved if isinstance(n, str) and n.startswith(part) and n[len(part):][:1] in "[."]
        if within != names:
            raise ValueError(f"its parameters {within} do not match the "
                             f"run's configuration, which expects {names} (or a version of "
                             "weakpg that stored another state wrote it)")
        leaves = []
        for name, (_, want) in zip(names, _leaves_with_names(template)):
            got = data[f"leaf{saved.index(name)}"]
            if got.shape != np.shape(want):
                raise ValueError(f"{name} has shape {got.shape}, expected {np.shape(want)}")
            leaves.append(jax.numpy.asarray(got, dtype=np.asarray(want).dtype))
    return jax.tree.unflatten(jax.tree.structure(template), leaves), header


def checkpoint_header(path: Path) -> dict[str, Any] | None:
    """The JSON header of the checkpoint at ``path``, None when there is none; ValueError if
    it cannot be read."""
    if not Path(path).exists():
        return None
    with _reading_checkpoint(path), np.load(path, allow_pickle=False) as data:
        return _header(data)


def open_run(path: Path) -> dict[str, Any]:
    """The configuration of an existing run folder (a JSON object); ValueError if it is not one."""
    path = Path(path)
    config_path = path / CONFIG_FILE
    if not config_path.is_file():
        raise ValueError(f"{path} is not a weakpg run folder: {CONFIG_FILE} is missing")
    try:
        config = json.loads(config_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{config_path} is not valid JSON: {error}") from None
    if not isinstance(config, dict):
        raise ValueError(f"{config_path} must hold a JSON object of settings, got {config!r:.80}")
    return config
