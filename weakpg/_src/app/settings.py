"""A training run as plain data: ``RunConfig``, the one schema of ``weakpg train``.

``RunConfig`` adds the environment and the policy to ``TrainConfig``. Its flat form
(``to_dict``, ``from_dict``: every setting under its field name) is a run folder's
``config.json``, a point of a sweep file and what a remote worker receives; the options
of ``weakpg train`` are generated from the same fields (``SETTINGS``). Every check lives
in the dataclasses; ``build`` adds the checks that need the environment (a Gaussian
setting on discrete actions, RBF features on an unbounded box, ``coordinates`` above the
action dimension). Like ``config``, this module does not import JAX.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from typing import Any

from weakpg._src.config import POLICY_NAMES, TrainConfig, check_choice, check_fields, check_interval, setting

NONE = "none"  # how the command line and TOML (which has no null) write None
# Settings added after weakpg 0.1.0: a run folder written before them lacks them and was
# trained with their defaults, which it resumes with.
NEWER_SETTINGS = ("coordinates", "coupling")


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """One training run: environment, policy and the ``TrainConfig`` of Algorithm 2."""

    env: str = setting("Pendulum-v1", "Environment id: a gymnax one (Pendulum-v1, CartPole-v1, "
                       "MountainCarContinuous-v0, Acrobot-v1), or gymnasium:<ID> for a gymnasium "
                       "environment whose state can be saved and restored (e.g. gymnasium:CartPole-v1, "
                       "gymnasium:HalfCheetah-v5), or brax:<name> for a Brax environment on its spring "
                       "backend (e.g. brax:reacher).")
    policy: str = setting("linear-rbf", "linear-rbf, linear (identity features) or mlp; discrete "
                          "actions get a softmax with logits linear in the features (CartPole: linear, "
                          "its velocities are unbounded).")
    sigma: float | None = setting(None, "Initial standard deviation of a Gaussian policy (> 0; none: "
                                  "the policy's default, 1.0); not for discrete actions.")
    learn_sigma: bool = setting(False, "Learn log-sigma too (the Gaussian-scale weak derivative); "
                                "not for discrete actions.")
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)

    def __post_init__(self):
        check_fields(self)
        check_choice("policy", self.policy, POLICY_NAMES)
        if self.sigma is not None:
            check_interval("sigma", self.sigma, 0.0, None, low_open=True)


def _settings() -> dict[str, tuple[dataclasses.Field, Any]]:
    fields = {f.name: (f, hints) for cls in (RunConfig, TrainConfig)
              for hints in [typing.get_type_hints(cls)] for f in dataclasses.fields(cls) if f.name != "train"}
    return {name: (field, hints[name]) for name, (field, hints) in fields.items()}


SETTINGS = _settings()  # setting name -> (its dataclass field, its type)
RUN_FIELDS = tuple(f.name for f in dataclasses.fields(RunConfig) if f.name != "train")


def is_nullable(name: str) -> bool:
    """Whether setting ``name`` takes None (written ``"none"``)."""
    return type(None) in typing.get_args(SETTINGS[name][1])


def is_none(value: Any) -> bool:
    """Whether ``value`` is None or spells it ("none", in any case)."""
    return value is None or (isinstance(value, str) and value.lower() == NONE)


def from_dict(flat: Mapping[str, Any], *, complete: bool = False) -> RunConfig:
    """The ``RunConfig`` of flat settings; missing ones take their defaults.

    ``"none"`` (in any case) stands for None in the settings that take None. With
    ``complete`` (a run folder's ``config.json``) every setting must be given but those of
    ``NEWER_SETTINGS``. ValueError names an unknown or missing setting or a bad value.
    """
    if not isinstance(flat, Mapping):
        raise ValueError(f"settings must be a table of name = value, got {flat!r:.80}")
    unknown = sorted(set(flat) - set(SETTINGS))
    if unknown:
        raise ValueError(f"unknown setting(s) {unknown}; the settings are {sorted(SETTINGS)}")
    missing = sorted(set(SETTINGS) - set(flat) - set(NEWER_SETTINGS)) if complete else []
    if missing:
        raise ValueError(f"the settings {missing} are missing; a run's config.json holds every setting")
    values = {k: None if is_nullable(k) and is_none(v) else v for k, v in flat.items()}
    train = TrainConfig(**{k: v for k, v in values.items() if k not in RUN_FIELDS})
    return RunConfig(**{k: v for k, v in values.items() if k in RUN_FIELDS}, train=train)


def to_dict(config: RunConfig) -> dict[str, Any]:
    """Every setting of ``config`` under its name (``config.json``)."""
    return {**{name: getattr(config, name) for name in RUN_FIELDS}, **dataclasses.asdict(config.train)}


def build(config: RunConfig, env: Any = None) -> tuple[Any, Any]:
    """The environment and the policy ``config`` describes; ValueError if they do not fit.

    ``env``, when given, replaces ``make(config.env)`` (the policy is built for it).
    """
    from weakpg._src.envs.registry import make
    from weakpg._src.gradients import check_estimator
    from weakpg._src.policies import make_policy

    env = make(config.env) if env is None else env
    if env.discrete and (config.sigma is not None or config.learn_sigma):
        given = "sigma" if config.sigma is not None else "learn_sigma"
        raise ValueError(f"{given} is for Gaussian policies; {config.env} has discrete actions "
                         "(a softmax policy): leave it out")
    sigma = {} if config.sigma is None else {"sigma": config.sigma}
    policy = make_policy(env, config.policy, learn_sigma=config.learn_sigma, **sigma)
    check_estimator(env, policy, **config.train.estimator_options())  # coordinates <= d, and such
    return env, policy
