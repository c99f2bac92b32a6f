"""The common evaluation of ``bench.peers`` and the clock that leaves it out.

``common_episode_return`` is ``weakpg evaluate``'s protocol on gymnasium's Pendulum-v1
(its registered 200-step time limit): episode i of n is reset with ``seed + i`` and run
with the deterministic action ``act(obs)``; the score is the undiscounted return, its
mean over the n episodes and the standard error of that mean. ``Trace`` records what a
method has learned at its evaluation points on a clock that stops while it evaluates.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

ENV_ID = "Pendulum-v1"
THRESHOLDS = (-170.0, -150.0)
Act = Callable[[np.ndarray], Any]  # (n, obs_dim) observations -> (n, *action_shape) actions


@functools.lru_cache(maxsize=4)
def _envs(env_id: str, episodes: int) -> tuple[Any, ...]:
    import gymnasium

    return tuple(gymnasium.make(env_id) for _ in range(episodes))


def common_episode_return(act: Act, episodes: int = 100, seed: int = 0,
                          env_id: str = ENV_ID) -> tuple[float, float, np.ndarray]:
    """Mean and standard error of the undiscounted return over ``episodes`` seeded episodes.

    The episodes run in lock step: one call ``act(obs)`` per time step on the (n, obs_dim)
    observations of the episodes still running. Actions are clipped to the action space's
    bounds, as gymnasium's Pendulum does itself. Returns (mean, stderr, returns (n,)).
    """
    if not isinstance(episodes, int) or episodes < 2:
        raise ValueError(f"episodes must be an int >= 2 (a standard error needs two), got {episodes!r}")
    envs = _envs(env_id, episodes)
    space = envs[0].action_space
    obs = np.stack([env.reset(seed=seed + i)[0] for i, env in enumerate(envs)])
    returns, running = np.zeros(episodes), np.ones(episodes, bool)
    while running.any():
        live = np.flatnonzero(running)
        actions = np.asarray(act(obs[live]), dtype=np.float64).reshape(len(live), *space.shape)
        if not np.isfinite(actions).all():
            raise ValueError(f"act returned a non-finite action: {actions[~np.isfinite(actions)][:3]}")
        actions = np.clip(actions, space.low, space.high).astype(space.dtype)
        for i, action in zip(live, actions):
            obs[i], reward, terminated, truncated, _ = envs[i].step(action)
            returns[i] += reward
            running[i] = not (terminated or truncated)
    return float(returns.mean()), float(returns.std(ddof=1) / math.sqrt(episodes)), returns


class Trace:
    """Evaluation points on a training clock that excludes the evaluations.

    The clock starts when the ``Trace`` is made; ``evaluate`` stops it, scores ``act`` with
    ``common_episode_return`` and records (training seconds, env steps, mean, stderr).
    """

    def __init__(self, episodes: int = 100):
        self.episodes = episodes
        self.points: list[dict[str, float]] = []
        self.eval_seconds = 0.0
        self._start = time.perf_counter()

    def seconds(self) -> float:
        """Seconds since the start, less the time spent evaluating."""
        return time.perf_counter() - self._start - self.eval_seconds

    def evaluate(self, act: Act, env_steps: int) -> float:
        seconds = self.seconds()
        begin = time.perf_counter()
        mean, stderr, _ = common_episode_return(act, self.episodes)
        self.eval_seconds += time.perf_counter() - begin
        self.points.append({"seconds": seconds, "env_steps": int(env_steps), "mean": mean, "stderr": stderr})
        return mean

    def summary(self) -> dict[str, Any]:
        """The points, the first reaching each threshold (None if none did) and the last."""
        first = {}
        for threshold in THRESHOLDS:
            first[str(threshold)] = next((p for p in self.points if p["mean"] >= threshold), None)
        return {"points": self.points, "first": first, "final": self.points[-1],
                "eval_seconds": self.eval_seconds}
