"""Learning-curve studies: PG-JD against PG-SF, from several seeds, on one environment.

``reproduce(setup, ...)`` trains the policy a ``StudySetup`` describes with each method
from several seeds, evaluates it along the way with common random numbers
(``train.make_evaluator``) and writes the curves, two figures and a summary table with
standard errors across seeds. ``PENDULUM`` is the paper's numerical study (Section VI,
Fig. 1: a linear-Gaussian policy); ``CARTPOLE`` runs the same study with discrete actions
(a linear softmax policy, PG-JD through the categorical weak derivative).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from weakpg._src import runs, validation
from weakpg._src.app import plotting
from weakpg._src.config import TrainConfig
from weakpg._src.driver import train_seeds
from weakpg._src.envs.base import Environment
from weakpg._src.envs.gymnax_envs import GymnaxEnvironment
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
CURVE_FIELDS = ("method", "seed", "iteration", "env_steps", "wall_seconds", "discounted_return",
                "episode_return")
OUTPUT_FILES = ("runs", "curves.csv", "curves.png", "curves_discounted.png", "summary.md")


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
ENV_ID = PENDULUM.env_id  # bench/learning.py reads it

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
STUDIES = {"pendulum": PENDULUM, "cartpole": CARTPOLE}


def _mean_stderr(values: list[float]) -> tuple[float, float]:
    """Mean and standard error across seeds (nan for a single seed)."""
    x = np.asarray(values, np.float64)
    stderr = float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else math.nan
    return float(x.mean()), stderr


def _summarise(finals: dict[str, list[dict]]) -> dict[str, dict[str, float]]:
    table = {}
    for label, rows in finals.items():
        entry = {"seeds": len(rows)}
        for field in ("episode_return", "discounted_return"):
            entry[field], entry[f"{field}_stderr"] = _mean_stderr([r[field] for r in rows])
        entry["env_steps"] = float(np.mean([r["env_steps"] for r in rows]))
        entry["wall_seconds"] = float(np.mean([r["wall_seconds"] for r in rows]))
        table[label] = entry
    return table


def _comparison(table: dict[str, dict[str, float]], field: str) -> dict[str, Any]:
    """The best method on ``field``, the runner-up, and the gap in standard errors."""
    best, second = sorted(table, key=lambda label: table[label][field], reverse=True)[:2]
    gap = table[best][field] - table[second][field]
    stderr = math.hypot(table[best][f"{field}_stderr"], table[second][f"{field}_stderr"])
    if math.isnan(stderr) or stderr > 0:
        z = gap / stderr  # nan: a single seed has no standard error
    else:  # every seed of both methods ended at one value (CartPole's ceiling of 500, say)
        z = math.inf if gap > 0 else 0.0
    return {"best": best, "runner_up": second, "gap": gap, "gap_in_stderr": z,
            "significant": bool(z > 2)}


def _cell(mean: float, stderr: float) -> str:
    return f"{mean:.1f}" if math.isnan(stderr) else f"{mean:.1f} ± {stderr:.1f}"


def _sentence(c: dict[str, Any], what: str, table: dict[str, dict[str, float]], field: str) -> str:
    if c["gap"] == 0:
        return (f"{c['best']} and {c['runner_up']} ended level in {what} "
                f"({table[c['best']][field]:.1f}).")
    head = (f"{c['best']} ended highest in {what} ({table[c['best']][field]:.1f} against "
            f"{table[c['runner_up']][field]:.1f} for the runner-up, {c['runner_up']})")
    if math.isnan(c["gap_in_stderr"]):
        return f"{head}; with one seed there is no standard error, so no claim that the gap is real."
    if math.isinf(c["gap_in_stderr"]):
        return f"{head}; every seed of each ended at one value, so the gap of {c['gap']:.1f} is exact."
    verdict = "exceeds" if c["significant"] else "does not exceed"
    return (f"{head}; the gap of {c['gap']:.1f} is {c['gap_in_stderr']:.1f} standard errors, so it "
            f"{verdict} 2 standard errors.")


def _greedy_action(policy: Policy) -> str:
    """What evaluation's episode return follows: the zero-noise action of ``policy.act``."""
    return "most likely action" if isinstance(policy, Softmax) else "mean action"


def _policy_sentence(setup: StudySetup, policy: Policy) -> str:
    if isinstance(policy, Softmax):
        return f"Policy: softmax over the {policy.num_actions} actions."
    squash = "tanh-squashed actions" if setup.squash == "tanh" else "actions clipped by the environment"
    return f"Policy: sigma {setup.sigma:g} ({'learned' if setup.learn_sigma else 'fixed'}), {squash}."


