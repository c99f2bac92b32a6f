"""A training run described by plain data: the flags of ``weakpg train`` as a dict.

The same dict is a run folder's ``config.json``, a line of a sweep, and what a remote
worker receives, so one function turns it into (environment, policy, TrainConfig) and
one runs it. ``DEFAULTS`` are the defaults of ``weakpg train``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from weakpg._src import validation
from weakpg._src.envs.base import Environment
from weakpg._src.policies import Policy, make_policy
from weakpg._src.train import TrainConfig, train

RUN_FIELDS = ("env", "policy", "sigma", "learn_sigma", "iterations", "env_steps", "eval_every",
              "eval_episodes")
DEFAULTS: dict[str, Any] = {
    "env": "Pendulum-v1", "policy": "linear-rbf", "sigma": 1.0, "learn_sigma": False,
    "iterations": None, "env_steps": None, "eval_every": 5, "eval_episodes": 16,
    **dataclasses.asdict(TrainConfig(optimizer="adam", lr=0.05, schedule_power=0.0, batch_size=1024)),
}
DEFAULT_ENV_STEPS = 1_000_000  # when neither iterations nor env_steps bounds the run


def make_setup(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``DEFAULTS`` updated with ``overrides``, checked; ValueError names a bad key or value.

    Without "iterations" and "env_steps" the budget is ``DEFAULT_ENV_STEPS`` env steps.
    """
    unknown = sorted(set(overrides) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown setting(s) {unknown}; the settings are {sorted(DEFAULTS)}")
    setup = {**DEFAULTS, **overrides}
    if setup["iterations"] is None and setup["env_steps"] is None:
        setup["env_steps"] = DEFAULT_ENV_STEPS
    build(setup)  # validates every field
    return setup


def build(setup: Mapping[str, Any]) -> tuple[Environment, Policy, TrainConfig]:
    """The environment, policy and ``TrainConfig`` a setup describes."""
    from weakpg import envs

    config = TrainConfig(**{f.name: setup[f.name] for f in dataclasses.fields(TrainConfig)})
    env = envs.make(setup["env"])
    policy = make_policy(env, setup["policy"], sigma=setup["sigma"], learn_sigma=setup["learn_sigma"])
    for name in ("eval_every", "eval_episodes"):
        validation.check_positive_int(name, setup[name])
    for name in ("iterations", "env_steps"):
        if setup[name] is not None:
            validation.check_positive_int(name, setup[name])
    return env, policy, config


def run(setup: Mapping[str, Any], run_dir: str | Path, *, resume: bool = False,
        callback: Any = None) -> list[dict[str, float]]:
    """Train as ``setup`` says, recording into ``run_dir`` (see ``weakpg.train.train``)."""
    env, policy, config = build(setup)
    _, rows = train(env, policy, config, iterations=setup["iterations"], env_steps=setup["env_steps"],
                    eval_every=setup["eval_every"], eval_episodes=setup["eval_episodes"],
                    run_dir=run_dir, resume=resume, callback=callback)
    return rows
