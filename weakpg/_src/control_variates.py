"""Control variates for Monte Carlo gradients of E_{p(z; theta)}[f(z)].

A control variate is a function h(z) whose expectation m(theta) = E_{p(z; theta)}[h(z)]
is known in closed form. Every per-sample estimator G of ``estimators`` (score function,
weak derivative, pathwise) applied to h has mean grad m(theta), so, on the same draws,

    g_n = G_n[f] - c (G_n[h] - grad m(theta))                                  (1)

has the mean of G_n[f] for every coefficient c that does not depend on those draws
(Mohamed et al. 2020, "Monte Carlo Gradient Estimation in Machine Learning", Sec. 7.4).
Per parameter element the variance of (1) is least at c* = Cov(G[f], G[h]) / Var(G[h]).
``controlled_samples`` estimates c* on held-out draws, independent of the draws of (1), so
the estimate stays unbiased; estimated on the draws of (1) themselves it is biased by
O(1/N) (the tests show that bias).

Control variates:
  * ``delta_method(f, dist)``: the second-order Taylor expansion of f around the
    Gaussian's mean mu0 (Paisley, Blei and Jordan 2012), with its exact expectation.
  * ``baseline(b)``: the constant h = b, m = b. Only the score function sees it
    (G_n[b] = b grad log p(z_n)); weak-derivative and pathwise samples of a constant are 0.
  * ``moving_average_baseline(state)``: ``baseline`` at a moving average of f kept in a
    ``MovingAverage`` state, updated with ``update_moving_average`` after each step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from weakpg._src import validation
from weakpg._src.distributions import Distribution, Gaussian
from weakpg._src.estimators import GradientEstimate, summarize
from weakpg._src.validation import as_float

Array = jax.Array
SampleEstimator = Callable[[Array, Callable[[Array], Array], Distribution, int], dict[str, Array]]


class ControlVariate(NamedTuple):
    """h and its expectation.

    Attributes:
      value: h, a map from one sample (shape ``dist.event_shape``) to a scalar.
      expectation: ``dist -> E_dist[h]``, differentiable in the distribution's parameters.
    """

    value: Callable[[Array], Array]
    expectation: Callable[[Distribution], Array]


def delta_method(f: Callable[[Array], Array], dist: Gaussian) -> ControlVariate:
    """Second-order Taylor expansion of f around the mean mu0 of ``dist``.

    With d = z - mu0 raveled, g = grad f(mu0) and H = hess f(mu0) (f twice differentiable):
      h(z) = f(mu0) + g.d + 1/2 d^T H d,
      E_{N(mu, diag s^2)}[h] = f(mu0) + g.(mu - mu0) + 1/2 (mu - mu0)^T H (mu - mu0)
                               + 1/2 sum_i H_ii s_i^2.
    mu0 is that of ``dist`` (the expectation is differentiated in (mu, s) of its argument
    only). For quadratic f, h = f and the controlled estimate (coefficient 1) is exact.
    """
    if not isinstance(dist, Gaussian):
        raise ValueError(
            f"delta_method needs a Gaussian distribution, got {type(dist).__name__}")
    shape = dist.event_shape
    center = jnp.ravel(as_float(dist.mean))

    def flat_f(v: Array) -> Array:
        return f(v.reshape(shape))

    f0, g = jax.value_and_grad(flat_f)(center)
    hessian = jax.hessian(flat_f)(center)

    def quadratic(d: Array) -> Array:
        return f0 + g @ d + 0.5 * d @ hessian @ d

    def value(z: Array) -> Array:
        return quadratic(jnp.ravel(as_float(z)) - center)

    def expectation(d: Gaussian) -> Array:
        variance = jnp.ravel(as_float(d.scale)) ** 2
        return quadratic(jnp.ravel(as_float(d.mean)) - center) + 0.5 * jnp.diag(hessian) @ variance

    return ControlVariate(value, expectation)


def baseline(b: Any) -> ControlVariate:
    """The constant h = b (a scalar that does not depend on the draws), m = b."""
    if jnp.shape(b) != ():
        raise ValueError(f"b must be a scalar, got shape {jnp.shape(b)}")
    validation.check_finite("b", b)
    b = as_float(b)
    return ControlVariate(lambda z: b, lambda d: b)


class MovingAverage(NamedTuple):
    """Zero-debiased exponential moving average of f.

    Attributes:
      value: (sum_k decay^(K-k) (1 - decay) x_k) / (1 - decay^K) after K updates with
        batch means x_1..x_K; 0 before the first.
      count: K.
    """

    value: Any = 0.0
    count: Any = 0


def moving_average_baseline(state: MovingAverage) -> ControlVariate:
    """``baseline(state.value)``. Unbiased as long as ``state`` was updated with values
    from earlier steps only: update it after the step's estimate, not before."""
    return baseline(state.value)


def update_moving_average(state: MovingAverage, values: Array, *, decay: float = 0.99) -> MovingAverage:
    """Fold the mean of ``values`` (f at this step's draws, shape (N,)) into ``state``.

    value_K = value_{K-1} + w_K (mean(values) - value_{K-1}), w_K = (1 - decay) / (1 - decay^K),
    which is the zero-debiased average (w_1 = 1: the first update takes the batch mean).
    """
    validation.check_array("decay", decay, low=0.0, high=1.0, high_open=True)
    count = jnp.asarray(state.count) + 1
    weight = (1.0 - decay) / (1.0 - decay ** count.astype(jnp.result_type(float)))
    value = as_float(state.value)
    return MovingAverage(value + weight * (jnp.mean(as_float(values)) - value), count)


