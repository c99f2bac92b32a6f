"""Distributions with samplers, log-densities and weak derivatives.

``Distribution`` and ``WeakDerivative`` (``base``): the interface; ``Gaussian``
(``gaussian``): the diagonal Gaussian of the paper's policies; ``Categorical``,
``Bernoulli``, ``Poisson`` (``discrete``). Batches of distributions are handled with
``jax.vmap``.
"""

from weakpg._src.distributions.base import Distribution as Distribution
from weakpg._src.distributions.base import WeakDerivative as WeakDerivative
from weakpg._src.distributions.discrete import Bernoulli as Bernoulli
from weakpg._src.distributions.discrete import Categorical as Categorical
from weakpg._src.distributions.discrete import Poisson as Poisson
from weakpg._src.distributions.gaussian import Gaussian as Gaussian
from weakpg._src.distributions.gaussian import rayleigh as rayleigh
