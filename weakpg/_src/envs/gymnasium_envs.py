"""gymnasium environments as weakpg simulators, by saving and restoring their state.

The roll-out engine is jitted JAX; a gymnasium environment is a Python object with hidden
state. The adapter makes it a pure function of an explicit state: one host instance
serves every lane, and each host step RESTORES the state it is given, calls the env's own
``step`` with the action, and SAVES the new state. Phantom branches from one state are
then just several restores of it. ``reset`` and ``step`` reach the host through
``jax.pure_callback`` with ``vmap_method="broadcast_all"``, so the engine's vmapped step
over B slots is one host call that loops over B; the engine, the estimators and training
run unchanged.

State (``GymnasiumState``): the host state vector, float64 carried bit for bit as uint32
(no precision lost without x64), the observation the env returned (so ``observe`` is
plain JAX), and whether a terminal state was reached (absorbing with reward 0, as in
gymnax_envs). The env runs unwrapped: no time limit, the infinite-horizon process.

Families, and what their state vector holds: see ``host_simulators``. Other
environments (toy_text, Box2D, anything else) are refused with a ValueError.

Actions reach the env as a plain gymnasium loop would pass them: in the action space's
dtype, unclipped (MuJoCo clamps ctrl to its range, while control costs see the raw
action; ``squash="tanh"`` keeps a Gaussian policy inside the bounds). Observations and
rewards come back in the default float type of the trace (float32, or float64 under a
global x64 flag; JAX checks callback results on its runtime threads, where the
thread-local ``jax.enable_x64()`` context is off).
"""

from __future__ import annotations

import functools
import threading
from typing import Any, NamedTuple

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
from gymnasium import spaces

from weakpg._src.envs.base import Array, Environment
from weakpg._src.envs.host_simulators import CLASSIC_CONTROL, MUJOCO, host_simulator, unsupported

# Wrappers gymnasium.make adds; they only enforce the API and the time limit, which the
# adapter drops on purpose. Any other wrapper changes the process and would be lost.
_MAKE_WRAPPERS = ("TimeLimit", "OrderEnforcing", "PassiveEnvChecker")


class GymnasiumState(NamedTuple):
    """The explicit state of a gymnasium environment.

    Attributes:
      physics: (2 * n,) uint32, the host state vector of n float64 numbers, bit for bit.
      observation: the env's observation in this state, the default float dtype.
      terminated: () bool; a terminal state is absorbing with reward 0.
    """

    physics: Array
    observation: Array
    terminated: Array


def _make(env_id: str, make_kwargs: dict[str, Any]) -> gymnasium.Env:
    """``gymnasium.make(env_id)``, with errors that say what to do."""
    try:
        entry_point = gymnasium.spec(env_id).entry_point
    except gymnasium.error.Error as err:
        raise ValueError(f"unknown gymnasium environment id {env_id!r}: {err}") from None
    # Refuse gymnasium's other families before making them: creating a Box2D env without
    # box2d installed would fail with an install hint that leads nowhere.
    if (isinstance(entry_point, str) and entry_point.startswith("gymnasium.envs.")
            and not entry_point.startswith((CLASSIC_CONTROL + ".", MUJOCO + "."))):
        raise unsupported(repr(env_id), f"its family ({entry_point.split(':')[0]}) has no state "
                                        "the adapter can read and restore")
    try:
        return gymnasium.make(env_id, **make_kwargs)
    except gymnasium.error.DependencyNotInstalled as err:
        if isinstance(entry_point, str) and entry_point.startswith(MUJOCO + "."):
            raise ValueError(f"{env_id!r} needs MuJoCo: pip install weakpg[mujoco] ({err})") from None
        raise ValueError(f"gymnasium could not create {env_id!r}: {err}") from None
    except ImportError as err:  # e.g. the mujoco-py ids (v2, v3), moved out of gymnasium
        raise ValueError(f"gymnasium could not create {env_id!r}: {err}") from None