def optimal_coefficients(f_samples: dict[str, Array], h_samples: dict[str, Array]) -> dict[str, Array]:
    """Per element c* = Cov(G[f], G[h]) / Var(G[h]) over the leading (sample) axis.

    0 where G[h] has no spread (a constant's weak-derivative or pathwise samples).
    """

    def one(gf: Array, gh: Array) -> Array:
        df, dh = gf - jnp.mean(gf, axis=0), gh - jnp.mean(gh, axis=0)
        var = jnp.mean(dh * dh, axis=0)
        cov = jnp.mean(df * dh, axis=0)
        return jnp.where(var > 0, cov / jnp.where(var > 0, var, 1.0), 0.0)

    return {name: one(f_samples[name], h_samples[name]) for name in f_samples}


def _expectation_gradient(control_variate: ControlVariate, dist: Distribution) -> dict[str, Array]:
    grads = jax.grad(lambda d: as_float(control_variate.expectation(d)))(dist)
    return {name: getattr(grads, name) for name in dist.param_names}


def _on_same_draws(
    estimator: SampleEstimator, key: Array, f: Callable[[Array], Array],
    h: Callable[[Array], Array], dist: Distribution, num_samples: int,
) -> tuple[dict[str, Array], dict[str, Array]]:
    """The estimator's samples of f and of h from one key: one trace, batched over which."""
    both = jax.vmap(lambda i: estimator(
        key, lambda z: jax.lax.switch(i, (f, h), z).astype(jnp.result_type(float)), dist,
        num_samples))(jnp.arange(2))
    return ({k: v[0] for k, v in both.items()}, {k: v[1] for k, v in both.items()})


def controlled_samples(
    key: Array,
    estimator: SampleEstimator,
    f: Callable[[Array], Array],
    dist: Distribution,
    num_samples: int,
    control_variate: ControlVariate,
    *,
    coefficient: str | float = "held_out",
    num_held_out: int | None = None,
) -> dict[str, Array]:
    """Per-sample gradients of E_p[f] with a control variate, eq. (1) of the module.

    Args:
      key: PRNG key of the estimator's N + M i.i.d. draws: the first N are the
        estimate's, the last M (held out) the coefficient's. With the score function
        they are ``dist.sample(key, (N + M,))``.
      estimator: a per-sample estimator ``(key, f, dist, num_samples) -> {name: (N,) +
        shape}`` whose draws depend on the key only (``score_function_samples``,
        ``weak_derivative_samples``, ``pathwise_samples``, or a ``functools.partial``
        of one with its options), so f and h are evaluated on the same draws.
      f, dist, num_samples: as for the estimator.
      control_variate: h and E[h].
      coefficient: ``"held_out"``: c* per element from the M held-out draws;
        or a fixed number (1.0: the plain control variate; then M = 0).
      num_held_out: M >= 2 draws for the coefficient (M more evaluations of f and h);
        ``None``: M = max(2, N // 4).

    Returns:
      ``{param_name: (num_samples,) + parameter shape}``; their mean is unbiased.
    """
    if not callable(estimator):
        raise ValueError(f"estimator must be a per-sample estimator (a callable), got {estimator!r}")
    if not isinstance(control_variate, ControlVariate):
        raise ValueError(
            f"control_variate must be a ControlVariate, got {type(control_variate).__name__}")
    num_samples = validation.check_num_samples(num_samples)
    if isinstance(coefficient, str):
        validation.check_choice("coefficient", coefficient, ("held_out",))
        if num_held_out is None:
            num_held_out = max(2, num_samples // 4)
        num_held_out = validation.check_positive_int("num_held_out", num_held_out)
        if num_held_out < 2:
            raise ValueError(f"num_held_out must be >= 2, got {num_held_out}")
    else:
        validation.check_finite("coefficient", coefficient)
    held_out = num_held_out if isinstance(coefficient, str) else 0
    gf, gh = _on_same_draws(estimator, key, f, control_variate.value, dist, num_samples + held_out)
    if isinstance(coefficient, str):
        c = optimal_coefficients({k: v[num_samples:] for k, v in gf.items()},
                                 {k: v[num_samples:] for k, v in gh.items()})
    else:
        c = {name: as_float(coefficient) for name in gf}
    gf, gh = ({k: v[:num_samples] for k, v in g.items()} for g in (gf, gh))
    grad_m = _expectation_gradient(control_variate, dist)
    return {name: gf[name] - c[name] * (gh[name] - grad_m[name]) for name in gf}


def controlled(
    key: Array,
    estimator: SampleEstimator,
    f: Callable[[Array], Array],
    dist: Distribution,
    num_samples: int,
    control_variate: ControlVariate,
    *,
    coefficient: str | float = "held_out",
    num_held_out: int | None = None,
) -> GradientEstimate:
    """``summarize`` of ``controlled_samples`` (same arguments)."""
    return summarize(controlled_samples(
        key, estimator, f, dist, num_samples, control_variate,
        coefficient=coefficient, num_held_out=num_held_out))
