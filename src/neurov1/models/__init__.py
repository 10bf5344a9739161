"""Backbones (adapters of network families) with the neuro-constrained components at their sites."""

from neurov1.models.backbones import Backbone, Place, ResNetBackbone, VGGBackbone, backbone_for
from neurov1.models.builder import build_network, count_parameters, rename_legacy_keys
from neurov1.models.sites import SITES, component_order, resolve_components

__all__ = [
    "SITES",
    "Backbone",
    "Place",
    "ResNetBackbone",
    "VGGBackbone",
    "backbone_for",
    "build_network",
    "component_order",
    "count_parameters",
    "rename_legacy_keys",
    "resolve_components",
]
