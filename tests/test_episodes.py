"""Real episodes: the gymnax ids' gymnasium twins, the JAX environment's own episodes."""

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from weakpg import envs
from weakpg._src.app import episodes
from weakpg.agents import Agent
from weakpg.policies import LinearGaussian, Softmax

# gymnasium's state vector -> the gymnax state's fields, per twin
FIELDS = {
    "Pendulum-v1": ("theta", "theta_dot"),
    "CartPole-v1": ("x", "x_dot", "theta", "theta_dot"),
    "MountainCarContinuous-v0": ("position", "velocity"),
    "Acrobot-v1": ("joint_angle1", "joint_angle2", "velocity_1", "velocity_2"),
}


def test_every_twin_is_listed():
    assert set(FIELDS) == set(episodes.TWINS)


@pytest.mark.parametrize("env_id", episodes.TWINS)
def test_twins_share_dynamics_observations_rewards_and_time_limits(env_id):
    """Every transition of a gymnasium episode, replayed in gymnax from the same state, agrees."""
    ours = envs.make(env_id)
    theirs = gymnasium.make(env_id)
    assert theirs.spec.max_episode_steps == ours.max_episode_steps
    assert theirs.observation_space.shape == ours.observation_shape
    obs, _ = theirs.reset(seed=3)
    theirs.action_space.seed(3)
    gx_env, gx_params = ours._env, ours._params
    _, template = gx_env.reset_env(jax.random.key(0), gx_params)
    step = jax.jit(lambda s, a: gx_env.step_env(jax.random.key(0), s, a, gx_params))
    for t in range(60):
        state = template.replace(**dict(zip(FIELDS[env_id], np.asarray(theirs.unwrapped.state, np.float32))),
                                 time=t)
        np.testing.assert_allclose(gx_env.get_obs(state, gx_params), obs, atol=1e-5)
        action = theirs.action_space.sample()
        obs, reward, terminated, _, _ = theirs.step(action)
        gx_obs, _, gx_reward, gx_done, _ = step(state, jnp.asarray(action))
        np.testing.assert_allclose(gx_obs, obs, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(gx_reward, reward, rtol=1e-5, atol=1e-5)
        assert bool(gx_done) == terminated
        if terminated:
            break


def test_the_episode_env_is_the_twin_unless_one_is_given():
    assert episodes.episode_env_id("Pendulum-v1") == "gymnasium:Pendulum-v1"
    assert episodes.episode_env_id("gymnasium:Hopper-v5") == "gymnasium:Hopper-v5"
    assert episodes.episode_env_id("Pendulum-v1", "Pendulum-v1") == "Pendulum-v1"
    with pytest.raises(ValueError, match="give the environment id"):
        episodes.episode_env_id(None)


def test_jax_episodes_end_at_termination_or_the_time_limit():
    env = envs.make("CartPole-v1")
    policy = Softmax(env)
    # Push right when the pole leans right: it balances for a while, then the cart drifts off.
    agent = Agent(policy, {"weights": jnp.array([[0.0, 0.0, -1.0, -1.0], [0.0, 0.0, 1.0, 1.0]])}, env)
    returns, lengths = episodes.jax_episodes(agent, env, np.arange(8))
    np.testing.assert_array_equal(returns, lengths)  # reward 1 per step until the end
    assert np.all((lengths > 9) & (lengths <= 500))
    again, _ = episodes.jax_episodes(agent, env, np.arange(8))
    np.testing.assert_array_equal(again, returns)
    sampled, _ = episodes.jax_episodes(agent, env, np.arange(8), stochastic=True)
    assert not np.array_equal(sampled, returns)
    pendulum = envs.make("Pendulum-v1")
    zero = Agent(LinearGaussian(pendulum), {"weights": jnp.zeros((1, 3))}, pendulum)
    returns, lengths = episodes.jax_episodes(zero, pendulum, np.arange(3))
    assert np.all(lengths == 200) and np.all(returns < 0)


def test_gymnasium_envs_need_a_time_limit_and_a_known_id():
    with pytest.raises(ValueError, match="unknown gymnasium environment id 'NoSuchEnv-v0'"):
        episodes.make_gymnasium("NoSuchEnv-v0")
    gymnasium.register("WeakpgTestNoLimit-v0", entry_point="gymnasium.envs.classic_control:PendulumEnv")
    try:
        with pytest.raises(ValueError, match="has no registered time limit"):
            episodes.make_gymnasium("WeakpgTestNoLimit-v0")
    finally:
        del gymnasium.registry["WeakpgTestNoLimit-v0"]
    env = envs.make("Pendulum-v1")
    agent = Agent(LinearGaussian(env), {"weights": jnp.zeros((1, 3))}, env)
    with pytest.raises(ValueError, match=r"observations of shape \(4,\); the policy was trained on \(3,\)"):
        episodes.check_fits(agent, gymnasium.make("CartPole-v1"), "gymnasium:CartPole-v1")
    cartpole = envs.make("CartPole-v1")
    softmax = Agent(Softmax(cartpole), {"weights": jnp.zeros((2, 4))}, cartpole)
    with pytest.raises(ValueError, match=r"actions of shape \(1,\); the policy gives actions of 2 discrete"):
        episodes.check_fits(softmax, gymnasium.make("InvertedPendulum-v5"), "gymnasium:InvertedPendulum-v5")
    episodes.check_fits(softmax, gymnasium.make("CartPole-v1"), "gymnasium:CartPole-v1")
    episodes.check_fits(agent, envs.make("Pendulum-v1"), "Pendulum-v1")
