"""The paper's numerical study (Section VI, Fig. 1): PG-JD against PG-SF on Pendulum.

``reproduce_pendulum`` trains a linear-Gaussian policy with each method from several
seeds, evaluates it along the way with common random numbers (``train.make_evaluator``)
and writes the curves, two figures and a summary table with standard errors across seeds.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from weakpg._src import plotting, runs, validation
from weakpg._src.envs.gymnax_envs import GymnaxEnvironment
from weakpg._src.policies import LinearGaussian
from weakpg._src.train import TrainConfig, train

ENV_ID = "Pendulum-v1"


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
OUTPUT_FILES = ("curves.csv", "curves.png", "curves_discounted.png", "summary.md")

_FEATURE_NOTES = {
    "rbf": ("Gaussian radial basis functions on a grid over Pendulum's bounded observation box "
            "(cos theta, sin theta, theta dot): the mean stays linear in the parameters, as in the "
            "paper's linear parametrization, yet can bend around the upright position, which a "
            "mean linear in the raw observation cannot"),
    "fourier": "random Fourier features of the observation, linear in the parameters",
    "identity": "the raw observation (cos theta, sin theta, theta dot): the mean is linear in it",
}


@dataclasses.dataclass(frozen=True)
class PendulumSetup:
    """Everything the Pendulum study fixes besides the method and the seed.

    Section VI of the paper states the Gaussian policy N(theta^T phi(s), sigma^2) but not
    its feature map phi, sigma, the step sizes, the batch size or the budget, so all of
    these are our choices; ``PENDULUM`` holds them, in this one place.

    Attributes:
      features: the feature map of ``LinearGaussian`` ("rbf", "fourier" or "identity").
      sigma: the policy's standard deviation (its initial value when learned).
      learn_sigma: learn log sigma along with the mean weights.
      squash: None (Pendulum clips the action to [-2, 2]) or "tanh".
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
    """

    features: str
    sigma: float
    learn_sigma: bool
    squash: str | None
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

    def __post_init__(self):
        for label in self.lr_overrides:
            validation.check_choice("lr_overrides key", label, [m.label for m in METHODS])
        validation.check_positive_int("env_steps", self.env_steps)
        validation.check_positive_int("quick_env_steps", self.quick_env_steps)
        validation.check_positive_int("eval_every", self.eval_every)
        validation.check_positive_int("eval_episodes", self.eval_episodes)

    def budget(self, quick: bool) -> int:
        """Environment steps per run."""
        return self.quick_env_steps if quick else self.env_steps

    def train_config(self, method: Method, seed: int) -> TrainConfig:
        """The ``TrainConfig`` of one run (it validates the optimisation fields)."""
        return TrainConfig(
            estimator=method.estimator, baseline=method.baseline, gamma=self.gamma,
            batch_size=self.batch_size, optimizer=self.optimizer,
            lr=self.lr_overrides.get(method.label, self.lr), schedule_power=self.schedule_power,
            max_grad_norm=self.max_grad_norm, seed=seed)


PENDULUM = PendulumSetup(
    features="rbf", sigma=1.0, learn_sigma=False, squash=None, gamma=0.95, batch_size=256,
    optimizer="sgd", lr=0.1, lr_overrides={"PG-SF": 0.05, "PG-SF + rollout baseline": 0.05},
    schedule_power=0.0, max_grad_norm=100.0, env_steps=5_000_000, quick_env_steps=2_000_000,
    eval_every=5, eval_episodes=16)


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
    z = gap / stderr if stderr > 0 else math.nan  # nan: a single seed has no standard error
    return {"best": best, "runner_up": second, "gap": gap, "gap_in_stderr": z,
            "significant": bool(z > 2)}


def _cell(mean: float, stderr: float) -> str:
    return f"{mean:.1f}" if math.isnan(stderr) else f"{mean:.1f} ± {stderr:.1f}"


def _sentence(c: dict[str, Any], what: str, table: dict[str, dict[str, float]], field: str) -> str:
    head = (f"{c['best']} ended highest in {what} ({table[c['best']][field]:.1f} against "
            f"{table[c['runner_up']][field]:.1f} for the runner-up, {c['runner_up']})")
    if math.isnan(c["gap_in_stderr"]):
        return f"{head}; with one seed there is no standard error, so no claim that the gap is real."
    verdict = "exceeds" if c["significant"] else "does not exceed"
    return (f"{head}; the gap of {c['gap']:.1f} is {c['gap_in_stderr']:.1f} standard errors, so it "
            f"{verdict} 2 standard errors.")


def _summary_markdown(setup: PendulumSetup, policy: LinearGaussian, quick: bool, seeds: int,
                      table: dict[str, dict[str, float]], comparisons: dict[str, dict]) -> str:
    budget = setup.budget(quick)
    schedule = f" / (k + 1)^{setup.schedule_power:g}" if setup.schedule_power else ", constant"
    lrs = ", ".join(f"{m.label} {setup.lr_overrides.get(m.label, setup.lr):g}" for m in METHODS)
    lines = [
        "# PG-JD against PG-SF on Pendulum (paper, Section VI and Fig. 1)",
        "",
        f"Each method trained a linear-Gaussian policy on {ENV_ID} (no time limit: the paper's "
        f"infinite-horizon discounted problem) from {seeds} seed(s), "
        f"{'quick mode, ' if quick else ''}{budget:,} environment steps per run, phantom roll-outs "
        "included. Evaluations use one fixed set of start states and noise for every method and "
        "iteration (common random numbers): the discounted return J of the stochastic policy (the "
        "quantity of the paper's Fig. 1) and the undiscounted 200-step return of the mean action "
        "(what other libraries report for Pendulum-v1).",
        "",
        "The paper does not give its features, step sizes, batch size or budget, so these are our "
        f"choices. Features: {setup.features!r}, {policy.features.dim} of them, "
        f"{_FEATURE_NOTES.get(setup.features, 'a fixed feature map')}. "
        f"Policy: sigma {setup.sigma:g} ({'learned' if setup.learn_sigma else 'fixed'}), "
        f"{'tanh-squashed actions' if setup.squash == 'tanh' else 'actions clipped by the environment'}. "
        f"Optimisation: gamma {setup.gamma:g}, batch {setup.batch_size}, {setup.optimizer}, "
        f"step size alpha_0 ({lrs}){schedule}, "
        f"gradient clipping {setup.max_grad_norm if setup.max_grad_norm is not None else 'none'}; "
        f"evaluation every {setup.eval_every} iterations on {setup.eval_episodes} episodes.",
        "",
        f"Final evaluation, mean ± standard error across {seeds} seed(s):",
        "",
        "| Method | Episode return (mean action, 200 steps) | Discounted return J | Env steps | "
        "Wall seconds |",
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


def reproduce_pendulum(out_dir: str | Path, *, quick: bool, seeds: int,
                       progress: Callable[[str], None] | None = None,
                       setup: PendulumSetup | None = None) -> dict[str, Any]:
    """Run the paper's Pendulum study and write its curves, figures and summary.

    Trains every method of ``METHODS`` from seeds 0..seeds-1 with ``setup`` (default
    ``PENDULUM``), each run in ``out_dir/runs/<method>__seed<seed>/``, then writes
    ``curves.csv``, ``curves.png`` (episode return), ``curves_discounted.png`` (J, the
    paper's Fig. 1) and ``summary.md``. Everything is written into a temporary folder
    beside ``out_dir`` and renamed into place at the end, so an error or an interrupt
    leaves ``out_dir`` as it was. ``progress`` receives one line per finished run.

    Returns {"methods": label -> final-evaluation statistics, "comparisons": field ->
    best method, runner-up and gap in standard errors, "setup", "quick", "seeds",
    "env_steps", "out_dir"}.
    """
    seeds = validation.check_positive_int("seeds", seeds)
    setup = PENDULUM if setup is None else setup
    out_dir = Path(out_dir)
    runs.check_output_folder(out_dir, OUTPUT_FILES)
    configs = {(m, seed): setup.train_config(m, seed) for m in METHODS for seed in range(seeds)}
    env = GymnaxEnvironment(ENV_ID)
    policy = LinearGaussian(env, sigma=setup.sigma, features=setup.features,
                            learn_sigma=setup.learn_sigma, squash=setup.squash)
    budget = setup.budget(quick)

    with runs.staged_folder(out_dir, OUTPUT_FILES) as staging:
        curves, finals, curve_rows = {}, {}, []
        for (method, seed), config in configs.items():
            run_dir = staging / "runs" / f"{method.slug}__seed{seed}"
            run_dir.mkdir(parents=True)
            runs.write_json(run_dir / runs.CONFIG_FILE, {
                "env_id": ENV_ID, "method": method.label, "quick": quick, "env_steps": budget,
                **dataclasses.asdict(config), "setup": dataclasses.asdict(setup)})
            _, rows = train(env, policy, config, env_steps=budget, eval_every=setup.eval_every,
                            eval_episodes=setup.eval_episodes, run_dir=run_dir)
            curves.setdefault(method.label, []).append(rows)
            finals.setdefault(method.label, []).append(rows[-1])
            curve_rows += [{"method": method.label, "seed": seed, **{k: row[k] for k in CURVE_FIELDS[2:]}}
                           for row in rows]
            if progress is not None:
                last = rows[-1]
                progress(f"{method.label} seed {seed}: episode return {last['episode_return']:.1f}, "
                         f"J {last['discounted_return']:.1f} after {last['env_steps']:,} env steps "
                         f"({last['wall_seconds']:.0f} s)")

        table = _summarise(finals)
        comparisons = {field: _comparison(table, field) for field in ("discounted_return", "episode_return")}
        runs.write_csv(staging / "curves.csv", curve_rows)
        plotting.plot_curves(curves, staging / "curves.png", y="episode_return",
                             title=f"{ENV_ID}: return of the mean action (200 steps)")
        plotting.plot_curves(curves, staging / "curves_discounted.png", y="discounted_return",
                             title=f"{ENV_ID}: discounted return J (gamma {setup.gamma:g})")
        runs.atomic_write(staging / "summary.md",
                          _summary_markdown(setup, policy, quick, seeds, table, comparisons).encode())
    return {"methods": table, "comparisons": comparisons, "setup": dataclasses.asdict(setup),
            "quick": quick, "seeds": seeds, "env_steps": budget, "out_dir": str(out_dir)}
