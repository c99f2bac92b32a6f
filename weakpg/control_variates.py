"""Control variates for the Monte Carlo gradients of ``weakpg.estimators``."""

from weakpg._src.control_variates import ControlVariate as ControlVariate
from weakpg._src.control_variates import MovingAverage as MovingAverage
from weakpg._src.control_variates import baseline as baseline
from weakpg._src.control_variates import controlled as controlled
from weakpg._src.control_variates import controlled_samples as controlled_samples
from weakpg._src.control_variates import delta_method as delta_method
from weakpg._src.control_variates import moving_average_baseline as moving_average_baseline
from weakpg._src.control_variates import optimal_coefficients as optimal_coefficients
from weakpg._src.control_variates import update_moving_average as update_moving_average
