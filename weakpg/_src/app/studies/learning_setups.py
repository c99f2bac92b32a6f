"""What the learning-curve studies fix: the methods compared and one ``StudySetup`` per study.

A ``StudySetup`` holds everything a study fixes besides the method and the seed: the
environment, the features and policy, the optimisation and the budget. ``PENDULUM`` is
the paper's numerical study (Section VI, Fig. 1: a linear-Gaussian policy); ``CARTPOLE``
runs the same study with discrete actions (a linear softmax policy, PG-JD through the
categorical weak derivative). ``learning_curves.reproduce`` runs them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import NamedTuple

from weakpg._src import validation
from weakpg._src.app import plotting
from weakpg._src.config import TrainConfig
from weakpg._src.envs.base import Environment
from weakpg._src.policies import LinearGaussian, Policy, Softmax


class Method(NamedTuple):
    """One curve of the study: its label, folder-name slug and gradient estimator."""

    label: str
    slug: str
    estimator: str
    baseline: str | None


METHODS = (
    Method(plotting.method_label("jd"), "pg-jd", "jd", None),
    Method(plotting.method_label("sf"), "pg-sf", "sf", None),
    Method(plotting.method_label("sf", "rollout"), "pg-sf-rollout", "sf", "rollout"),
)


@dataclasses.dataclass(frozen=True)
class StudySetup:
    """Everything a study fixes besides the method and the seed.

    The policy is linear in ``features``: a Gaussian N(theta^T phi(s), sigma^2) for
    continuous actions (the paper's parametrization), a softmax with logits theta^T phi(s)
    for discrete ones. The paper gives neither phi nor the step sizes, batch size and
    budget, so these are our choices, each study's in one place (``PENDULUM``,
    ``CARTPOLE``).

    Attributes:
      env_id: the gymnax environment, run without time limit.
      title: what the summary's heading says the study is.
      provenance: where the settings come from, one or two sentences for the summary.
      features: the feature map ("rbf", "fourier" or "identity").
      features_note: why these features, for the summary.
      gamma: discount factor of J and of the gradient estimators.
      batch_size: gradient samples per iteration.
      optimizer: "sgd" or "adam".
      lr: the step size alpha_0 of every method without an entry in ``lr_overrides``.
      lr_overrides: method label -> alpha_0; score-function gradients have another scale
        than weak-derivative ones, so one step size does not suit both.
      schedule_power: p in alpha_k = alpha_0 / (k + 1)^p (paper, eq. 17).
      max_grad_norm: clip each estimate to this global norm (None: never).
      env_steps: environment-step budget of each run.
      quick_env_steps: the budget in quick mode.
      eval_every: iterations between evaluations.
      eval_episodes: episodes per evaluation.
      episode_length: steps of the reported episode return, the task's standard time limit.
      sigma: Gaussian policies: the standard deviation (its initial value when learned).
      learn_sigma: Gaussian policies: learn log sigma along with the mean weights.
      squash: Gaussian policies: None (the environment clips the action) or "tanh".
    """

    env_id: str
    title: str
    provenance: str
    features: str
    features_note: str
    gamma: float
    batch_size: int
    optimizer: str
    lr: float
    lr_overrides: Mapping[str, float]
    schedule_power: float
    max_grad_norm: float | None
    env_steps: int
    quick_env_steps: int
    eval_every: int
    eval_episodes: int
    episode_length: int
    sigma: float | None = None
    learn_sigma: bool = False
    squash: str | None = None

    def __post_init__(self):
        for label in self.lr_overrides:
            validation.check_choice("lr_overrides key", label, [m.label for m in METHODS])
        validation.check_positive_int("env_steps", self.env_steps)
        validation.check_positive_int("quick_env_steps", self.quick_env_steps)
        validation.check_positive_int("eval_every", self.eval_every)
        validation.check_positive_int("eval_episodes", self.eval_episodes)
        validation.check_positive_int("episode_length", self.episode_length)

    def budget(self, quick: bool) -> int:
        """Environment steps per run."""
        return self.quick_env_steps if quick else self.env_steps

    def make_env(self) -> Environment:
        """The study's environment, without time limit."""
        from weakpg._src.envs.gymnax_envs import GymnaxEnvironment

        return GymnaxEnvironment(self.env_id)

    def make_policy(self, env: Environment) -> Policy:
        """Softmax over discrete actions, else ``LinearGaussian`` (each validates its fields)."""
        if env.discrete:
            return Softmax(env, features=self.features)
        return LinearGaussian(env, sigma=self.sigma, features=self.features,
                              learn_sigma=self.learn_sigma, squash=self.squash)

    def train_config(self, method: Method, seed: int, env_steps: int) -> TrainConfig:
        """The ``TrainConfig`` of one run (it validates the optimisation fields)."""
        return TrainConfig(
            estimator=method.estimator, baseline=method.baseline, gamma=self.gamma,
            batch_size=self.batch_size, optimizer=self.optimizer,
            lr=self.lr_overrides.get(method.label, self.lr), schedule_power=self.schedule_power,
            max_grad_norm=self.max_grad_norm, seed=seed, iterations=None,
            env_steps=env_steps, eval_every=self.eval_every, eval_episodes=self.eval_episodes)


