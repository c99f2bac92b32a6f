"""Policies from any network: ``from_network(env, apply, params)``.

``apply(params, obs)`` maps the parameters (a pytree of float arrays) and one unbatched
observation to the Gaussian mean (shape ``env.action_shape``) or, for discrete actions,
the logits (shape ``(num_actions,)``). Any JAX function fits:

  flax.linen:  ``params = module.init(key, obs)``, ``apply = module.apply``;
  flax.nnx:    ``graphdef, params = nnx.split(model)``,
               ``apply = lambda p, o: nnx.merge(graphdef, p)(o)``;
  equinox:     ``params, static = eqx.partition(model, eqx.is_array)``,
               ``apply = lambda p, o: eqx.combine(p, static)(o)``.

Instead of ``params``, ``init=`` may give a function ``init(key) -> params`` (with
flax.linen ``lambda key: module.init(key, obs)``), so that each seed starts from its own
draw. The policy's parameters are ``{"network": params}`` (plus ``"log_sigma"`` when
sigma is learned): ``estimate_gradient``, training and checkpoints see that pytree. As for every
policy, the weak derivative is taken of the action distribution and the chain rule to
the network's parameters goes through ``jax.vjp`` of ``apply``.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from weakpg._src import validation
from weakpg._src.envs.base import Environment
from weakpg._src.policies import Array, Params, Policy, _GaussianPolicy, _SoftmaxPolicy

Apply = Callable[[Params, Array], Array]
Init = Callable[[Array], Params]


def _fixed(params: Params) -> Init:
    return lambda key: params


class NetworkGaussian(_GaussianPolicy):
    """N(apply(params, obs), diag(sigma^2)); see ``from_network``."""

    def __init__(self, env: Environment, apply: Apply, init: Init, *, sigma: float | Array,
                 learn_sigma: bool, squash: str | None):
        super().__init__(env, sigma, learn_sigma, squash)
        self.apply, self.network_init = apply, init

    def init(self, key: Array) -> Params:
        return self._init_sigma({"network": self.network_init(key)})

    def mean(self, params: Params, obs: Array) -> Array:
        return self.apply(params["network"], obs)


class NetworkSoftmax(_SoftmaxPolicy):
    """softmax(apply(params, obs)); see ``from_network``."""

    def __init__(self, env: Environment, apply: Apply, init: Init):
        super().__init__(env)
        self.apply, self.network_init = apply, init

    def init(self, key: Array) -> Params:
        return {"network": self.network_init(key)}

    def logits(self, params: Params, obs: Array) -> Array:
        return self.apply(params["network"], obs)


def _check_params(params: Params) -> None:
    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    if not leaves:
        raise ValueError(f"params must be a pytree holding at least one array, got {params!r:.80}")
    for path, leaf in leaves:
        name = f"params{jax.tree_util.keystr(path)}"
        if not hasattr(leaf, "dtype") or not jnp.issubdtype(leaf.dtype, jnp.floating):
            raise ValueError(
                f"{name} must be an array of floats (it is differentiated), got {leaf!r:.80}; with "
                "equinox, pass the array part of the model: eqx.partition(model, eqx.is_array)[0]")
        validation.check_finite(name, leaf)


def from_network(env: Environment, apply: Apply, params: Params | None = None, *,
                 init: Init | None = None, sigma: float | Array = 1.0, learn_sigma: bool = False,
                 squash: str | None = None) -> Policy:
    """A policy whose mean (continuous actions) or logits (discrete) is ``apply(params, obs)``.

    Continuous actions: pi(. | obs) = N(apply(params, obs), diag(sigma^2)), sigma learned
    as ``"log_sigma"`` when ``learn_sigma``; ``squash="tanh"`` maps the Gaussian action
    into the environment's bounds, as for ``LinearGaussian``. Discrete actions:
    pi(. | obs) = softmax(apply(params, obs)) (``sigma`` is unused there). The policy's
    parameters are ``{"network": params}`` (+ ``"log_sigma"``); ``policy.init(key)``
    returns them for every key. Give ``init`` instead of ``params``, a function of a PRNG
    key to the network's parameters, and ``policy.init(key)`` is ``{"network": init(key)}``
    (+ ``"log_sigma"``): each training seed then starts from its own network.

    Raises ValueError when neither or both of ``params`` and ``init`` are given,
    ``apply`` or ``init`` is not callable, the parameters hold anything but finite float
    arrays, or ``apply(params, obs)`` on an observation of ``env`` does not
    give the shape the actions need.
    """
    if not isinstance(env, Environment):
        raise ValueError(f"env must be a weakpg Environment (see weakpg.envs.make), got {env!r}")
    if not callable(apply):
        raise ValueError(f"apply must be a function apply(params, obs), got {apply!r:.80}")
    if (params is None) == (init is None):
        raise ValueError("give the network's initial parameters as params or as a function "
                         "init(key) -> params, exactly one of the two")
    if init is None:
        init = _fixed(params)
    elif not callable(init):
        raise ValueError(f"init must be a function init(key) -> params, got {init!r:.80}")
    else:
        params = init(jax.random.key(0))
    _check_params(params)
    if env.discrete:
        if learn_sigma or squash is not None:
            given = "learn_sigma" if learn_sigma else "squash"
            raise ValueError(f"{given} is for Gaussian policies; {env!r} has {env.num_actions} "
                             "discrete actions (a softmax policy): leave it out")
        want, what = (env.num_actions,), "logits"
    else:
        want, what = tuple(env.action_shape), "mean"
    try:
        out = jax.eval_shape(lambda p, k: apply(p, env.observe(env.reset(k))), params, jax.random.key(0))
    except Exception as error:
        raise ValueError(f"apply(params, obs) fails on an observation of {env!r}: "
                         f"{type(error).__name__}: {error}") from error
    if not hasattr(out, "shape") or tuple(out.shape) != want:
        raise ValueError(f"apply(params, obs) must give the {what}, shape {want} for {env!r}, got "
                         f"{getattr(out, 'shape', out)!r:.80}")
    if not jnp.issubdtype(out.dtype, jnp.floating):
        raise ValueError(f"apply(params, obs) must give floats (the {what}), got dtype {out.dtype}")
    if env.discrete:
        return NetworkSoftmax(env, apply, init)
    return NetworkGaussian(env, apply, init, sigma=sigma, learn_sigma=learn_sigma, squash=squash)
