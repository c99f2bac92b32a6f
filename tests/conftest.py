"""Shared test helpers: the XLA options of the suite, the tiny LQR of the training tests, a
simulator that blows up, a metrics reader, tiny trained runs, the check that TensorBoard's
event files mirror metrics.csv, the checks of a reproduction's files and of a command's clean
failure, the agreement of two gradient estimates, the session's persistent compilation cache."""

from __future__ import annotations

import contextlib
import csv
import math
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax._src import compilation_cache

from weakpg._src import program_cache, runs
from weakpg._src.compiler_options import CPU_COMPILER_OPTIONS
from weakpg._src.driver import METRIC_FIELDS
from weakpg._src.envs.base import Environment
from weakpg.envs import LinearQuadratic
from weakpg.estimators import GradientEstimate
from weakpg.testing import assert_unbiased

A, B, Q, R, GAMMA = 0.9, 0.5, 1.0, 0.1, 0.9


def _xla_flags(options: dict[str, bool | int]) -> str:
    """XLA_FLAGS that set XLA's compile options: ``--name=value`` each, booleans in lower case."""
    return " ".join(f"--{name}={str(value).lower()}" for name, value in options.items())


# Every program the tests compile (in this process and in the commands they start, Brax's
# own included) compiles with the XLA options of weakpg's training driver where it does not
# name them itself (``estimate_gradient`` names only the optimisation level, so it too
# compiles without the fusion emitters here). Tests check the maths and the behaviour, not
# XLA's code generation, and most of their programs run once: on this 2-core CPU a PG-JD
# estimate of 8192 samples on the 4-d LQR compiles in 1.8 s instead of 4.5 s and runs as
# fast (50 ms). The suite takes about a quarter less time. LLVM's level 0 instead of 1
# saved nothing measurable (906 tests in 12 min 16 s against 12 min 25 s and 12 min 56 s):
# the estimate above compiles 0.3-0.7 s faster and runs 3x slower. XLA_FLAGS set by the
# caller come after these, and win.
os.environ["XLA_FLAGS"] = f"{_xla_flags(CPU_COMPILER_OPTIONS)} {os.environ.get('XLA_FLAGS', '')}".strip()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests marked ``long`` first: xdist hands them out before the short ones, so no
    worker is left with minutes of one test after the other has finished."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


@pytest.fixture(scope="session")
def lqr() -> LinearQuadratic:
    """A scalar, open-loop stable LQR whose optimum K* is far from K = 0."""
    return LinearQuadratic(A=[[A]], B=[[B]], Q=[[Q]], R=[[R]], noise_cov=[[0.1]], init_cov=[[1.0]])


def program_name(fun_name: str) -> str:
    """A compiled program's name less the program cache's entry key: ``jit(chunk)``."""
    return re.sub(rf"_[0-9a-f]{{{program_cache.NAME_DIGITS}}}\)$", ")", fun_name)


@contextlib.contextmanager
def programs_compiled(loaded: list[str] | None = None) -> Iterator[list[str]]:
    """The programs compiled (by XLA, or loaded from JAX's cache) while the block runs, as
    ``jit(name)``; those loaded from the program cache (traced and compiled in an earlier
    process) go to ``loaded`` as ``name`` when it is given, else among the compiled ones."""
    names: list[str] = []

    def on_duration(event: str, duration: float, fun_name: str = "", **kwargs: object) -> None:
        if event.endswith("backend_compile_duration"):
            names.append(program_name(fun_name))
        elif event == program_cache.LOAD_EVENT and loaded is not None:
            loaded.append(fun_name)
        elif event == program_cache.LOAD_EVENT:
            names.append(f"jit({fun_name})")

    jax.monitoring.register_event_duration_secs_listener(on_duration)
    try:
        yield names
    finally:
        jax.monitoring.unregister_event_duration_listener(on_duration)


def read_table(path: Path) -> list[dict[str, int | float | str]]:
    """The rows of a CSV table (metrics.csv, summary.csv): ints, floats, and text where neither."""

    def number(text: str) -> int | float | str:
        for kind in (int, float):
            try:
                return kind(text)
            except ValueError:
                pass
        return text

    with open(path, newline="") as f:
        return [{k: number(v) for k, v in row.items()} for row in csv.DictReader(f)]


def metrics_without_wall_clock(path: Path) -> list[list[str]]:
    """A metrics CSV's cells, every column but wall_seconds (the one that may differ)."""
    lines = [line.split(",") for line in Path(path).read_text().splitlines()]
    keep = [i for i, name in enumerate(lines[0]) if name != "wall_seconds"]
    assert len(lines) > 2 and len(keep) == len(lines[0]) - 1
    return [[cells[i] for i in keep] for cells in lines]


class NanRewardAfter(Environment):
    """``inner`` whose reward is nan from its step ``after`` on (a simulator that blows up)."""

    def __init__(self, inner: Environment, after: int):
        self.inner, self.after = inner, after
        self.observation_shape, self.action_shape = inner.observation_shape, inner.action_shape

    def reset(self, key):
        return self.inner.reset(key), jnp.zeros((), jnp.int32)

    def step(self, key, state, action):
        inner_state, t = state
        next_state, reward = self.inner.step(key, inner_state, action)
        return (next_state, t + 1), jnp.where(t >= self.after, jnp.nan, reward)

    def observe(self, state):
        return self.inner.observe(state[0])


