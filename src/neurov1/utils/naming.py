"""Run names and tags derived from the composed component list and the seed."""

import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from neurov1.components.fixation import LearnedFixation, learned_policy
from neurov1.models import resolve_components

LEARNED_PRIOR = inspect.signature(LearnedFixation).parameters["prior"].default
LEARNED_LOSS = inspect.signature(LearnedFixation).parameters["loss"].default


def components_label(components: Mapping[str, Any]) -> str:
    """``baseline`` or ``center_surround+tuned_norm`` (components in canonical order: by site, then name)."""
    return "+".join(resolve_components(components)) or "baseline"


def model_label(net: Mapping[str, Any]) -> str:
    """``<arch>-<components>`` of a ``model.net`` config, e.g. ``resnet18-center_surround+tuned_norm``."""
    return f"{net['arch']}-{components_label(net['components'])}"


def fixation_policy(components: Mapping[str, Any]) -> str:
    """The fixation policy of the cortical magnification (``fixation=<policy>``): ``center`` without one."""
    node = (resolve_components(components).get("cortical_mag") or {}).get("fixation")
    if not node:
        return "center"
    name = str(node.get("_target_", "")).rsplit(".", 1)[-1]
    policy = name.removesuffix("Fixation").lower() or "center"
    if policy != "learned":
        return policy
    return learned_policy(node.get("prior", LEARNED_PRIOR), node.get("loss", LEARNED_LOSS))


def run_name(components: Mapping[str, Any], seed: int) -> str:
    """``baseline-s0``, ``center_surround+tuned_norm-s1``, or with a fixation policy ``cortical_mag-learned-s0``."""
    policy = fixation_policy(components)
    return f"{components_label(components)}{'' if policy == 'center' else f'-{policy}'}-s{seed}"


def run_tags(components: Mapping[str, Any], seed: int) -> list[str]:
    """One tag per component (or ``baseline``), ``fixation=<policy>`` with a policy, and ``seed=<n>``."""
    policy = fixation_policy(components)
    return [
        *components_label(components).split("+"),
        *([f"fixation={policy}"] if policy != "center" else []),
        f"seed={seed}",
    ]


def sweep_group(hydra_config: DictConfig | None = None) -> str | None:
    """In a multirun, the group its jobs share: ``<sweep config>/<sweep folder>``, e.g. ``single_component/2026-...``.

    None for a single run. ``hydra_config`` defaults to the running job's Hydra config.
    """
    if hydra_config is None:
        hydra_config = HydraConfig.get() if HydraConfig.initialized() else None
    if hydra_config is None or hydra_config.mode != RunMode.MULTIRUN:
        return None
    return f"{hydra_config.runtime.choices.get('sweep') or 'multirun'}/{Path(hydra_config.sweep.dir).name}"
