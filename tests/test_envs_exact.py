"""Exact values of the LQR and finite-MDP environments, and their simulators.

The exact formulas are checked three ways: against finite differences (gradients),
against independent numpy/scipy implementations (Bellman equation, Lyapunov equation,
policy gradient theorem) and against Monte Carlo roll-outs of the simulators, which is
what ties the formulas to the dynamics.
"""

from __future__ import annotations

import math
import re
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import linalg, stats

from weakpg._src.envs.finite_mdp import FiniteMDP
from weakpg._src.envs.linear_quadratic import LinearQuadratic
from weakpg.testing import assert_unbiased, z_scores

KEY = jax.random.key(11)
P_MIN = 1e-3  # a correct sampler fails a chi-square test at this level one time in a thousand


class Estimate(NamedTuple):
    mean: np.ndarray
    stderr: np.ndarray


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


def _horizon(gamma: float) -> int:
    """An H with gamma^H < 1e-6: the truncated tail, about gamma^H J, is far below the stderr."""
    return math.ceil(math.log(1e-6) / math.log(gamma)) + 1


def _discounted_return(env, policy, gamma, horizon, key, state, action):
    """sum_{t < horizon} gamma^t r_t from (s_0, a_0) = (state, action), then a_t ~ policy."""

    def body(carry, keys):
        state, action, discount, total = carry
        k_step, k_action = keys
        next_state, reward = env.step(k_step, state, action)
        next_action = policy(k_action, env.observe(next_state))
        return (next_state, next_action, discount * gamma, total + discount * reward), None

    init = (state, action, jnp.asarray(1.0), jnp.asarray(0.0))
    (_, _, _, total), _ = jax.lax.scan(body, init, jax.random.split(key, (horizon, 2)))
    return total


def _estimate(samples) -> Estimate:
    samples = np.asarray(samples, np.float64)
    return Estimate(samples.mean(), samples.std(ddof=1) / np.sqrt(samples.size))


def _monte_carlo_value(env, policy, gamma, num_rollouts) -> Estimate:
    """E_{s_0 ~ reset}[sum_t gamma^t r_t] under a_t ~ policy(key, observe(s_t))."""
    horizon = _horizon(gamma)

    def one(key):
        k_reset, k_action, k_rollout = jax.random.split(key, 3)
        s0 = env.reset(k_reset)
        return _discounted_return(env, policy, gamma, horizon, k_rollout, s0, policy(k_action, s0))

    return _estimate(jax.jit(jax.vmap(one))(jax.random.split(KEY, num_rollouts)))


def _central_difference(f, x, h=1e-6):
    x = np.asarray(x, np.float64)
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[i] = h
        grad[i] = (f(x + step) - f(x - step)) / (2 * h)
    return grad


# ----------------------------------------------------------------------------- LQR


def _lqr(name: str) -> tuple[LinearQuadratic, np.ndarray, np.ndarray]:
    """(env, K, sigma) for three systems: scalar; 2 states 1 action; 2 states 2 actions."""
    if name == "scalar":
        env = LinearQuadratic([[0.9]], [[0.5]], [[1.0]], [[0.3]], [[0.04]], [[1.0]])
        return env, np.array([[-0.4]]), np.array(0.3)
    if name == "2x1":
        env = LinearQuadratic(
                [[0.9, 0.3], [-0.1, 0.8]], [[0.0], [1.0]], [[1.0, 0.2], [0.2, 0.5]], [[0.3]],
                [[0.05, 0.01], [0.01, 0.02]], [[1.0, 0.3], [0.3, 0.5]])
        return env, np.array([[-0.1, -0.3]]), np.array(0.4)
    env = LinearQuadratic(
            [[1.0, 0.2], [-0.3, 0.9]], [[1.0, 0.0], [0.5, 1.0]], [[1.0, 0.2], [0.2, 0.5]],
            [[0.3, 0.1], [0.1, 0.2]], [[0.05, 0.01], [0.01, 0.02]], [[1.0, 0.3], [0.3, 0.5]])
    return env, np.array([[-0.3, -0.1], [0.1, -0.4]]), np.array([0.4, 0.2])


