"""Shared behaviour of the ``python -m neurov1.<verb>`` entry points."""

import contextlib
import difflib
import logging
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from neurov1.errors import ConfigError

log = logging.getLogger(__name__)

CONFIG_DIR = Path(__file__).resolve().parents[3] / "conf"


def check_component_choices(arguments: list[str], config_dir: Path = CONFIG_DIR) -> None:
    """Refuse unknown ``model/components`` options on the command line with the list of valid ones.

    Hydra would only say it "could not load" the file; this names the option, the closest valid one and all.
    """
    available = sorted(path.stem for path in (config_dir / "model" / "components").glob("*.yaml"))
    for argument in arguments:
        key, _, value = argument.partition("=")
        if key.lstrip("+~") != "model/components" or not value or value.startswith(("glob(", "choice(", "range(")):
            continue
        for name in re.split(r"[\[\],]", value):
            name = name.strip()
            if name and name not in available:
                close = difflib.get_close_matches(name, available, n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise ConfigError(
                    f"model/components: unknown option {name!r}.{hint} Available: {', '.join(available)}. "
                    "Select several as '+model/components=[center_surround,tuned_norm]'."
                )


@contextlib.contextmanager
def config_errors_exit() -> Iterator[None]:
    """Turn a :class:`ConfigError` into one ``ConfigError: ...`` line and exit status 1, without a traceback."""
    try:
        yield
    except ConfigError as error:
        log.error("%s", error)
        raise SystemExit(f"ConfigError: {error}") from None


def run(main: Callable[[], object]) -> None:
    """Check the command line, then call a ``@hydra.main`` function."""
    with config_errors_exit():
        check_component_choices(sys.argv[1:])
    main()
