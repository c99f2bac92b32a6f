"""Throughput of the PG-JD / PG-SF engine on Pendulum-v1, against two references.

For each PRNG implementation and batch size, env steps per second of a whole
``estimate_gradient`` call (occupancy roll-outs, phantom branches, chain rule), with an
RBF ``LinearGaussian`` policy (27 centres), next to references measured in the same run:

  raw:       the fastest jitted scan of the bare Pendulum dynamics under a linear feedback
             plus one Gaussian draw per step (``bench/references.py``), same PRNG;
  gymnasium: a plain gymnasium Pendulum-v1 loop, one Python call per step.

Also printed: lane utilisation (useful steps over lane-steps) and compile time.
Run: ``python -m bench.throughput [--quick] [--impl threefry2x32 ...]``.
"""

from __future__ import annotations

import argparse
import time

import jax

import weakpg
from bench.references import IMPLS, gymnasium_steps_per_second, raw_scan_steps_per_second

BATCH_SIZES = (256, 4096, 16384)
GAMMA = 0.95


def engine_steps_per_second(estimator: str, num_samples: int, impl: str, *,
                            features: str = "rbf", repeats: int = 3) -> dict[str, float]:
    """Best-of-``repeats`` env steps/s of one jitted gradient estimate, after a warm-up."""
    env = weakpg.envs.make("Pendulum-v1")
    if features == "rbf":  # 27 centres; the learning setup's default grid has 125
        features = weakpg.features.RBF.grid(env.observation_low, env.observation_high, (3, 3, 3))
    policy = weakpg.LinearGaussian(env, sigma=1.0, features=features)
    params = jax.tree.map(lambda x: 0.1 * jax.random.normal(jax.random.key(1), x.shape),
                          policy.init(jax.random.key(0)))
    estimate = jax.jit(weakpg.make_gradient_estimator(
        env, policy, estimator=estimator, gamma=GAMMA, num_samples=num_samples))
    start = time.perf_counter()
    jax.block_until_ready(estimate(jax.random.key(0, impl=impl), params))
    compile_seconds = time.perf_counter() - start
    best, out = float("inf"), None
    for seed in range(1, repeats + 1):
        start = time.perf_counter()
        out = jax.block_until_ready(estimate(jax.random.key(seed, impl=impl), params))
        best = min(best, (time.perf_counter() - start) / int(out.env_steps))
    return {"steps_per_second": 1.0 / best, "utilisation": int(out.env_steps) / int(out.lane_steps),
            "compile_seconds": compile_seconds}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--impl", nargs="+", choices=IMPLS, default=list(IMPLS))
    parser.add_argument("--quick", action="store_true", help="batch 4096 only, threefry only")
    args = parser.parse_args()
    impls = ["threefry2x32"] if args.quick else args.impl
    batches = (4096,) if args.quick else BATCH_SIZES
    print(f"JAX {jax.__version__} on {jax.devices()[0].device_kind}; Pendulum-v1, gamma {GAMMA}")
    gym = gymnasium_steps_per_second()
    print(f"gymnasium loop: {gym:,.0f} steps/s")
    header = (f"{'impl':<13} {'estimator':<10} {'features':<9} {'batch':>6} {'steps/s':>12} "
              f"{'/raw':>6} {'x gym':>7} {'util':>5} {'compile s':>9}")
    for impl in impls:
        raw = max(raw_scan_steps_per_second(n, impl) for n in (1024, 4096))
        print(f"\n{impl}: raw scan limit {raw:,.0f} steps/s (best variant, 1024 or 4096 lanes)")
        print(header)
        for estimator in ("jd", "sf"):
            for features in ("rbf", "identity"):
                for batch in batches if features == "rbf" else batches[-1:]:
                    r = engine_steps_per_second(estimator, batch, impl, features=features)
                    rate = r["steps_per_second"]
                    print(f"{impl:<13} {estimator:<10} {features:<9} {batch:>6} {rate:>12,.0f} "
                          f"{rate / raw:>6.2f} {rate / gym:>7.0f} {r['utilisation']:>5.2f} "
                          f"{r['compile_seconds']:>9.1f}")


if __name__ == "__main__":
    main()
