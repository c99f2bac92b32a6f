"""Simulators with explicit, copyable state (gymnax convention)."""

from weakpg._src import validation
from weakpg._src.envs.base import Environment as Environment
from weakpg._src.envs.finite_mdp import FiniteMDP as FiniteMDP
from weakpg._src.envs.gymnasium_envs import GYMNASIUM_PREFIX as GYMNASIUM_PREFIX
from weakpg._src.envs.gymnasium_envs import GymnasiumEnvironment as GymnasiumEnvironment
from weakpg._src.envs.gymnasium_envs import GymnasiumState as GymnasiumState
from weakpg._src.envs.gymnasium_envs import from_gymnasium as from_gymnasium
from weakpg._src.envs.gymnax_envs import GYMNAX_IDS as GYMNAX_IDS
from weakpg._src.envs.gymnax_envs import GymnaxEnvironment as GymnaxEnvironment
from weakpg._src.envs.linear_quadratic import LinearQuadratic as LinearQuadratic


def make(env_id: str) -> Environment:
    """The environment with this id, run without time limit.

    One of ``GYMNAX_IDS`` (pure JAX), or ``"gymnasium:<ID>"`` for a gymnasium environment
    through ``from_gymnasium`` (classic control and MuJoCo, e.g. "gymnasium:HalfCheetah-v5").
    """
    if isinstance(env_id, str) and env_id.startswith(GYMNASIUM_PREFIX):
        return from_gymnasium(env_id.removeprefix(GYMNASIUM_PREFIX))
    validation.check_choice("env_id", env_id, GYMNAX_IDS + (f"{GYMNASIUM_PREFIX}<ID>",))
    return GymnaxEnvironment(env_id)
