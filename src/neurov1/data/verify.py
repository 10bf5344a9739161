"""``data.verify=all``: decode every image of a dataset completely, in parallel, and remember what was verified.

A header check (``verify=sample``) misses truncated files, which only fail when the pixels are decoded. Decoding
ImageNet's 1.3 million images takes minutes on a node, so the verified files are cached per dataset folder under
``<cache>/verified/`` (``data.verify_cache``, default ``$NEUROV1_CACHE_DIR`` or ``~/.cache/neurov1``) with their
size and modification time: a later run decodes only new or changed files. The cache is written as the work goes,
so an interrupted verification keeps what it had done.
"""

import hashlib
import json
import logging
import multiprocessing
import os
import time
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from neurov1.data.folders import DECODE_ERRORS
from neurov1.errors import ConfigError
from neurov1.utils.io import default_cache_dir, write_json_atomic, write_text_atomic

log = logging.getLogger(__name__)

CACHE_EVERY_S = 60.0  # how often the verified list is saved while decoding


def decode_failure(path: str) -> str | None:
    """None if the image at ``path`` decodes completely, else the reason."""
    try:
        with Image.open(path) as image:
            image.load()
    except DECODE_ERRORS as error:
        return f"{type(error).__name__}: {error}"
    return None


def _cache_file(root: Path, cache_dir: Path) -> Path:
    return cache_dir / "verified" / f"{hashlib.sha1(str(root).encode()).hexdigest()[:16]}.json"


def _load_cache(path: Path, root: Path) -> dict[str, list[int]]:
    try:
        cached = json.loads(path.read_text())
        return cached["files"] if cached.get("root") == str(root) else {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def verify_decodes(root: Path, paths: list[Path], workers: int, cache_dir: str | os.PathLike | None = None) -> int:
    """Decode every file of ``paths`` (below ``root``) not verified before; returns how many were decoded now.

    ``workers`` processes decode in parallel (at least one) with a progress bar. ConfigError naming the first
    unreadable files and a file listing all of them; the readable ones stay cached either way.
    """
    cache = _cache_file(root, Path(cache_dir) if cache_dir else default_cache_dir())
    known = _load_cache(cache, root)
    verified: dict[str, list[int]] = {}
    todo: list[tuple[Path, str, list[int]]] = []
    for path in paths:
        stat = path.stat()
        relative, signature = str(path.relative_to(root)), [stat.st_size, stat.st_mtime_ns]
        if known.get(relative) == signature:
            verified[relative] = signature
        else:
            todo.append((path, relative, signature))
    log.info(
        "data.verify=all: %d of %d images verified earlier (%s); decoding %d",
        len(verified),
        len(paths),
        cache,
        len(todo),
    )

    def save() -> None:
        write_json_atomic(cache, {"root": str(root), "files": verified})

    bad: list[tuple[Path, str]] = []
    saved_at = time.monotonic()
    with multiprocessing.Pool(max(1, workers)) as pool:
        failures = pool.imap(decode_failure, [str(path) for path, _, _ in todo], chunksize=32)
        for (path, relative, signature), failure in tqdm(
            zip(todo, failures, strict=True), total=len(todo), unit="img", desc="data.verify=all"
        ):
            if failure is None:
                verified[relative] = signature
            else:
                bad.append((path, failure))
            if time.monotonic() - saved_at > CACHE_EVERY_S:
                save()
                saved_at = time.monotonic()
    save()
    if bad:
        listing = write_text_atomic(cache.with_suffix(".unreadable.txt"), "".join(f"{p}\t{why}\n" for p, why in bad))
        first = "; ".join(f"{path} ({why})" for path, why in bad[:3])
        raise ConfigError(
            f"data.verify=all: {len(bad)} of {len(paths)} images under {root} cannot be decoded: {first}; all are "
            f"listed in {listing}. Remove or replace them, or train without them with data.on_bad_image=skip."
        )
    return len(todo)
