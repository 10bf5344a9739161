"""ImageNet (ILSVRC-2012) from the full-resolution JPEG folders, trained at 64x64 as in the paper."""

import logging
import os
from collections.abc import Callable
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
    loose_image_count,
    make_loader,
    root_path,
    verify_images,
)
from neurov1.data.transforms import ChannelStat, imagenet_train_transform, imagenet_val_transform, per_channel
from neurov1.errors import ConfigError

log = logging.getLogger(__name__)

LAYOUT = "folder holding train/ and val/"
SPLITS = ("train", "val")


class ImageNetDataModule(L.LightningDataModule):
    """ImageNet from ``root/{train,val}/<wnid>/*.JPEG``; class indices follow the sorted wnids of train/."""

    def __init__(
        self,
        root: str | os.PathLike,
        batch_size: int = 128,
        num_workers: int = 8,
        pin_memory: bool = False,
        image_size: int = 64,
        mean: ChannelStat = 0.5,
        std: ChannelStat = 0.5,
        train_crop: int = 224,
        val_resize: int = 256,
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
        self.train_crop = train_crop
        self.val_resize = val_resize
        self.verify = verify
        self.root: Path | None = None
        self._class_names: list[str] | None = None
        self.train_dataset: ImageFileDataset | None = None
        self.val_dataset: ImageFileDataset | None = None

    @property
    def class_names(self) -> list[str]:
        """Sorted wnids of train/ (validates the layout on first use)."""
        self.validate()
        return list(self._class_names)

    @property
    def num_classes(self) -> int:
        """Number of class folders in train/."""
        return len(self.class_names)

    def validate(self) -> None:
        """Check settings, folder layout and (per ``verify``) image headers; raise ConfigError if bad."""
        if self._class_names is not None:
            return
        check_loader_settings(self.batch_size, self.num_workers)
        check_positive_int(self.image_size, "data.image_size", 64)
        check_positive_int(self.train_crop, "data.train_crop", 224)
        check_positive_int(self.val_resize, "data.val_resize", 256)
        if self.val_resize < self.train_crop:
            raise ConfigError(
                f"data.val_resize: {self.val_resize} is smaller than data.train_crop={self.train_crop}; "
                "the val centre crop would be padded. Set data.val_resize=256 with data.train_crop=224."
            )
        per_channel(self.mean, "data.mean")
        per_channel(self.std, "data.std")
        check_verify_mode(self.verify)
        root = root_path(self.root_setting, LAYOUT)
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
        samples = self._first_images(train_dir, train_classes) + self._first_images(val_dir, train_classes)
        if self.verify == "sample":
            verify_images(samples)
        elif self.verify == "all":
            verify_images(
                root / split / wnid / name
                for split in SPLITS
                for wnid in train_classes
                for name in list_images(root / split / wnid)
            )
        self.root = root
        self._class_names = train_classes
        log.info("ImageNet at %s: %d classes (verify=%s)", root, len(train_classes), self.verify)

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

    def setup(self, stage: str | None = None) -> None:
        """Validate, then list the image files of the splits the stage needs."""
        self.validate()
        if stage in (None, "fit") and self.train_dataset is None:
            transform = imagenet_train_transform(self.image_size, self.train_crop, self.mean, self.std)
            self.train_dataset = self._dataset("train", transform)
            check_train_size(len(self.train_dataset), self.batch_size, self.root / "train")
        if self.val_dataset is None:
            transform = imagenet_val_transform(self.image_size, self.val_resize, self.train_crop, self.mean, self.std)
            self.val_dataset = self._dataset("val", transform)

    def _dataset(self, split: str, transform: Callable) -> ImageFileDataset:
        """All images of a split, labelled by the class order of train/."""
        paths, labels = [], []
        for label, wnid in enumerate(self._class_names):
            names = list_images(self.root / split / wnid)
            paths.extend(f"{wnid}/{name}" for name in names)
            labels.extend([label] * len(names))
        log.info("ImageNet %s: %d images", split, len(paths))
        return ImageFileDataset(self.root / split, paths, labels, transform)

    def train_dataloader(self) -> DataLoader:
        """Shuffled training batches (drop_last)."""
        if self.train_dataset is None:
            self.setup("fit")
        return make_loader(self.train_dataset, self.batch_size, self.num_workers, self.pin_memory, train=True)

    def val_dataloader(self) -> DataLoader:
        """Validation batches in file order."""
        if self.val_dataset is None:
            self.setup("validate")
        return make_loader(self.val_dataset, self.batch_size, self.num_workers, self.pin_memory, train=False)
