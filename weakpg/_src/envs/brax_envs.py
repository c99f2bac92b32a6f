"""Brax environments as weakpg simulators: ``make("brax:<name>", backend=...)``.

Brax's ``State`` is the copyable state. Phantom roll-outs need the bare dynamics, so the
environment is used without Brax's wrappers: no automatic reset and no time limit. Its
``done`` flag marks a terminal state (hopper or walker2d falling, the pendulum tipping
over), which is absorbing with reward 0: once ``done``, the state no longer changes.
Actions live in [-1, 1]^n, as Brax's trainers use them; the environment maps them to
its actuators (which clip to their control range). The reported episode return is over
1000 steps, the length of Brax's own training episodes.

Backends: "spring" (the default) is the cheapest to compile and run, "positional" and
"generalized" (Brax's own default) are more faithful, "mjx" runs MuJoCo's JAX port.
Brax's swimmer has only "generalized", whose fluid model brax 0.14.2 writes with
``jnp.clip(a_min=...)``, which JAX 0.10 no longer accepts: making it raises ValueError.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from typing import Any

import jax
import jax.numpy as jnp

from weakpg._src import validation
from weakpg._src.envs.base import Array, Environment

BRAX_BACKENDS = ("spring", "positional", "generalized", "mjx")
_SWIMMER_BACKENDS = ("generalized",)
BRAX_NAMES = ("inverted_pendulum", "inverted_double_pendulum", "reacher", "swimmer", "hopper",
              "walker2d", "halfcheetah", "ant", "humanoid")
DEFAULT_BACKEND = "spring"
EPISODE_STEPS = 1000


def brax_envs() -> Any:
    """``brax.envs``, or ValueError naming the extra.

    MuJoCo's mjx, which Brax imports, prints two lines to stdout when NVIDIA's warp is
    not installed; they are kept out of weakpg's output.
    """
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            from brax import envs
    except ImportError:
        raise ValueError("brax environments need Brax: pip install 'weakpg[brax]'") from None
    return envs


class BraxEnvironment(Environment):
    """Brax's environment ``name`` on ``backend``, run without reset or time limit."""

    def __init__(self, name: str, *, backend: str = DEFAULT_BACKEND):
        validation.check_choice("brax environment", name, BRAX_NAMES)
        validation.check_choice(f"backend of brax:{name}", backend,
                                _SWIMMER_BACKENDS if name == "swimmer" else BRAX_BACKENDS)
        self.name, self.backend = name, backend
        with warnings.catch_warnings():  # Brax's notice, on every model load, that it is unmaintained
            warnings.filterwarnings("ignore", "Brax System", UserWarning)
            self._env = brax_envs().get_environment(name, backend=backend)
        # Jitted once: a training program traces the dynamics in several places (occupancy and
        # phantom roll-outs, evaluation); JAX traces a jitted function once per input shape
        # and reuses it, which saves most of the seconds Brax's Python takes to trace.
        self._reset, self._step = jax.jit(self._env.reset), jax.jit(self._env.step)
        self.action_shape = (int(self._env.action_size),)
        self.action_low = -jnp.ones(self.action_shape)
        self.action_high = jnp.ones(self.action_shape)
        self.max_episode_steps = EPISODE_STEPS
        key = jax.random.key(0)
        state = jax.eval_shape(self.reset, key)
        self.observation_shape = tuple(state.obs.shape)
        try:  # a trace of one step (no compilation): Brax code this JAX cannot run fails here
            jax.eval_shape(self.step, key, state, jnp.zeros(self.action_shape))
        except (TypeError, AttributeError, ValueError) as error:
            raise ValueError(f"brax:{name} on backend {backend!r} does not run with JAX "
                             f"{jax.__version__}: {type(error).__name__}: {error}") from None

    def __repr__(self) -> str:
        return f"BraxEnvironment({self.name!r}, backend={self.backend!r})"

    def reset(self, key: Array) -> Any:
        state = self._reset(key)
        return state.replace(reward=jnp.zeros((), state.obs.dtype), done=jnp.zeros((), state.obs.dtype))

    def step(self, key: Array, state: Any, action: Array) -> tuple[Any, Array]:
        del key  # Brax's dynamics are deterministic
        new = self._step(state, action)
        absorbed = state.done > 0
        # jnp.where also gives every leaf the dtype of the reset state (Brax writes Python
        # floats into some fields, e.g. inverted_pendulum's reward).
        new = jax.tree.map(lambda old, x: jnp.where(absorbed, old, x).astype(jnp.result_type(old)),
                           state, new)
        return new, jnp.where(absorbed, 0.0, new.reward).astype(new.reward.dtype)

    def observe(self, state: Any) -> Array:
        return state.obs
