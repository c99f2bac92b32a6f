"""Brax's own PPO (``brax.training.agents.ppo``) as the Brax studies' reference learner.

``train_ppo`` runs ``ppo.train`` on the same Brax environment and backend as the weakpg
methods, with Brax's published settings for the task scaled as ``PPOSettings`` says,
and returns one row per evaluation: the env steps so far, the wall-clock since the call
began (compiling and evaluating included, as for weakpg's runs) and Brax's evaluation,
the mean 1000-step return of the deterministic (mean) action over ``eval_episodes``
episodes, which is the quantity weakpg's evaluations report.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Iterator
from typing import Any

from weakpg._src.app.studies.brax_setups import BraxStudy
from weakpg._src.envs.brax_envs import EPISODE_STEPS, brax_envs

PPO_FIELDS = ("iteration", "env_steps", "wall_seconds", "episode_return")


@contextlib.contextmanager
def _jax_for_brax() -> Iterator[None]:
    """Restore ``jax.device_put_replicated`` (gone in JAX 0.10) while brax 0.14.2's PPO runs.

    Brax places its training state on each local device with it: the value stacked once
    per device along a new leading axis, that axis split across the devices (JAX's
    documented replacement).
    """
    import jax
    import jax.numpy as jnp
    import numpy as np

    def device_put_replicated(x: Any, devices: list[Any]) -> Any:
        stacked = jax.tree.map(lambda leaf: jnp.stack([jnp.asarray(leaf)] * len(devices)), x)
        # PPO's pmap axis name: its training steps return arrays on this mesh, so every
        # evaluation sees the parameters with one sharding (another name recompiles it).
        mesh = jax.sharding.Mesh(np.array(devices), ("i",))
        sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("i"))
        return jax.device_put(stacked, sharding)

    had = "device_put_replicated" in vars(jax)
    old = vars(jax).get("device_put_replicated")
    jax.device_put_replicated = device_put_replicated
    try:
        yield
    finally:
        if had:
            jax.device_put_replicated = old
        else:
            del jax.device_put_replicated


def train_ppo(study: BraxStudy, *, seed: int, quick: bool) -> list[dict[str, float]]:
    """Train Brax's PPO on ``study``'s task from ``seed``; one row per evaluation.

    Runs ``study.budget(quick)`` env steps (Brax rounds up to whole training steps) with
    about ``study.evaluations`` (``quick_evaluations``) evaluations, the first before
    training (``PPOSettings.num_evals``).
    Rows hold ``PPO_FIELDS``; "iteration" counts the evaluations.
    """
    envs = brax_envs()
    from brax.training.agents.ppo import train as ppo

    with warnings.catch_warnings():  # Brax's notice, on every model load, that it is unmaintained
        warnings.filterwarnings("ignore", "Brax System", UserWarning)
        env = envs.get_environment(study.name, backend=study.backend)
    rows: list[dict[str, float]] = []
    start = time.perf_counter()

    def progress(env_steps: int, metrics: dict[str, Any]) -> None:
        episode_return = float(metrics["eval/episode_reward"])
        if not math.isfinite(episode_return):
            raise FloatingPointError(f"Brax PPO's evaluation became non-finite ({episode_return}) "
                                     f"after {env_steps} env steps of seed {seed}")
        rows.append({"iteration": len(rows), "env_steps": int(env_steps),
                     "wall_seconds": time.perf_counter() - start, "episode_return": episode_return})

    budget = study.budget(quick)
    evaluations = study.quick_evaluations if quick else study.evaluations
    with _jax_for_brax():
        ppo.train(environment=env, num_timesteps=budget,
                  num_evals=study.ppo.num_evals(budget, evaluations), episode_length=EPISODE_STEPS,
                  normalize_observations=True, num_eval_envs=study.eval_episodes,
                  deterministic_eval=True, seed=seed, progress_fn=progress, **study.ppo.train_kwargs())
    return rows
