"""The command line's failure behaviour: one line, exit status 2, nothing new left on disk.

Each case is an input a user may give (a bad setting, a damaged run folder, a folder that
cannot be written, a signal). The snapshot taken before and after covers every file,
hidden ones included.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import fails_cleanly as _fails_cleanly
from conftest import read_table
from conftest import snapshot as _snapshot
from typer.testing import CliRunner

from weakpg._src import runs
from weakpg._src.app.cli import app

runner = CliRunner()
TINY = ["--env-steps", "2000", "--batch-size", "16", "--eval-every", "1", "--eval-episodes", "2",
        "--policy", "linear"]
UNWRITABLE = Path("/proc/weakpg-test")  # /proc refuses new files, even to root


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    result = runner.invoke(app, ["train", *TINY, "--out", str(out)])
    assert result.exit_code == 0, result.output
    (run,) = out.iterdir()
    return run


@pytest.fixture
def damaged(finished_run, tmp_path) -> Path:
    """A copy of the finished run to damage."""
    return Path(shutil.copytree(finished_run, tmp_path / "run"))


@pytest.mark.parametrize("args, message", [
    (["--estimator", "jd", "--baseline", "value"], "baseline='value' applies to estimator='sf' only"),
    (["--estimator", "sf", "--baseline", "value", "--batch-size", "2"], "needs batch_size >= 4"),
    (["--seed", "1180591620717411303424"], "seed must be an int in [0, 4294967295]"),
    (["--batch-size", "9999999999999999999"], "batch_size must be an int in [1, 1048576]"),
    (["--seed", "-1"], "seed must be an int in [0, 4294967295], got -1"),
    (["--env", "CartPole-v1", "--sigma", "0.5"], "sigma is for Gaussian policies"),
    (["--env", "CartPole-v1", "--learn-sigma"], "learn_sigma is for Gaussian policies"),
    (["--seed", "4294967295", "--seeds", "2"], "seed + seeds - 1 must be an int in [0, 4294967295]"),
    (["--seeds", "0"], "seeds must be an int in [1, inf], got 0"),
])
def test_bad_settings_write_nothing(tmp_path, args, message):
    _fails_cleanly(["train", *args, "--out", str(tmp_path / "runs")], tmp_path, message)


def test_none_may_be_spelled_as_python_does():
    from weakpg._src.app import settings

    assert settings.from_dict({"baseline": "None", "estimator": "sf"}).train.baseline is None


def _with_header(run_dir: Path, change) -> None:
    """Rewrite the run's checkpoint with ``change(header)`` as its JSON header."""
    path = run_dir / runs.CHECKPOINT_FILE
    with np.load(path) as data:
        arrays = {name: data[name] for name in data.files}
    header = change(json.loads(bytes(arrays["__header__"]).decode()))
    arrays["__header__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "checkpoint.npz").write_bytes((d / "checkpoint.npz").read_bytes()[:100]),
     "is not a weakpg checkpoint"),
    (lambda d: _with_header(d, lambda header: [header]), "cannot be read: its header is not a JSON object"),
    (lambda d: _with_header(d, lambda header: {**header, "seeds": 5}),
     "cannot be read: its seeds 5 are not a list"),
    (lambda d: (d / "checkpoint.npz").write_bytes(np.random.default_rng(0).bytes(500)),
     "is not a weakpg checkpoint"),
    (lambda d: (d / "config.json").write_text("[]"), "must hold a JSON object of settings, got []"),
    (lambda d: (d / "config.json").write_text("{not json"), "is not valid JSON"),
    (lambda d: (d / "config.json").write_text(json.dumps(
        {k: v for k, v in json.loads((d / "config.json").read_text()).items() if k != "env"})),
     "the settings ['env'] are missing"),
    (lambda d: (d / "config.json").write_text(json.dumps(
        {**json.loads((d / "config.json").read_text()), "gamma": 7})), "gamma must lie in (0.0, 1.0), got 7"),
    (lambda d: (d / "config.json").write_text(json.dumps({"method": "PG-JD", "setup": {}, "seed": 0})),
     "is a run of weakpg reproduce"),
    (lambda d: (d / "metrics.csv").write_text(""), "is empty"),
    (lambda d: (d / "metrics.csv").write_text((d / "metrics.csv").read_text() + "garbage,,x\n"),
     "has 3 cells, expected 8"),
    (lambda d: (d / "metrics.csv").write_text("a,b\n1,2\n"), "has the columns ['a', 'b']"),
    (lambda d: (d / "metrics.csv").unlink(), "cannot be read as a metrics table"),
    (lambda d: (d / "config.json").unlink(), "is not a weakpg run folder"),
])
def test_a_damaged_run_folder_is_refused_by_resume(damaged, damage, message):
    damage(damaged)
    _fails_cleanly(["train", "--resume", str(damaged)], damaged.parent, message)


