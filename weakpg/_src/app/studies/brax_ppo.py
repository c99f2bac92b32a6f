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
    """Run brax 0.14.2's PPO on JAX 0.10, with its evaluation compiled once.

    - ``jax.device_put_replicated`` (gone in JAX 0.10) is restored: Brax places its training
      state on each local device with it, the value stacked once per device along a new
      leading axis, that axis split across the devices (JAX's documented replacement).
    - Every evaluation gets one input type, so it compiles once rather than twice (about
      a quarter of PPO's compiling on reacher). PPO's training steps return strongly typed
      arrays on the mesh of the replicated state, and the evaluation's state comes back
      typed on that mesh, so the replicated state is strongly typed from the start and,
      on a one-device mesh (whose shard keeps the mesh's type), the evaluator's first
      state is placed on the mesh too.
    """
    import jax
    import jax.numpy as jnp
    import numpy as np
    from brax.training import acting
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    meshes: list[Mesh] = []

    def device_put_replicated(x: Any, devices: list[Any]) -> Any:
        stacked = jax.tree.map(
            lambda leaf: jnp.stack([jnp.asarray(leaf, jnp.result_type(leaf))] * len(devices)), x)
        # PPO's pmap axis name: its training steps return arrays on this mesh, so every
        # evaluation sees the parameters with one sharding (another name recompiles it).
        meshes.append(Mesh(np.array(devices), ("i",)))
        return jax.device_put(stacked, NamedSharding(meshes[-1], PartitionSpec("i")))

    evaluator_init = acting.Evaluator.__init__

    def init_on_the_mesh(self: Any, *args: Any, **kwargs: Any) -> None:
        evaluator_init(self, *args, **kwargs)
        if meshes and meshes[-1].size == 1:
            self._eval_state_to_donate = jax.device_put(self._eval_state_to_donate,
                                                        NamedSharding(meshes[-1], PartitionSpec()))

    had = "device_put_replicated" in vars(jax)
    old = vars(jax).get("device_put_replicated")
    jax.device_put_replicated = device_put_replicated
    acting.Evaluator.__init__ = init_on_the_mesh
    try:
        yield
    finally:
        acting.Evaluator.__init__ = evaluator_init
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
