"""Simulators with explicit, copyable state (gymnax convention).

gymnax, gymnasium and Brax are imported when an environment of theirs is made (or one of
the gymnasium names below is first used), not with this module.
"""

from typing import Any

from weakpg._src.envs.base import Environment as Environment
from weakpg._src.envs.brax_envs import BRAX_BACKENDS as BRAX_BACKENDS
from weakpg._src.envs.brax_envs import BRAX_NAMES as BRAX_NAMES
from weakpg._src.envs.brax_envs import DEFAULT_BACKEND as DEFAULT_BACKEND
from weakpg._src.envs.brax_envs import BraxEnvironment as BraxEnvironment
from weakpg._src.envs.finite_mdp import FiniteMDP as FiniteMDP
from weakpg._src.envs.gymnax_envs import GYMNAX_IDS as GYMNAX_IDS
from weakpg._src.envs.gymnax_envs import GymnaxEnvironment as GymnaxEnvironment
from weakpg._src.envs.linear_quadratic import LinearQuadratic as LinearQuadratic
from weakpg._src.envs.registry import BRAX_PREFIX as BRAX_PREFIX
from weakpg._src.envs.registry import GYMNASIUM_PREFIX as GYMNASIUM_PREFIX
from weakpg._src.envs.registry import make as make

_GYMNASIUM_NAMES = ("GymnasiumEnvironment", "GymnasiumState", "from_gymnasium")


def __getattr__(name: str) -> Any:
    if name in _GYMNASIUM_NAMES:
        from weakpg._src.envs import gymnasium_envs

        return getattr(gymnasium_envs, name)
    raise AttributeError(f"module 'weakpg.envs' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_GYMNASIUM_NAMES])
