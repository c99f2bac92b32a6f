"""The roll-out engine: many simulations of random length on a fixed set of lanes.

Policy-gradient samples need roll-outs of geometric length: T' ~ Geom(1 - gamma) steps
to draw a state from the discounted occupancy measure, then T + 1 steps per phantom
branch to estimate Q without bias (paper, Theorem 2). The longest of B geometric draws
is about ln(B) / (1 - gamma), so a batch that waits for its longest member wastes most
of its work. This engine keeps lanes busy instead: it holds a queue of jobs, longest
first, and a lane whose job ends takes the next job at once, so its cost is set by the
total number of steps, not by the longest one.

A job is a start state, a horizon (the number of steps to simulate) and optionally the
first action of each member of its group. A group is ``group_size`` copies of the
simulator that run one job in lockstep from the same start state: they share every
random number (policy noise, transition noise, horizon) and differ only in their first
actions. That is the coupling (common random numbers) of phantom pairs.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from weakpg._src.envs.base import Environment
from weakpg._src.policies import Params, Policy

Array = jax.Array
State = Any


class Jobs(NamedTuple):
    """A queue of J roll-out jobs.

    Attributes:
      start: start state of each job, a pytree with leading axis J.
      horizon: (J,) int32, the number of steps to simulate (0 allowed).
      first_action: (J, group_size, *action_shape) actions of each member's first step,
        or None to draw every action from the policy.
    """

    start: State
    horizon: Array
    first_action: Array | None = None


class JobResults(NamedTuple):
    """What the engine returns.

    Attributes:
      returns: (J, group_size) undiscounted sum of the rewards of each member's steps.
      final: the state of member 0 after its last step (pytree with leading axis J).
      env_steps: environment steps simulated (summed over members), int32 scalar.
      lane_steps: member-steps the lanes spent, busy or idle; env_steps / lane_steps is
        the lane utilisation.
    """

    returns: Array
    final: State
    env_steps: Array
    lane_steps: Array


def geometric_horizon(key: Array, gamma: Array, shape: tuple[int, ...]) -> Array:
    """T with P(T = t) = (1 - gamma) gamma^t, t = 0, 1, 2, ... (int32)."""
    u = jax.random.uniform(key, shape, minval=jnp.finfo(jnp.float32).tiny, maxval=1.0)
    return jnp.floor(jnp.log(u) / jnp.log(gamma)).astype(jnp.int32)


def _select(mask: Array, new: State, old: State) -> State:
    """Per-slot choice between two pytrees whose leaves lead with the slot axis."""

    def one(n: Array, o: Array) -> Array:
        return jnp.where(mask.reshape(mask.shape + (1,) * (o.ndim - 1)), n, o)

    return jax.tree.map(one, new, old)


def run_jobs(
    key: Array,
    env: Environment,
    policy: Policy,
    params: Params,
    jobs: Jobs,
    *,
    group_size: int,
    num_lanes: int,
    keep_final: bool = True,
    chunk: int = 16,
) -> JobResults:
    """Run every job in ``jobs`` on ``num_lanes`` groups of ``group_size`` simulators.

    Each engine step: lanes whose job is over write their results and take the next
    job from the queue; then every busy lane takes one step. Random numbers come from
    ``key``, one draw per lane, shared by the lane's members; policy noise is drawn
    for ``chunk`` steps at a time. The loop ends when the queue is empty and every lane
    is idle; it checks that every ``chunk`` steps. ``keep_final=False`` skips recording final states.

    Simulators are stored flat, ``num_lanes * group_size`` slots, lane-major, so that
    every per-simulator operation is one vectorised loop.
    """
    # Longest job first: the last jobs to start are then the shortest, so lanes finish
    # together (LPT scheduling). Horizons are fixed before the run and the noise of a
    # lane-step does not depend on which job takes it, so the order biases nothing.
    order = jnp.argsort(-jobs.horizon, stable=True)
    jobs = jax.tree.map(lambda x: x[order], jobs)
    num_jobs = jobs.horizon.shape[0]
    lanes, members = num_lanes, group_size
    slots = lanes * members
    k_policy, k_env = jax.random.split(key)
    has_first = jobs.first_action is not None

    def per_slot(x: Array) -> Array:
        return x if members == 1 else jnp.repeat(x, members, axis=0)

    def engine_step(c: dict[str, Any], lane_noise: Array) -> tuple[dict[str, Any], None]:
        c = dict(c)
        # 1. Lanes whose job is over write their results.
        done = (c["remaining"] == 0) & (c["job"] < num_jobs)
        sink = jnp.where(done, c["job"], num_jobs)  # out-of-range rows are dropped
        c["returns"] = c["returns"].at[sink].set(c["acc"].reshape(lanes, members), mode="drop")
        if keep_final:
            c["final"] = jax.tree.map(
                lambda buf, x: buf.at[sink].set(x[::members], mode="drop"), c["final"], c["state"])
        # 2. Idle lanes take the next jobs from the queue, in lane order.
        idle = c["remaining"] == 0
        idx = c["next"] + jnp.cumsum(idle, dtype=jnp.int32) - 1
        start = idle & (idx < num_jobs)
        safe = jnp.minimum(idx, num_jobs - 1)
        c["job"] = jnp.where(start, idx, jnp.where(idle, num_jobs, c["job"]))
        start_slot = per_slot(start)
        c["state"] = _select(start_slot, jax.tree.map(lambda x: per_slot(x[safe]), jobs.start),
                             c["state"])
        c["remaining"] = jnp.where(start, jobs.horizon[safe], c["remaining"])
        c["age"] = jnp.where(start, 0, c["age"])
        c["acc"] = jnp.where(start_slot, 0.0, c["acc"])
        c["next"] = jnp.minimum(c["next"] + jnp.sum(idle, dtype=jnp.int32), num_jobs)
        # 3. Busy lanes step, every member with the lane's random numbers.
        busy = c["remaining"] > 0
        obs = jax.vmap(env.observe)(c["state"])
        dist_params = jax.vmap(policy.dist_params, (None, 0))(params, obs)
        action = policy.act(dist_params, per_slot(lane_noise))
        if has_first:
            first = jobs.first_action[jnp.minimum(c["job"], num_jobs - 1)]
            first = first.reshape((slots,) + first.shape[2:])
            is_first = per_slot(c["age"] == 0).reshape((slots,) + (1,) * (action.ndim - 1))
            action = jnp.where(is_first, first, action)
        env_keys = per_slot(jax.random.split(jax.random.fold_in(k_env, c["t"]), lanes))
        # Idle lanes step too, on states that are never read again: their results were
        # written before they went idle, and a new job overwrites their state.
        c["state"], reward = jax.vmap(env.step)(env_keys, c["state"], policy.env_action(action))
        c["acc"] = c["acc"] + reward
        c["remaining"] = c["remaining"] - busy
        c["age"] = c["age"] + busy
        c["env_steps"] = c["env_steps"] + members * jnp.sum(busy, dtype=jnp.int32)
        c["t"] = c["t"] + 1
        return c, None

    def run_chunk(carry: dict[str, Any]) -> dict[str, Any]:
        # Policy noise for the whole chunk in one draw: one PRNG call per step would cost
        # about as much as the rest of the step.
        noise = policy.noise(jax.random.fold_in(k_policy, carry["t"]), (chunk, lanes))
        return jax.lax.scan(engine_step, carry, noise)[0]

    def not_finished(carry: dict[str, Any]) -> Array:
        return (carry["next"] < num_jobs) | jnp.any(carry["job"] < num_jobs)

    first_state = jax.tree.map(lambda x: x[0], jobs.start)
    reward_dtype = jax.eval_shape(
        lambda s: env.step(jax.random.key(0), s, policy.env_action(
            policy.act(policy.dist_params(params, env.observe(s)), policy.noise(jax.random.key(0))))),
        first_state)[1].dtype
    # The counters derive from the horizons: under jax.vmap they are batched from the
    # start, so the loop batches its body once instead of again on finding them batched.
    zero = jobs.horizon[0] * 0
    carry = {
        "state": jax.tree.map(lambda x: jnp.broadcast_to(x, (slots,) + x.shape), first_state),
        "job": jnp.full(lanes, num_jobs, jnp.int32) + zero,
        "remaining": jnp.zeros(lanes, jnp.int32) + zero,
        "age": jnp.zeros(lanes, jnp.int32) + zero,
        "acc": jnp.zeros(slots, reward_dtype) + zero,
        "next": zero,
        "t": zero,
        "env_steps": zero,
        "returns": jnp.zeros((num_jobs, members), reward_dtype) + zero,
        # Every job writes its row of ``final``; starting from the jobs' own start states
        # (not zeros, which are never batched) batches it from the start too.
        "final": jobs.start if keep_final else None,
    }
    carry = jax.lax.while_loop(not_finished, run_chunk, carry)
    # A job of horizon 0 is over before it starts, but its lane stepped once (idle lanes
    # step): its results are its start state and no reward.
    empty = jobs.horizon == 0
    returns = jnp.where(empty[:, None], 0.0, carry["returns"])
    final = _select(empty, jobs.start, carry["final"]) if keep_final else None
    unsort = lambda x: jnp.zeros_like(x).at[order].set(x)  # noqa: E731
    return JobResults(unsort(returns), jax.tree.map(unsort, final), carry["env_steps"],
                      carry["t"] * slots)
