"""Run names and tags derived from the composed component list and the seed."""

from collections.abc import Mapping
from typing import Any

from neurov1.models import validate_components


def components_label(components: Mapping[str, Any]) -> str:
    """``baseline`` or ``center_surround+tuned_norm`` (components in canonical order)."""
    return "+".join(validate_components(components)) or "baseline"


def run_name(components: Mapping[str, Any], seed: int) -> str:
    """``baseline-s0`` or ``center_surround+tuned_norm-s1``."""
    return f"{components_label(components)}-s{seed}"


def run_tags(components: Mapping[str, Any], seed: int) -> list[str]:
    """One tag per component (or ``baseline``) and ``seed=<n>``."""
    return [*components_label(components).split("+"), f"seed={seed}"]
