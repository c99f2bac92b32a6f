"""Policy-gradient estimators from phantom roll-outs: PG-JD and PG-SF."""

from weakpg._src.config import BASELINES as BASELINES
from weakpg._src.config import COUPLINGS as COUPLINGS
from weakpg._src.config import ESTIMATORS as ESTIMATORS
from weakpg._src.gradients import PolicyGradientEstimate as PolicyGradientEstimate
from weakpg._src.gradients import coordinate_dimension as coordinate_dimension
from weakpg._src.gradients import default_num_lanes as default_num_lanes
from weakpg._src.gradients import estimate_gradient as estimate_gradient
from weakpg._src.gradients import make_gradient_estimator as make_gradient_estimator
