"""Evaluation of a policy with common random numbers.

Every evaluation runs the policy from the same start states with the same noise, so
curves of different methods and iterations are comparable: the discounted return J the
paper plots (of the stochastic policy), and the undiscounted return of the mean
(Gaussian) or most likely (softmax) action over the task's standard episode, what other
libraries report (200 steps on Pendulum-v1, 500 on CartPole-v1).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from weakpg._src import validation
from weakpg._src.config import MAX_SEED, check_int_range
from weakpg._src.envs.base import Environment
from weakpg._src.policies import Params, Policy, check_policy_fits

Array = jax.Array
DEFAULT_EPISODE_LENGTH = 200  # Pendulum-v1's time limit
EVAL_SEED = 2_718_281  # one evaluation key for every run: common random numbers across runs


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


def make_evaluator(env: Environment, policy: Policy, *, gamma: float, key: Array | int,
                   num_episodes: int = 64,
                   episode_length: int | None = None) -> Callable[[Params], dict[str, Array]]:
    """``evaluate(params)``: returns from fixed start states with fixed noise.

    "discounted_return": mean of sum_t gamma^t r_t of the stochastic policy (the paper's J,
    truncated where gamma^t < 1e-4); "episode_return": mean undiscounted return of the
    first ``episode_length`` steps (default ``standard_episode_length(env)``) of the mean
    action of a Gaussian policy, the most likely action of a softmax one (no exploration).
    ``key`` is a PRNG key or an int seed, made into ``jax.random.key(key)`` inside the
    traced evaluation (then building the evaluator runs nothing eagerly).
    """
    check_policy_fits(env, policy)
    if isinstance(key, numbers.Integral) and not isinstance(key, bool):
        check_int_range("key", int(key), 0, MAX_SEED)
    elif not isinstance(key, jax.Array):
        raise ValueError(f"key must be a PRNG key (jax.random.key(seed)) or an int seed in [0, {MAX_SEED}], "
                         f"got {key!r}")
    validation.check_positive_int("num_episodes", num_episodes)
    if episode_length is None:
        episode_length = standard_episode_length(env)
    validation.check_positive_int("episode_length", episode_length)
    horizon = evaluation_horizon(gamma, episode_length=episode_length)

    def inputs() -> tuple[Any, Array, Array]:
        # Drawn inside the (jitted) evaluation from the fixed key: the same every call,
        # and no eager work when the evaluator is built.
        start_key, noise_key, env_key = jax.random.split(
            jax.random.key(key) if isinstance(key, numbers.Integral) else key, 3)
        starts = jax.vmap(env.reset)(jax.random.split(start_key, num_episodes))
        noise = policy.noise(noise_key, (horizon, num_episodes))
        return starts, noise, jax.random.split(env_key, (horizon, num_episodes))

    def returns(params: Params, starts: Any, noise: Array, keys: Array, weights: Array) -> Array:
        """sum_t weights_t r_t per episode (column), summed in time order inside the scan.

        A running sum (rather than a reduction after the scan) adds in one fixed order,
        so a vmapped evaluation gives the unbatched numbers to the last bit. Rewards of
        weight 0 are left out, not multiplied: a state run past its episode may overflow.
        """
        def body(carry, xs):
            state, total = carry
            n, k, w = xs
            dist_params = jax.vmap(policy.dist_params, (None, 0))(params, jax.vmap(env.observe)(state))
            action = policy.act(dist_params, n)
            state, reward = jax.vmap(env.step)(k, state, policy.env_action(action))
            return (state, jnp.where(w > 0, total + w * reward, total)), None

        zero = jnp.zeros(weights.shape[1], jnp.result_type(float))
        return jax.lax.scan(body, (starts, zero), (noise, keys, weights))[0][1]  # (episodes,)

    def evaluate(params: Params) -> dict[str, Array]:
        # Both kinds of episode run in one scan of ``horizon`` steps, so the dynamics are
        # traced and compiled once: columns [0, N) follow the policy with its noise,
        # weighted gamma^t; columns [N, 2N) take the mean action (zero noise: the mode of
        # a softmax policy), weighted 1 up to ``episode_length`` and 0 after. Both kinds
        # start from the same states with the same env keys.
        starts, noise, env_keys = inputs()
        t = jnp.arange(horizon)[:, None]
        weights = jnp.concatenate([jnp.broadcast_to(gamma ** t, noise.shape[:2]),
                                   jnp.broadcast_to(t < episode_length, noise.shape[:2]).astype(float)],
                                  axis=1)
        total = returns(params, jax.tree.map(lambda x: jnp.concatenate([x, x]), starts),
                        jnp.concatenate([noise, jnp.zeros_like(noise)], axis=1),
                        jnp.concatenate([env_keys, env_keys], axis=1), weights)
        return {"discounted_return": jnp.mean(total[:num_episodes]),
                "episode_return": jnp.mean(total[num_episodes:])}

    return evaluate
