"""Run names and tags derived from the composed component list and the seed."""

from collections.abc import Mapping
from typing import Any

from neurov1.models import validate_components


def run_name(components: Mapping[str, Any], seed: int) -> str:
    """``baseline-s0`` or ``center_surround+tuned_norm-s1`` (components in canonical order)."""
    names = list(validate_components(components))
    return f"{'+'.join(names) or 'baseline'}-s{seed}"


def run_tags(components: Mapping[str, Any], seed: int) -> list[str]:
    """One tag per component (or ``baseline``) and ``seed=<n>``."""
    names = list(validate_components(components))
    return [*(names or ["baseline"]), f"seed={seed}"]
