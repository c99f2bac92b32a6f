"""Seed and config sweeps: the runs of a plan (``sweep_plan``), in local processes or on Ray.

The output folder holds::

    plan.json      the sweep's config and seeds, written first
    runs/<name>/   config.json, metrics.csv, checkpoint.npz of each run, as `weakpg train`
                   writes them; <name> is the grid values and the seed, e.g.
                   "estimator=jd__lr=0.05__seed0"; each appears whole (renamed into place
                   from a staging folder) when its grid point has finished; with
                   ``tensorboard=True`` also tensorboard/, its metrics as event files
    sweep.json     once every run has finished: the config, the seeds, the backend and
                   every run's final metrics
    summary.csv    then too: one row per run: its name, the settings that vary, seed, final
                   metrics
    curves.png     then too: learning curves, the runs of one estimator and baseline averaged

A sweep that stops early (a failing run, an interrupt, ``kill -9``) keeps the runs that
finished. Running the same sweep (same file, same ``--seeds``) into the same folder
resumes it: finished runs are kept as they are and only the others are trained, so the
result equals that of an uninterrupted sweep (``wall_seconds`` aside). A sweep that stops
before any run has finished leaves no folder behind.

The seeds of one grid point train together in a worker, as one vmapped program (one
compilation, ``weakpg.train.train_seeds``), in a temporary folder, and return their
files as bytes; the driver writes them, so workers need no disk shared with the driver
(a Ray cluster of several machines). Backends: "local" runs a pool of processes on this
machine (started with "spawn": JAX is not fork-safe; each exits as soon as its driver is
gone, even after ``kill -9``, and is killed when the driver stops early); "ray" runs each
grid point as a Ray task with one CPU, on the cluster at ``address`` (``pip install
weakpg[ray]``; every node needs weakpg installed); a task whose worker dies is retried
(``RAY_RETRIES`` times), and only the driver writes, so a retried task neither loses
nor duplicates a run. A script that calls ``run_sweep`` on the local backend needs the
``if __name__ == "__main__":`` guard that "spawn" asks for.

A run's metrics depend only on its setup: on either backend they equal those of
``weakpg train`` with the same settings and seed, all but ``wall_seconds``, as long as the
workers have the same jax and the same ``XLA_FLAGS`` (flags that change XLA's CPU code,
such as single-threaded Eigen, change the last digits).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import multiprocessing
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from weakpg._src import runs
from weakpg._src.app import plotting, settings
from weakpg._src.app import tensorboard as event_files
from weakpg._src.app.sweep_plan import Run, groups, plan
from weakpg._src.config import check_choice, check_int_range
from weakpg._src.driver import METRIC_FIELDS

BACKENDS = ("local", "ray")
RUN_FILES = (runs.CONFIG_FILE, runs.METRICS_FILE, runs.CHECKPOINT_FILE)
PLAN_FILE = "plan.json"
OUTPUT_FILES = (PLAN_FILE, "runs", "sweep.json", "summary.csv", "curves.png")
RAY_RETRIES = 3  # retries of a Ray task whose worker process died
PARENT_POLL_SECONDS = 0.5


def run_in_worker(setups: list[dict[str, Any]]) -> list[dict[str, bytes]]:
    """Train the seeds of one grid point in one program, in a temporary folder.

    Returns each run's files' contents by name (``RUN_FILES``), in the order of ``setups``.
    """
    from weakpg._src.driver import train_seeds

    config = settings.from_dict(setups[0])
    env, policy = settings.build(config)
    with tempfile.TemporaryDirectory(prefix="weakpg-run-") as tmp:
        run_dirs = [Path(tmp) / str(i) for i in range(len(setups))]
        for run_dir, setup in zip(run_dirs, setups):
            run_dir.mkdir()
            runs.write_json(run_dir / runs.CONFIG_FILE, setup)
        train_seeds(env, policy, config.train, seeds=[s["seed"] for s in setups], run_dirs=run_dirs)
        return [{name: (d / name).read_bytes() for name in RUN_FILES} for d in run_dirs]


def _failed(group: Sequence[Run], error: BaseException) -> RuntimeError:
    names = ", ".join(run.name for run in group)
    return RuntimeError(f"run {names} failed: {type(error).__name__}: {error}")


def _exit_with_parent(parent: int) -> None:
    """In a worker: exit as soon as the process ``parent`` is gone (even after its ``kill -9``)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _local_results(todo: Sequence[Sequence[Run]], workers: int) -> Iterator[tuple[Run, dict[str, bytes]]]:
    """(run, files) as each grid point finishes, from a pool of ``workers`` spawned processes.

    On the first failure, or when the consumer stops early (an interrupt), the runs not yet
    started are cancelled and the workers are killed.
    """
    before = set(multiprocessing.active_children())
    pool = concurrent.futures.ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("spawn"), initializer=_exit_with_parent,
        initargs=(os.getpid(),))
    completed = False
    try:
        futures = {pool.submit(run_in_worker, [run.setup for run in group]): group for group in todo}
        for future in concurrent.futures.as_completed(futures):
            try:
                files = future.result()
            except Exception as error:
                raise _failed(futures[future], error) from error
            yield from zip(futures[future], files)
        completed = True
    finally:
        if not completed:
            pool.shutdown(wait=False, cancel_futures=True)
            for process in set(multiprocessing.active_children()) - before:
                process.kill()
        pool.shutdown(wait=True)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ValueError("the ray backend needs Ray: pip install weakpg[ray]") from None
    return ray


