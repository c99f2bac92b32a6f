"""The methods of ``bench.peers``: each trains one seed, evaluating into a ``Trace``.

Every ``train_*`` function builds its method from its published settings (``SETTINGS``,
sources in ``bench/peers.py``'s docstring), trains ``budget`` env steps and calls
``trace.evaluate(act, env_steps)`` at step 0, at least every ``eval_every`` env steps (at
the method's next update boundary) and at the end, where ``act`` is the method's
deterministic action on a batch of observations.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any, NamedTuple

import numpy as np

from bench.peers_eval import ENV_ID, Trace


class Setting(NamedTuple):
    """A method's standard budget, its --quick budget and its evaluation spacing (env steps)."""

    budget: int
    quick_budget: int
    eval_every: int


# rl-baselines3-zoo, hyperparams/ppo.yml and sac.yml, Pendulum-v1 (n_timesteps omitted: the budget).
SB3_PPO = {"n_envs": 4, "n_steps": 1024, "gae_lambda": 0.95, "gamma": 0.9, "n_epochs": 10, "ent_coef": 0.0,
           "learning_rate": 1e-3, "clip_range": 0.2, "use_sde": True, "sde_sample_freq": 4}
SB3_SAC = {"learning_rate": 1e-3}
# rejax, configs/gymnax/pendulum.yaml (total_timesteps omitted: the budget).
REJAX = {
    "ppo": {"env": ENV_ID, "agent_kwargs": {"activation": "swish"}, "num_envs": 100, "num_steps": 100,
            "num_epochs": 10, "num_minibatches": 10, "learning_rate": 0.001, "max_grad_norm": 10,
            "eval_freq": 2000, "gamma": 0.995, "gae_lambda": 0.95, "clip_eps": 0.2, "ent_coef": 0.0,
            "vf_coef": 0.5, "normalize_observations": True},
    "sac": {"env": ENV_ID, "agent_kwargs": {"activation": "swish"}, "num_envs": 1, "buffer_size": 10_000,
            "fill_buffer": 256, "batch_size": 256, "learning_rate": 0.01, "num_epochs": 1, "eval_freq": 100,
            "gamma": 0.99, "polyak": 0.98, "target_entropy_ratio": None, "normalize_observations": True},
}
# rejax's train runs ceil(total_timesteps / eval_freq) evaluation intervals of
# ceil(eval_freq / steps per iteration) iterations: with 100 x 100 steps per PPO iteration
# and eval_freq 2000, its 150_000 total_timesteps are 75 intervals of one 10_000-step
# iteration, 750_000 env steps. The budget here is what rejax's own train runs.
SETTINGS = {
    "sb3-ppo": Setting(100_000, 8_192, 4_096),
    "sb3-sac": Setting(20_000, 400, 500),
    "rejax-ppo": Setting(750_000, 20_000, 10_000),
    "rejax-sac": Setting(10_000, 400, 500),
    "weakpg-pg-jd": Setting(5_000_000, 100_000, 1),
    "weakpg-pg-sf-rollout": Setting(5_000_000, 100_000, 1),
}


def train_sb3(trace: Trace, algo: str, seed: int, budget: int, eval_every: int, torch_threads: int) -> None:
    """Stable-Baselines3 PPO or SAC with the zoo's settings, torch on ``torch_threads`` threads."""
    import stable_baselines3 as sb3
    import torch
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    torch.set_num_threads(torch_threads)

    class Evaluate(BaseCallback):
        """Evaluates when a rollout starts: the policy after the latest update."""

        def __init__(self):
            super().__init__()
            self.next = 0

        def _on_rollout_start(self) -> None:
            if self.num_timesteps >= self.next:
                trace.evaluate(act, self.num_timesteps)
                self.next = self.num_timesteps + eval_every

        def _on_step(self) -> bool:
            return True

    if algo == "ppo":
        settings = dict(SB3_PPO)
        env = make_vec_env(ENV_ID, n_envs=settings.pop("n_envs"), seed=seed)
        model = sb3.PPO("MlpPolicy", env, seed=seed, device="cpu", **settings)
    else:
        model = sb3.SAC("MlpPolicy", ENV_ID, seed=seed, device="cpu", **SB3_SAC)

    def act(obs: np.ndarray) -> np.ndarray:
        return model.predict(obs, deterministic=True)[0]

    model.learn(total_timesteps=budget, callback=Evaluate())
    trace.evaluate(act, model.num_timesteps)


