"""Shared behaviour of the ``python -m neurov1.<verb>`` entry points."""

import contextlib
import difflib
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator
from typing import Any

from hydra import initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException, MissingConfigException, OverrideParseException

from neurov1.errors import ConfigError, RunError, one_line
from neurov1.models.sites import GROUP
from neurov1.utils.config import CONFIG_PACKAGE
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


def unknown_option(error: MissingConfigException, arguments: list[str]) -> ConfigError | None:
    """Hydra's "could not load <group>/<name>" as one line naming the option, the closest valid one and all.

    The options are those Hydra lists for the group: neurov1's and those of the config folders the command line's
    ``hydra.searchpath`` adds (components of your own).
    """
    group, _, name = (error.missing_cfg_file or "").rpartition("/")
    if not group:
        return None
    searchpath = [argument for argument in arguments if argument.lstrip("+").startswith("hydra.searchpath=")]
    with initialize_config_module(CONFIG_PACKAGE, version_base="1.3"):
        available = GlobalHydra.instance().config_loader().get_group_options(group, overrides=searchpath)
    close = difflib.get_close_matches(name, available, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    several = " Select several as '+model/components=[center_surround,tuned_norm]'." if group == GROUP else ""
    return ConfigError(f"{group}: unknown option {name!r}.{hint} Available: {', '.join(available)}.{several}")


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
    Hydra's own errors (a config or option it cannot load, an override it cannot apply) reach this function
    (``HYDRA_FULL_ERROR``) and end the command with one line, as every neurov1 error does.
    """
    # A log line that cannot be written (its file on a full disk) is dropped rather than printed with a traceback
    # for every line: the run's own outputs report the disk in one OutputWriteError line.
    logging.raiseExceptions = False
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    with contextlib.ExitStack() as held, errors_exit():
        if rewrite is not None:
            sys.argv[1:] = rewrite(sys.argv[1:])
        check_output_folder(sys.argv[1:])
        key, folder = run_folder_override(sys.argv[1:])
        if folder is not None:
            held.enter_context(hold_run_folder(folder, key))
        try:
            main()
        except HydraException as error:
            option = isinstance(error, MissingConfigException) and unknown_option(error, sys.argv[1:])
            if option:
                raise option from None
            cause = f" ({one_line(error.__cause__)})" if error.__cause__ else ""
            raise SystemExit(f"{type(error).__name__}: {one_line(error)}{cause}") from None
