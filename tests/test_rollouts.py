"""The roll-out engine: geometric horizons, unbiased Q, exact step counts, busy lanes."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import weakpg
from weakpg.envs import Environment, FiniteMDP
from weakpg.estimators import GradientEstimate
from weakpg.rollouts import Jobs, geometric_horizon, run_jobs
from weakpg.testing import assert_unbiased

KEY = jax.random.key(5)
GAMMA = 0.8
MDP = FiniteMDP.random(jax.random.key(3), num_states=5, num_actions=3)
LOGITS = jax.random.normal(jax.random.key(4), (5, 3))


def test_geometric_horizon_law():
    t = np.asarray(geometric_horizon(KEY, GAMMA, (200_000,)))
    ks = np.arange(12)
    counts = np.bincount(t, minlength=12)[:12]
    expected = stats.geom.pmf(ks + 1, 1 - GAMMA) * t.size
    assert stats.chisquare(counts, expected * counts.sum() / expected.sum()).pvalue > 1e-3
    assert t.min() == 0


class Counted(NamedTuple):
    inner: jax.Array
    steps: jax.Array


class StepCounter(Environment):
    """Wraps an environment; its state counts the steps taken since the start state.

    With ``discount`` it multiplies reward t by discount^t: a deliberately wrong Q
    estimator (a discounted sum on top of the random horizon).
    """

    def __init__(self, env: Environment, discount: float = 1.0):
        self.env, self.discount = env, discount
        self.observation_shape, self.action_shape = env.observation_shape, env.action_shape
        self.num_actions = env.num_actions
        self.num_states = getattr(env, "num_states", None)

    def reset(self, key):
        return Counted(self.env.reset(key), jnp.array(0, jnp.int32))

    def step(self, key, state, action):
        inner, reward = self.env.step(key, state.inner, action)
        return Counted(inner, state.steps + 1), reward * self.discount ** state.steps

    def observe(self, state):
        return self.env.observe(state.inner)


def _q_estimate(env: Environment, reps: int) -> GradientEstimate:
    """Q(s, a) for every (s, a) of the MDP from ``reps`` random-horizon roll-outs each."""
    policy = weakpg.Softmax(MDP)
    s, a = np.meshgrid(np.arange(5), np.arange(3), indexing="ij")
    s = np.tile(s.ravel(), reps)
    a = np.tile(a.ravel(), reps)
    start = Counted(jnp.asarray(s, jnp.int32), jnp.zeros(s.size, jnp.int32))
    horizon = geometric_horizon(jax.random.key(1), GAMMA, (s.size,)) + 1
    out = run_jobs(KEY, env, policy, {"logits": LOGITS},
                   Jobs(start, horizon, jnp.asarray(a)[:, None]), group_size=1, num_lanes=256)
    q = np.asarray(out.returns[:, 0]).reshape(reps, 5, 3)
    return GradientEstimate({"q": q.mean(0)}, {"q": q.std(0, ddof=1) / np.sqrt(reps)})


def test_random_horizon_q_matches_exact_q():
    assert_unbiased(_q_estimate(StepCounter(MDP), 4000), {"q": MDP.exact_q(LOGITS, GAMMA)})


def test_discounted_sum_on_top_of_the_random_horizon_is_caught():
    with pytest.raises(AssertionError, match="standard errors"):
        assert_unbiased(_q_estimate(StepCounter(MDP, discount=GAMMA), 4000),
                        {"q": MDP.exact_q(LOGITS, GAMMA)})


@pytest.mark.parametrize("group_size, num_lanes", [(1, 7), (3, 16), (2, 64)])
def test_every_job_runs_exactly_its_horizon(group_size, num_lanes):
    env = StepCounter(MDP)
    num_jobs = 500
    horizon = geometric_horizon(jax.random.key(2), 0.9, (num_jobs,))  # zeros included
    start = Counted(jnp.zeros(num_jobs, jnp.int32), jnp.zeros(num_jobs, jnp.int32))
    first = jnp.zeros((num_jobs, group_size), jnp.int32)
    out = run_jobs(KEY, env, weakpg.Softmax(MDP), {"logits": LOGITS},
                   Jobs(start, horizon, first), group_size=group_size, num_lanes=num_lanes)
    np.testing.assert_array_equal(out.final.steps, horizon)
    assert int(out.env_steps) == group_size * int(horizon.sum())


def test_members_of_a_group_share_random_numbers():
    # Same first action in every member: the coupled members must stay identical.
    env = weakpg.envs.LinearQuadratic(A=[[0.9]], B=[[0.5]], Q=[[1.0]], R=[[0.1]],
                                      noise_cov=[[0.1]], init_cov=[[1.0]])
    policy = weakpg.LinearGaussian(env, sigma=0.5)
    num_jobs = 64
    start = jax.random.normal(KEY, (num_jobs, 1))
    first = jnp.broadcast_to(jnp.array([0.3])[None, None], (num_jobs, 3, 1))
    horizon = geometric_horizon(jax.random.key(2), 0.9, (num_jobs,)) + 1
    out = run_jobs(KEY, env, policy, {"weights": jnp.array([[-0.4]])}, Jobs(start, horizon, first),
                   group_size=3, num_lanes=8)
    # Equal up to float32 rounding (vectorised code may round members differently);
    # members with their own noise would differ by order one.
    np.testing.assert_allclose(out.returns[:, 0], out.returns[:, 1], rtol=1e-5)
    np.testing.assert_allclose(out.returns[:, 0], out.returns[:, 2], rtol=1e-5)
    assert np.unique(np.asarray(out.returns[:, 0])).size == num_jobs


def test_lanes_stay_busy():
    # 20,000 geometric jobs of mean length 20 on 256 lanes: a batch that waited for its
    # longest member would idle most lanes; the queue keeps over 90% of lane-steps busy.
    env = weakpg.envs.make("Pendulum-v1")
    policy = weakpg.LinearGaussian(env, sigma=1.0)
    num_jobs = 20_000
    start = jax.vmap(env.reset)(jax.random.split(KEY, num_jobs))
    horizon = geometric_horizon(jax.random.key(2), 0.95, (num_jobs,)) + 1
    out = run_jobs(KEY, env, policy, policy.init(KEY), Jobs(start, horizon), group_size=1, num_lanes=256)
    utilisation = int(out.env_steps) / int(out.lane_steps)
    assert utilisation > 0.9, utilisation
    waiting = float(horizon.mean() / horizon[: 78 * 256].reshape(78, 256).max(axis=1).mean())
    assert waiting < 0.3, waiting  # what waiting for the longest horizon would give
