"""Tiny-ImageNet-C style corrupted copies of an image folder, written in parallel and resumably.

Every (corruption, severity) of an image goes to ``<dst>/<corruption>/<severity>/<class>/<stem>.JPEG`` at JPEG
quality 85 (the Tiny-ImageNet-C convention), the clean image optionally to ``<dst>/clean/<class>/<stem>.JPEG``.
Each output's randomness is seeded from (seed, corruption, severity, class, image position in its class), so the
files are the same whatever the number of workers; files are written atomically and existing ones are skipped.
The command is ``python -m neurov1.corrupt``.
"""

import contextlib
import io
import multiprocessing
import os
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageOps
from tqdm import tqdm

from neurov1.data.folders import DECODE_ERRORS, IMAGE_EXTENSIONS, class_folders
from neurov1.data.image_corruptions import CORRUPTIONS, corrupt
from neurov1.utils.io import write_bytes_atomic

JPEG_QUALITY = 85
CLEAN_FOLDER = "clean"
# The demo data's validation split, as documented for DemoDataModule.
DEMO_SETTINGS = {"num_classes": 10, "val_per_class": 40, "seed": 0}


@dataclass(frozen=True)
class SourceImage:
    """One clean image: its class, file stem, position (for seeding) and either its file or its pixels."""

    class_name: str
    stem: str
    class_index: int
    index_in_class: int
    path: Path | None = None
    pixels: np.ndarray | None = None  # HxWx3 uint8


@dataclass(frozen=True)
class Settings:
    """What to write for every image."""

    dst: Path
    conditions: tuple[tuple[str, int], ...]  # (corruption, severity)
    seed: int
    size: int
    with_clean: bool


class Summary(NamedTuple):
    written: int
    skipped: int
    seconds: float


class UnreadableImageError(Exception):
    """A source image that cannot be decoded (raised in a worker, reported by main)."""


def list_source(src: Path, dst: Path, limit: int | None) -> list[SourceImage]:
    """The images of ``src/<class>/`` (or ``src/<class>/images/``), sorted; SystemExit if there are none."""
    layout = "<src>/<class>/*.JPEG (e.g. an ImageNet val folder or Tiny-ImageNet's train folder)"
    if not src.is_dir():
        raise SystemExit(f"corrupt: source folder {src} does not exist. Pass a folder laid out as {layout}, or --demo.")
    if dst.resolve().is_relative_to(src.resolve()):
        raise SystemExit(f"corrupt: output folder {dst} lies inside the source folder {src}. Choose a dst outside it.")
    classes = class_folders(src)
    if not classes:
        raise SystemExit(f"corrupt: {src} has no class folders. Lay it out as {layout}.")
    images = []
    for class_index, class_name in enumerate(classes):
        folder = src / class_name
        if not _image_names(folder) and (folder / "images").is_dir():
            folder = folder / "images"
        names = _image_names(folder)[:limit]
        stems = [Path(name).stem for name in names]
        if len(set(stems)) < len(stems):
            raise SystemExit(
                f"corrupt: {folder} holds several images with the same name but different extensions; their outputs "
                "would overwrite each other. Rename or remove the duplicates."
            )
        images.extend(
            SourceImage(class_name, stem, class_index, index, path=folder / name)
            for index, (stem, name) in enumerate(zip(stems, names, strict=True))
        )
    if not images:
        raise SystemExit(
            f"corrupt: the class folders of {src} (e.g. {src / classes[0]}) hold no {'/'.join(IMAGE_EXTENSIONS)} "
            f"images. Lay it out as {layout}."
        )
    return images


def demo_source(limit: int | None) -> list[SourceImage]:
    """The demo data's validation crops (64x64), ``<class>_<index>`` named."""
    from neurov1.data import DemoDataModule  # imports torch: only for --demo

    data = DemoDataModule(**DEMO_SETTINGS)
    data.setup()
    pixels = data.val_dataset.images.permute(0, 2, 3, 1).numpy()
    labels = data.val_dataset.labels.tolist()
    images, counts = [], [0] * len(data.class_names)
    for crop, label in zip(pixels, labels, strict=True):
        index = counts[label]
        counts[label] += 1
        if limit is None or index < limit:
            name = data.class_names[label]
            images.append(SourceImage(name, f"{name}_{index:03d}", label, index, pixels=crop))
    return images


