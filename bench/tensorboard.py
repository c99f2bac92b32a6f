"""What ``--tensorboard`` costs: a run with its event files against the same run without.

Trains one Pendulum-v1 configuration (linear-Gaussian policy, PG-JD) with run folders,
compiled beforehand, alternately without and with ``EventWriters`` as ``on_rows``, and
prints the best wall-clock of each and their ratio (1.0: free), plus the writer's own
cost per row (the eight scalars of one metrics row, written without training).
Run: ``python -m bench.tensorboard [--quick]``.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from pathlib import Path

import weakpg
from weakpg._src.app.tensorboard import EventWriters
from weakpg._src.config import TrainConfig
from weakpg._src.driver import train_seeds


def _train(env, policy, config, folder: Path, tensorboard: bool) -> float:
    run_dirs = [folder / "run"]
    run_dirs[0].mkdir(parents=True)
    start = time.perf_counter()
    with EventWriters(run_dirs) if tensorboard else contextlib.nullcontext() as on_rows:
        train_seeds(env, policy, config, seeds=[0], run_dirs=run_dirs, on_rows=on_rows)
    return time.perf_counter() - start


def _per_row(rows: int, folder: Path) -> float:
    history = [{"iteration": k, "env_steps": 1000 * k, "wall_seconds": 0.1 * k, "discounted_return": -1.0,
                "episode_return": -2.0, "grad_norm": 1.0, "grad_stderr_norm": 0.5, "step_size": 0.1}
               for k in range(rows)]
    start = time.perf_counter()
    with EventWriters([folder]) as writers:
        for k in range(1, rows + 1):
            writers(0, history[:k])
    return (time.perf_counter() - start) / rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller budget and fewer repeats")
    quick = parser.parse_args().quick
    env = weakpg.envs.make("Pendulum-v1")
    policy = weakpg.LinearGaussian(env, sigma=1.0, features="rbf")
    config = TrainConfig(estimator="jd", gamma=0.95, batch_size=128, lr=0.1, schedule_power=0.0,
                         iterations=40 if quick else 200, env_steps=None, eval_every=5, eval_episodes=8)
    repeats = 2 if quick else 4
    with tempfile.TemporaryDirectory() as tmp:
        _train(env, policy, config, Path(tmp) / "warm-up", False)  # compiles the chunk
        times = {False: [], True: []}
        for i in range(repeats):
            for tensorboard in (False, True):
                times[tensorboard].append(_train(env, policy, config, Path(tmp) / f"{tensorboard}{i}",
                                                 tensorboard))
        per_row = _per_row(200, Path(tmp) / "rows")
    plain, with_events = min(times[False]), min(times[True])
    rows = config.iterations // config.eval_every + 1
    print(f"{config.iterations} iterations, {rows} rows, best of {repeats}: without event files "
          f"{plain:.3f} s, with {with_events:.3f} s, ratio {with_events / plain:.3f}")
    print(f"writer alone: {per_row * 1e3:.2f} ms per row (8 scalars)")


if __name__ == "__main__":
    main()
