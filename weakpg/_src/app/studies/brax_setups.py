"""What the Brax learning studies fix: an MLP policy, the weakpg methods, Brax's PPO settings.

A ``BraxStudy`` holds everything a study on one Brax task fixes besides the method and
the seed: the environment, the network, the optimisation, the budget, the evaluation
and Brax's own PPO settings. ``REACHER`` and ``INVERTED_DOUBLE_PENDULUM`` are the two
studies of ``weakpg reproduce reacher`` and ``weakpg reproduce double-pendulum``;
``brax_curves.reproduce`` runs them.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

from weakpg._src import validation
from weakpg._src.config import TrainConfig
from weakpg._src.envs.base import Environment
from weakpg._src.policies import Policy


class Method(NamedTuple):
    """One weakpg curve of a study: label, folder slug, estimator, baseline, coordinates k."""

    label: str
    slug: str
    estimator: str
    baseline: str | None
    coordinates: int | None


PPO_LABEL, PPO_SLUG = "Brax PPO", "ppo"


@dataclasses.dataclass(frozen=True)
class PPOSettings:
    """Brax's published PPO settings for a task, and the factor this study scales them by.

    The fields but ``scale`` are the keywords of ``brax.training.agents.ppo.train`` in
    Brax's training notebook for the task (its ``num_timesteps`` is ``published_env_steps``).
    One PPO update there consumes batch_size * num_minibatches * unroll_length *
    action_repeat env steps (1.6M for reacher), more than this study's whole budget on a
    2-core CPU allows a few dozen of; so ``num_envs`` and ``batch_size`` are divided by
    ``scale`` (their ratio, and every other setting, kept).
    """

    published_env_steps: int
    reward_scaling: float
    action_repeat: int
    unroll_length: int
    num_minibatches: int
    num_updates_per_batch: int
    discounting: float
    learning_rate: float
    entropy_cost: float
    num_envs: int
    batch_size: int
    scale: int

    def __post_init__(self):
        validation.check_positive_int("scale", self.scale)
        for name in ("num_envs", "batch_size"):
            if getattr(self, name) % self.scale:
                raise ValueError(f"PPO {name} {getattr(self, name)} must be divisible by scale {self.scale}")

    def train_kwargs(self) -> dict[str, Any]:
        """The keywords of ``ppo.train`` this study passes: published, then scaled."""
        kwargs = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                  if f.name not in ("published_env_steps", "scale")}
        kwargs["num_envs"] //= self.scale
        kwargs["batch_size"] //= self.scale
        return kwargs

    def env_steps_per_update(self) -> int:
        """Env steps one PPO training step consumes, at this study's scale."""
        k = self.train_kwargs()
        return k["batch_size"] * k["num_minibatches"] * k["unroll_length"] * k["action_repeat"]

    def num_evals(self, env_steps: int, evaluations: int) -> int:
        """The ``num_evals`` of ``ppo.train`` that spends least beyond ``env_steps``.

        Brax runs num_evals - 1 epochs of ceil(updates / (num_evals - 1)) updates each, so
        with num_evals = ``evaluations`` it may spend up to num_evals - 2 updates more than
        ``env_steps`` needs (30% more on reacher's budget). This picks num_evals - 1 in
        [evaluations - 1, 2 (evaluations - 1)] with the fewest updates in all (the fewest
        evaluations among ties), so PPO's budget matches weakpg's to within one update.
        """
        low = max(1, evaluations - 1)
        epochs = min(range(low, 2 * low + 1), key=lambda n: (self._updates_run(env_steps, n), n))
        return epochs + 1

    def spent_env_steps(self, env_steps: int, evaluations: int) -> int:
        """The env steps ``ppo.train`` spends for ``env_steps`` with ``num_evals(...)``."""
        epochs = self.num_evals(env_steps, evaluations) - 1
        return self._updates_run(env_steps, epochs) * self.env_steps_per_update()

    def _updates_run(self, env_steps: int, epochs: int) -> int:
        """Updates ``ppo.train`` runs for ``env_steps`` in ``epochs`` epochs: ceil(needed / epochs) each."""
        needed = -(-env_steps // self.env_steps_per_update())
        return epochs * -(-needed // epochs)


@dataclasses.dataclass(frozen=True)
class BraxStudy:
    """Everything a Brax learning study fixes besides the method and the seed.

    The weakpg policy is N(mlp(obs), sigma^2 I) (``from_network`` of a flax.linen MLP with
    tanh hidden layers and a zero-initialised output layer, so each seed's initial mean
    action is 0), trained by PG-JD and PG-SF from the same settings.

    Attributes:
      name: the Brax environment (``weakpg.envs.make("brax:<name>")``).
      title: what the summary's heading calls the task.
      backend: Brax's physics backend.
      hidden: the MLP's hidden-layer widths.
      sigma: the policy's standard deviation (fixed).
      gamma: discount factor of J and of the gradient estimators.
      batch_size: gradient samples per iteration.
      optimizer, lr, max_grad_norm: the optimisation (``TrainConfig``'s fields).
      coordinates: the k of the random-coordinate PG-JD curve (None: no such curve, as
        when the action has one dimension and k = d is the only choice).
      tuning: how the settings were chosen, for the summary.
      env_steps, quick_env_steps: the env-step budget of each run (full, quick).
      evaluations: evaluations per run, evenly spaced in env steps (PPO: ``num_evals``).
      quick_evaluations: the same in quick mode.
      eval_episodes: episodes per evaluation, the 1000-step return of the mean action.
      ppo: Brax's PPO settings for the task.
    """

    name: str
    title: str
    backend: str
    hidden: tuple[int, ...]
    sigma: float
    gamma: float
    batch_size: int
    optimizer: str
    lr: float
    max_grad_norm: float | None
    coordinates: int | None
    tuning: str
    env_steps: int
    quick_env_steps: int
    evaluations: int
    quick_evaluations: int
    eval_episodes: int
    ppo: PPOSettings

    def __post_init__(self):
        for name in ("env_steps", "quick_env_steps", "evaluations", "quick_evaluations", "eval_episodes"):
            validation.check_positive_int(name, getattr(self, name))
        if not self.hidden or any(int(w) != w or w < 1 for w in self.hidden):
            raise ValueError(f"hidden must be positive layer widths, got {self.hidden!r}")
        for method in self.methods():  # TrainConfig checks the rest
            self.train_config(method, 0, quick=False)

    def budget(self, quick: bool) -> int:
        """Environment steps per run."""
        return self.quick_env_steps if quick else self.env_steps

    def methods(self) -> tuple[Method, ...]:
        """The weakpg curves: PG-JD on all coordinates, on ``coordinates``, PG-SF + roll-out."""
        jd = [Method("PG-JD", "pg-jd", "jd", None, None)]
        if self.coordinates is not None:
            jd.append(Method(f"PG-JD, k = {self.coordinates}", f"pg-jd-k{self.coordinates}", "jd",
                             None, self.coordinates))
        return (*jd, Method("PG-SF + rollout baseline", "pg-sf-rollout", "sf", "rollout", None))

    def steps_per_sample(self, method: Method, action_dim: int) -> float:
        """Expected env steps of one gradient sample: the occupancy roll-out and the Q roll-outs.

        Each roll-out lasts Geom(1 - gamma) steps, mean 1 / (1 - gamma) (the occupancy one
        gamma / (1 - gamma)); PG-JD runs 2k Q roll-outs (k = d without ``coordinates``),
        PG-SF with the roll-out baseline two (the action's and the baseline's).
        """
        branches = 2 * (method.coordinates or action_dim) if method.estimator == "jd" else 2
        return (self.gamma + branches) / (1 - self.gamma)

    def eval_every(self, method: Method, action_dim: int, quick: bool) -> int:
        """Iterations between evaluations, so that a run evaluates about ``evaluations`` times."""
        evaluations = self.quick_evaluations if quick else self.evaluations
        per_iteration = self.batch_size * self.steps_per_sample(method, action_dim)
        return max(1, round(self.budget(quick) / (evaluations * per_iteration)))

    def train_config(self, method: Method, seed: int, *, quick: bool, action_dim: int = 1) -> TrainConfig:
        """The ``TrainConfig`` of one weakpg run (it validates the optimisation fields)."""
        config = TrainConfig(
            estimator=method.estimator, baseline=method.baseline, coordinates=method.coordinates,
            gamma=self.gamma, batch_size=self.batch_size, optimizer=self.optimizer, lr=self.lr,
            max_grad_norm=self.max_grad_norm, seed=seed, iterations=None,
            env_steps=self.budget(quick), eval_episodes=self.eval_episodes)
        return dataclasses.replace(config, eval_every=self.eval_every(method, action_dim, quick))

    @property
    def env_id(self) -> str:
        """The id ``weakpg.envs.make`` takes (with ``backend=``)."""
        return f"brax:{self.name}"

    def make_env(self) -> Environment:
        """The study's Brax environment on its backend."""
        from weakpg._src.envs.brax_envs import BraxEnvironment

        return BraxEnvironment(self.name, backend=self.backend)

    def make_policy(self, env: Environment) -> Policy:
        """``from_network`` of the flax MLP, each seed's network drawn from its own key."""
        import flax.linen as nn  # flax comes with Brax (the weakpg[brax] extra)
        import jax.numpy as jnp

        from weakpg._src.network_policies import from_network

        hidden, (action_dim,) = self.hidden, env.action_shape

        class MLP(nn.Module):
            @nn.compact
            def __call__(self, obs):
                x = obs
                for width in hidden:
                    x = nn.tanh(nn.Dense(width)(x))
                return nn.Dense(action_dim, kernel_init=nn.initializers.zeros)(x)

        mlp = MLP()
        obs = jnp.zeros(env.observation_shape)
        return from_network(env, mlp.apply, init=lambda key: mlp.init(key, obs), sigma=self.sigma)


# Brax's training notebook (brax/training/learner and the colab): reacher's PPO settings.
_REACHER_PPO = PPOSettings(published_env_steps=50_000_000, reward_scaling=5, action_repeat=4,
                           unroll_length=50, num_minibatches=32, num_updates_per_batch=8,
                           discounting=0.95, learning_rate=3e-4, entropy_cost=1e-3, num_envs=2048,
                           batch_size=256, scale=32)
_DOUBLE_PENDULUM_PPO = PPOSettings(published_env_steps=20_000_000, reward_scaling=10, action_repeat=1,
                                   unroll_length=5, num_minibatches=32, num_updates_per_batch=4,
                                   discounting=0.97, learning_rate=3e-4, entropy_cost=1e-2,
                                   num_envs=2048, batch_size=1024, scale=16)

REACHER = BraxStudy(
    name="reacher", title="Brax reacher (2 joints)", backend="spring", hidden=(64, 64), sigma=0.1,
    gamma=0.95, batch_size=128, optimizer="adam", lr=0.01, max_grad_norm=None, coordinates=1,
    tuning="PG-JD's sigma, gamma and step size are the best final return after 3M env steps of "
           "one run each (seed 0, one fixed initial network) of sigma 0.1 or 0.3, gamma 0.95, 0.98 "
           "or 0.99 and adam 0.01 or 0.03; PG-SF uses the same settings",
    env_steps=3_000_000, quick_env_steps=100_000, evaluations=20, quick_evaluations=3,
    eval_episodes=16, ppo=_REACHER_PPO)

INVERTED_DOUBLE_PENDULUM = BraxStudy(
    name="inverted_double_pendulum", title="Brax inverted_double_pendulum (1 actuator)",
    backend="spring", hidden=(64, 64), sigma=0.3, gamma=0.97, batch_size=128, optimizer="adam",
    lr=0.01, max_grad_norm=None, coordinates=None,
    tuning="PG-JD's settings are the best final return after 2M env steps of one run each (seed "
           "0, one fixed initial network) of gamma 0.97 or 0.99 and sigma 0.1 or 0.3 at adam 0.01; "
           "PG-SF uses the same settings. With one action dimension, k = d = 1 is the only choice of "
           "coordinates",
    env_steps=2_000_000, quick_env_steps=50_000, evaluations=20, quick_evaluations=3,
    eval_episodes=16, ppo=_DOUBLE_PENDULUM_PPO)
