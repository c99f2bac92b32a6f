"""weakpg evaluate: the numbers of a plain gymnasium loop over agent.act, the same every time; errors."""

import json
import shutil

import gymnasium
import jax
import numpy as np
import pytest
from conftest import fails_cleanly
from typer.testing import CliRunner

import weakpg
from weakpg import envs
from weakpg._src import runs
from weakpg._src.app import episodes
from weakpg._src.app.cli import app
from weakpg._src.app.evaluate_command import EVALUATION_FILE

runner = CliRunner()


def plain_gymnasium_returns(agent, env_id, seeds, stochastic=False):
    """The reference: a gymnasium loop over agent.act, episode i reset with seed seeds[i]."""
    env = gymnasium.make(env_id)
    returns = []
    for seed in seeds:
        obs, _ = env.reset(seed=int(seed))
        total, t, done = 0.0, 0, False
        while not done:
            key = jax.random.fold_in(jax.random.key(int(seed)), t) if stochastic else None
            obs, reward, terminated, truncated, _ = env.step(agent.act(obs, key))
            total, t, done = total + float(reward), t + 1, terminated or truncated
        returns.append(total)
    return returns


def _evaluate(run, *args):
    result = runner.invoke(app, ["evaluate", str(run), *args])
    assert result.exit_code == 0, result.output
    return json.loads((run / EVALUATION_FILE).read_text()), result.output


@pytest.mark.parametrize("env_id, policy, stochastic", [
    ("Pendulum-v1", "linear-rbf", False), ("Pendulum-v1", "mlp", True), ("CartPole-v1", "linear", False),
    ("gymnasium:Pendulum-v1", "linear", False)])
def test_evaluate_gives_the_numbers_of_a_plain_gymnasium_loop(trained_run, tmp_path, env_id, policy,
                                                              stochastic):
    run = tmp_path / "run"
    shutil.copytree(trained_run(env_id, policy), run)
    flags = ["--episodes", "4", "--seed", "7"] + (["--stochastic"] if stochastic else [])
    record, output = _evaluate(run, *flags)
    gym_id = env_id.removeprefix("gymnasium:")
    expected = plain_gymnasium_returns(weakpg.load(run), gym_id, range(7, 11), stochastic)
    assert record["returns"] == expected
    assert record["mean"] == pytest.approx(np.mean(expected), rel=1e-12)
    assert record["stderr"] == pytest.approx(np.std(expected, ddof=1) / 2, rel=1e-12)
    limit = gymnasium.spec(gym_id).max_episode_steps
    assert record["max_episode_steps"] == limit and all(0 < n <= limit for n in record["lengths"])
    assert {k: record[k] for k in ("env", "episodes", "seeds", "stochastic", "iteration")} == {
        "env": f"gymnasium:{gym_id}", "episodes": 4, "seeds": [7, 10], "stochastic": stochastic,
        "iteration": 2}
    assert record["checkpoint"] == str(run / runs.CHECKPOINT_FILE)
    assert f"return {np.mean(expected):.1f} ± " in output and "over 4 episodes" in output
    first = (run / EVALUATION_FILE).read_bytes()
    _evaluate(run, *flags)
    assert (run / EVALUATION_FILE).read_bytes() == first  # the same command, the same file


def test_a_jax_env_id_runs_the_jax_environment_s_own_episodes(trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run("Pendulum-v1", "linear"), run)
    record, _ = _evaluate(run, "--episodes", "3", "--env", "Pendulum-v1")
    agent = weakpg.load(run)
    returns, lengths = episodes.jax_episodes(agent, envs.make("Pendulum-v1"), np.arange(3))
    assert record["env"] == "Pendulum-v1" and record["returns"] == returns.tolist()
    assert record["lengths"] == [200, 200, 200]


def test_one_episode_has_no_standard_error_and_a_named_checkpoint_is_recorded(trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run("Pendulum-v1", "linear"), run)
    kept = tmp_path / "kept.npz"
    shutil.copy(run / runs.CHECKPOINT_FILE, kept)
    record, output = _evaluate(run, "--episodes", "1", "--checkpoint", str(kept))
    assert record["stderr"] is None and record["checkpoint"] == str(kept) and " ± " not in output


def test_evaluate_failures_are_one_line_and_write_nothing(trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run("Pendulum-v1", "linear"), run)
    fails_cleanly(["evaluate", str(tmp_path / "missing")], tmp_path, "is not a weakpg run folder")
    fails_cleanly(["evaluate", str(run), "--episodes", "0"], tmp_path,
                  "episodes must be an int in [1, inf], got 0")
    fails_cleanly(["evaluate", str(run), "--env", "NoSuchEnv-v0"], tmp_path, "got 'NoSuchEnv-v0'")
    fails_cleanly(["evaluate", str(run), "--env", "gymnasium:NoSuchEnv-v0"], tmp_path,
                  "unknown gymnasium environment id 'NoSuchEnv-v0'")
    fails_cleanly(["evaluate", str(run), "--env", "gymnasium:CartPole-v1"], tmp_path,
                  "the policy was trained on (3,)")
    fails_cleanly(["evaluate", str(run), "--seed", str(2**32 - 2), "--episodes", "5"], tmp_path,
                  "seed must be")
    (run / runs.CHECKPOINT_FILE).unlink()
    fails_cleanly(["evaluate", str(run)], tmp_path, "the run stopped before its first checkpoint")
