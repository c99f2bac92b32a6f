"""The one schema: every rule refused by the dataclasses, by `weakpg train` and by `weakpg sweep`."""

from __future__ import annotations

import dataclasses
import json

import pytest
from typer.testing import CliRunner

from weakpg._src.app import settings
from weakpg._src.app.cli import app
from weakpg._src.config import TrainConfig

# (settings, the message that refuses them): one row per rule, single-field and cross-field.
RULES = [
    ({"estimator": "reinforce"}, "estimator must be one of 'jd', 'sf', got 'reinforce'"),
    ({"estimator": "sf", "baseline": "critic"},
     "baseline must be one of None, 'rollout', 'value', got 'critic'"),
    ({"gamma": 1.0}, "gamma must lie in (0.0, 1.0), got 1.0"),
    ({"gamma": 0.0}, "gamma must lie in (0.0, 1.0), got 0.0"),
    ({"batch_size": 0}, "batch_size must be an int in [1, 1048576], got 0"),
    ({"batch_size": 2**20 + 1}, "batch_size must be an int in [1, 1048576], got 1048577"),
    ({"optimizer": "rmsprop"}, "optimizer must be one of 'sgd', 'adam', got 'rmsprop'"),
    ({"lr": 0.0}, "lr must lie in (0.0, inf), got 0.0"),
    ({"schedule_power": 1.5}, "schedule_power must lie in [0.0, 1.0], got 1.5"),
    ({"max_grad_norm": -1.0}, "max_grad_norm must lie in (0.0, inf), got -1.0"),
    ({"iterations": 0}, "iterations must be an int in [1, inf], got 0"),
    ({"env_steps": 0}, "env_steps must be an int in [1, 2147483647], got 0"),
    ({"env_steps": 2**31}, "env_steps must be an int in [1, 2147483647], got 2147483648"),
    ({"eval_every": 0}, "eval_every must be an int in [1, inf], got 0"),
    ({"eval_episodes": 0}, "eval_episodes must be an int in [1, inf], got 0"),
    ({"seed": 2**32}, "seed must be an int in [0, 4294967295], got 4294967296"),
    ({"policy": "cnn"}, "policy must be one of 'linear-rbf', 'linear', 'mlp', got 'cnn'"),
    ({"sigma": -1.0}, "sigma must lie in (0.0, inf), got -1.0"),
    # Cross-field rules.
    ({"estimator": "jd", "baseline": "rollout"}, "baseline='rollout' applies to estimator='sf' only"),
    ({"estimator": "sf", "baseline": "value", "batch_size": 2},
     "baseline='value' fits on half the batch and needs batch_size >= 4, got 2"),
    ({"iterations": None, "env_steps": None}, "iterations and env_steps are both none"),
    ({"coordinates": 0}, "coordinates must be an int in [1, inf], got 0"),
    ({"estimator": "sf", "coordinates": 1}, "coordinates=1 applies to estimator='jd' only"),
    ({"coupling": "antithetic"}, "coupling must be one of 'mirror', 'quantile', got 'antithetic'"),
    ({"estimator": "sf", "coupling": "quantile"}, "coupling='quantile' applies to estimator='jd' only"),
    ({"coupling": "quantile", "coupled": False},
     "coupling='quantile' draws the pair of a Gaussian mean coordinate from common random numbers and needs "
     "coupled=True"),
]
# Rules that need the environment (settings.build).
ENV_RULES = [
    ({"env": "Pendulum-v9"}, "env_id must be one of 'Pendulum-v1'"),
    ({"env": "CartPole-v1"}, "features='rbf' needs a bounded observation box"),
    ({"env": "CartPole-v1", "policy": "mlp"}, "policy 'mlp' is not available for discrete actions"),
    ({"env": "CartPole-v1", "policy": "linear", "sigma": 0.5}, "sigma is for Gaussian policies"),
    ({"env": "CartPole-v1", "policy": "linear", "learn_sigma": True}, "learn_sigma is for Gaussian policies"),
    ({"coordinates": 2}, "coordinates must be an int in [1, d] = [1, 1] (d = 1: the elements of each learned "
                         "distribution parameter of the policy), got 2"),
    ({"env": "CartPole-v1", "policy": "linear", "coupling": "quantile"}, "Softmax has no Gaussian mean"),
]
TYPES = [
    ({"gamma": "x"}, "gamma must be of type float, got 'x'"),
    ({"coupled": "no"}, "coupled must be of type bool, got 'no'"),
    ({"batch_size": 32.0}, "batch_size must be of type int, got 32.0"),
    ({"batch_size": True}, "batch_size must be of type int, got True"),
    ({"max_grad_norm": "x"}, "max_grad_norm must be of type float or None, got 'x'"),
    ({"coordinates": 1.5}, "coordinates must be of type int or None, got 1.5"),
    ({"coupling": 1}, "coupling must be of type str, got 1"),
    ({"bogus": 1}, "unknown setting(s) ['bogus']"),
]
runner = CliRunner()


