"""RunConfig's flat form (config.json, sweep points, options), its defaults and build()."""

from __future__ import annotations

import dataclasses

import pytest
from typer.testing import CliRunner

from weakpg._src.app import settings
from weakpg._src.app.cli import app
from weakpg._src.config import TrainConfig
from weakpg.policies import LinearGaussian, MLPGaussian, Softmax

runner = CliRunner()


def test_every_default_lives_in_the_dataclasses():
    assert settings.from_dict({}) == settings.RunConfig()
    assert settings.to_dict(settings.RunConfig())["lr"] == TrainConfig().lr
    help_text = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "300"}).output
    for name, (field, _) in settings.SETTINGS.items():
        flag = "--" + name.replace("_", "-")
        assert flag in help_text, name  # every setting is an option of weakpg train, --coupled included
        default = field.default if not isinstance(field.default, bool) else None
        if default is not None:
            block = "".join(help_text.split(flag, 1)[1].split("\n  --")[0].split())
            assert f"[default:{default}]" in block, name  # white space dropped: help wraps at hyphens


def test_flat_settings_round_trip():
    config = settings.RunConfig(env="CartPole-v1", policy="linear",
                                train=TrainConfig(estimator="sf", baseline="rollout", iterations=7, seed=3))
    flat = settings.to_dict(config)
    assert settings.from_dict(flat) == config
    assert settings.from_dict({**flat, "baseline": "none", "estimator": "jd"}).train.baseline is None
    assert set(flat) == set(settings.SETTINGS) == {f.name for f in dataclasses.fields(TrainConfig)} | {
        "env", "policy", "sigma", "learn_sigma"}
    assert settings.from_dict({**flat, "estimator": "jd", "baseline": "none", "coordinates": "none"}
                              ).train.coordinates is None


@pytest.mark.parametrize("name, value, expected", [
    ("baseline", "None", None), ("baseline", "NONE", None), ("max_grad_norm", "none", None),
    ("env_steps", "none", None),
])
def test_none_is_spelled_none_in_any_case_where_a_setting_takes_none(name, value, expected):
    flat = {name: value, **({"estimator": "sf"} if name == "baseline" else {}),
            **({"iterations": 5} if name == "env_steps" else {})}
    assert getattr(settings.from_dict(flat).train, name) is expected
    assert settings.is_nullable(name) and not settings.is_nullable("gamma")


def test_none_is_a_string_where_a_setting_does_not_take_none():
    with pytest.raises(ValueError, match="estimator must be one of 'jd', 'sf', got 'none'"):
        settings.from_dict({"estimator": "none"})


def test_a_run_folder_config_must_hold_every_setting():
    flat = settings.to_dict(settings.RunConfig())
    assert settings.from_dict(flat, complete=True) == settings.RunConfig()
    older = {k: v for k, v in flat.items() if k not in settings.NEWER_SETTINGS}
    assert settings.from_dict(older, complete=True) == settings.RunConfig()  # written before they existed
    del flat["gamma"]
    with pytest.raises(ValueError, match=r"the settings \['gamma'\] are missing"):
        settings.from_dict(flat, complete=True)
    with pytest.raises(ValueError, match="settings must be a table"):
        settings.from_dict([("gamma", 0.9)])


@pytest.mark.parametrize("flat, policy_type, sigma, learned", [
    ({}, LinearGaussian, 1.0, False),
    ({"policy": "mlp", "sigma": 0.5, "learn_sigma": True}, MLPGaussian, 0.5, True),
    ({"env": "CartPole-v1", "policy": "linear"}, Softmax, None, False),
])
def test_build_makes_the_environment_and_policy_the_settings_name(flat, policy_type, sigma, learned):
    config = settings.from_dict(flat)
    env, policy = settings.build(config)
    assert type(policy) is policy_type and env.env_id == config.env
    if sigma is not None:
        assert float(policy.sigma[0]) == sigma and policy.learn_sigma is learned
