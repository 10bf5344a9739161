"""Data path throughput per worker core: the paper's transforms, the fast folder path and the streaming store.

One process, one torch thread, as in one DataLoader worker: train samples (random crop and flip, with their
sample seeds) and validation samples (centre crop) of an ImageNet-style folder, decoded by ``data.decode=exact``,
by ``data.decode=fast`` and from a streaming store written from the same images. Without ``--root`` the folder is
built from scikit-image's photographs (:mod:`neurov1.data.synthetic`: 500 px JPEGs, quality 90). The paths are
timed in round-robin passes; the fastest pass of each counts.
"""

import hashlib
import time
from collections.abc import Callable, Iterable
from itertools import islice
from pathlib import Path
from typing import Any

import torch

from neurov1.data import ImageNetDataModule, ImageNetStreamDataModule
from neurov1.data.folders import class_folders, class_images
from neurov1.data.sampling import sample_seed
from neurov1.data.store import MANIFEST, write_store
from neurov1.data.synthetic import imagenet_like

LONG_SIDE = 320  # conf/prepare.yaml's default


def _subset(root: Path, split: str, classes: list[str], count: int) -> list[tuple[str, int]]:
    """``count`` images of a split spread evenly over its classes."""
    paths, labels = class_images(root / split, classes)
    step = max(1, len(paths) // count)
    return [(str(root / split / p), label) for p, label in list(zip(paths, labels, strict=True))[::step][:count]]


def build_inputs(root: Path | None, work: Path, images: int) -> tuple[Path, Path]:
    """The folder (built when ``root`` is None) and a streaming store of ``images`` of its train and val images."""
    if root is None:
        root = imagenet_like(
            work / "imagenet_like", classes=10, train_per_class=images // 10, val_per_class=images // 10
        )
    store = work / f"store-{hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:12]}-{images}"
    if not (store / MANIFEST).is_file() or '"complete": true' not in (store / MANIFEST).read_text():
        classes = class_folders(root / "train")
        splits = {split: _subset(root, split, classes, images) for split in ("train", "val")}
        write_store(store, root, classes, splits, LONG_SIDE, 90, images, 2, "64MB", skip_unreadable=False)
    return root, store


def images_per_second(samples: Iterable[Any], count: int) -> float:
    started = time.perf_counter()
    fetched = sum(1 for _ in islice(samples, count))
    return fetched / (time.perf_counter() - started)


def _folder(module: ImageNetDataModule, split: str, count: int) -> Iterable[Any]:
    dataset = getattr(module, f"{split}_dataset")
    indices = range(min(count, len(dataset)))
    return (dataset[(i, sample_seed(0, 0, i))] if split == "train" else dataset[i] for i in indices)


def data_rows(root: Path | None, work: Path, images: int, rounds: int) -> list[dict]:
    """images/s per core of each path, train and validation, with ratios to ``decode=exact``."""
    torch.set_num_threads(1)
    root, store = build_inputs(root, work, images)
    folders = {
        decode: ImageNetDataModule(root, decode=decode, num_workers=0, batch_size=1) for decode in ("exact", "fast")
    }
    stream = ImageNetStreamDataModule(str(store), num_workers=0, batch_size=1)
    for module in (*folders.values(), stream):
        module.setup("fit")
    sources: dict[str, Callable[[str], Iterable[Any]]] = {
        "folder, decode=exact": lambda split: _folder(folders["exact"], split, images),
        "folder, decode=fast": lambda split: _folder(folders["fast"], split, images),
        "streaming store": lambda split: iter(getattr(stream, f"{split}_dataset")),
    }
    best: dict[str, dict[str, float]] = {name: {"train": 0.0, "val": 0.0} for name in sources}
    for _ in range(rounds):
        for name, source in sources.items():
            for split in ("train", "val"):
                best[name][split] = max(best[name][split], images_per_second(source(split), images))
    exact = best["folder, decode=exact"]
    return [
        {
            "path": name,
            "train_per_core": rates["train"],
            "train_ratio": rates["train"] / exact["train"],
            "val_per_core": rates["val"],
            "val_ratio": rates["val"] / exact["val"],
        }
        for name, rates in best.items()
    ] + [{"root": str(root), "store": str(store), "images": images}]


def markdown(rows: list[dict]) -> str:
    setting = rows[-1]
    lines = [
        f"Data path, images/s per worker core (one process, one thread), {setting['images']} images of "
        f"{setting['root']}",
        "",
        "| path | train (img/s) | vs. exact | validation (img/s) | vs. exact |",
        "|---|---|---|---|---|",
        *[
            f"| {r['path']} | {r['train_per_core']:.0f} | {r['train_ratio']:.2f}x | {r['val_per_core']:.0f} | "
            f"{r['val_ratio']:.2f}x |"
            for r in rows[:-1]
        ],
    ]
    return "\n".join(lines) + "\n"