PENDULUM = StudySetup(
    env_id="Pendulum-v1", title="Pendulum (paper, Section VI and Fig. 1)",
    provenance="The paper does not give its features, step sizes, batch size or budget, so these "
               "are our choices.",
    features="rbf",
    features_note="Gaussian radial basis functions on a grid over Pendulum's bounded observation "
                  "box (cos theta, sin theta, theta dot): the mean stays linear in the parameters, as "
                  "in the paper's linear parametrization, yet can bend around the upright position, "
                  "which a mean linear in the raw observation cannot",
    sigma=1.0, learn_sigma=False, squash=None, gamma=0.95, batch_size=256,
    optimizer="sgd", lr=0.1, lr_overrides={"PG-SF": 0.05, "PG-SF + rollout baseline": 0.05},
    schedule_power=0.0, max_grad_norm=100.0, env_steps=5_000_000, quick_env_steps=2_000_000,
    eval_every=5, eval_episodes=16, episode_length=200)

# gamma 0.99: at 0.95 every method soon reaches J = 1 / (1 - gamma) = 20 (the pole stays up for
# the few dozen steps J weighs), so J no longer tells them apart, nor rewards a 500-step balance.
# Clipping at norm 20 (estimates start near norm 20 to 30): without it a rare large estimate
# throws the policy onto one action for good, where the softmax's gradient vanishes.
# Step sizes (sgd, constant): per method the best mean J after 3M env steps over 8 seeds (not
# the study's) on the grid 0.1, 0.2, 0.3, 0.4, 0.8 (PG-SF: 0.01, 0.02, 0.05, 0.1).
CARTPOLE = StudySetup(
    env_id="CartPole-v1", title="CartPole (discrete actions)",
    provenance="The paper has no discrete-action experiment. This one exercises PG-JD's "
               "categorical weak derivative (for logit j: pi_j times the return after the point "
               "mass on action j minus the return after an action drawn from pi); every setting "
               "is our choice.",
    features="identity",
    features_note="the raw observation (cart position and velocity, pole angle and angular "
                  "velocity): the logits are linear in it, which suffices to balance the pole "
                  "(CartPole's velocities are unbounded, so an RBF grid does not apply)",
    gamma=0.99, batch_size=256, optimizer="sgd", lr=0.2,
    lr_overrides={"PG-SF": 0.02, "PG-SF + rollout baseline": 0.4}, schedule_power=0.0,
    max_grad_norm=20.0, env_steps=10_000_000, quick_env_steps=3_000_000, eval_every=2,
    eval_episodes=16, episode_length=500)
