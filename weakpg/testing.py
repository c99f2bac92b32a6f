"""Statistical assertions shared by weakpg's tests and usable in yours."""

from weakpg._src.testing import assert_unbiased as assert_unbiased
from weakpg._src.testing import z_scores as z_scores