def check_writable(dst: Path) -> None:
    """SystemExit unless files can be created in ``dst`` (created if missing)."""
    try:
        dst.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=dst):
            pass
    except OSError as error:
        raise SystemExit(
            f"corrupt: cannot write to the output folder {dst} ({error.strerror or error}). "
            "Pass a dst you can write to, or fix its permissions."
        ) from None


def output_path(settings: Settings, image: SourceImage, condition: tuple[str, int] | None) -> Path:
    """Where an image's corrupted copy (condition) or clean copy (None) goes."""
    folder = settings.dst / CLEAN_FOLDER if condition is None else settings.dst / condition[0] / str(condition[1])
    return folder / image.class_name / f"{image.stem}.JPEG"


def write_image_copies(image: SourceImage, settings: Settings) -> tuple[int, int]:
    """Write the missing outputs of one image; return the (written, skipped) counts."""
    conditions = ([None] if settings.with_clean else []) + list(settings.conditions)
    missing = []
    for condition in conditions:
        path = output_path(settings, image, condition)
        if not path.exists():
            missing.append((condition, path))
    if not missing:
        return 0, len(conditions)
    pixels = load_image(image, settings.size)
    for condition, path in missing:
        if condition is None:
            write_jpeg_atomic(path, pixels)
            continue
        corruption, severity = condition
        entropy = [settings.seed, CORRUPTIONS.index(corruption), severity, image.class_index, image.index_in_class]
        write_jpeg_atomic(path, corrupt(pixels, corruption, severity, np.random.default_rng(entropy)))
    return len(missing), len(conditions) - len(missing)


def load_image(image: SourceImage, size: int) -> np.ndarray:
    """The image as RGB uint8, fitted to size x size (shorter side resized, bicubic, then centre-cropped)."""
    if image.pixels is not None:
        picture = Image.fromarray(image.pixels)
    else:
        try:
            with Image.open(image.path) as opened:
                picture = opened.convert("RGB")
        except DECODE_ERRORS as error:
            raise UnreadableImageError(
                f"corrupt: cannot read {image.path} ({error}). Remove or replace it and rerun; the outputs "
                "written so far are kept."
            ) from None
    if picture.size != (size, size):
        picture = ImageOps.fit(picture, (size, size), method=Image.Resampling.BICUBIC)
    return np.asarray(picture)


def write_jpeg_atomic(path: Path, pixels: np.ndarray) -> None:
    """Write a JPEG (quality 85) through a temporary file and a rename, so no reader sees a partial file."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=JPEG_QUALITY)
    write_bytes_atomic(path, buffer.getvalue(), sync=False)  # tens of thousands of files, rebuilt if lost


@contextlib.contextmanager
def image_results(images: list[SourceImage], settings: Settings, workers: int) -> Iterator[Iterator[tuple[int, int]]]:
    """(written, skipped) per image as each finishes, from ``workers`` processes (from this one if 1)."""
    if workers == 1:
        yield (write_image_copies(image, settings) for image in images)
        return
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(write_image_copies, image, settings) for image in images]
        try:
            yield (future.result() for future in as_completed(futures))
        finally:
            pool.shutdown(cancel_futures=True)


def generate(images: list[SourceImage], settings: Settings, workers: int) -> Summary:
    """Write all outputs, with a progress bar (rate and ETA)."""
    start = time.perf_counter()
    written = skipped = 0
    total = len(images) * (len(settings.conditions) + settings.with_clean)
    with (
        tqdm(total=total, unit="img", desc="corrupt", dynamic_ncols=True) as bar,
        image_results(images, settings, workers) as results,
    ):
        try:
            for image_written, image_skipped in results:
                written, skipped = written + image_written, skipped + image_skipped
                bar.update(image_written + image_skipped)
        except UnreadableImageError as error:
            raise SystemExit(str(error)) from None
        except KeyboardInterrupt:
            raise SystemExit(
                "corrupt: interrupted. Rerun the same command to resume; finished files are kept."
            ) from None
    return Summary(written, skipped, time.perf_counter() - start)


def _image_names(folder: Path) -> list[str]:
    with os.scandir(folder) as entries:
        return sorted(e.name for e in entries if e.is_file() and e.name.lower().endswith(IMAGE_EXTENSIONS))