def _ray_results(todo: Sequence[Sequence[Run]],
                 address: str | None) -> Iterator[tuple[Run, dict[str, bytes]]]:
    """(run, files) as each grid point finishes, one Ray task with one CPU per grid point.

    Connects with ``ray.init(address=address)`` and disconnects at the end, unless Ray is
    already initialised in this process, whose connection is then used and kept.
    """
    ray = _import_ray()
    connect = not ray.is_initialized()
    if connect:
        try:
            ray.init(address=address, include_dashboard=False)
        except ConnectionError as error:
            raise ValueError(f"cannot reach a Ray cluster at address {address!r}: {error}") from None
    try:
        task = ray.remote(num_cpus=1, max_retries=RAY_RETRIES)(run_in_worker)
        refs = {task.remote([run.setup for run in group]): group for group in todo}
        pending = list(refs)
        try:
            while pending:
                (ref,), pending = ray.wait(pending, num_returns=1)
                try:
                    files = ray.get(ref)
                except ray.exceptions.RayTaskError as error:
                    raise _failed(refs[ref], error.cause) from error
                except ray.exceptions.RayError as error:
                    raise _failed(refs[ref], error) from error
                yield from zip(refs[ref], files)
        finally:
            for ref in pending:
                ray.cancel(ref)
    finally:
        if connect:
            ray.shutdown()


def _row(run: Run, final: Mapping[str, Any]) -> dict[str, Any]:
    values = {key: settings.NONE if value is None else value for key, value in run.settings.items()}
    return {"run": run.name, **values, "seed": run.setup["seed"], **{k: final[k] for k in METRIC_FIELDS}}


def _open(out_dir: Path, record: dict[str, Any]) -> bool:
    """Start the sweep ``record`` in ``out_dir``, or check that ``out_dir`` holds it already.

    Returns whether ``out_dir`` was started now (new or empty). ValueError if it holds
    anything else, another sweep included.
    """
    plan_file = out_dir / PLAN_FILE
    if out_dir.is_dir():
        runs.remove_temporaries(out_dir)  # of a write cut short by kill -9
    if plan_file.is_file():
        try:
            held = json.loads(plan_file.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"{plan_file} cannot be read: {error}") from None
        if held != record:
            raise ValueError(f"{out_dir} holds another sweep (its {PLAN_FILE} differs from this config and "
                             "seeds); give a new or empty folder, or the same config and seeds to resume it")
        runs.check_writable(out_dir)
        return False
    runs.check_output_folder(out_dir, OUTPUT_FILES)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs.write_json(plan_file, record)  # first: a folder without it holds no run
    (out_dir / "runs").mkdir(exist_ok=True)
    return True


def _finished(out_dir: Path, run: Run) -> bool:
    """Whether ``run``'s folder holds its files (it appears whole, so it is then finished)."""
    run_dir = out_dir / "runs" / run.name
    return all((run_dir / name).is_file() for name in RUN_FILES) and runs.open_run(run_dir) == run.setup


def _write_run(out_dir: Path, run: Run, files: Mapping[str, bytes], tensorboard: bool) -> dict[str, Any]:
    """Put a finished run's folder in place, whole (with its event files); its final metrics row."""
    with runs.staged_folder(out_dir / "runs" / run.name) as staging:
        for name, data in files.items():
            runs.atomic_write(staging / name, data)
        rows = runs.read_metrics(staging / runs.METRICS_FILE, METRIC_FIELDS)
        if tensorboard:
            event_files.write_events(staging, rows)
    return rows[-1]


