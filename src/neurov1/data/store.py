"""The streaming store: an ImageNet-style folder in LitData's optimized chunk format, for clusters.

Reading 1.28 million small files over a shared filesystem stalls multi-node runs; a store holds the same images in
a few hundred large chunk files that LitData's ``StreamingDataset`` streams from a local disk or an object store
(``s3://...``). Written by ``python -m neurov1.prepare`` (:func:`write_store`):

- ``store.json``: the source folder, the classes (wnids, in label order: the sorted train folders, as the folder
  data modules number them), the encoding (long side, JPEG quality), the image counts, the unreadable files;
- ``train/``, ``val/``: LitData datasets (``index.json`` and ``chunk-*.bin``) whose items are
  ``{"image": JPEG bytes, "label": int, "width": int, "height": int}``: each image re-encoded with its longer side
  at most ``long_side`` pixels, and the width and height of the original, on which the training crop box is drawn
  (:mod:`neurov1.data.decode`), so samples keep the full-size image's crop distribution.

Writing is split into shards of ``shard_size`` images, each written by ``litdata.optimize`` (in parallel, over
``workers`` processes) into ``.parts/<split>-<shard>/`` and marked done; a killed run restarts only its unfinished
shards. When every shard of a split is done its chunks are moved into the split folder under one ``index.json``.
"""

import functools
import io
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from PIL import Image
from tqdm import tqdm

from neurov1.data.folders import DECODE_ERRORS
from neurov1.errors import ConfigError
from neurov1.utils.io import write_json_atomic, write_text_atomic

log = logging.getLogger(__name__)

MANIFEST = "store.json"
PARTS = ".parts"
DONE = "DONE"
UNREADABLE = "unreadable.txt"
INDEX = "index.json"  # LitData's index of a dataset's chunks
SPLITS = ("train", "val")
Sample = tuple[str, int]  # (image path, label)


def encode(path: str, long_side: int, quality: int) -> bytes:
    """The image at ``path`` as RGB JPEG bytes, its longer side reduced to ``long_side`` (never enlarged)."""
    with Image.open(path) as image:
        width, height = image.size
        scale = min(1.0, long_side / max(width, height))
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image.draft("RGB", (2 * size[0], 2 * size[1]))  # a JPEG at a DCT scale still >= twice the target size
        rgb = image.convert("RGB")
        if rgb.size != size:
            rgb = rgb.resize(size, Image.Resampling.LANCZOS)
        encoded = io.BytesIO()
        rgb.save(encoded, format="JPEG", quality=quality)
    return encoded.getvalue()


def _record(sample: Sample, long_side: int, quality: int, unreadable: str) -> Any:
    """litdata.optimize's function: yields the stored item of one image (nothing for an unreadable one)."""
    path, label = sample
    try:
        with Image.open(path) as image:
            width, height = image.size
        data = encode(path, long_side, quality)
    except DECODE_ERRORS as error:
        with open(unreadable, "a") as file:  # one short append per line: safe from several processes
            file.write(f"{path}\t{type(error).__name__}: {error}\n")
        return
    # id: the file's stem (the ImageId of the ILSVRC2012 localisation files: data.boxes)
    yield {"image": data, "label": label, "width": width, "height": height, "id": Path(path).stem}


def _write_shard(
    folder: Path, samples: list[Sample], long_side: int, quality: int, workers: int, chunk_bytes: str
) -> None:
    import litdata

    if folder.exists():  # a shard a killed run left unfinished: start it again
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    record = functools.partial(_record, long_side=long_side, quality=quality, unreadable=str(folder / UNREADABLE))
    litdata.optimize(
        record,
        inputs=samples,
        output_dir=str(folder / "data"),
        chunk_bytes=chunk_bytes,
        num_workers=max(1, min(workers, len(samples))),
        reorder_files=False,
        verbose=False,
    )
    write_text_atomic(folder / DONE, f"{len(samples)}\n")


def _unreadable(parts: list[Path]) -> list[str]:
    return [
        line for part in parts if (part / UNREADABLE).is_file() for line in (part / UNREADABLE).read_text().splitlines()
    ]


