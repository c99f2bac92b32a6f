"""The batched roll-out engine: geometric horizons, phantom groups, busy lanes."""

from weakpg._src.rollouts import JobResults as JobResults
from weakpg._src.rollouts import Jobs as Jobs
from weakpg._src.rollouts import geometric_horizon as geometric_horizon
from weakpg._src.rollouts import run_jobs as run_jobs