def _summary_markdown(setup: StudySetup, policy: Policy, quick: bool, seeds: int,
                      table: dict[str, dict[str, float]], comparisons: dict[str, dict]) -> str:
    budget = setup.budget(quick)
    schedule = f" / (k + 1)^{setup.schedule_power:g}" if setup.schedule_power else ", constant"
    lrs = ", ".join(f"{m.label} {setup.lr_overrides.get(m.label, setup.lr):g}" for m in METHODS)
    kind = "linear softmax" if isinstance(policy, Softmax) else "linear-Gaussian"
    greedy = _greedy_action(policy)
    lines = [
        f"# PG-JD against PG-SF on {setup.title}",
        "",
        f"Each method trained a {kind} policy on {setup.env_id} (no time limit: the paper's "
        f"infinite-horizon discounted problem) from {seeds} seed(s), "
        f"{'quick mode, ' if quick else ''}{budget:,} environment steps per run, phantom roll-outs "
        "included. Evaluations use one fixed set of start states and noise for every method and "
        "iteration (common random numbers): the discounted return J of the stochastic policy (the "
        f"quantity of the paper's Fig. 1) and the undiscounted {setup.episode_length}-step return of "
        f"the {greedy} (what other libraries report for {setup.env_id}).",
        "",
        f"{setup.provenance} Features: {setup.features!r}, {policy.features.dim} of them, "
        f"{setup.features_note}. {_policy_sentence(setup, policy)} "
        f"Optimisation: gamma {setup.gamma:g}, batch {setup.batch_size}, {setup.optimizer}, "
        f"step size alpha_0 ({lrs}){schedule}, "
        f"gradient clipping {setup.max_grad_norm if setup.max_grad_norm is not None else 'none'}; "
        f"evaluation every {setup.eval_every} iterations on {setup.eval_episodes} episodes.",
        "",
        f"Final evaluation, mean ± standard error across {seeds} seed(s):",
        "",
        f"| Method | Episode return ({greedy}, {setup.episode_length} steps) | Discounted return J | "
        "Env steps | Wall seconds |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, e in table.items():
        lines.append(f"| {label} | {_cell(e['episode_return'], e['episode_return_stderr'])} | "
                     f"{_cell(e['discounted_return'], e['discounted_return_stderr'])} | "
                     f"{e['env_steps']:,.0f} | {e['wall_seconds']:.1f} |")
    lines += [
        "",
        _sentence(comparisons["discounted_return"], "discounted return J", table, "discounted_return"),
        _sentence(comparisons["episode_return"], "episode return", table, "episode_return"),
        "",
        "Curves: `curves_discounted.png` (J, as in Fig. 1) and `curves.png` (episode return), the "
        "mean across seeds with a 95% band; the numbers are in `curves.csv`, each run in `runs/`.",
        "",
    ]
    return "\n".join(lines)


def reproduce(setup: StudySetup, out_dir: str | Path, *, quick: bool, seeds: int,
              progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the study ``setup`` describes and write its curves, figures and summary.

    Trains every method of ``METHODS`` from seeds 0..seeds-1, each run in
    ``out_dir/runs/<method>__seed<seed>/``, then writes ``curves.csv``, ``curves.png``
    (episode return), ``curves_discounted.png`` (J, the paper's Fig. 1) and ``summary.md``.
    Everything is written into a temporary folder beside ``out_dir`` and renamed into
    place at the end, so an error or an interrupt leaves ``out_dir`` as it was.
    ``progress`` receives one line per finished run.

    Returns {"methods": label -> final-evaluation statistics, "comparisons": field ->
    best method, runner-up and gap in standard errors, "setup", "quick", "seeds",
    "env_steps", "out_dir"}.
    """
    seeds = validation.check_positive_int("seeds", seeds)
    out_dir = Path(out_dir)
    runs.check_output_folder(out_dir, OUTPUT_FILES)
    setup.train_config(METHODS[0], 0, setup.budget(quick))  # checks the settings before any work
    env = GymnaxEnvironment(setup.env_id)
    policy = setup.make_policy(env)
    budget = setup.budget(quick)
    greedy = f"return of the {_greedy_action(policy)} ({setup.episode_length} steps)"

    with runs.staged_folder(out_dir, OUTPUT_FILES) as staging:
        curves, finals, curve_rows = {}, {}, []
        for method in METHODS:  # the seeds of a method: one vmapped program, one compilation
            config = setup.train_config(method, 0, budget)
            run_dirs = [staging / "runs" / f"{method.slug}__seed{seed}" for seed in range(seeds)]
            for seed, run_dir in enumerate(run_dirs):
                run_dir.mkdir(parents=True)
                runs.write_json(run_dir / runs.CONFIG_FILE, {
                    "env_id": setup.env_id, "method": method.label, "quick": quick, "env_steps": budget,
                    **dataclasses.asdict(dataclasses.replace(config, seed=seed)),
                    "setup": dataclasses.asdict(setup)})
            _, seed_rows = train_seeds(env, policy, config, seeds=range(seeds), run_dirs=run_dirs,
                                       episode_length=setup.episode_length)
            for seed, rows in enumerate(seed_rows):
                curves.setdefault(method.label, []).append(rows)
                finals.setdefault(method.label, []).append(rows[-1])
                curve_rows += [{"method": method.label, "seed": seed,
                                **{k: row[k] for k in CURVE_FIELDS[2:]}} for row in rows]
                if progress is not None:
                    last = rows[-1]
                    progress(f"{method.label} seed {seed}: episode return {last['episode_return']:.1f}, "
                             f"J {last['discounted_return']:.1f} after {last['env_steps']:,} env steps "
                             f"({last['wall_seconds']:.0f} s)")

        table = _summarise(finals)
        comparisons = {field: _comparison(table, field) for field in ("discounted_return", "episode_return")}
        runs.write_csv(staging / "curves.csv", curve_rows)
        plotting.plot_curves(curves, staging / "curves.png", y="episode_return",
                             title=f"{setup.env_id}: {greedy}")
        plotting.plot_curves(curves, staging / "curves_discounted.png", y="discounted_return",
                             title=f"{setup.env_id}: discounted return J (gamma {setup.gamma:g})")
        runs.atomic_write(staging / "summary.md",
                          _summary_markdown(setup, policy, quick, seeds, table, comparisons).encode())
    return {"methods": table, "comparisons": comparisons, "setup": dataclasses.asdict(setup),
            "quick": quick, "seeds": seeds, "env_steps": budget, "out_dir": str(out_dir)}
