"""The host driver: run folders, exact resume, several seeds in one program."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import GAMMA, metrics_without_wall_clock

import weakpg
from weakpg._src import runs
from weakpg._src.config import TrainConfig
from weakpg._src.driver import train, train_seeds

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
    assert runs.read_csv(cut / runs.METRICS_FILE)[-1]["iteration"] == 21
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


def test_keyword_budgets_replace_the_configs(lqr, policy):
    _, rows = train(lqr, policy, CONFIG, iterations=4, eval_every=2)
    assert [r["iteration"] for r in rows] == [0, 2, 4]
    _, rows = train(lqr, policy, CONFIG, env_steps=500, eval_every=100)
    assert rows[-1]["env_steps"] >= 500 and rows[-1]["iteration"] < 60


def test_bad_seed_lists_are_refused(lqr, policy):
    with pytest.raises(ValueError, match="seeds must hold at least one seed"):
        train_seeds(lqr, policy, CONFIG, seeds=[])
    with pytest.raises(ValueError, match=r"seed must be an int in \[0, 4294967295\], got -1"):
        train_seeds(lqr, policy, CONFIG, seeds=[-1])
    with pytest.raises(ValueError, match="resume=True needs the run folders"):
        train_seeds(lqr, policy, CONFIG, seeds=[0], resume=True)
