"""The gymnasium adapter: exact save/restore, the plain gymnasium loop, gradients, errors."""

from __future__ import annotations

import functools
import importlib.util

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import weakpg
from weakpg.envs import GymnasiumEnvironment, from_gymnasium, make

KEY = jax.random.key(0)
NUM_LANES = 3
NUM_STEPS = 50
WARM_UP = 5  # steps before the saved state: past the reset, before CartPole can fall
CLASSIC_CONTROL = ("Pendulum-v1", "CartPole-v1", "MountainCarContinuous-v0", "Acrobot-v1", "MountainCar-v0")
# Ant-v5 reads body positions before it simulates: the case that needs the replayed substep.
MUJOCO = ("InvertedPendulum-v5", "HalfCheetah-v5", "Hopper-v5", "Ant-v5")
needs_mujoco = pytest.mark.skipif(importlib.util.find_spec("mujoco") is None, reason="needs weakpg[mujoco]")
ALL_IDS = list(CLASSIC_CONTROL) + [pytest.param(i, marks=needs_mujoco) for i in MUJOCO]


def _actions(env: GymnasiumEnvironment, num_steps: int, seed: int, scale: float = 1.0) -> jax.Array:
    """(num_steps, NUM_LANES, *action_shape) fixed actions, uniform over ``scale`` times the space."""
    rng, shape = np.random.default_rng(seed), (num_steps, NUM_LANES)
    if env.discrete:
        return jnp.asarray(rng.integers(0, env.num_actions, shape), jnp.int32)
    low, high = np.asarray(env.action_low), np.asarray(env.action_high)
    return jnp.asarray(scale * rng.uniform(low, high, shape + env.action_shape), jnp.float32)


@functools.lru_cache
def _env(env_id: str) -> GymnasiumEnvironment:
    """One adapter per id for the module, so the jitted roll-outs compile once per id."""
    return from_gymnasium(env_id)


@functools.partial(jax.jit, static_argnums=0)
def _rollout(env: GymnasiumEnvironment, states, actions: jax.Array):
    """(states, rewards) of NUM_LANES lanes after each step; leading axis time, then lane."""

    def body(s, a):
        s, r = jax.vmap(env.step, (None, 0, 0))(KEY, s, a)
        return s, (s, r)

    return jax.lax.scan(body, states, actions)[1]


@functools.partial(jax.jit, static_argnums=0)
def _starts(env: GymnasiumEnvironment):
    return jax.vmap(env.reset)(jax.random.split(KEY, NUM_LANES))


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_restored_rollout_is_identical(env_id):
    # The lanes take turns on one host env, so every step of these roll-outs restores a
    # state; past the reset, MuJoCo states are in their replayed-substep form.
    env = _env(env_id)
    states, _ = _rollout(env, _starts(env), _actions(env, NUM_STEPS, seed=1, scale=0.1))
    saved = jax.tree.map(lambda x: x[WARM_UP - 1], states)
    actions = _actions(env, NUM_STEPS, seed=2)
    first = _rollout(env, saved, actions)
    second = _rollout(env, saved, actions)  # the host env ended the first roll-out elsewhere
    for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(second)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.any(saved.terminated)
    assert not np.array_equal(np.asarray(saved.physics), np.asarray(first[0].physics[0]))


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_trajectory_equals_plain_gymnasium_loop(env_id):
    env = _env(env_id)
    starts = _starts(env)
    actions = _actions(env, NUM_STEPS, seed=3)
    states, rewards = _rollout(env, starts, actions)
    obs, rewards, terminated = (np.asarray(x) for x in (states.observation, rewards, states.terminated))
    for lane, key in enumerate(jax.random.split(KEY, NUM_LANES)):
        plain = gymnasium.make(env_id).unwrapped  # no time limit, as the adapter
        plain_obs, _ = plain.reset(seed=int(jax.random.bits(key, (), jnp.uint32)))
        np.testing.assert_array_equal(np.asarray(starts.observation[lane]), np.float32(plain_obs))
        for t in range(NUM_STEPS):
            action = np.asarray(actions[t, lane])
            o, r, done, _, _ = plain.step(int(action) if env.discrete else action)
            np.testing.assert_array_equal(obs[t, lane], np.float32(o), err_msg=f"lane {lane} step {t}")
            assert rewards[t, lane] == np.float32(r) and terminated[t, lane] == done
            if done:  # absorbing from here on: frozen observation, reward 0
                assert np.all(rewards[t + 1:, lane] == 0) and np.all(terminated[t + 1:, lane])
                np.testing.assert_array_equal(obs[t + 1:, lane], obs[t:-1, lane])
                break


def test_reset_depends_on_the_key_only():
    env = make("gymnasium:Pendulum-v1")
    a, b, c = (jax.jit(env.reset)(k) for k in (KEY, KEY, jax.random.key(1)))
    np.testing.assert_array_equal(a.physics, b.physics)
    assert not np.array_equal(a.physics, c.physics)


