"""Throughput of the gymnasium adapter, against the JAX path and a plain gymnasium loop.

Env steps per second of a whole ``estimate_gradient`` call (PG-JD, coupled; a
``LinearGaussian`` policy with identity features, sigma 1), compiled beforehand,
measured in one run:

  jax:     gymnax Pendulum-v1, the pure JAX path, at the adapter's batch and at 16384;
  adapter: ``from_gymnasium`` on Pendulum-v1, InvertedPendulum-v5 (a stabilising gain, so
           roll-outs do not end at once) and HalfCheetah-v5;
  plain:   a plain loop of the unwrapped gymnasium env's ``step``, one Python call per
           step: what the simulator costs by itself.

For the adapter also its host steps: every call of the env's ``step``, idle lanes
included (the engine steps them), terminal states excluded (the adapter skips them).
host/plain is the adapter's own efficiency: 1.0 would mean the restores, saves and
callbacks cost nothing. Run: ``python -m bench.adapter [--quick]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np

import weakpg

GAMMA = 0.9
BATCH = 1024  # the adapter's cost per engine step is amortised over the lanes: larger is faster
JAX_BEST_BATCH = 16384
# mean = W obs; W pushes InvertedPendulum's cart under the pole (mean episode > 900 steps
# under sigma-1 noise in a plain loop); zero-mean small weights elsewhere.
GAINS = {"InvertedPendulum-v5": [[1.0, 10.0, 1.0, 2.0]]}


def _params(env_id: str, obs_dim: int, act_dim: int) -> dict[str, jax.Array]:
    if env_id in GAINS:
        return {"weights": jnp.array(GAINS[env_id])}
    return {"weights": 0.1 * jax.random.normal(jax.random.key(1), (act_dim, obs_dim))}


def _counting(env: gymnasium.Env) -> tuple[gymnasium.Env, Callable[[], int]]:
    """``env`` (unwrapped) whose ``step`` counts its calls, and the counter."""
    env = env.unwrapped
    step, calls = env.step, [0]

    def counted(action: Any) -> Any:
        calls[0] += 1
        return step(action)

    env.step = counted
    return env, lambda: calls[0]


def estimator_rate(env: weakpg.envs.Environment, env_id: str, num_samples: int,
                   host_steps: Callable[[], int] | None = None) -> dict[str, float]:
    """Env steps/s (and host steps/s) of one compiled PG-JD estimate."""
    policy = weakpg.LinearGaussian(env)
    params = _params(env_id, env.observation_shape[0], env.action_shape[0])
    estimate = jax.jit(weakpg.make_gradient_estimator(
        env, policy, estimator="jd", gamma=GAMMA, num_samples=num_samples))
    start = time.perf_counter()
    estimate = estimate.lower(jax.random.key(0), params).compile()
    compile_seconds = time.perf_counter() - start
    host_before = host_steps() if host_steps else 0
    start = time.perf_counter()
    out = jax.block_until_ready(estimate(jax.random.key(1), params))
    seconds = time.perf_counter() - start
    rates = {"steps_per_second": int(out.env_steps) / seconds,
             "utilisation": int(out.env_steps) / int(out.lane_steps),
             "compile_seconds": compile_seconds}
    if host_steps:
        rates["host_per_second"] = (host_steps() - host_before) / seconds
    return rates


def plain_rate(env_id: str, num_steps: int = 2000, repeats: int = 3) -> float:
    """Best-of-``repeats`` steps/s of a plain loop of the unwrapped env, actions as in the bench."""
    env = gymnasium.make(env_id).unwrapped
    weights = np.asarray(
        _params(env_id, env.observation_space.shape[0], env.action_space.shape[0])["weights"])
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=0)
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(num_steps):
            action = (weights @ obs + rng.normal(size=weights.shape[0])).astype(np.float32)
            obs, _, terminated, _, _ = env.step(action)
            if terminated:
                obs, _ = env.reset()
        best = max(best, num_steps / (time.perf_counter() - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="Pendulum-v1 only")
    args = parser.parse_args()
    env_ids = ["Pendulum-v1"] if args.quick else ["Pendulum-v1", "InvertedPendulum-v5", "HalfCheetah-v5"]
    print(f"JAX {jax.__version__} on {jax.devices()[0].device_kind}; PG-JD coupled, linear policy, "
          f"gamma {GAMMA}, batch {BATCH}; steps/s")
    jax_same = estimator_rate(weakpg.envs.make("Pendulum-v1"), "Pendulum-v1", BATCH)
    jax_best = estimator_rate(weakpg.envs.make("Pendulum-v1"), "Pendulum-v1", JAX_BEST_BATCH)
    print(f"jax path, gymnax Pendulum-v1: {jax_same['steps_per_second']:,.0f} (batch {BATCH}), "
          f"{jax_best['steps_per_second']:,.0f} (batch {JAX_BEST_BATCH})")
    print(f"\n{'environment':<20} {'adapter':>9} {'host':>9} {'plain':>9} {'host/plain':>10} "
          f"{'jax/adapter':>11} {'util':>5} {'compile s':>9}")
    for env_id in env_ids:
        raw, host_steps = _counting(gymnasium.make(env_id))
        r = estimator_rate(weakpg.envs.from_gymnasium(raw), env_id, BATCH, host_steps)
        plain = plain_rate(env_id)
        ratio = f"{jax_same['steps_per_second'] / r['steps_per_second']:>11.0f}" \
            if env_id == "Pendulum-v1" else f"{'':>11}"
        print(f"{env_id:<20} {r['steps_per_second']:>9,.0f} {r['host_per_second']:>9,.0f} "
              f"{plain:>9,.0f} {r['host_per_second'] / plain:>10.2f} {ratio} "
              f"{r['utilisation']:>5.2f} {r['compile_seconds']:>9.1f}")


if __name__ == "__main__":
    main()