def _lqr_terms(env, weights, sigma, gamma):
    """(P, c) of V(s) = -(s^T P s) - c, written independently with scipy's Lyapunov solver."""
    a, b, q, r = (np.asarray(x, np.float64) for x in (env.A, env.B, env.Q, env.R))
    closed_loop = a + b @ weights
    p = linalg.solve_discrete_lyapunov(np.sqrt(gamma) * closed_loop.T, q + weights.T @ r @ weights)
    action_cov = np.diag(np.broadcast_to(sigma, (env.action_dim,)) ** 2)
    step_cov = b @ action_cov @ b.T + np.asarray(env.noise_cov)
    c = (np.trace(r @ action_cov) + gamma * np.trace(p @ step_cov)) / (1 - gamma)
    return p, c, step_cov


@pytest.mark.parametrize("name", ["scalar", "2x1", "2x2"])
def test_lqr_gradient_matches_finite_differences(x64, name):
    env, weights, sigma = _lqr(name)
    gamma = 0.9
    value = jax.jit(env.exact_value)
    grad = env.exact_gradient(weights, sigma, gamma)
    log_sigma = np.log(np.broadcast_to(sigma, (env.action_dim,)))
    assert grad["weights"].shape == weights.shape
    assert grad["log_sigma"].shape == log_sigma.shape
    fd_weights = _central_difference(lambda k: float(value(k, sigma, gamma)), weights)
    fd_log_sigma = _central_difference(lambda ls: float(value(weights, np.exp(ls), gamma)), log_sigma)
    np.testing.assert_allclose(grad["weights"], fd_weights, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(grad["log_sigma"], fd_log_sigma, rtol=1e-6, atol=1e-8)
    assert np.all(np.abs(fd_weights) > 1e-3)  # not a vacuous comparison of zeros


@pytest.mark.parametrize("name", ["scalar", "2x1", "2x2"])
def test_lqr_value_matches_scipy_lyapunov(x64, name):
    env, weights, sigma = _lqr(name)
    gamma = 0.9
    p, c, _ = _lqr_terms(env, weights, sigma, gamma)
    expected = -(np.trace(p @ np.asarray(env.init_cov)) + c)
    np.testing.assert_allclose(env.exact_value(weights, sigma, gamma), expected, rtol=1e-10)


def test_lqr_value_matches_monte_carlo(x64):
    env, weights, sigma = _lqr("2x2")
    gamma = 0.9
    weights_j, sigma_j = jnp.asarray(weights), jnp.asarray(sigma)

    def policy(key, obs):
        return weights_j @ obs + sigma_j * jax.random.normal(key, (env.action_dim,))

    estimate = _monte_carlo_value(env, policy, gamma, 20_000)
    exact = env.exact_value(weights, sigma, gamma)
    assert_unbiased(estimate, exact)
    # Power: discounting the noise of step 0 (1/(1-gamma) instead of gamma/(1-gamma) in
    # front of tr(P (B Sigma_a B^T + noise_cov))) is a 7% error here, and it is rejected.
    p, _, step_cov = _lqr_terms(env, weights, sigma, gamma)
    wrong = exact - np.trace(p @ step_cov)
    assert abs(z_scores(estimate.mean, estimate.stderr, wrong)) > 4


def test_lqr_q_matches_monte_carlo(x64):
    env, weights, sigma = _lqr("2x1")
    gamma, n = 0.8, 20_000
    horizon = _horizon(gamma)
    s, a = jnp.array([1.0, -0.5]), jnp.array([0.7])
    weights_j = jnp.asarray(weights)

    def policy(key, obs):
        return weights_j @ obs + sigma * jax.random.normal(key, (env.action_dim,))

    returns = jax.jit(jax.vmap(lambda k: _discounted_return(env, policy, gamma, horizon, k, s, a)))
    estimate = _estimate(returns(jax.random.split(KEY, n)))
    exact = env.exact_q(weights, sigma, gamma, s, a)
    assert_unbiased(estimate, exact)
    # Q(s, a) - r(s, a) is gamma E[V(s')]; dropping it is far outside the error bars.
    assert abs(z_scores(estimate.mean, estimate.stderr, env.reward(s, a))) > 4


def test_lqr_zero_noise_is_deterministic(x64):
    a, b = np.array([[0.9, 0.3], [-0.1, 0.8]]), np.array([[0.0], [1.0]])
    q, r = np.array([[1.0, 0.2], [0.2, 0.5]]), np.array([[0.3]])
    env = LinearQuadratic(a, b, q, r, np.zeros((2, 2)), np.zeros((2, 2)))
    assert env.observation_shape == (2,) and env.action_shape == (1,) and env.num_actions is None
    assert not env.discrete
    s, u = np.array([1.0, -2.0]), np.array([0.5])
    keys = jax.random.split(KEY, 3)
    np.testing.assert_array_equal(jax.jit(jax.vmap(env.reset))(keys), np.zeros((3, 2)))
    next_states, rewards = jax.jit(jax.vmap(env.step, in_axes=(0, None, None)))(keys, s, u)
    np.testing.assert_allclose(next_states, np.tile(a @ s + b @ u, (3, 1)), rtol=1e-14)
    np.testing.assert_allclose(rewards, np.full(3, -(s @ q @ s + u @ r @ u)), rtol=1e-14)
    np.testing.assert_array_equal(env.observe(s), s)


def _assert_covariance(draws, mean, cov, num_stderr=5.0):
    """Sample mean and covariance of Gaussian draws agree with (mean, cov) element-wise."""
    draws = np.asarray(draws, np.float64)
    n = draws.shape[0]
    var = np.diag(cov)
    np.testing.assert_array_less(np.abs(draws.mean(0) - mean), num_stderr * np.sqrt(var / n) + 1e-12)
    centred = draws - mean
    # Var(x_i x_j) = cov_ii cov_jj + cov_ij^2 for a zero-mean Gaussian.
    stderr = np.sqrt((np.outer(var, var) + cov ** 2) / n)
    np.testing.assert_array_less(np.abs(centred.T @ centred / n - cov), num_stderr * stderr + 1e-12)


def test_lqr_noise_and_initial_covariances(x64):
    noise_cov = np.array([[0.5, 0.2], [0.2, 0.3]])
    init_cov = np.array([[1.0, 2.0], [2.0, 4.0]])  # rank 1: s_0 lies on the line x_1 = 2 x_0
    env = LinearQuadratic(
            [[0.9, 0.3], [-0.1, 0.8]], [[0.0], [1.0]], np.eye(2), [[0.3]], noise_cov, init_cov)
    s, u = jnp.array([1.0, -2.0]), jnp.array([0.5])
    keys = jax.random.split(KEY, 50_000)
    next_states, _ = jax.jit(jax.vmap(env.step, in_axes=(0, None, None)))(keys, s, u)
    _assert_covariance(next_states, np.asarray(env.A @ s + env.B @ u), noise_cov)
    starts = jax.jit(jax.vmap(env.reset))(keys)
    _assert_covariance(starts, np.zeros(2), init_cov)
    np.testing.assert_allclose(starts[:, 1], 2 * starts[:, 0], rtol=1e-9, atol=1e-12)
    # Power: the covariance check rejects the identity, which has the same diagonal scale.
    with pytest.raises(AssertionError):
        _assert_covariance(next_states, np.asarray(env.A @ s + env.B @ u), np.diag(np.diag(noise_cov)))


def test_lqr_traces_under_jit_and_vmap():
    """Default precision; tracers skip the value checks, static shapes are still checked."""
    env, weights, sigma = _lqr("2x2")
    gamma = 0.9
    batch = jnp.stack([jnp.asarray(weights, jnp.float32)] * 3)
    values = jax.jit(jax.vmap(env.exact_value, in_axes=(0, None, None)))(batch, sigma, gamma)
    np.testing.assert_allclose(values, np.full(3, env.exact_value(weights, sigma, gamma)), rtol=1e-5)
    traced = jax.jit(env.exact_gradient)(weights, sigma, gamma)
    eager = env.exact_gradient(weights, sigma, gamma)
    for name in ("weights", "log_sigma"):
        np.testing.assert_allclose(traced[name], eager[name], rtol=1e-4)
    with pytest.raises(ValueError, match=re.escape("weights must have shape (2, 2), got shape (3,)")):
        jax.jit(env.exact_value)(jnp.zeros(3), sigma, gamma)


def test_lqr_unstable_open_loop_is_allowed_when_discount_is_enough(x64):
    env = LinearQuadratic([[1.05]], [[1.0]], [[1.0]], [[1.0]], [[0.1]], [[1.0]])
    zero = np.zeros((1, 1))
    value = env.exact_value(zero, 0.5, 0.8)  # sqrt(0.8) * 1.05 = 0.94 < 1
    p, c, _ = _lqr_terms(env, zero, 0.5, 0.8)
    np.testing.assert_allclose(value, -(p[0, 0] + c), rtol=1e-10)
    with pytest.raises(ValueError, match="spectral radius 1.05"):
        env.exact_value(zero, 0.5, 0.95)  # sqrt(0.95) * 1.05 = 1.02


# ----------------------------------------------------------------------------- finite MDP


def _policy_matrices(mdp, logits, gamma):
    """(pi, P_pi, V, Q) in numpy, with V solved from the Bellman equation."""
    p, r = np.asarray(mdp.transitions, np.float64), np.asarray(mdp.rewards, np.float64)
    pi = np.exp(logits - logits.max(1, keepdims=True))
    pi /= pi.sum(1, keepdims=True)
    p_pi = np.einsum("sa,sat->st", pi, p)
    v = np.linalg.solve(np.eye(mdp.num_states) - gamma * p_pi, (pi * r).sum(1))
    return pi, p_pi, v, r + gamma * p @ v


def _random_mdp(seed=0, num_states=4, num_actions=3):
    k_mdp, k_logits = jax.random.split(jax.random.key(seed))
    mdp = FiniteMDP.random(k_mdp, num_states, num_actions)
    return mdp, np.asarray(jax.random.normal(k_logits, (num_states, num_actions)), np.float64)


def test_finite_mdp_satisfies_bellman(x64):
    mdp, logits = _random_mdp()
    gamma = 0.9
    v, q = mdp.exact_v(logits, gamma), mdp.exact_q(logits, gamma)
    assert v.shape == (4,) and q.shape == (4, 3)
    pi, p_pi, _, _ = _policy_matrices(mdp, logits, gamma)
    r = np.asarray(mdp.rewards)
    np.testing.assert_allclose(v, (pi * r).sum(1) + gamma * p_pi @ v, rtol=1e-12)
    np.testing.assert_allclose(q, r + gamma * np.asarray(mdp.transitions) @ v, rtol=1e-12)
    np.testing.assert_allclose((pi * q).sum(1), v, rtol=1e-12)
    np.testing.assert_allclose(mdp.exact_value(logits, gamma), np.asarray(mdp.initial) @ v, rtol=1e-12)


def test_finite_mdp_gradient_matches_finite_differences_and_pg_theorem(x64):
    mdp, logits = _random_mdp()
    gamma = 0.9
    grad = mdp.exact_gradient(logits, gamma)["logits"]
    value = jax.jit(mdp.exact_value)
    fd = _central_difference(lambda x: float(value(x, gamma)), logits)
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-9)
    # 1/(1-gamma) sum_s d(s) sum_a grad pi(a|s) Q(s, a); for softmax,
    # d pi(a|s) / d logits[s, b] = pi(a|s) (1[a = b] - pi(b|s)).
    pi, p_pi, v, q = _policy_matrices(mdp, logits, gamma)
    occupancy = (1 - gamma) * np.linalg.solve((np.eye(4) - gamma * p_pi).T, np.asarray(mdp.initial))
    np.testing.assert_allclose(occupancy.sum(), 1.0, rtol=1e-12)
    theorem = occupancy[:, None] * pi * (q - v[:, None]) / (1 - gamma)
    np.testing.assert_allclose(grad, theorem, rtol=1e-10, atol=1e-13)


