"""weakpg.load: every policy kind and environment source, a named checkpoint, overrides, errors."""

import dataclasses
import json
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

import weakpg
from weakpg import envs
from weakpg._src import runs
from weakpg._src.app import settings
from weakpg._src.app.studies.learning_setups import METHODS, PENDULUM
from weakpg.policies import LinearGaussian, MLPGaussian, Softmax
from weakpg.train import TrainConfig, train

RUNS = {  # (env, policy, flags) -> the policy class and whether sigma is learned
    ("Pendulum-v1", "linear", ()): (LinearGaussian, False),
    ("Pendulum-v1", "linear-rbf", ()): (LinearGaussian, False),
    ("Pendulum-v1", "mlp", ()): (MLPGaussian, False),
    ("Pendulum-v1", "mlp", ("--learn-sigma", "--sigma", "0.5")): (MLPGaussian, True),
    ("CartPole-v1", "linear", ()): (Softmax, False),
    ("gymnasium:Pendulum-v1", "linear", ()): (LinearGaussian, False),
}


def _saved_params(path):
    """The parameter arrays stored in a checkpoint, by leaf name."""
    with np.load(path) as data:
        names = json.loads(bytes(data["__header__"]).decode())["leaf_names"]
        return {n[len(".params"):]: data[f"leaf{i}"] for i, n in enumerate(names) if n.startswith(".params")}


@pytest.mark.parametrize("setting", RUNS, ids=lambda s: "-".join([s[0], s[1], *s[2]]))
def test_load_rebuilds_every_policy_kind_with_its_trained_params(trained_run, setting):
    env_id, policy_name, flags = setting
    run = trained_run(env_id, policy_name, *flags)
    agent = weakpg.load(run)
    kind, learned = RUNS[setting]
    assert type(agent.policy) is kind
    assert isinstance(agent.config, settings.RunConfig) and agent.config.env == env_id
    assert agent.iteration == 2 and agent.env_steps > 0 and agent.checkpoint == run / runs.CHECKPOINT_FILE
    assert tuple(agent.env.observation_shape) == ((4,) if env_id.startswith("CartPole") else (3,))
    saved = _saved_params(agent.checkpoint)
    leaves = {jax.tree_util.keystr(p): leaf
              for p, leaf in jax.tree_util.tree_flatten_with_path(agent.params)[0]}
    assert leaves.keys() == saved.keys() and ("['log_sigma']" in leaves) == learned
    for name, leaf in leaves.items():
        np.testing.assert_array_equal(np.asarray(leaf), saved[name])
    assert any(np.any(leaf != 0) for leaf in saved.values())  # trained, not the initial zeros
    obs = np.asarray(agent.env.observe(agent.env.reset(jax.random.key(0))))
    expected = agent.policy.dist_params(agent.params, obs)
    if kind is Softmax:
        assert int(agent.act(obs)) == int(np.argmax(expected["logits"]))
    else:
        np.testing.assert_allclose(agent.act(obs), expected["mean"], rtol=1e-6)
        if learned:
            np.testing.assert_allclose(expected["scale"], np.exp(saved["['log_sigma']"]), rtol=1e-6)


def test_a_named_checkpoint_is_a_path_to_any_weakpg_checkpoint(trained_run, tmp_path):
    run = trained_run("Pendulum-v1", "linear")
    kept = tmp_path / "kept_at_iteration_2.npz"
    shutil.copy(run / runs.CHECKPOINT_FILE, kept)
    agent = weakpg.load(run, kept)
    assert agent.checkpoint == kept and agent.iteration == 2
    np.testing.assert_array_equal(agent.params["weights"], weakpg.load(run).params["weights"])
    other = trained_run("Pendulum-v1", "mlp") / runs.CHECKPOINT_FILE
    with pytest.raises(ValueError, match="do not match the run's configuration"):
        weakpg.load(run, other)
    with pytest.raises(ValueError, match="does not exist: give the path of a checkpoint file"):
        weakpg.load(run, tmp_path / "missing.npz")


def test_a_python_api_run_loads_with_its_env_and_policy(tmp_path):
    env = envs.make("Pendulum-v1")
    policy = MLPGaussian(env, hidden=(5, 3), sigma=0.3)  # no config.json could rebuild this
    state, _ = train(env, policy, TrainConfig(iterations=2, env_steps=None, batch_size=4, eval_every=1,
                                              eval_episodes=2), run_dir=tmp_path)
    with pytest.raises(ValueError, match="has no config.json .* pass the env= and policy="):
        weakpg.load(tmp_path)
    agent = weakpg.load(tmp_path, env=env, policy=policy)
    assert agent.config is None and agent.iteration == 2
    for got, want in zip(jax.tree.leaves(agent.params), jax.tree.leaves(state.params)):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="do not match"):
        weakpg.load(tmp_path, env=env, policy=MLPGaussian(env, hidden=(5,)))
    with pytest.raises(TypeError, match="policy must be a weakpg Policy"):
        weakpg.load(tmp_path, env=env, policy="mlp")


def test_a_policy_override_replaces_the_one_config_json_describes(trained_run):
    run = trained_run("Pendulum-v1", "linear")
    env = envs.make("Pendulum-v1")
    squashed = LinearGaussian(env, squash="tanh")  # same parameters, another env action
    agent = weakpg.load(run, policy=squashed)
    assert agent.policy is squashed and np.all(np.abs(agent.act(np.full((5, 3), 9.0))) <= 2.0)


def test_a_reproduce_run_loads_from_its_study_setup(tmp_path):
    env = envs.make("Pendulum-v1")
    policy = PENDULUM.make_policy(env)
    config = dataclasses.replace(PENDULUM.train_config(METHODS[0], 0, 1000), iterations=1, env_steps=None,
                                 batch_size=4, eval_episodes=2)
    state, _ = train(env, policy, config, run_dir=tmp_path)
    runs.write_json(tmp_path / runs.CONFIG_FILE, {  # what weakpg reproduce writes into each run folder
        "env_id": "Pendulum-v1", "method": METHODS[0].label, "quick": True, "env_steps": 1000,
        **dataclasses.asdict(config), "setup": dataclasses.asdict(PENDULUM)})
    agent = weakpg.load(tmp_path)
    assert agent.config == PENDULUM
    np.testing.assert_array_equal(agent.params["weights"], state.params["weights"])


def test_bad_run_folders_are_refused(tmp_path, trained_run):
    with pytest.raises(ValueError, match="is not a folder"):
        weakpg.load(tmp_path / "nowhere")
    run = tmp_path / "run"
    shutil.copytree(trained_run("Pendulum-v1", "linear"), run)
    (run / runs.CHECKPOINT_FILE).unlink()
    with pytest.raises(ValueError, match="does not exist: the run stopped before its first checkpoint"):
        weakpg.load(run)
    shutil.copy(trained_run("Pendulum-v1", "linear") / runs.CHECKPOINT_FILE, run)
    (run / runs.CONFIG_FILE).write_text(json.dumps({"env": "Pendulum-v1"}))
    with pytest.raises(ValueError, match="config.json: the settings .* are missing"):
        weakpg.load(run)
    (run / runs.CONFIG_FILE).unlink()
    (run / runs.CHECKPOINT_FILE).write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a weakpg checkpoint"):
        weakpg.load(run, env=envs.make("Pendulum-v1"), policy=LinearGaussian(envs.make("Pendulum-v1")))


def test_import_weakpg_and_its_load_leave_the_environment_libraries_unloaded():
    code = ("import sys, weakpg; weakpg.load, weakpg.Agent; "
            "print([m for m in ('gymnasium', 'gymnax', 'matplotlib', 'imageio') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
