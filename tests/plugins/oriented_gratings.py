"""A dataset that lives outside neurov1: noisy gratings, one class per orientation, drawn in memory.

A data module of one's own subclasses neurov1.data.base.BaseDataModule, which brings the loaders, the run's
training order (resumable in the middle of an epoch) and the checks of the loader settings. The subclass says how
many classes there are, checks its own settings in ``validate`` (cheap: it runs before the model is built) and fills
``train_dataset`` and ``val_dataset`` in ``setup``. A sample is (image, label); training samples come with a seed
that fixes their random augmentation, so a resumed run sees the same images.
"""

import math

import torch
from torch.utils.data import Dataset

from neurov1.data.base import BaseDataModule
from neurov1.data.sampling import SampleKey, sample_random_state, split_key
from neurov1.data.transforms import ChannelStat, per_channel
from neurov1.errors import ConfigError, check_int


class Gratings(Dataset):
    """Sinusoidal gratings with random phase, spatial frequency and contrast plus Gaussian noise, normalised."""

    def __init__(
        self, labels: torch.Tensor, num_classes: int, size: int, seed: int, mean: ChannelStat, std: ChannelStat
    ) -> None:
        self.labels, self.num_classes, self.size, self.seed = labels, num_classes, size, seed
        self.mean = torch.tensor(per_channel(mean, "data.mean")).view(3, 1, 1)
        self.std = torch.tensor(per_channel(std, "data.std")).view(3, 1, 1)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, key: int | SampleKey) -> tuple[torch.Tensor, int]:
        index, sample_seed = split_key(key)
        label = int(self.labels[index])
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + index)  # the image itself: fixed per index
        phase, frequency, contrast = torch.rand(3, generator=generator).tolist()
        offsets = torch.arange(self.size, dtype=torch.float32) / self.size
        y, x = torch.meshgrid(offsets, offsets, indexing="ij")
        theta = math.pi * label / self.num_classes
        cycles = 3 + 5 * frequency
        wave = torch.sin(2 * math.pi * (cycles * (x * math.cos(theta) + y * math.sin(theta)) + phase))
        image = 0.5 + (0.2 + 0.3 * contrast) * wave + 0.1 * torch.randn(self.size, self.size, generator=generator)
        image = image.clamp(0, 1).expand(3, -1, -1)
        if sample_seed is not None:  # training: a random flip drawn from the sample's own seed
            with sample_random_state(sample_seed):
                if torch.rand(()) < 0.5:
                    image = image.flip(-1).flip(-2)  # a 180-degree turn keeps the orientation
        return (image - self.mean) / self.std, label


class OrientedGratingsDataModule(BaseDataModule):
    """``num_classes`` orientations evenly spaced over 180 degrees, ``train_per_class`` and ``val_per_class``
    images of each."""

    def __init__(
        self,
        num_classes: int = 4,
        train_per_class: int = 32,
        val_per_class: int = 8,
        seed: int = 0,
        batch_size: int = 16,
        num_workers: int = 0,
        pin_memory: bool = False,
        image_size: int = 64,
        mean: ChannelStat = 0.5,
        std: ChannelStat = 0.5,
        five_crop: bool = False,
        shuffle_seed: int = 0,
    ) -> None:
        super().__init__(batch_size, num_workers, pin_memory, image_size, mean, std, five_crop, shuffle_seed)
        self.num_classes = num_classes
        self.train_per_class = train_per_class
        self.val_per_class = val_per_class
        self.seed = seed

    def validate(self) -> None:
        """Check the settings (a ConfigError naming the key); nothing to read from disk."""
        check_int(self.num_classes, "data.num_classes", 4, minimum=2)
        check_int(self.train_per_class, "data.train_per_class", 32)
        check_int(self.val_per_class, "data.val_per_class", 8)
        self._check_settings()  # batch size, workers, image size, mean, std, shuffle seed
        if self.five_crop:
            raise ConfigError("data.five_crop: the gratings fill the image; five crops are not offered. Set false.")
        if self.num_classes * self.train_per_class < self.batch_size:
            raise ConfigError(f"data.batch_size: {self.batch_size} is more than the training set; lower it.")

    def setup(self, stage: str | None = None) -> None:
        self.validate()
        if self.train_dataset is not None:
            return
        train = torch.arange(self.num_classes).repeat_interleave(self.train_per_class)
        val = torch.arange(self.num_classes).repeat_interleave(self.val_per_class)
        args = (self.num_classes, self.image_size)
        self.train_dataset = Gratings(train, *args, seed=2 * self.seed, mean=self.mean, std=self.std)
        self.val_dataset = Gratings(val, *args, seed=2 * self.seed + 1, mean=self.mean, std=self.std)
