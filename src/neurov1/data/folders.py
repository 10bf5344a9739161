"""Image-folder listing, layout and decode checks, and dataset/loader plumbing shared by the data modules."""

import logging
import multiprocessing
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Sampler
from torchvision.datasets.folder import find_classes

from neurov1.data.boxes import located
from neurov1.data.sampling import SampleKey, sample_random_state, split_key
from neurov1.errors import ConfigError, check_int

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png")
VERIFY_MODES = ("none", "sample", "all")
ON_BAD_IMAGE = ("error", "skip")
# With data.on_bad_image=skip an unreadable image is replaced by the next one; this many in a row is a broken set.
MAX_CONSECUTIVE_UNREADABLE = 100
DECODE_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


def is_image_file(name: str) -> bool:
    """Whether a file name has an accepted image extension (case-insensitive)."""
    return name.lower().endswith(IMAGE_EXTENSIONS)


def root_path(root: str | os.PathLike | None, layout: str) -> Path:
    """Absolute data.root; ConfigError if it is unset or not an existing folder."""
    if root is None or str(root).strip() in ("", "???"):
        raise ConfigError(f"data.root is not set. Set data.root=<{layout}>.")
    path = Path(root).expanduser().absolute()
    if not path.is_dir():
        raise ConfigError(f"data.root: {path} does not exist or is not a folder. Set data.root=<{layout}>.")
    return path


def class_folders(split_dir: Path) -> list[str]:
    """The classes of a split folder: its sub-folders as torchvision's ``find_classes`` lists them (sorted), hidden
    ones (``.name``) left out; [] when there are none."""
    try:
        classes, _ = find_classes(split_dir)
    except FileNotFoundError:  # torchvision's "Couldn't find any class folder"
        return []
    return [name for name in classes if not name.startswith(".")]


def loose_image_count(folder: Path) -> int:
    """Number of image files lying directly in a folder."""
    with os.scandir(folder) as entries:
        return sum(1 for e in entries if e.is_file() and is_image_file(e.name))


def first_image(folder: Path) -> Path | None:
    """The first image file the directory listing yields (stops early: cheap on huge folders)."""
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_file() and is_image_file(entry.name):
                return Path(entry.path)
    return None


def list_images(folder: Path) -> list[str]:
    """Sorted names of the image files directly in a folder."""
    with os.scandir(folder) as entries:
        return sorted(e.name for e in entries if e.is_file() and is_image_file(e.name))


def class_images(split_dir: Path, wnids: Sequence[str], subfolder: str = "") -> tuple[list[str], list[int]]:
    """Paths (relative to split_dir) and labels of the images in each split_dir/<wnid>/<subfolder>, in wnid order."""
    paths, labels = [], []
    for label, wnid in enumerate(wnids):
        folder = os.path.join(wnid, subfolder)
        names = list_images(split_dir / folder)
        paths.extend(os.path.join(folder, name) for name in names)
        labels.extend([label] * len(names))
    return paths, labels


def check_choice(value: str, choices: Sequence[str], key: str, fix: str) -> str:
    """Return value if it is one of ``choices``, else raise a ConfigError naming ``key`` and ``fix``."""
    if value not in choices:
        raise ConfigError(f"{key}: {value!r} is not one of {', '.join(choices)}. {fix}")
    return value


def check_verify_mode(verify: str) -> str:
    """Return verify if it is a known mode, else raise ConfigError."""
    fix = "Set data.verify=sample (header check of one image per class), all, or none."
    return check_choice(verify, VERIFY_MODES, "data.verify", fix)


def check_on_bad_image(value: str) -> str:
    """Return value if it is a known policy for unreadable images, else raise ConfigError."""
    fix = "Set data.on_bad_image=error (stop there) or skip (train on the next image instead and count it)."
    return check_choice(value, ON_BAD_IMAGE, "data.on_bad_image", fix)


def verify_headers(paths: Iterable[Path]) -> int:
    """Check that each image's header decodes (PIL verify); return the count checked."""
    count = 0
    for path in paths:
        try:
            with Image.open(path) as image:
                image.verify()
        except DECODE_ERRORS as err:
            raise ConfigError(
                f"data.verify: {path} under data.root cannot be decoded ({type(err).__name__}: {err}). "
                "Remove or replace this file; data.verify=none skips this check."
            ) from err
        count += 1
    return count


def unreadable_image(path: str, error: BaseException) -> ConfigError:
    """The one-line error for an image that cannot be decoded."""
    return ConfigError(
        f"data.root: cannot decode image {path} ({type(error).__name__}: {error}). Remove or replace the file, "
        "or set data.on_bad_image=skip; data.verify=all finds every unreadable image before training."
    )


