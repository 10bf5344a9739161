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
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import OverrideParseException

from neurov1.errors import ConfigError, RunError, one_line
from neurov1.utils.config import CONFIG_DIR
from neurov1.utils.folder_lock import hold_run_folder
from neurov1.utils.io import check_writable

log = logging.getLogger(__name__)

MULTIRUN_FLAGS = ("-m", "--multirun")


def parsed_overrides(arguments: list[str]) -> list[Override]:
    """The command line's overrides as Hydra parses them (flags and their values, and what Hydra cannot parse, are
    left to Hydra itself)."""
    parser = OverridesParser.create()
    overrides = []
    for argument in arguments:
        if argument.startswith("-") or ("=" not in argument and not argument.startswith("~")):
            continue
        with contextlib.suppress(OverrideParseException):
            overrides.extend(parser.parse_overrides([argument]))
    return overrides


def override_value(arguments: list[str], key: str) -> Any:
    """The value the command line gives ``key`` (``key=value``, also with ``+`` or ``++``; quotes removed), or None."""
    for override in parsed_overrides(arguments):
        if override.key_or_group == key and not override.is_delete():
            return override.value()
    return None


def hydra_quoted(text: str) -> str:
    """``text`` as a quoted Hydra override value (its quotes, and backslashes before them, escaped)."""
    return "'" + re.sub(r"(\\*)('|$)", lambda m: m.group(1) * 2 + ("\\'" if m.group(2) else ""), text) + "'"


def searchpath_folders(arguments: list[str]) -> list[Path]:
    """The config folders a ``hydra.searchpath=[file://...,pkg://...]`` override adds."""
    value = override_value(arguments, "hydra.searchpath") or []
    folders = []
    for entry in value if isinstance(value, list) else [value]:
        entry = str(entry)
        if entry.startswith("file://"):
            folders.append(Path(entry.removeprefix("file://")))
        elif entry.startswith("pkg://"):
            spec = importlib.util.find_spec(entry.removeprefix("pkg://").replace("/", "."))
            folders += [Path(location) for location in (spec.submodule_search_locations or [])] if spec else []
    return folders


def check_component_choices(arguments: list[str], config_dir: Path = CONFIG_DIR) -> None:
    """Refuse unknown ``model/components`` options on the command line with the list of valid ones.

    Hydra would only say it "could not load" the file; this names the option, the closest valid one and all. The
    options are neurov1's and those of the config folders ``hydra.searchpath`` adds (components of your own).
    """
    folders = [config_dir, *searchpath_folders(arguments)]
    available = sorted({path.stem for folder in folders for path in (folder / "model" / "components").glob("*.yaml")})
    for override in parsed_overrides(arguments):
        if override.key_or_group != "model/components" or override.is_delete() or override.is_sweep_override():
            continue
        value = override.value()
        for name in value if isinstance(value, list) else [value]:
            name = str(name).strip()
            if name and name not in available:
                close = difflib.get_close_matches(name, available, n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise ConfigError(
                    f"model/components: unknown option {name!r}.{hint} Available: {', '.join(available)}. "
                    "Select several as '+model/components=[center_surround,tuned_norm]'."
                )


def is_multirun(arguments: list[str]) -> bool:
    return any(argument in MULTIRUN_FLAGS for argument in arguments)


def run_folder_override(arguments: list[str]) -> tuple[str, str | None]:
    """The key of the folder Hydra creates for this command (``hydra.run.dir``, or ``hydra.sweep.dir`` for a
    multirun) and its value when the command line sets it plainly (no interpolation), else None."""
    key = "hydra.sweep.dir" if is_multirun(arguments) else "hydra.run.dir"
    folder = override_value(arguments, key)
    return key, str(folder) if folder is not None and "${" not in str(folder) else None


def check_output_folder(arguments: list[str]) -> None:
    """ConfigError before Hydra starts when the folder it would create the run in cannot be written.

    (Hydra itself would fail with a traceback when creating the run folder.)
    """
    folder_key, folder = run_folder_override(arguments)
    if folder is None and override_value(arguments, folder_key) is None:
        folder_key = "paths.log_dir"
        folder = str(override_value(arguments, folder_key) or os.environ.get("NEUROV1_LOG_DIR", "outputs"))
    if folder is not None and "${" not in folder:
        check_writable(folder, folder_key)


def _log_to_files(error: RunError, message: str) -> None:
    """The one-line error and its full traceback into the run's log file only (the console gets the line once, as
    the exit message)."""
    record = log.makeRecord(
        log.name,
        logging.ERROR,
        __file__,
        0,
        "%s: %s",
        (type(error).__name__, message),
        (type(error), error, error.__traceback__),
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
        _log_to_files(error, message)
        raise SystemExit(f"{type(error).__name__}: {message}") from None


def run(main: Callable[[], object], rewrite: Callable[[list[str]], list[str]] | None = None) -> None:
    """Check the command line (``rewrite`` it first, e.g. to resume in a run's folder), then call a Hydra main.

    A folder the command line names for the run (``hydra.run.dir``, or ``hydra.sweep.dir``) is held from before Hydra
    writes into it (:func:`neurov1.utils.folder_lock.hold_run_folder`): a second run there is refused at once.
    """
    # A log line that cannot be written (its file on a full disk) is dropped rather than printed with a traceback
    # for every line: the run's own outputs report the disk in one OutputWriteError line.
    logging.raiseExceptions = False
    with contextlib.ExitStack() as held:
        with errors_exit():
            check_component_choices(sys.argv[1:])
            if rewrite is not None:
                sys.argv[1:] = rewrite(sys.argv[1:])
            check_output_folder(sys.argv[1:])
            key, folder = run_folder_override(sys.argv[1:])
            if folder is not None:
                held.enter_context(hold_run_folder(folder, key))
        main()
