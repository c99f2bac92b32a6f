"""optax 0.2.4's ``optax.monte_carlo.control_variates``, on weakpg's estimators.

A control variate is optax's triple ``(h, expected_h, update_state)``:
``h(params, x, state)`` the value at one draw, ``expected_h(params, state)`` = E_p[h] in
closed form, ``update_state(params, draws, state)`` the next state. For h that may depend
on params, the gradient of E_p[f] is written (``control_variates_jacobians``)

  grad E_p[f] = grad_theta E_{p_theta}[f - c h_stopped] + c (grad E_p[h] - E_p[grad_explicit h]),

the first term by a jacobian estimator applied to x -> f(x) - c h(stop_gradient(params), x),
the last by the gradient of the closed form and, per draw, the explicit gradient of h.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from weakpg._src import validation
from weakpg._src.control_variates import delta_method
from weakpg._src.distributions import Gaussian
from weakpg._src.monte_carlo.estimators import check_params, draw

Array = jax.Array
CvState = Any
ControlVariate = tuple[Callable[..., Array], Callable[..., Array], Callable[..., CvState]]
JacobianEstimator = Callable[..., Sequence[Array]]


def _gaussian(params: Sequence[Any]) -> Gaussian:
    """optax's convention for the delta method: params = (mean, log_scale)."""
    return Gaussian(params[0], jnp.exp(params[1]))


def control_delta_method(function: Callable[[Array], float]) -> ControlVariate:
    """The second-order Taylor expansion of f at the mean, ``weakpg.control_variates.delta_method``.

    ``h(params, x, state)`` expands around params[0]; ``expected_h(params, state)`` =
    f(mean) + 1/2 sum_i H_ii exp(2 log_scale_i); no state.
    """
    if not callable(function):
        raise ValueError(f"function must be a callable, got {function!r}")

    def h(params: Sequence[Any], sample: Array, state: CvState = None) -> Array:
        return delta_method(function, _gaussian(params)).value(sample)

    def expected_h(params: Sequence[Any], state: CvState) -> Array:
        dist = _gaussian(params)
        return delta_method(function, dist).expectation(dist)

    def update_state(params: Sequence[Any], samples: Array, state: CvState = None) -> CvState:
        return state

    return h, expected_h, update_state


def moving_avg_baseline(
    function: Callable[[Array], float],
    decay: float = 0.99,
    zero_debias: bool = True,
    use_decay_early_training_heuristic: bool = True,
) -> ControlVariate:
    """optax's moving-average baseline; state ``(value, i)``, h = E[h] = value.

    Update with draws x_1..x_N: d_i = min(decay, (1 + i) / (10 + i)) with the heuristic,
    else decay; value <- d_i value + (1 - d_i) mean f(x_n), then divided by 1 - d_i^(i+1)
    when ``zero_debias`` (optax's rule, which divides again at every update; the native
    ``weakpg.control_variates.update_moving_average`` is the exact zero-debiased average).
    """
    if not callable(function):
        raise ValueError(f"function must be a callable, got {function!r}")
    validation.check_array("decay", decay, low=0.0, high=1.0, high_open=True)

    def h(params: Sequence[Any], samples: Array, state: CvState = None) -> Array:
        return state[0]

    def expected_h(params: Sequence[Any], state: CvState) -> Array:
        return state[0]

    def update_state(params: Sequence[Any], samples: Array, state: CvState = None) -> CvState:
        value, i = state
        d = jnp.minimum(decay, (1.0 + i) / (10.0 + i)) if use_decay_early_training_heuristic else decay
        value = d * value + (1 - d) * jnp.mean(jax.vmap(function)(samples))
        if zero_debias:
            value = value / (1.0 - jnp.power(d, i + 1))
        return jax.lax.stop_gradient(value), i + 1

    return h, expected_h, update_state


def _check_estimation(function: Any, control_variate_from_function: Any, grad_estimator: Any,
                      params: Any, num_samples: Any) -> int:
    for name, value in (("function", function), ("grad_estimator", grad_estimator),
                        ("control_variate_from_function", control_variate_from_function)):
        if not callable(value):
            raise ValueError(f"{name} must be a callable, got {value!r}")
    check_params(params)
    return validation.check_num_samples(num_samples)


