"""Finite (tabular) MDP, and its exact values for the tabular softmax policy.

With S states, A actions, transitions P[s, a, s'], rewards r[s, a], initial
distribution rho and the policy pi(a | s) = softmax(logits[s])_a:

    P_pi[s, s'] = sum_a pi(a | s) P[s, a, s'],   r_pi[s] = sum_a pi(a | s) r[s, a],
    V = (I - gamma P_pi)^{-1} r_pi,   Q = r + gamma P V,   J = rho^T V.

The gradient of J is taken by ``jax.grad`` through the linear solve, so it is exact; it
equals the policy gradient theorem (Sutton et al. 2000)
dJ = 1 / (1 - gamma) sum_s d_gamma(s) sum_a grad pi(a | s) Q(s, a), with
d_gamma = (1 - gamma) rho^T (I - gamma P_pi)^{-1}.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from weakpg._src import validation
from weakpg._src.envs.base import Array, Environment
from weakpg._src.validation import as_float

_SUM_TOL = 1e-6




def _check_probability_rows(name: str, value: Any) -> None:
    """Raise unless every vector along the last axis is a probability vector.

    Entries must be >= 0 and each vector must sum to 1 within 1e-6; the error names
    the first bad vector by its index.
    """
    if not validation.is_concrete(value):
        return
    validation.check_finite(name, value)
    x = np.asarray(value, dtype=np.float64)
    sums = x.sum(axis=-1)
    bad = (x < 0).any(axis=-1) | (np.abs(sums - 1.0) > _SUM_TOL)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        row = f"{name}[{', '.join(map(str, index))}]" if index else name
        raise ValueError(
                f"{row} must be a probability vector (entries >= 0, summing to 1 within "
                f"{_SUM_TOL}), got {np.array2string(x[index], threshold=8, precision=4)} "
                f"with sum {sums[index]:.8g}")



# The exact quantities are jitted functions of the arrays, so MDPs of one size share one
# compilation instead of dispatching op by op.
@jax.jit
def _v(transitions: Array, rewards: Array, logits: Array, gamma: Array) -> Array:
    pi = jax.nn.softmax(logits, axis=-1)
    p_pi = jnp.einsum("sa,sat->st", pi, transitions)
    r_pi = jnp.sum(pi * rewards, axis=-1)
    return jnp.linalg.solve(jnp.eye(p_pi.shape[0], dtype=p_pi.dtype) - gamma * p_pi, r_pi)


@jax.jit
def _q(transitions: Array, rewards: Array, logits: Array, gamma: Array) -> Array:
    return rewards + gamma * transitions @ _v(transitions, rewards, logits, gamma)


@jax.jit
def _value(transitions: Array, rewards: Array, initial: Array, logits: Array, gamma: Array) -> Array:
    return initial @ _v(transitions, rewards, logits, gamma)


_gradient = jax.jit(jax.grad(_value, argnums=3))  # d _value / d logits


class FiniteMDP(Environment):
    """The tabular MDP of the module docstring; the state is an int32 scalar.

    Args:
      transitions: (S, A, S); ``transitions[s, a]`` is the law of s' given (s, a).
      rewards: (S, A), r(s, a).
      initial: (S,), the law of s_0.

    The object is static: ``jax.jit`` and ``jax.vmap`` close over its arrays.
    """

    def __init__(self, transitions: Any, rewards: Any, initial: Any):
        shape = np.shape(transitions)
        if len(shape) != 3 or shape[0] != shape[2] or shape[0] < 1 or shape[1] < 1:
            raise ValueError(
                    f"transitions must have shape (S, A, S) with S, A >= 1, got shape {shape}")
        num_states, num_actions = shape[:2]
        validation.check_shape("rewards", rewards, (num_states, num_actions))
        validation.check_shape("initial", initial, (num_states,))
        _check_probability_rows("transitions", transitions)
        _check_probability_rows("initial", initial)
        validation.check_finite("rewards", rewards)
        self.transitions = as_float(transitions)
        self.rewards = as_float(rewards)
        self.initial = as_float(initial)
        self.num_states, self.num_actions = num_states, num_actions
        self.observation_shape = ()
        self.action_shape = ()
        # log 0 = -inf: a zero-probability outcome is never drawn by jax.random.categorical.
        self._log_transitions = jnp.log(self.transitions)
        self._log_initial = jnp.log(self.initial)

    @classmethod
    def random(cls, key: Array, num_states: int, num_actions: int) -> FiniteMDP:
        """A random MDP: Dirichlet(1, ..., 1) transitions and initial law, rewards ~ U[0, 1].

        Dirichlet(1, ..., 1) is drawn as i.i.d. Exp(1) variables over their sum, which
        is the same law and compiles faster than ``jax.random.dirichlet``.
        """
        num_states = validation.check_positive_int("num_states", num_states)
        num_actions = validation.check_positive_int("num_actions", num_actions)
        k_transitions, k_rewards, k_initial = jax.random.split(key, 3)

        def flat_dirichlet(k: Array, shape: tuple[int, ...]) -> Array:
            x = jax.random.exponential(k, shape + (num_states,))
            return x / x.sum(axis=-1, keepdims=True)

        return cls(
                flat_dirichlet(k_transitions, (num_states, num_actions)),
                jax.random.uniform(k_rewards, (num_states, num_actions)),
                flat_dirichlet(k_initial, ()))

    def __repr__(self) -> str:
        return f"FiniteMDP(num_states={self.num_states}, num_actions={self.num_actions})"

    def reset(self, key: Array) -> Array:
        """s_0 ~ initial, an int32 scalar."""
        return jax.random.categorical(key, self._log_initial).astype(jnp.int32)

    def step(self, key: Array, state: Array, action: Array) -> tuple[Array, Array]:
        """(s' ~ transitions[s, a], rewards[s, a])."""
        next_state = jax.random.categorical(key, self._log_transitions[state, action])
        return next_state.astype(jnp.int32), self.rewards[state, action]

    def observe(self, state: Array) -> Array:
        return state

    def exact_v(self, logits: Any, gamma: Any) -> Array:
        """V = (I - gamma P_pi)^{-1} r_pi, shape (S,), for logits of shape (S, A)."""
        logits, gamma = self._check_policy(logits, gamma)
        return _v(self.transitions, self.rewards, logits, gamma)

    def exact_q(self, logits: Any, gamma: Any) -> Array:
        """Q = r + gamma P V, shape (S, A)."""
        logits, gamma = self._check_policy(logits, gamma)
        return _q(self.transitions, self.rewards, logits, gamma)

    def exact_value(self, logits: Any, gamma: Any) -> Array:
        """J = initial^T V, a scalar."""
        logits, gamma = self._check_policy(logits, gamma)
        return _value(self.transitions, self.rewards, self.initial, logits, gamma)

    def exact_gradient(self, logits: Any, gamma: Any) -> dict[str, Array]:
        """{"logits": dJ/d logits}, shape (S, A), by ``jax.grad`` through the linear solve."""
        logits, gamma = self._check_policy(logits, gamma)
        return {"logits": _gradient(self.transitions, self.rewards, self.initial, logits, gamma)}

    def _check_policy(self, logits: Any, gamma: Any) -> tuple[Array, Array]:
        validation.check_shape("logits", logits, (self.num_states, self.num_actions))
        validation.check_shape("gamma", gamma, ())
        validation.check_finite("logits", logits)
        validation.check_array("gamma", gamma, low=0.0, high=1.0, low_open=True, high_open=True)
        return as_float(logits), as_float(gamma)