def _check_wrappers(env: gymnasium.Env, name: str) -> None:
    extra = []
    while isinstance(env, gymnasium.Wrapper):
        if type(env).__name__ not in _MAKE_WRAPPERS:
            extra.append(type(env).__name__)
        env = env.env
    if extra:
        raise ValueError(
            f"{name} is wrapped in {', '.join(extra)}: the adapter simulates env.unwrapped and "
            f"would drop them; pass the env without them (only {', '.join(_MAKE_WRAPPERS)}, "
            "which gymnasium.make adds, are dropped on purpose: the process has no time limit)")


class GymnasiumEnvironment(Environment):
    """A gymnasium environment run by saving and restoring its state; see ``from_gymnasium``.

    ``step`` ignores its key: the supported families have deterministic transitions.
    Hashable by identity, like every weakpg environment, so it can be a static argument.
    Attributes as ``Environment``, plus the bounds of the spaces (``observation_low/high``,
    infinite for MuJoCo; ``action_low/high``, None for discrete actions) and
    ``max_episode_steps``, gymnasium's time limit for the task (None if it has none).
    """

    def __init__(self, env: gymnasium.Env):
        self.env_id = env.spec.id if env.spec is not None else type(env.unwrapped).__name__
        name = repr(self.env_id)
        _check_wrappers(env, name)
        self._simulator = host_simulator(env.unwrapped, name)
        action_space, observation_space = env.action_space, env.observation_space
        if not isinstance(observation_space, spaces.Box):
            raise ValueError(f"{name} must have a Box observation space, got {observation_space}")
        if isinstance(action_space, spaces.Discrete):
            self.action_shape, self.num_actions = (), int(action_space.n)
            self.action_low = self.action_high = None
            start = int(action_space.start)
            self._host_action = lambda a: int(a) + start
        elif isinstance(action_space, spaces.Box):
            self.action_shape, self.num_actions = tuple(action_space.shape), None
            self.action_low = jnp.asarray(action_space.low)
            self.action_high = jnp.asarray(action_space.high)
            self._host_action = functools.partial(np.asarray, dtype=action_space.dtype)
        else:
            raise ValueError(f"{name} must have a Box or Discrete action space, got {action_space}")
        self.observation_shape = tuple(observation_space.shape)
        self.observation_low = jnp.asarray(observation_space.low)
        self.observation_high = jnp.asarray(observation_space.high)
        # The task's time limit: it fixes what a reported "episode return" is (train.py);
        # the simulated process has none.
        self.max_episode_steps = env.spec.max_episode_steps if env.spec is not None else None
        # pure_callback may run on several runtime threads; the one host env must not.
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"from_gymnasium({self.env_id!r})"

    def _physics_spec(self) -> jax.ShapeDtypeStruct:
        return jax.ShapeDtypeStruct((2 * self._simulator.size,), jnp.uint32)

    def reset(self, key: Array) -> GymnasiumState:
        """s_0 from ``env.reset(seed=s)``, s a uint32 drawn from ``key``."""
        seed = jax.random.bits(key, (), jnp.uint32)
        float_dtype = jnp.result_type(float)
        physics, obs = jax.pure_callback(
            functools.partial(self._host_reset, float_dtype),
            (self._physics_spec(), jax.ShapeDtypeStruct(self.observation_shape, float_dtype)),
            seed, vmap_method="broadcast_all")
        return GymnasiumState(physics, obs, jnp.array(False))

    def step(self, key: Array, state: GymnasiumState, action: Array) -> tuple[GymnasiumState, Array]:
        """The env's own step from a restored ``state``; ``key`` is unused (deterministic)."""
        del key
        float_dtype = jnp.result_type(float)
        physics, obs, reward, terminated = jax.pure_callback(
            functools.partial(self._host_step, float_dtype),
            (self._physics_spec(), jax.ShapeDtypeStruct(self.observation_shape, float_dtype),
             jax.ShapeDtypeStruct((), float_dtype), jax.ShapeDtypeStruct((), jnp.bool_)),
            state.physics, state.observation, state.terminated, action,
            vmap_method="broadcast_all")
        return GymnasiumState(physics, obs, terminated), reward

    def observe(self, state: GymnasiumState) -> Array:
        return state.observation

    def _host_reset(self, float_dtype: np.dtype, seed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Reset one env per seed; ``seed`` has the (possibly empty) batch shape."""
        batch, count = seed.shape, seed.size
        physics = np.empty((count, self._simulator.size))
        obs = np.empty((count,) + self.observation_shape, float_dtype)
        with self._lock:
            for i, s in enumerate(np.ravel(seed)):
                obs[i] = self._simulator.reset(int(s), physics[i])
        return (physics.view(np.uint32).reshape(batch + (-1,)),
                obs.reshape(batch + self.observation_shape))

    def _host_step(self, float_dtype: np.dtype, physics: np.ndarray, observation: np.ndarray,
                   terminated: np.ndarray, action: np.ndarray) -> tuple[np.ndarray, ...]:
        """Step every non-terminal state of the batch; terminal ones stay, with reward 0."""
        batch, count = terminated.shape, terminated.size
        # A copy, so the float64 view is aligned and the env never holds JAX's buffer.
        states = np.array(physics).reshape(count, -1).view(np.float64)
        next_states = states.copy()
        obs = np.array(observation, float_dtype).reshape((count,) + self.observation_shape)
        reward = np.zeros(count, float_dtype)
        done = np.array(terminated).reshape(count)
        actions = np.asarray(action).reshape((count,) + self.action_shape)
        with self._lock:
            for i in np.flatnonzero(~done):
                obs[i], reward[i], done[i] = self._simulator.step(
                    states[i], self._host_action(actions[i]), next_states[i])
        return (next_states.view(np.uint32).reshape(batch + (-1,)),
                obs.reshape(batch + self.observation_shape), reward.reshape(batch),
                done.reshape(batch))


def from_gymnasium(env_or_id: str | gymnasium.Env, **make_kwargs: Any) -> GymnasiumEnvironment:
    """A gymnasium environment as a weakpg simulator, by saving and restoring its state.

    Every step restores the given state into one host instance of the env, calls the
    env's own ``step`` (its dynamics, reward and termination, in float64 on the host) and
    saves the result, so a state is a value that phantom roll-outs can branch from.
    Restored roll-outs are bit-identical to the original ones and to a plain gymnasium
    loop from the same seed. The env runs unwrapped: no time limit (``max_episode_steps``
    keeps gymnasium's, for reporting); a terminal state is absorbing with reward 0.
    Actions reach the env unclipped, as in a plain loop.

    Supported: classic control (Pendulum-v1, CartPole-v1, MountainCar-v0,
    MountainCarContinuous-v0, Acrobot-v1) and MuJoCo (any ``MujocoEnv``, e.g.
    InvertedPendulum-v5, HalfCheetah-v5, Hopper-v5, Ant-v5; needs ``weakpg[mujoco]``).

    Cost: the engine's batched step is one host call looping over its slots, so the
    fixed cost of a call is shared by more slots in wider batches (``num_samples``,
    ``num_lanes``). For float64, enable x64 globally
    (``jax.config.update("jax_enable_x64", True)``), not with the thread-local
    ``jax.enable_x64()`` context: JAX checks callback results on its own threads.

    Args:
      env_or_id: a gymnasium id ("Pendulum-v1", "HalfCheetah-v5") or an env instance; the
        adapter owns the instance from then on (it resets and steps it at will).
      **make_kwargs: keyword arguments of ``gymnasium.make`` (with an id only), e.g.
        ``ctrl_cost_weight=0.2``.

    Returns:
      A ``GymnasiumEnvironment`` that works with ``estimate_gradient``, ``train`` and the
      CLI (``--env gymnasium:<ID>``) like any weakpg environment.

    Raises:
      ValueError: unknown id; MuJoCo id without mujoco installed; an env whose state
        cannot be saved and restored (neither classic control nor MuJoCo: toy_text,
        Box2D, ...); a wrapper other than those ``gymnasium.make`` adds; observations
        that are not a Box, or actions neither Box nor Discrete.
    """
    if isinstance(env_or_id, str):
        return GymnasiumEnvironment(_make(env_or_id, make_kwargs))
    if not isinstance(env_or_id, gymnasium.Env):
        raise ValueError(f"env_or_id must be a gymnasium id or a gymnasium.Env, got {env_or_id!r}")
    if make_kwargs:
        raise ValueError(
            f"make_kwargs ({', '.join(make_kwargs)}) apply to an id only, got an env instance")
    return GymnasiumEnvironment(env_or_id)

