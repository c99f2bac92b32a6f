"""Run folders: atomic writes, staging, cleanup after failures, strict readers of every run file."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from weakpg._src import runs

FIELDS = ("iteration", "env_steps", "episode_return")


class Interrupted(Exception):
    pass


def test_atomic_write_replaces_the_file_or_leaves_it_as_it_was(tmp_path, monkeypatch):
    path = tmp_path / "f.txt"
    runs.atomic_write(path, b"one")
    assert path.read_bytes() == b"one"

    def broken_replace(src, dst):
        raise Interrupted

    monkeypatch.setattr(runs.os, "replace", broken_replace)
    with pytest.raises(Interrupted):
        runs.atomic_write(path, b"two")
    assert path.read_bytes() == b"one" and sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]


def test_remove_temporaries_deletes_what_a_killed_write_left(tmp_path):
    (tmp_path / ".metrics.csv.x1.tmp").write_text("half")
    (tmp_path / "metrics.csv").write_text("whole")
    runs.remove_temporaries(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.csv"]


def test_a_staged_folder_appears_whole_or_not_at_all(tmp_path):
    out = tmp_path / "out"
    with runs.staged_folder(out) as staging:
        (staging / "a").write_text("a")
        assert not out.exists()
    assert (out / "a").read_text() == "a" and sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    with pytest.raises(Interrupted), runs.staged_folder(tmp_path / "failed") as staging:
        (staging / "a").write_text("a")
        raise Interrupted
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    with pytest.raises(ValueError, match="already holds a previous result"):
        with runs.staged_folder(out, outputs=("a",)):
            pass


def test_a_staging_folder_of_a_dead_process_is_removed(tmp_path):
    stale = tmp_path / ".out.999999999-abcd1234.partial"
    stale.mkdir()
    runs.remove_stale_staging(tmp_path / "out")
    assert not stale.exists()


def test_new_run_folders_keep_only_those_with_a_checkpoint_after_a_failure(tmp_path):
    first, second = tmp_path / "sweep" / "a", tmp_path / "sweep" / "b"
    with pytest.raises(Interrupted), runs.new_run_folders([first, second]):
        (first / runs.CHECKPOINT_FILE).write_bytes(b"")
        raise Interrupted
    assert first.is_dir() and not second.exists()
    with pytest.raises(Interrupted), runs.new_run_folders([tmp_path / "new" / "deep" / "c"]):
        raise Interrupted
    assert not (tmp_path / "new").exists()  # the parents it made go too


@pytest.mark.parametrize("text, message", [
    ("", "is empty"),
    ("iteration,env_steps\n", "has the columns"),
    ("iteration,env_steps,episode_return\n1,2\n", "line 2 has 2 cells, expected 3"),
    ("iteration,env_steps,episode_return\n1,2,x\n", "line 2 holds something other than numbers"),
    ("iteration,env_steps,episode_return\n1.5,2,3\n", "line 2 holds something other than numbers"),
])
def test_read_metrics_refuses_anything_but_the_table_it_expects(tmp_path, text, message):
    path = tmp_path / runs.METRICS_FILE
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        runs.read_metrics(path, FIELDS)


def test_read_metrics_reads_what_write_csv_wrote(tmp_path):
    rows = [{"iteration": 0, "env_steps": 0, "episode_return": float("nan")},
            {"iteration": 5, "env_steps": 1234, "episode_return": -150.25}]
    runs.write_csv(tmp_path / "m.csv", rows)
    read = runs.read_metrics(tmp_path / "m.csv", FIELDS)
    assert read[1] == rows[1] and np.isnan(read[0]["episode_return"])
    assert type(read[1]["iteration"]) is int
    with pytest.raises(ValueError, match="cannot be read"):
        runs.read_metrics(tmp_path / "missing.csv", FIELDS)


def test_a_checkpoint_round_trips_and_refuses_another_structure(tmp_path):
    tree = {"params": {"weights": jnp.arange(6.0).reshape(2, 3)}, "step": jnp.int32(7)}
    path = tmp_path / runs.CHECKPOINT_FILE
    runs.save_checkpoint(path, tree, {"iteration": 7})
    loaded, header = runs.load_checkpoint(path, tree)
    np.testing.assert_array_equal(loaded["params"]["weights"], tree["params"]["weights"])
    assert int(loaded["step"]) == 7 and header["iteration"] == 7
    with pytest.raises(ValueError, match="do not match the run's configuration"):
        runs.load_checkpoint(path, {"params": {"bias": jnp.zeros(2)}, "step": jnp.int32(0)})
    with pytest.raises(ValueError, match=r"has shape \(2, 3\), expected \(3,\)"):
        runs.load_checkpoint(path, {"params": {"weights": jnp.zeros(3)}, "step": jnp.int32(0)})
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ValueError, match="is not a weakpg checkpoint"):
        runs.load_checkpoint(path, tree)


@pytest.mark.parametrize("text, message", [
    (None, "config.json is missing"), ("{not json", "is not valid JSON"), ("[1]", "must hold a JSON object"),
])
def test_open_run_refuses_folders_that_are_not_runs(tmp_path, text, message):
    if text is not None:
        (tmp_path / runs.CONFIG_FILE).write_text(text)
    with pytest.raises(ValueError, match=message):
        runs.open_run(tmp_path)


def test_check_writable_names_a_file_in_the_way(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        runs.check_writable(tmp_path / "file" / "run")
