"""Typed options: every numeric and list option of the optimizer, scheduler, data and trainer checked before any work.

Hydra passes a command-line value on as it parsed it: ``model.scheduler.milestones="[1]"`` is the string ``[1]``
(MultiStepLR would count its characters and never decay), ``model.optimizer.lr=abc`` a string that fails deep in
the first step. So each value of these nodes is checked against the annotation of the parameter it is given to (the
optimizer's, scheduler's, data module's or Lightning Trainer's constructor) and against a sensible range
(:data:`RANGES`; a learning rate > 0, milestones increasing and within ``trainer.max_epochs``), and a value that does
not fit is one ``ConfigError`` line naming the key.
"""

import collections.abc
import inspect
import itertools
import sys
import types
import typing
from collections.abc import Callable
from typing import Any

import torch
import yaml
from omegaconf import DictConfig, OmegaConf

from neurov1.errors import ConfigError, check_int
from neurov1.utils.instantiate import locate

Check = tuple[Callable[[Any], bool] | None, str, str]  # (holds for a valid value, what it must be, an example)
RANGES: dict[str, Check] = {
    "milestones": (None, "", "[60,80]"),  # (its range depends on trainer.max_epochs: check_milestones)
    "lr": (lambda v: v > 0, "> 0", "0.1"),
    "momentum": (lambda v: 0 <= v <= 1, "in [0, 1]", "0.9"),
    "dampening": (lambda v: 0 <= v <= 1, "in [0, 1]", "0"),
    "weight_decay": (lambda v: v >= 0, ">= 0", "1e-5"),
    "eps": (lambda v: v > 0, "> 0", "1e-8"),
    "betas": (lambda v: all(0 <= b < 1 for b in v), "two numbers in [0, 1)", "[0.9,0.999]"),
    "gamma": (lambda v: v > 0, "> 0", "0.1"),
    "eta_min": (lambda v: v >= 0, ">= 0", "0"),
    "T_max": (lambda v: v >= 1, ">= 1", "100"),
    "step_size": (lambda v: v >= 1, ">= 1", "30"),
    "batch_size": (lambda v: v >= 1, ">= 1", "128"),
    "num_workers": (lambda v: v >= 0, ">= 0", "8"),
    "image_size": (lambda v: v >= 1, ">= 1", "64"),
    "train_per_class": (lambda v: v >= 1, ">= 1", "160"),
    "val_per_class": (lambda v: v >= 1, ">= 1", "40"),
    "num_classes": (lambda v: v >= 1, ">= 1", "10"),
    "seed": (lambda v: v >= 0, ">= 0", "0"),
    "shuffle_seed": (lambda v: v >= 0, ">= 0", "0"),
    "log_every_n_steps": (lambda v: v >= 1, ">= 1", "50"),
    "check_val_every_n_epoch": (lambda v: v >= 1, ">= 1", "1"),
    "accumulate_grad_batches": (lambda v: v >= 1, ">= 1", "1"),
    "gradient_clip_val": (lambda v: v >= 0, ">= 0", "1.0"),
    "max_steps": (lambda v: v == -1 or v >= 1, "-1 (no limit) or >= 1", "-1"),
}
NODES = (("model.optimizer", ("params",)), ("model.scheduler", ("optimizer",)), ("data", ()), ("trainer", ()))


def _arms(annotation: Any) -> tuple[Any, ...]:
    origin = typing.get_origin(annotation)
    return typing.get_args(annotation) if origin in (typing.Union, types.UnionType) else (annotation,)


def conforms(value: Any, annotation: Any) -> bool | None:
    """Whether a config value fits a constructor parameter's annotation; None when the annotation says too little."""
    if annotation in (inspect.Parameter.empty, Any):
        return None
    arms = _arms(annotation)
    if len(arms) > 1:
        verdicts = [conforms(value, arm) for arm in arms]
        return True if True in verdicts else (None if None in verdicts else False)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is type(None):
        return value is None
    if origin is typing.Literal:
        return value in args
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    if origin in (list, tuple, collections.abc.Sequence, collections.abc.Iterable):
        if not isinstance(value, list | tuple):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and False not in map(conforms, value, args)
        return not args or False not in (conforms(item, args[0]) for item in value)
    if origin in (dict, collections.abc.Mapping) or annotation is dict:
        return isinstance(value, dict)
    if annotation is torch.Tensor:
        return False  # (a config holds no tensors: another arm of the annotation decides)
    return True if isinstance(annotation, type) and isinstance(value, annotation) else None


