"""Linear-quadratic regulator with Gaussian noise, and its exact values.

Dynamics and reward, with state s in R^n and action a in R^m:

    s_{t+1} = A s_t + B a_t + w_t,   w_t ~ N(0, noise_cov),   s_0 ~ N(0, init_cov),
    r(s, a) = -(s^T Q s + a^T R a).

For the linear Gaussian policy a = K s + sigma * eps, eps ~ N(0, I_m), the discounted
value is a quadratic in the state, V(s) = -(s^T P s) - c, in closed form (Bradtke 1993;
Fazel et al. 2018, "Global Convergence of Policy Gradient Methods for the Linear
Quadratic Regulator", with a discount). With A_K = A + B K, M = Q + K^T R K and
Sigma_a = diag(sigma^2):

    P = M + gamma A_K^T P A_K                                   (discounted Lyapunov)
    c = (tr(R Sigma_a) + gamma tr(P (B Sigma_a B^T + noise_cov))) / (1 - gamma)
    J = E_{s_0}[V(s_0)] = -(tr(P init_cov) + c),

since E[r(s, a) | s] = -(s^T M s + tr(R Sigma_a)) and
E[s'^T P s' | s] = s^T A_K^T P A_K s + tr(P (B Sigma_a B^T + noise_cov)). J is finite
when sqrt(gamma) * spectral_radius(A_K) < 1 and, for generic costs and noise, infinite
otherwise; the exact quantities refuse such policies.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from weakpg._src import validation
from weakpg._src.envs.base import Array, Environment
from weakpg._src.validation import as_float

_PSD_TOL = 1e-6




def _check_psd(name: str, value: Any) -> None:
    """Raise unless ``value`` is symmetric positive semi-definite (relative tolerance 1e-6)."""
    if not validation.is_concrete(value):
        return
    validation.check_finite(name, value)
    x = np.asarray(value, dtype=np.float64)
    scale = max(1.0, float(np.max(np.abs(x), initial=0.0)))
    asymmetry = float(np.max(np.abs(x - x.T), initial=0.0))
    if asymmetry > _PSD_TOL * scale:
        raise ValueError(
                f"{name} must be symmetric, got max |{name} - {name}^T| = {asymmetry:.4g} "
                f"for {name}={np.array2string(x, precision=4)}")
    smallest = float(np.linalg.eigvalsh(x).min(initial=0.0))
    if smallest < -_PSD_TOL * scale:
        raise ValueError(
                f"{name} must be positive semi-definite, got smallest eigenvalue "
                f"{smallest:.4g} for {name}={np.array2string(x, precision=4)}")


def _psd_factor(cov: Array) -> Array:
    """F with F F^T = cov for symmetric PSD ``cov``: F = U diag(sqrt(max(lambda, 0))).

    Unlike a Cholesky factor this exists for singular ``cov`` (a zero matrix included).
    """
    eigvals, eigvecs = jnp.linalg.eigh(cov)
    return eigvecs * jnp.sqrt(jnp.clip(eigvals, 0.0))


class _Matrices(NamedTuple):
    A: Array
    B: Array
    Q: Array
    R: Array
    noise_cov: Array
    init_cov: Array


def _quadratic_value(
        mat: _Matrices, weights: Array, sigma: Array, gamma: Array) -> tuple[Array, Array]:
    """(P, c) with V(s) = -(s^T P s) - c (module docstring).

    P solves (I - gamma kron(A_K^T, A_K^T)) vec(P) = vec(M), a linear solve JAX can
    differentiate; the row-major vec of A_K^T P A_K is kron(A_K^T, A_K^T) vec(P).
    """
    n, m = mat.B.shape
    closed_loop = mat.A + mat.B @ weights
    cost = mat.Q + weights.T @ mat.R @ weights
    lhs = jnp.eye(n * n, dtype=cost.dtype) - gamma * jnp.kron(closed_loop.T, closed_loop.T)
    p = jnp.linalg.solve(lhs, cost.reshape(n * n)).reshape(n, n)
    action_cov = jnp.diag(jnp.broadcast_to(sigma, (m,)) ** 2)
    step_cov = mat.B @ action_cov @ mat.B.T + mat.noise_cov
    c = (jnp.trace(mat.R @ action_cov) + gamma * jnp.trace(p @ step_cov)) / (1.0 - gamma)
    return p, c


def _reward(mat: _Matrices, state: Array, action: Array) -> Array:
    return -(state @ mat.Q @ state + action @ mat.R @ action)


# The exact quantities are jitted functions of the matrices, so environments of one shape
# share one compilation instead of dispatching op by op.
@jax.jit
def _value(mat: _Matrices, weights: Array, sigma: Array, gamma: Array) -> Array:
    p, c = _quadratic_value(mat, weights, sigma, gamma)
    return -(jnp.trace(p @ mat.init_cov) + c)


@jax.jit
def _gradient(mat: _Matrices, weights: Array, sigma: Array, gamma: Array) -> dict[str, Array]:
    params = {"weights": weights, "log_sigma": jnp.log(jnp.broadcast_to(sigma, mat.B.shape[1:]))}
    return jax.grad(lambda x: _value(mat, x["weights"], jnp.exp(x["log_sigma"]), gamma))(params)


@jax.jit
def _q(mat: _Matrices, weights: Array, sigma: Array, gamma: Array, s: Array, a: Array) -> Array:
    p, c = _quadratic_value(mat, weights, sigma, gamma)
    mean_next = mat.A @ s + mat.B @ a
    next_value = -(mean_next @ p @ mean_next + jnp.trace(p @ mat.noise_cov)) - c
    return _reward(mat, s, a) + gamma * next_value


class LinearQuadratic(Environment):
    """The LQR of the module docstring; the state is the vector s of shape (n,).

    Args:
      A: (n, n) state transition.
      B: (n, m) control matrix.
      Q: (n, n) symmetric PSD state cost.
      R: (m, m) symmetric PSD action cost.
      noise_cov: (n, n) PSD covariance of the process noise w_t (may be singular).
      init_cov: (n, n) PSD covariance of s_0 (may be singular).

    Actions are not clipped. The object is static: ``jax.jit`` and ``jax.vmap`` close
    over its arrays, and every method is a pure function of its arguments.
    """

    def __init__(self, A: Any, B: Any, Q: Any, R: Any, noise_cov: Any, init_cov: Any):
        if np.ndim(A) != 2 or np.shape(A)[0] != np.shape(A)[1] or np.shape(A)[0] < 1:
            raise ValueError(
                    f"A must be a square matrix of shape (n, n), n >= 1, got shape {np.shape(A)}")
        n = np.shape(A)[0]
        if np.ndim(B) != 2 or np.shape(B)[0] != n or np.shape(B)[1] < 1:
            raise ValueError(
                    f"B must have shape (n, m) = ({n}, m) with m >= 1 (n from A), "
                    f"got shape {np.shape(B)}")
        m = np.shape(B)[1]
        for name, value, size in (("Q", Q, n), ("R", R, m), ("noise_cov", noise_cov, n),
                                  ("init_cov", init_cov, n)):
            validation.check_shape(name, value, (size, size))
            _check_psd(name, value)
        validation.check_finite("A", A)
        validation.check_finite("B", B)
        self.A, self.B, self.Q, self.R = as_float(A), as_float(B), as_float(Q), as_float(R)
        self.noise_cov, self.init_cov = as_float(noise_cov), as_float(init_cov)
        self.noise_factor = _psd_factor(self.noise_cov)
        self.init_factor = _psd_factor(self.init_cov)
        self.state_dim, self.action_dim = n, m
        self.observation_shape = (n,)
        self.action_shape = (m,)
        self.num_actions = None

    def __repr__(self) -> str:
        return f"LinearQuadratic(state_dim={self.state_dim}, action_dim={self.action_dim})"

    def reset(self, key: Array) -> Array:
        """s_0 ~ N(0, init_cov), shape (n,)."""
        return self.init_factor @ jax.random.normal(key, (self.state_dim,), self.A.dtype)

    def step(self, key: Array, state: Array, action: Array) -> tuple[Array, Array]:
        """(A s + B a + w, -(s^T Q s + a^T R a)) with w ~ N(0, noise_cov) drawn from ``key``."""
        noise = self.noise_factor @ jax.random.normal(key, (self.state_dim,), self.A.dtype)
        return self.A @ state + self.B @ action + noise, self.reward(state, action)

    def observe(self, state: Array) -> Array:
        return state

    def reward(self, state: Array, action: Array) -> Array:
        """r(s, a) = -(s^T Q s + a^T R a), a scalar."""
        return _reward(self._matrices(), state, action)

    def exact_value(self, weights: Any, sigma: Any, gamma: Any) -> Array:
        """J(K, sigma) = E_{s_0}[sum_t gamma^t r_t] for a = K s + sigma eps, a scalar.

        Args:
          weights: K, shape (m, n).
          sigma: action noise scale, a positive scalar or shape (m,).
          gamma: discount in (0, 1).

        Raises ValueError when sqrt(gamma) * spectral_radius(A + B K) >= 1 (J = -inf).
        """
        weights, sigma, gamma = self._check_policy(weights, sigma, gamma)
        return _value(self._matrices(), weights, sigma, gamma)

    def exact_gradient(self, weights: Any, sigma: Any, gamma: Any) -> dict[str, Array]:
        """Gradient of ``exact_value``: {"weights": dJ/dK (m, n), "log_sigma": dJ/d log sigma (m,)}.

        A scalar sigma is broadcast to (m,) first, so "log_sigma" has one entry per
        action coordinate.
        """
        weights, sigma, gamma = self._check_policy(weights, sigma, gamma)
        return _gradient(self._matrices(), weights, sigma, gamma)

    def exact_q(self, weights: Any, sigma: Any, gamma: Any, s: Any, a: Any) -> Array:
        """Q(s, a) = r(s, a) + gamma E[V(A s + B a + w)] with V(s) = -(s^T P s) - c, a scalar.

        Args:
          weights, sigma, gamma: the policy and discount, as in ``exact_value``.
          s: state, shape (n,).
          a: action, shape (m,).
        """
        weights, sigma, gamma = self._check_policy(weights, sigma, gamma)
        validation.check_shape("s", s, self.observation_shape)
        validation.check_shape("a", a, self.action_shape)
        return _q(self._matrices(), weights, sigma, gamma, as_float(s), as_float(a))

    def optimal_gain(self, gamma: Any, *, iterations: int = 10_000) -> np.ndarray:
        """K* = argmax_K J(K, sigma) for every sigma and start law, shape (m, n), float64.

        From the discounted Riccati iteration P <- Q + gamma A^T P (A + B G), with
        G = -gamma (R + gamma B^T P B)^{-1} B^T P A, and K* = G at its fixed point.
        """
        validation.check_array("gamma", gamma, low=0.0, high=1.0, low_open=True, high_open=True)
        a, b, q, r = (np.asarray(x, np.float64) for x in (self.A, self.B, self.Q, self.R))
        gamma, p = float(gamma), q
        for _ in range(iterations):
            gain = -np.linalg.solve(r + gamma * b.T @ p @ b, gamma * b.T @ p @ a)
            p = q + gamma * a.T @ p @ (a + b @ gain)
        return -np.linalg.solve(r + gamma * b.T @ p @ b, gamma * b.T @ p @ a)

    def _matrices(self) -> _Matrices:
        return _Matrices(self.A, self.B, self.Q, self.R, self.noise_cov, self.init_cov)

    def _check_policy(self, weights: Any, sigma: Any, gamma: Any) -> tuple[Array, Array, Array]:
        validation.check_shape("weights", weights, (self.action_dim, self.state_dim))
        if np.shape(sigma) not in ((), self.action_shape):
            raise ValueError(
                    f"sigma must have shape () or {self.action_shape}, got shape {np.shape(sigma)}")
        validation.check_shape("gamma", gamma, ())
        validation.check_finite("weights", weights)
        validation.check_array("sigma", sigma, low=0.0, low_open=True)
        validation.check_array("gamma", gamma, low=0.0, high=1.0, low_open=True, high_open=True)
        if validation.is_concrete((weights, gamma)):
            a, b = np.asarray(self.A, np.float64), np.asarray(self.B, np.float64)
            radius = float(np.max(np.abs(np.linalg.eigvals(a + b @ np.asarray(weights, np.float64)))))
            if np.sqrt(gamma) * radius >= 1.0:
                raise ValueError(
                        f"weights give a closed loop A + B K with spectral radius {radius:.6g}, and "
                        f"sqrt(gamma) * radius = {np.sqrt(gamma) * radius:.6g} >= 1 for gamma={gamma}: "
                        f"the discounted cost is infinite. Allowed: sqrt(gamma) * radius < 1")
        return as_float(weights), as_float(sigma), as_float(gamma)
