"""``make(env_id)``: an environment by id, its family's library imported only then."""

from __future__ import annotations

from weakpg._src.config import check_choice
from weakpg._src.envs.base import Environment
from weakpg._src.envs.gymnax_envs import GYMNAX_IDS

GYMNASIUM_PREFIX = "gymnasium:"


def make(env_id: str) -> Environment:
    """The environment with this id, run without time limit.

    One of ``GYMNAX_IDS`` (pure JAX, through gymnax), or ``"gymnasium:<ID>"`` for a
    gymnasium environment through ``from_gymnasium`` (classic control and MuJoCo, e.g.
    "gymnasium:HalfCheetah-v5").
    """
    if isinstance(env_id, str) and env_id.startswith(GYMNASIUM_PREFIX):
        from weakpg._src.envs.gymnasium_envs import from_gymnasium

        return from_gymnasium(env_id.removeprefix(GYMNASIUM_PREFIX))
    check_choice("env_id", env_id, GYMNAX_IDS + (f"{GYMNASIUM_PREFIX}<ID>",))
    from weakpg._src.envs.gymnax_envs import GymnaxEnvironment

    return GymnaxEnvironment(env_id)
