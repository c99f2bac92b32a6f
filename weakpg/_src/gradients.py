"""Policy-gradient estimators from phantom roll-outs: PG-JD and PG-SF.

Both estimate grad J(theta), J = E[sum_t gamma^t r_t], through the policy-gradient
theorem grad J = 1/(1-gamma) E_{s ~ d_gamma}[ int grad pi(da|s) Q(s, a) ]:

1. s ~ d_gamma: run the policy T' ~ Geom(1 - gamma) steps from s_0 (the occupancy pass).
2. From copies of s, phantom branches take chosen first actions, then follow the policy
   for T ~ Geom(1 - gamma) more steps; each branch's undiscounted reward sum is an
   unbiased Q(s, a) (paper, Theorem 2).
3. A distribution-level gradient at s from the branch returns, times 1/(1-gamma)
   (``phantom_branches``):
   "jd" (weak derivative, paper eq. 16): for every element i of every learned
       distribution parameter, c_i (Q(s, a_i^+) - Q(s, a_i^-)) with (c, a^+, a^-) from
       ``Distribution.weak_derivative``: Gaussian mean (Rayleigh pair), Gaussian scale
       (Maxwell/Gaussian pair) when sigma is learned, Categorical logits (a point mass
       against a draw from pi);
   "sf" (score function): (Q(s, a) - b) grad log pi(a|s), a ~ pi, with b = 0, a
       "rollout" baseline (Q of a second, fresh action from the same state, with common
       random numbers) or a "value" baseline (``value_baseline``: a linear value function
       fitted to the other half of the batch, so it never sees the action it is
       subtracted from).
4. The chain rule to theta through ``policy.dist_params`` with ``jax.vjp``.

With ``coupled=True`` all branches of a sample run in one lockstep group and share every
random number after their first actions (and the weak-derivative pairs share their
Rayleigh / Maxwell draw: ``coupling``); with ``coupled=False`` every branch is an
independent roll-out. ``coordinates=k`` runs the pairs of k random coordinates of each
learned parameter instead of all d, weighted d/k.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from weakpg._src import config, validation
from weakpg._src.chain_rule import chain_rule
from weakpg._src.compiler_options import CPU_ESTIMATOR_OPTIONS, for_backend
from weakpg._src.distributions import Gaussian
from weakpg._src.envs.base import Environment
from weakpg._src.errors import NonFiniteError
from weakpg._src.phantom_branches import score_function_branches, weak_derivative_branches
from weakpg._src.policies import Params, Policy, check_policy_fits
from weakpg._src.rollouts import Jobs, geometric_horizon, run_jobs

Array = jax.Array


class PolicyGradientEstimate(NamedTuple):
    """A policy-gradient estimate from ``num_samples`` independent samples.

    Attributes:
      mean: the estimate of grad J, a pytree shaped like the policy parameters.
      stderr: its standard error (sample standard deviation / sqrt(num_samples)).
      env_steps: environment steps simulated, occupancy roll-outs included.
      lane_steps: simulator slots the engine spent, busy or idle
        (env_steps / lane_steps is the lane utilisation).
    """

    mean: Params
    stderr: Params
    env_steps: Any
    lane_steps: Any


def default_num_lanes(num_samples: int) -> int:
    """Lanes for a batch: wide enough to vectorise, few enough to keep every lane busy."""
    return int(min(1024, max(32, num_samples // 16), num_samples))


def make_gradient_estimator(
    env: Environment,
    policy: Policy,
    *,
    estimator: str,
    gamma: float,
    num_samples: int,
    coupled: bool = True,
    baseline: str | None = None,
    coordinates: int | None = None,
    coupling: str = "mirror",
    num_lanes: int | None = None,
) -> Callable[[Array, Params], PolicyGradientEstimate]:
    """Build ``estimate(key, params) -> PolicyGradientEstimate``, a pure jittable function.

    Arguments are checked here, once; the returned function trusts its inputs, so it can
    sit inside a larger ``jax.jit`` (a training step). See ``estimate_gradient``.
    """
    gamma, num_samples = _python_number(gamma), _python_number(num_samples)
    check_estimator(env, policy, estimator=estimator, gamma=gamma, num_samples=num_samples,
                    coupled=coupled, baseline=baseline, coordinates=coordinates, coupling=coupling,
                    num_lanes=num_lanes)
    lanes = default_num_lanes(num_samples) if num_lanes is None else num_lanes
    gamma = float(gamma)

    def estimate(key: Array, params: Params) -> PolicyGradientEstimate:
        keys = jax.random.split(key, 6)
        starts = jax.vmap(env.reset)(jax.random.split(keys[0], num_samples))
        occupancy = run_jobs(keys[1], env, policy, params,
                             Jobs(starts, geometric_horizon(keys[2], gamma, (num_samples,))),
                             group_size=1, num_lanes=lanes)
        roots = occupancy.final
        obs = jax.vmap(env.observe)(roots)
        dist_params = jax.vmap(policy.dist_params, (None, 0))(params, obs)
        if estimator == "jd":
            branches = weak_derivative_branches(keys[3], policy, dist_params, coupled=coupled,
                                                coordinates=coordinates, coupling=coupling)
        else:
            branches = score_function_branches(keys[3], policy, dist_params, obs, baseline)
        num_branches = branches.first_action.shape[1]
        if coupled or num_branches == 1:
            horizon = geometric_horizon(keys[4], gamma, (num_samples,)) + 1
            result = run_jobs(keys[5], env, policy, params,
                              Jobs(roots, horizon, branches.first_action),
                              group_size=num_branches, num_lanes=-(-lanes // num_branches),
                              keep_final=False)
            returns = result.returns
        else:
            total = num_samples * num_branches
            horizon = geometric_horizon(keys[4], gamma, (total,)) + 1
            repeated = jax.tree.map(lambda x: jnp.repeat(x, num_branches, axis=0), roots)
            first = branches.first_action.reshape((total, 1) + policy.action_shape)
            result = run_jobs(keys[5], env, policy, params, Jobs(repeated, horizon, first),
                              group_size=1, num_lanes=lanes, keep_final=False)
            returns = result.returns.reshape(num_samples, num_branches)
        scale = 1.0 / (1.0 - gamma)
        cotangent = jax.tree.map(lambda x: scale * x, branches.cotangent(returns))
        mean, stderr = chain_rule(policy, params, obs, cotangent)
        return PolicyGradientEstimate(mean, stderr, occupancy.env_steps + result.env_steps,
                                      occupancy.lane_steps + result.lane_steps)

    return estimate


def _python_number(x: Any) -> Any:
    """A NumPy scalar as the Python number it holds; anything else as it is."""
    return x.item() if isinstance(x, (np.integer, np.floating)) else x


def _dist_params_shapes(env: Environment, policy: Policy) -> dict[str, jax.ShapeDtypeStruct]:
    """The shapes of ``policy.dist_params`` at an observation of ``env``, computing nothing."""
    obs = jax.eval_shape(lambda k: env.observe(env.reset(k)), jax.random.key(0))
    return jax.eval_shape(policy.dist_params, jax.eval_shape(policy.init, jax.random.key(0)), obs)


def coordinate_dimension(env: Environment, policy: Policy) -> int:
    """d of ``coordinates``: the fewest elements of a learned distribution parameter of ``policy``
    (the action dimension of a Gaussian policy, the number of actions of a softmax)."""
    shapes = _dist_params_shapes(env, policy)
    return min(math.prod(shapes[name].shape) for name in policy.learned_dist_params)


def check_estimator(env: Any, policy: Any, *, estimator: Any, gamma: Any, num_samples: Any,
                    coupled: Any = True, baseline: Any = None, coordinates: Any = None,
                    coupling: Any = "mirror", num_lanes: Any = None) -> None:
    """ValueError unless ``make_gradient_estimator`` takes these arguments.

    The settings' rules are ``config.check_estimator``'s, the ones ``TrainConfig`` applies;
    here they also see the policy: ``coordinates`` <= d (``coordinate_dimension``) and
    ``coupling="quantile"`` only for a Gaussian policy.
    """
    check_policy_fits(env, policy)
    counted = isinstance(coordinates, int) and not isinstance(coordinates, bool)
    config.check_estimator(estimator=estimator, baseline=baseline, coupled=coupled, coordinates=coordinates,
                           coupling=coupling, gamma=gamma, num_samples=num_samples,
                           samples_name="num_samples",
                           dimension=coordinate_dimension(env, policy) if counted else None)
    if coupling != "mirror" and not isinstance(
            jax.eval_shape(policy.distribution, _dist_params_shapes(env, policy)), Gaussian):
        raise ValueError(f"coupling={coupling!r} couples the pair of a Gaussian mean coordinate; "
                         f"{type(policy).__name__} has no Gaussian mean: leave coupling='mirror'")
    if num_lanes is not None and (isinstance(num_lanes, bool) or not isinstance(num_lanes, int)
                                  or num_lanes < 1):
        raise ValueError(f"num_lanes must be an int >= 1 or None, got {num_lanes!r}")


def _check_params(policy: Policy, params: Params) -> None:
    expected = jax.eval_shape(policy.init, jax.random.key(0))
    if jax.tree.structure(expected) != jax.tree.structure(params):
        raise ValueError(
            f"params do not fit the policy: expected the structure of policy.init(key), "
            f"{jax.tree.structure(expected)}, got {jax.tree.structure(params)}")
    for path, want, got in zip(jax.tree_util.tree_flatten_with_path(expected)[0],
                               jax.tree.leaves(expected), jax.tree.leaves(params)):
        if tuple(want.shape) != tuple(np.shape(got)):
            raise ValueError(
                f"params{jax.tree_util.keystr(path[0])} must have shape {tuple(want.shape)}, "
                f"got {tuple(np.shape(got))}")
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        name = f"params{jax.tree_util.keystr(path)}"
        if not jnp.issubdtype(jnp.result_type(leaf), jnp.floating):
            raise ValueError(f"{name} must hold floats (it is differentiated), got dtype "
                             f"{jnp.result_type(leaf)}; e.g. jnp.asarray(x, jnp.float32)")
        validation.check_finite(name, leaf)


@functools.lru_cache(maxsize=64)
def _jitted_estimator(env: Environment, policy: Policy, options: tuple[tuple[str, Any], ...]
                      ) -> Callable[[Array, Params], PolicyGradientEstimate]:
    return jax.jit(make_gradient_estimator(env, policy, **dict(options)),
                   compiler_options=for_backend(CPU_ESTIMATOR_OPTIONS))


def estimate_gradient(
    key: Array,
    env: Environment,
    policy: Policy,
    params: Params,
    *,
    estimator: str,
    gamma: float,
    num_samples: int,
    coupled: bool = True,
    baseline: str | None = None,
    coordinates: int | None = None,
    coupling: str = "mirror",
    num_lanes: int | None = None,
) -> PolicyGradientEstimate:
    """Estimate grad J(params) from ``num_samples`` independent samples.

    Args:
      key: PRNG key; its implementation (threefry2x32, rbg, unsafe_rbg) is used throughout.
      env: a weakpg environment (``weakpg.envs.make``, ``LinearQuadratic``, ``FiniteMDP``).
      policy: a weakpg policy whose actions fit ``env``.
      params: the policy parameters (structure of ``policy.init(key)``).
      estimator: "jd" (weak derivative, PG-JD) or "sf" (score function, PG-SF).
      gamma: discount factor in (0, 1).
      num_samples: number of independent samples (states from the occupancy measure).
      coupled: run each sample's branches with common random numbers (default).
      baseline: for "sf": None, "rollout" or "value".
      coordinates: for "jd": k in [1, d] (d = ``coordinate_dimension(env, policy)``, the
        action dimension of a Gaussian policy): at each sample, k of the d coordinates of
        each learned distribution parameter, uniformly without replacement, get their
        phantom pair, and each pair's term is weighted d/k, so the estimate stays unbiased
        with 2k branches per parameter instead of 2d; None: all d.
      coupling: for "jd" with ``coupled``: the joint draw of a Gaussian mean pair, "mirror"
        (a- = 2 mu - a+, one Rayleigh draw; cancels the part of Q even about the mean) or
        "quantile" (a+ and a- comonotone, from one uniform; cancels most of a monotone Q).
        The Gaussian-scale pair keeps its own coupling.
      num_lanes: engine width (default ``default_num_lanes(num_samples)``).

    Returns:
      ``PolicyGradientEstimate`` with Python-int ``env_steps`` and ``lane_steps``.

    Raises:
      NonFiniteError: when the estimate holds a nan or an inf (a reward, return or
        log-density of its roll-outs was not finite). The function of
        ``make_gradient_estimator``, meant for ``jax.jit``, returns such an estimate as
        it is; ``weakpg.train`` checks every iteration.
    """
    gamma, num_samples = _python_number(gamma), _python_number(num_samples)
    options = dict(estimator=estimator, gamma=gamma, num_samples=num_samples, coupled=coupled,
                   baseline=baseline, coordinates=coordinates, coupling=coupling, num_lanes=num_lanes)
    check_estimator(env, policy, **options)
    _check_params(policy, params)
    fn = _jitted_estimator(env, policy, tuple(sorted({**options, "gamma": float(gamma)}.items())))
    out = fn(key, params)
    bad = validation.first_non_finite(out.mean)
    if bad is not None:
        raise NonFiniteError(
            f"the gradient estimate of params{bad} is not finite (nan or inf): a reward, return or "
            f"log-density of its roll-outs in {env!r} is not finite", what="the gradient estimate")
    return out._replace(env_steps=int(out.env_steps), lane_steps=int(out.lane_steps))
