"""weakpg: policy gradients from score functions and weak derivatives, in JAX."""

from importlib.metadata import PackageNotFoundError, version

from weakpg import distributions as distributions
from weakpg import envs as envs
from weakpg import estimators as estimators
from weakpg import features as features
from weakpg import gradients as gradients
from weakpg import policies as policies
from weakpg import rollouts as rollouts
from weakpg import testing as testing
from weakpg import train as train
from weakpg.distributions import Bernoulli, Categorical, Gaussian, Poisson
from weakpg.estimators import GradientEstimate, pathwise, score_function, weak_derivative
from weakpg.gradients import PolicyGradientEstimate, estimate_gradient, make_gradient_estimator
from weakpg.policies import LinearGaussian, MLPGaussian, Softmax

try:
    __version__ = version("weakpg")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "Bernoulli",
    "Categorical",
    "Gaussian",
    "GradientEstimate",
    "LinearGaussian",
    "MLPGaussian",
    "Poisson",
    "PolicyGradientEstimate",
    "Softmax",
    "distributions",
    "envs",
    "estimate_gradient",
    "estimators",
    "features",
    "gradients",
    "make_gradient_estimator",
    "pathwise",
    "policies",
    "rollouts",
    "score_function",
    "testing",
    "train",
    "weak_derivative",
]
