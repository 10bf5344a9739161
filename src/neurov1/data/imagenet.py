"""ImageNet (ILSVRC-2012) from the full-resolution JPEG folders, trained at 64x64 as in the paper."""

import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from neurov1.data.base import ImageFolderDataModule
from neurov1.data.boxes import centers_of, read_boxes
from neurov1.data.decode import ExactDecode, FastCenterCrops, FastTrainCrop
from neurov1.data.folders import (
    ImageFileDataset,
    check_choice,
    class_folders,
    class_images,
    first_image,
    loose_image_count,
)
from neurov1.data.transforms import (
    imagenet_five_crop_transform,
    imagenet_train_transform,
    imagenet_val_transform,
)
from neurov1.errors import ConfigError, check_int

log = logging.getLogger(__name__)

LAYOUT = "folder holding train/ and val/"
SPLITS = ("train", "val")
DECODE_MODES = ("fast", "exact")


class ImageNetDataModule(ImageFolderDataModule):
    """ImageNet from ``root/{train,val}/<wnid>/*.JPEG``; class indices follow the sorted wnids of train/."""

    NAME = "ImageNet"
    LAYOUT = LAYOUT

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        train_crop: int = 224,
        val_resize: int = 256,
        decode: str = "fast",
        boxes: str | os.PathLike | None = None,
        **settings: Any,
    ) -> None:
        """``train_crop``/``val_resize``: the paper's 224/256 crops; ``decode``: ``fast`` (the crop box decoded at a
        reduced DCT scale straight to the output size, uint8 out of the workers) or ``exact`` (the paper's reference
        transforms), see :mod:`neurov1.data.decode`; ``boxes``: a folder with the ILSVRC2012 localisation files
        (``LOC_train_solution.csv``, ``LOC_val_solution.csv``): every sample then also carries its object's centre
        mapped through its crop, flip and resize (:mod:`neurov1.data.boxes`; NaN without a box); ``settings``: those
        of ImageFolderDataModule."""
        super().__init__(root, **settings)
        self.boxes = boxes
        self._centers: dict[str, tuple[float, float]] | None = None
        self.train_crop = train_crop
        self.val_resize = val_resize
        self.decode = decode

    def _check_settings(self) -> None:
        """Also check the crop and resize sizes."""
        super()._check_settings()
        check_int(self.train_crop, "data.train_crop", 224)
        check_int(self.val_resize, "data.val_resize", 256)
        check_choice(
            self.decode,
            DECODE_MODES,
            "data.decode",
            "Set data.decode=fast (default) or exact (the paper's transforms).",
        )
        if self.val_resize < self.train_crop:
            raise ConfigError(
                f"data.val_resize: {self.val_resize} is smaller than data.train_crop={self.train_crop}; "
                "the val centre crop would be padded. Set data.val_resize=256 with data.train_crop=224."
            )

    def _check_layout(self, root: Path) -> tuple[list[str], list[Path]]:
        """Both splits need the same non-empty <wnid>/ folders; returns the wnids and one image per folder."""
        for split in SPLITS:
            if not (root / split).is_dir():
                raise ConfigError(
                    f"data.root: {root / split} is missing; ImageNet needs {root}/train/<wnid>/*.JPEG and "
                    f"{root}/val/<wnid>/*.JPEG. Set data.root=<{LAYOUT}>."
                )
        train_dir, val_dir = root / "train", root / "val"
        train_classes = class_folders(train_dir)
        if not train_classes:
            raise self._no_class_folders(train_dir)
        val_classes = class_folders(val_dir)
        loose_val_images = loose_image_count(val_dir)
        if loose_val_images and val_classes != train_classes:
            raise ConfigError(
                f"data.root: {val_dir} holds {loose_val_images} images directly instead of in <wnid>/ class "
                "folders: the ImageNet validation set has not been re-foldered. Sort the val images into "
                "val/<wnid>/ folders using the devkit ground truth (e.g. the widely used valprep.sh, or "
                "LOC_val_solution.csv of the Kaggle release), then rerun."
            )
        if not val_classes:
            raise self._no_class_folders(val_dir)
        if val_classes != train_classes:
            missing = sorted(set(train_classes) - set(val_classes))
            extra = sorted(set(val_classes) - set(train_classes))
            raise ConfigError(
                f"data.root: the class folders of {val_dir} differ from those of {train_dir}: "
                f"{len(missing)} missing in val {missing[:5]}, {len(extra)} only in val {extra[:5]}. "
                "Both splits need the same <wnid>/ folders; re-extract the missing classes or point "
                f"data.root at a complete copy ({LAYOUT})."
            )
        if loose_val_images:
            log.warning("Ignoring %d images lying directly in %s", loose_val_images, val_dir)
        return train_classes, self._first_images(train_dir, train_classes) + self._first_images(val_dir, train_classes)

    @staticmethod
    def _no_class_folders(split_dir: Path) -> ConfigError:
        return ConfigError(
            f"data.root: {split_dir} has no class folders; expected {split_dir}/<wnid>/*.JPEG. "
            f"Set data.root=<{LAYOUT}>."
        )

    @staticmethod
    def _first_images(split_dir: Path, wnids: list[str]) -> list[Path]:
        """One image per class folder; ConfigError for a class folder without images."""
        images = []
        for wnid in wnids:
            image = first_image(split_dir / wnid)
            if image is None:
                raise ConfigError(
                    f"data.root: class folder {split_dir / wnid} has no images (.JPEG/.jpg/.png). Restore "
                    "its images, or remove this class from both train/ and val/."
                )
            images.append(image)
        return images

    def _all_images(self, root: Path, wnids: list[str]) -> Iterator[Path]:
        """Every image of both splits, split by split."""
        for split in SPLITS:
            paths, _ = class_images(root / split, wnids)
            yield from (root / split / path for path in paths)

    def _dataset(self, split: str) -> ImageFileDataset:
        """All images of a split, labelled by the class order of train/."""
        paths, labels = class_images(self.root / split, self._class_names)
        log.info("ImageNet %s: %d images (decode=%s)", split, len(paths), self.decode)
        skip = self.on_bad_image == "skip"
        points = None
        if self.boxes:
            if self._centers is None:
                self._centers = read_boxes(self.boxes)
            points = centers_of(paths, self._centers)
            known = int(np.isfinite(points[:, 0]).sum())
            log.info("ImageNet %s: object boxes for %d of %d images", split, known, len(paths))
        return ImageFileDataset(self.root / split, paths, labels, self._decoder(split), skip, points)

    def _decoder(self, split: str) -> Callable:
        size, crop, resize = self.image_size, self.train_crop, self.val_resize
        if self.decode == "fast":
            if split == "train":  # the box does not depend on train_crop: the 224 px intermediate is skipped
                return FastTrainCrop(size)
            return FastCenterCrops(size, resize, crop, five_crop=self.five_crop)
        if split == "train":
            return ExactDecode(imagenet_train_transform(size, crop, self.mean, self.std), FastTrainCrop(size).geometry)
        transform = imagenet_five_crop_transform if self.five_crop else imagenet_val_transform
        geometry = FastCenterCrops(size, resize, crop, five_crop=self.five_crop).geometry
        return ExactDecode(transform(size, resize, crop, self.mean, self.std), geometry)
