"""Shared behaviour of the ``python -m neurov1.<verb>`` entry points."""

import contextlib
import difflib
import importlib.util
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from neurov1.errors import ConfigError, RunError, one_line
from neurov1.utils.config import config_dir
from neurov1.utils.io import check_writable

log = logging.getLogger(__name__)

MULTIRUN_FLAGS = ("-m", "--multirun")


def searchpath_folders(arguments: list[str]) -> list[Path]:
    """The config folders a ``hydra.searchpath=[file://...,pkg://...]`` override adds."""
    value = override_value(arguments, "hydra.searchpath") or ""
    folders = []
    for entry in (item.strip().strip("'\"") for item in value.strip("[]").split(",") if item.strip()):
        if entry.startswith("file://"):
            folders.append(Path(entry.removeprefix("file://")))
        elif entry.startswith("pkg://"):
            spec = importlib.util.find_spec(entry.removeprefix("pkg://").replace("/", "."))
            folders += [Path(location) for location in (spec.submodule_search_locations or [])] if spec else []
    return folders


def check_component_choices(arguments: list[str]) -> None:
    """Refuse unknown ``model/components`` options on the command line with the list of valid ones.

    Hydra would only say it "could not load" the file; this names the option, the closest valid one and all. The
    options are neurov1's and those of the config folders ``hydra.searchpath`` adds (components of your own).
    """
    folders = [config_dir(), *searchpath_folders(arguments)]
    groups = [folder.joinpath("model", "components") for folder in folders]
    available = sorted(
        {entry.name.removesuffix(".yaml") for group in groups if group.is_dir() for entry in group.iterdir()}
        - {"__init__.py"}
    )
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


def override_value(arguments: list[str], key: str) -> str | None:
    """The value the command line gives ``key`` (``key=value``, also with ``+`` or ``++``), or None."""
    for argument in arguments:
        name, separator, value = argument.partition("=")
        if separator and name.lstrip("+") == key:
            return value
    return None


def check_output_folder(arguments: list[str]) -> None:
    """ConfigError before Hydra starts when the folder it would create the run in cannot be written.

    (Hydra itself would fail with a traceback when creating the run folder.)
    """
    multirun = any(argument in MULTIRUN_FLAGS for argument in arguments)
    folder_key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    folder = override_value(arguments, folder_key)
    if folder is None:
        folder_key = "paths.log_dir"
        folder = override_value(arguments, folder_key) or os.environ.get("NEUROV1_LOG_DIR", "outputs")
    if "${" not in folder:
        check_writable(folder.strip("'\""), folder_key)


def _log_traceback_to_files(error: BaseException) -> None:
    """The full traceback of ``error`` into the run's log file only (the console gets one line)."""
    record = log.makeRecord(
        log.name, logging.ERROR, __file__, 0, "Traceback:", (), (type(error), error, error.__traceback__)
    )
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


@contextlib.contextmanager
def errors_exit() -> Iterator[None]:
    """Turn a :class:`RunError` into one ``<Type>: ...`` line and exit status 1; the traceback goes to the log file."""
    try:
        yield
    except RunError as error:
        message = one_line(error)
        if logging.getLogger().handlers:  # the run's log (before Hydra starts, only the exit message says it)
            log.error("%s: %s", type(error).__name__, message)
            _log_traceback_to_files(error)
        raise SystemExit(f"{type(error).__name__}: {message}") from None


def run(main: Callable[[], object], rewrite: Callable[[list[str]], list[str]] | None = None) -> None:
    """Check the command line (``rewrite`` it first, e.g. to resume in a run's folder), then call a Hydra main."""
    with errors_exit():
        check_component_choices(sys.argv[1:])
        if rewrite is not None:
            sys.argv[1:] = rewrite(sys.argv[1:])
        check_output_folder(sys.argv[1:])
    main()
