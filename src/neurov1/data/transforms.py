"""Image transforms of the paper's training recipes (ImageNet and Tiny-ImageNet at 64x64)."""

from collections.abc import Sequence
from numbers import Real

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
