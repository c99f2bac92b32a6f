"""Throughput of PG-JD on a Brax environment, against a raw jitted scan of the same environment.

  PG-JD: env steps per second of a whole ``estimate_gradient`` call (occupancy roll-outs,
         phantom branches, chain rule) on ``brax:<name>``, a linear Gaussian policy;
  raw:   a jitted ``lax.scan`` of Brax's own ``env.step`` over the same number of lanes,
         one Gaussian draw per lane per step as the action and nothing else.

Both are best-of-``--repeats`` after a warm-up; compile times are printed too. Run:
``python -m bench.brax_throughput [--env reacher] [--backend spring] [--lanes 512]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

import weakpg

GAMMA = 0.95
RAW_STEPS = 200


def _best(fn: Callable[[jax.Array], Any], steps: Callable[[Any], int],
          repeats: int) -> tuple[float, float, Any]:
    """(compile + first call seconds, best steps/s, last output) of a jitted ``fn(key)``."""
    start = time.perf_counter()
    out = jax.block_until_ready(fn(jax.random.key(0)))
    first = time.perf_counter() - start
    best = 0.0
    for seed in range(1, repeats + 1):
        start = time.perf_counter()
        out = jax.block_until_ready(fn(jax.random.key(seed)))
        best = max(best, steps(out) / (time.perf_counter() - start))
    return first, best, out


def raw_scan(env: Any, lanes: int, steps: int) -> Callable[[jax.Array], jax.Array]:
    """Jitted: ``steps`` steps of Brax's ``env.step`` on ``lanes`` lanes, a ~ N(0, I) per step."""
    brax_env = env._env
    action_shape = (lanes,) + env.action_shape

    def run(key: jax.Array) -> jax.Array:
        state = jax.vmap(brax_env.reset)(jax.random.split(key, lanes))

        def step(carry, k):
            state, total = carry
            state = jax.vmap(brax_env.step)(state, jax.random.normal(k, action_shape))
            return (state, total + state.reward), None

        return jax.lax.scan(step, (state, jnp.zeros(lanes)), jax.random.split(key, steps))[0][1]

    return jax.jit(run)


def pg_jd(env: Any, lanes: int, num_samples: int) -> Callable[[jax.Array], Any]:
    policy = weakpg.LinearGaussian(env, sigma=0.5)
    params = policy.init(jax.random.key(0))
    estimate = jax.jit(weakpg.make_gradient_estimator(
        env, policy, estimator="jd", gamma=GAMMA, num_samples=num_samples, num_lanes=lanes))
    return lambda key: estimate(key, params)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="reacher", choices=weakpg.envs.BRAX_NAMES)
    parser.add_argument("--backend", default=weakpg.envs.DEFAULT_BACKEND, choices=weakpg.envs.BRAX_BACKENDS)
    parser.add_argument("--lanes", type=int, default=512)
    parser.add_argument("--samples", type=int, default=1024, help="PG-JD samples per estimate")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    env = weakpg.envs.make(f"brax:{args.env}", backend=args.backend)
    print(f"JAX {jax.__version__} on {jax.devices()[0].device_kind}; {env!r}, {args.lanes} lanes, "
          f"gamma {GAMMA}, PG-JD with {args.samples} samples, linear policy")
    first, raw, _ = _best(raw_scan(env, args.lanes, RAW_STEPS), lambda _: args.lanes * RAW_STEPS,
                          args.repeats)
    print(f"raw scan of env.step: {raw:,.0f} steps/s (compile + first call {first:.1f} s)")
    first, rate, out = _best(pg_jd(env, args.lanes, args.samples), lambda o: int(o.env_steps),
                             args.repeats)
    print(f"PG-JD estimate:       {rate:,.0f} steps/s (compile + first call {first:.1f} s, "
          f"{int(out.env_steps):,} env steps, utilisation {int(out.env_steps) / int(out.lane_steps):.2f})")
    print(f"ratio PG-JD / raw:    {rate / raw:.2f}")


if __name__ == "__main__":
    main()
