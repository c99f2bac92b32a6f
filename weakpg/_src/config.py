"""The settings of a training run: one schema, each default and each check in one place.

``TrainConfig`` holds everything Algorithm 2 fixes besides the environment and the
policy: the gradient estimator, the optimiser, the budget, the evaluation and the seed.
Every field has its default and its help text here (``dataclasses.fields(TrainConfig)``,
``metadata["help"]``), and ``__post_init__`` makes every check, single-field and
cross-field, so a bad setting is refused when the config is built, before anything is
compiled or written. The command line, sweep files and ``config.json`` are built from
these fields (``weakpg._src.app.settings``). This module imports nothing but the
standard library, so the command line can read the schema without loading JAX.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any

ESTIMATORS = ("jd", "sf")
BASELINES = (None, "rollout", "value")
COUPLINGS = ("mirror", "quantile")  # of the pair of a Gaussian mean coordinate (PG-JD, coupled)
OPTIMIZERS = ("sgd", "adam")
POLICY_NAMES = ("linear-rbf", "linear", "mlp")  # weakpg.policies.make_policy
MAX_SEED = 2**32 - 1  # jax.random.key takes a uint32 seed without jax_enable_x64
MAX_BATCH_SIZE = 2**20
MAX_ENV_STEPS = 2**31 - 1  # the compiled loop counts env steps in int32


def setting(default: Any, help: str) -> Any:
    """A dataclass field with its default and the help text the CLI and the docs show."""
    return dataclasses.field(default=default, metadata={"help": help})


def check_type(name: str, value: Any, annotation: Any) -> None:
    """ValueError unless ``value`` fits ``annotation`` (str, int, float, bool, X | None).

    An int is a float too (TOML and JSON write 1.0 as 1); a bool is no number.
    """
    args = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
    if value is None and type(None) in args:
        return
    kinds = [a for a in args if a is not type(None)]
    ok = any(isinstance(value, bool) if kind is bool else
             isinstance(value, kind) and not isinstance(value, bool) or
             (kind is float and isinstance(value, int) and not isinstance(value, bool))
             for kind in kinds)
    if not ok:
        allowed = " or ".join([k.__name__ for k in kinds] + (["None"] if type(None) in args else []))
        raise ValueError(f"{name} must be of type {allowed}, got {value!r}")


def check_choice(name: str, value: Any, allowed: tuple[Any, ...]) -> None:
    """ValueError unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")


def check_int_range(name: str, value: int, low: int, high: int | None = None) -> None:
    """ValueError unless low <= value <= high."""
    if value < low or (high is not None and value > high):
        upper = "inf" if high is None else high
        raise ValueError(f"{name} must be an int in [{low}, {upper}], got {value!r}")


def check_interval(name: str, value: float, low: float | None, high: float | None, *,
                   low_open: bool = False, high_open: bool = False) -> None:
    """ValueError unless ``value`` is finite and inside the interval."""
    bad = not math.isfinite(value)
    if low is not None:
        bad |= value <= low if low_open else value < low
    if high is not None:
        bad |= value >= high if high_open else value > high
    if bad:
        interval = (f"{'(' if low_open else '['}{'-inf' if low is None else float(low)}, "
                    f"{'inf' if high is None else float(high)}{')' if high_open or high is None else ']'}")
        raise ValueError(f"{name} must lie in {interval}, got {value!r}")


def check_fields(config: Any) -> None:
    """The type of every field of a dataclass instance, from its annotations."""
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        check_type(field.name, getattr(config, field.name), hints[field.name])


def check_coordinates(coordinates: int | None, dimension: int | None = None) -> None:
    """1 <= coordinates <= d, d the elements of each learned distribution parameter (when known)."""
    if coordinates is None:
        return
    if dimension is None:
        check_int_range("coordinates", coordinates, 1)
    elif not 1 <= coordinates <= dimension:
        raise ValueError(f"coordinates must be an int in [1, d] = [1, {dimension}] (d = {dimension}: the "
                         f"elements of each learned distribution parameter of the policy), "
                         f"got {coordinates!r}")


