"""Algorithm 2 of the paper as one pure, jittable program: ``make_train``.

theta_{k+1} = theta_k + alpha_k g_k, with g_k an unbiased estimate of grad J(theta_k)
(PG-JD or PG-SF, ``make_gradient_estimator``) and the diminishing steps of eq. (17),
alpha_k = alpha_0 / (k + 1)^p. Theorem 5 bounds the iteration complexity for p in
(1/2, 1); p = 0 gives a constant step. Adam can replace plain SGD; the schedule then
scales its step.

The program is a scan over evaluation intervals of a scan over iterations (the shape of
PureJaxRL's ``make_train``). alpha_0 and p are traced inputs (``Hyper``), so
``jax.vmap`` over keys, step sizes or powers gives many runs for one compilation. The
budget (``iterations``, ``env_steps``) is checked every iteration: once it is spent, the
remaining iterations leave the state as it is and their rows are marked invalid.

Nothing non-finite leaves the program: an iteration whose gradient estimate or updated
parameters hold a nan or an inf is dropped, the rows' "fault" records what went wrong
(``FAULTS``), every later iteration is idle and the state returned is the last finite
iterate. ``weakpg.train.train`` turns a fault into ``NonFiniteError``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from weakpg._src.config import TrainConfig
from weakpg._src.envs.base import Environment
from weakpg._src.evaluation import EVAL_SEED, make_evaluator
from weakpg._src.gradients import check_estimator, make_gradient_estimator
from weakpg._src.policies import Params, Policy

if TYPE_CHECKING:
    import optax

Array = jax.Array
Metrics = dict[str, Array]
# The state, its last step metrics, the fault code, and the state before the last step.
Carry = tuple["TrainState", Metrics, Array, "TrainState"]
STEP_METRICS = ("grad_norm", "grad_stderr_norm", "step_size")
# What a row's "fault" code means: 0 none, else what became non-finite (nan or inf).
FAULTS = ("", "the gradient estimate", "the parameters after the update")


class TrainState(NamedTuple):
    """Everything an iteration reads: a checkpoint holds exactly this.

    ``opt_state`` holds the leaves of the optax state of ``make_optimizer(config)``, in
    ``jax.tree.leaves`` order: with no optax class in the state, a compiled program is
    loaded from the program cache without importing optax (0.06-0.18 s). ``iteration`` and
    ``env_steps`` (environment steps so far) are int32 scalars.
    """

    params: Params
    opt_state: tuple[Array, ...]
    key: Array
    iteration: Array
    env_steps: Array


class Hyper(NamedTuple):
    """The traced settings of a run: alpha_0 and p of alpha_k = alpha_0 / (k + 1)^p."""

    lr: Array
    schedule_power: Array


def hyper(config: TrainConfig) -> Hyper:
    """The ``Hyper`` of a config, as float32 scalars (NumPy's: making them compiles nothing)."""
    return Hyper(np.float32(config.lr), np.float32(config.schedule_power))


def step_size(h: Hyper | TrainConfig) -> Callable[[Array], Array]:
    """alpha_k = alpha_0 / (k + 1)^p (paper, eq. 17)."""
    return lambda k: h.lr / (k + 1.0) ** h.schedule_power


def make_optimizer(config: TrainConfig, h: Hyper | None = None) -> optax.GradientTransformation:
    """The ascent rule as an optax transformation of the *negated* gradient estimate."""
    import optax

    schedule = step_size(config if h is None else h)
    base = optax.sgd(schedule) if config.optimizer == "sgd" else optax.adam(schedule)
    if config.max_grad_norm is None:
        return base
    return optax.chain(optax.clip_by_global_norm(config.max_grad_norm), base)


def init_state(policy: Policy, config: TrainConfig, *, key: Array | None = None,
               key_impl: str | None = None) -> TrainState:
    """theta_0 from ``policy.init`` and the optimizer state, from ``key``.

    ``key`` defaults to ``jax.random.key(config.seed, impl=key_impl)``.
    """
    if key is None:
        key = jax.random.key(config.seed, impl=key_impl)
    key, init_key = jax.random.split(key)
    params = policy.init(init_key)
    zero = jnp.zeros((), jnp.int32)
    return TrainState(params, tuple(jax.tree.leaves(make_optimizer(config).init(params))), key, zero, zero)


def make_train_step(env: Environment, policy: Policy, config: TrainConfig,
                    h: Hyper | None = None) -> Callable[[TrainState], tuple[TrainState, Metrics]]:
    """One iteration of Algorithm 2: ``step(state) -> (state, metrics)``.

    Metrics: "grad_norm" (of the estimate), "grad_stderr_norm", "step_size" (alpha_k),
    "env_steps" (of this iteration) and "fault" (an index into ``FAULTS``: 0 when the
    estimate and the new parameters are finite). ``h`` (traced or not) overrides the
    config's alpha_0 and p.
    """
    import optax

    h = hyper(config) if h is None else h
    estimate = make_gradient_estimator(env, policy, **config.estimator_options())
    optimizer = make_optimizer(config, h)

    def step(state: TrainState) -> tuple[TrainState, Metrics]:
        key, sample_key = jax.random.split(state.key)
        grad = estimate(sample_key, state.params)
        descent = jax.tree.map(jnp.negative, grad.mean)
        opt_tree = jax.tree.structure(jax.eval_shape(optimizer.init, state.params))
        updates, opt_state = optimizer.update(descent, jax.tree.unflatten(opt_tree, state.opt_state),
                                              state.params)
        params = optax.apply_updates(state.params, updates)
        grad_norm = optax.tree.norm(grad.mean)
        # A norm is finite exactly when every entry is (short of overflow beyond 1e19, as bad).
        fault = jnp.where(jnp.isfinite(grad_norm), jnp.where(jnp.isfinite(optax.tree.norm(params)), 0, 2), 1)
        metrics = {"grad_norm": grad_norm, "grad_stderr_norm": optax.tree.norm(grad.stderr),
                   "step_size": step_size(h)(state.iteration), "env_steps": grad.env_steps,
                   "fault": fault.astype(jnp.int32)}
        return TrainState(params, tuple(jax.tree.leaves(opt_state)), key, state.iteration + 1,
                          state.env_steps + grad.env_steps), metrics

    return step


def budget_spent(config: TrainConfig, iteration: Any, env_steps: Any) -> Any:
    """True once ``iterations`` or ``env_steps`` is reached (arrays or Python ints)."""
    spent = False
    if config.iterations is not None:
        spent = spent | (iteration >= config.iterations)
    if config.env_steps is not None:
        spent = spent | (env_steps >= config.env_steps)
    return spent


def default_evaluator(env: Environment, policy: Policy, config: TrainConfig,
                      episode_length: int | None = None) -> Callable[[Params], Metrics]:
    """``make_evaluator`` with the shared evaluation key and ``config.eval_episodes``."""
    return make_evaluator(env, policy, gamma=config.gamma, key=EVAL_SEED,
                          num_episodes=config.eval_episodes, episode_length=episode_length)


def make_train_chunk(env: Environment, policy: Policy, config: TrainConfig, *, num_intervals: int,
                     evaluate: Callable[[Params], Metrics] | None = None, axis_name: str | None = None
                     ) -> Callable[[TrainState, Hyper], tuple[TrainState, Metrics]]:
    """``chunk(state, hyper) -> (state, rows)``: ``num_intervals`` evaluation intervals.

    An interval runs the iterations up to the next multiple of ``config.eval_every`` (fewer
    if the budget runs out), then evaluates. ``rows`` has leading axis
    ``num_intervals + 1``: row 0 evaluates the incoming state, row i the state after
    interval i; each holds "iteration", "env_steps", the step metrics of the interval's
    last iteration (nan for row 0), the evaluation's metrics (``evaluate(params)``,
    default ``default_evaluator``), "fault" (0, or the index into ``FAULTS`` of what
    became non-finite: that iteration is dropped, the chunk stops and returns the state
    before it) and "valid": row 0 is valid when the incoming state is at iteration 0,
    row i when interval i ran at least one iteration and no fault happened up to its end.

    ``axis_name``: the name of the ``jax.vmap`` axis (over seeds, step sizes) that the
    chunk runs under, if any. Batched, an idle iteration or an invalid row's evaluation
    is computed and discarded; with the axis named, those that every run skips (after
    the budget is spent) are not computed at all. The results are the same.
    """
    check_estimator(env, policy, **config.estimator_options())  # now, not when traced
    evaluate = default_evaluator(env, policy, config) if evaluate is None else evaluate
    every = config.eval_every

    def chunk(state: TrainState, h: Hyper) -> tuple[TrainState, Metrics]:
        step = make_train_step(env, policy, config, h)
        blank_eval = jax.tree.map(lambda s: jnp.full(s.shape, jnp.nan, s.dtype),
                                  jax.eval_shape(evaluate, state.params))
        # The carry's constants derive from the state: under jax.vmap they are batched from
        # the start, so each scan batches its body once instead of again on finding them
        # batched after one pass (0.2 s less tracing for 5 seeds on Pendulum).
        zero = state.iteration * 0
        blank_step = {name: zero.astype(jnp.float32) + jnp.nan for name in STEP_METRICS}
        no_fault = zero

        def row(s: TrainState, last: Metrics, fault: Array, valid: Array) -> Metrics:
            measured = _unless(~valid, evaluate, lambda _: blank_eval, s.params, axis_name)
            return {"iteration": s.iteration, "env_steps": s.env_steps, **last, **measured,
                    "fault": fault, "valid": valid}

        def row_then_interval(carry: tuple[Carry, Array], j: Array) -> tuple[tuple[Carry, Array], Metrics]:
            # Row j evaluates the state after interval j (row 0: the incoming state), then
            # interval j + 1 runs (none after the last row): the evaluator is traced once.
            (start, last, fault, before), ran = carry
            valid = jnp.where(j == 0, start.iteration == 0, ran & (fault == 0))
            out = row(start, last, fault, valid)
            end = (start.iteration // every + 1) * every

            def iteration(c: Carry, _: None) -> tuple[Carry, None]:
                s, _, fault, _ = c
                idle = budget_spent(config, s.iteration, s.env_steps) | (s.iteration >= end) | (fault > 0)

                def advance(c: Carry) -> Carry:
                    new, metrics = step(c[0])
                    last = {k: metrics[k].astype(jnp.float32) for k in STEP_METRICS}
                    return new, last, metrics["fault"], c[0]

                return _unless(idle, advance, lambda c: c, c, axis_name), None

            def run(c: Carry) -> Carry:
                return jax.lax.scan(iteration, c, length=every)[0]

            # j is not batched under jax.vmap, so this stays a branch: the last row's
            # interval costs nothing (a batched predicate would run both sides).
            inner = jax.lax.cond(j < num_intervals, run, lambda c: c, (start, last, fault, before))
            return (inner, inner[0].iteration > start.iteration), out

        ((state, _, fault, finite), _), rows = jax.lax.scan(
            row_then_interval, ((state, blank_step, no_fault, state), zero < 0),
            jnp.arange(num_intervals + 1))
        # After a fault the carried state is the non-finite one; the state before it is kept.
        state = jax.tree.map(lambda a, b: jnp.where(fault > 0, a, b), finite, state)
        return state, rows

    return chunk


def _unless(skip: Array, fun: Callable[[Any], Any], otherwise: Callable[[Any], Any], operand: Any,
            axis_name: str | None) -> Any:
    """``otherwise(operand)`` where ``skip``, else ``fun(operand)`` (``jax.lax.cond``).

    Under ``jax.vmap`` a batched ``skip`` turns the cond into a select, which computes
    ``fun`` for every run; with the vmapped axis named, ``fun`` is computed only when some
    run does not skip (``skip`` reduced over the axis is not batched: a real branch).
    """
    def each(x: Any) -> Any:
        return jax.lax.cond(skip, otherwise, fun, x)

    if axis_name is None:
        return each(operand)
    every_run_skips = jax.lax.pmin(skip.astype(jnp.int32), axis_name) > 0
    return jax.lax.cond(every_run_skips, otherwise, each, operand)


def num_intervals(config: TrainConfig, iterations: int | None = None) -> int:
    """Evaluation intervals that cover ``iterations`` (default ``config.iterations``)."""
    iterations = config.iterations if iterations is None else iterations
    if iterations is None:
        raise ValueError("make_train needs a static number of iterations: set config.iterations "
                         "(config.env_steps may still stop the run earlier)")
    return math.ceil(iterations / config.eval_every)


def make_train(env: Environment, policy: Policy, config: TrainConfig, *,
               evaluate: Callable[[Params], Metrics] | None = None, axis_name: str | None = None
               ) -> Callable[[Array, Hyper], tuple[TrainState, Metrics]]:
    """All of Algorithm 2 as ``train(key, hyper) -> (state, rows)``, pure and jittable.

    ``key`` replaces ``jax.random.key(config.seed)``; ``hyper`` (``hyper(config)`` or
    traced values) gives alpha_0 and p. ``rows`` is the chunk's (see
    ``make_train_chunk``) over the whole budget, ``ceil(iterations / eval_every) + 1``
    rows, the valid ones those an uninterrupted ``weakpg.train.train`` records.
    ``jax.vmap(train)`` over keys (and hypers) runs many seeds in one compilation;
    ``jax.vmap(make_train(..., axis_name=name), axis_name=name)`` also skips the work every
    run skips once its budget is spent (``make_train_chunk``).
    """
    chunk = make_train_chunk(env, policy, config, num_intervals=num_intervals(config), evaluate=evaluate,
                             axis_name=axis_name)

    def train(key: Array, h: Hyper) -> tuple[TrainState, Metrics]:
        return chunk(init_state(policy, config, key=key), h)

    return train