class ImageFileDataset(Dataset):
    """Labelled image files under one folder, indexed by position or by a training sampler's ``(index, seed)``.

    ``decode`` turns the opened (not yet decoded) image into the sample (:mod:`neurov1.data.decode`), with torch's
    RNG seeded by the sample's seed. Relative paths and labels are held in numpy arrays rather than Python lists, so
    forked DataLoader workers share them instead of copying them page by page through reference-count writes.

    ``points``: (N, 2) object centres in original pixels (NaN where unknown); a sample is then
    ``(image, label, center)`` with the centre mapped through its crop, flip and resize
    (:func:`neurov1.data.boxes.located`).

    ``skip_unreadable``: an image that cannot be decoded is replaced by the next readable one (with its label)
    instead of stopping the run; each is logged once and marked in a byte array shared with the DataLoader
    workers, so :meth:`unreadable_files` lists them in the main process.
    """

    def __init__(
        self,
        root: Path,
        relative_paths: Sequence[str],
        labels: Sequence[int],
        decode: Callable[[Image.Image], torch.Tensor],
        skip_unreadable: bool = False,
        points: np.ndarray | None = None,
    ) -> None:
        if len(relative_paths) != len(labels):
            raise ValueError(f"{len(relative_paths)} paths but {len(labels)} labels")
        self.root = root
        self.relative_paths = np.array([os.fsencode(p) for p in relative_paths], dtype=np.bytes_)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.decode = decode
        self.points = points  # (N, 2) object centres in original pixels (NaN: none): samples carry them mapped
        self.unreadable = multiprocessing.RawArray("B", len(self.labels)) if skip_unreadable else None

    def __len__(self) -> int:
        return len(self.labels)

    def path(self, index: int) -> str:
        """Full path of the image at index."""
        return os.path.join(self.root, os.fsdecode(self.relative_paths[index]))

    def __getitem__(self, key: int | SampleKey) -> tuple[torch.Tensor, int]:
        """The sample at the key's index or, when skipping unreadable files, at the next readable one."""
        index, seed = split_key(key)
        for _ in range(min(len(self), MAX_CONSECUTIVE_UNREADABLE)):
            path = self.path(index)
            try:
                with sample_random_state(seed), Image.open(path) as image:
                    if self.points is not None:
                        sample, center = located(self.decode, image, self.points[index])
                        return sample, int(self.labels[index]), center
                    return self.decode(image), int(self.labels[index])
            except DECODE_ERRORS as err:
                if self.unreadable is None:
                    raise unreadable_image(path, err) from err
                if not self.unreadable[index]:
                    self.unreadable[index] = 1
                    log.warning("data.on_bad_image=skip: %s", unreadable_image(path, err))
                index = (index + 1) % len(self)
        raise ConfigError(
            f"data.on_bad_image=skip: {MAX_CONSECUTIVE_UNREADABLE} images in a row before {self.path(index)} cannot "
            "be decoded; the data under data.root is damaged. Run with data.verify=all to list every unreadable file."
        )

    def unreadable_files(self) -> list[str]:
        """The files skipped so far as unreadable (by any worker)."""
        if self.unreadable is None:
            return []
        return [self.path(int(i)) for i in np.flatnonzero(np.frombuffer(self.unreadable, dtype=np.uint8))]


def check_loader_settings(batch_size: object, num_workers: object) -> None:
    """ConfigError for a non-positive batch size or a negative worker count."""
    check_int(batch_size, "data.batch_size", 128)
    check_int(num_workers, "data.num_workers", "0 (load in the main process) or up to the number of CPU cores", 0)


def check_train_size(train_size: int, batch_size: int, where: Path | str) -> None:
    """ConfigError when drop_last would leave no training batch."""
    if train_size < batch_size:
        raise ConfigError(
            f"data.batch_size: {batch_size} exceeds the {train_size} training images in {where}; with "
            f"drop_last there would be no batch. Set data.batch_size<={train_size} or add images."
        )


def make_loader(
    dataset: Dataset,
    batch_size: int,
    num_workers: int,
    pin_memory: bool,
    train: bool,
    sampler: Sampler | None = None,
) -> DataLoader:
    """drop_last loader for training, complete loader for evaluation; in ``sampler``'s order, else dataset order.

    The loader has a generator of its own, so starting its workers never draws from the global RNG (which a resumed
    run restores from its checkpoint).
    """
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        drop_last=train,
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=num_workers > 0,
        generator=torch.Generator(),
    )