def test_finite_mdp_sampling_frequencies(x64):
    mdp, _ = _random_mdp(seed=1)
    assert mdp.observation_shape == () and mdp.action_shape == () and mdp.num_actions == 3
    assert mdp.num_states == 4 and mdp.discrete
    n = 20_000
    keys = jax.random.split(KEY, n)
    step = jax.jit(jax.vmap(mdp.step, in_axes=(0, None, None)))
    for s, a in ((0, 0), (2, 1), (3, 2)):
        next_states, rewards = step(keys, jnp.int32(s), jnp.int32(a))
        assert next_states.dtype == jnp.int32
        np.testing.assert_array_equal(rewards, np.full(n, mdp.rewards[s, a]))
        counts = np.bincount(np.asarray(next_states), minlength=4)
        assert stats.chisquare(counts, n * np.asarray(mdp.transitions[s, a])).pvalue > P_MIN
        # Power: the counts reject the neighbouring row.
        other = np.asarray(mdp.transitions[(s + 1) % 4, a])
        assert stats.chisquare(counts, n * other).pvalue < P_MIN
    starts = jax.jit(jax.vmap(mdp.reset))(keys)
    assert starts.dtype == jnp.int32
    counts = np.bincount(np.asarray(starts), minlength=4)
    assert stats.chisquare(counts, n * np.asarray(mdp.initial)).pvalue > P_MIN


