"""DemoDataModule: deterministic crops of scikit-image's shipped photographs."""

import time

import numpy as np
import pytest
import torch
from PIL import Image

from neurov1.data import DemoDataModule, demo_images
from neurov1.data.demo import DEMO_IMAGE_FILES, random_crops
from neurov1.errors import ConfigError


def small_demo(**kwargs) -> DemoDataModule:
    settings = {"num_classes": 3, "train_per_class": 8, "val_per_class": 4, "batch_size": 4, **kwargs}
    module = DemoDataModule(**settings)
    module.setup("fit")
    return module


def test_demo_images_are_rgb_uint8():
    images = demo_images()
    assert list(images) == [name.rsplit(".", 1)[0] for name in DEMO_IMAGE_FILES]
    for image in images.values():
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3


def test_default_setup_is_fast_and_shaped():
    module = DemoDataModule()
    assert module.num_classes == 10
    start = time.perf_counter()
    module.setup("fit")
    assert time.perf_counter() - start < 5
    assert module.train_dataset.images.shape == (1600, 3, 64, 64)
    assert module.val_dataset.images.shape == (400, 3, 64, 64)
    assert module.train_dataset.images.dtype == torch.uint8


def test_same_seed_same_crops_other_seed_different():
    first, second, other = small_demo(seed=1), small_demo(seed=1), small_demo(seed=2)
    assert torch.equal(first.train_dataset.images, second.train_dataset.images)
    assert torch.equal(first.val_dataset.images, second.val_dataset.images)
    assert not torch.equal(first.train_dataset.images, other.train_dataset.images)
    assert not torch.equal(first.val_dataset.images, other.val_dataset.images)


def test_batches_and_labels():
    module = small_demo()
    assert module.class_names == ["astronaut", "brick", "camera"]
    train_batches = list(module.train_dataloader())
    assert len(train_batches) == 6
    images, labels = train_batches[0]
    assert images.shape == (4, 3, 64, 64) and images.dtype == torch.float32
    assert images.min() >= -1 and images.max() <= 1
    assert set(torch.cat([b[1] for b in train_batches]).tolist()) == {0, 1, 2}
    val_labels = torch.cat([b[1] for b in module.val_dataloader()])
    assert val_labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4


def test_val_is_normalized_without_flip_and_train_flips():
    module = small_demo()
    raw = module.val_dataset.images[0].float() / 255 * 2 - 1
    assert torch.allclose(module.val_dataset[0][0], raw)
    torch.manual_seed(0)
    raw = module.train_dataset.images[0].float() / 255 * 2 - 1
    served = [module.train_dataset[0][0] for _ in range(20)]
    flips = sum(torch.allclose(image, raw.flip(-1)) for image in served)
    assert 0 < flips < 20
    assert all(torch.allclose(image, raw) or torch.allclose(image, raw.flip(-1)) for image in served)


def test_crops_stay_inside_their_strip():
    columns = np.tile(np.arange(200, dtype=np.uint8), (120, 1))
    image = Image.fromarray(np.repeat(columns[..., None], 3, axis=2))
    crops = random_crops(image, 30, (140, 200), 16, np.random.default_rng(0))
    assert crops.shape == (30, 3, 16, 16)
    assert crops.min() >= 139 and crops.max() <= 200


@pytest.mark.parametrize(
    ("setting", "key"),
    [
        ({"num_classes": 1}, "data.num_classes"),
        ({"num_classes": 15}, "data.num_classes"),
        ({"train_per_class": 0}, "data.train_per_class"),
        ({"val_per_class": -1}, "data.val_per_class"),
        ({"batch_size": 2000}, "data.batch_size"),
        ({"num_workers": -2}, "data.num_workers"),
    ],
)
def test_bad_settings(setting, key):
    with pytest.raises(ConfigError, match=key):
        DemoDataModule(**setting).validate()
