"""``make(env_id)``: an environment by id, its family's library imported only then."""

from __future__ import annotations

from weakpg._src.config import check_choice
from weakpg._src.envs.base import Environment
from weakpg._src.envs.gymnax_envs import GYMNAX_IDS

GYMNASIUM_PREFIX = "gymnasium:"
BRAX_PREFIX = "brax:"


def make(env_id: str, *, backend: str | None = None) -> Environment:
    """The environment with this id, run without time limit.

    One of ``GYMNAX_IDS`` (pure JAX, through gymnax), ``"gymnasium:<ID>"`` for a
    gymnasium environment through ``from_gymnasium`` (classic control and MuJoCo, e.g.
    "gymnasium:HalfCheetah-v5"), or ``"brax:<name>"`` for a Brax environment (e.g.
    "brax:reacher"; see ``weakpg.envs.BRAX_NAMES``) on ``backend`` ("spring" by default,
    or "positional", "generalized", "mjx").
    """
    is_brax = isinstance(env_id, str) and env_id.startswith(BRAX_PREFIX)
    if backend is not None and not is_brax:
        raise ValueError(f"backend={backend!r} applies to brax:<name> environments only, got {env_id!r}")
    if is_brax:
        from weakpg._src.envs.brax_envs import DEFAULT_BACKEND, BraxEnvironment

        return BraxEnvironment(env_id.removeprefix(BRAX_PREFIX),
                               backend=DEFAULT_BACKEND if backend is None else backend)
    if isinstance(env_id, str) and env_id.startswith(GYMNASIUM_PREFIX):
        from weakpg._src.envs.gymnasium_envs import from_gymnasium

        return from_gymnasium(env_id.removeprefix(GYMNASIUM_PREFIX))
    check_choice("env_id", env_id, GYMNAX_IDS + (f"{BRAX_PREFIX}<name>", f"{GYMNASIUM_PREFIX}<ID>"))
    from weakpg._src.envs.gymnax_envs import GymnaxEnvironment

    return GymnaxEnvironment(env_id)
