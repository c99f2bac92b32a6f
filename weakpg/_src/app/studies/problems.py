"""The test beds of the studies, where grad J is known exactly, and the estimators compared.

LQR: linear dynamics, quadratic cost, Gaussian noise and the linear-Gaussian policy
a = K s + sigma eps, whose J and grad J come from a discounted Lyapunov equation
(``LinearQuadratic.exact_gradient``). Finite MDP: a random tabular MDP and a softmax
policy, solved exactly by linear algebra. Every estimator is compared at equal
environment-step budgets: a sample with b branches costs T' + b (T + 1) steps,
T', T ~ Geom(1 - gamma), so (b + gamma) / (1 - gamma) on average.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from weakpg._src.envs.base import Environment
from weakpg._src.envs.finite_mdp import FiniteMDP
from weakpg._src.envs.linear_quadratic import LinearQuadratic
from weakpg._src.policies import LinearGaussian, Params, Policy, Softmax

SIGMA = 0.5
SCALAR_LQR = LinearQuadratic(A=[[0.9]], B=[[0.5]], Q=[[1.0]], R=[[0.1]], noise_cov=[[0.1]],
                             init_cov=[[1.0]])
SCALAR_WEIGHTS = ((-0.4,),)
LQR_2D = LinearQuadratic(A=[[0.8, 0.2], [-0.1, 0.9]], B=[[0.5, 0.0], [0.1, 0.4]],
                         Q=[[1.0, 0.0], [0.0, 0.5]], R=[[0.1, 0.0], [0.0, 0.2]],
                         noise_cov=0.05 * np.eye(2), init_cov=np.eye(2))
WEIGHTS_2D = ((-0.3, 0.1), (0.05, -0.4))
# A 4-dimensional action: four phantom pairs per sample for the random-coordinate estimators.
LQR_4D = LinearQuadratic(A=0.85 * np.eye(4) + 0.1 * np.eye(4, k=1) - 0.05 * np.eye(4, k=-1),
                         B=0.5 * np.eye(4) + 0.1 * np.eye(4, k=1), Q=np.diag([1.0, 0.8, 0.6, 0.4]),
                         R=np.diag([0.1, 0.15, 0.2, 0.25]), noise_cov=0.05 * np.eye(4), init_cov=np.eye(4))
WEIGHTS_4D = tuple(map(tuple, -0.3 * np.eye(4) + 0.05 * np.eye(4, k=-1)))
LQRS = {"scalar LQR": (SCALAR_LQR, SCALAR_WEIGHTS), "2-D LQR": (LQR_2D, WEIGHTS_2D),
        "4-D LQR": (LQR_4D, WEIGHTS_4D)}


class Problem(NamedTuple):
    """A policy gradient to estimate, and its exact value.

    Attributes:
      name: label in tables and figures ("scalar LQR, gamma 0.9").
      env, policy, params: what is differentiated (params is a pytree).
      gamma: discount factor.
      exact: grad J at params, a pytree like params.
    """

    name: str
    env: Environment
    policy: Policy
    params: Params
    gamma: float
    exact: Params


def lqr_problem(which: str, gamma: float, *, sigma: float = SIGMA,
                weights: Any = None) -> Problem:
    """``which`` of ``LQRS`` at ``gamma`` with a fixed sigma (the gradient is w.r.t. K only)."""
    env, default = LQRS[which]
    weights = jnp.asarray(default if weights is None else weights, jnp.float32)
    exact = {"weights": env.exact_gradient(weights, sigma, gamma)["weights"]}
    return Problem(f"{which}, gamma {gamma:g}", env, LinearGaussian(env, sigma=sigma),
                   {"weights": weights}, gamma, exact)


def finite_mdp_problem(seed: int, gamma: float, *, num_states: int = 5,
                       num_actions: int = 3) -> Problem:
    """A random MDP (``FiniteMDP.random``) and random softmax logits, both from ``seed``."""
    mdp_key, logits_key = jax.random.split(jax.random.key(seed))
    mdp = FiniteMDP.random(mdp_key, num_states, num_actions)
    logits = jax.random.normal(logits_key, (num_states, num_actions))
    return Problem(f"random {num_states}x{num_actions} MDP (seed {seed}), gamma {gamma:g}", mdp,
                   Softmax(mdp), {"logits": logits}, gamma, mdp.exact_gradient(logits, gamma))


def flatten(tree: Params) -> np.ndarray:
    """The leaves of a pytree, raveled and concatenated in float64, shape (P,)."""
    return np.concatenate([np.ravel(np.asarray(x, np.float64)) for x in jax.tree.leaves(tree)])


class Estimator(NamedTuple):
    """A gradient estimator: its label and its options of ``make_gradient_estimator``."""

    label: str
    options: dict[str, Any]


ESTIMATORS = (
    Estimator("SF", dict(estimator="sf")),
    Estimator("SF + rollout baseline", dict(estimator="sf", baseline="rollout")),
    Estimator("SF + value baseline", dict(estimator="sf", baseline="value")),
    Estimator("JD uncoupled", dict(estimator="jd", coupled=False)),
    Estimator("JD coupled", dict(estimator="jd")),
)


def branches_per_sample(options: dict[str, Any], env: Environment, policy: Policy) -> int:
    """Phantom branches of one sample: a JD pair per element of every learned
    distribution parameter (per chosen element, with ``coordinates``); 2 for SF with a
    roll-out baseline; else 1."""
    if options["estimator"] == "jd":
        obs = jax.eval_shape(lambda k: env.observe(env.reset(k)), jax.random.key(0))
        params = jax.eval_shape(policy.init, jax.random.key(0))
        dist = jax.eval_shape(policy.dist_params, params, obs)
        sizes = [math.prod(dist[name].shape) for name in policy.learned_dist_params]
        k = options.get("coordinates")
        return 2 * sum(size if k is None else k for size in sizes)
    return 2 if options.get("baseline") == "rollout" else 1


def expected_steps_per_sample(gamma: float, branches: int) -> float:
    """E[T' + b (T + 1)] = (b + gamma) / (1 - gamma) for T', T ~ Geom(1 - gamma) on {0, 1, ...}."""
    return (branches + gamma) / (1.0 - gamma)


def num_samples_for_budget(budget: int, gamma: float, branches: int) -> int:
    """round(budget / expected steps per sample), at least 4 (the value baseline's minimum)."""
    return max(4, round(budget / expected_steps_per_sample(gamma, branches)))
