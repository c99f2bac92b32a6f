"""weakpg: policy gradients from score functions and weak derivatives, in JAX.

Names are loaded on first use (PEP 562), so ``import weakpg`` and the command line's
``--help`` stay fast; ``from weakpg import Gaussian`` works as usual.
"""

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("weakpg")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

_SUBMODULES = ("agents", "control_variates", "distributions", "envs", "estimators", "features", "gradients",
               "monte_carlo", "policies", "rollouts", "testing", "train")
_NAMES = {
    "Agent": "agents", "load": "agents",
    "Bernoulli": "distributions", "Categorical": "distributions", "Gaussian": "distributions",
    "Poisson": "distributions",
    "GradientEstimate": "estimators", "pathwise": "estimators", "pathwise_samples": "estimators",
    "score_function": "estimators", "score_function_samples": "estimators",
    "weak_derivative": "estimators", "weak_derivative_samples": "estimators",
    "PolicyGradientEstimate": "gradients", "estimate_gradient": "gradients",
    "make_gradient_estimator": "gradients",
    "LinearGaussian": "policies", "MLPGaussian": "policies", "Softmax": "policies",
}
__all__ = sorted([*_SUBMODULES, *_NAMES])


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"weakpg.{name}")
    if name in _NAMES:
        return getattr(importlib.import_module(f"weakpg.{_NAMES[name]}"), name)
    raise AttributeError(f"module 'weakpg' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
