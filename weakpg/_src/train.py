"""Algorithm 2 of the paper: stochastic gradient ascent on the policy parameters.

theta_{k+1} = theta_k + alpha_k g_k, with g_k an unbiased estimate of grad J(theta_k)
(PG-JD or PG-SF, ``estimate_gradient``) and the diminishing steps of eq. (17),
alpha_k = alpha_0 / (k + 1)^p. Theorem 5 bounds the iteration complexity for p in
(1/2, 1); p = 0 gives a constant step. Any optax optimizer can replace plain SGD (Adam
for deep policies); the schedule then scales its step.

Evaluation runs the policy from fixed start states with fixed noise (common random
numbers), so curves of different methods and iterations are comparable: the discounted
return J the paper plots, and the undiscounted return of the mean (Gaussian) or most
likely (softmax) action over the task's standard episode, what other libraries report
(200 steps on Pendulum-v1, 500 on CartPole-v1).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from weakpg._src import runs, validation
from weakpg._src.envs.base import Environment
from weakpg._src.gradients import BASELINES, ESTIMATORS, make_gradient_estimator
from weakpg._src.policies import Params, Policy

Array = jax.Array
OPTIMIZERS = ("sgd", "adam")
DEFAULT_EPISODE_LENGTH = 200  # Pendulum-v1's time limit


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run.

    Attributes:
      estimator: "jd" (PG-JD) or "sf" (PG-SF).
      baseline: for "sf": None, "rollout" or "value".
      coupled: common random numbers between the branches of a sample.
      gamma: discount factor in (0, 1).
      batch_size: gradient samples per iteration.
      optimizer: "sgd" (the paper's plain ascent) or "adam".
      lr: alpha_0.
      schedule_power: p in alpha_k = alpha_0 / (k + 1)^p; 0 keeps the step constant.
      max_grad_norm: clip the estimate to this global norm before the step (None: never).
      seed: PRNG seed of the run.
    """

    estimator: str = "jd"
    baseline: str | None = None
    coupled: bool = True
    gamma: float = 0.95
    batch_size: int = 1024
    optimizer: str = "sgd"
    lr: float = 0.01
    schedule_power: float = 0.6
    max_grad_norm: float | None = None
    seed: int = 0

    def __post_init__(self):
        validation.check_choice("estimator", self.estimator, ESTIMATORS)
        validation.check_choice("baseline", self.baseline, BASELINES)
        validation.check_array("gamma", self.gamma, low=0.0, high=1.0, low_open=True, high_open=True)
        validation.check_positive_int("batch_size", self.batch_size)
        validation.check_choice("optimizer", self.optimizer, OPTIMIZERS)
        validation.check_array("lr", self.lr, low=0.0, low_open=True)
        validation.check_array("schedule_power", self.schedule_power, low=0.0, high=1.0)
        if self.max_grad_norm is not None:
            validation.check_array("max_grad_norm", self.max_grad_norm, low=0.0, low_open=True)


class TrainState(NamedTuple):
    """Everything an iteration reads: a checkpoint holds exactly this."""

    params: Params
    opt_state: Any
    key: Array
    iteration: Array


def step_size(config: TrainConfig) -> Callable[[Array], Array]:
    """alpha_k = alpha_0 / (k + 1)^p (paper, eq. 17)."""
    return lambda k: config.lr / (k + 1.0) ** config.schedule_power


def make_optimizer(config: TrainConfig) -> optax.GradientTransformation:
    """The ascent rule as an optax transformation of the *negated* gradient estimate."""
    schedule = step_size(config)
    base = optax.sgd(schedule) if config.optimizer == "sgd" else optax.adam(schedule)
    if config.max_grad_norm is None:
        return base
    return optax.chain(optax.clip_by_global_norm(config.max_grad_norm), base)


def init_state(policy: Policy, config: TrainConfig, *, key_impl: str | None = None) -> TrainState:
    """theta_0 from ``policy.init`` and the optimizer state, from ``config.seed``."""
    key = jax.random.key(config.seed, impl=key_impl)
    key, init_key = jax.random.split(key)
    params = policy.init(init_key)
    return TrainState(params, make_optimizer(config).init(params), key, jnp.array(0, jnp.int32))


