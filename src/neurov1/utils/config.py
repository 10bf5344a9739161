"""Where neurov1's Hydra configs live, and reading one of their options outside a Hydra run.

They are the package ``neurov1.conf`` (the repository's ``conf/``, mapped into the package when it is built or
installed), so every command finds them from any folder: ``config_path=CONFIG_PATH`` in ``hydra.main``.
"""

from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

from omegaconf import OmegaConf

CONFIG_PACKAGE = "neurov1.conf"
CONFIG_PATH = f"pkg://{CONFIG_PACKAGE}"


def config_dir() -> Traversable:
    """The folder of the configs (``neurov1.conf``)."""
    return files(CONFIG_PACKAGE)


def group_options(group: str) -> list[str]:
    """The option names of a config group (``model/components`` -> center_surround, ...), sorted."""
    folder = config_dir().joinpath(group)
    return sorted(entry.name.removesuffix(".yaml") for entry in folder.iterdir() if entry.name.endswith(".yaml"))


def load_option(group: str, name: str) -> dict[str, Any] | None:
    """An option of a config group as a plain dict (its ``# @package`` header ignored), None if there is none."""
    entry = config_dir().joinpath(group, f"{name}.yaml")
    return OmegaConf.to_container(OmegaConf.create(entry.read_text()), resolve=False) if entry.is_file() else None
