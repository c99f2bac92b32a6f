"""Parametrised policies: maps from an observation to a distribution over actions.

A policy separates what is differentiated from what is simulated:
  ``dist_params(params, obs)``: the distribution's parameters, differentiable in params
    (Gaussian: {"mean", "scale"}; Categorical: {"logits"});
  ``act(dist_params, noise)``: an action from standard noise (Gaussian: mean + scale
    noise; Categorical: argmax of logits + Gumbel noise), so a roll-out engine can draw
    the noise of many lanes in one call;
  ``env_action(action)``: what the simulator receives. Squashing (tanh) happens here,
    so the weak derivative is taken of the unsquashed Gaussian.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from weakpg._src import validation
from weakpg._src.config import POLICY_NAMES
from weakpg._src.distributions import Categorical, Distribution, Gaussian
from weakpg._src.envs.base import Environment
from weakpg._src.features import RBF, Features, Fourier, Identity

Array = jax.Array
Params = Any

FEATURE_NAMES = ("identity", "rbf", "fourier")
SQUASH_NAMES = (None, "tanh")
_UNBOUNDED = float(np.finfo(np.float32).max)


class Policy(abc.ABC):
    """pi(a | obs; params). ``action_shape`` is the shape of one action."""

    action_shape: tuple[int, ...]
    num_actions: int | None = None

    @abc.abstractmethod
    def init(self, key: Array) -> Params:
        """Initial parameters (a pytree)."""

    @abc.abstractmethod
    def dist_params(self, params: Params, obs: Array) -> dict[str, Array]:
        """Parameters of pi(. | obs), differentiable in ``params``."""

    @property
    @abc.abstractmethod
    def learned_dist_params(self) -> tuple[str, ...]:
        """The entries of ``dist_params`` that depend on ``params``."""

    @abc.abstractmethod
    def distribution(self, dist_params: dict[str, Array]) -> Distribution:
        """The action distribution with these parameters."""

    @abc.abstractmethod
    def noise(self, key: Array, batch_shape: tuple[int, ...] = ()) -> Array:
        """Standard noise for ``act``, shape ``batch_shape + noise_shape``."""

    @abc.abstractmethod
    def act(self, dist_params: dict[str, Array], noise: Array) -> Array:
        """The action drawn from pi(. | obs) by this noise."""

    def env_action(self, action: Array) -> Array:
        """The action the simulator receives (identity unless squashed)."""
        return action


def _make_features(features: str | Features, env: Environment, key: Array | None) -> Features:
    if isinstance(features, Features):
        return features
    validation.check_choice("features", features, FEATURE_NAMES)
    obs_dim = int(np.prod(env.observation_shape))
    if features == "identity":
        return Identity(env.observation_shape)
    if features == "fourier":
        return Fourier.random(jax.random.key(0) if key is None else key, obs_dim, num_features=64)
    low, high = getattr(env, "observation_low", None), getattr(env, "observation_high", None)
    # Spaces mark an unbounded axis by inf or by float32's largest value (CartPole's
    # velocities, in gymnax and gymnasium alike); a grid over such an axis cannot see it.
    if low is None or not np.all(np.abs(np.concatenate([np.ravel(low), np.ravel(high)])) < _UNBOUNDED):
        raise ValueError(
            f"features='rbf' needs a bounded observation box, which {env!r} does not declare; "
            "use identity features (policy 'linear') or pass weakpg.features.RBF(centers, width)")
    per_axis = max(2, round(128 ** (1 / obs_dim)))  # about 128 centres: 5 x 5 x 5 on Pendulum
    return RBF.grid(low, high, (per_axis,) * obs_dim)


class _GaussianPolicy(Policy):
    """Shared Gaussian machinery: pi(. | obs) = N(mean(obs), diag(sigma^2))."""

    def __init__(self, env: Environment, sigma: float | Array, learn_sigma: bool,
                 squash: str | None):
        if env.discrete:
            raise ValueError(
                f"{type(self).__name__} needs continuous actions; {env!r} has "
                f"{env.num_actions} discrete actions: use Softmax")
        validation.check_array("sigma", sigma, low=0.0, low_open=True)
        validation.check_choice("squash", squash, SQUASH_NAMES)
        self.action_shape = tuple(env.action_shape)
        # NumPy unless traced (a policy built inside jax.jit): built without compiling anything.
        xp = jnp if isinstance(sigma, jax.core.Tracer) else np
        self.sigma = xp.broadcast_to(xp.asarray(sigma, jnp.result_type(float)), self.action_shape)
        self.learn_sigma = learn_sigma
        self.squash = squash
        if squash == "tanh":
            low, high = getattr(env, "action_low", None), getattr(env, "action_high", None)
            if low is None:
                raise ValueError(f"squash='tanh' needs action bounds, which {env!r} does not declare")
            self._low, self._high = np.asarray(low), np.asarray(high)

    @abc.abstractmethod
    def mean(self, params: Params, obs: Array) -> Array:
        """mean(obs), shape ``action_shape``."""

    def _init_sigma(self, params: dict[str, Any]) -> dict[str, Any]:
        if self.learn_sigma:
            params["log_sigma"] = jnp.log(self.sigma)
        return params

    @property
    def learned_dist_params(self) -> tuple[str, ...]:
        return ("mean", "scale") if self.learn_sigma else ("mean",)

    def dist_params(self, params: Params, obs: Array) -> dict[str, Array]:
        scale = jnp.exp(params["log_sigma"]) if self.learn_sigma else self.sigma
        return {"mean": self.mean(params, obs), "scale": scale}

    def distribution(self, dist_params: dict[str, Array]) -> Gaussian:
        return Gaussian(dist_params["mean"], dist_params["scale"])

    def noise(self, key: Array, batch_shape: tuple[int, ...] = ()) -> Array:
        return jax.random.normal(key, tuple(batch_shape) + self.action_shape, jnp.result_type(float))

    def act(self, dist_params: dict[str, Array], noise: Array) -> Array:
        return dist_params["mean"] + dist_params["scale"] * noise

    def env_action(self, action: Array) -> Array:
        if self.squash == "tanh":
            return self._low + (self._high - self._low) * 0.5 * (jnp.tanh(action) + 1.0)
        return action


class LinearGaussian(_GaussianPolicy):
    """Gaussian policy with mean linear in features: mean = weights @ phi(obs).

    Params: {"weights": (action_dim, feature_dim)} (+ {"log_sigma": (action_dim,)} when
    ``learn_sigma``). Features: "identity" (phi(obs) = obs; mean = K s on an LQR), "rbf"
    (a grid over the environment's observation box), "fourier" (64 random features), or
    any ``weakpg.features.Features``. ``squash="tanh"`` maps the Gaussian action into the
    environment's bounds; without it the environment clips (Pendulum: to [-2, 2]).
    """

    def __init__(self, env: Environment, *, sigma: float | Array = 1.0,
                 features: str | Features = "identity", learn_sigma: bool = False,
                 squash: str | None = None, key: Array | None = None):
        super().__init__(env, sigma, learn_sigma, squash)
        self.features = _make_features(features, env, key)
        (self.action_dim,) = self.action_shape

    def init(self, key: Array) -> Params:
        del key  # zero weights: the policy starts as pure noise around a zero mean
        return self._init_sigma({"weights": jnp.zeros((self.action_dim, self.features.dim))})

    def mean(self, params: Params, obs: Array) -> Array:
        return self.features.linear(params["weights"], obs)


class MLPGaussian(_GaussianPolicy):
    """Gaussian policy whose mean is a tanh MLP of the observation.

    Params: {"layers": [{"w": (in, out), "b": (out,)}, ...]} (+ "log_sigma").
    """

    def __init__(self, env: Environment, *, hidden: Sequence[int] = (64, 64),
                 sigma: float | Array = 1.0, learn_sigma: bool = False, squash: str | None = None):
        super().__init__(env, sigma, learn_sigma, squash)
        if not hidden or min(hidden) < 1:
            raise ValueError(f"hidden must be a non-empty sequence of sizes >= 1, got {hidden!r}")
        self.sizes = (int(np.prod(env.observation_shape)), *hidden, int(np.prod(self.action_shape)))

    def init(self, key: Array) -> Params:
        layers = []
        for i, (n_in, n_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:])):
            key, sub = jax.random.split(key)
            last = i == len(self.sizes) - 2
            gain = 0.01 if last else 1.0  # near-zero initial mean, as in CleanRL's PPO
            w = jax.nn.initializers.orthogonal(gain)(sub, (n_in, n_out), jnp.result_type(float))
            layers.append({"w": w, "b": jnp.zeros(n_out)})
        return self._init_sigma({"layers": layers})

    def mean(self, params: Params, obs: Array) -> Array:
        h = jnp.ravel(obs)
        *hidden, last = params["layers"]
        for layer in hidden:
            h = jnp.tanh(h @ layer["w"] + layer["b"])
        return (h @ last["w"] + last["b"]).reshape(self.action_shape)


class _SoftmaxPolicy(Policy):
    """Shared softmax machinery: pi(. | obs) = softmax(logits(obs))."""

    def __init__(self, env: Environment):
        if not env.discrete:
            raise ValueError(f"{type(self).__name__} needs discrete actions; {env!r} has continuous "
                             "actions")
        self.action_shape = ()
        self.num_actions = env.num_actions

    @abc.abstractmethod
    def logits(self, params: Params, obs: Array) -> Array:
        """logits(obs), shape ``(num_actions,)``."""

    @property
    def learned_dist_params(self) -> tuple[str, ...]:
        return ("logits",)

    def dist_params(self, params: Params, obs: Array) -> dict[str, Array]:
        return {"logits": self.logits(params, obs)}

    def distribution(self, dist_params: dict[str, Array]) -> Categorical:
        return Categorical(dist_params["logits"])

    def noise(self, key: Array, batch_shape: tuple[int, ...] = ()) -> Array:
        return jax.random.gumbel(key, tuple(batch_shape) + (self.num_actions,), jnp.result_type(float))

    def act(self, dist_params: dict[str, Array], noise: Array) -> Array:
        return jnp.argmax(dist_params["logits"] + noise, axis=-1)


class Softmax(_SoftmaxPolicy):
    """Softmax (Boltzmann) policy over discrete actions: pi = softmax(logits(obs)).

    Tabular on a ``FiniteMDP`` (params {"logits": (num_states, num_actions)}, the
    observation is the state index); otherwise linear in features
    (params {"weights": (num_actions, feature_dim)}).
    """

    def __init__(self, env: Environment, *, features: str | Features = "identity",
                 key: Array | None = None):
        super().__init__(env)
        self.num_states = getattr(env, "num_states", None)
        self.features = None if self.num_states is not None else _make_features(
            features, env, key)

    def init(self, key: Array) -> Params:
        del key
        if self.features is None:
            return {"logits": jnp.zeros((self.num_states, self.num_actions))}
        return {"weights": jnp.zeros((self.num_actions, self.features.dim))}

    def logits(self, params: Params, obs: Array) -> Array:
        if self.features is None:
            return params["logits"][obs]
        return self.features.linear(params["weights"], obs)


def make_policy(env: Environment, name: str, *, sigma: float = 1.0, learn_sigma: bool = False) -> Policy:
    """A policy by name: "linear-rbf", "linear" (identity features) or "mlp".

    Discrete-action environments get the matching ``Softmax`` (sigma is unused there).
    """
    validation.check_choice("policy", name, POLICY_NAMES)
    if env.discrete:
        if name == "mlp":
            raise ValueError("policy 'mlp' is not available for discrete actions; use 'linear' or "
                             "'linear-rbf'")
        return Softmax(env, features="rbf" if name == "linear-rbf" else "identity")
    if name == "mlp":
        return MLPGaussian(env, sigma=sigma, learn_sigma=learn_sigma)
    return LinearGaussian(env, sigma=sigma, learn_sigma=learn_sigma,
                          features="rbf" if name == "linear-rbf" else "identity")


def check_policy_fits(env: Any, policy: Any) -> None:
    """ValueError unless ``env`` is a weakpg Environment and ``policy`` a Policy whose actions fit it."""
    if not isinstance(env, Environment):
        raise ValueError(f"env must be a weakpg Environment (see weakpg.envs.make), got {env!r}")
    if not isinstance(policy, Policy):
        raise ValueError(f"policy must be a weakpg Policy, got {policy!r}")
    if tuple(policy.action_shape) != tuple(env.action_shape) or policy.num_actions != env.num_actions:
        raise ValueError(
            f"policy actions do not fit the environment: the policy has action_shape "
            f"{policy.action_shape} and num_actions {policy.num_actions}, {env!r} has "
            f"action_shape {env.action_shape} and num_actions {env.num_actions}")
