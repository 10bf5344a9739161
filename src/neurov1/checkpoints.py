"""Reading what a checkpoint was built with, to refuse a resume with another model before any work starts."""

from pathlib import Path
from typing import Any

import torch

from neurov1.errors import ConfigError
from neurov1.models import validate_components


def checkpoint_net_config(path: str | Path, key: str = "ckpt_path") -> dict[str, Any]:
    """The ``net`` hyperparameters (arch, components, ...) stored in a neurov1 checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{key}={path}: no such checkpoint file. Point {key} at a .ckpt written by neurov1.train.")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    net = checkpoint.get("hyper_parameters", {}).get("net")
    if net is None:
        raise ConfigError(
            f"{key}={path}: not a neurov1 checkpoint (no hyper_parameters.net). Use best.ckpt or last.ckpt from "
            "a neurov1.train run directory."
        )
    return net


def _describe(net: dict[str, Any]) -> str:
    components = list(net.get("components") or {})
    return f"{net.get('arch')} with [{','.join(components)}]" if components else f"{net.get('arch')} baseline"


def check_checkpoint_matches(path: str | Path, net: dict[str, Any], key: str = "ckpt_path") -> None:
    """Raise :class:`ConfigError` when the checkpoint's architecture or components differ from ``net``."""
    stored = checkpoint_net_config(path, key)
    wanted = {**net, "components": validate_components(net.get("components") or {})}
    stored_components = validate_components(stored.get("components") or {})
    if stored.get("arch") != wanted.get("arch") or stored_components != wanted["components"]:
        names = ",".join(stored_components)
        selection = f"'+model/components=[{names}]'" if names else "no +model/components"
        raise ConfigError(
            f"{key}={path} was trained as {_describe(stored)} (parameters {stored_components}) but the config "
            f"builds {_describe(wanted)} (parameters {wanted['components']}). Resume with model.net.arch="
            f"{stored.get('arch')} and {selection}, or drop {key} to start a new run."
        )
