"""Image transforms of the paper's training recipes (ImageNet and Tiny-ImageNet at 64x64)."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any

import torch
from torch import Tensor
from torchvision import transforms as T

from neurov1.errors import ConfigError

ChannelStat = float | Sequence[float]


def per_channel(value: ChannelStat, key: str) -> list[float]:
    """Expand a scalar or 3-sequence mean/std into one float per RGB channel."""
    values = [value] * 3 if isinstance(value, Real) else list(value)
    if len(values) != 3 or not all(isinstance(v, Real) for v in values):
        raise ConfigError(f"{key}: expected one number or three (R, G, B), got {value!r}. Set {key}=0.5.")
    if key.endswith("std") and min(values) <= 0:
        raise ConfigError(f"{key}: every channel std must be positive, got {value!r}. Set {key}=0.5.")
    return [float(v) for v in values]


def normalize(mean: ChannelStat = 0.5, std: ChannelStat = 0.5) -> T.Normalize:
    """Per-channel Normalize; with the defaults it maps [0, 1] to [-1, 1]."""
    return T.Normalize(per_channel(mean, "data.mean"), per_channel(std, "data.std"))


def imagenet_train_transform(
    image_size: int = 64, crop: int = 224, mean: ChannelStat = 0.5, std: ChannelStat = 0.5
) -> T.Compose:
    """RandomResizedCrop(crop) -> Resize(image_size) -> RandomHorizontalFlip -> ToTensor -> Normalize."""
    return T.Compose(
        [
            T.RandomResizedCrop(crop),
            T.Resize(image_size),
            T.RandomHorizontalFlip(),
            T.ToTensor(),
            normalize(mean, std),
        ]
    )


def imagenet_val_transform(
    image_size: int = 64, resize: int = 256, crop: int = 224, mean: ChannelStat = 0.5, std: ChannelStat = 0.5
) -> T.Compose:
    """Resize(resize) -> CenterCrop(crop) -> Resize(image_size) -> ToTensor -> Normalize."""
    return T.Compose(
        [
            T.Resize(resize),
            T.CenterCrop(crop),
            T.Resize(image_size),
            T.ToTensor(),
            normalize(mean, std),
        ]
    )


def tiny_imagenet_train_transform(image_size: int = 64, mean: ChannelStat = 0.5, std: ChannelStat = 0.5) -> T.Compose:
    """Resize to image_size (no-op at native 64px) -> RandomHorizontalFlip -> ToTensor -> Normalize."""
    return T.Compose(
        [
            T.Resize((image_size, image_size)),
            T.RandomHorizontalFlip(),
            T.ToTensor(),
            normalize(mean, std),
        ]
    )


def tiny_imagenet_val_transform(image_size: int = 64, mean: ChannelStat = 0.5, std: ChannelStat = 0.5) -> T.Compose:
    """Resize to image_size (no-op at native 64px) -> ToTensor -> Normalize."""
    return T.Compose([T.Resize((image_size, image_size)), T.ToTensor(), normalize(mean, std)])


# The paper's five-crop evaluation crops 224 of 256 px; datasets stored at the network's size keep that ratio.
FIVE_CROP_RATIO = 224 / 256


class FiveCropViews:
    """Image -> (5, C, H, W): ``view`` of the four corner crops and the centre crop (in FiveCrop's order).

    The centre view (index 4) is what the single-crop evaluation sees.
    """

    def __init__(self, crop: int, view: Callable, resize: int | None = None) -> None:
        self.resize = T.Resize(resize) if resize else None
        self.five_crop = T.FiveCrop(crop)
        self.view = view

    def __call__(self, image):
        if self.resize is not None:
            image = self.resize(image)
        return torch.stack([self.view(crop) for crop in self.five_crop(image)])


def imagenet_five_crop_transform(
    image_size: int = 64, resize: int = 256, crop: int = 224, mean: ChannelStat = 0.5, std: ChannelStat = 0.5
) -> FiveCropViews:
    """Resize(resize) -> FiveCrop(crop) -> each Resize(image_size) -> ToTensor -> Normalize (paper, Discussion)."""
    return FiveCropViews(crop, T.Compose([T.Resize(image_size), T.ToTensor(), normalize(mean, std)]), resize)


def native_five_crop_transform(image_size: int = 64, mean: ChannelStat = 0.5, std: ChannelStat = 0.5) -> FiveCropViews:
    """For images stored at the network's size: FiveCrop(224/256 of it) -> each Resize(image_size) -> tensor."""
    view = T.Compose([T.Resize((image_size, image_size)), T.ToTensor(), normalize(mean, std)])
    return FiveCropViews(round(image_size * FIVE_CROP_RATIO), view)


@dataclass(frozen=True)
class PixelSpace:
    """The data's per-channel normalisation and its inverse: perturbations live in [0, 1] pixels."""

    mean: Tensor  # (1, 3, 1, 1)
    std: Tensor

    @classmethod
    def of(cls, datamodule: Any, device: torch.device) -> "PixelSpace":
        """The ``mean``/``std`` the data module normalises its images with (``data.mean``, ``data.std``)."""
        mean, std = (
            torch.tensor(per_channel(getattr(datamodule, name), f"data.{name}"), device=device).view(1, 3, 1, 1)
            for name in ("mean", "std")
        )
        return cls(mean, std)

    def pixels(self, images: Tensor) -> Tensor:
        """Normalised images -> [0, 1] pixels."""
        return images * self.std + self.mean

    def normalize(self, pixels: Tensor) -> Tensor:
        """[0, 1] pixels -> the network's input."""
        return (pixels - self.mean) / self.std