def test_finite_mdp_zero_probabilities_are_never_drawn(x64):
    transitions = np.zeros((3, 2, 3))
    transitions[:, 0, 1] = 1.0  # action 0 always leads to state 1
    transitions[:, 1] = [0.5, 0.0, 0.5]
    mdp = FiniteMDP(transitions, np.ones((3, 2)), np.array([0.0, 0.0, 1.0]))
    keys = jax.random.split(KEY, 2000)
    np.testing.assert_array_equal(jax.jit(jax.vmap(mdp.reset))(keys), 2)
    step = jax.jit(jax.vmap(mdp.step, in_axes=(0, None, None)))
    np.testing.assert_array_equal(step(keys, 0, 0)[0], 1)
    assert not np.any(np.asarray(step(keys, 2, 1)[0]) == 1)


def test_finite_mdp_value_matches_monte_carlo(x64):
    mdp, logits = _random_mdp(seed=2)
    gamma = 0.8
    logits_j = jnp.asarray(logits)

    def policy(key, obs):
        return jax.random.categorical(key, logits_j[obs]).astype(jnp.int32)

    estimate = _monte_carlo_value(mdp, policy, gamma, 20_000)
    assert_unbiased(estimate, mdp.exact_value(logits, gamma))
    # Power: the value of the uniform policy differs by 4% and is rejected.
    uniform = mdp.exact_value(np.zeros_like(logits), gamma)
    assert abs(z_scores(estimate.mean, estimate.stderr, uniform)) > 4


