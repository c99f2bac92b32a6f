"""Real episodes of a trained policy: gymnasium's, or the JAX environment's own.

Training runs the simulator without time limit (the paper's infinite-horizon problem);
an episode here is the task's: it starts from a reset and ends at termination or at the
environment's registered time limit (Pendulum-v1 200 steps, CartPole-v1 500). Episode i of
a protocol with seed s starts from ``reset(seed=s + i)``:
  - ``gymnasium:<ID>``: ``gymnasium.make(ID)`` with its ``TimeLimit``, ``env.reset(seed=s + i)``;
  - a JAX environment id (``Pendulum-v1``): its ``reset(jax.random.key(s + i))``, then its
    steps up to ``max_episode_steps`` (a terminal state is absorbing with reward 0).
The gymnax ids (``TWINS``) have a gymnasium twin with the same dynamics, observations and
rewards (tests/test_episodes.py), so their runs are evaluated on gymnasium by default,
where other libraries' numbers come from. With ``stochastic`` the action at step t is
``agent.act(obs, fold_in(key(s + i), t))``, else the mean or most likely action.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from weakpg._src.agent import Agent, policy_action
from weakpg._src.envs.gymnax_envs import GYMNAX_IDS
from weakpg._src.envs.registry import GYMNASIUM_PREFIX

TWINS = GYMNAX_IDS  # JAX ids whose gymnasium namesake has the same dynamics and observations


def episode_env_id(run_env_id: str | None, env_id: str | None = None) -> str:
    """The id of the episodes: ``env_id`` when given, else the run's (its twin when it has one)."""
    if env_id is not None:
        return env_id
    if run_env_id is None:
        raise ValueError("the run has no config.json naming its environment: give the environment id")
    return GYMNASIUM_PREFIX + run_env_id if run_env_id in TWINS else run_env_id


def make_gymnasium(env_id: str, render_mode: str | None = None) -> Any:
    """``gymnasium.make(env_id)`` with its registered time limit; ValueError if it has none."""
    import gymnasium

    try:
        spec = gymnasium.spec(env_id)
    except gymnasium.error.Error as error:
        raise ValueError(f"unknown gymnasium environment id {env_id!r}: {error}") from None
    if spec.max_episode_steps is None:
        raise ValueError(f"gymnasium:{env_id} has no registered time limit, so its episodes need not end")
    try:
        return gymnasium.make(env_id, render_mode=render_mode)
    except gymnasium.error.DependencyNotInstalled as error:
        extra = "render" if render_mode is not None else "mujoco"
        raise ValueError(f"gymnasium:{env_id} needs a package that is not installed: pip install "
                         f"'weakpg[{extra}]' ({error})") from None


def _interface(env: Any) -> tuple[tuple[int, ...], str]:
    """The observation shape of a gymnasium or weakpg environment, and its actions in words."""
    if hasattr(env, "observation_space"):  # gymnasium
        space = env.action_space
        n = getattr(space, "n", None)
        shape = tuple(space.shape)
        return tuple(env.observation_space.shape), f"{int(n)} discrete" if n is not None else f"shape {shape}"
    actions = f"{env.num_actions} discrete" if env.discrete else f"shape {tuple(env.action_shape)}"
    return tuple(env.observation_shape), actions


def check_fits(agent: Agent, env: Any, what: str) -> None:
    """ValueError unless the policy reads the observations of ``env`` (gymnasium's or weakpg's)
    and takes its actions."""
    (obs, actions), (want_obs, want_actions) = _interface(env), _interface(agent.env)
    if obs != want_obs:
        raise ValueError(f"{what} has observations of shape {obs}; the policy was trained on {want_obs}")
    if actions != want_actions:
        raise ValueError(f"{what} takes actions of {actions}; the policy gives actions of {want_actions}")


def gymnasium_episode(agent: Agent, env: Any, seed: int, *, stochastic: bool = False,
                      on_step: Callable[[], None] | None = None) -> tuple[float, int]:
    """One episode of ``env`` from ``reset(seed=seed)``: (undiscounted return, steps).

    ``on_step`` runs after the reset and after every step (rendering reads the frame then).
    """
    obs, _ = env.reset(seed=seed)
    key = jax.random.key(seed)
    total, steps, done = 0.0, 0, False
    if on_step is not None:
        on_step()
    while not done:
        action = agent.act(obs, jax.random.fold_in(key, steps) if stochastic else None)
        obs, reward, terminated, truncated, _ = env.step(action)
        total += float(reward)
        steps += 1
        done = terminated or truncated
        if on_step is not None:
            on_step()
    return total, steps


def jax_episodes(agent: Agent, env: Any, seeds: np.ndarray, *,
                 stochastic: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Episodes of a weakpg JAX environment, one per seed: (returns, steps), each (episodes,).

    Every episode runs ``env.max_episode_steps`` steps; after a terminal state (absorbing,
    reward 0) nothing is added, and its length is the step that reached it.
    """
    if env.max_episode_steps is None:
        raise ValueError(f"{env!r} has no registered time limit, so its episodes need not end")
    policy, horizon = agent.policy, int(env.max_episode_steps)

    def episode(seed: jax.Array) -> tuple[jax.Array, jax.Array]:
        reset_key, run_key = jax.random.split(jax.random.key(seed))

        def body(carry, t):
            state, total, length = carry
            env_key, act_key = jax.random.split(jax.random.fold_in(run_key, t))
            noise = policy.noise(act_key) if stochastic else None
            action = policy_action(policy, agent.params, env.observe(state), noise)
            state, reward = env.step(env_key, state, action)
            ended = jnp.asarray(getattr(state, "terminated", False))
            return (state, total + reward, jnp.where((length == 0) & ended, t + 1, length)), None

        start = (env.reset(reset_key), jnp.zeros(()), jnp.zeros((), jnp.int32))
        (_, total, length), _ = jax.lax.scan(body, start, jnp.arange(horizon))
        return total, jnp.where(length == 0, horizon, length)

    returns, lengths = jax.jit(jax.vmap(episode))(jnp.asarray(seeds, jnp.uint32))
    return np.asarray(returns, np.float64), np.asarray(lengths)