TINY_TRAIN = ("--iterations", "2", "--env-steps", "none", "--batch-size", "4", "--eval-every", "1",
              "--eval-episodes", "2")


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Callable[..., Path]:
    """``trained_run(env, policy, *flags)``: the folder of a 2-iteration ``weakpg train`` run of
    that setting, trained once per session."""
    from typer.testing import CliRunner

    from weakpg._src.app.cli import app

    made: dict[tuple[str, ...], Path] = {}

    def run(env: str, policy: str, *flags: str) -> Path:
        key = (env, policy, *flags)
        if key not in made:
            out = tmp_path_factory.mktemp("run")
            result = CliRunner().invoke(app, ["train", "--env", env, "--policy", policy, *TINY_TRAIN, *flags,
                                              "--out", str(out)])
            assert result.exit_code == 0, result.output
            (made[key],) = out.iterdir()
        return made[key]

    return run


def read_events(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """tag -> [(step, value)] as tensorboard's reader gives them, in file order."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(folder))
    accumulator.Reload()
    return {tag: [(e.step, e.value) for e in accumulator.Scalars(tag)]
            for tag in accumulator.Tags()["scalars"]}


# The scalars of a run's TensorBoard event files (app.tensorboard.TAGS).
EVENT_TAGS = {"iteration", "wall_seconds", "discounted_return", "episode_return", "grad_norm",
              "grad_stderr_norm", "step_size", "env_steps_per_second"}


def expected_events(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """What the event files must hold: every finite cell of metrics.csv at step env_steps (as float32),
    and the env-step rate from each row to the next."""
    rows = runs.read_metrics(run_dir / runs.METRICS_FILE, METRIC_FIELDS)
    out: dict[str, list[tuple[int, float]]] = {}
    for k, row in enumerate(rows):
        cells = {name: row[name] for name in METRIC_FIELDS if name != "env_steps"}
        if k and row["wall_seconds"] > rows[k - 1]["wall_seconds"]:
            cells["env_steps_per_second"] = ((row["env_steps"] - rows[k - 1]["env_steps"])
                                             / (row["wall_seconds"] - rows[k - 1]["wall_seconds"]))
        for tag, value in cells.items():
            if math.isfinite(value):
                out.setdefault(tag, []).append((row["env_steps"], float(np.float32(value))))
    return out


def assert_events_mirror_metrics(run_dir: Path) -> None:
    """One event file in run_dir/tensorboard; each tag's steps (once each) and values are metrics.csv's."""
    assert len(list((run_dir / "tensorboard").glob("events.out.tfevents.*"))) == 1
    found, expected = read_events(run_dir / "tensorboard"), expected_events(run_dir)
    assert set(found) == EVENT_TAGS == set(expected)
    for tag in EVENT_TAGS:
        steps = [step for step, _ in found[tag]]
        assert len(steps) == len(set(steps)), f"{tag}: a step written twice"
        assert found[tag] == expected[tag], tag  # float32 on both sides: exactly equal
    assert len(found["iteration"]) == len(runs.read_metrics(run_dir / runs.METRICS_FILE, METRIC_FIELDS))


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file and folder under ``root`` (hidden ones too), with the files' bytes."""
    return {str(p.relative_to(root)): p.read_bytes() if p.is_file() else b"<dir>" for p in root.rglob("*")}


def assert_reproduction_written(out: Path, study: str, phrases: tuple[str, ...] = ()) -> None:
    """A ``weakpg reproduce`` output folder: figures, table and summary; a rerun into it is refused."""
    for name in ("curves.png", "curves_discounted.png", "curves.csv", "summary.md"):
        assert (out / name).stat().st_size > 0
    summary = (out / "summary.md").read_text()
    assert all(f"| {m} |" in summary for m in ("PG-JD", "PG-SF", "PG-SF + rollout baseline"))
    assert all(phrase in summary for phrase in phrases)
    from typer.testing import CliRunner

    from weakpg._src.app.cli import app

    again = CliRunner().invoke(app, ["reproduce", study, "--quick", "--out", str(out)])
    assert again.exit_code == 2 and "already holds a previous result" in again.output


def fails_cleanly(args: list[str], root: Path, message: str) -> None:
    """``weakpg args`` exits 2 with the one line ``error: ...message...``, changing nothing under ``root``."""
    from typer.testing import CliRunner

    from weakpg._src.app.cli import app

    before = snapshot(root)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert "allow_pickle" not in lines[0] and "Traceback" not in result.output
    assert snapshot(root) == before


def assert_estimates_agree(a, b, *, num_stderr: float = 4.0) -> None:
    """Two independent unbiased estimates of one gradient agree: |a - b| <= k sqrt(s_a^2 + s_b^2)."""
    diff = jax.tree.map(lambda x, y: x - y, a.mean, b.mean)
    stderr = jax.tree.map(lambda x, y: jnp.sqrt(x**2 + y**2), a.stderr, b.stderr)
    assert_unbiased(GradientEstimate(diff, stderr), jax.tree.map(jnp.zeros_like, diff), num_stderr=num_stderr)


@pytest.fixture(scope="session", autouse=True)
def persistent_compilation_cache(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> None:
    """JAX's persistent cache for the whole session: every xdist worker and every command the
    tests start (subprocesses, sweep and Ray workers inherit ``JAX_COMPILATION_CACHE_DIR``)
    compiles a program once and loads it after that. A folder of the session's own, unless
    the caller set ``JAX_COMPILATION_CACHE_DIR``. Every program is cached, however fast it
    compiled (as the command line does).
    """
    base = tmp_path_factory.getbasetemp()
    folder = os.environ.get("JAX_COMPILATION_CACHE_DIR") or str(
        (base if worker_id == "master" else base.parent) / "xla-cache")  # shared by the workers
    os.environ["JAX_COMPILATION_CACHE_DIR"] = folder
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    compilation_cache.reset_cache()  # the cache is set up once per process, at its first compile
