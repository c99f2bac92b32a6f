"""TensorBoard event files: what tensorboard's own reader finds equals metrics.csv, resumes included."""

from __future__ import annotations

import math
import sys

import pytest
from conftest import EVENT_TAGS, assert_events_mirror_metrics, assert_reproduction_written, read_events
from typer.testing import CliRunner

from weakpg._src import driver, runs
from weakpg._src.app import sweep
from weakpg._src.app import tensorboard as event_files
from weakpg._src.app.cli import app
from weakpg._src.driver import METRIC_FIELDS

runner = CliRunner()
TRAIN = ["train", "--batch-size", "32", "--eval-every", "1", "--policy", "linear", "--eval-episodes", "2"]
MISSING = "error: --tensorboard needs tensorboardX: pip install 'weakpg[tensorboard]'"


def test_the_scalars_of_a_row_are_its_finite_cells_and_the_rate_since_the_last():
    rows = [{"iteration": 0, "env_steps": 0, "wall_seconds": 0.5, "discounted_return": -3.0,
             "episode_return": -10.0, "grad_norm": math.nan, "grad_stderr_norm": math.nan,
             "step_size": math.nan},
            {"iteration": 1, "env_steps": 300, "wall_seconds": 2.5, "discounted_return": -2.0,
             "episode_return": -8.0, "grad_norm": 4.0, "grad_stderr_norm": math.inf, "step_size": 0.1},
            {"iteration": 2, "env_steps": 600, "wall_seconds": 2.5, "discounted_return": -1.0,
             "episode_return": -6.0, "grad_norm": 3.0, "grad_stderr_norm": 1.0, "step_size": 0.1}]
    assert event_files.scalars(rows, 0) == {"iteration": 0.0, "wall_seconds": 0.5, "discounted_return": -3.0,
                                            "episode_return": -10.0}
    assert event_files.scalars(rows, 1) == {"iteration": 1.0, "wall_seconds": 2.5, "discounted_return": -2.0,
                                            "episode_return": -8.0, "grad_norm": 4.0, "step_size": 0.1,
                                            "env_steps_per_second": 150.0}
    assert "env_steps_per_second" not in event_files.scalars(rows, 2)  # no wall-clock between them
    assert set(event_files.TAGS) == EVENT_TAGS


def test_a_resumed_run_rebuilds_its_event_file_with_each_step_once(tmp_path):
    first = runner.invoke(app, [*TRAIN, "--iterations", "4", "--tensorboard", "--out", str(tmp_path)])
    assert first.exit_code == 0, first.output
    (run_dir,) = tmp_path.iterdir()
    (event_file,) = (run_dir / "tensorboard").iterdir()
    stale = run_dir / "tensorboard" / "events.out.tfevents.0000000001.stale"
    stale.write_bytes(event_file.read_bytes())  # a view out of date: it must go, not be added to
    resumed = runner.invoke(app, ["train", "--resume", str(run_dir), "--iterations", "8"])  # no flag: kept
    assert resumed.exit_code == 0, resumed.output
    assert not stale.exists()
    assert_events_mirror_metrics(run_dir)
    assert [s for s, _ in read_events(run_dir / "tensorboard")["iteration"]][-1] > 0
    assert len(runs.read_metrics(run_dir / runs.METRICS_FILE, METRIC_FIELDS)) == 9


def test_a_run_stopped_before_its_first_checkpoint_leaves_no_event_files(tmp_path, monkeypatch):
    def stopped(env, policy, config, *, run_dirs, on_rows, **kwargs):
        on_rows(0, [dict.fromkeys(METRIC_FIELDS, 0)])  # what a writer would see, had it been saved
        raise KeyboardInterrupt("SIGINT")

    monkeypatch.setattr(driver, "train_seeds", stopped)
    result = runner.invoke(app, [*TRAIN, "--env-steps", "2000", "--tensorboard", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "no run folder was kept" in result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", [
    [*TRAIN, "--env-steps", "2000"],
    ["reproduce", "cartpole", "--quick", "--seeds", "1", "--env-steps", "2000"],
])
def test_tensorboard_without_the_package_is_refused_before_anything_is_written(tmp_path, monkeypatch,
                                                                               command):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # import fails as if not installed
    result = runner.invoke(app, [*command, "--tensorboard", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and result.output.strip() == MISSING
    assert list(tmp_path.iterdir()) == []


def test_a_sweep_without_the_package_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    config = tmp_path / "sweep.toml"
    config.write_text('env = "Pendulum-v1"\nenv_steps = 2000\n')
    result = runner.invoke(app, ["sweep", str(config), "--tensorboard", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and result.output.strip() == MISSING
    assert [p.name for p in tmp_path.iterdir()] == ["sweep.toml"]


def test_reproduce_writes_event_files_for_each_method_and_seed(tmp_path):
    out = tmp_path / "repro"
    result = runner.invoke(app, ["reproduce", "cartpole", "--quick", "--seeds", "2", "--env-steps", "2000",
                                 "--tensorboard", "--out", str(out)])
    assert result.exit_code == 0, result.output
    run_dirs = sorted((out / "runs").iterdir())
    assert [d.name for d in run_dirs] == sorted(f"{m}__seed{s}" for m in ("pg-jd", "pg-sf", "pg-sf-rollout")
                                                for s in (0, 1))
    for run_dir in run_dirs:
        assert_events_mirror_metrics(run_dir)
    assert_reproduction_written(out, "cartpole", ("linear softmax policy on CartPole-v1",
                                                  "| Episode return (most likely action, 500 steps) |"))


def test_a_local_sweep_writes_event_files_per_run_and_adds_them_on_resume(tmp_path):
    config = {"env": "Pendulum-v1", "policy": "linear", "batch_size": 32, "env_steps": 2000, "eval_every": 1,
              "eval_episodes": 2, "grid": {"estimator": ["jd", "sf"]}}
    result = sweep.run_sweep(config, tmp_path / "sweep", tensorboard=True)
    names = [run["name"] for run in result["runs"]]
    assert names == ["estimator=jd__seed0", "estimator=sf__seed0"]
    for name in names:
        assert_events_mirror_metrics(tmp_path / "sweep" / "runs" / name)
    run_dir = tmp_path / "sweep" / "runs" / names[1]
    before = read_events(run_dir / "tensorboard")
    for path in (run_dir / "tensorboard").iterdir():
        path.unlink()
    (run_dir / "tensorboard").rmdir()
    sweep.run_sweep(config, tmp_path / "sweep", tensorboard=True)  # complete: nothing trained again
    assert_events_mirror_metrics(run_dir)
    assert read_events(run_dir / "tensorboard") == before
