"""Logger factories with the fallbacks users expect on clusters and offline machines."""

import logging
import os
import socket
from pathlib import Path

from lightning.pytorch.loggers import WandbLogger

log = logging.getLogger(__name__)

WANDB_HOST = ("api.wandb.ai", 443)


def _wandb_online_reason() -> str | None:
    """None when W&B can run online, else why not (no API key, or the W&B server cannot be reached)."""
    has_key = bool(os.environ.get("WANDB_API_KEY"))
    netrc = Path.home() / ".netrc"
    if not has_key and not (netrc.is_file() and "api.wandb.ai" in netrc.read_text(errors="ignore")):
        return "no W&B API key (set WANDB_API_KEY or run `wandb login`)"
    try:
        socket.create_connection(WANDB_HOST, timeout=3).close()
    except OSError as error:
        return f"W&B server unreachable ({error})"
    return None


def wandb_logger(
    project: str,
    save_dir: str,
    name: str | None = None,
    tags: list[str] | None = None,
    group: str | None = None,
    entity: str | None = None,
    mode: str = "auto",
) -> WandbLogger:
    """A :class:`WandbLogger`; ``mode="auto"`` goes offline (sync later with ``wandb sync``) when online can't work."""
    mode = wandb_mode(mode, save_dir)
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    return WandbLogger(project=project, save_dir=save_dir, name=name, tags=tags, group=group, entity=entity, mode=mode)


def wandb_mode(mode: str, save_dir: str | Path, key: str = "logger.wandb.mode") -> str:
    """The W&B mode to use: ``auto`` becomes online, or offline (with the reason logged) when online can't work."""
    if mode not in ("auto", "online", "offline", "disabled"):
        raise ValueError(f"{key} must be auto, online, offline or disabled, got {mode!r}")
    if mode != "auto":
        return mode
    reason = _wandb_online_reason()
    if reason:
        log.warning("W&B runs offline: %s. Upload later with `wandb sync %s/wandb`.", reason, save_dir)
    return "offline" if reason else "online"
