"""Where neurov1's Hydra configs live, and reading one of their options outside a Hydra run."""

from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

CONFIG_DIR = Path(__file__).resolve().parents[3] / "conf"


def group_options(group: str) -> list[str]:
    """The option names of a config group (``model/components`` -> center_surround, ...), sorted."""
    return sorted(path.stem for path in (CONFIG_DIR / group).glob("*.yaml"))


def load_option(group: str, name: str) -> dict[str, Any] | None:
    """An option of a config group as a plain dict (its ``# @package`` header ignored), None if there is none."""
    path = CONFIG_DIR / group / f"{name}.yaml"
    return OmegaConf.to_container(OmegaConf.load(path), resolve=False) if path.is_file() else None
