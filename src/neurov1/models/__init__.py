"""Backbones with the neuro-constrained components placed where the paper puts them."""

from neurov1.models.components import COMPONENT_DEFAULTS, COMPONENT_ORDER, validate_components
from neurov1.models.resnet import ARCHITECTURES, build_resnet, count_parameters, stem_sizes

__all__ = [
    "ARCHITECTURES",
    "COMPONENT_DEFAULTS",
    "COMPONENT_ORDER",
    "build_resnet",
    "count_parameters",
    "stem_sizes",
    "validate_components",
]