# ----------------------------------------------------------------------------- validation

_A, _B, _Q, _R = np.array([[0.9, 0.3], [-0.1, 0.8]]), np.array([[0.0], [1.0]]), np.eye(2), np.eye(1)
_W = 0.1 * np.eye(2)
_K = np.array([[-0.1, -0.2]])
_UNSTABLE_K = np.array([[0.0, 1.0]])  # A + B K = [[0.9, 0.3], [-0.1, 1.8]]: radius 1.765


def _lqr_with(**changes):
    args = dict(A=_A, B=_B, Q=_Q, R=_R, noise_cov=_W, init_cov=_W) | changes
    return LinearQuadratic(**args)


LQR_ERRORS = {
    "A_not_square": (
        lambda: _lqr_with(A=np.ones((2, 3))),
        "A must be a square matrix of shape (n, n), n >= 1, got shape (2, 3)"),
    "B_rows": (
        lambda: _lqr_with(B=np.ones((3, 1))),
        "B must have shape (n, m) = (2, m) with m >= 1 (n from A), got shape (3, 1)"),
    "Q_shape": (lambda: _lqr_with(Q=np.eye(3)), "Q must have shape (2, 2), got shape (3, 3)"),
    "R_shape": (lambda: _lqr_with(R=np.eye(2)), "R must have shape (1, 1), got shape (2, 2)"),
    "noise_cov_shape": (
        lambda: _lqr_with(noise_cov=np.eye(1)), "noise_cov must have shape (2, 2), got shape (1, 1)"),
    "init_cov_shape": (
        lambda: _lqr_with(init_cov=np.zeros(2)), "init_cov must have shape (2, 2), got shape (2,)"),
    "Q_asymmetric": (
        lambda: _lqr_with(Q=[[1.0, 0.5], [0.0, 1.0]]), "Q must be symmetric, got max |Q - Q^T| = 0.5"),
    "R_negative": (
        lambda: _lqr_with(R=[[-1.0]]), "R must be positive semi-definite, got smallest eigenvalue -1"),
    "noise_cov_indefinite": (
        lambda: _lqr_with(noise_cov=[[1.0, 2.0], [2.0, 1.0]]),
        "noise_cov must be positive semi-definite, got smallest eigenvalue -1"),
    "init_cov_nan": (
        lambda: _lqr_with(init_cov=[[np.nan, 0.0], [0.0, 1.0]]),
        "init_cov must be finite element-wise, got"),
    "A_inf": (
        lambda: _lqr_with(A=[[np.inf, 0.0], [0.0, 1.0]]), "A must be finite element-wise, got"),
    "weights_shape": (
        lambda: _lqr_with().exact_value(_K.T, 0.5, 0.9),
        "weights must have shape (1, 2), got shape (2, 1)"),
    "sigma_shape": (
        lambda: _lqr_with().exact_value(_K, np.ones(3), 0.9),
        "sigma must have shape () or (1,), got shape (3,)"),
    "sigma_zero": (
        lambda: _lqr_with().exact_value(_K, 0.0, 0.9),
        "sigma must lie in (0.0, inf), got 0.0"),
    "sigma_negative": (
        lambda: _lqr_with().exact_gradient(_K, np.array([-0.5]), 0.9),
        "sigma must lie in (0.0, inf), got -0.5"),
    "gamma_one": (
        lambda: _lqr_with().exact_value(_K, 0.5, 1.0),
        "gamma must lie in (0.0, 1.0), got 1.0"),
    "gamma_zero": (
        lambda: _lqr_with().exact_q(_K, 0.5, 0.0, np.zeros(2), np.zeros(1)),
        "gamma must lie in (0.0, 1.0), got 0.0"),
    "gamma_shape": (
        lambda: _lqr_with().exact_value(_K, 0.5, np.array([0.9])),
        "gamma must have shape (), got shape (1,)"),
    "unstable_value": (
        lambda: _lqr_with().exact_value(_UNSTABLE_K, 0.5, 0.9),
        "weights give a closed loop A + B K with spectral radius 1.76533, and sqrt(gamma) * radius "
        "= 1.67474 >= 1 for gamma=0.9: the discounted cost is infinite"),
    "unstable_gradient": (
        lambda: _lqr_with().exact_gradient(_UNSTABLE_K, 0.5, 0.9), "the discounted cost is infinite"),
    "unstable_q": (
        lambda: _lqr_with().exact_q(_UNSTABLE_K, 0.5, 0.9, np.zeros(2), np.zeros(1)),
        "sqrt(gamma) * radius = 1.67474"),
    "q_state_shape": (
        lambda: _lqr_with().exact_q(_K, 0.5, 0.9, np.zeros(3), np.zeros(1)),
        "s must have shape (2,), got shape (3,)"),
    "q_action_shape": (
        lambda: _lqr_with().exact_q(_K, 0.5, 0.9, np.zeros(2), np.zeros(())),
        "a must have shape (1,), got shape ()"),
}

