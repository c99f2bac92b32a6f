"""Wall-clock to learn Pendulum-v1 with PG-JD, against Stable-Baselines3 PPO.

Each seed runs ``weakpg.train.train`` with the setup of ``weakpg reproduce pendulum``
(``experiments.PENDULUM``: a linear Gaussian policy on a 5 x 5 x 5 RBF grid over
(cos, sin, thetadot), sigma 1, gamma 0.95, 256 PG-JD samples per iteration, plain SGD
with a constant step 0.1 on the estimate clipped to norm 100), evaluating every 5
iterations, and stops once the mean 200-step undiscounted return of the mean action
from 16 fixed start states first reaches -170. The clock starts before the environment
and the policy are built, so compilation is included; every seed pays its own.
Printed per seed and as the median: seconds and env steps (every simulated step,
occupancy roll-outs included) to -200 and -170, seconds to the end of the first
iteration (mostly compilation), and env steps/s after it.

``--compare-sf`` runs the same protocol for PG-SF (no baseline, and the roll-out
baseline) with their step sizes from the same setup. ``--sb3`` times Stable-Baselines3
PPO with the rl-baselines3-zoo Pendulum-v1 hyper-parameters, evaluated deterministically
on 16 fixed episodes every 4096 steps (skipped when stable_baselines3 is not installed).
``--fast-compile`` turns XLA's CPU fusion emitters off, which compiles about twice as
fast here at a similar run time.

Run: ``python -m bench.learning [--quick] [--seeds N] [--compare-sf] [--sb3]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import time
from collections.abc import Sequence

THRESHOLDS = (-200.0, -170.0)
FAST_COMPILE_FLAG = "--xla_cpu_use_fusion_emitters=false"
SB3_EVAL_EVERY = 4096
SB3_EVAL_EPISODES = 16
SB3_EVAL_SEED = 12345


@dataclasses.dataclass(frozen=True)
class RunResult:
    """What one seed reached and when.

    Attributes:
      seed: training seed.
      seconds: wall-clock seconds (build and compile included) to first reach each
        threshold, None if never reached.
      steps: env steps to first reach each threshold, None if never reached.
      compile_seconds: from the start of the clock to the end of the first iteration.
      steps_per_second: env steps per second of wall-clock after that.
      final_return: the last evaluated return.
    """

    seed: int
    seconds: dict[float, float | None]
    steps: dict[float, int | None]
    compile_seconds: float
    steps_per_second: float
    final_return: float


def run_weakpg(method_label: str, seed: int, *, max_seconds: float) -> RunResult:
    """``weakpg.train.train`` with the reproduction's setup until -170 or ``max_seconds``.

    Exactly what ``weakpg reproduce pendulum`` runs (``experiments.PENDULUM``), stopped by
    a callback; every seed pays its own compilation.
    """
    import jax

    import weakpg
    from weakpg._src import experiments

    jax.clear_caches()
    start = time.perf_counter()
    setup = experiments.PENDULUM
    method = next(m for m in experiments.METHODS if m.label == method_label)
    env = weakpg.envs.make(experiments.ENV_ID)
    policy = weakpg.LinearGaussian(env, sigma=setup.sigma, features=setup.features,
                                   learn_sigma=setup.learn_sigma, squash=setup.squash)
    seconds: dict[float, float | None] = dict.fromkeys(THRESHOLDS)
    steps_to: dict[float, int | None] = dict.fromkeys(THRESHOLDS)
    first_step: list[float] = []

    def on_iteration(metrics: dict[str, float]) -> bool:
        now = time.perf_counter() - start
        if not first_step:
            first_step.extend([now, metrics["env_steps"]])
        for threshold in THRESHOLDS:
            if seconds[threshold] is None and metrics.get("episode_return", -float("inf")) >= threshold:
                seconds[threshold], steps_to[threshold] = now, int(metrics["env_steps"])
        return seconds[THRESHOLDS[-1]] is None and now < max_seconds

    _, rows = weakpg.train.train(env, policy, setup.train_config(method, seed), env_steps=10**9,
                                 eval_every=setup.eval_every, eval_episodes=setup.eval_episodes,
                                 callback=on_iteration)
    elapsed = time.perf_counter() - start - first_step[0]
    rate = (rows[-1]["env_steps"] - first_step[1]) / max(elapsed, 1e-9)
    return RunResult(seed, seconds, steps_to, first_step[0], rate, rows[-1]["episode_return"])


def run_sb3(seed: int, *, max_steps: int) -> RunResult | None:
    """SB3 PPO with the rl-baselines3-zoo Pendulum-v1 hyper-parameters, or None if absent.

    n_envs 4, n_steps 1024, gae_lambda 0.95, gamma 0.9, n_epochs 10, ent_coef 0,
    learning_rate 1e-3, clip_range 0.2, use_sde with sde_sample_freq 4, the default
    MlpPolicy (64 x 64) and batch_size 64. Every ``SB3_EVAL_EVERY`` steps: 16
    deterministic episodes from fixed starts (the evaluation env reseeded each time).
    """
    try:
        from stable_baselines3 import PPO
        from stable_baselines3.common.callbacks import BaseCallback
        from stable_baselines3.common.env_util import make_vec_env
        from stable_baselines3.common.evaluation import evaluate_policy
    except ImportError:
        return None

    start = time.perf_counter()
    seconds: dict[float, float | None] = dict.fromkeys(THRESHOLDS)
    steps_to: dict[float, int | None] = dict.fromkeys(THRESHOLDS)
    eval_env = make_vec_env("Pendulum-v1", n_envs=1)
    last = {"return": float("nan")}

    class Thresholds(BaseCallback):
        """Evaluates every SB3_EVAL_EVERY steps; stops once the last threshold is met."""

        def __init__(self) -> None:
            super().__init__()
            self.next_eval = SB3_EVAL_EVERY

        def _on_step(self) -> bool:
            if self.num_timesteps < self.next_eval:
                return True
            self.next_eval += SB3_EVAL_EVERY
            eval_env.seed(SB3_EVAL_SEED)
            mean, _ = evaluate_policy(self.model, eval_env, n_eval_episodes=SB3_EVAL_EPISODES,
                                      deterministic=True)
            last["return"] = float(mean)
            now = time.perf_counter() - start
            for threshold in THRESHOLDS:
                if seconds[threshold] is None and mean >= threshold:
                    seconds[threshold], steps_to[threshold] = now, self.num_timesteps
            return seconds[THRESHOLDS[-1]] is None

    model = PPO("MlpPolicy", make_vec_env("Pendulum-v1", n_envs=4, seed=seed), n_steps=1024,
                gae_lambda=0.95, gamma=0.9, n_epochs=10, ent_coef=0.0, learning_rate=1e-3,
                clip_range=0.2, use_sde=True, sde_sample_freq=4, seed=seed, device="cpu")
    built_at = time.perf_counter()
    model.learn(total_timesteps=max_steps, callback=Thresholds())
    elapsed = time.perf_counter() - built_at
    return RunResult(seed, seconds, steps_to, built_at - start,
                     model.num_timesteps / elapsed, last["return"])


def _median(values: Sequence[float | None]) -> float | None:
    """Median, counting a threshold never reached as infinitely late."""
    ordered = sorted(float("inf") if v is None else v for v in values)
    middle = statistics.median(ordered)
    return None if middle == float("inf") else middle


def _fmt(value: float | None, spec: str) -> str:
    return "never" if value is None else format(value, spec)


def print_table(name: str, results: Sequence[RunResult]) -> dict[float, float | None]:
    """Per-seed rows and the median row; returns the median seconds per threshold."""
    cols = "".join(f"{f's to {t:g}':>10} {f'steps to {t:g}':>14}" for t in THRESHOLDS)
    print(f"\n{name}\n{'seed':>6}{cols} {'compile s':>10} {'steps/s':>12} {'last return':>12}")
    for r in results:
        row = "".join(f"{_fmt(r.seconds[t], '.2f'):>10} {_fmt(r.steps[t], ',d'):>14}"
                      for t in THRESHOLDS)
        print(f"{r.seed:>6}{row} {r.compile_seconds:>10.2f} {r.steps_per_second:>12,.0f} "
              f"{r.final_return:>12.1f}")
    medians = {t: _median([r.seconds[t] for r in results]) for t in THRESHOLDS}
    median_steps = {t: _median([r.steps[t] for r in results]) for t in THRESHOLDS}
    row = "".join(f"{_fmt(medians[t], '.2f'):>10} {_fmt(median_steps[t], ',.0f'):>14}"
                  for t in THRESHOLDS)
    print(f"{'median':>6}{row} {statistics.median(r.compile_seconds for r in results):>10.2f} "
          f"{statistics.median(r.steps_per_second for r in results):>12,.0f}")
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5, help="training seeds 0 .. N-1")
    parser.add_argument("--quick", action="store_true", help="one seed, 15 s at most")
    parser.add_argument("--max-seconds", type=float, default=30.0,
                        help="give a run up after this much wall-clock")
    parser.add_argument("--compare-sf", action="store_true", help="also time PG-SF")
    parser.add_argument("--sb3", action="store_true", help="also time SB3 PPO (rl-zoo)")
    parser.add_argument("--fast-compile", action="store_true",
                        help=f"set {FAST_COMPILE_FLAG} (compiles faster; not what users get by default)")
    args = parser.parse_args()
    if args.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {args.seeds}")
    seeds = range(1 if args.quick else args.seeds)
    max_seconds = min(args.max_seconds, 15.0) if args.quick else args.max_seconds
    if args.fast_compile:
        # Read when the XLA backend starts, so it must be set before the first jax call.
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {FAST_COMPILE_FLAG}".strip()

    import jax

    from weakpg._src import experiments

    print(f"JAX {jax.__version__} on {jax.devices()[0].device_kind}, {os.cpu_count()} CPUs; "
          f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}")
    print(f"Pendulum-v1, the setup of `weakpg reproduce pendulum`: {experiments.PENDULUM}")
    ours = print_table("PG-JD", [run_weakpg("PG-JD", s, max_seconds=max_seconds) for s in seeds])
    if args.compare_sf:
        for label in ("PG-SF", "PG-SF + rollout baseline"):
            print_table(label, [run_weakpg(label, s, max_seconds=max_seconds) for s in seeds])
    if args.sb3:
        sb3 = [run_sb3(s, max_steps=300_000) for s in seeds]
        if any(r is None for r in sb3):
            print("\nSB3 PPO: skipped, stable_baselines3 is not installed "
                  "(pip install stable-baselines3 to measure it)")
            return
        theirs = print_table("SB3 PPO (rl-baselines3-zoo hyper-parameters)", sb3)
        for t in THRESHOLDS:
            if ours[t] is not None and theirs[t] is not None:
                print(f"median time to {t:g}: SB3 / PG-JD = {theirs[t] / ours[t]:.1f}x")


if __name__ == "__main__":
    main()
