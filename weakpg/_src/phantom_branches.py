"""The phantom branches of one policy-gradient sample: their first actions, and how their
returns become a gradient with respect to the distribution's parameters.

At a state s with pi(. | s) = p(. ; lambda), each branch takes a chosen first action and
its return is an unbiased Q(s, a) (``gradients``). A construction returns the first
actions of every sample's branches, (J, G, *action_shape), and the map from their
returns (J, G) to the cotangent {name: (J, *param_shape)}, an unbiased estimate of
d/d lambda E_{a ~ p}[Q(s, a)]:

  weak derivative (PG-JD, paper eq. 16): for every element i of every learned parameter,
    c_i (Q(s, a_i^+) - Q(s, a_i^-)) with (c, a^+, a^-) from ``Distribution.weak_derivative``,
    or (d / k) times that for k random elements of the d (``coordinates``);
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

from weakpg._src.distributions import Gaussian, WeakDerivative
from weakpg._src.policies import Policy
from weakpg._src.value_baseline import cross_fitted_value, value_features

Array = jax.Array


class Branches(NamedTuple):
    """First actions of each sample's branches and how returns become a gradient."""

    first_action: Array  # (J, G, *action_shape)
    cotangent: Callable[[Array], dict[str, Array]]  # returns (J, G) -> {name: (J, ...)}


def coordinate_weight(size: int, coordinates: int) -> float:
    """d / k, the inverse of P(i in S) for a uniform k-subset S of d coordinates."""
    return size / coordinates


def random_coordinates(key: Array, num_samples: int, size: int, coordinates: int) -> Array:
    """(J, k) int32: per sample, k of the ``size`` coordinates, uniformly without replacement."""
    return jax.vmap(lambda k: jax.random.choice(k, size, (coordinates,), replace=False))(
        jax.random.split(key, num_samples))


def weak_derivative_branches(key: Array, policy: Policy, dist_params: dict[str, Array], *,
                             coupled: bool, coordinates: int | None = None,
                             coupling: str = "mirror") -> Branches:
    """Branches a_i^+, a_i^- for the elements i of every learned distribution parameter.

    ``coordinates=None``: every element i of a parameter of d elements. ``coordinates=k``:
    per sample and parameter, a uniform k-subset S; the cotangent is
    (d / k) c_i (Q(s, a_i^+) - Q(s, a_i^-)) for i in S and 0 elsewhere, unbiased since
    P(i in S) = k / d. ``coupling`` is the Gaussian mean pair's (``Gaussian.weak_derivative``).
    """
    num_samples = jax.tree.leaves(dist_params)[0].shape[0]
    names = policy.learned_dist_params
    if coordinates is not None:
        key, subset_key = jax.random.split(key)
        subset_keys = jax.random.split(subset_key, len(names))
    keys = jax.random.split(key, (len(names), num_samples))
    actions, layout = [], []
    for n, (name, k) in enumerate(zip(names, keys)):
        def draw(kk: Array, dp: dict[str, Array], name: str = name) -> WeakDerivative:
            dist = policy.distribution(dp)
            options = {"coupling": coupling} if name == "mean" and isinstance(dist, Gaussian) else {}
            return dist.weak_derivative(kk, name, coupled=coupled, **options)

        wd = jax.vmap(draw)(k, dist_params)
        param_shape = wd.constant.shape[1:]
        size = math.prod(param_shape)
        constant = wd.constant.reshape(num_samples, size)
        positive, negative = (x.reshape((num_samples, size) + policy.action_shape)
                              for x in (wd.positive, wd.negative))
        chosen = None
        if coordinates is not None:
            chosen = random_coordinates(subset_keys[n], num_samples, size, coordinates)
            pick = lambda x, chosen=chosen: jnp.take_along_axis(  # noqa: E731
                x, chosen.reshape(chosen.shape + (1,) * (x.ndim - 2)), axis=1)
            positive, negative = pick(positive), pick(negative)
            constant = coordinate_weight(size, coordinates) * pick(constant)
        actions += [positive, negative]
        layout.append((name, constant, chosen, param_shape))

    def cotangent(returns: Array) -> dict[str, Array]:
        out, offset = {}, 0
        for name, constant, chosen, param_shape in layout:
            width = constant.shape[1]
            diff = returns[:, offset:offset + width] - returns[:, offset + width:offset + 2 * width]
            term = constant * diff
            if chosen is not None:
                rows = jnp.arange(num_samples)[:, None]
                term = jnp.zeros((num_samples, math.prod(param_shape)), term.dtype).at[rows, chosen].set(term)
            out[name] = term.reshape((num_samples,) + param_shape)
            offset += 2 * width
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