def test_a_run_resumed_with_a_new_budget_records_it_only_once_its_folder_is_read(damaged):
    # A checkpoint of another state (another weakpg's, say) passes the checks made before
    # the programs are built; the new budget must not reach config.json all the same.
    _with_header(damaged, lambda header: {**header, "leaf_names": header["leaf_names"][:-1]})
    _fails_cleanly(["train", "--resume", str(damaged), "--env-steps", "4000"], damaged.parent,
                   "do not match the run's configuration")


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "metrics.csv").write_text((d / "metrics.csv").read_text() + "garbage,,x\n"),
     "has 3 cells, expected 8"),
    (lambda d: (d / "metrics.csv").write_text("a,b\n1,2\n"), "has the columns ['a', 'b']"),
    (lambda d: (d / "metrics.csv").write_text(""), "is empty"),
    (lambda d: (d / "metrics.csv").write_text((d / "metrics.csv").read_text().replace(
        "\n1,", "\n1,2,3,nan,nan,nan,nan,nan\n1,", 1)), "holds a non-finite env_steps or episode_return"),
])
def test_plot_refuses_damaged_metrics(damaged, damage, message):
    damage(damaged)
    out = damaged.parent / "curves.png"
    _fails_cleanly(["plot", str(damaged), "--out", str(out)], damaged.parent, message)


@pytest.mark.parametrize("name, message", [
    ("curves.jpg", "must be a .png file"),
    ("missing/curves.png", "its folder"),
])
def test_plot_refuses_a_figure_it_cannot_write(finished_run, tmp_path, name, message):
    _fails_cleanly(["plot", str(finished_run), "--out", str(tmp_path / name)], tmp_path, message)


@pytest.mark.parametrize("flags, message", [
    (["--gamma", "0.5"], "--gamma 0.5 conflicts with the run's gamma 0.95"),
    (["--estimator", "sf"], "--estimator sf conflicts with the run's estimator jd"),
    (["--out", "elsewhere"], "--out cannot be given with --resume"),
    (["--seeds", "2"], "--seeds cannot be given with --resume"),
])
def test_resume_refuses_flags_that_change_the_run(damaged, flags, message):
    _fails_cleanly(["train", "--resume", str(damaged), *flags], damaged.parent, message)


