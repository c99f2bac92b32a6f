"""Simulators with explicit, copyable state (gymnax convention)."""

from weakpg._src.envs.base import Environment as Environment
from weakpg._src.envs.finite_mdp import FiniteMDP as FiniteMDP
from weakpg._src.envs.gymnax_envs import GYMNAX_IDS as GYMNAX_IDS
from weakpg._src.envs.gymnax_envs import GymnaxEnvironment as GymnaxEnvironment
from weakpg._src.envs.linear_quadratic import LinearQuadratic as LinearQuadratic


def make(env_id: str) -> Environment:
    """The environment with this id: one of ``GYMNAX_IDS``, run without time limit."""
    return GymnaxEnvironment(env_id)