def test_make_and_spaces():
    env = make("gymnasium:Pendulum-v1")
    assert isinstance(env, GymnasiumEnvironment) and repr(env) == "from_gymnasium('Pendulum-v1')"
    assert env.observation_shape == (3,) and env.action_shape == (1,) and not env.discrete
    np.testing.assert_array_equal(env.action_high, [2.0])
    assert env.max_episode_steps == 200  # gymnasium's time limit: the reported episode
    assert hash(env) == hash(env)  # a static argument of the jitted estimators
    weakpg.LinearGaussian(env, features="rbf")  # bounded observations: an RBF grid fits
    cartpole = make("gymnasium:CartPole-v1")
    assert cartpole.num_actions == 2 and cartpole.action_shape == ()
    assert isinstance(make("CartPole-v1"), weakpg.envs.GymnaxEnvironment)
    # make_kwargs reach gymnasium.make: a stronger gravity changes the first step.
    heavy = from_gymnasium("Pendulum-v1", g=20.0)
    step = lambda e: e.step(KEY, e.reset(KEY), jnp.zeros(1))[0].observation  # noqa: E731
    assert not np.array_equal(step(env), step(heavy))


@needs_mujoco
def test_unbounded_observations_refuse_rbf_features_clearly():
    env = make("gymnasium:HalfCheetah-v5")
    assert env.action_shape == (6,) and not np.all(np.isfinite(env.observation_high))
    with pytest.raises(ValueError, match="features='rbf' needs a bounded observation box"):
        weakpg.LinearGaussian(env, features="rbf")
    weakpg.LinearGaussian(env)


@pytest.mark.parametrize("env_id", ["FrozenLake-v1", "Blackjack-v1", "LunarLander-v3"])
def test_unsupported_family_is_refused(env_id):
    with pytest.raises(ValueError, match=rf"cannot run '{env_id}' .*Supported: classic control"):
        from_gymnasium(env_id)


def test_unsupported_instance_and_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="toy_text.*has no state the adapter can read"):
        from_gymnasium(gymnasium.make("FrozenLake-v1"))
    with pytest.raises(ValueError, match="unknown gymnasium environment id 'NoSuchEnv-v0'"):
        make("gymnasium:NoSuchEnv-v0")
    with pytest.raises(ValueError, match="env_id must be one of .*'gymnasium:<ID>', got 'NoSuchEnv-v0'"):
        make("NoSuchEnv-v0")
    with pytest.raises(ValueError, match="wrapped in ClipAction"):
        from_gymnasium(gymnasium.wrappers.ClipAction(gymnasium.make("Pendulum-v1")))
    with pytest.raises(ValueError, match="apply to an id only"):
        from_gymnasium(gymnasium.make("Pendulum-v1"), g=9.81)
    with pytest.raises(ValueError, match="must be a gymnasium id or a gymnasium.Env"):
        from_gymnasium(42)


def test_missing_mujoco_says_how_to_install(monkeypatch):
    def make_without_mujoco(*args, **kwargs):
        raise gymnasium.error.DependencyNotInstalled("Could not import mujoco")

    monkeypatch.setattr(gymnasium, "make", make_without_mujoco)
    with pytest.raises(ValueError, match=r"needs MuJoCo: pip install weakpg\[mujoco\]"):
        from_gymnasium("HalfCheetah-v5")


def _difference_z(a, b):
    """Element-wise (a - b) / sqrt(se_a^2 + se_b^2) of two independent estimates."""
    return jax.tree.map(lambda ma, sa, mb, sb: np.asarray((ma - mb) / np.sqrt(sa**2 + sb**2)),
                        a.mean, a.stderr, b.mean, b.stderr)


def test_pendulum_gradient_matches_gymnax():
    # float32 engine and policy on both sides; gymnax's physics is float32, gymnasium's
    # float64. Not under x64: the engine's int32 counters meet int64 sums there. The
    # float32 drift of Pendulum is 1e-6 to 1e-4 in theta over 200 steps
    # (test_pendulum_reference.py); horizons here average 10 steps and the standard
    # errors are about 10% of the gradient, so the precision cannot show.
    adapter, gymnax = make("gymnasium:Pendulum-v1"), make("Pendulum-v1")
    params = {"weights": jnp.array([[-1.0, 0.5, -0.3]])}
    options = dict(estimator="jd", gamma=0.9)
    ours = weakpg.estimate_gradient(KEY, adapter, weakpg.LinearGaussian(adapter), params,
                                    num_samples=1000, **options)
    policy = weakpg.LinearGaussian(gymnax)
    reference = weakpg.estimate_gradient(jax.random.key(1), gymnax, policy, params,
                                         num_samples=20000, **options)
    z = _difference_z(ours, reference)["weights"]
    assert np.all(np.abs(z) <= 4), z
    # Negative control: the same comparison detects a change of one weight's sign.
    flipped = weakpg.estimate_gradient(jax.random.key(1), gymnax, policy,
                                       {"weights": jnp.array([[-1.0, 0.5, 0.3]])},
                                       num_samples=20000, **options)
    assert np.max(np.abs(_difference_z(ours, flipped)["weights"])) > 8


@needs_mujoco
@pytest.mark.parametrize("estimator", ["jd", "sf"])
def test_estimators_run_on_mujoco(estimator):
    env = make("gymnasium:InvertedPendulum-v5")
    policy = weakpg.LinearGaussian(env)
    params = {"weights": 0.1 * jnp.ones((1, 4))}
    run = lambda: weakpg.estimate_gradient(KEY, env, policy, params, estimator=estimator,  # noqa: E731
                                           gamma=0.8, num_samples=16)
    out = run()
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves((out.mean, out.stderr)))
    assert 16 <= out.env_steps <= out.lane_steps
    again = run()  # determinism: the same key gives the same numbers
    for a, b in zip(jax.tree.leaves(out), jax.tree.leaves(again)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
