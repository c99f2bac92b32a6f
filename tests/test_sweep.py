"""Sweeps: config files and their checks, and the same runs on local processes and on Ray."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import read_table

from weakpg._src import runs
from weakpg._src.app import sweep, sweep_plan
from weakpg._src.driver import METRIC_FIELDS

TINY = {"env": "Pendulum-v1", "policy": "linear", "batch_size": 32, "env_steps": 2000, "eval_every": 1,
        "eval_episodes": 2}


def test_grid_is_the_cartesian_product_with_seeds_fastest():
    planned = sweep_plan.plan({**TINY, "estimator": "sf", "grid": {"baseline": ["none", "rollout"],
                                                              "lr": [0.05, 0.1]}}, seeds=2)
    assert [run.name for run in planned] == [
        f"baseline={b}__lr={lr}__seed{s}" for b in ("none", "rollout") for lr in (0.05, 0.1)
        for s in (0, 1)]
    assert planned[2].settings == {"baseline": None, "lr": 0.1}
    assert planned[4].setup == {**planned[4].setup, **TINY, "estimator": "sf", "baseline": "rollout",
                                "lr": 0.05, "seed": 0}
    assert planned[0].setup["baseline"] is None  # "none" in TOML
    assert [len(g) for g in sweep_plan.groups(planned)] == [2, 2, 2, 2]  # one program per grid point


def test_a_grid_point_that_breaks_a_cross_field_rule_is_named():
    with pytest.raises(ValueError, match="grid point estimator='jd', baseline='rollout': baseline='rollout' "
                                         "applies to estimator='sf' only"):
        sweep_plan.plan({**TINY, "grid": {"estimator": ["jd", "sf"], "baseline": ["none", "rollout"]}})


def test_without_seeds_each_point_runs_with_the_files_seed():
    assert [run.name for run in sweep_plan.plan(TINY)] == ["seed0"]
    assert [run.setup["seed"] for run in sweep_plan.plan({**TINY, "seed": 7})] == [7]
    planned = sweep_plan.plan({**TINY, "grid": {"seed": [3, 5], "lr": [0.1]}})
    assert [run.name for run in planned] == ["lr=0.1__seed3", "lr=0.1__seed5"]


def test_folder_names_hold_only_safe_characters():
    config = {k: v for k, v in TINY.items() if k != "env"}
    planned = sweep_plan.plan({**config, "grid": {"env": ["Pendulum-v1", "gymnasium:Pendulum-v1"]}}, seeds=1)
    assert [run.name for run in planned] == ["env=Pendulum-v1__seed0", "env=gymnasium-Pendulum-v1__seed0"]


@pytest.mark.parametrize("config, seeds, message", [
    ({"gamma": "x"}, None, "gamma must be of type float, got 'x'"),
    ({"estimator": ["jd", "sf"]}, None, "list them in [grid]"),
    ({"learn_sigma": "yes"}, None, "learn_sigma must be of type bool"),
    ({"batch_size": 32.0}, None, "batch_size must be of type int, got 32.0"),
    ({"max_grad_norm": "x"}, None, "max_grad_norm must be of type float or None, got 'x'"),
    ({"bogus": 1}, None, "unknown setting(s) ['bogus']"),
    ({"grid": {"bogus": [1]}}, None, "grid point bogus=1: unknown setting(s) ['bogus']"),
    ({"grid": {"gamma": [0.9, 1.5]}}, None, "grid point gamma=1.5: gamma must lie in (0.0, 1.0), got 1.5"),
    ({"grid": {"policy": ["linear", "cnn"]}}, None, "grid point policy='cnn'"),
    ({"grid": {"lr": []}}, None, "[grid] lr must be a non-empty list"),
    ({"grid": {"lr": 0.1}}, None, "[grid] lr must be a non-empty list"),
    ({"grid": [1, 2]}, None, "[grid] must be a table"),
    ({"lr": 0.1, "grid": {"lr": [0.2]}}, None, "setting lr is given both alone and in [grid]"),
    ({"grid": {"lr": [1, 0.1, 1.0]}}, None, "[grid] lr lists a value twice: [1, 0.1, 1.0]"),
    ({"grid": {"baseline": ["none", "rollout", "none"]}}, None, "[grid] baseline lists a value twice"),
    ({"seed": 1}, 2, "the config gives a seed and --seeds is given too"),
    ({"grid": {"seed": [1, 2]}}, 2, "the config gives a seed and --seeds is given too"),
    ({"seed": -1}, None, "seed must be an int in [0, 4294967295], got -1"),
    ({}, 0, "seeds must be an int in [1, inf], got 0"),
])
def test_bad_configs_are_refused_before_anything_runs(config, seeds, message):
    with pytest.raises(ValueError) as error:
        sweep_plan.plan(config, seeds)
    assert message in str(error.value)


def test_load_config_reads_toml_and_names_a_bad_file(tmp_path):
    good = tmp_path / "sweep.toml"
    good.write_text('env = "Pendulum-v1"\nbaseline = "none"\n\n[grid]\nlr = [0.05, 0.1]\n')
    assert sweep_plan.load_config(good) == {"env": "Pendulum-v1", "baseline": "none",
                                            "grid": {"lr": [0.05, 0.1]}}
    bad = tmp_path / "bad.toml"
    bad.write_text("lr = [0.1,\n")
    with pytest.raises(ValueError, match="bad.toml cannot be read as TOML"):
        sweep_plan.load_config(bad)
    with pytest.raises(ValueError, match="missing.toml cannot be read"):
        sweep_plan.load_config(tmp_path / "missing.toml")


@pytest.mark.parametrize("kwargs, message", [
    ({"backend": "slurm"}, "backend must be one of 'local', 'ray', got 'slurm'"),
    ({"backend": "local", "address": "auto"}, "address 'auto' is for the ray backend"),
    ({"backend": "ray", "workers": 2}, "workers 2 is for the local backend"),
    ({"workers": 0}, "workers must be an int in [1, inf], got 0"),
])
def test_bad_arguments_are_refused_before_anything_runs(tmp_path, kwargs, message):
    with pytest.raises(ValueError) as error:
        sweep.run_sweep(TINY, tmp_path / "out", seeds=1, **kwargs)
    assert message in str(error.value)
    assert not (tmp_path / "out").exists()


def test_a_folder_holding_files_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="already holds other files"):
        sweep.run_sweep(TINY, tmp_path, seeds=1)


def _metrics_without_wall_time(out: Path, name: str) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "wall_seconds"}
            for row in read_table(out / "runs" / name / runs.METRICS_FILE)]


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweeps") / "local"
    lines = []
    # One worker compiles the train step once for both seeds (and fills the cache for Ray's
    # workers): on two busy cores that is faster than two workers compiling side by side.
    result = sweep.run_sweep(TINY, out, seeds=2, workers=1, progress=lines.append)
    return out, result, lines


def test_local_sweep_collects_every_run_and_the_summaries(local_sweep):
    out, result, lines = local_sweep
    assert sorted(p.name for p in out.iterdir()) == sorted(sweep.OUTPUT_FILES)
    for name in ("seed0", "seed1"):
        assert sorted(p.name for p in (out / "runs" / name).iterdir()) == sorted(sweep.RUN_FILES)
        config = runs.open_run(out / "runs" / name)
        assert config == {**config, **TINY, "seed": int(name[-1])}
    assert len(lines) == 2 and all(line.startswith(("[1/2] seed", "[2/2] seed")) for line in lines)
    assert json.loads((out / "sweep.json").read_text()) == result
    assert result["seeds"] == [0, 1] and result["backend"] == "local" and result["config"] == TINY
    summary = read_table(out / "summary.csv")
    assert [row["run"] for row in summary] == ["seed0", "seed1"]
    for row, run in zip(summary, result["runs"]):
        assert row == {"run": run["name"], "seed": run["seed"], **run["final"]}
        assert run["final"] == read_table(out / "runs" / run["name"] / runs.METRICS_FILE)[-1]
        assert run["final"]["env_steps"] >= TINY["env_steps"]
    assert result["runs"][0]["final"] != result["runs"][1]["final"]  # the seeds differ
    assert (out / "curves.png").read_bytes().startswith(b"\x89PNG")


# ray.init starts Ray's processes through subprocess (fork, then exec), which JAX's warning
# about fork in a multithreaded process cannot tell from a bare fork.
@pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")
def test_ray_sweep_gives_the_local_metrics_for_the_same_seeds(local_sweep, tmp_path):
    pytest.importorskip("ray")
    local_out, local_result, _ = local_sweep
    out = tmp_path / "ray"
    # "local": a Ray instance of our own, even if another is running on this machine.
    result = sweep.run_sweep(TINY, out, seeds=2, backend="ray", address="local")
    assert result["backend"] == "ray"
    for name in ("seed0", "seed1"):
        np.testing.assert_equal(_metrics_without_wall_time(out, name),
                                _metrics_without_wall_time(local_out, name))  # nan == nan here
        assert runs.open_run(out / "runs" / name) == runs.open_run(local_out / "runs" / name)
    assert (out / "curves.png").is_file() and (out / "summary.csv").is_file()


def fail_seed_one(setups: list[dict]) -> list[dict[str, bytes]]:
    """A worker that crashes on a grid point whose seeds include seed 1.

    The spawned processes import it from this module by name.
    """
    if any(setup["seed"] == 1 for setup in setups):
        raise FloatingPointError("simulator diverged")
    return _fake_files(setups)


def _fake_files(setups: list[dict]) -> list[dict[str, bytes]]:
    metrics = ",".join(METRIC_FIELDS) + "\n0,0,0.1,-1.0,-2.0,nan,nan,nan\n"
    return [{runs.CONFIG_FILE: json.dumps(setup).encode(), runs.METRICS_FILE: metrics.encode(),
             runs.CHECKPOINT_FILE: b""} for setup in setups]


def fail_large_steps(setups: list[dict]) -> list[dict[str, bytes]]:
    """A worker that crashes on the grid point with lr 0.2 (spawned processes import it)."""
    if setups[0]["lr"] == 0.2:
        time.sleep(1.0)  # after the other point has finished
        raise FloatingPointError("simulator diverged")
    return _fake_files(setups)


def test_a_failing_run_leaves_no_output_and_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(sweep, "run_in_worker", fail_seed_one)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match=r"run seed0, seed1 failed: FloatingPointError: simulator"):
        sweep.run_sweep(TINY, out, seeds=2, workers=1)
    assert list(tmp_path.iterdir()) == []  # neither out nor its staging folder


KILLED_SWEEP = """env = "Pendulum-v1"
policy = "linear"
batch_size = 16
env_steps = 1500
eval_every = 1
eval_episodes = 2