def run_sweep(config: Mapping[str, Any], out_dir: str | Path, *, seeds: int | None = None,
              backend: str = "local", address: str | None = None, workers: int | None = None,
              progress: Callable[[str], None] | None = None, tensorboard: bool = False) -> dict[str, Any]:
    """Run every run of ``plan(config, seeds)`` and collect them into ``out_dir``.

    Args:
      config: the sweep's settings and grid (``load_config``; see the module docstring).
      out_dir: a new or empty folder, or one holding the same sweep (config and seeds),
        stopped early: its finished runs are kept and only the rest are trained.
      seeds: seeds 0..seeds-1 for every grid point (see ``plan``).
      backend: "local" (a pool of processes on this machine) or "ray".
      address: for "ray": the cluster, as ``ray.init`` takes it ("auto", "host:port",
        "ray://host:port"); None connects to a cluster started on this machine or starts
        a Ray instance for the sweep.
      workers: for "local": processes at once (default min(grid points to train, CPUs)).
      progress: receives one line per finished run.
      tensorboard: give every run folder ``tensorboard/``, its metrics as TensorBoard event
        files (``app.tensorboard``), those of runs that had finished without them too.

    Returns the content of ``sweep.json``: {"config", "seeds", "backend", "runs": [{"name",
    "settings", "seed", "final"}]}, the runs in ``plan`` order. A failing run raises
    RuntimeError naming it (the finished runs stay in ``out_dir``); bad arguments raise
    ValueError before anything is written.
    """
    check_choice("backend", backend, BACKENDS)
    planned = plan(config, seeds)
    if backend == "local":
        if address is not None:
            raise ValueError(f"address {address!r} is for the ray backend; the local backend takes none")
        if workers is not None:
            check_int_range("workers", workers, 1)
    else:
        if workers is not None:
            raise ValueError(f"workers {workers!r} is for the local backend; on Ray each run is a "
                             "task with one CPU and the cluster's size sets how many run at once")
        _import_ray()
    if tensorboard:
        event_files.require()
    out_dir = Path(out_dir)
    record = json.loads(json.dumps({"config": dict(config), "seeds": seeds}))
    started = _open(out_dir, record)
    finished = {run.name for run in planned if _finished(out_dir, run)}
    for name in finished if tensorboard else ():
        if not (out_dir / "runs" / name / event_files.TENSORBOARD_DIR).is_dir():
            event_files.write_events(out_dir / "runs" / name, runs.read_metrics(
                out_dir / "runs" / name / runs.METRICS_FILE, METRIC_FIELDS))
    todo = [group for group in groups(planned) if any(run.name not in finished for run in group)]
    if backend == "local":
        workers = min(max(len(todo), 1), os.cpu_count() or 1) if workers is None else workers
        results = _local_results(todo, workers)
    else:
        results = _ray_results(todo, address)
    if progress is not None and finished:
        progress(f"{len(finished)} of {len(planned)} runs already finished in {out_dir}; training the rest")
    try:
        with contextlib.closing(results):  # an interrupt stops the pool or the Ray tasks too
            for run, files in results:
                if run.name in finished:  # a grid point whose other seeds were not all in place
                    continue
                final = _write_run(out_dir, run, files, tensorboard)
                finished.add(run.name)
                if progress is not None:
                    progress(f"[{len(finished)}/{len(planned)}] {run.name}: episode return "
                             f"{final['episode_return']:.1f}, J {final['discounted_return']:.2f} after "
                             f"{final['env_steps']:,} env steps ({final['wall_seconds']:.0f} s)")
    except BaseException:
        if started and not finished:
            shutil.rmtree(out_dir, ignore_errors=True)
        raise
    finals = {run.name: runs.read_metrics(out_dir / "runs" / run.name / runs.METRICS_FILE, METRIC_FIELDS)[-1]
              for run in planned}
    result = {
        "config": dict(config), "backend": backend,
        "seeds": sorted({run.setup["seed"] for run in planned}),
        "runs": [{"name": run.name, "settings": run.settings, "seed": run.setup["seed"],
                  "final": finals[run.name]} for run in planned],
    }
    runs.write_csv(out_dir / "summary.csv", [_row(run, finals[run.name]) for run in planned])
    plotting.plot_runs([out_dir / "runs" / run.name for run in planned], out_dir / "curves.png")
    runs.write_json(out_dir / "sweep.json", result)  # last: its presence means the sweep is complete
    return result