def check_estimator(*, estimator: Any, baseline: Any, coupled: Any, coordinates: Any, coupling: Any,
                    gamma: Any, num_samples: Any, samples_name: str, dimension: int | None = None) -> None:
    """Every rule of the gradient estimator's settings, for ``TrainConfig`` and
    ``weakpg.make_gradient_estimator`` alike (``samples_name``: batch_size or num_samples).

    Types come from ``TrainConfig``'s annotations. ``dimension`` is d of ``check_coordinates``,
    known once the policy is.
    """
    hints = typing.get_type_hints(TrainConfig)
    for name, value in (("estimator", estimator), ("baseline", baseline), ("coupled", coupled),
                        ("coordinates", coordinates), ("coupling", coupling), ("gamma", gamma)):
        check_type(name, value, hints[name])
    check_type(samples_name, num_samples, hints["batch_size"])
    check_choice("estimator", estimator, ESTIMATORS)
    check_choice("baseline", baseline, BASELINES)
    check_interval("gamma", gamma, 0.0, 1.0, low_open=True, high_open=True)
    check_int_range(samples_name, num_samples, 1, MAX_BATCH_SIZE)
    check_coordinates(coordinates, dimension)
    check_choice("coupling", coupling, COUPLINGS)
    if baseline is not None and estimator != "sf":
        raise ValueError(f"baseline={baseline!r} applies to estimator='sf' only, got estimator={estimator!r}")
    if baseline == "value" and num_samples < 4:
        raise ValueError(f"baseline='value' fits on half the batch and needs {samples_name} >= 4, "
                         f"got {num_samples}")
    for name, value, default in (("coordinates", coordinates, None), ("coupling", coupling, "mirror")):
        if value != default and estimator != "jd":
            raise ValueError(f"{name}={value!r} applies to estimator='jd' only, got estimator={estimator!r}")
    if coupling != "mirror" and not coupled:
        raise ValueError(f"coupling={coupling!r} draws the pair of a Gaussian mean coordinate from common "
                         "random numbers and needs coupled=True; with coupled=False the pair is drawn "
                         "independently")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Algorithm 2's settings: estimator, optimiser, budget, evaluation and seed.

    theta_{k+1} = theta_k + alpha_k g_k with g_k a PG-JD or PG-SF estimate of grad J and
    alpha_k = lr / (k + 1)^schedule_power (paper, eq. 17), until ``iterations`` or
    ``env_steps`` is spent, whichever comes first; an evaluation every ``eval_every``
    iterations. Each field's meaning is its ``metadata["help"]``.
    """

    estimator: str = setting("jd", "Policy-gradient estimator: jd (weak derivative, PG-JD) or sf "
                             "(score function, PG-SF).")
    baseline: str | None = setting(None, "Baseline of the sf estimator: none, rollout (the return "
                                   "of a fresh action from the same state) or value (a value "
                                   "function fitted on the other half of the batch).")
    coupled: bool = setting(True, "Common random numbers between the branches of a sample (the "
                            "phantom roll-outs of PG-JD, the roll-out baseline of PG-SF).")
    coordinates: int | None = setting(None, "PG-JD: phantom pairs for k coordinates of each learned "
                                      "distribution parameter per sample, drawn uniformly without "
                                      "replacement and weighted d/k (unbiased), 1 <= k <= d (d: the "
                                      "action dimension of a Gaussian policy); none: all d.")
    coupling: str = setting("mirror", "PG-JD with coupled branches: how the pair of a Gaussian mean "
                            "coordinate shares its draw: mirror (a- = 2 mu - a+, one Rayleigh draw) or "
                            "quantile (a+ and a- comonotone, from one uniform through their quantile "
                            "functions).")
    gamma: float = setting(0.95, "Discount factor, in (0, 1).")
    batch_size: int = setting(256, f"Gradient samples per iteration, in [1, {MAX_BATCH_SIZE}].")
    optimizer: str = setting("sgd", "sgd (the paper's plain ascent) or adam.")
    lr: float = setting(0.1, "Initial step size alpha_0, > 0.")
    schedule_power: float = setting(0.0, "p in alpha_k = alpha_0 / (k + 1)^p, in [0, 1]; 0 keeps "
                                    "the step constant.")
    max_grad_norm: float | None = setting(None, "Clip each gradient estimate to this global norm "
                                          "(> 0) before the step; none: never.")
    iterations: int | None = setting(None, "Budget of iterations (gradient steps); none: only "
                                     "env_steps bounds the run.")
    env_steps: int | None = setting(1_000_000, "Budget of environment steps (phantom roll-outs "
                                    f"included), at most {MAX_ENV_STEPS}; the run stops at the first "
                                    "of iterations and env_steps; none: only iterations bounds it.")
    eval_every: int = setting(5, "Evaluate (and checkpoint) every this many iterations, >= 1.")
    eval_episodes: int = setting(16, "Episodes per evaluation from fixed start states, >= 1: the "
                                 "discounted return J and the return of the mean (Gaussian) or "
                                 "most likely (softmax) action over the task's standard episode.")
    seed: int = setting(0, f"PRNG seed, in [0, {MAX_SEED}]; the same seed and settings give the "
                        "same numbers.")

    def __post_init__(self):
        check_fields(self)
        check_estimator(**self.estimator_options(), samples_name="batch_size")
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_interval("lr", self.lr, 0.0, None, low_open=True)
        check_interval("schedule_power", self.schedule_power, 0.0, 1.0)
        if self.max_grad_norm is not None:
            check_interval("max_grad_norm", self.max_grad_norm, 0.0, None, low_open=True)
        if self.iterations is not None:
            check_int_range("iterations", self.iterations, 1)
        if self.env_steps is not None:
            check_int_range("env_steps", self.env_steps, 1, MAX_ENV_STEPS)
        check_int_range("eval_every", self.eval_every, 1)
        check_int_range("eval_episodes", self.eval_episodes, 1)
        check_int_range("seed", self.seed, 0, MAX_SEED)
        # Cross-field rules.
        if self.iterations is None and self.env_steps is None:
            raise ValueError("iterations and env_steps are both none; give at least one to bound the run")

    def estimator_options(self) -> dict[str, Any]:
        """The keyword arguments of ``weakpg.make_gradient_estimator`` these settings give."""
        return dict(estimator=self.estimator, baseline=self.baseline, coupled=self.coupled,
                    coordinates=self.coordinates, coupling=self.coupling, gamma=self.gamma,
                    num_samples=self.batch_size)
