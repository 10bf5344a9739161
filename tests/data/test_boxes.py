"""Object boxes (data.boxes): the localisation files read, and each centre mapped through crop, flip and resize."""

import math

import numpy as np
import pytest
import torch
from PIL import Image

from neurov1.data.boxes import located, map_point, read_boxes
from neurov1.data.decode import ExactDecode, FastCenterCrops, FastTrainCrop
from neurov1.data.folders import ImageFileDataset
from neurov1.data.sampling import sample_random_state
from neurov1.data.transforms import imagenet_train_transform, imagenet_val_transform
from neurov1.errors import ConfigError

WIDTH, HEIGHT = 320, 240
OBJECT = (200.0, 60.0, 240.0, 100.0)  # a white square on black: its centre (220, 80)


def photo() -> Image.Image:
    pixels = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
    left, top, right, bottom = (int(v) for v in OBJECT)
    pixels[top:bottom, left:right] = 255
    return Image.fromarray(pixels)


def bright_centroid(sample: torch.Tensor) -> tuple[float, float] | None:
    """(x, y) in [-1, 1] of the bright pixels of an (S, S, 3) uint8 or (3, S, S) normalised sample."""
    gray = sample.float().mean(-1) / 255 if sample.dtype == torch.uint8 else (sample.mean(0) + 1) / 2
    size = gray.shape[-1]
    weights = (gray > 0.5).float() * gray
    if weights.sum() < 1:
        return None
    rows, cols = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    x = float((weights * cols).sum() / weights.sum())
    y = float((weights * rows).sum() / weights.sum())
    return (2 * (x + 0.5) / size - 1, 2 * (y + 0.5) / size - 1)


def test_map_point_is_the_position_in_the_crop_mirrored_with_the_flip():
    box = (100.0, 50.0, 300.0, 250.0)
    assert map_point((200, 150), box, False) == (0.0, 0.0)
    assert map_point((150, 100), box, False) == (-0.5, -0.5)
    assert map_point((150, 100), box, True) == (0.5, -0.5)
    assert all(math.isnan(v) for v in map_point((50, 100), box, False))  # outside the crop: unknown
    assert all(math.isnan(v) for v in map_point((math.nan, math.nan), box, False))


@pytest.mark.parametrize("kind", ["fast", "exact"])
def test_train_centres_follow_the_random_crop_flip_and_resize(kind):
    """The mapped centre is where the object is seen in the sample (its bright pixels' centroid), seed by seed."""
    decode = (
        FastTrainCrop(64)
        if kind == "fast"
        else ExactDecode(imagenet_train_transform(64, 224, 0.5, 0.5), FastTrainCrop(64).geometry)
    )
    seen, flipped = 0, 0
    for seed in range(40):
        with sample_random_state(seed):
            sample, center = located(decode, photo(), (220.0, 80.0))
        with sample_random_state(seed):
            alone = decode(photo())
        assert torch.equal(sample, alone)  # the centre costs the sample nothing: same random draws
        found = bright_centroid(sample)
        if found is None or torch.isnan(center).any():
            continue
        box_side = 64 * 40 / (min(WIDTH, HEIGHT))  # the object covers at least this many output pixels
        if box_side < 3 or max(abs(v) for v in found) > 0.85:  # tiny, or cut by the crop's edge
            continue
        assert center.tolist() == pytest.approx(found, abs=2.5 / 64 * 2), seed
        seen += 1
        flipped += center[0] < 0
    assert seen >= 5 and 0 < flipped < seen  # some seeds flip the image, some do not


@pytest.mark.parametrize("kind", ["fast", "exact"])
def test_val_centres_follow_resize_and_centre_crop(kind):
    decode = (
        FastCenterCrops(64, 256, 224)
        if kind == "fast"
        else ExactDecode(imagenet_val_transform(64, 256, 224, 0.5, 0.5), FastCenterCrops(64, 256, 224).geometry)
    )
    sample, center = located(decode, photo(), (220.0, 80.0))
    # Resize(256): 320x240 -> 341x256; CenterCrop(224) from (round(58.5) = 58, 16); in original pixels the crop
    # box starts at (58 * 320 / 341, 16 * 240 / 256) and is 224 * 320 / 341 by 224 * 240 / 256 pixels
    sx, sy = 320 / 341, 240 / 256
    expected = (2 * (220 - 58 * sx) / (224 * sx) - 1, 2 * (80 - 16 * sy) / (224 * sy) - 1)
    assert center.tolist() == pytest.approx(expected, abs=1e-5)
    assert center.tolist() == pytest.approx(bright_centroid(sample), abs=1.5 / 32)
    five = FastCenterCrops(64, 256, 224, five_crop=True)
    assert torch.isnan(located(five, photo(), (220.0, 80.0))[1]).all()


def write(folder, name, text):
    (folder / name).write_text(text)
    return folder


def test_localisation_files_give_the_centre_of_the_largest_box(tmp_path):
    write(tmp_path, "LOC_train_solution.csv", "ImageId,PredictionString\nn01_1,n01 10 20 30 40 n01 0 0 100 50 \n")
    write(tmp_path, "LOC_val_solution.csv", "ImageId,PredictionString\nILSVRC2012_val_00000001,n02 4 6 8 10\n")
    assert read_boxes(tmp_path) == {"n01_1": (50.0, 25.0), "ILSVRC2012_val_00000001": (6.0, 8.0)}


@pytest.mark.parametrize(
    "text, where",
    [
        ("ImageId,Boxes\nn01_1,n01 1 2 3 4\n", "line 1"),
        ("ImageId,PredictionString\nn01_1,n01 1 2 3\n", "line 2"),
        ("ImageId,PredictionString\nn01_1,n01 1 2 3 4\nn01_2,n01 9 2 3 4\n", "line 3"),
        ("ImageId,PredictionString\nn01_1,n01 1 2 3 x\n", "line 2"),
        ("ImageId,PredictionString\nn01_1\n", "line 2"),
    ],
)
def test_a_malformed_boxes_file_is_one_clear_line(tmp_path, text, where):
    write(tmp_path, "LOC_val_solution.csv", text)
    with pytest.raises(ConfigError) as error:
        read_boxes(tmp_path)
    message = str(error.value)
    assert "\n" not in message and str(tmp_path / "LOC_val_solution.csv") in message and where in message
    assert "ImageId,PredictionString" in message  # the fix: the expected format


def test_a_folder_without_the_files_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match="LOC_train_solution.csv"):
        read_boxes(tmp_path)


def test_folder_samples_carry_their_mapped_centre(tmp_path):
    (tmp_path / "n01").mkdir()
    photo().save(tmp_path / "n01" / "n01_1.png")
    photo().save(tmp_path / "n01" / "n01_2.png")
    points = np.array([[220.0, 80.0], [math.nan, math.nan]])
    dataset = ImageFileDataset(tmp_path, ["n01/n01_1.png", "n01/n01_2.png"], [0, 0], FastCenterCrops(64), False, points)
    image, label, center = dataset[0]
    assert image.shape == (64, 64, 3) and label == 0 and not torch.isnan(center).any()
    assert torch.isnan(dataset[1][2]).all()
