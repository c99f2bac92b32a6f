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

Families, and what their state vector holds:
  classic control (CartPole, Pendulum, MountainCar, MountainCarContinuous, Acrobot):
    ``env.unwrapped.state`` and its dtype. The dtype matters: MountainCarContinuous keeps
    float64 after ``reset`` and float32 after ``step``, and its next step computes in
    that dtype. CartPole's ``steps_beyond_terminated`` is cleared on restore, since a
    restored state is never terminal (terminal states are not stepped again).
  MuJoCo (any ``gymnasium.envs.mujoco.MujocoEnv``): ``mj_getState`` with
    ``mjSTATE_INTEGRATION``, everything ``mj_step`` reads. qpos, qvel, act and time
    (``mjSTATE_FULLPHYSICS``) are not enough: the constraint solver starts from
    ``qacc_warmstart``, and without it Hopper-v5 and Walker2d-v5 drift by 1e-14 to 1e-13
    within 50 steps. ``mjSTATE_INTEGRATION`` adds the warm start, ctrl and the inputs a
    custom env may set (applied forces, mocap bodies, equality switches, userdata).
    Restoring that state is still not enough to reproduce a plain gymnasium loop:
    ``mj_step`` leaves the derived quantities (body positions ``xpos``, ``xipos``) at
    the last substep's start, and Ant-v5 and Humanoid-v5 read them before simulating to
    compute their forward velocity. So after a step the adapter saves the state at the
    start of the last substep (recorded inside ``MujocoEnv.do_simulation``), and a
    restore replays that one substep: the env's ``mjData`` is then exactly what the
    plain loop would hold (restoring with ``mj_forward`` instead would make Ant's forward
    reward measure 4 of its 5 substeps). The replay costs one substep per step (HalfCheetah
    simulates 5). After a reset, the state itself is saved, and a restore runs
    ``mj_forward`` as gymnasium's ``set_state`` does.
Other environments (toy_text, Box2D, anything else) are refused with a ValueError: their
state cannot be read and restored through a documented interface.

