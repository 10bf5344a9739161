"""One writer per run folder: a lock that the process writing a run folder holds for its whole life.

The lock is an advisory POSIX record lock (``fcntl.lockf``) on ``<folder>/.neurov1.lock``. It belongs to the process
that took it, not to its children: data-loader workers forked by the run do not inherit it, so the lock ends with the
run even while a killed run's workers are still winding down. The kernel releases it whenever its holder ends, by any
means (``kill -9`` and a lost node included), so a lock whose process is gone is simply taken over; a second run
that finds it held stops with one line naming the holder (pid, host, start time and command, which the holder writes
into the file). The file is removed when its holder lets go; a process that opened it just before checks after
locking that it still holds the file of that name, so two runs never both hold a folder.

Only the run's first process writes the folder: the other processes of a multi-process run (DDP ranks, which start
with a rank in their environment) do not take the lock. Where a filesystem offers no file locks at all, the run goes
on without a lock and says so. (A POSIX lock is dropped when its process closes any descriptor of the file, so the
holder never opens the lock file a second time.)
"""

import contextlib
import datetime
import errno
import fcntl
import json
import logging
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

from neurov1.errors import ConfigError

log = logging.getLogger(__name__)

LOCK_NAME = ".neurov1.lock"
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "SLURM_PROCID")
# The folders this process holds (a command takes its folder before Hydra starts, the run again inside it).
_held: dict[Path, int] = {}


def is_first_process() -> bool:
    """False in the second and later processes of a multi-process run (a rank above 0 in the environment)."""
    return all(os.environ.get(name, "0") in ("", "0") for name in RANK_VARIABLES)


def _holder() -> str:
    started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    command = " ".join([os.path.basename(sys.orig_argv[0]), *sys.orig_argv[1:]])
    return json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": started, "command": command})


def _describe_holder(path: Path) -> str:
    try:
        holder = json.loads(path.read_text())
        return f"pid {holder['pid']} on {holder['host']}, started {holder['started']}: {holder['command']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that has not named itself yet"


def _lock(path: Path, key: str) -> int | None:
    """An open, locked descriptor of ``path`` that is still that file's; None where file locks are unavailable."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(fd)
            if error.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                log.warning("%s: the filesystem offers no file locks; make sure no other run writes here", path.parent)
                return None
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raise ConfigError(
                f"{key}={path.parent}: another run is writing this folder ({_describe_holder(path)}). Wait for it to "
                f"end, or give this run a folder of its own (a new {key})."
            ) from None
        try:
            same_file = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same_file = False
        if same_file:  # (else its holder removed it between our open and lock: lock the new one)
            os.ftruncate(fd, 0)
            os.write(fd, _holder().encode())
            return fd
        os.close(fd)


@contextlib.contextmanager
def hold_run_folder(folder: str | os.PathLike[str], key: str = "hydra.run.dir") -> Iterator[None]:
    """Hold ``folder`` for the block (created if needed); ConfigError naming ``key`` when another run holds it.

    Re-entrant within a process: a block inside another for the same folder holds nothing more.
    """
    folder = Path(folder).expanduser().absolute()
    if folder in _held or not is_first_process():
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    fd = _lock(path, key)
    if fd is not None:
        _held[folder] = fd
    try:
        yield
    finally:
        if fd is not None:
            del _held[folder]
            path.unlink(missing_ok=True)
            os.close(fd)