def _assemble(split_dir: Path, parts: list[Path]) -> int:
    """Move the chunks of the done shards into ``split_dir`` under one LitData index; returns the item count.

    Idempotent: a kill during the moves is finished by the next run (the index is written last).
    """
    indexes = [json.loads((part / "data" / INDEX).read_text()) for part in parts if (part / "data" / INDEX).is_file()]
    split_dir.mkdir(parents=True, exist_ok=True)
    chunks = []
    for number, (part, index) in enumerate(zip(parts, indexes, strict=True)):
        for chunk in index["chunks"]:
            name = f"part{number:05d}-{chunk['filename']}"
            source, target = part / "data" / chunk["filename"], split_dir / name
            if source.is_file():
                os.replace(source, target)
            chunks.append({**chunk, "filename": name})
    write_json_atomic(split_dir / INDEX, {"config": indexes[0]["config"], "chunks": chunks})
    return sum(chunk["chunk_size"] for chunk in chunks)


def write_store(
    out: Path,
    source: Path,
    classes: list[str],
    splits: dict[str, list[Sample]],
    long_side: int,
    quality: int,
    shard_size: int,
    workers: int,
    chunk_bytes: str,
    skip_unreadable: bool,
) -> dict[str, Any]:
    """Write (or finish writing) the store of ``splits`` into ``out``; returns its manifest (also ``store.json``).

    ConfigError if ``out`` holds a store of other settings, or (unless ``skip_unreadable``) for unreadable images,
    named with a file listing all of them; the shards already written are kept either way.
    """
    settings = {"source": str(source), "classes": classes, "long_side": long_side, "quality": quality}
    manifest_path = out / MANIFEST
    if manifest_path.is_file():
        earlier = json.loads(manifest_path.read_text())
        if {key: earlier.get(key) for key in settings} != settings:
            raise ConfigError(
                f"out={out} holds a store written with other settings ({manifest_path}). Choose another out= "
                "folder, or delete this one to write it again."
            )
    write_json_atomic(manifest_path, {**settings, "complete": False})
    counts, unreadable = {}, []
    for split, samples in splits.items():
        shards = [samples[start : start + shard_size] for start in range(0, len(samples), shard_size)]
        parts = [out / PARTS / f"{split}-{number:05d}" for number in range(len(shards))]
        todo = [(part, shard) for part, shard in zip(parts, shards, strict=True) if not (part / DONE).is_file()]
        if (out / split / INDEX).is_file() and not (out / PARTS).is_dir():
            todo = []  # assembled by an earlier run
        with tqdm(total=len(samples), unit="img", desc=f"prepare {split}") as progress:
            progress.update(len(samples) - sum(len(shard) for _, shard in todo))
            for part, shard in todo:
                _write_shard(part, shard, long_side, quality, workers, chunk_bytes)
                progress.update(len(shard))
        bad = _unreadable(parts)
        if bad and not skip_unreadable:
            listing = write_text_atomic(out / f"{split}-{UNREADABLE}", "\n".join(bad) + "\n")
            raise ConfigError(
                f"prepare: {len(bad)} images under {source / split} cannot be decoded, e.g. {bad[0].split(chr(9))[0]}; "
                f"all are listed in {listing}. Remove or replace them and run again (finished shards are kept), or "
                "set data.on_bad_image=skip to store the others."
            )
        counts[split] = _assemble(out / split, parts) if parts else 0
        unreadable += bad
    shutil.rmtree(out / PARTS, ignore_errors=True)
    manifest = {**settings, "counts": counts, "unreadable": unreadable, "complete": True}
    write_json_atomic(manifest_path, manifest)
    return manifest


def _read_remote(url: str) -> str:
    """A small file of an object store (``s3://...``), through LitData's own filesystem layer."""
    from litdata.streaming.fs_provider import _get_fs_provider

    with tempfile.TemporaryDirectory() as folder:
        local = os.path.join(folder, "file")
        _get_fs_provider(url, {}).download_file(url, local)
        return Path(local).read_text()


def read_manifest(root: str, key: str = "data.root") -> dict[str, Any]:
    """The ``store.json`` of a store in a local folder or an object store; ConfigError if there is none."""
    if "://" in root:
        text = _read_remote(f"{root.rstrip('/')}/{MANIFEST}")
    else:
        path = Path(root).expanduser() / MANIFEST
        if not path.is_file():
            raise ConfigError(
                f"{key}: {root} is not a neurov1 store (no {MANIFEST}). Write one with python -m neurov1.prepare "
                f"data=imagenet data.root=<ImageNet folder> out={root}."
            )
        text = path.read_text()
    manifest = json.loads(text)
    if not manifest.get("complete"):
        raise ConfigError(
            f"{key}: the store {root} is incomplete; finish it by running the same neurov1.prepare again."
        )
    return manifest
