"""Random-coordinate weak derivatives and the quantile coupling, against exact LQR gradients.

The test bed is the studies' LQR with a 4-dimensional action (d = 4 phantom pairs per
learned Gaussian parameter). Compiled estimators are shared across the cases.
"""

from __future__ import annotations

import functools
from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import weakpg
from weakpg._src import phantom_branches
from weakpg._src.app.studies import problems
from weakpg._src.app.studies.base import QUICK_COMPILER_OPTIONS
from weakpg.envs import FiniteMDP
from weakpg.testing import assert_unbiased

ENV, WEIGHTS = problems.LQR_4D, jnp.asarray(problems.WEIGHTS_4D, jnp.float32)
SIGMA, GAMMA, N = 0.5, 0.9, 8192
KEY = jax.random.key(5)
POLICIES = {False: weakpg.LinearGaussian(ENV, sigma=SIGMA),
            True: weakpg.LinearGaussian(ENV, sigma=SIGMA, learn_sigma=True)}


def _params(learn_sigma: bool) -> dict:
    params = {"weights": WEIGHTS}
    return {**params, "log_sigma": jnp.full((4,), jnp.log(SIGMA))} if learn_sigma else params


def _exact(learn_sigma: bool) -> dict:
    exact = ENV.exact_gradient(WEIGHTS, SIGMA, GAMMA)
    return exact if learn_sigma else {"weights": exact["weights"]}


@functools.cache
def _estimate(learn_sigma: bool, **options):
    """One estimate per case, shared by every test that asks for it."""
    policy = POLICIES[learn_sigma]
    fn = weakpg.make_gradient_estimator(ENV, policy, gamma=GAMMA, num_samples=N, estimator="jd", **options)
    compiled = jax.jit(fn).lower(KEY, _params(learn_sigma)).compile(compiler_options=QUICK_COMPILER_OPTIONS)
    return compiled(KEY, _params(learn_sigma))


CASES = [(False, dict(coordinates=k, coupled=c)) for k in (1, 2, 4) for c in (True, False)]
CASES += [(True, dict(coordinates=k, coupled=c)) for k, c in ((1, True), (2, True), (2, False))]
CASES += [(False, dict(coupling="quantile")), (False, dict(coordinates=2, coupling="quantile")),
          (True, dict(coupling="quantile"))]


@pytest.mark.parametrize("learn_sigma, options", CASES, ids=[f"{s}-{o}" for s, o in CASES])
def test_random_coordinates_and_quantile_coupling_are_unbiased(learn_sigma, options):
    est = _estimate(learn_sigma, **options)
    assert_unbiased(est, _exact(learn_sigma))
    # T' + b (T + 1) steps per sample, b = 2k per learned parameter; coupled: one T for all b.
    k = options.get("coordinates") or 4
    branches = 2 * k * (2 if learn_sigma else 1)
    spread = branches**2 if options.get("coupled", True) else branches
    sd = np.sqrt((GAMMA + spread * GAMMA) / (1 - GAMMA) ** 2)
    assert abs(int(est.env_steps) / N - (branches + GAMMA) / (1 - GAMMA)) < 4 * sd / np.sqrt(N)


@pytest.mark.parametrize("coupled", [True, False])
def test_random_coordinates_without_the_d_over_k_weight_are_caught(coupled):
    with mock.patch.object(phantom_branches, "coordinate_weight", lambda size, k: 1.0):
        policy = weakpg.LinearGaussian(ENV, sigma=SIGMA)  # a new policy: a new compilation
        est = weakpg.estimate_gradient(KEY, ENV, policy, _params(False), estimator="jd", gamma=GAMMA,
                                       num_samples=N, coordinates=1, coupled=coupled)
    with pytest.raises(AssertionError, match="standard errors"):
        assert_unbiased(est, _exact(False))


def test_random_logits_of_a_softmax_are_unbiased():
    mdp = FiniteMDP.random(jax.random.key(3), num_states=5, num_actions=3)
    logits = jax.random.normal(jax.random.key(4), (5, 3))
    est = weakpg.estimate_gradient(KEY, mdp, weakpg.Softmax(mdp), {"logits": logits}, estimator="jd",
                                   gamma=0.8, num_samples=N, coordinates=1)
    assert_unbiased(est, mdp.exact_gradient(logits, 0.8))


@pytest.mark.parametrize("options, message", [
    (dict(coordinates=0), r"coordinates must be an int in \[1, d\] = \[1, 4\] \(d = 4: .*\), got 0"),
    (dict(coordinates=5), r"coordinates must be an int in \[1, d\] = \[1, 4\] \(d = 4: .*\), got 5"),
    (dict(coordinates=1.5), "coordinates must be of type int or None, got 1.5"),
    (dict(coordinates=True), "coordinates must be of type int or None, got True"),
    (dict(coordinates=2, estimator="sf"), "coordinates=2 applies to estimator='jd' only"),
    (dict(coupling="antithetic"), "coupling must be one of 'mirror', 'quantile', got 'antithetic'"),
    (dict(coupling="quantile", coupled=False), "coupling='quantile' .* needs coupled=True"),
    (dict(coupling="quantile", estimator="sf"), "coupling='quantile' applies to estimator='jd' only"),
])
def test_bad_coordinates_and_couplings_are_refused_before_computing(options, message):
    options = {"estimator": "jd", **options}
    with mock.patch("weakpg._src.gradients.run_jobs") as engine:
        with pytest.raises(ValueError, match=message):
            weakpg.estimate_gradient(KEY, ENV, POLICIES[False], _params(False), gamma=GAMMA, num_samples=8,
                                     **options)
        with pytest.raises(ValueError, match=message):
            weakpg.make_gradient_estimator(ENV, POLICIES[False], gamma=GAMMA, num_samples=8, **options)
    engine.assert_not_called()


def test_quantile_coupling_needs_a_gaussian_policy():
    mdp = FiniteMDP.random(jax.random.key(3), num_states=5, num_actions=3)
    with pytest.raises(ValueError, match="coupling='quantile' couples the pair of a Gaussian mean "
                                         "coordinate; Softmax has no Gaussian mean"):
        weakpg.make_gradient_estimator(mdp, weakpg.Softmax(mdp), estimator="jd", gamma=0.8, num_samples=8,
                                       coupling="quantile")
