"""The simulator interface: explicit, copyable state in the gymnax convention.

A state is a pytree of arrays. Because the state is a value, not hidden inside an
object, a roll-out can be started from a copy of it: this is what phantom roll-outs
(two or more branches from one simulator state) need. Batches are made with
``jax.vmap``; every method describes one unbatched environment.
"""

from __future__ import annotations

import abc
from typing import Any

import jax

Array = jax.Array
State = Any


class Environment(abc.ABC):
    """A Markov decision process with an explicit state.

    Attributes:
      observation_shape: shape of ``observe(state)``.
      action_shape: shape of one action; ``()`` for discrete actions.
      num_actions: number of actions for a discrete action space, else ``None``.
      max_episode_steps: the task's standard time limit (Pendulum 200, CartPole 500), used
        only for the reported episode return; the simulator itself has none. ``None``
        when the task has no standard length.
    """

    observation_shape: tuple[int, ...]
    action_shape: tuple[int, ...]
    num_actions: int | None = None
    max_episode_steps: int | None = None

    @property
    def discrete(self) -> bool:
        """True when actions are integers in {0, ..., num_actions - 1}."""
        return self.num_actions is not None

    @abc.abstractmethod
    def reset(self, key: Array) -> State:
        """Draw s_0 from the initial distribution."""

    @abc.abstractmethod
    def step(self, key: Array, state: State, action: Array) -> tuple[State, Array]:
        """Take ``action`` in ``state``: returns (s_{t+1}, r(s_t, a_t)).

        There is no automatic reset and no time limit: the process is the infinite-horizon
        one of the paper. A terminal state of an episodic simulator is absorbing with
        reward 0.
        """

    @abc.abstractmethod
    def observe(self, state: State) -> Array:
        """The observation the policy sees in ``state``."""
