"""Build objects from config nodes with Hydra: components, optimizer and scheduler, the model, data, trainer, the
evaluations and the named callbacks and loggers of a group.

Every object built from a config node goes through :func:`instantiate` (and every ``_target_`` located without
building, through :func:`locate`), which keep Hydra's errors to the one-line :class:`ConfigError` naming the key.
"""

import inspect
import logging
from collections.abc import Callable, Mapping
from typing import Any

import hydra
from hydra.errors import InstantiationException
from omegaconf import DictConfig

from neurov1.errors import ConfigError, RunError

log = logging.getLogger(__name__)


def _cannot_import(key: str, path: object, cause: BaseException) -> ConfigError:
    reason = " ".join(str(cause).split())[:300]
    return ConfigError(
        f"{key}: cannot import {str(path)!r} ({type(cause).__name__}: {reason}). Give the dotted path of a class or "
        "function that Python can import (is its package installed or on PYTHONPATH?)."
    )


def locate(path: str, key: str) -> Any:
    """The class or function a ``_target_`` names (``hydra.utils.get_object``); ConfigError naming ``key``."""
    try:
        return hydra.utils.get_object(str(path))
    except (ImportError, AttributeError, ValueError) as error:
        raise _cannot_import(key, path, error) from None


def keyword_parameters(target: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    """The parameters a class's constructor (or a function) takes by keyword: what a config node may set."""
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {name: p for name, p in inspect.signature(target).parameters.items() if p.kind in kinds}


def instantiate(node: DictConfig | Mapping[str, Any], key: str | None = None, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` (``_partial_`` honoured: a partial comes back), with its errors one line: a
    neurov1 error raised by the constructor (a :class:`ConfigError` naming the key and the fix) comes out as itself,
    and a ``_target_`` that cannot be imported is a ConfigError naming ``<key>._target_``."""
    try:
        return hydra.utils.instantiate(node, **kwargs)
    except InstantiationException as error:
        if isinstance(error.__cause__, RunError):
            raise error.__cause__ from None
        if key is not None and isinstance(error.__cause__, ImportError):
            raise _cannot_import(f"{key}._target_", node.get("_target_"), error.__cause__) from None
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


def instantiate_callbacks(group: DictConfig | None) -> list[Any]:
    from lightning.pytorch import Callback

    return instantiate_group(group, Callback)


def instantiate_loggers(group: DictConfig | None) -> list[Any]:
    from lightning.pytorch.loggers import Logger

    return instantiate_group(group, Logger)
