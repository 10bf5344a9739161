"""Base data modules: loader settings and dataloaders, and the validate/setup flow of the image-folder sets."""

import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from neurov1.data.folders import (
    ImageFileDataset,
    check_loader_settings,
    check_on_bad_image,
    check_train_size,
    check_verify_mode,
    make_loader,
    root_path,
    verify_headers,
)
from neurov1.data.sampling import EpochSampler, data_position
from neurov1.data.transforms import ChannelStat, per_channel
from neurov1.data.verify import verify_decodes
from neurov1.errors import check_int

log = logging.getLogger(__name__)


class BaseDataModule(L.LightningDataModule):
    """Loader and image settings and the dataloaders; subclasses fill train_dataset and val_dataset in setup().

    The training order is :class:`neurov1.data.sampling.EpochSampler`'s: a function of ``shuffle_seed`` (the run's
    seed) and the epoch, sharded over data-parallel processes here (the trainer's ``use_distributed_sampler`` is
    off). Its position is part of every checkpoint (:meth:`state_dict`), so a resumed run goes on where the
    interrupted one stopped, in the middle of an epoch too.
    """

    def __init__(
        self,
        batch_size: int,
        num_workers: int,
        pin_memory: bool,
        image_size: int,
        mean: ChannelStat,
        std: ChannelStat,
        five_crop: bool = False,
        shuffle_seed: int = 0,
    ) -> None:
        super().__init__()
        self.five_crop = five_crop  # validation images as (5, C, H, W): four corners and the centre
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.image_size = image_size
        self.mean = mean
        self.std = std
        self.shuffle_seed = shuffle_seed
        self.train_dataset: Dataset | None = None
        self.val_dataset: Dataset | None = None
        self._resume_position: dict[str, int] | None = None

    def _check_settings(self) -> None:
        """ConfigError for a bad batch size, worker count, image size, mean, std or seed."""
        check_loader_settings(self.batch_size, self.num_workers)
        check_int(self.image_size, "data.image_size", 64)
        check_int(self.shuffle_seed, "data.shuffle_seed", 0, minimum=0)
        per_channel(self.mean, "data.mean")
        per_channel(self.std, "data.std")

    def _replicas(self) -> tuple[int, int]:
        """(number of data-parallel processes, this one's rank)."""
        trainer = self.trainer
        return (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)

    def train_dataloader(self) -> DataLoader:
        """Training batches in the run's epoch order (drop_last), continuing a resumed epoch where it stopped."""
        if self.train_dataset is None:
            self.setup("fit")
        replicas, rank = self._replicas()
        sampler = EpochSampler(len(self.train_dataset), self.batch_size, self.shuffle_seed, True, replicas, rank)
        if self._resume_position is not None:
            sampler.resume(self._resume_position["epoch"], self._resume_position["batch"])
            self._resume_position = None
        return make_loader(
            self.train_dataset, self.batch_size, self.num_workers, self.pin_memory, train=True, sampler=sampler
        )

    def val_dataloader(self) -> DataLoader:
        """Validation batches in dataset order (split over data-parallel processes)."""
        if self.val_dataset is None:
            self.setup("validate")
        replicas, rank = self._replicas()
        sampler = DistributedSampler(self.val_dataset, replicas, rank, shuffle=False) if replicas > 1 else None
        return make_loader(
            self.val_dataset, self.batch_size, self.num_workers, self.pin_memory, train=False, sampler=sampler
        )

    def device_transform(self, images: torch.Tensor) -> torch.Tensor:
        """Pixels as the loader hands them over -> the network's input, on the images' device.

        uint8 (..., H, W, 3) (the fast decoding path) becomes float (..., 3, H, W), scaled to [0, 1] and normalised
        with ``mean``/``std``; the channel move is a view, so a batch comes out in channels-last layout without a
        copy. Float images (already normalised by the reference transforms) pass unchanged.
        """
        if images.dtype != torch.uint8:
            return images
        mean, std = (torch.tensor(per_channel(v, "data"), device=images.device) for v in (self.mean, self.std))
        scale, shift = (1 / (255 * std)).view(3, 1, 1), (-mean / std).view(3, 1, 1)
        return images.movedim(-1, -3).float().mul_(scale).add_(shift)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Lightning's hook: the device transform of every batch (so a GPU converts and normalises)."""
        images, *rest = batch
        return (self.device_transform(images), *rest)

    def state_dict(self) -> dict[str, Any]:
        """The position in the training order (saved in every checkpoint taken while fitting)."""
        trainer = self.trainer
        if trainer is None or trainer.state.fn != "fit" or not trainer.num_training_batches:
            return {}
        return {"data_position": data_position(trainer)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Resume the training order at the saved position (applied when the train loader is built)."""
        self._resume_position = state_dict.get("data_position")

    def verify_all(self) -> None:
        """The expensive full check of every image (``data.verify=all``); nothing to do for in-memory data."""

    def unreadable_files(self) -> list[str]:
        """Images skipped because they could not be decoded (``data.on_bad_image=skip``)."""
        return []


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
        on_bad_image: str = "error",
        verify_cache: str | os.PathLike | None = None,
        five_crop: bool = False,
        shuffle_seed: int = 0,
    ) -> None:
        super().__init__(batch_size, num_workers, pin_memory, image_size, mean, std, five_crop, shuffle_seed)
        self.root_setting = root
        self.verify = verify
        self.on_bad_image = on_bad_image
        self.verify_cache = verify_cache
        self.root: Path | None = None
        self._class_names: list[str] | None = None
        self._fully_verified = False

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
        """Check settings, folder layout and (``verify`` sample or all) one image header per class; cheap.

        ConfigError if anything is bad. The full decode of ``verify=all`` is :meth:`verify_all`.
        """
        if self._class_names is not None:
            return
        self._check_settings()
        check_verify_mode(self.verify)
        check_on_bad_image(self.on_bad_image)
        root = root_path(self.root_setting, self.LAYOUT)
        wnids, samples = self._check_layout(root)
        if self.verify != "none":
            verify_headers(samples)
        self.root = root
        self._class_names = wnids
        log.info("%s at %s: %d classes (verify=%s)", self.NAME, root, len(wnids), self.verify)

    def verify_all(self) -> None:
        """With ``verify=all``: decode every image completely, in parallel; results are cached per folder."""
        self.validate()
        if self.verify != "all" or self._fully_verified:
            return
        verify_decodes(
            self.root, list(self._all_images(self.root, self._class_names)), self.num_workers, self.verify_cache
        )
        self._fully_verified = True

    def unreadable_files(self) -> list[str]:
        return [
            path for dataset in (self.train_dataset, self.val_dataset) if dataset for path in dataset.unreadable_files()
        ]

    def setup(self, stage: str | None = None) -> None:
        """Validate (and with ``verify=all`` decode every image once), then list the images of the stage's splits."""
        self.validate()
        self.verify_all()
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
