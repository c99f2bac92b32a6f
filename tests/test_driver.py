"""The host driver: run folders, exact resume, several seeds in one program."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest
from conftest import (
    GAMMA,
    NanRewardAfter,
    metrics_without_wall_clock,
    programs_compiled,
    read_table,
    snapshot,
)

import weakpg
from weakpg._src import runs
from weakpg._src.checkpoints import storable
from weakpg._src.config import TrainConfig
from weakpg._src.driver import METRIC_FIELDS, precompile, train, train_seeds
from weakpg._src.errors import NonFiniteError
from weakpg._src.train import init_state

CONFIG = TrainConfig(estimator="jd", gamma=GAMMA, batch_size=64, lr=0.05, schedule_power=0.6,
                     iterations=60, env_steps=None, eval_every=3)


@pytest.fixture(scope="module")
def policy(lqr):
    return weakpg.LinearGaussian(lqr, sigma=0.5)


def _folders(tmp_path, name, n):
    dirs = [tmp_path / f"{name}{i}" for i in range(n)]
    for d in dirs:
        d.mkdir()
    return dirs


def test_resume_reproduces_an_uninterrupted_run(tmp_path, lqr, policy):
    (whole,), (cut,) = _folders(tmp_path, "whole", 1), _folders(tmp_path, "cut", 1)
    train(lqr, policy, CONFIG, run_dir=whole)
    train(lqr, policy, dataclasses.replace(CONFIG, iterations=21), run_dir=cut)
    assert read_table(cut / runs.METRICS_FILE)[-1]["iteration"] == 21
    train(lqr, policy, CONFIG, run_dir=cut, resume=True)
    assert metrics_without_wall_clock(cut / runs.METRICS_FILE) == metrics_without_wall_clock(
        whole / runs.METRICS_FILE)


def test_seeds_in_one_program_equal_their_single_seed_runs(lqr, policy):
    # Equal up to float rounding: batched, XLA may sum the batch's samples in another order
    # (on Pendulum the rows agree to the bit, tests/test_train.py).
    _, rows = train_seeds(lqr, policy, CONFIG, seeds=[4, 9])
    for seed, seed_rows in zip([4, 9], rows):
        _, single = train(lqr, policy, dataclasses.replace(CONFIG, seed=seed))
        assert [r["iteration"] for r in seed_rows] == [r["iteration"] for r in single]
        assert [r["env_steps"] for r in seed_rows] == [r["env_steps"] for r in single]
        for name in ("discounted_return", "episode_return", "grad_norm"):
            np.testing.assert_allclose([r[name] for r in seed_rows], [r[name] for r in single],
                                       rtol=1e-4, err_msg=name)
    assert rows[0][-1]["grad_norm"] != rows[1][-1]["grad_norm"]


def test_a_multi_seed_run_resumes_even_when_its_seeds_stopped_apart(tmp_path, lqr, policy):
    whole, early, late = (_folders(tmp_path, name, 2) for name in ("whole", "early", "late"))
    train_seeds(lqr, policy, CONFIG, seeds=[0, 1], run_dirs=whole)
    train_seeds(lqr, policy, dataclasses.replace(CONFIG, iterations=21), seeds=[0, 1], run_dirs=early)
    train_seeds(lqr, policy, dataclasses.replace(CONFIG, iterations=42), seeds=[0, 1], run_dirs=late)
    # A kill between the folders' writes leaves the seeds at different checkpoints.
    cut = [early[0], late[1]]
    train_seeds(lqr, policy, CONFIG, seeds=[0, 1], run_dirs=cut, resume=True)
    for w, c in zip(whole, cut):
        assert metrics_without_wall_clock(c / runs.METRICS_FILE) == metrics_without_wall_clock(
            w / runs.METRICS_FILE)


def test_a_run_resumes_only_with_the_seeds_of_the_program_that_trained_it(tmp_path, lqr, policy):
    pair, (single,) = _folders(tmp_path, "pair", 2), _folders(tmp_path, "single", 1)
    for seeds, dirs in (([0, 1], pair), ([1], [single])):  # each stopped after its first chunk
        train_seeds(lqr, policy, CONFIG, seeds=seeds, run_dirs=dirs, callback=lambda row: False)
    before = snapshot(tmp_path)
    for seeds, dirs, message in [
        ([0], pair[:1], r"pair0 was trained in one program with seeds \[0, 1\].*all its seeds' folders"),
        ([1, 0], pair[::-1], r"seeds \[0, 1\].*in their order, not with seeds \[1, 0\]"),
        ([0, 1], [pair[0], single], r"single0 was trained in one program with seeds \[1\].*resume it alone"),
    ]:
        with pytest.raises(ValueError, match=message):
            train_seeds(lqr, policy, CONFIG, seeds=seeds, run_dirs=dirs, resume=True)
    assert snapshot(tmp_path) == before  # refused before training
    train_seeds(lqr, policy, CONFIG, seeds=[0, 1], run_dirs=pair, resume=True)
    assert [read_table(d / runs.METRICS_FILE)[-1]["iteration"] for d in pair] == [60, 60]


def test_a_folder_killed_before_its_first_checkpoint_starts_again(tmp_path, lqr, policy):
    (whole,), (cut,) = _folders(tmp_path, "whole", 1), _folders(tmp_path, "cut", 1)
    train(lqr, policy, CONFIG, run_dir=whole)
    train(lqr, policy, CONFIG, iterations=3, run_dir=cut)
    (cut / runs.CHECKPOINT_FILE).unlink()  # the metrics were written, the checkpoint not yet
    train(lqr, policy, CONFIG, run_dir=cut, resume=True)
    assert metrics_without_wall_clock(cut / runs.METRICS_FILE) == metrics_without_wall_clock(
        whole / runs.METRICS_FILE)


def test_corrupt_checkpoint_is_refused(tmp_path, lqr, policy):
    train(lqr, policy, dataclasses.replace(CONFIG, iterations=2), run_dir=tmp_path)
    (tmp_path / runs.CHECKPOINT_FILE).write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot be read"):
        train(lqr, policy, CONFIG, run_dir=tmp_path, resume=True)


def test_callback_sees_every_row_and_can_stop_training(lqr, policy):
    seen = []
    _, rows = train(lqr, policy, CONFIG, callback=lambda r: seen.append(r["iteration"]) or r["iteration"] < 3)
    # Stopping takes effect at the end of the chunk (every row of it is kept).
    assert seen == [r["iteration"] for r in rows] and 3 in seen and rows[-1]["iteration"] < 60


def test_on_rows_sees_each_seeds_saved_rows_and_a_resumes_loaded_ones(tmp_path, lqr, policy):
    seen = []

    def on_rows(i, rows):  # what the seed's metrics.csv holds when it is called
        assert repr(rows) == repr(runs.read_metrics(dirs[i] / runs.METRICS_FILE, METRIC_FIELDS))  # nan too
        seen.append((i, [r["iteration"] for r in rows]))

    dirs = _folders(tmp_path, "run", 2)
    train_seeds(lqr, policy, dataclasses.replace(CONFIG, iterations=21), seeds=[0, 1], run_dirs=dirs,
                on_rows=on_rows)
    first = [0, 3, 6, 9, 12, 15, 18]  # a chunk is 20 iterations: 6 intervals of 3 after iteration 0
    assert seen == [(0, first), (1, first), (0, [*first, 21]), (1, [*first, 21])]
    seen.clear()
    train_seeds(lqr, policy, dataclasses.replace(CONFIG, iterations=24), seeds=[0, 1], run_dirs=dirs,
                resume=True, on_rows=on_rows)
    assert seen == [(0, [*first, 21]), (1, [*first, 21]), (0, [*first, 21, 24]), (1, [*first, 21, 24])]


def test_keyword_budgets_replace_the_configs(lqr, policy):
    _, rows = train(lqr, policy, CONFIG, iterations=4, eval_every=2)
    assert [r["iteration"] for r in rows] == [0, 2, 4]
    _, rows = train(lqr, policy, CONFIG, env_steps=500, eval_every=100)
    assert rows[-1]["env_steps"] >= 500 and rows[-1]["iteration"] < 60


@pytest.mark.parametrize("seeds", [[5], [5, 6]])
def test_precompile_leaves_a_run_nothing_to_compile(lqr, policy, seeds):
    config = dataclasses.replace(CONFIG, iterations=9, batch_size=48)  # programs of this test's own
    with programs_compiled() as compiled:
        precompile(lqr, policy, config, num_seeds=len(seeds))
        assert {"jit(init)", "jit(chunk)"} <= set(compiled)
        compiled.clear()
        _, rows = train_seeds(lqr, policy, dataclasses.replace(config, lr=0.01), seeds=seeds)
    assert "jit(chunk)" not in compiled and "jit(init)" not in compiled
    assert [[r["iteration"] for r in seed_rows] for seed_rows in rows] == [[0, 3, 6, 9]] * len(seeds)
    with pytest.raises(ValueError, match=r"num_seeds must be an int in \[1, inf\], got 0"):
        precompile(lqr, policy, config, num_seeds=0)


def test_bad_seed_lists_are_refused(lqr, policy):
    with pytest.raises(ValueError, match="seeds must hold at least one seed"):
        train_seeds(lqr, policy, CONFIG, seeds=[])
    with pytest.raises(ValueError, match=r"seed must be an int in \[0, 4294967295\], got -1"):
        train_seeds(lqr, policy, CONFIG, seeds=[-1])
    with pytest.raises(ValueError, match="resume=True needs the run folders"):
        train_seeds(lqr, policy, CONFIG, seeds=[0], resume=True)
    with pytest.raises(ValueError, match="env must be a weakpg Environment .*, got None"):
        train_seeds(None, policy, CONFIG, seeds=[0])
    with pytest.raises(ValueError, match="env must be a weakpg Environment .*, got None"):
        precompile(None, policy, CONFIG)


def test_settings_the_policy_refuses_leave_no_run_folder(tmp_path, lqr, policy):
    with pytest.raises(ValueError, match=r"coordinates must be an int in \[1, d\] = \[1, 1\]"):
        train(lqr, policy, dataclasses.replace(CONFIG, coordinates=2), run_dir=tmp_path / "runs" / "a")
    assert list(tmp_path.iterdir()) == []


def _files(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_a_nan_evaluation_stops_training_and_keeps_the_last_checkpoint(tmp_path, lqr, policy):
    env = NanRewardAfter(lqr, after=3)
    with pytest.raises(NonFiniteError, match="the evaluation's return became non-finite .* at iteration 0 "
                       "of seed 0; training stopped; no checkpoint was written") as caught:
        train(env, policy, CONFIG, episode_length=20, run_dir=tmp_path / "run")
    assert caught.value.what == "the evaluation's return" and caught.value.rows == []
    assert list((tmp_path / "run").iterdir()) == []


def test_an_overflowing_update_is_not_taken(tmp_path, lqr, policy):
    # A step of 1e38 makes the parameters inf at the first update whose gradient is not tiny.
    config = dataclasses.replace(CONFIG, lr=1e38, schedule_power=0.0, eval_every=1)
    with pytest.raises(NonFiniteError, match="the parameters after the update became non-finite") as caught:
        train(lqr, policy, config, run_dir=tmp_path)
    error = caught.value
    assert error.what == "the parameters after the update" and error.seed == 0
    assert int(error.state.iteration) == error.iteration == error.rows[-1]["iteration"]
    assert all(np.isfinite(leaf).all() for leaf in jax.tree.leaves(error.state.params))
    # The run folder holds the rows and the state up to the iteration that failed, all finite.
    assert [r["iteration"] for r in runs.read_metrics(tmp_path / runs.METRICS_FILE, METRIC_FIELDS)] == [
        r["iteration"] for r in error.rows]
    with pytest.raises(NonFiniteError, match=f"at iteration {error.iteration} of seed 0"):
        train(lqr, policy, config, run_dir=tmp_path, resume=True)  # the same fault, at once


def test_a_checkpoint_with_nan_parameters_is_refused(tmp_path, lqr, policy):
    train(lqr, policy, dataclasses.replace(CONFIG, iterations=3), run_dir=tmp_path)
    template = storable(init_state(policy, CONFIG))[0]
    state, header = runs.load_checkpoint(tmp_path / runs.CHECKPOINT_FILE, template)
    runs.save_checkpoint(tmp_path / runs.CHECKPOINT_FILE,
                         state._replace(params=jax.tree.map(lambda x: x * np.nan, state.params)), header)
    before = _files(tmp_path)
    with pytest.raises(ValueError, match=r"holds non-finite parameters \(params\['weights'\]\)"):
        train(lqr, policy, CONFIG, run_dir=tmp_path, resume=True)
    assert _files(tmp_path) == before


@pytest.mark.parametrize("damage, message", [
    (lambda p: p.write_text(""), "is empty: it holds no header and no rows"),
    (lambda p: p.write_text(p.read_text().splitlines()[0] + "\n"), "ends at no row at all, before its"),
    (lambda p: p.write_text(p.read_text() + "1,2,x\n"), "line 7 has 3 cells, expected 8"),
    (lambda p: p.write_text(p.read_text().replace("\n3,", "\nthree,", 1)), "holds something other than"),
    (lambda p: p.write_text("a,b\n1,2\n"), r"has the columns \['a', 'b'\], expected \['iteration'"),
])
def test_damaged_metrics_are_refused_and_left_as_they_are(tmp_path, lqr, policy, damage, message):
    train(lqr, policy, dataclasses.replace(CONFIG, iterations=12), run_dir=tmp_path)
    damage(tmp_path / runs.METRICS_FILE)
    before = _files(tmp_path)
    with pytest.raises(ValueError, match=message):
        train(lqr, policy, CONFIG, run_dir=tmp_path, resume=True)
    assert _files(tmp_path) == before


def test_resume_removes_the_temporaries_of_a_killed_write(tmp_path, lqr, policy):
    train(lqr, policy, dataclasses.replace(CONFIG, iterations=3), run_dir=tmp_path)
    (tmp_path / ".metrics.csv.k1ll3d.tmp").write_text("half a tab")
    (tmp_path / ".checkpoint.npz.k1ll3d.tmp").write_bytes(b"half")
    runs.remove_temporaries(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [runs.CHECKPOINT_FILE, runs.METRICS_FILE]
