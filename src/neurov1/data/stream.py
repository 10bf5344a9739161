"""ImageNet streamed from a store (``data=imagenet_stream``, :mod:`neurov1.data.store`) with LitData.

LitData's ``StreamingDataset`` reads the store's chunks from a local folder or an object store, shuffles chunks and
items by its seed and epoch, and splits them over data-parallel processes and loader workers;
``StreamingDataLoader`` keeps the position in the epoch as state, which Lightning saves in every checkpoint and
restores on resume. Two details make that resume faithful:

- every item is decoded with a seed of its own (the run's seed, the epoch, the item's index), so its random crop
  and flip do not depend on which worker reads it or when (as for the folder data, :mod:`neurov1.data.sampling`);
- Lightning fetches one batch ahead of the training step, and LitData counts it as consumed: a checkpoint taken
  after batch k would resume after batch k + 1 and never train one batch. :class:`TrainedPositionLoader` saves
  the position of the last batch trained instead;
- Lightning stops asking for batches once an epoch has ``len(loader)`` of them, so the loader never sees the end
  of a resumed epoch, keeps treating the next one as the resumed one and yields nothing: it ends the resumed
  epoch itself when its last batch leaves.
"""

import io
import logging
from collections.abc import Callable
from typing import Any

import torch
from litdata import StreamingDataLoader, StreamingDataset
from litdata.streaming.sampler import ChunkedIndex
from PIL import Image

from neurov1.data.base import BaseDataModule
from neurov1.data.boxes import UNKNOWN, located, read_boxes
from neurov1.data.decode import FastCenterCrops, FastTrainCrop
from neurov1.data.sampling import sample_random_state, sample_seed
from neurov1.data.store import read_manifest
from neurov1.data.transforms import ChannelStat
from neurov1.errors import ConfigError, check_int

log = logging.getLogger(__name__)


class DecodedStream(StreamingDataset):
    """The store's items as samples: ``decode`` (a fast crop) of the stored JPEG with the original's size.

    ``augment``: seed every item's random crop and flip with (seed, epoch, index); without, decode deterministically.
    """

    def __init__(
        self,
        input_dir: str,
        decode: Callable,
        augment: bool,
        centers: dict[str, tuple[float, float]] | None = None,
        **settings: Any,
    ) -> None:
        super().__init__(input_dir, **settings)
        self.decode = decode
        self.augment = augment
        self.centers = centers  # data.boxes: {ImageId: object centre in original pixels}

    def __getitem__(self, index: ChunkedIndex | int) -> tuple[torch.Tensor, int]:
        item = super().__getitem__(index)
        position = index.index if isinstance(index, ChunkedIndex) else int(index)
        seed = sample_seed(self.seed, self.current_epoch, position) if self.augment else None
        with sample_random_state(seed), Image.open(io.BytesIO(item["image"])) as image:
            size = (item["width"], item["height"])
            if self.centers is not None:
                if "id" not in item:
                    raise ConfigError(
                        "data.boxes: this store was written before stores kept image ids; write it again with "
                        "python -m neurov1.prepare to use object boxes."
                    )
                sample, center = located(self.decode, image, self.centers.get(item["id"], UNKNOWN), size)
                return sample, item["label"], center
            return self.decode(image, size), item["label"]