class _DoneStep:
    """A gymnax environment whose step returns (obs, state, reward, done, info).

    gymnax 1.0 steps return terminated and truncated apart; rejax 0.1.3 unpacks the earlier
    five values, where done = terminated or truncated (what this wrapper returns).
    """

    def __init__(self, env: Any):
        self.env = env

    def __getattr__(self, name: str) -> Any:
        if name == "env":  # not set yet: a copy being made
            raise AttributeError(name)
        return getattr(self.env, name)

    def step(self, key: Any, state: Any, action: Any, params: Any = None) -> tuple[Any, ...]:
        obs, state, reward, terminated, truncated, info = self.env.step(key, state, action, params)
        return obs, state, reward, terminated | truncated, info

    def reset(self, key: Any, params: Any = None) -> tuple[Any, Any]:
        return self.env.reset(key, params)


def _rejax_mean(algo: Any, squashed: bool, ts: Any, obs: Any) -> Any:
    """The deterministic action of a rejax policy: the Gaussian's mean (SAC: squashed)."""
    import jax.numpy as jnp

    if algo.normalize_observations:
        obs = algo.normalize_obs(ts.obs_rms_state, obs)
    mean = algo.actor.apply(ts.actor_ts.params, obs, method=lambda m, o: m._action_dist(o).mean())
    return algo.actor.action_loc + jnp.tanh(mean) * algo.actor.action_scale if squashed else mean


def train_rejax(trace: Trace, name: str, seed: int, budget: int, eval_every: int) -> None:
    """rejax PPO or SAC with its gymnax settings, trained in segments of one eval_freq.

    gymnax's Pendulum-v1 is wrapped by ``_DoneStep`` for rejax 0.1.3. rejax's
    ``train(train_state=...)`` continues from a state, so one segment is the
    algorithm with ``total_timesteps = eval_freq``: the same interval its own train scans
    over, compiled once. Its in-loop evaluation (128 gymnax episodes) is replaced by a
    constant, as the evaluations here are off the clock.
    """
    import gymnax
    import jax
    import jax.numpy as jnp
    import rejax

    env, env_params = gymnax.make(ENV_ID)
    config = {**REJAX[name], "env": _DoneStep(env), "env_params": env_params}
    cls = rejax.get_algo(name)
    algo = cls.create(**config, total_timesteps=config["eval_freq"], skip_initial_evaluation=True)
    algo = algo.replace(eval_callback=lambda algo, ts, rng: jnp.zeros(()))
    ts = jax.jit(algo.init_state)(jax.random.key(seed))
    segment = jax.jit(lambda ts: algo.train(train_state=ts)[0])
    # gymnax's reset gives a weakly typed env_state.last_u, a segment a strong one: without
    # the segment's own types the second segment would compile again.
    ts = jax.tree.map(lambda x, s: x if getattr(x, "weak_type", s.weak_type) == s.weak_type
                      else jnp.asarray(x, s.dtype), ts, jax.eval_shape(segment, ts))
    mean = jax.jit(functools.partial(_rejax_mean, algo, name == "sac"))
    steps, last_eval = 0, 0
    trace.evaluate(functools.partial(mean, ts), 0)
    while steps < budget:
        ts = segment(ts)
        steps = int(ts.global_step)
        if steps - last_eval >= eval_every or steps >= budget:
            trace.evaluate(functools.partial(mean, ts), steps)
            last_eval = steps


