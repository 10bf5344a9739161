"""Which code a model rebuilt from saved state may import and call.

A checkpoint, a ledger record or an exported Brain-Score plugin holds the configs of its model: ``_target_`` paths
(and ``net.backbone``) that the builder imports and calls. Loading the file with torch's ``weights_only=True`` is
safe, but the configs inside it are not: a file from elsewhere could name any callable (``os.system``). So before
anything is imported, every target in saved state must be one of

- neurov1's own: the components (:mod:`neurov1.components`), the built-in backbones, and the ``_target_`` of every
  component, optimizer, scheduler and data config that neurov1 ships (``conf/``);
- torch's optimizers and learning-rate schedulers (``torch.optim.<Name>``, ``torch.optim.lr_scheduler.<Name>``);
- a target the user trusts: one of the configs composed for this run (a plug-in of one's own selected on the command
  line), or listed in ``trusted_targets`` (the option of every command, and the keyword argument of
  :meth:`neurov1.training.module.NeuroV1Module.load_from_checkpoint`). An entry trusts that target, or every target
  below it when it names a module or package (``trusted_targets=[userpkg]``).

Anything else stops the load with one line naming the target, the file and the option that would trust it.
"""

import functools
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import torch
from omegaconf import OmegaConf

from neurov1.errors import ConfigError
from neurov1.utils.config import group_options, load_option

OPTION = "trusted_targets"
# The config groups whose bundled targets a saved model may name (its net, optimizer, scheduler and data).
MODEL_GROUPS = ("model/components", "fixation", "model/optimizer", "model/scheduler", "data")
TORCH_SCHEDULERS = (torch.optim.lr_scheduler.LRScheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)


class UntrustedTarget(ConfigError):
    """Saved state names code that is neither neurov1's own nor trusted by the user; nothing was imported."""


def _qualified_names(objects: Iterable[Any], public_module: str | None = None) -> set[str]:
    """``module.Name`` of each class, under its defining module and (if given) the module that re-exports it."""
    names = set()
    for obj in objects:
        names.add(f"{obj.__module__}.{obj.__qualname__}")
        if public_module:
            names.add(f"{public_module}.{obj.__qualname__}")
    return names


@functools.cache
def neurov1_targets() -> frozenset[str]:
    """The targets of neurov1's own components, backbones and bundled model and data configs."""
    import neurov1.components
    from neurov1.models.backbones import BUILT_IN

    components = [getattr(neurov1.components, name) for name in neurov1.components.__all__]
    names = _qualified_names(components, "neurov1.components")
    names |= _qualified_names((type(adapter) for adapter in BUILT_IN), "neurov1.models")
    for group in MODEL_GROUPS:
        for option in group_options(group):
            names |= {target for _, target in config_targets(load_option(group, option))}
    return frozenset(names)


def _is_torch_optimization(target: str) -> bool:
    """``torch.optim.<Optimizer>`` or ``torch.optim.lr_scheduler.<Scheduler>`` (attributes of modules torch has
    already imported; nothing is imported to tell)."""
    if target.startswith("torch.optim.lr_scheduler."):
        name = target.removeprefix("torch.optim.lr_scheduler.")
        found = getattr(torch.optim.lr_scheduler, name, None) if name in torch.optim.lr_scheduler.__all__ else None
        return isinstance(found, type) and issubclass(found, TORCH_SCHEDULERS)
    if target.startswith("torch.optim."):
        name = target.removeprefix("torch.optim.")
        found = getattr(torch.optim, name, None) if name in torch.optim.__all__ else None
        return isinstance(found, type) and issubclass(found, torch.optim.Optimizer)
    return False


def is_trusted(target: str, trusted: Iterable[str] = ()) -> bool:
    """Whether ``target`` is neurov1's own, a torch optimizer or scheduler, or (below) an entry of ``trusted``."""
    if target in neurov1_targets() or _is_torch_optimization(target):
        return True
    return any(target == entry or target.startswith(f"{entry}.") for entry in map(str, trusted) if entry)


def config_targets(node: Any, key: str = "") -> Iterator[tuple[str, str]]:
    """``(key, target)`` of every ``_target_`` in a plain config (dicts and lists), and of ``net.backbone``."""
    if isinstance(node, Mapping):
        for name, value in node.items():
            path = f"{key}.{name}" if key else str(name)
            if name == "_target_" and isinstance(value, str):
                yield path, value
            elif name == "backbone" and isinstance(value, str) and value and key.endswith("net"):
                yield path, value
            else:
                yield from config_targets(value, path)
    elif isinstance(node, list | tuple):
        for index, value in enumerate(node):
            yield from config_targets(value, f"{key}[{index}]")


def composed_targets(cfg: Any) -> list[str]:
    """The targets of a composed run config (what the user selected for this run) and its ``trusted_targets``."""
    plain = OmegaConf.to_container(cfg, resolve=False) if OmegaConf.is_config(cfg) else cfg
    targets = [target for _, target in config_targets(plain) if "${" not in target]
    return [*targets, *map(str, plain.get(OPTION) or [])]


def check_saved_targets(saved: Mapping[str, Any], source: str, trusted: Iterable[str] = ()) -> None:
    """:class:`UntrustedTarget` for the first target of ``saved`` (e.g. a checkpoint's hyperparameters) that is not
    trusted; ``source`` names the file for the message. Nothing is imported."""
    trusted = list(trusted)
    for key, target in config_targets(saved):
        if not is_trusted(target, trusted):
            raise UntrustedTarget(
                f"{source}: {key} is {target!r}, which is neither neurov1's own code nor a target you trust; "
                f"neurov1 does not import or run code named by a file. If you trust where this file comes from, "
                f"add {OPTION}=[{target}] (Python: {OPTION}=[{target!r}])."
            )
