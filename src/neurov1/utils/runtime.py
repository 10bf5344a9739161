"""Process-level CPU runtime tuning used by the entry points."""

import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger(__name__)

# glibc mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_ONE_GIB = 1 << 30


def keep_large_allocations_in_heap() -> bool:
    """Let glibc serve and keep large blocks in its heap instead of fresh ``mmap`` pages.

    By default glibc maps every block above 32 MiB anew and unmaps it on free, so a tensor of that size created
    every training step (e.g. the 38 MB weight gradient of the locally connected layer) is page-faulted in again
    each time; on CPU that costs more than the matrix product producing it. Raising the mmap and trim thresholds
    (the same as ``MALLOC_MMAP_THRESHOLD_``/``MALLOC_TRIM_THRESHOLD_``) keeps such blocks for reuse. Returns
    whether the setting took effect (False on non-glibc systems).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        applied = bool(libc.mallopt(_M_MMAP_THRESHOLD, _ONE_GIB) and libc.mallopt(_M_TRIM_THRESHOLD, _ONE_GIB))
    except (OSError, AttributeError):
        return False
    log.debug("glibc mallopt: large allocations kept in the heap: %s", applied)
    return applied
