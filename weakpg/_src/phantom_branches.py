"""The phantom branches of one policy-gradient sample: their first actions, and how their
returns become a gradient with respect to the distribution's parameters.

At a state s with pi(. | s) = p(. ; lambda), each branch takes a chosen first action and
its return is an unbiased Q(s, a) (``gradients``). A construction returns the first
actions of every sample's branches, (J, G, *action_shape), and the map from their
returns (J, G) to the cotangent {name: (J, *param_shape)}, an unbiased estimate of
d/d lambda E_{a ~ p}[Q(s, a)]:

  weak derivative (PG-JD, paper eq. 16): for every element i of every learned parameter,
    c_i (Q(s, a_i^+) - Q(s, a_i^-)) with (c, a^+, a^-) from ``Distribution.weak_derivative``;
  score function (PG-SF): (Q(s, a) - b) grad_lambda log p(a), a ~ p, with b = 0, a
    roll-out baseline (the return of a second, fresh action) or a fitted value
    (``value_baseline``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from weakpg._src.policies import Policy
from weakpg._src.value_baseline import cross_fitted_value, value_features

Array = jax.Array


class Branches(NamedTuple):
    """First actions of each sample's branches and how returns become a gradient."""

    first_action: Array  # (J, G, *action_shape)
    cotangent: Callable[[Array], dict[str, Array]]  # returns (J, G) -> {name: (J, ...)}


def weak_derivative_branches(key: Array, policy: Policy, dist_params: dict[str, Array],
                             coupled: bool) -> Branches:
    """Branches a_i^+, a_i^- for every element i of every learned distribution parameter."""
    num_samples = jax.tree.leaves(dist_params)[0].shape[0]
    keys = jax.random.split(key, (len(policy.learned_dist_params), num_samples))
    actions, layout = [], []
    for name, k in zip(policy.learned_dist_params, keys):
        wd = jax.vmap(lambda kk, dp, name=name: policy.distribution(dp).weak_derivative(
            kk, name, coupled=coupled))(k, dist_params)
        param_shape = wd.constant.shape[1:]
        size = math.prod(param_shape)
        flat = lambda x, size=size: x.reshape((num_samples, size) + policy.action_shape)  # noqa: E731
        actions += [flat(wd.positive), flat(wd.negative)]
        layout.append((name, wd.constant, param_shape, size))

    def cotangent(returns: Array) -> dict[str, Array]:
        out, offset = {}, 0
        for name, constant, param_shape, size in layout:
            diff = returns[:, offset:offset + size] - returns[:, offset + size:offset + 2 * size]
            out[name] = constant * diff.reshape((num_samples,) + param_shape)
            offset += 2 * size
        return out

    return Branches(jnp.concatenate(actions, axis=1), cotangent)


def score_function_branches(key: Array, policy: Policy, dist_params: dict[str, Array],
                            obs: Array, baseline: str | None) -> Branches:
    """Branch a ~ pi (plus a fresh a' ~ pi for the roll-out baseline)."""
    num_samples = obs.shape[0]
    num_branches = 2 if baseline == "rollout" else 1
    noise = policy.noise(key, (num_samples, num_branches))
    actions = jax.vmap(jax.vmap(policy.act, (None, 0)))(dist_params, noise)
    scores = jax.vmap(jax.grad(lambda dp, a: policy.distribution(dp).log_prob(a)))(
        dist_params, actions[:, 0])

    def cotangent(returns: Array) -> dict[str, Array]:
        q = returns[:, 0]
        if baseline == "rollout":
            q = q - returns[:, 1]
        elif baseline == "value":
            q = q - cross_fitted_value(value_features(policy, obs), q)
        weight = lambda s: q.reshape((num_samples,) + (1,) * (s.ndim - 1)) * s  # noqa: E731
        return {name: weight(scores[name]) for name in policy.learned_dist_params}

    return Branches(actions, cotangent)
