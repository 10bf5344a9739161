"""Process-level runtime settings used by the entry points: the compute device, CPU allocator tuning."""

import ctypes
import ctypes.util
import logging
import sys

import torch

from neurov1.errors import ConfigError

log = logging.getLogger(__name__)

# glibc mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_ONE_GIB = 1 << 30


def resolve_device(name: str, key: str) -> torch.device:
    """The device of config key ``key``: ``auto`` (CUDA when available, else the CPU), ``cpu``, ``cuda``, ``cuda:1``...

    ConfigError for a name torch does not know, or a CUDA device on a machine without one.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ConfigError(f"{key}={name!r}: {error}. Set {key}=auto, cpu or cuda.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{key}={name}: no CUDA device is available. Set {key}=auto or cpu.")
    return device


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
