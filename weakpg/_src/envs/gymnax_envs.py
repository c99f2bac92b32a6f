"""gymnax environments as weakpg simulators.

Phantom roll-outs need the bare dynamics: ``step_env`` (no automatic reset) and no time
limit, since the paper's problem is the infinite-horizon discounted one. A true terminal
state (CartPole's pole falling, MountainCar reaching the goal) is absorbing with reward 0.

Numerics: float32 by default. Pendulum is chaotic, so float32 and float64 trajectories
from one start drift apart, by about 1e-3 in the angle over 200 steps; with
``jax.config.update("jax_enable_x64", True)`` the dynamics match gymnasium's Pendulum-v1
to 1e-9 (see tests/test_pendulum_reference.py).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from weakpg._src import validation
from weakpg._src.envs.base import Array, Environment

GYMNAX_IDS = ("Pendulum-v1", "CartPole-v1", "MountainCarContinuous-v0", "Acrobot-v1")
_CLASSES = dict(zip(GYMNAX_IDS, ("Pendulum", "CartPole", "ContinuousMountainCar", "Acrobot")))
_CLASSIC_CONTROL = "gymnax.environments.classic_control"
_NEVER_TERMINATES = ("Pendulum-v1",)


def classic_control() -> types.ModuleType:
    """gymnax's classic-control package, imported without running ``gymnax/__init__``.

    ``import gymnax`` imports every gymnax environment and, with them, seaborn, matplotlib
    and scipy (about 1 s: most of weakpg's start-up); its ``environment`` module imports
    ``flax.struct``, and ``import flax`` imports flax.linen (0.15 s). The classic-control
    modules need only gymnax's ``environment`` and ``spaces`` modules and ``flax.struct``,
    so the package modules above them are bound, unexecuted, for the import and removed
    after it, and so are the flax modules loaded under them: a later ``import gymnax`` runs
    as usual and reuses the classic-control modules loaded here (same classes), and a
    later ``import flax`` is flax's own, whole (its ``flax.serialization`` does not know
    the classic-control states, registered with the first one).
    """
    if "gymnax" in sys.modules:
        return importlib.import_module(_CLASSIC_CONTROL)
    packages = {"gymnax": _search_path("gymnax")}
    packages["gymnax.environments"] = [f"{path}/environments" for path in packages["gymnax"]]
    if "flax" not in sys.modules:
        packages["flax"] = _search_path("flax")
    before = set(sys.modules)
    for name, path in packages.items():
        sys.modules[name] = types.ModuleType(name)
        sys.modules[name].__path__ = path
    try:
        return importlib.import_module(_CLASSIC_CONTROL)
    finally:
        for name in packages:
            del sys.modules[name]
        if "flax" in packages:
            for name in [m for m in set(sys.modules) - before if m.startswith("flax.")]:
                del sys.modules[name]


def _search_path(package: str) -> list[str]:
    """Where ``package``'s modules are, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"No module named {package!r}", name=package)
    return list(spec.submodule_search_locations)


class EpisodicState(NamedTuple):
    """A gymnax state and whether a terminal state was reached (then absorbing)."""

    env_state: Any
    terminated: Array


class Space(NamedTuple):
    """A gymnax space: its shape, number of actions (discrete) or bounds (a box, NumPy)."""

    shape: tuple[int, ...]
    num_actions: int | None = None
    low: Any = None
    high: Any = None


def _spaces(env: Any, params: Any) -> dict[str, Space]:
    """The "action" and "observation" spaces of a gymnax env.

    gymnax builds its bounds with jnp operations, each of which, run eagerly, compiles a
    program; here they are traced into one (a cold start spends about 0.06 s less).
    """
    discrete = sys.modules["gymnax.environments.spaces"].Discrete
    spaces: dict[str, Space] = {}

    def bounds() -> dict[str, tuple[Array, Array]]:
        out = {}
        for name in ("action", "observation"):
            space = getattr(env, f"{name}_space")(params)
            if isinstance(space, discrete):  # Python metadata, recorded while tracing
                spaces[name] = Space((), int(space.n))
            else:
                spaces[name] = Space(tuple(space.shape))
                out[name] = tuple(jnp.broadcast_to(x, space.shape) for x in (space.low, space.high))
        return out

    for name, (low, high) in jax.device_get(jax.jit(bounds)()).items():
        spaces[name] = spaces[name]._replace(low=low, high=high)
    return spaces


class GymnaxEnvironment(Environment):
    """One of ``GYMNAX_IDS`` with its default parameters."""

    def __init__(self, env_id: str):
        validation.check_choice("env_id", env_id, GYMNAX_IDS)
        self.env_id = env_id
        self._env = getattr(classic_control(), _CLASSES[env_id])()
        self._params = self._env.default_params
        spaces = _spaces(self._env, self._params)
        action, observation = spaces["action"], spaces["observation"]
        self.observation_shape = observation.shape
        self.observation_low, self.observation_high = observation.low, observation.high
        self.action_shape, self.num_actions = action.shape, action.num_actions
        self.action_low, self.action_high = action.low, action.high
        self._episodic = env_id not in _NEVER_TERMINATES
        self.max_episode_steps = int(self._params.max_steps_in_episode)

    def __repr__(self) -> str:
        return f"GymnaxEnvironment({self.env_id!r})"

    def reset(self, key: Array) -> Any:
        state = self._env.reset_env(key, self._params)[1]
        return EpisodicState(state, jnp.array(False)) if self._episodic else state

    def step(self, key: Array, state: Any, action: Array) -> tuple[Any, Array]:
        if not self._episodic:
            _, next_state, reward, _, _ = self._env.step_env(key, state, action, self._params)
            return next_state, reward
        _, next_state, reward, done, _ = self._env.step_env(
            key, state.env_state, action, self._params)
        absorbed = state.terminated
        next_state = jax.tree.map(lambda old, new: jnp.where(absorbed, old, new),
                                  state.env_state, next_state)
        reward = jnp.where(absorbed, 0.0, reward)
        return EpisodicState(next_state, absorbed | done), reward

    def observe(self, state: Any) -> Array:
        env_state = state.env_state if self._episodic else state
        return self._env.get_obs(env_state, self._params)
