"""A trained policy that acts: ``Agent``, what ``weakpg.load`` returns.

``Agent.act(obs)`` is the action of the mean (Gaussian) or most likely (softmax) action,
the one weakpg's evaluations report; ``Agent.act(obs, key)`` draws a ~ pi(. | obs). Both
return what the simulator receives (``policy.env_action``: squashed into the bounds under
``squash="tanh"``, else unclipped, the environment clipping as it did in training).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from weakpg._src.envs.base import Environment
from weakpg._src.policies import Params, Policy

Array = jax.Array


def policy_action(policy: Policy, params: Params, obs: Array, noise: Array | None = None) -> Array:
    """The env action of one observation: a = act(dist_params(obs), noise).

    ``noise`` is ``policy.noise``'s standard noise (shape ``noise_shape``); None stands for
    zero noise, which gives the mean of a Gaussian and the argmax of a softmax's logits.
    """
    dist_params = policy.dist_params(params, obs)
    if noise is None:
        shape = jax.eval_shape(policy.noise, jax.random.key(0))
        noise = jnp.zeros(shape.shape, shape.dtype)
    return policy.env_action(policy.act(dist_params, noise))


class Agent:
    """A policy with its trained parameters, and the environment it was trained on.

    Attributes:
      policy: the ``Policy``; params: its parameters (a pytree of arrays).
      env: the simulator (``weakpg.envs``) whose observations the policy reads.
      config: the run's settings: the ``RunConfig`` of ``weakpg train``, the study setup of
        ``weakpg reproduce``, None for a run of ``weakpg.train.train`` (no config.json).
      checkpoint: the file the parameters came from; iteration, env_steps: where in
        training it was written.
    """

    def __init__(self, policy: Policy, params: Params, env: Environment, *, config: Any = None,
                 checkpoint: Path | None = None, iteration: int | None = None,
                 env_steps: int | None = None):
        self.policy, self.params, self.env, self.config = policy, params, env, config
        self.checkpoint, self.iteration, self.env_steps = checkpoint, iteration, env_steps
        self._obs_rank = len(env.observation_shape)
        single = lambda p, o, n: policy_action(policy, p, o, n)
        self._mean = jax.jit(lambda p, o: single(p, o, None))
        self._mean_batch = jax.jit(jax.vmap(lambda p, o: single(p, o, None), (None, 0)))
        self._sample = jax.jit(lambda p, o, k: single(p, o, policy.noise(k)))
        self._sample_batch = jax.jit(
            lambda p, o, k: jax.vmap(single, (None, 0, 0))(p, o, policy.noise(k, o.shape[:1])))

    def __repr__(self) -> str:
        return (f"Agent({type(self.policy).__name__}, env={self.env!r}, iteration={self.iteration}, "
                f"checkpoint={str(self.checkpoint) if self.checkpoint else None!r})")

    def act(self, obs: Any, key: Array | None = None) -> Any:
        """The action for ``obs``: the mean or most likely one, or with ``key`` a draw.

        ``obs``: one observation (shape ``env.observation_shape``) or a batch of them (one
        leading axis), numpy or JAX. Returns numpy for numpy (or list) input, a JAX array for
        JAX input; a batch gives one action per row (and, with ``key``, independent draws).
        """
        is_jax = isinstance(obs, jax.Array)
        x = jnp.asarray(obs)
        if x.ndim not in (self._obs_rank, self._obs_rank + 1) or (
                x.shape[x.ndim - self._obs_rank:] != tuple(self.env.observation_shape)):
            raise ValueError(f"obs must have shape {tuple(self.env.observation_shape)} or (batch, "
                             f"*{tuple(self.env.observation_shape)}), got {x.shape}")
        batched = x.ndim == self._obs_rank + 1
        if key is None:
            action = (self._mean_batch if batched else self._mean)(self.params, x)
        else:
            if not (isinstance(key, jax.Array) and (jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
                                                     or (key.dtype == jnp.uint32 and key.shape == (2,)))):
                raise TypeError(f"key must be a JAX PRNG key (jax.random.key(seed)) or None, got {key!r:.60}")
            action = (self._sample_batch if batched else self._sample)(self.params, x, key)
        return action if is_jax else np.asarray(action)
