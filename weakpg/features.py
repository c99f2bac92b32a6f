"""Feature maps for policies linear in features."""

from weakpg._src.features import RBF as RBF
from weakpg._src.features import Features as Features
from weakpg._src.features import Fourier as Fourier
from weakpg._src.features import Identity as Identity
