"""Shared behaviour of the ``python -m neurov1.<verb>`` entry points."""

import contextlib
import difflib
import logging
import os
import sys
from collections.abc import Callable, Iterator

from hydra import initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import HydraException, MissingConfigException

from neurov1.errors import ConfigError, RunError, one_line
from neurov1.models.sites import GROUP
from neurov1.utils.config import CONFIG_PACKAGE
from neurov1.utils.io import check_writable

log = logging.getLogger(__name__)

MULTIRUN_FLAGS = ("-m", "--multirun")


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
    """Check the command line (``rewrite`` it first, e.g. to resume in a run's folder), then call a Hydra main.

    Hydra's own errors (a config or option it cannot load, an override it cannot apply) reach this function
    (``HYDRA_FULL_ERROR``) and end the command with one line, as every neurov1 error does.
    """
    with errors_exit():
        if rewrite is not None:
            sys.argv[1:] = rewrite(sys.argv[1:])
        check_output_folder(sys.argv[1:])
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    with errors_exit():
        try:
            main()
        except HydraException as error:
            option = isinstance(error, MissingConfigException) and unknown_option(error, sys.argv[1:])
            if option:
                raise option from None
            cause = f" ({one_line(error.__cause__)})" if error.__cause__ else ""
            raise SystemExit(f"{type(error).__name__}: {one_line(error)}{cause}") from None
