"""Parametrised policies: observation -> action distribution."""

from weakpg._src.network_policies import from_network as from_network
from weakpg._src.policies import LinearGaussian as LinearGaussian
from weakpg._src.policies import MLPGaussian as MLPGaussian
from weakpg._src.policies import Policy as Policy
from weakpg._src.policies import Softmax as Softmax
