"""Wall-clock to learn Pendulum-v1 with PG-JD, against Stable-Baselines3 PPO.

For the PG-JD configuration below (``SETUP``), each seed starts a clock before building
the environment and policy, compiles one jitted chunk (``EVAL_EVERY`` iterations of
Algorithm 2 in a ``lax.scan``, then an evaluation), and runs chunks until the mean
200-step undiscounted return of the mean action, from ``EVAL_EPISODES`` fixed start
states (``make_evaluator`` with a fixed key), first reaches -200 and -170. Printed per
seed and as the median over seeds: seconds (compile included) and env steps (every
simulated step of the gradient estimates, occupancy roll-outs included) to each
threshold, compile seconds, and env steps/s after compilation.

The configuration: a linear Gaussian policy on a 5 x 5 x 5 RBF grid over (cos, sin,
thetadot) (the default 3 x 3 x 3 grid is too coarse to learn the swing-up quickly),
sigma 1, gamma 0.95, 256 PG-JD samples per iteration, plain SGD with a constant step
0.1 on the estimate clipped to norm 100 (the estimate scales with 1/(1-gamma), so
clipping, not the step size, bounds the early steps).

Compilation dominates the wall-clock, so by default XLA's CPU fusion emitters are
turned off (``--xla_cpu_use_fusion_emitters=false``), which compiles this program in
about half the time at a similar run time; ``--default-xla`` keeps XLA's defaults.

``--compare-sf`` runs the same protocol for PG-SF (no baseline, and the roll-out
baseline) with their best step sizes found. ``--sb3`` times Stable-Baselines3 PPO with
the rl-baselines3-zoo Pendulum-v1 hyper-parameters, evaluated deterministically on 16
fixed episodes every 4096 steps (skipped when stable_baselines3 is not installed).

Run: ``python -m bench.learning [--quick] [--seeds N] [--compare-sf] [--sb3]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import time
from collections.abc import Callable, Sequence

THRESHOLDS = (-200.0, -170.0)
EVAL_EVERY = 5
EVAL_EPISODES = 16
EVAL_SEED = 12345
FAST_COMPILE_FLAG = "--xla_cpu_use_fusion_emitters=false"
SB3_EVAL_EVERY = 4096


@dataclasses.dataclass(frozen=True)
class Setup:
    """One weakpg training configuration on Pendulum-v1.

    Attributes:
      estimator: "jd" or "sf".
      baseline: for "sf": None or "rollout".
      grid: RBF centres per axis of (cos theta, sin theta, thetadot), over the
        environment's observation box; the width per axis is the grid spacing.
      sigma: fixed standard deviation of the Gaussian policy.
      gamma: discount factor.
      batch_size: gradient samples per iteration.
      optimizer: "sgd" or "adam".
      lr: alpha_0.
      schedule_power: p in alpha_k = alpha_0 / (k + 1)^p.
      max_grad_norm: clip of the gradient estimate before the step.
    """

    estimator: str = "jd"
    baseline: str | None = None
    grid: tuple[int, int, int] = (5, 5, 5)
    sigma: float = 1.0
    gamma: float = 0.95
    batch_size: int = 256
    optimizer: str = "sgd"
    lr: float = 0.1
    schedule_power: float = 0.0
    max_grad_norm: float | None = 100.0


SETUP = Setup()
SF_SETUPS = {
    "PG-SF": dataclasses.replace(SETUP, estimator="sf", lr=0.05),
    "PG-SF rollout": dataclasses.replace(SETUP, estimator="sf", baseline="rollout", lr=0.05),
}


@dataclasses.dataclass(frozen=True)
class RunResult:
    """What one seed reached and when.

    Attributes:
      seed: training seed.
      seconds: wall-clock seconds (build and compile included) to first reach each
        threshold, None if never reached.
      steps: env steps to first reach each threshold, None if never reached.
      compile_seconds: from the start of the clock to a compiled program.
      steps_per_second: env steps per second of wall-clock after compilation.
      final_return: the last evaluated return.
    """

    seed: int
    seconds: dict[float, float | None]
    steps: dict[float, int | None]
    compile_seconds: float
    steps_per_second: float
    final_return: float


def make_chunk(setup: Setup, seed: int) -> tuple[Callable, object, object]:
    """Build the policy, the initial state and ``chunk(state, eval_key)``, compiled.

    ``chunk`` runs ``EVAL_EVERY`` iterations and returns (state, env steps, the mean
    200-step return of the mean action). The evaluator is built inside the traced
    function: built eagerly, its start states and noise cost a dozen small compilations.
    """
    import jax
    import jax.numpy as jnp

    import weakpg
    from weakpg._src.train import TrainConfig, init_state, make_evaluator, make_train_step

    env = weakpg.envs.make("Pendulum-v1")
    features = weakpg.features.RBF.grid(env.observation_low, env.observation_high, setup.grid)
    policy = weakpg.LinearGaussian(env, sigma=setup.sigma, features=features)
    config = TrainConfig(
        estimator=setup.estimator, baseline=setup.baseline, gamma=setup.gamma,
        batch_size=setup.batch_size, optimizer=setup.optimizer, lr=setup.lr,
        schedule_power=setup.schedule_power, max_grad_norm=setup.max_grad_norm, seed=seed)
    step = make_train_step(env, policy, config)

    def chunk(state, eval_key):
        evaluate = make_evaluator(env, policy, gamma=config.gamma, key=eval_key,
                                  num_episodes=EVAL_EPISODES)
        state, metrics = jax.lax.scan(lambda s, _: step(s), state, None, length=EVAL_EVERY)
        return state, jnp.sum(metrics["env_steps"]), evaluate(state.params)["episode_return"]

    state = jax.jit(lambda: init_state(policy, config))()
    eval_key = jax.random.key(EVAL_SEED)
    compiled = jax.jit(chunk).lower(state, eval_key).compile()
    return compiled, state, eval_key


def run_weakpg(setup: Setup, seed: int, *, max_seconds: float) -> RunResult:
    """Train from scratch until every threshold is reached or ``max_seconds`` pass."""
    import jax

    jax.clear_caches()  # every seed pays its own compilation
    start = time.perf_counter()
    chunk, state, eval_key = make_chunk(setup, seed)
    compiled_at = time.perf_counter()
    steps, episode_return = 0, float("nan")
    seconds: dict[float, float | None] = dict.fromkeys(THRESHOLDS)
    steps_to: dict[float, int | None] = dict.fromkeys(THRESHOLDS)
    while seconds[THRESHOLDS[-1]] is None and time.perf_counter() - start < max_seconds:
        state, chunk_steps, ret = chunk(state, eval_key)
        episode_return = float(ret)  # blocks until the chunk is done
        steps += int(chunk_steps)
        now = time.perf_counter() - start
        for threshold in THRESHOLDS:
            if seconds[threshold] is None and episode_return >= threshold:
                seconds[threshold], steps_to[threshold] = now, steps
    elapsed = time.perf_counter() - compiled_at
    return RunResult(seed, seconds, steps_to, compiled_at - start, steps / elapsed, episode_return)


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
            eval_env.seed(EVAL_SEED)
            mean, _ = evaluate_policy(self.model, eval_env, n_eval_episodes=EVAL_EPISODES,
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
    parser.add_argument("--default-xla", action="store_true",
                        help=f"keep XLA's defaults instead of {FAST_COMPILE_FLAG}")
    args = parser.parse_args()
    if args.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {args.seeds}")
    seeds = range(1 if args.quick else args.seeds)
    max_seconds = min(args.max_seconds, 15.0) if args.quick else args.max_seconds
    if not args.default_xla:
        # Read when the XLA backend starts, so it must be set before the first jax call.
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {FAST_COMPILE_FLAG}".strip()

    import jax

    print(f"JAX {jax.__version__} on {jax.devices()[0].device_kind}, {os.cpu_count()} CPUs; "
          f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}")
    print(f"Pendulum-v1; evaluation every {EVAL_EVERY} iterations, {EVAL_EPISODES} episodes "
          f"of 200 steps, mean action; {SETUP}")
    ours = print_table("PG-JD", [run_weakpg(SETUP, s, max_seconds=max_seconds) for s in seeds])
    if args.compare_sf:
        for name, setup in SF_SETUPS.items():
            print_table(f"{name} ({setup.baseline=}, lr {setup.lr})",
                        [run_weakpg(setup, s, max_seconds=max_seconds) for s in seeds])
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