_P = np.full((2, 2, 2), 0.5)
_BAD_SUM = _P.copy()
_BAD_SUM[0, 1] = [0.5, 0.4]
_NEGATIVE = _P.copy()
_NEGATIVE[1, 0] = [1.5, -0.5]


def _mdp_with(**changes):
    args = dict(transitions=_P, rewards=np.ones((2, 2)), initial=np.full(2, 0.5)) | changes
    return FiniteMDP(**args)


MDP_ERRORS = {
    "transitions_shape": (
        lambda: _mdp_with(transitions=np.full((2, 2, 3), 1 / 3)),
        "transitions must have shape (S, A, S) with S, A >= 1, got shape (2, 2, 3)"),
    "rewards_shape": (
        lambda: _mdp_with(rewards=np.ones((2, 3))), "rewards must have shape (2, 2), got shape (2, 3)"),
    "initial_shape": (
        lambda: _mdp_with(initial=np.full(3, 1 / 3)), "initial must have shape (2,), got shape (3,)"),
    "transitions_sum": (
        lambda: _mdp_with(transitions=_BAD_SUM),
        "transitions[0, 1] must be a probability vector (entries >= 0, summing to 1 within 1e-06), "
        "got [0.5 0.4] with sum 0.9"),
    "transitions_negative": (
        lambda: _mdp_with(transitions=_NEGATIVE), "transitions[1, 0] must be a probability vector"),
    "initial_sum": (
        lambda: _mdp_with(initial=np.array([0.5, 0.5 + 1e-5])),
        "initial must be a probability vector (entries >= 0, summing to 1 within 1e-06), "
        "got [0.5 0.5] with sum 1.00001"),
    "rewards_nan": (
        lambda: _mdp_with(rewards=np.array([[1.0, np.nan], [0.0, 0.0]])),
        "rewards must be finite element-wise, got"),
    "random_num_states": (
        lambda: FiniteMDP.random(KEY, 0, 2), "num_states must be a Python int >= 1, got 0"),
    "random_num_actions": (
        lambda: FiniteMDP.random(KEY, 2, 1.5), "num_actions must be a Python int >= 1, got 1.5"),
    "logits_shape": (
        lambda: _mdp_with().exact_v(np.zeros((2, 3)), 0.9),
        "logits must have shape (2, 2), got shape (2, 3)"),
    "logits_nan": (
        lambda: _mdp_with().exact_q(np.full((2, 2), np.nan), 0.9),
        "logits must be finite element-wise, got"),
    "gamma_one": (
        lambda: _mdp_with().exact_value(np.zeros((2, 2)), 1.0),
        "gamma must lie in (0.0, 1.0), got 1.0"),
    "gamma_negative": (
        lambda: _mdp_with().exact_gradient(np.zeros((2, 2)), -0.1),
        "gamma must lie in (0.0, 1.0), got -0.1"),
}

ERRORS = {f"lqr_{k}": v for k, v in LQR_ERRORS.items()} | {f"mdp_{k}": v for k, v in MDP_ERRORS.items()}


@pytest.mark.parametrize("make, message", list(ERRORS.values()), ids=list(ERRORS))
def test_validation_errors(make, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        make()


def test_valid_arguments_pass_validation():
    """The counterpart of test_validation_errors: the same builders with good arguments."""
    env = _lqr_with()
    assert np.isfinite(env.exact_value(_K, np.array([0.5]), 0.9))
    assert np.isfinite(env.exact_q(_K, 0.5, 0.9, np.zeros(2), np.zeros(1)))
    _lqr_with(noise_cov=np.zeros((2, 2)), init_cov=np.zeros((2, 2)))  # singular covariances
    assert np.isfinite(_mdp_with().exact_value(np.zeros((2, 2)), 0.9))