def _describe(annotation: Any) -> str:
    names, choices = [], []
    for arm in _arms(annotation):
        origin, args = typing.get_origin(arm), typing.get_args(arm)
        if arm is type(None):
            names.append("null")
        elif origin is typing.Literal:
            choices += [str(choice) for choice in args]
        elif arm in (int, float, bool, str):
            names.append({int: "an integer", float: "a number", bool: "true or false", str: "a string"}[arm])
        elif origin in (list, tuple, collections.abc.Sequence, collections.abc.Iterable):
            items = _describe(args[0]).removeprefix("a ").removeprefix("an ") if args else ""
            names.append(f"a list of {items}s" if items else "a list")
    if choices:
        names.insert(0, "one of " + ", ".join(dict.fromkeys(choices)))
    return " or ".join(dict.fromkeys(names)) or "another type"


def _hints(target: str, key: str) -> dict[str, Any]:
    """The constructor parameters of the ``_target_`` of the node ``key`` with their (resolved) annotations."""
    factory = locate(target, f"{key}._target_")
    try:
        parameters = inspect.signature(factory).parameters
    except (ValueError, TypeError):  # (a callable without a signature says nothing)
        return {}
    namespace = {**vars(typing), **vars(collections.abc), **vars(sys.modules[factory.__module__])}
    hints = {}
    for name, parameter in parameters.items():
        annotation = parameter.annotation
        if isinstance(annotation, str):  # (a module with postponed annotations)
            try:
                annotation = eval(annotation, namespace)  # noqa: S307 - an annotation of an imported constructor
            except Exception:  # noqa: BLE001 - an annotation we cannot read says nothing
                annotation = inspect.Parameter.empty
        hints[name] = annotation
    return hints


def _quoted_value(value: Any) -> bool:
    """Whether a string is the text of a number or list (``"[1]"``, ``"0.1"``), quoted on the command line."""
    try:
        return isinstance(value, str) and not isinstance(yaml.safe_load(value), str | type(None))
    except yaml.YAMLError:
        return False


def check_node(node: dict[str, Any], key: str, skip: tuple[str, ...] = ()) -> None:
    """ConfigError naming ``<key>.<option>`` for a value of ``node`` that does not fit its parameter or range."""
    hints = _hints(node["_target_"], key) if "_target_" in node else {}
    for name, value in node.items():
        if name.startswith("_") or name in skip or name not in hints:
            continue
        if conforms(value, hints[name]) is False:
            quoted = " (quoted: write the value without quotes)" if _quoted_value(value) else ""
            example = f" Set e.g. {key}.{name}={RANGES[name][2]}." if name in RANGES else ""
            raise ConfigError(f"{key}.{name}: must be {_describe(hints[name])}, got {value!r}{quoted}.{example}")
        valid, bound, example = RANGES.get(name, (None, "", ""))
        numbers = value if isinstance(value, list) else [value]
        if valid and value is not None and all(isinstance(v, int | float) and not isinstance(v, bool) for v in numbers):
            if not valid(value):
                raise ConfigError(f"{key}.{name}: must be {bound}, got {value!r}. Set e.g. {key}.{name}={example}.")


def check_milestones(milestones: Any, max_epochs: int) -> None:
    """MultiStepLR's milestones: increasing epochs within the run (else the rate never decays where meant)."""
    if not isinstance(milestones, list):
        return
    increasing = all(a < b for a, b in itertools.pairwise(milestones))
    if not increasing or any(not 1 <= m <= max_epochs for m in milestones):
        raise ConfigError(
            f"model.scheduler.milestones: must be increasing epochs in 1..trainer.max_epochs ({max_epochs}), got "
            f"{milestones}. Set e.g. model.scheduler.milestones=[{max(1, max_epochs * 6 // 10)}] for this run's length."
        )


def check_run_options(cfg: DictConfig) -> None:
    """Check ``trainer.max_epochs`` and then the options of the optimizer, scheduler, data and trainer nodes."""
    check_int(cfg.trainer.max_epochs, "trainer.max_epochs", 100)
    for key, skip in NODES:
        node = OmegaConf.to_container(OmegaConf.select(cfg, key), resolve=True)
        check_node(node, key, skip)
    check_milestones(
        OmegaConf.to_container(cfg.model.scheduler, resolve=True).get("milestones"), cfg.trainer.max_epochs
    )
