"""optax 0.2.4's ``optax.monte_carlo.stochastic_gradient_estimators``, on weakpg."""

from weakpg._src.monte_carlo.estimators import (
    measure_valued_estimation_mean as measure_valued_estimation_mean,
)
from weakpg._src.monte_carlo.estimators import measure_valued_estimation_std as measure_valued_estimation_std
from weakpg._src.monte_carlo.estimators import measure_valued_jacobians as measure_valued_jacobians
from weakpg._src.monte_carlo.estimators import multi_normal as multi_normal
from weakpg._src.monte_carlo.estimators import pathwise_jacobians as pathwise_jacobians
from weakpg._src.monte_carlo.estimators import score_function_jacobians as score_function_jacobians
