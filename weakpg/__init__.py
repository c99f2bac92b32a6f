"""weakpg: policy gradients from score functions and weak derivatives, in JAX."""

from importlib.metadata import PackageNotFoundError, version

from weakpg import distributions as distributions
from weakpg import estimators as estimators
from weakpg import testing as testing
from weakpg.distributions import Bernoulli, Categorical, Gaussian, Poisson
from weakpg.estimators import GradientEstimate, pathwise, score_function, weak_derivative

try:
    __version__ = version("weakpg")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "Bernoulli",
    "Categorical",
    "Gaussian",
    "GradientEstimate",
    "Poisson",
    "distributions",
    "estimators",
    "pathwise",
    "score_function",
    "testing",
    "weak_derivative",
]
