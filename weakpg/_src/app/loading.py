"""``weakpg.load(run_dir)``: a run folder's trained policy as an ``Agent``.

The environment and the policy are rebuilt from the run's ``config.json`` the way
``weakpg train`` built them (``settings.build``; for a run of ``weakpg reproduce``, its
study setup), and the parameters are read from its checkpoint. A run keeps one
checkpoint, ``checkpoint.npz``, overwritten as training goes on; ``checkpoint=`` takes
the path of any other weakpg checkpoint file (a copy kept at some iteration, a run's
checkpoint from elsewhere) whose parameters fit the run's policy. ``env=`` and ``policy=``
replace what ``config.json`` describes: a run of ``weakpg.train.train`` has no
``config.json``, and a policy built in Python (any ``Policy``) cannot be rebuilt from one.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from weakpg._src import runs
from weakpg._src.agent import Agent
from weakpg._src.app import settings


def _fields(kind: type, value: Any, what: str) -> dict[str, Any]:
    fields = {f.name for f in dataclasses.fields(kind)}
    if not isinstance(value, dict) or set(value) != fields:
        raise ValueError(f"its {what} must hold the fields {sorted(fields)}, got {value!r:.120}")
    return value


def _study_setup(flat: dict[str, Any]) -> Any:
    """The ``StudySetup`` (or ``BraxStudy``) a run of ``weakpg reproduce`` records in its config.json."""
    if "study" in flat:
        from weakpg._src.app.studies.brax_setups import BraxStudy, PPOSettings

        study = _fields(BraxStudy, flat["study"], "study")
        return BraxStudy(**{**study, "hidden": tuple(study["hidden"]),
                            "ppo": PPOSettings(**_fields(PPOSettings, study["ppo"], "study's ppo"))})
    from weakpg._src.app.studies.learning_setups import StudySetup

    return StudySetup(**_fields(StudySetup, flat["setup"], "setup"))


def run_config(run_dir: Path) -> Any:
    """The settings of a run folder: a ``RunConfig`` (``weakpg train``), a ``StudySetup`` or
    ``BraxStudy`` (``weakpg reproduce``), or None when it has no config.json (``weakpg.train.train``)."""
    if not (run_dir / runs.CONFIG_FILE).exists():
        return None
    flat = runs.open_run(run_dir)
    try:
        if "method" in flat and ("setup" in flat or "study" in flat):
            return _study_setup(flat)
        return settings.from_dict(flat, complete=True)
    except (ValueError, TypeError) as error:
        raise ValueError(f"{run_dir / runs.CONFIG_FILE}: {error}") from None


def run_env_id(config: Any) -> str | None:
    """The environment id of a run's settings (None for a run without config.json)."""
    if config is None:
        return None
    return config.env if isinstance(config, settings.RunConfig) else config.env_id


def _build(config: Any, env: Any, policy: Any) -> tuple[Any, Any]:
    """The run's environment and policy, each unless given."""
    if isinstance(config, settings.RunConfig):
        if policy is None:
            return settings.build(config, env)
        from weakpg._src.envs.registry import make

        return (make(config.env) if env is None else env), policy
    env = config.make_env() if env is None else env
    return env, config.make_policy(env) if policy is None else policy


def load(run_dir: str | Path, checkpoint: str | Path | None = None, *, env: Any = None,
         policy: Any = None) -> Agent:
    """The trained policy of ``run_dir`` as an ``Agent`` (``agent.act(obs, key=None)``).

    Args:
      run_dir: a folder written by ``weakpg train``, ``weakpg reproduce`` (its
        ``runs/<method>__seed<n>``) or ``weakpg.train.train(..., run_dir=...)``.
      checkpoint: the checkpoint file to read (a path, as given); default
        ``run_dir/checkpoint.npz``, the last one (a run keeps only that one).
      env, policy: a ``weakpg.envs`` environment and a ``Policy`` that replace the ones
        config.json describes (both needed for a run without config.json; a policy
        given must be the one trained, its parameters must fit it).

    ValueError names a missing folder or checkpoint, a damaged file, or parameters that do
    not fit the policy; TypeError a bad ``env`` or ``policy``.
    """
    from weakpg._src.envs.base import Environment
    from weakpg._src.policies import Policy
    from weakpg._src.validation import first_non_finite

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ValueError(f"run_dir {run_dir} is not a folder (a run folder of weakpg train)")
    for name, value, kind in (("env", env, Environment), ("policy", policy, Policy)):
        if value is not None and not isinstance(value, kind):
            raise TypeError(f"{name} must be a weakpg {kind.__name__} or None, got {type(value).__name__}")
    path = run_dir / runs.CHECKPOINT_FILE if checkpoint is None else Path(checkpoint)
    if not path.is_file():
        why = ("the run stopped before its first checkpoint" if checkpoint is None
               else "give the path of a checkpoint file (.npz) written by weakpg")
        raise ValueError(f"checkpoint {path} does not exist: {why}")
    config = run_config(run_dir)
    if config is None and (env is None or policy is None):
        raise ValueError(f"{run_dir} has no {runs.CONFIG_FILE} (a run of weakpg.train.train): pass the "
                         "env= and policy= it was trained with")
    if config is not None:
        env, policy = _build(config, env, policy)
    import jax

    params, header = runs.load_checkpoint(path, policy.init(jax.random.key(0)), part=".params")
    bad = first_non_finite(params)
    if bad is not None:
        raise ValueError(f"checkpoint {path} holds non-finite parameters (params{bad})")
    return Agent(policy, params, env, config=config, checkpoint=path, iteration=header.get("iteration"),
                 env_steps=header.get("env_steps"))