def estimate_control_variate_coefficients(
    function: Callable[[Array], float],
    control_variate_from_function: Callable[[Callable[[Array], float]], ControlVariate],
    grad_estimator: JacobianEstimator,
    params: Sequence[Any],
    dist_builder: Callable[..., Any],
    rng: Array,
    num_samples: int,
    control_variate_state: CvState = None,
    eps: float = 1e-3,
) -> Sequence[Array]:
    """One coefficient per element of ``params``, from draws of ``jax.random.split(rng)[0]``
    (held out from those of ``rng``): sum_i Cov(J_f, J_h)_i / (sum_i Var(J_h)_i + eps),
    with J_f, J_h the jacobians of f and of h over the param's elements i."""
    num_samples = _check_estimation(function, control_variate_from_function, grad_estimator, params,
                                    num_samples)
    validation.check_array("eps", eps, low=0.0)
    held_out_rng = jax.random.split(rng)[0]
    h = control_variate_from_function(function)[0]
    jac_h = grad_estimator(lambda x: h(params, x, control_variate_state), params, dist_builder,
                           held_out_rng, num_samples)
    jac_f = grad_estimator(function, params, dist_builder, held_out_rng, num_samples)

    def pooled(jf: Array, jh: Array) -> Array:
        df, dh = jf - jnp.mean(jf, axis=0), jh - jnp.mean(jh, axis=0)
        covariance, variance = jnp.sum(jnp.mean(df * dh, axis=0)), jnp.sum(jnp.mean(dh * dh, axis=0))
        return jax.lax.stop_gradient(covariance / (variance + eps))

    return [pooled(jf, jh) for jf, jh in zip(jac_f, jac_h)]


def control_variates_jacobians(
    function: Callable[[Array], float],
    control_variate_from_function: Callable[[Callable[[Array], float]], ControlVariate],
    grad_estimator: JacobianEstimator,
    params: Sequence[Any],
    dist_builder: Callable[..., Any],
    rng: Array,
    num_samples: int,
    control_variate_state: CvState = None,
    estimate_cv_coeffs: bool = False,
    estimate_cv_coeffs_num_samples: int = 20,
) -> tuple[Sequence[Array], CvState]:
    """Per-sample jacobians of E_p[f] with a control variate, and the updated state.

    Row n of element k: J_f[n] - c_k (J_h[n] + grad_explicit h(params, x_n) - grad E[h]), with
    J from ``grad_estimator`` on the draws of ``rng``, x_n = ``dist_builder(*params)``'s
    draws of ``rng``, and c_k = 1 or, with ``estimate_cv_coeffs``, from
    ``estimate_control_variate_coefficients`` on held-out draws. As optax's, the state is
    updated with this step's draws before h is evaluated.
    """
    num_samples = _check_estimation(function, control_variate_from_function, grad_estimator, params,
                                    num_samples)
    h, expected_h, update_state = control_variate_from_function(function)
    if estimate_cv_coeffs:
        coefficients = estimate_control_variate_coefficients(
            function, control_variate_from_function, grad_estimator, params, dist_builder, rng,
            validation.check_positive_int("estimate_cv_coeffs_num_samples", estimate_cv_coeffs_num_samples),
            control_variate_state)
    else:
        coefficients = [1.0] * len(params)
    jac_f = grad_estimator(function, params, dist_builder, rng, num_samples)
    draws = jax.lax.stop_gradient(draw(dist_builder(*params), rng, num_samples))
    state = update_state(params, draws, control_variate_state)
    frozen = jax.lax.stop_gradient(params)
    jac_h = grad_estimator(lambda x: h(frozen, x, state), params, dist_builder, rng, num_samples)
    explicit = jax.vmap(jax.grad(lambda p, x: h(p, x, state)), (None, 0))(list(params), draws)
    grad_expected = jax.grad(lambda p: expected_h(p, state))(list(params))
    jacobians = [jf - c * (jh + e - g)
                 for jf, jh, e, g, c in zip(jac_f, jac_h, explicit, grad_expected, coefficients)]
    return jacobians, state
