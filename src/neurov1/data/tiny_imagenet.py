"""Tiny-ImageNet (64x64) with validation labels read from val/val_annotations.txt."""

import logging
import os
from pathlib import Path

import lightning as L
from torch.utils.data import DataLoader

from neurov1.data.folders import (
    ImageFileDataset,
    check_loader_settings,
    check_positive_int,
    check_train_size,
    check_verify_mode,
    class_folders,
    first_image,
    list_images,
    make_loader,
    root_path,
    verify_images,
)
from neurov1.data.transforms import (
    ChannelStat,
    per_channel,
    tiny_imagenet_train_transform,
    tiny_imagenet_val_transform,
)
from neurov1.errors import ConfigError

log = logging.getLogger(__name__)

LAYOUT = "folder holding train/, val/ and wnids.txt of tiny-imagenet-200"
RESTORE = "Re-extract it from tiny-imagenet-200.zip"


class TinyImageNetDataModule(L.LightningDataModule):
    """Tiny-ImageNet: ``root/train/<wnid>/images/*.JPEG``, ``root/val/images`` and ``val_annotations.txt``.

    Class indices follow the sorted wnids of train/.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        batch_size: int = 128,
        num_workers: int = 8,
        pin_memory: bool = False,
        image_size: int = 64,
        mean: ChannelStat = 0.5,
        std: ChannelStat = 0.5,
        verify: str = "sample",
    ) -> None:
        super().__init__()
        self.root_setting = root
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.image_size = image_size
        self.mean = mean
        self.std = std
        self.verify = verify
        self.root: Path | None = None
        self._class_names: list[str] | None = None
        self._val_annotations: list[tuple[str, int]] = []
        self.train_dataset: ImageFileDataset | None = None
        self.val_dataset: ImageFileDataset | None = None

    @property
    def class_names(self) -> list[str]:
        """Sorted wnids of train/ (validates the layout on first use)."""
        self.validate()
        return list(self._class_names)

    @property
    def num_classes(self) -> int:
        """Number of class folders in train/ (200 for the real set)."""
        return len(self.class_names)

    def validate(self) -> None:
        """Check settings, folder layout, val annotations and (per ``verify``) image headers."""
        if self._class_names is not None:
            return
        check_loader_settings(self.batch_size, self.num_workers)
        check_positive_int(self.image_size, "data.image_size", 64)
        per_channel(self.mean, "data.mean")
        per_channel(self.std, "data.std")
        check_verify_mode(self.verify)
        root = root_path(self.root_setting, LAYOUT)
        train_dir, val_dir = root / "train", root / "val"
        for folder in (train_dir, val_dir / "images"):
            if not folder.is_dir():
                raise ConfigError(
                    f"data.root: {folder} is missing; Tiny-ImageNet needs {root}/train/<wnid>/images/*.JPEG, "
                    f"{root}/val/images/*.JPEG and {root}/val/val_annotations.txt. {RESTORE} or set "
                    f"data.root=<{LAYOUT}>."
                )
        wnids = class_folders(train_dir)
        if not wnids:
            raise ConfigError(
                f"data.root: {train_dir} has no class folders; expected {train_dir}/<wnid>/images/*.JPEG. "
                f"Set data.root=<{LAYOUT}>."
            )
        train_samples = [self._first_train_image(train_dir / wnid) for wnid in wnids]
        self._check_wnids_file(root / "wnids.txt", wnids)
        annotations = self._read_annotations(val_dir, wnids)
        if self.verify == "sample":
            first_val_images = {}
            for name, label in annotations:
                first_val_images.setdefault(label, val_dir / "images" / name)
            verify_images(train_samples + list(first_val_images.values()))
        elif self.verify == "all":
            verify_images(
                train_dir / wnid / "images" / name
                for wnid in wnids
                for name in list_images(train_dir / wnid / "images")
            )
            verify_images(val_dir / "images" / name for name, _ in annotations)
        self.root = root
        self._val_annotations = annotations
        self._class_names = wnids
        log.info("Tiny-ImageNet at %s: %d classes (verify=%s)", root, len(wnids), self.verify)

    @staticmethod
    def _first_train_image(class_dir: Path) -> Path:
        """One image of a train class; ConfigError if images/ is missing or empty."""
        images_dir = class_dir / "images"
        image = first_image(images_dir) if images_dir.is_dir() else None
        if image is None:
            raise ConfigError(
                f"data.root: train class folder {class_dir} has no images in {images_dir} (.JPEG/.jpg/.png). "
                f"{RESTORE}, or remove the class folder."
            )
        return image

    @staticmethod
    def _check_wnids_file(wnids_file: Path, wnids: list[str]) -> None:
        """If wnids.txt exists, its wnids must be exactly the train class folders."""
        if not wnids_file.is_file():
            return
        listed = {line.strip() for line in wnids_file.read_text().splitlines() if line.strip()}
        if listed != set(wnids):
            missing = sorted(listed - set(wnids))
            unlisted = sorted(set(wnids) - listed)
            raise ConfigError(
                f"data.root: {wnids_file} disagrees with the class folders of {wnids_file.parent / 'train'}: "
                f"{len(missing)} listed without a folder {missing[:5]}, {len(unlisted)} folders not listed "
                f"{unlisted[:5]}. {RESTORE} so that train/ and wnids.txt match."
            )

    @staticmethod
    def _read_annotations(val_dir: Path, wnids: list[str]) -> list[tuple[str, int]]:
        """(file name, label) per line of val_annotations.txt, checked against train classes and files."""
        annotations_file = val_dir / "val_annotations.txt"
        if not annotations_file.is_file():
            raise ConfigError(
                f"data.root: {annotations_file} is missing; Tiny-ImageNet val labels are read from it. "
                f"{RESTORE} (data.root=<{LAYOUT}>)."
            )
        label_of = {wnid: label for label, wnid in enumerate(wnids)}
        val_images = set(list_images(val_dir / "images"))
        annotations = []
        for line_number, line in enumerate(annotations_file.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            fields = line.split("\t")
            where = f"data.root: {annotations_file} line {line_number}"
            if len(fields) < 2 or not fields[0].strip() or not fields[1].strip():
                raise ConfigError(
                    f"{where} is malformed: expected tab-separated "
                    f"'file<TAB>wnid<TAB>x0<TAB>y0<TAB>x1<TAB>y1', got {line!r}. {RESTORE}."
                )
            name, wnid = fields[0].strip(), fields[1].strip()
            if wnid not in label_of:
                raise ConfigError(
                    f"{where} names wnid {wnid!r}, which has no class folder in {val_dir.parent / 'train'}. "
                    f"{RESTORE} so that train/ holds every annotated class."
                )
            if name not in val_images:
                raise ConfigError(
                    f"{where} names {val_dir / 'images' / name}, which does not exist. {RESTORE}, or delete the line."
                )
            annotations.append((name, label_of[wnid]))
        if not annotations:
            raise ConfigError(f"data.root: {annotations_file} lists no images. {RESTORE}.")
        unlabelled = len(val_images) - len({name for name, _ in annotations})
        if unlabelled:
            log.warning("Ignoring %d images in %s without an annotation", unlabelled, val_dir / "images")
        return annotations

    def setup(self, stage: str | None = None) -> None:
        """Validate, then list the train images and build the annotated val set."""
        self.validate()
        if stage in (None, "fit") and self.train_dataset is None:
            paths, labels = [], []
            for label, wnid in enumerate(self._class_names):
                names = list_images(self.root / "train" / wnid / "images")
                paths.extend(f"{wnid}/images/{name}" for name in names)
                labels.extend([label] * len(names))
            transform = tiny_imagenet_train_transform(self.image_size, self.mean, self.std)
            self.train_dataset = ImageFileDataset(self.root / "train", paths, labels, transform)
            check_train_size(len(paths), self.batch_size, self.root / "train")
            log.info("Tiny-ImageNet train: %d images", len(paths))
        if self.val_dataset is None:
            names, labels = zip(*self._val_annotations, strict=True)
            transform = tiny_imagenet_val_transform(self.image_size, self.mean, self.std)
            self.val_dataset = ImageFileDataset(self.root / "val" / "images", names, labels, transform)
            log.info("Tiny-ImageNet val: %d images", len(names))

    def train_dataloader(self) -> DataLoader:
        """Shuffled training batches (drop_last)."""
        if self.train_dataset is None:
            self.setup("fit")
        return make_loader(self.train_dataset, self.batch_size, self.num_workers, self.pin_memory, train=True)

    def val_dataloader(self) -> DataLoader:
        """Validation batches in annotation order."""
        if self.val_dataset is None:
            self.setup("validate")
        return make_loader(self.val_dataset, self.batch_size, self.num_workers, self.pin_memory, train=False)
