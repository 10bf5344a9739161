"""Brain-Score's environment: caches outside the repository and no plugin installs at run time.

Brain-Score reads these variables when it is imported, so :func:`configure_brainscore` must run first; every
neurov1 module that touches ``brainscore_vision`` imports it through :func:`import_brainscore`.
"""

import importlib
import os
from pathlib import Path
from types import ModuleType

from neurov1.utils.io import default_cache_dir


def configure_brainscore(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Point Brain-Score's caches (BRAINIO_HOME, BRAINSCORE_HOME, RESULTCACHING_HOME) into ``cache_dir``.

    Also sets ``BS_INSTALL_DEPENDENCIES=no`` so loading a benchmark never pip-installs its plugin requirements.
    Variables the user already set are kept. Returns the Brain-Score cache folder.
    """
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    brainscore_dir = root / "brainscore"
    os.environ.setdefault("BS_INSTALL_DEPENDENCIES", "no")
    for variable, folder in (
        ("BRAINIO_HOME", "brainio"),
        ("BRAINSCORE_HOME", "brain-score"),
        ("RESULTCACHING_HOME", "result_caching"),
    ):
        os.environ.setdefault(variable, str(brainscore_dir / folder))
        Path(os.environ[variable]).mkdir(parents=True, exist_ok=True)
    return brainscore_dir


def import_brainscore(cache_dir: str | os.PathLike[str] | None = None) -> ModuleType:
    """Configure the environment, then import and return ``brainscore_vision``."""
    configure_brainscore(cache_dir)
    return importlib.import_module("brainscore_vision")
