"""Atomic writes: a reader never sees a half-written file, and a kill or a full disk leaves the previous file intact.

The data goes to an anonymous file in the target's own folder (Linux ``O_TMPFILE``: the kernel frees it if the
process dies, so a ``kill -9`` leaves nothing behind), which is linked under a temporary name and renamed over the
target once complete. On filesystems without ``O_TMPFILE`` (e.g. NFS) a named temporary file in the same folder is
used instead; only a kill during the write can leave one behind (``.<name>.<random>.tmp``, removed by
:func:`remove_stale_temporaries` when the run resumes).
Files are created with the usual permissions of new files (``0o666`` less the umask: 0644 under umask 022), so
group members can read shared result folders. Since the temporary file lies in the target's folder, the rename is
atomic on every filesystem, local or network.
"""

import contextlib
import errno
import json
import math
import os
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from neurov1.errors import ConfigError, OutputWriteError

TEMPORARY_SUFFIX = ".tmp"
_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_PERMISSION = (errno.EROFS, errno.EACCES, errno.EPERM)


def default_cache_dir() -> Path:
    """``$NEUROV1_CACHE_DIR`` or ``<user cache dir>/neurov1`` (``~/.cache/neurov1`` on Linux)."""
    if "NEUROV1_CACHE_DIR" in os.environ:
        return Path(os.environ["NEUROV1_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "neurov1"


def new_file_mode() -> int:
    """Permissions of a newly created regular file under the current umask (0o644 under umask 022)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def _write_failure(path: Path | None, error: OSError) -> OutputWriteError:
    if error.errno in _ROOM:
        fix = "Free space on that filesystem, or write elsewhere (e.g. paths.log_dir=<a folder with room>)"
    elif error.errno in _PERMISSION:
        fix = "Write elsewhere (e.g. paths.log_dir=<a writable folder>) or make the folder writable"
    else:
        fix = "Check that folder and the filesystem it is on"
    name = errno.errorcode.get(error.errno, "error")
    if path is None:
        return OutputWriteError(f"cannot write an output file: {error.strerror or error} ({name}). {fix}.")
    return OutputWriteError(
        f"cannot write {path}: {error.strerror or error} ({name}). {fix}; a previous {path.name} is unchanged."
    )


def output_write_error(error: OSError) -> OutputWriteError | None:
    """The one-line error of an output that could not be written (full disk, quota, read-only folder), from a
    writer other than neurov1's (a logger's file); None for an OSError of another kind (a permission error may
    as well come from reading)."""
    if error.errno not in (*_ROOM, errno.EROFS):
        return None
    return _write_failure(Path(error.filename) if error.filename else None, error)


def temporary_name(path: Path) -> Path:
    """A fresh temporary name beside ``path`` (hidden, ``.tmp``), which :func:`remove_stale_temporaries` knows."""
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}{TEMPORARY_SUFFIX}")


def _open_anonymous(folder: Path) -> int | None:
    """An unnamed writable file in ``folder`` (O_TMPFILE), or None where the platform or filesystem has none."""
    if not hasattr(os, "O_TMPFILE") or not os.path.isdir("/proc/self/fd"):
        return None
    try:
        return os.open(folder, os.O_TMPFILE | os.O_WRONLY, new_file_mode())
    except OSError as error:
        if error.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT):
            return None
        raise


def _link_anonymous(fd: int, name: Path) -> Path:
    """Give the anonymous file ``fd`` the name ``name`` (in the folder it was opened in)."""
    folder = os.open(name.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:  # a folder fd makes os.link call linkat(..., AT_SYMLINK_FOLLOW), which follows the /proc magic link
        os.link(f"/proc/self/fd/{fd}", name.name, dst_dir_fd=folder, follow_symlinks=True)
    finally:
        os.close(folder)
    return name


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (ignored where a filesystem cannot sync folders)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike[str], sync: bool = True) -> Iterator[BinaryIO]:
    """A binary file handle whose content replaces ``path`` atomically when the block ends without error.

    ``sync``: flush the data (and the folder entry) to disk before and after the rename; off for bulk outputs that
    can be regenerated. An OSError (full disk, read-only folder, ...) becomes an :class:`OutputWriteError` naming
    the file; on any failure the previous file stays as it was and no temporary file remains.
    """
    path = Path(path)
    temporary: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = _open_anonymous(path.parent)
        if fd is None:
            temporary = temporary_name(path)
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, new_file_mode())
    except OSError as error:
        raise _write_failure(path, error) from error
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            if sync:
                os.fsync(handle.fileno())
            if temporary is None:
                temporary = _link_anonymous(handle.fileno(), temporary_name(path))
        os.replace(temporary, path)
        temporary = None
        if sync:
            _fsync_folder(path.parent)
    except OSError as error:
        raise _write_failure(path, error) from error
    finally:
        if temporary is not None:
            temporary.unlink(missing_ok=True)


def remove_stale_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete temporary files that a killed writer left in ``folder`` (only where no other writer can be active)."""
    folder = Path(folder)
    stale = sorted(folder.glob(f".*{TEMPORARY_SUFFIX}")) if folder.is_dir() else []
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes, sync: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_writer`)."""
    with atomic_writer(path, sync=sync) as handle:
        handle.write(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return write_bytes_atomic(path, text.encode())


def strict_json_value(value: Any) -> Any:
    """``value`` with numpy scalars as Python numbers and every NaN or infinity as None (JSON has neither)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: strict_json_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [strict_json_value(item) for item in value]
    return value


def write_json_atomic(path: str | os.PathLike[str], data: Any) -> Path:
    """Write ``data`` as indented, strict JSON (non-finite numbers become null), atomically."""
    text = json.dumps(strict_json_value(data), indent=2, sort_keys=False, default=str, allow_nan=False)
    return write_text_atomic(path, text + "\n")


def check_writable(folder: str | os.PathLike[str], key: str) -> Path:
    """Create ``folder`` if needed and make sure a file can be written in it; ConfigError naming ``key`` otherwise.

    The probe is an unnamed temporary file, removed at once, so nothing is left in the folder.
    """
    folder = Path(folder).expanduser().absolute()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as error:
        reason = error.strerror or str(error)
        raise ConfigError(f"{key}: cannot write to {folder} ({reason}). Set {key}=<a writable folder>.") from None
    return folder