Actions reach the env as a plain gymnasium loop would pass them: in the action space's
dtype, unclipped (MuJoCo clamps ctrl to its range, while control costs see the raw
action; ``squash="tanh"`` keeps a Gaussian policy inside the bounds). Observations and
rewards come back in the default float type of the trace (float32, or float64 under a
global x64 flag; JAX checks callback results on its runtime threads, where the
thread-local ``jax.enable_x64()`` context is off).
"""

from __future__ import annotations

import abc
import functools
import threading
from typing import Any, NamedTuple

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
from gymnasium import spaces

from weakpg._src.envs.base import Array, Environment

SUPPORTED = ("classic control (CartPole, Pendulum, MountainCar, MountainCarContinuous, Acrobot) "
             "and MuJoCo (any gymnasium.envs.mujoco.MujocoEnv: InvertedPendulum, HalfCheetah, "
             "Hopper, ...)")
_CLASSIC_CONTROL = "gymnasium.envs.classic_control"
_MUJOCO = "gymnasium.envs.mujoco"
# Wrappers gymnasium.make adds; they only enforce the API and the time limit, which the
# adapter drops on purpose. Any other wrapper changes the process and would be lost.
_MAKE_WRAPPERS = ("TimeLimit", "OrderEnforcing", "PassiveEnvChecker")
_STATE_DTYPES = (np.float64, np.float32)


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


class _HostSimulator(abc.ABC):
    """One gymnasium env whose state is saved to and restored from a float64 vector.

    Saves write into a row of the caller's batch buffer: the host loop allocates nothing
    per step.
    """

    size: int  # length of the state vector

    def __init__(self, env: gymnasium.Env):
        self.env = env

    @abc.abstractmethod
    def save_reset(self, out: np.ndarray) -> None:
        """Write the state vector right after ``env.reset`` into ``out``."""

    @abc.abstractmethod
    def save_step(self, out: np.ndarray) -> None:
        """Write the state vector right after ``env.step`` into ``out``."""

    @abc.abstractmethod
    def restore(self, vector: np.ndarray) -> None:
        """Put the env in the state ``vector`` describes, ready for ``env.step``."""

    def reset(self, seed: int, out: np.ndarray) -> Any:
        """Reset with this seed; the state vector goes to ``out``, the observation is returned."""
        obs, _ = self.env.reset(seed=seed)
        self.save_reset(out)
        return obs

    def step(self, vector: np.ndarray, action: Any, out: np.ndarray) -> tuple[Any, float, bool]:
        """Step from ``vector``; the next state vector goes to ``out``."""
        self.restore(vector)
        obs, reward, terminated, _, _ = self.env.step(action)
        self.save_step(out)
        return obs, reward, terminated


class _ClassicControl(_HostSimulator):
    """State vector: [dtype index, *env.state]; see the module docstring."""

    def __init__(self, env: gymnasium.Env):
        super().__init__(env)
        env.reset(seed=0)  # classic control envs have no state before their first reset
        self.size = 1 + np.asarray(env.state).size

    def save_reset(self, out: np.ndarray) -> None:
        state = np.asarray(self.env.state)
        out[0] = _STATE_DTYPES.index(state.dtype.type)
        out[1:] = state

    save_step = save_reset

    def restore(self, vector: np.ndarray) -> None:
        self.env.state = vector[1:].astype(_STATE_DTYPES[int(vector[0])])
        if hasattr(self.env, "steps_beyond_terminated"):
            self.env.steps_beyond_terminated = None


class _Mujoco(_HostSimulator):
    """State vector: [replay flag, *mj_getState(mjSTATE_INTEGRATION)]; see the module docstring.

    Flag 0: the state itself (after a reset), restored with ``mj_forward``. Flag 1: the
    state at the start of the last substep, restored by replaying that substep.
    """

    def __init__(self, env: gymnasium.Env):
        super().__init__(env)
        import mujoco  # importable whenever a MujocoEnv exists

        self._mujoco = mujoco
        self._spec = mujoco.mjtState.mjSTATE_INTEGRATION
        self.size = 1 + mujoco.mj_stateSize(env.model, self._spec)
        self._last_substep = np.empty(self.size - 1)
        self._recorded = False
        simulate = env.do_simulation

        def do_simulation(ctrl: Any, n_frames: int) -> None:
            # Splitting n frames into n - 1 and 1 changes nothing: mj_step(nstep=n) is n
            # single steps, and mj_rnePostConstraint writes no state.
            if n_frames > 1:
                simulate(ctrl, n_frames - 1)
            self._get(self._last_substep)
            self._recorded = True
            simulate(ctrl, 1)

        env.do_simulation = do_simulation

    def _get(self, out: np.ndarray) -> None:
        self._mujoco.mj_getState(self.env.model, self.env.data, out, self._spec)

    def save_reset(self, out: np.ndarray) -> None:
        out[0] = 0.0
        self._get(out[1:])

    def save_step(self, out: np.ndarray) -> None:
        if not self._recorded:
            raise RuntimeError(
                f"{type(self.env).__name__}.step did not call MujocoEnv.do_simulation, so the "
                "state before its last substep was not recorded and the step cannot be restored")
        out[0] = 1.0
        out[1:] = self._last_substep

    def restore(self, vector: np.ndarray) -> None:
        mujoco, model, data = self._mujoco, self.env.model, self.env.data
        self._recorded = False
        mujoco.mj_setState(model, data, vector[1:], self._spec)
        if vector[0] == 0.0:
            mujoco.mj_forward(model, data)
        else:
            mujoco.mj_step(model, data)
            mujoco.mj_rnePostConstraint(model, data)


def _derives_from(env: gymnasium.Env, package: str, name: str | None = None) -> bool:
    """True when the env's class or a base class lives in ``package`` (and is called ``name``).

    Checked by name, so that recognising a MuJoCo env never imports mujoco.
    """
    return any(cls.__module__.startswith(package + ".") and name in (None, cls.__name__)
               for cls in type(env).__mro__)


def _unsupported(name: str, why: str) -> ValueError:
    return ValueError(f"cannot run {name} from a saved state: {why}. Supported: {SUPPORTED}")


def _host_simulator(env: gymnasium.Env, name: str) -> _HostSimulator:
    """The family of ``env`` (unwrapped), or a ValueError saying why it has none."""
    if _derives_from(env, _MUJOCO, "MujocoEnv"):
        return _Mujoco(env)
    if _derives_from(env, _CLASSIC_CONTROL):
        return _ClassicControl(env)
    raise _unsupported(
        name, f"{type(env).__module__}.{type(env).__name__} has no state the adapter can read "
              "and restore")


def _make(env_id: str, make_kwargs: dict[str, Any]) -> gymnasium.Env:
    """``gymnasium.make(env_id)``, with errors that say what to do."""
    try:
        entry_point = gymnasium.spec(env_id).entry_point
    except gymnasium.error.Error as err:
        raise ValueError(f"unknown gymnasium environment id {env_id!r}: {err}") from None
    # Refuse gymnasium's other families before making them: creating a Box2D env without
    # box2d installed would fail with an install hint that leads nowhere.
    if (isinstance(entry_point, str) and entry_point.startswith("gymnasium.envs.")
            and not entry_point.startswith((_CLASSIC_CONTROL + ".", _MUJOCO + "."))):
        raise _unsupported(repr(env_id), f"its family ({entry_point.split(':')[0]}) has no state "
                                         "the adapter can read and restore")
    try:
        return gymnasium.make(env_id, **make_kwargs)
    except gymnasium.error.DependencyNotInstalled as err:
        if isinstance(entry_point, str) and entry_point.startswith(_MUJOCO + "."):
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
        self._simulator = _host_simulator(env.unwrapped, name)
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