class TrainedPositionLoader(StreamingDataLoader):
    """LitData's stateful loader whose saved state is the position after the last batch trained.

    ``trained_batches`` returns how many batches of the current epoch the training loop has trained (None outside
    training); the batches fetched beyond them are given back to the epoch.
    """

    def __init__(self, *args: Any, trained_batches: Callable[[], int | None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.trained_batches = trained_batches

    def __iter__(self) -> Any:
        for batch in super().__iter__():
            if self.restore and self._num_samples_yielded_streaming >= len(self) * self.batch_size:
                self.restore = False  # the resumed epoch's last batch: what LitData does when its loop ends
            yield batch

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        trained = self.trained_batches()
        ahead = self._num_samples_yielded_streaming // self.batch_size - trained if trained is not None else 0
        if ahead > 0:
            samples = self._num_samples_yielded_streaming - ahead * self.batch_size
            state["num_samples_yielded"] = samples
            state["latest_worker_idx"] = (state["latest_worker_idx"] - ahead) % max(1, self.num_workers)
            state["dataset"] = self.dataset.state_dict(samples, self.num_workers, self.batch_size)
        return state


class ImageNetStreamDataModule(BaseDataModule):
    """ImageNet from a store written by ``python -m neurov1.prepare``: training and validation as the fast path.

    Args:
        root: the store, a local folder or an object-store URL (``s3://bucket/prefix``).
        cache_dir: where LitData keeps the chunks of a remote store (None: its default).
        train_crop, val_resize: the paper's 224/256 crops (validation: Resize 256, CenterCrop 224).
        The other arguments are :class:`BaseDataModule`'s.
    """

    def __init__(
        self,
        root: str,
        batch_size: int = 128,
        num_workers: int = 8,
        pin_memory: bool = False,
        image_size: int = 64,
        mean: ChannelStat = 0.5,
        std: ChannelStat = 0.5,
        five_crop: bool = False,
        shuffle_seed: int = 0,
        train_crop: int = 224,
        val_resize: int = 256,
        cache_dir: str | None = None,
        boxes: str | None = None,
    ) -> None:
        super().__init__(batch_size, num_workers, pin_memory, image_size, mean, std, five_crop, shuffle_seed)
        self.boxes = boxes
        self.root = str(root).rstrip("/")
        self.train_crop = train_crop
        self.val_resize = val_resize
        self.cache_dir = cache_dir
        self.manifest: dict[str, Any] | None = None

    @property
    def class_names(self) -> list[str]:
        self.validate()
        return list(self.manifest["classes"])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def validate(self) -> None:
        """Check the settings and read the store's ``store.json``; ConfigError if it is missing or incomplete."""
        if self.manifest is not None:
            return
        self._check_settings()
        check_int(self.train_crop, "data.train_crop", 224)
        check_int(self.val_resize, "data.val_resize", 256)
        self.manifest = read_manifest(self.root)
        log.info(
            "ImageNet store %s: %d classes, %s images",
            self.root,
            len(self.manifest["classes"]),
            self.manifest["counts"],
        )

    def _dataset(self, split: str, decode: Callable, augment: bool) -> DecodedStream:
        return DecodedStream(
            f"{self.root}/{split}",
            decode,
            augment,
            read_boxes(self.boxes) if self.boxes else None,
            cache_dir=self.cache_dir,
            shuffle=augment,
            drop_last=augment,
            seed=self.shuffle_seed,
        )

    def setup(self, stage: str | None = None) -> None:
        self.validate()
        if stage in (None, "fit") and self.train_dataset is None:
            self.train_dataset = self._dataset("train", FastTrainCrop(self.image_size), augment=True)
        if self.val_dataset is None:
            crops = FastCenterCrops(self.image_size, self.val_resize, self.train_crop, five_crop=self.five_crop)
            self.val_dataset = self._dataset("val", crops, augment=False)

    def _trained_batches(self) -> int | None:
        trainer = self.trainer
        if trainer is None or trainer.state.fn != "fit":
            return None
        return trainer.fit_loop.epoch_loop.batch_progress.current.processed

    def train_dataloader(self) -> StreamingDataLoader:
        """Training batches in LitData's order for the seed and epoch; its position is saved in checkpoints."""
        if self.train_dataset is None:
            self.setup("fit")
        return TrainedPositionLoader(
            self.train_dataset,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            trained_batches=self._trained_batches,
        )

    def val_dataloader(self) -> StreamingDataLoader:
        if self.val_dataset is None:
            self.setup("validate")
        return StreamingDataLoader(
            self.val_dataset, batch_size=self.batch_size, num_workers=self.num_workers, pin_memory=self.pin_memory
        )

    def state_dict(self) -> dict[str, Any]:
        """Nothing beyond the train loader's own state, which Lightning saves itself."""
        return {}
