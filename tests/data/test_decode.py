"""The fast decoding path against the paper's reference transforms, on photographs re-encoded as 500 px JPEGs."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T

from neurov1.data.decode import FastCenterCrops, FastTrainCrop, decode_box
from neurov1.data.sampling import sample_random_state
from neurov1.data.synthetic import imagenet_like
from neurov1.data.transforms import imagenet_five_crop_transform, imagenet_train_transform, imagenet_val_transform

MIN_MEAN_PSNR_DB = 40.0


@pytest.fixture(scope="module")
def photographs(tmp_path_factory) -> list:
    root = imagenet_like(tmp_path_factory.mktemp("photos"), classes=14, train_per_class=6, val_per_class=0)
    return sorted((root / "train").rglob("*.JPEG"))


def psnr(fast: torch.Tensor, reference: torch.Tensor) -> float:
    """Fast uint8 (..., H, W, 3) against the reference's normalised (..., 3, H, W), in dB over [0, 1] pixels."""
    fast = fast.movedim(-1, -3).double() / 255
    reference = (reference.double() * 0.5 + 0.5).clamp(0, 1)
    return float(10 * torch.log10(1 / ((fast - reference) ** 2).mean()))


def test_the_crop_box_and_flip_are_those_of_the_reference_for_the_same_random_state(photographs):
    crop = FastTrainCrop(64)
    for seed, path in enumerate(photographs[:20]):
        with Image.open(path) as image:
            with sample_random_state(seed):
                left, top, right, bottom = crop.box(*image.size)
                flip = bool(torch.rand(1) < 0.5)
            with sample_random_state(seed):
                reference = T.RandomResizedCrop.get_params(image, [0.08, 1.0], [3 / 4, 4 / 3])
                reference_flip = bool(torch.rand(1) < 0.5)
        assert (top, left, bottom - top, right - left) == tuple(reference) and flip == reference_flip


def test_training_samples_match_the_reference_within_40_db(photographs):
    crop, reference = FastTrainCrop(64), imagenet_train_transform(64)
    values = []
    for seed, path in enumerate(photographs * 2):  # two random boxes per photograph
        with sample_random_state(seed), Image.open(path) as image:
            fast = crop(image)
        with sample_random_state(seed), Image.open(path) as image:
            values.append(psnr(fast, reference(image.convert("RGB"))))
    assert fast.dtype == torch.uint8 and fast.shape == (64, 64, 3)
    assert np.mean(values) >= MIN_MEAN_PSNR_DB, np.percentile(values, [5, 50])


@pytest.mark.parametrize("five_crop", [False, True])
def test_validation_samples_match_the_reference_within_40_db(photographs, five_crop):
    crops = FastCenterCrops(64, 256, 224, five_crop=five_crop)
    reference = (imagenet_five_crop_transform if five_crop else imagenet_val_transform)(64)
    values = []
    for path in photographs:
        with Image.open(path) as image:
            fast = crops(image)
            values.append(psnr(fast, reference(image.convert("RGB"))))
    assert fast.shape == ((5, 64, 64, 3) if five_crop else (64, 64, 3))
    assert np.mean(values) >= MIN_MEAN_PSNR_DB, np.percentile(values, [5, 50])


def test_a_box_of_a_png_is_resampled_without_dct_scaling(tmp_path, photographs):
    with Image.open(photographs[0]) as image:
        image.convert("RGB").save(tmp_path / "photo.png")
        jpeg = decode_box(image, (50.0, 40.0, 350.0, 340.0), 64, 1.5)
    with Image.open(tmp_path / "photo.png") as image:
        png = decode_box(image, (50.0, 40.0, 350.0, 340.0), 64, 1.5)
    assert png.shape == jpeg.shape == (64, 64, 3)
    assert psnr(torch.from_numpy(png), (torch.from_numpy(jpeg).movedim(-1, 0).double() / 255 - 0.5) / 0.5) > 35


def test_a_smaller_copy_gives_the_box_of_the_full_size_image(photographs):
    """The streaming store keeps images re-encoded smaller; boxes are still drawn on the original size."""
    crop = FastTrainCrop(64)
    with Image.open(photographs[3]) as image:
        original = image.size
        small = image.convert("RGB").resize((original[0] // 2, original[1] // 2), Image.Resampling.BICUBIC)
    with sample_random_state(7), Image.open(photographs[3]) as image:
        full = crop(image)
    with sample_random_state(7):
        halved = crop(small, original_size=original)
    assert psnr(halved, (full.movedim(-1, 0).double() / 255 - 0.5) / 0.5) > 30


@pytest.mark.slow
def test_demo_scale_training_reaches_the_same_accuracy_with_either_decoding(tmp_path):
    """ResNet-18, 10 classes of 500 px photographs (60 train, 20 val each), 8 epochs, seeds 0-2, each path."""
    from conftest import run_module

    root = imagenet_like(tmp_path / "data", classes=10, train_per_class=60, val_per_class=20)
    accuracy = {}
    for decode in ("exact", "fast"):
        for seed in (0, 1, 2):
            log_dir = tmp_path / f"{decode}-{seed}"
            overrides = (
                "experiment=demo",
                "data=imagenet",
                f"data.root={root}",
                f"data.decode={decode}",
                f"seed={seed}",
                "data.batch_size=32",
                "data.num_workers=2",
                "data.pin_memory=false",
                "logger=none",
                "~callbacks.progress_bar",
                "~callbacks.model_summary",
            )
            run_module("neurov1.train", *overrides, log_dir=log_dir)
            (metrics,) = log_dir.rglob("metrics.json")
            accuracy.setdefault(decode, []).append(json.loads(metrics.read_text())["best"]["value"])
    print(accuracy)
    noise = max(np.std(values) for values in accuracy.values())
    assert abs(np.mean(accuracy["fast"]) - np.mean(accuracy["exact"])) <= max(2 * noise, 0.05), accuracy
