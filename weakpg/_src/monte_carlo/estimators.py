"""optax 0.2.4's ``optax.monte_carlo`` gradient estimators, on ``weakpg.estimators``.

optax's conventions: ``params`` is a sequence of arrays, ``dist_builder(*params)`` builds
the distribution, and each estimator returns the per-sample jacobians, a sequence like
``params`` whose element k has shape ``(num_samples,) + params[k].shape`` (their mean is the
gradient of E[f] with respect to ``params[k]``).

Here ``dist_builder`` must build a weakpg distribution or a ``multi_normal`` (optax's
diagonal Gaussian of ``(loc, log_scale)``). The jacobians with respect to the
distribution's own parameters come from ``weakpg.estimators``; the chain rule to
``params`` is the pull-back of each sample through ``dist_builder`` (``jax.vjp``), which for
``multi_normal`` multiplies the scale's gradient by exp(log_scale).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from weakpg._src import validation
from weakpg._src.distributions import Distribution, Gaussian
from weakpg._src.distributions.base import pytree_dataclass
from weakpg._src.estimators import pathwise_samples, score_function_samples, weak_derivative_samples

Array = jax.Array


@pytree_dataclass
class MultiNormalDiagFromLogScale:
    """N(loc, diag(exp(log_scale)^2)), with optax's ``sample(shape, seed)`` and ``params``."""

    loc: Any
    log_scale: Any

    @property
    def params(self) -> list[Any]:
        return [self.loc, self.log_scale]

    def gaussian(self) -> Gaussian:
        """The same distribution as a ``weakpg.Gaussian(mean=loc, scale=exp(log_scale))``."""
        return Gaussian(self.loc, jnp.exp(self.log_scale))

    def sample(self, shape: Sequence[int], seed: Array) -> Array:
        return self.gaussian().sample(seed, tuple(shape))

    def log_prob(self, x: Array) -> Array:
        return self.gaussian().log_prob(x)


def multi_normal(loc: Any, log_scale: Any) -> MultiNormalDiagFromLogScale:
    """optax's ``utils.multi_normal``: the diagonal Gaussian of mean ``loc``, log scale ``log_scale``."""
    return MultiNormalDiagFromLogScale(loc, log_scale)


def as_distribution(dist: Any, name: str = "dist") -> Distribution:
    """``dist`` as a weakpg distribution (a ``multi_normal`` becomes its Gaussian)."""
    if isinstance(dist, MultiNormalDiagFromLogScale):
        return dist.gaussian()
    if isinstance(dist, Distribution):
        return dist
    raise ValueError(
        f"{name} must be a weakpg distribution or weakpg.monte_carlo.multi_normal(loc, log_scale), "
        f"got {type(dist).__name__}")


def draw(dist: Any, rng: Array, num_samples: int) -> Array:
    """``num_samples`` draws of ``dist``: those of the score-function estimator with ``rng``."""
    return as_distribution(dist).sample(rng, (num_samples,))


def check_params(params: Any) -> None:
    """Raise unless ``params`` is a non-empty list or tuple (optax's convention)."""
    if not isinstance(params, (list, tuple)) or not params:
        raise ValueError(
            f"params must be a non-empty list or tuple of arrays, dist_builder(*params) "
            f"building the distribution, got {type(params).__name__}")


def _jacobians(sample_estimator: Callable[..., dict[str, Array]], function: Callable[[Array], Array],
               params: Sequence[Any], dist_builder: Callable[..., Any], rng: Array, num_samples: int,
               **options: Any) -> Sequence[Array]:
    check_params(params)
    if not callable(dist_builder):
        raise ValueError(f"dist_builder must be a callable, got {dist_builder!r}")

    def fields(p: Sequence[Any]) -> dict[str, Array]:
        dist = as_distribution(dist_builder(*p), "dist_builder(*params)")
        return {name: getattr(dist, name) for name in dist.param_names}

    dist = as_distribution(dist_builder(*params), "dist_builder(*params)")
    per_field = sample_estimator(rng, function, dist, num_samples, **options)
    _, pull_back = jax.vjp(fields, params)
    (jacobians,) = jax.vmap(pull_back)(per_field)
    return jacobians


def score_function_jacobians(
    function: Callable[[Array], float],
    params: Sequence[Any],
    dist_builder: Callable[..., Any],
    rng: Array,
    num_samples: int,
) -> Sequence[Array]:
    """Per-sample score-function jacobians: f(x_n) grad_params log p(x_n; params).

    The draws are ``dist_builder(*params).sample((num_samples,), seed=rng)``, as optax's.
    """
    return _jacobians(score_function_samples, function, params, dist_builder, rng, num_samples)


def pathwise_jacobians(
    function: Callable[[Array], float],
    params: Sequence[Any],
    dist_builder: Callable[..., Any],
    rng: Array,
    num_samples: int,
) -> Sequence[Array]:
    """Per-sample pathwise jacobians d f(loc + scale eps_n) / d params (Gaussian only)."""
    return _jacobians(pathwise_samples, function, params, dist_builder, rng, num_samples)


def measure_valued_jacobians(
    function: Callable[[Array], float],
    params: Sequence[Any],
    dist_builder: Callable[..., Any],
    rng: Array,
    num_samples: int,
    coupling: bool = True,
) -> Sequence[Array]:
    """Per-sample measure-valued (weak-derivative) jacobians.

    For ``multi_normal``: ``[d/d loc, exp(log_scale) d/d scale]``, as optax's; any weakpg
    family works too (optax took only its Gaussian).
    """
    return _jacobians(weak_derivative_samples, function, params, dist_builder, rng, num_samples,
                      coupled=coupling)


def _gaussian_weak_derivative(function: Callable[[Array], float], dist: Any, rng: Array,
                              num_samples: int, coupling: bool, param: str) -> Array:
    gaussian = as_distribution(dist)
    if not isinstance(gaussian, Gaussian):
        raise ValueError(f"dist must be a Gaussian, got {type(gaussian).__name__}")
    validation.check_choice("coupling", coupling, (True, False))
    return weak_derivative_samples(rng, function, gaussian, num_samples, coupled=coupling)[param]


def measure_valued_estimation_mean(
    function: Callable[[Array], float],
    dist: Any,
    rng: Array,
    num_samples: int,
    coupling: bool = True,
) -> Array:
    """Per-sample weak-derivative gradients w.r.t. a Gaussian's mean, shape (N,) + mean shape."""
    return _gaussian_weak_derivative(function, dist, rng, num_samples, coupling, "mean")


def measure_valued_estimation_std(
    function: Callable[[Array], float],
    dist: Any,
    rng: Array,
    num_samples: int,
    coupling: bool = True,
) -> Array:
    """Per-sample weak-derivative gradients w.r.t. a Gaussian's scale (not its log), (N,) + shape."""
    return _gaussian_weak_derivative(function, dist, rng, num_samples, coupling, "scale")