[grid]
lr = [0.05, 0.1, 0.2]
"""


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not count)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def _descendants(pid: int) -> set[int]:
    """The processes below ``pid``, from /proc (Linux)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _folder_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def _summary_without_wall_time(out: Path) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "wall_seconds"}
            for row in read_table(out / "summary.csv")]


def _weakpg_sweep(config: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "weakpg", "sweep", str(config), "--workers", "2",
                             "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def test_a_sweep_killed_at_random_moments_resumes_to_the_uninterrupted_result(tmp_path):
    config = tmp_path / "sweep.toml"
    config.write_text(KILLED_SWEEP)
    whole = _weakpg_sweep(config, tmp_path / "whole")
    assert whole.wait(timeout=600) == 0, whole.stderr.read()
    out, kept, rng = tmp_path / "cut", {}, np.random.default_rng(0)
    for delay in rng.uniform(3.0, 12.0, size=3):
        proc = _weakpg_sweep(config, out)
        deadline = time.time() + delay
        workers: set[int] = set()
        while time.time() < deadline and proc.poll() is None:
            workers |= _descendants(proc.pid)
            time.sleep(0.1)
        proc.kill()
        proc.wait()
        gone = time.time() + 20
        while any(map(_alive, workers)) and time.time() < gone:
            time.sleep(0.1)
        assert not any(map(_alive, workers)), "a worker outlived its killed driver"
        for name, files in kept.items():  # finished runs are kept byte for byte
            assert _folder_bytes(out / "runs" / name) == files
        kept.update({d.name: _folder_bytes(d) for d in (out / "runs").glob("lr=*")} if out.exists() else {})
    resumed = _weakpg_sweep(config, out)
    assert resumed.wait(timeout=600) == 0, resumed.stderr.read()
    for name, files in kept.items():
        assert _folder_bytes(out / "runs" / name) == files
    assert _summary_without_wall_time(out) == _summary_without_wall_time(tmp_path / "whole")
    assert sorted(p.name for p in out.iterdir()) == sorted(sweep.OUTPUT_FILES)
    assert not list(tmp_path.rglob("*.partial")) and not list(tmp_path.rglob(".*.tmp"))


def test_a_failed_sweep_keeps_its_finished_runs_and_refuses_another_sweep(tmp_path, monkeypatch):
    monkeypatch.setattr(sweep, "run_in_worker", fail_large_steps)
    out, grid = tmp_path / "out", {"grid": {"lr": [0.1, 0.2]}}
    with pytest.raises(RuntimeError, match="run lr=0.2__seed0 failed"):
        sweep.run_sweep({**TINY, **grid}, out, workers=2)
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["lr=0.1__seed0"]  # the finished run is kept
    with pytest.raises(ValueError, match="holds another sweep"):
        sweep.run_sweep({**TINY, "gamma": 0.5, **grid}, out, workers=1)
    with pytest.raises(ValueError, match="holds another sweep"):
        sweep.run_sweep({**TINY, **grid}, out, seeds=2)


def die_once(setups: list[dict]) -> list[dict[str, bytes]]:
    """A Ray worker whose process is killed on its first task of the grid point lr=0.2.

    The marker file (``WEAKPG_TEST_MARKER``) records the death; the retried task succeeds.
    """
    marker = Path(os.environ["WEAKPG_TEST_MARKER"])
    if setups[0]["lr"] == 0.2 and not marker.exists():
        marker.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)  # a lost worker, mid-run
    return _fake_files(setups)


@pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")
def test_a_lost_ray_worker_is_retried_without_losing_or_duplicating_a_run(tmp_path, monkeypatch):
    ray = pytest.importorskip("ray")
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import tests
    monkeypatch.setenv("WEAKPG_TEST_MARKER", str(tmp_path / "died"))
    monkeypatch.setattr(sweep, "run_in_worker", die_once)
    lines = []
    result = sweep.run_sweep({**TINY, "grid": {"lr": [0.1, 0.2]}}, tmp_path / "out", backend="ray",
                             address="local", progress=lines.append)
    assert (tmp_path / "died").is_file()  # a worker did die
    names = ["lr=0.1__seed0", "lr=0.2__seed0"]
    assert [run["name"] for run in result["runs"]] == names and len(lines) == 2
    assert sorted(p.name for p in (tmp_path / "out" / "runs").iterdir()) == names


def test_sigterm_of_a_sweep_kills_its_workers_and_leaves_nothing_when_no_run_finished(tmp_path):
    config = tmp_path / "sweep.toml"
    config.write_text(KILLED_SWEEP.replace("env_steps = 1500", "env_steps = 2000000"))
    proc = _weakpg_sweep(config, tmp_path / "out")
    deadline, workers = time.time() + 120, set()
    while len(workers) < 2 and time.time() < deadline:  # both workers started
        workers = {pid for pid in _descendants(proc.pid)
                   if "spawn" in Path(f"/proc/{pid}/cmdline").read_text()}
        time.sleep(0.1)
    time.sleep(2.0)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 2
    errors = proc.stderr.read().strip().splitlines()
    assert errors[-1].startswith("error: interrupted by SIGTERM")
    assert not any("Traceback" in line for line in errors)
    gone = time.time() + 20
    while any(map(_alive, workers)) and time.time() < gone:
        time.sleep(0.1)
    assert workers and not any(map(_alive, workers))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep.toml"]
