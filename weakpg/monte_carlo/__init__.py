"""The ``optax.monte_carlo`` API of optax 0.2.4 (removed from optax after it), on weakpg.

Code written for ``optax.monte_carlo`` runs after ``from optax import monte_carlo`` becomes
``from weakpg import monte_carlo`` and optax's ``utils.multi_normal`` becomes
``weakpg.monte_carlo.multi_normal``. See the README, "Migrating from optax.monte_carlo".
"""

from weakpg._src.monte_carlo.control_variates import control_delta_method as control_delta_method
from weakpg._src.monte_carlo.control_variates import control_variates_jacobians as control_variates_jacobians
from weakpg._src.monte_carlo.control_variates import (
    estimate_control_variate_coefficients as estimate_control_variate_coefficients,
)
from weakpg._src.monte_carlo.control_variates import moving_avg_baseline as moving_avg_baseline
from weakpg._src.monte_carlo.estimators import MultiNormalDiagFromLogScale as MultiNormalDiagFromLogScale
from weakpg._src.monte_carlo.estimators import (
    measure_valued_estimation_mean as measure_valued_estimation_mean,
)
from weakpg._src.monte_carlo.estimators import measure_valued_estimation_std as measure_valued_estimation_std
from weakpg._src.monte_carlo.estimators import measure_valued_jacobians as measure_valued_jacobians
from weakpg._src.monte_carlo.estimators import multi_normal as multi_normal
from weakpg._src.monte_carlo.estimators import pathwise_jacobians as pathwise_jacobians
from weakpg._src.monte_carlo.estimators import score_function_jacobians as score_function_jacobians
from weakpg.monte_carlo import control_variates as control_variates
from weakpg.monte_carlo import stochastic_gradient_estimators as stochastic_gradient_estimators
