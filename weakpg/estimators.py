"""Monte Carlo estimators of grad_theta E_{p(z; theta)}[f(z)]."""

from weakpg._src.estimators import GradientEstimate as GradientEstimate
from weakpg._src.estimators import pathwise as pathwise
from weakpg._src.estimators import pathwise_samples as pathwise_samples
from weakpg._src.estimators import score_function as score_function
from weakpg._src.estimators import score_function_samples as score_function_samples
from weakpg._src.estimators import summarize as summarize
from weakpg._src.estimators import weak_derivative as weak_derivative
from weakpg._src.estimators import weak_derivative_samples as weak_derivative_samples
