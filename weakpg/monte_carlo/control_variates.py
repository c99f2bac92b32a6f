"""optax 0.2.4's ``optax.monte_carlo.control_variates``, on weakpg."""

from weakpg._src.monte_carlo.control_variates import control_delta_method as control_delta_method
from weakpg._src.monte_carlo.control_variates import control_variates_jacobians as control_variates_jacobians
from weakpg._src.monte_carlo.control_variates import (
    estimate_control_variate_coefficients as estimate_control_variate_coefficients,
)
from weakpg._src.monte_carlo.control_variates import moving_avg_baseline as moving_avg_baseline
