"""Tiny-ImageNet (64x64) with validation labels read from val/val_annotations.txt."""

import logging
from pathlib import Path

from neurov1.data.base import ImageFolderDataModule
from neurov1.data.decode import ExactDecode
from neurov1.data.folders import ImageFileDataset, class_folders, class_images, first_image, list_images
from neurov1.data.transforms import (
    native_five_crop_transform,
    tiny_imagenet_train_transform,
    tiny_imagenet_val_transform,
)
from neurov1.errors import ConfigError

log = logging.getLogger(__name__)

LAYOUT = "folder holding train/, val/ and wnids.txt of tiny-imagenet-200"
RESTORE = "Re-extract it from tiny-imagenet-200.zip"


class TinyImageNetDataModule(ImageFolderDataModule):
    """Tiny-ImageNet: ``root/train/<wnid>/images/*.JPEG``, ``root/val/images`` and ``val_annotations.txt``.

    Class indices follow the sorted wnids of train/.
    """

    NAME = "Tiny-ImageNet"
    LAYOUT = LAYOUT

    _val_annotations: list[tuple[str, int]]  # (file name, label) per val image, set by _check_layout

    def _check_layout(self, root: Path) -> tuple[list[str], list[Path]]:
        """Check the folders, wnids.txt and val annotations (kept); returns the wnids and one image per class."""
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
        self._val_annotations = self._read_annotations(val_dir, wnids)
        first_val_images = {}
        for name, label in self._val_annotations:
            first_val_images.setdefault(label, val_dir / "images" / name)
        return wnids, train_samples + list(first_val_images.values())

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

    def _all_images(self, root: Path, wnids: list[str]) -> list[Path]:
        """Every train image, then every annotated val image."""
        train_paths, _ = class_images(root / "train", wnids, "images")
        val_images = [root / "val" / "images" / name for name, _ in self._val_annotations]
        return [root / "train" / path for path in train_paths] + val_images

    def _dataset(self, split: str) -> ImageFileDataset:
        """Train: the images of the class folders; val: the annotated images."""
        if split == "train":
            folder = self.root / "train"
            paths, labels = class_images(folder, self._class_names, "images")
            transform = tiny_imagenet_train_transform(self.image_size, self.mean, self.std)
        else:
            folder = self.root / "val" / "images"
            paths, labels = zip(*self._val_annotations, strict=True)
            transform = (native_five_crop_transform if self.five_crop else tiny_imagenet_val_transform)(
                self.image_size, self.mean, self.std
            )
        log.info("Tiny-ImageNet %s: %d images", split, len(paths))
        return ImageFileDataset(folder, paths, labels, ExactDecode(transform), self.on_bad_image == "skip")