def train_weakpg(trace: Trace, slug: str, seed: int, budget: int, eval_every: int) -> None:
    """weakpg with the reproduction's Pendulum setup (``PENDULUM``), one method of ``METHODS``.

    The compiled unit is ``make_train_chunk`` over one evaluation interval (5 iterations),
    with weakpg's own in-loop evaluation left out (``evaluate`` returns nothing), jitted
    with the driver's CPU compiler options as ``weakpg.train.train`` does.
    """
    import jax

    import weakpg
    from weakpg._src.app.studies.learning_setups import METHODS, PENDULUM
    from weakpg._src.compiler_options import CPU_COMPILER_OPTIONS, for_backend

    (method,) = [m for m in METHODS if m.slug == slug]
    env = weakpg.envs.make(PENDULUM.env_id)
    policy = PENDULUM.make_policy(env)
    config = PENDULUM.train_config(method, seed, budget)
    options = for_backend(CPU_COMPILER_OPTIONS)
    chunk = jax.jit(weakpg.train.make_train_chunk(env, policy, config, num_intervals=1,
                                                  evaluate=lambda params: {}), compiler_options=options)
    mean = jax.jit(lambda params, obs: policy.env_action(jax.vmap(
        lambda o: policy.dist_params(params, o)["mean"])(obs)))
    state, h = weakpg.train.init_state(policy, config), weakpg.train.hyper(config)
    steps, last_eval = 0, 0
    trace.evaluate(functools.partial(mean, state.params), 0)
    while steps < budget:
        state, rows = chunk(state, h)
        fault = int(rows["fault"][-1])
        if fault:
            raise RuntimeError(f"{slug} seed {seed}: {weakpg.train.FAULTS[fault]} became non-finite")
        steps = int(state.env_steps)
        if steps - last_eval >= eval_every or steps >= budget:
            trace.evaluate(functools.partial(mean, state.params), steps)
            last_eval = steps
    _check_protocol(trace, weakpg.Agent(policy, state.params, env))


def _check_protocol(trace: Trace, agent: Any) -> None:
    """The final figure equals ``weakpg evaluate``'s on the same episodes (or raise).

    ``common_episode_return`` steps the 100 episodes in lock step for speed; this checks,
    once per weakpg run, that it is ``weakpg evaluate``'s protocol to the last bit.
    """
    from weakpg._src.app.evaluate_command import evaluate

    final = trace.points[-1]["mean"]
    ours = evaluate(agent, f"gymnasium:{ENV_ID}", episodes=trace.episodes)["mean"]
    if ours != final:
        raise RuntimeError(f"common_episode_return gave {final}, weakpg evaluate {ours} on the same episodes")


# Imported before the clock starts. weakpg loads gymnax's Pendulum when the environment is
# made, on the clock; rejax's gymnax import (all of gymnax) is off it.
IMPORTS = {"sb3": ("torch", "stable_baselines3"), "rejax": ("jax", "gymnax", "rejax"),
           "weakpg": ("jax", "weakpg", "weakpg.train", "weakpg.envs")}


def run(method: str, seed: int, quick: bool, torch_threads: int, episodes: int = 100) -> dict[str, Any]:
    """Train ``method`` from ``seed`` at its standard (or quick) budget; the trace's summary.

    The clock starts after the method's libraries (``IMPORTS``) are imported.
    """
    setting = SETTINGS[method]
    budget = setting.quick_budget if quick else setting.budget
    family, name = method.split("-", 1)
    for module in IMPORTS[family]:
        importlib.import_module(module)
    trace = Trace(episodes)
    if family == "sb3":
        train_sb3(trace, name, seed, budget, setting.eval_every, torch_threads)
    else:
        {"rejax": train_rejax, "weakpg": train_weakpg}[family](trace, name, seed, budget, setting.eval_every)
    return {"method": method, "seed": seed, "budget": budget, "train_seconds": trace.seconds(),
            **trace.summary()}
