"""Wall-clock to learn Pendulum-v1 with PG-JD: cold, with a warm compilation cache, many seeds.

Each measurement is a new process (``python -m bench.learning --child ...``) that runs
``weakpg.train.train`` with the setup of ``weakpg reproduce pendulum`` (``PENDULUM``: a
linear Gaussian policy on a 5 x 5 x 5 RBF grid, sigma 1, gamma 0.95, 256 PG-JD samples
per iteration, plain SGD with a constant step 0.1 on the estimate clipped to norm 100,
an evaluation every 5 iterations) and stops once the mean 200-step return of the mean
action from 16 fixed start states reaches -170. The clock starts when the process starts
(imports, building, compiling and learning included).

- cold: JAX's persistent compilation cache points at a new, empty folder;
- warm: the same folder again, filled by a cold run of the same seed;
- seeds: one process trains 1 seed, then another trains 5 seeds in one vmapped program
  (``weakpg.train.train_seeds``), each for a fixed budget of env steps; the ratio of their
  wall-clocks (the issue's bar: at most 1.5).

Run: ``python -m bench.learning [--seeds N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

START = time.perf_counter()
TARGET = -170.0
SEEDS_BUDGET = 1_000_000  # env steps per seed of the many-seeds measurement
MANY_SEEDS = 5


def _setup():
    import weakpg
    from weakpg._src.app.studies import learning_setups

    setup = learning_setups.PENDULUM
    env = weakpg.envs.make(setup.env_id)
    policy = setup.make_policy(env)
    return setup, env, policy, learning_setups.METHODS[0]


def child_to_target(seed: int, max_seconds: float) -> dict:
    """Seconds from process start to the first evaluation at or above TARGET.

    Also from after ``import jax`` ("after_imports"), to set apart the interpreter's and
    JAX's own start-up, which weakpg cannot change.
    """
    import jax  # noqa: F401

    import weakpg

    imported = time.perf_counter() - START

    setup, env, policy, method = _setup()
    config = setup.train_config(method, seed, 10**9)
    reached: dict = {}

    def on_row(row: dict) -> bool:
        now = time.perf_counter() - START
        if row["episode_return"] >= TARGET and not reached:
            reached.update(seconds=now, after_imports=now - imported, env_steps=row["env_steps"],
                           ret=row["episode_return"])
        return not reached and now < max_seconds

    weakpg.train.train(env, policy, config, callback=on_row)
    return reached or {"seconds": None}


def child_seeds(num_seeds: int) -> dict:
    """Seconds from process start to the end of SEEDS_BUDGET env steps for each of num_seeds."""
    import weakpg

    setup, env, policy, method = _setup()
    config = setup.train_config(method, 0, SEEDS_BUDGET)
    _, rows = weakpg.train.train_seeds(env, policy, config, seeds=range(num_seeds))
    return {"seconds": time.perf_counter() - START, "returns": [r[-1]["episode_return"] for r in rows]}


def _child(args: list[str], cache: str) -> dict:
    env = {**os.environ, "JAX_COMPILATION_CACHE_DIR": cache,
           "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
    out = subprocess.run([sys.executable, "-m", "bench.learning", "--child", *args], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5, help="seeds of the cold and warm measurements")
    parser.add_argument("--max-seconds", type=float, default=30.0, help="give a run up after this long")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, value = args.child[0], int(args.child[1])
        result = child_to_target(value, args.max_seconds) if kind == "target" else child_seeds(value)
        print(json.dumps(result))
        return
    if args.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {args.seeds}")

    cold, warm = [], []
    for seed in range(args.seeds):
        with tempfile.TemporaryDirectory(prefix="weakpg-bench-cache-") as cache:
            cold.append(_child(["target", str(seed)], cache))
            warm.append(_child(["target", str(seed)], cache))
        print(f"seed {seed}: cold {cold[-1]['seconds']} s, warm {warm[-1]['seconds']} s "
              f"(return {cold[-1].get('ret')}, {cold[-1].get('env_steps')} env steps)")
    for name, results, bar in (("cold", cold, 2.5), ("warm cache", warm, 1.0)):
        if any(r["seconds"] is None for r in results):
            print(f"{name}: some seeds never reached {TARGET:g}")
            continue
        median = statistics.median(r["seconds"] for r in results)
        after = statistics.median(r["after_imports"] for r in results)
        print(f"{name}: median {median:.2f} s from process start to {TARGET:g} over {len(results)} seeds "
              f"(bar {bar} s: {'met' if median <= bar else 'NOT met'}; ratio to bar {median / bar:.2f}); "
              f"{after:.2f} s after importing JAX (ratio to bar {after / bar:.2f})")

    with tempfile.TemporaryDirectory(prefix="weakpg-bench-cache-") as cache:
        one = _child(["seeds", "1"], cache)
    with tempfile.TemporaryDirectory(prefix="weakpg-bench-cache-") as cache:
        many = _child(["seeds", str(MANY_SEEDS)], cache)
    ratio = many["seconds"] / one["seconds"]
    print(f"{SEEDS_BUDGET:,} env steps per seed, cold, in one process: 1 seed {one['seconds']:.2f} s, "
          f"{MANY_SEEDS} seeds {many['seconds']:.2f} s; ratio {ratio:.2f} (bar 1.5: "
          f"{'met' if ratio <= 1.5 else 'NOT met'})")


if __name__ == "__main__":
    main()
