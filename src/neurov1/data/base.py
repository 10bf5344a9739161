"""Base data modules: loader settings and dataloaders, and the validate/setup flow of the image-folder sets."""

import logging
import os
from collections.abc import Iterable
from pathlib import Path

import lightning as L
from torch.utils.data import DataLoader, Dataset

from neurov1.data.folders import (
    ImageFileDataset,
    check_loader_settings,
    check_train_size,
    check_verify_mode,
    make_loader,
    root_path,
    verify_images,
)
from neurov1.data.transforms import ChannelStat, per_channel
from neurov1.errors import check_int

log = logging.getLogger(__name__)


class BaseDataModule(L.LightningDataModule):
    """Loader and image settings and the dataloaders; subclasses fill train_dataset and val_dataset in setup()."""

    def __init__(
        self,
        batch_size: int,
        num_workers: int,
        pin_memory: bool,
        image_size: int,
        mean: ChannelStat,
        std: ChannelStat,
        five_crop: bool = False,
    ) -> None:
        super().__init__()
        self.five_crop = five_crop  # validation images as (5, C, H, W): four corners and the centre
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.image_size = image_size
        self.mean = mean
        self.std = std
        self.train_dataset: Dataset | None = None
        self.val_dataset: Dataset | None = None

    def _check_settings(self) -> None:
        """ConfigError for a bad batch size, worker count, image size, mean or std."""
        check_loader_settings(self.batch_size, self.num_workers)
        check_int(self.image_size, "data.image_size", 64)
        per_channel(self.mean, "data.mean")
        per_channel(self.std, "data.std")

    def train_dataloader(self) -> DataLoader:
        """Shuffled training batches (drop_last)."""
        if self.train_dataset is None:
            self.setup("fit")
        return make_loader(self.train_dataset, self.batch_size, self.num_workers, self.pin_memory, train=True)

    def val_dataloader(self) -> DataLoader:
        """Validation batches in dataset order."""
        if self.val_dataset is None:
            self.setup("validate")
        return make_loader(self.val_dataset, self.batch_size, self.num_workers, self.pin_memory, train=False)


class ImageFolderDataModule(BaseDataModule):
    """Image files under ``root`` whose classes are the sorted wnid folders of ``root/train``.

    Subclasses name the set (NAME, LAYOUT) and implement _check_layout, _all_images and _dataset.
    """

    NAME = ""
    LAYOUT = ""

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
        five_crop: bool = False,
    ) -> None:
        super().__init__(batch_size, num_workers, pin_memory, image_size, mean, std, five_crop)
        self.root_setting = root
        self.verify = verify
        self.root: Path | None = None
        self._class_names: list[str] | None = None

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
        self._check_settings()
        check_verify_mode(self.verify)
        root = root_path(self.root_setting, self.LAYOUT)
        wnids, samples = self._check_layout(root)
        if self.verify == "sample":
            verify_images(samples)
        elif self.verify == "all":
            verify_images(self._all_images(root, wnids))
        self.root = root
        self._class_names = wnids
        log.info("%s at %s: %d classes (verify=%s)", self.NAME, root, len(wnids), self.verify)

    def setup(self, stage: str | None = None) -> None:
        """Validate, then list the images of the splits the stage needs."""
        self.validate()
        if stage in (None, "fit") and self.train_dataset is None:
            self.train_dataset = self._dataset("train")
            check_train_size(len(self.train_dataset), self.batch_size, self.root / "train")
        if self.val_dataset is None:
            self.val_dataset = self._dataset("val")

    def _check_layout(self, root: Path) -> tuple[list[str], list[Path]]:
        """The sorted train wnids and the images that verify=sample checks; ConfigError for a bad layout."""
        raise NotImplementedError

    def _all_images(self, root: Path, wnids: list[str]) -> Iterable[Path]:
        """Every image that verify=all checks."""
        raise NotImplementedError

    def _dataset(self, split: str) -> ImageFileDataset:
        """The labelled images of split "train" or "val"."""
        raise NotImplementedError
