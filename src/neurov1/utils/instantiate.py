"""Build objects from config nodes: the model, data, trainer, and the named callbacks and loggers of a group."""

import logging
from typing import Any

import hydra
from hydra.errors import InstantiationException
from lightning.pytorch import Callback
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig

from neurov1.errors import RunError

log = logging.getLogger(__name__)


def instantiate(node: DictConfig, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate``, except that a neurov1 error raised by the constructor (a :class:`ConfigError`
    naming the key and the fix) comes out as itself instead of wrapped in Hydra's exception."""
    try:
        return hydra.utils.instantiate(node, **kwargs)
    except InstantiationException as error:
        if isinstance(error.__cause__, RunError):
            raise error.__cause__ from None
        raise


def instantiate_group(group: DictConfig | None, expected: type) -> list[Any]:
    """Instantiate every node of ``group`` that has a ``_target_``, checking each result is an ``expected``."""
    built = []
    for name, node in (group or {}).items():
        if not isinstance(node, DictConfig) or "_target_" not in node:
            continue
        log.info("Instantiating %s <%s>", name, node._target_)
        obj = instantiate(node)
        if not isinstance(obj, expected):
            raise TypeError(f"{name}: {node._target_} built a {type(obj).__name__}, expected a {expected.__name__}")
        built.append(obj)
    return built


def instantiate_callbacks(group: DictConfig | None) -> list[Callback]:
    return instantiate_group(group, Callback)


def instantiate_loggers(group: DictConfig | None) -> list[Logger]:
    return instantiate_group(group, Logger)