@pytest.mark.parametrize("values, message", RULES + ENV_RULES + TYPES)
def test_the_dataclasses_refuse_each_rule(values, message):
    with pytest.raises(ValueError) as error:
        settings.build(settings.from_dict(values))
    assert message in str(error.value)


TRAIN_FIELDS = {field.name for field in dataclasses.fields(TrainConfig)}


@pytest.mark.parametrize("values, message", [rule for rule in RULES + TYPES if set(rule[0]) <= TRAIN_FIELDS])
def test_train_config_refuses_each_of_its_rules_without_the_application(values, message):
    with pytest.raises(ValueError) as error:
        TrainConfig(**values)
    assert message in str(error.value)


def _flags(values: dict) -> list[str]:
    args = []
    for name, value in values.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            args.append(flag if value else flag.replace("--", "--no-", 1))
        else:
            args += [flag, "none" if value is None else str(value)]
    return args


@pytest.mark.parametrize("values, message", RULES + ENV_RULES)
def test_weakpg_train_refuses_each_rule_with_one_line_and_writes_nothing(tmp_path, values, message):
    result = runner.invoke(app, ["train", *_flags(values), "--out", str(tmp_path / "runs")])
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [f"error: {result.output.strip()[7:]}"]
    assert message in result.output and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def _toml(value) -> str:
    if value is None:
        return '"none"'
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value).replace("'", '"')


@pytest.mark.parametrize("values, message", RULES + ENV_RULES)
def test_weakpg_sweep_refuses_each_rule_before_any_run(tmp_path, values, message):
    config = tmp_path / "sweep.toml"
    config.write_text("".join(f"{k} = {_toml(v)}\n" for k, v in values.items()))
    result = runner.invoke(app, ["sweep", str(config), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1 and message in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep.toml"]


def test_weakpg_train_takes_coordinates_and_coupling_into_config_json(tmp_path):
    result = runner.invoke(app, ["train", "--env-steps", "2000", "--batch-size", "16", "--eval-every", "1",
                                 "--eval-episodes", "2", "--policy", "linear", "--coordinates", "1",
                                 "--coupling", "quantile", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    (run,) = tmp_path.iterdir()
    written = json.loads((run / "config.json").read_text())
    assert (written["coordinates"], written["coupling"]) == (1, "quantile")
    assert settings.from_dict(written, complete=True).train.coordinates == 1


def test_a_coordinates_value_that_is_no_int_is_refused_on_the_command_line(tmp_path):
    result = runner.invoke(app, ["train", "--coordinates", "1.5", "--out", str(tmp_path / "runs")])
    assert result.exit_code == 2 and "'1.5' is not a valid int or 'none'" in result.output
    assert list(tmp_path.iterdir()) == []


def test_sweep_files_take_coordinates_and_coupling():
    from weakpg._src.app import sweep_plan

    planned = sweep_plan.plan({"policy": "linear", "env_steps": 2000,
                               "grid": {"coordinates": ["none", 1], "coupling": ["mirror", "quantile"]}})
    assert [(p.setup["coordinates"], p.setup["coupling"]) for p in planned] == [
        (None, "mirror"), (None, "quantile"), (1, "mirror"), (1, "quantile")]