def make_train_step(env: Environment, policy: Policy,
                    config: TrainConfig) -> Callable[[TrainState], tuple[TrainState, dict[str, Array]]]:
    """One iteration of Algorithm 2 as a pure function, ready for ``jax.jit``.

    Returns ``step(state) -> (state, metrics)`` with metrics "grad_norm" (of the
    estimate), "grad_stderr_norm", "step_size" (alpha_k) and "env_steps" (this iteration).
    """
    estimate = make_gradient_estimator(
        env, policy, estimator=config.estimator, gamma=config.gamma,
        num_samples=config.batch_size, coupled=config.coupled, baseline=config.baseline)
    optimizer = make_optimizer(config)
    schedule = step_size(config)

    def step(state: TrainState) -> tuple[TrainState, dict[str, Array]]:
        key, sample_key = jax.random.split(state.key)
        grad = estimate(sample_key, state.params)
        descent = jax.tree.map(jnp.negative, grad.mean)
        updates, opt_state = optimizer.update(descent, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = {
            "grad_norm": optax.tree.norm(grad.mean),
            "grad_stderr_norm": optax.tree.norm(grad.stderr),
            "step_size": schedule(state.iteration),
            "env_steps": grad.env_steps,
        }
        return TrainState(params, opt_state, key, state.iteration + 1), metrics

    return step


def standard_episode_length(env: Environment) -> int:
    """Steps of the reported episode: the task's standard time limit, ``env.max_episode_steps``.

    The simulator itself has no time limit (the paper's infinite-horizon problem); the
    limit only fixes what "episode return" means. Environments that declare none get
    ``DEFAULT_EPISODE_LENGTH``.
    """
    return env.max_episode_steps or DEFAULT_EPISODE_LENGTH


def evaluation_horizon(gamma: float, *, episode_length: int = DEFAULT_EPISODE_LENGTH,
                       tolerance: float = 1e-4) -> int:
    """Steps that cover both the episode and the discounted sum up to gamma^H < tolerance."""
    return max(episode_length, math.ceil(math.log(tolerance) / math.log(gamma)))


def make_evaluator(env: Environment, policy: Policy, *, gamma: float, key: Array,
                   num_episodes: int = 64,
                   episode_length: int | None = None) -> Callable[[Params], dict[str, Array]]:
    """``evaluate(params)``: returns from fixed start states with fixed noise.

    "discounted_return": mean of sum_t gamma^t r_t of the stochastic policy (the paper's J,
    truncated where gamma^t < 1e-4); "episode_return": mean undiscounted return of the
    first ``episode_length`` steps (default ``standard_episode_length(env)``) of the mean
    action of a Gaussian policy, the most likely action of a softmax one (no exploration).
    """
    validation.check_positive_int("num_episodes", num_episodes)
    if episode_length is None:
        episode_length = standard_episode_length(env)
    validation.check_positive_int("episode_length", episode_length)
    horizon = evaluation_horizon(gamma, episode_length=episode_length)
    discounts = gamma ** jnp.arange(horizon)

    def inputs() -> tuple[Any, Array, Array]:
        # Drawn inside the (jitted) evaluation from the fixed key: the same every call,
        # and no eager work when the evaluator is built.
        start_key, noise_key, env_key = jax.random.split(key, 3)
        starts = jax.vmap(env.reset)(jax.random.split(start_key, num_episodes))
        noise = policy.noise(noise_key, (horizon, num_episodes))
        return starts, noise, jax.random.split(env_key, (horizon, num_episodes))

    def rewards(params: Params, starts: Any, noise: Array, keys: Array) -> Array:
        def body(state, xs):
            n, k = xs
            dist_params = jax.vmap(policy.dist_params, (None, 0))(params, jax.vmap(env.observe)(state))
            action = policy.act(dist_params, n)
            return jax.vmap(env.step)(k, state, policy.env_action(action))

        return jax.lax.scan(body, starts, (noise, keys))[1]  # (steps, num_episodes)

    def evaluate(params: Params) -> dict[str, Array]:
        starts, noise, env_keys = inputs()
        stochastic = rewards(params, starts, noise, env_keys)
        # Zero noise is the mean action of a Gaussian policy and the mode of a softmax one.
        deterministic = rewards(params, starts, jnp.zeros_like(noise[:episode_length]),
                                env_keys[:episode_length])
        return {"discounted_return": jnp.mean(discounts @ stochastic),
                "episode_return": jnp.mean(jnp.sum(deterministic, axis=0))}

    return evaluate


EVAL_SEED = 2_718_281  # one evaluation key for every run: common random numbers across runs
METRIC_FIELDS = ("iteration", "env_steps", "wall_seconds", "discounted_return", "episode_return",
                 "grad_norm", "grad_stderr_norm", "step_size")
Callback = Callable[[dict[str, float]], bool | None]


@functools.lru_cache(maxsize=32)
def _compiled_step(env: Environment, policy: Policy, config: TrainConfig) -> Callable[..., Any]:
    """One jitted step per (env, policy, config): runs that differ by seed share it."""
    return jax.jit(make_train_step(env, policy, config))


@functools.lru_cache(maxsize=32)
def _compiled_evaluator(env: Environment, policy: Policy, gamma: float, num_episodes: int,
                        episode_length: int | None) -> Callable[..., Any]:
    return jax.jit(make_evaluator(env, policy, gamma=gamma, key=jax.random.key(EVAL_SEED),
                                  num_episodes=num_episodes, episode_length=episode_length))


def _storable(state: TrainState) -> tuple[TrainState, str]:
    """The state with its PRNG key as raw uint32 data, and the key's implementation."""
    impl = str(jax.random.key_impl(state.key))
    return state._replace(key=jax.random.key_data(state.key)), impl


def train(
    env: Environment,
    policy: Policy,
    config: TrainConfig,
    *,
    iterations: int | None = None,
    env_steps: int | None = None,
    eval_every: int = 10,
    eval_episodes: int = 32,
    episode_length: int | None = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
    callback: Callback | None = None,
) -> tuple[TrainState, list[dict[str, float]]]:
    """Run Algorithm 2 until ``iterations`` or ``env_steps`` (whichever comes first).

    Evaluates at iteration 0, every ``eval_every`` iterations and at the end, on
    ``eval_episodes`` episodes of ``episode_length`` steps (default: the environment's
    standard episode, ``standard_episode_length(env)``). With
    ``run_dir``, each evaluation appends a row to ``metrics.csv`` and saves a checkpoint;
    ``resume=True`` continues from the last checkpoint and reproduces the rows an
    uninterrupted run writes (all but ``wall_seconds``). ``callback(metrics)`` runs after
    every iteration; returning False stops training.

    Returns the final state and the metrics rows.
    """
    if iterations is None and env_steps is None:
        raise ValueError("give iterations or env_steps (or both) to bound training")
    if iterations is not None:
        validation.check_positive_int("iterations", iterations)
    if env_steps is not None:
        validation.check_positive_int("env_steps", env_steps)
    validation.check_positive_int("eval_every", eval_every)
    step = _compiled_step(env, policy, dataclasses.replace(config, seed=0))
    evaluate = _compiled_evaluator(env, policy, config.gamma, eval_episodes, episode_length)
    state, rows, total_steps, wall_offset = init_state(policy, config), [], 0, 0.0
    run = Path(run_dir) if run_dir is not None else None
    if run is not None and resume:
        loaded, header = runs.load_checkpoint(run / runs.CHECKPOINT_FILE, _storable(state)[0])
        state = loaded._replace(key=jax.random.wrap_key_data(loaded.key, impl=header["key_impl"]))
        total_steps, wall_offset = header["env_steps"], header["wall_seconds"]
        # Rows written after the checkpoint (a kill between the two writes) are redone.
        rows = [r for r in runs.read_csv(run / runs.METRICS_FILE) if r["iteration"] <= header["iteration"]]
    start = time.perf_counter() - wall_offset

    def record(last: dict[str, Array] | None) -> None:
        row = {"iteration": int(state.iteration), "env_steps": total_steps,
               "wall_seconds": time.perf_counter() - start}
        row.update({k: float(v) for k, v in evaluate(state.params).items()})
        for name in ("grad_norm", "grad_stderr_norm", "step_size"):
            row[name] = float(last[name]) if last is not None else float("nan")
        rows.append({k: row[k] for k in METRIC_FIELDS})
        if run is not None:
            runs.write_csv(run / runs.METRICS_FILE, rows)
            storable, impl = _storable(state)
            runs.save_checkpoint(run / runs.CHECKPOINT_FILE, storable, {
                "iteration": int(state.iteration), "env_steps": total_steps,
                "wall_seconds": row["wall_seconds"], "key_impl": impl})

    def budget_spent() -> bool:
        return ((iterations is not None and int(state.iteration) >= iterations)
                or (env_steps is not None and total_steps >= env_steps))

    if not rows:
        record(None)
    while not budget_spent():
        state, metrics = step(state)
        total_steps += int(metrics["env_steps"])
        iteration = int(state.iteration)
        if iteration % eval_every == 0 or budget_spent():
            record(metrics)
        progress = {"iteration": iteration, "env_steps": total_steps,
                    **{k: float(v) for k, v in metrics.items() if k != "env_steps"}}
        if rows and rows[-1]["iteration"] == iteration:
            progress.update(rows[-1])
        if callback is not None and callback(progress) is False:
            if rows[-1]["iteration"] != iteration:
                record(metrics)
            break
    return state, rows