def test_resume_refuses_part_of_a_multi_seed_run(tmp_path):
    result = runner.invoke(app, ["train", *TINY, "--seeds", "2", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    first, _ = sorted(tmp_path.iterdir())
    _fails_cleanly(["train", "--resume", str(first), "--env-steps", "4000"], tmp_path,
                   "was trained in one program with seeds [0, 1], which alone continues it exactly: "
                   "resume it with all its seeds' folders, in their order, not with seeds [0]")


def test_resume_accepts_flags_equal_to_the_runs_settings(damaged):
    before = _snapshot(damaged.parent)
    result = runner.invoke(app, ["train", "--resume", str(damaged), "--baseline", "None", "--gamma", "0.95"])
    assert result.exit_code == 0, result.output  # the budget is spent: nothing to train
    assert _snapshot(damaged.parent) == before


def test_resume_takes_a_larger_budget_and_records_it(damaged):
    rows = read_table(damaged / runs.METRICS_FILE)
    result = runner.invoke(app, ["train", "--resume", str(damaged), "--gamma", "0.95", "--iterations",
                                 str(rows[-1]["iteration"] + 2)])
    assert result.exit_code == 0, result.output
    assert runs.open_run(damaged)["iterations"] == rows[-1]["iteration"] + 2
    assert runs.open_run(damaged)["env_steps"] is None  # the budget given replaces the run's
    assert read_table(damaged / runs.METRICS_FILE)[-1]["iteration"] == rows[-1]["iteration"] + 2


def test_resume_refuses_a_folder_it_cannot_write_before_training(damaged, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "TemporaryFile", refuse)  # what check_writable tries
    _fails_cleanly(["train", "--resume", str(damaged)], damaged.parent,
                   "is not writable (Permission denied)")


@pytest.mark.parametrize("command", [
    ["reproduce", "pendulum", "--quick", "--env-steps", "1000"],
    ["study", "unbiased", "--quick"],
    ["train", *TINY],
])
@pytest.mark.parametrize("where", ["under a file", "unwritable"])
def test_an_output_folder_that_cannot_be_written_is_refused_first(tmp_path, command, where):
    (tmp_path / "file").write_text("x")
    out, message = ((tmp_path / "file" / "out", "file is a file, not a folder") if where == "under a file"
                    else (UNWRITABLE / "out", "is not writable"))
    _fails_cleanly([*command, "--out", str(out)], tmp_path, message)


def test_a_sweep_into_a_folder_that_cannot_be_written_is_refused_first(tmp_path):
    (tmp_path / "sweep.toml").write_text('env_steps = 2000\nbatch_size = 16\npolicy = "linear"\n')
    (tmp_path / "file").write_text("x")
    for out, message in ((tmp_path / "file" / "out", "is a file, not a folder"),
                         (UNWRITABLE, "is not writable")):
        _fails_cleanly(["sweep", str(tmp_path / "sweep.toml"), "--out", str(out)], tmp_path, message)


def test_demo_takes_its_documented_minimum_and_refuses_a_huge_seed(tmp_path):
    result = runner.invoke(app, ["demo", "--samples", "2"])
    assert result.exit_code == 0, result.output
    _fails_cleanly(["demo", "--seed", "99999999999999999999"], tmp_path,
                   "seed must be an int in [0, 4294967295]")


def test_stale_staging_folders_of_dead_processes_are_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".out.{dead.pid}-0a1b2c3d.partial"
    live = tmp_path / f".out.{os.getpid()}-0a1b2c3d.partial"
    other = tmp_path / f".other.{dead.pid}-0a1b2c3d.partial"
    for folder in (stale, live, other):
        folder.mkdir()
    runs.remove_stale_staging(tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, other.name])


def _weakpg(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "weakpg", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for(condition, proc: subprocess.Popen, seconds: float = 300) -> None:
    deadline = time.time() + seconds
    while not condition():
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.05)


def _stopped_by_sigterm(proc: subprocess.Popen) -> str:
    """The error line of a command stopped by SIGTERM (after its progress lines, if any)."""
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and err.strip().endswith(errors[0]) and "Traceback" not in err, err
    assert errors[0].startswith("error: interrupted by SIGTERM"), err
    return errors[0]


def test_sigterm_of_reproduce_leaves_nothing(tmp_path):
    proc = _weakpg("reproduce", "pendulum", "--quick", "--env-steps", "200000",
                   "--out", str(tmp_path / "out"))
    _wait_for(lambda: any(tmp_path.glob(".out.*.partial/runs/*/metrics.csv")), proc)
    _stopped_by_sigterm(proc)
    assert list(tmp_path.iterdir()) == []


def test_sigterm_of_train_keeps_a_resumable_run_and_no_temporaries(tmp_path):
    proc = _weakpg("train", "--env-steps", "2000000", "--batch-size", "64", "--policy", "linear",
                   "--out", str(tmp_path))
    _wait_for(lambda: any(tmp_path.glob("*/checkpoint.npz")), proc)
    line = _stopped_by_sigterm(proc)
    (run,) = tmp_path.iterdir()
    assert f"continue with weakpg train --resume {run}" in line
    assert sorted(p.name for p in run.iterdir()) == sorted(
        [runs.CHECKPOINT_FILE, runs.CONFIG_FILE, runs.METRICS_FILE])


@pytest.mark.parametrize("error", [KeyboardInterrupt("SIGTERM"), OSError(28, "No space left on device")])
def test_a_train_that_fails_before_its_first_checkpoint_leaves_no_run_folder(tmp_path, monkeypatch, error):
    from weakpg._src import driver

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(driver, "train_seeds", fail)
    message = "no run folder was kept" if isinstance(error, KeyboardInterrupt) else "No space left on device"
    _fails_cleanly(["train", *TINY, "--seeds", "2", "--out", str(tmp_path / "runs")], tmp_path, message)
