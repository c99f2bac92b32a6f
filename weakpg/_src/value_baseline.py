"""The fitted value baseline of PG-SF: a ridge regression of returns on state features.

b(s_j) = phi(s_j)^T w, with w fitted on the other half of the batch (cross-fitting), so a
sample's baseline never sees the action it is subtracted from and the score-function
estimate stays unbiased.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from weakpg._src.policies import Policy

Array = jax.Array

RIDGE = 1e-3


def value_features(policy: Policy, obs: Array) -> Array:
    """Features for the fitted value baseline, quadratic in a base feature vector, (J, F).

    The base is the policy's own features, one-hot states for a tabular policy, or the
    flattened observation; a value function is often quadratic in it (an LQR's is).
    """
    if getattr(policy, "num_states", None) is not None:
        return jax.nn.one_hot(obs, policy.num_states)
    features = getattr(policy, "features", None)
    base = jax.vmap(features)(obs) if features is not None else obs.reshape(obs.shape[0], -1)
    dim = base.shape[1]
    if dim <= 16:
        rows, cols = np.triu_indices(dim)
        squares = base[:, rows] * base[:, cols]
    else:
        squares = base**2
    return jnp.concatenate([base, squares, jnp.ones((base.shape[0], 1), base.dtype)], axis=1)


def cross_fitted_value(features: Array, targets: Array) -> Array:
    """Ridge regression of targets (J,) on features (J, F), each half predicted by the other half."""
    half = jnp.arange(targets.shape[0]) % 2 == 0

    def fit_predict(train: Array) -> Array:
        w = train.astype(features.dtype)[:, None]
        gram = (features * w).T @ features + RIDGE * jnp.eye(features.shape[1])
        coef = jnp.linalg.solve(gram, (features * w).T @ targets)
        return features @ coef

    return jnp.where(half, fit_predict(~half), fit_predict(half))
