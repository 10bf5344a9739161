"""Biologically constrained building blocks of the neuro-constrained ResNet (paper Sec. 3.1)."""

from neurov1.components.center_surround import CenterSurround, DoGConv2d
from neurov1.components.cortical_magnification import PolarTransform
from neurov1.components.divisive_normalization import DivisiveNormalization
from neurov1.components.fixation import GivenFixation, LearnedFixation, SaliencyFixation
from neurov1.components.locally_connected import LocallyConnected2d
from neurov1.components.tuned_normalization import TunedNormalization

__all__ = [
    "DoGConv2d",
    "CenterSurround",
    "LocallyConnected2d",
    "DivisiveNormalization",
    "TunedNormalization",
    "PolarTransform",
    "LearnedFixation",
    "SaliencyFixation",
    "GivenFixation",
]
