"""Paper-recipe transforms: output shape and range, determinism of val, random flips of train."""

import numpy as np
import pytest
import torch
from PIL import Image

from neurov1.data import imagenet_train_transform, imagenet_val_transform
from neurov1.data.transforms import per_channel, tiny_imagenet_train_transform, tiny_imagenet_val_transform
from neurov1.errors import ConfigError


def random_image(width: int = 300, height: int = 240, seed: int = 0) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def horizontal_ramp(width: int = 300, height: int = 240) -> Image.Image:
    """Brightness increasing left to right, so any crop's left edge is darker unless flipped."""
    row = np.linspace(0, 255, width).astype(np.uint8)
    return Image.fromarray(np.repeat(np.tile(row, (height, 1))[..., None], 3, axis=2))


def flipped_fraction(transform, image: Image.Image, draws: int = 40) -> float:
    torch.manual_seed(0)
    flipped = 0
    for _ in range(draws):
        out = transform(image)
        flipped += int(out[:, :, 0].mean() > out[:, :, -1].mean())
    return flipped / draws


@pytest.mark.parametrize("transform", [imagenet_train_transform(), imagenet_val_transform()], ids=["train", "val"])
def test_paper_recipe_gives_64px_tensors_in_unit_range(transform):
    out = transform(random_image())
    assert out.shape == (3, 64, 64)
    assert out.dtype == torch.float32
    assert out.min() >= -1 and out.max() <= 1


def test_normalize_maps_black_and_white_to_minus_one_and_one():
    transform = imagenet_val_transform()
    assert torch.allclose(transform(Image.new("RGB", (256, 256), (0, 0, 0))), torch.tensor(-1.0))
    assert torch.allclose(transform(Image.new("RGB", (256, 256), (255, 255, 255))), torch.tensor(1.0))


def test_val_transform_is_deterministic():
    image = random_image()
    assert torch.equal(imagenet_val_transform()(image), imagenet_val_transform()(image))
    assert torch.equal(tiny_imagenet_val_transform()(image), tiny_imagenet_val_transform()(image))


def test_train_transforms_flip_about_half_the_time():
    assert 0.2 < flipped_fraction(imagenet_train_transform(), horizontal_ramp()) < 0.8
    assert 0.2 < flipped_fraction(tiny_imagenet_train_transform(), horizontal_ramp(64, 64)) < 0.8


def test_val_transform_never_flips():
    assert flipped_fraction(imagenet_val_transform(), horizontal_ramp()) == 0


def test_tiny_transforms_keep_native_size_and_resize_otherwise():
    image = random_image(64, 64)
    expected = torch.from_numpy(np.array(image)).permute(2, 0, 1) / 127.5 - 1
    assert torch.allclose(tiny_imagenet_val_transform()(image), expected, atol=1e-6)
    assert tiny_imagenet_train_transform(image_size=32)(image).shape == (3, 32, 32)


def test_per_channel_accepts_scalar_and_triplet():
    assert per_channel(0.5, "data.mean") == [0.5, 0.5, 0.5]
    assert per_channel([0.485, 0.456, 0.406], "data.mean") == [0.485, 0.456, 0.406]


@pytest.mark.parametrize(("value", "key"), [([0.5, 0.5], "data.mean"), (0.0, "data.std"), ("x", "data.std")])
def test_per_channel_rejects_bad_values(value, key):
    with pytest.raises(ConfigError, match=key):
        per_channel(value, key)
