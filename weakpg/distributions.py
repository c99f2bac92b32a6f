"""Distributions with samplers, log-densities and weak derivatives."""

from weakpg._src.distributions import Bernoulli as Bernoulli
from weakpg._src.distributions import Categorical as Categorical
from weakpg._src.distributions import Distribution as Distribution
from weakpg._src.distributions import Gaussian as Gaussian
from weakpg._src.distributions import Poisson as Poisson
from weakpg._src.distributions import WeakDerivative as WeakDerivative
