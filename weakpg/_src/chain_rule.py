"""The chain rule from distribution-level gradients to the policy parameters.

Sample j gives a cotangent ct_j, an unbiased estimate of the gradient with respect to the
distribution's parameters at obs_j; g_j = d<dist_params(theta, obs_j), ct_j>/d theta is
then a sample of grad J. One ``jax.vjp`` over the batch gives their mean; a chunked scan
of per-sample ``jax.vjp`` gives their spread without holding every g_j at once.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from weakpg._src.policies import Params, Policy

Array = jax.Array


def chain_rule(policy: Policy, params: Params, obs: Array,
                cotangent: dict[str, Array]) -> tuple[Params, Params]:
    """Mean and standard error of g_j = d<dist_params(theta, obs_j), cot_j>/d theta."""
    num_samples = obs.shape[0]

    def per_sample(o: Array, ct: dict[str, Array]) -> Params:
        _, vjp = jax.vjp(lambda p: {k: policy.dist_params(p, o)[k] for k in ct}, params)
        return vjp(ct)[0]

    num_params = sum(x.size for x in jax.tree.leaves(params))
    chunk = int(max(1, min(num_samples, 2**22 // max(num_params, 1))))
    pad = -num_samples % chunk
    chunked = jax.tree.map(
        lambda x: jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1)).reshape(
            (-1, chunk) + x.shape[1:]), (obs, cotangent))
    valid = (jnp.arange(num_samples + pad) < num_samples).reshape(-1, chunk)

    def moments(center: Params) -> Params:
        def body(total: Params, xs: tuple[Any, Array]) -> tuple[Params, None]:
            (o, ct), mask = xs
            g = jax.vmap(per_sample)(o, ct)
            sq = jax.tree.map(
                lambda gi, c: jnp.sum(jnp.where(mask.reshape((-1,) + (1,) * c.ndim),
                                                (gi - c) ** 2, 0.0), axis=0), g, center)
            return jax.tree.map(jnp.add, total, sq), None

        # Zeros made from ``center`` (0 * c: a non-finite mean gives a non-finite spread
        # either way) are batched under jax.vmap from the start, so the scan batches its
        # body once instead of again on finding the sums batched.
        return jax.lax.scan(body, jax.tree.map(lambda c: 0 * c, center), (chunked, valid))[0]

    _, vjp_all = jax.vjp(
        lambda p: jax.vmap(lambda o: {k: policy.dist_params(p, o)[k] for k in cotangent})(obs), params)
    mean = jax.tree.map(lambda g: g / num_samples, vjp_all(cotangent)[0])
    if num_samples == 1:
        return mean, jax.tree.map(lambda m: jnp.full_like(m, jnp.inf), mean)
    squares = moments(mean)
    stderr = jax.tree.map(lambda s: jnp.sqrt(s / (num_samples - 1) / num_samples), squares)
    return mean, stderr
