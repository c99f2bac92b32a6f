"""The host side of ``gymnasium_envs``: a gymnasium env whose state is saved and restored.

A ``HostSimulator`` wraps one gymnasium env (unwrapped) and turns its hidden state into a
float64 vector: ``save_reset``/``save_step`` write it, ``restore`` puts the env back in
it, so ``step(vector, action, out)`` is a pure function of the vector. ``host_simulator``
picks the family of an env; ``GymnasiumEnvironment`` carries the vectors through the
engine and calls these from ``jax.pure_callback``.

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
"""

from __future__ import annotations

import abc
from typing import Any

import gymnasium
import numpy as np

SUPPORTED = ("classic control (CartPole, Pendulum, MountainCar, MountainCarContinuous, Acrobot) "
             "and MuJoCo (any gymnasium.envs.mujoco.MujocoEnv: InvertedPendulum, HalfCheetah, "
             "Hopper, ...)")
CLASSIC_CONTROL = "gymnasium.envs.classic_control"
MUJOCO = "gymnasium.envs.mujoco"
_STATE_DTYPES = (np.float64, np.float32)


class HostSimulator(abc.ABC):
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


class ClassicControl(HostSimulator):
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


class Mujoco(HostSimulator):
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


def unsupported(name: str, why: str) -> ValueError:
    """The error for an env ``name`` that no family here can save and restore, and ``why``."""
    return ValueError(f"cannot run {name} from a saved state: {why}. Supported: {SUPPORTED}")


def host_simulator(env: gymnasium.Env, name: str) -> HostSimulator:
    """The family of ``env`` (unwrapped), or a ValueError saying why it has none."""
    if _derives_from(env, MUJOCO, "MujocoEnv"):
        return Mujoco(env)
    if _derives_from(env, CLASSIC_CONTROL):
        return ClassicControl(env)
    raise unsupported(
        name, f"{type(env).__module__}.{type(env).__name__} has no state the adapter can read "
              "and restore")
