"""Discrete actions end to end: a softmax policy on CartPole-v1, trained by PG-JD and evaluated."""


import jax
import jax.numpy as jnp
import pytest

import weakpg
from weakpg._src.app import settings
from weakpg._src.app.studies.learning_setups import CARTPOLE, METHODS
from weakpg._src.driver import train
from weakpg._src.evaluation import DEFAULT_EPISODE_LENGTH, make_evaluator, standard_episode_length

ENV = weakpg.envs.make("CartPole-v1")
# Push right when theta + 0.3 theta_dot + 0.1 x_dot > 0 (logit of action 1 minus action 0): a
# linear controller that keeps the pole up and the cart on the track for 500 steps.
BALANCING = {"weights": jnp.array([[0.0, 0.0, 0.0, 0.0], [0.0, 1.0, 10.0, 3.0]])}


def test_the_study_and_the_cli_use_a_softmax_policy():
    assert isinstance(CARTPOLE.make_policy(ENV), weakpg.Softmax)
    _, policy = settings.build(settings.from_dict({"env": "CartPole-v1", "policy": "linear"}))
    assert isinstance(policy, weakpg.Softmax) and policy.num_actions == 2
    # CartPole's velocities are unbounded (float32's largest value in the space): no RBF grid.
    with pytest.raises(ValueError, match="features='rbf' needs a bounded observation box.*policy 'linear'"):
        settings.build(settings.from_dict({"env": "CartPole-v1", "policy": "linear-rbf"}))


def test_greedy_return_counts_cartpoles_500_steps():
    evaluate = make_evaluator(ENV, weakpg.Softmax(ENV), gamma=0.95, key=jax.random.key(0),
                              num_episodes=8, episode_length=CARTPOLE.episode_length)
    scores = evaluate(BALANCING)
    assert float(scores["episode_return"]) == 500  # the most likely action never drops the pole
    assert 19.9 < float(scores["discounted_return"]) <= 1 / (1 - 0.95)


def test_standard_episode_length_is_the_environments_time_limit():
    assert standard_episode_length(ENV) == ENV.max_episode_steps == 500
    assert standard_episode_length(weakpg.envs.make("Pendulum-v1")) == 200
    lqr = weakpg.envs.LinearQuadratic(A=[[0.9]], B=[[0.5]], Q=[[1.0]], R=[[0.1]], noise_cov=[[0.1]],
                                      init_cov=[[1.0]])
    assert lqr.max_episode_steps is None and standard_episode_length(lqr) == DEFAULT_EPISODE_LENGTH == 200


def test_pg_jd_learns_to_balance_the_pole():
    policy = CARTPOLE.make_policy(ENV)
    config = CARTPOLE.train_config(METHODS[0], seed=0, env_steps=CARTPOLE.env_steps)
    assert config.estimator == "jd"
    _, rows = train(ENV, policy, config, iterations=6, eval_every=6, eval_episodes=16,
                    episode_length=CARTPOLE.episode_length)
    first, last = rows[0], rows[-1]
    # Zero weights tie the logits, so the most likely action always pushes left: the pole
    # falls within about 10 steps (a uniformly random policy lasts about 22).
    assert first["episode_return"] < 12
    assert last["episode_return"] > 100, rows
    assert last["discounted_return"] > first["discounted_return"] + 20, rows
