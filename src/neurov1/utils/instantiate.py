"""Build the named callbacks and loggers of a config group (a dict of ``_target_`` nodes)."""

import logging
from typing import Any

import hydra
from lightning.pytorch import Callback
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig

log = logging.getLogger(__name__)


def instantiate_group(group: DictConfig | None, kind: type) -> list[Any]:
    """Instantiate every node of ``group`` that has a ``_target_``, checking each result is a ``kind``."""
    built = []
    for name, node in (group or {}).items():
        if not isinstance(node, DictConfig) or "_target_" not in node:
            continue
        log.info("Instantiating %s <%s>", name, node._target_)
        obj = hydra.utils.instantiate(node)
        if not isinstance(obj, kind):
            raise TypeError(f"{name}: {node._target_} built a {type(obj).__name__}, expected a {kind.__name__}")
        built.append(obj)
    return built


def instantiate_callbacks(group: DictConfig | None) -> list[Callback]:
    return instantiate_group(group, Callback)


def instantiate_loggers(group: DictConfig | None) -> list[Logger]:
    return instantiate_group(group, Logger)
