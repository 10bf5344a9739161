"""Download-free demo data: 64x64 crops of the natural photographs shipped inside scikit-image's wheel."""

import logging
from pathlib import Path

import numpy as np
import skimage.data
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms as T

from neurov1.data.base import BaseDataModule
from neurov1.data.folders import check_train_size
from neurov1.data.sampling import SampleKey, sample_random_state, split_key
from neurov1.data.transforms import FIVE_CROP_RATIO, ChannelStat, FiveCropViews, per_channel
from neurov1.errors import ConfigError, check_int

log = logging.getLogger(__name__)

DEMO_IMAGE_DIR = Path(skimage.data.__file__).parent
DEMO_IMAGE_FILES = (
    "astronaut.png",
    "brick.png",
    "camera.png",
    "chelsea.png",
    "coffee.png",
    "coins.png",
    "grass.png",
    "gravel.png",
    "motorcycle_left.png",
    "rocket.jpg",
    "hubble_deep_field.jpg",
    "retina.jpg",
    "moon.png",
    "ihc.png",
)
MIN_CLASSES = 2
TRAIN_WIDTH_FRACTION = 0.7
CROP_SIDE_RANGE = (0.25, 0.6)
PLACEMENTS = ("center", "random")
# data.placement=random: the class crop at this fraction of the image (28 px of 64) on clutter of this contrast.
OBJECT_FRACTION = 28 / 64
CLUTTER_CONTRAST = 0.35


def read_demo_image(file_name: str) -> np.ndarray:
    """One shipped sample photograph as an HxWx3 uint8 array (grayscale replicated to RGB)."""
    with Image.open(DEMO_IMAGE_DIR / file_name) as image:
        return np.asarray(image.convert("RGB"))


def demo_images() -> dict[str, np.ndarray]:
    """All demo photographs, {file stem: HxWx3 uint8 array}, in class order."""
    return {Path(name).stem: read_demo_image(name) for name in DEMO_IMAGE_FILES}


def random_crops(
    image: Image.Image, count: int, x_range: tuple[int, int], image_size: int, rng: np.random.Generator
) -> np.ndarray:
    """count square crops lying within columns [x_range) and resized to image_size: (count, 3, S, S) uint8.

    Each side is drawn uniformly in CROP_SIDE_RANGE times the image's shorter side, shrunk to fit the strip.
    Cropping before resizing keeps the resampling filter from reaching pixels outside the strip.
    """
    x_start, x_stop = x_range
    width, height = image.size
    size = (image_size, image_size)
    sides = rng.uniform(*CROP_SIDE_RANGE, size=count) * min(width, height)
    sides = np.clip(np.rint(sides).astype(int), 1, min(x_stop - x_start, height))
    xs = x_start + rng.integers(0, x_stop - x_start - sides + 1)
    ys = rng.integers(0, height - sides + 1)
    crops = [
        np.asarray(image.crop((x, y, x + side, y + side)).resize(size, Image.Resampling.BICUBIC))
        for x, y, side in zip(xs.tolist(), ys.tolist(), sides.tolist(), strict=True)
    ]
    return np.stack(crops).transpose(0, 3, 1, 2)


def place_at_random(
    crops_per_class: list[np.ndarray], rng: np.random.Generator, object_fraction: float = OBJECT_FRACTION
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The off-centre demo: each crop shrunk to ``object_fraction`` of the side and pasted at a uniformly random
    place on a canvas of clutter (a crop of another class at ``CLUTTER_CONTRAST`` of its contrast about its mean).

    Returns the new crops per class (same shapes, uint8) and each one's object centre (count, 2) as ``(x, y)`` in
    ``grid_sample`` coordinates ([-1, 1], y downwards). Deterministic for ``rng``'s state.
    """
    size = crops_per_class[0].shape[-1]
    side = max(1, round(object_fraction * size))
    placed, centers = [], []
    for label, crops in enumerate(crops_per_class):
        others = [c for other, c in enumerate(crops_per_class) if other != label]
        images, points = np.empty_like(crops), np.empty((len(crops), 2))
        for i, crop in enumerate(crops):
            source = others[rng.integers(len(others))] if others else crops
            clutter = source[rng.integers(len(source))].astype(np.float64)
            mean = clutter.mean(axis=(1, 2), keepdims=True)
            canvas = mean + CLUTTER_CONTRAST * (clutter - mean)
            small = Image.fromarray(crop.transpose(1, 2, 0)).resize((side, side), Image.Resampling.BICUBIC)
            x0, y0 = (int(v) for v in rng.integers(0, size - side + 1, size=2))
            canvas[:, y0 : y0 + side, x0 : x0 + side] = np.asarray(small).transpose(2, 0, 1)
            images[i] = np.clip(np.rint(canvas), 0, 255).astype(np.uint8)
            points[i] = (2 * (x0 + side / 2) / size - 1, 2 * (y0 + side / 2) / size - 1)
        placed.append(images)
        centers.append(points)
    return placed, centers


class NormalizedTensorDataset(Dataset):
    """uint8 image tensors served as normalized floats, optionally flipped at random or as five crops.

    With ``centers`` ((N, 2) object centres, ``(x, y)`` in [-1, 1]) a sample is ``(image, label, center)``, the
    centre mirrored with the image (NaN with five crops: it has no single place there).
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        mean: list[float],
        std: list[float],
        flip: bool,
        five_crop: bool = False,
        centers: torch.Tensor | None = None,
    ) -> None:
        self.images = images
        self.labels = labels
        self.centers = centers
        self.mean = torch.tensor(mean).view(3, 1, 1)
        self.std = torch.tensor(std).view(3, 1, 1)
        self.flip = flip
        size = images.shape[-1]
        self.views = FiveCropViews(round(size * FIVE_CROP_RATIO), T.Resize((size, size))) if five_crop else None

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, key: int | SampleKey) -> tuple[torch.Tensor, ...]:
        index, seed = split_key(key)
        image = self.images[index]
        flip = False
        if self.flip:
            with sample_random_state(seed):
                flip = bool(torch.rand(()) < 0.5)
            image = image.flip(-1) if flip else image
        image = (image.float() / 255 - self.mean) / self.std
        sample = (image if self.views is None else self.views(image)), int(self.labels[index])
        if self.centers is None:
            return sample
        center = self.centers[index].clone()
        if flip:
            center[0] = -center[0]
        if self.views is not None:
            center = torch.full_like(center, float("nan"))
        return (*sample, center)


class DemoDataModule(BaseDataModule):
    """One class per scikit-image sample photograph; train crops from the left 70%, val from the right 30%.

    Crops are drawn once from ``numpy.random.default_rng(seed)``, so the data are identical for a seed.
    """

    def __init__(
        self,
        num_classes: int = 10,
        train_per_class: int = 160,
        val_per_class: int = 40,
        seed: int = 0,
        batch_size: int = 64,
        num_workers: int = 0,
        pin_memory: bool = False,
        image_size: int = 64,
        mean: ChannelStat = 0.5,
        std: ChannelStat = 0.5,
        five_crop: bool = False,
        shuffle_seed: int = 0,
        placement: str = "center",
    ) -> None:
        super().__init__(batch_size, num_workers, pin_memory, image_size, mean, std, five_crop, shuffle_seed)
        self.placement = placement
        self.num_classes = num_classes
        self.train_per_class = train_per_class
        self.val_per_class = val_per_class
        self.seed = seed
        self._validated = False

    @property
    def class_names(self) -> list[str]:
        """Stems of the source photographs, in class order."""
        return [Path(name).stem for name in DEMO_IMAGE_FILES[: self.num_classes]]

    def validate(self) -> None:
        """Check the arguments and that the shipped photographs are present; raise ConfigError otherwise."""
        if self._validated:
            return
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int):
            raise ConfigError(f"data.num_classes: must be an integer, got {self.num_classes!r}.")
        if not MIN_CLASSES <= self.num_classes <= len(DEMO_IMAGE_FILES):
            raise ConfigError(
                f"data.num_classes: {self.num_classes} is out of range; the demo has one class per "
                f"photograph in {DEMO_IMAGE_DIR}. Set data.num_classes between {MIN_CLASSES} and "
                f"{len(DEMO_IMAGE_FILES)}."
            )
        check_int(self.train_per_class, "data.train_per_class", 160)
        check_int(self.val_per_class, "data.val_per_class", 40)
        check_int(self.seed, "data.seed", 0, minimum=0)
        if self.placement not in PLACEMENTS:
            raise ConfigError(
                f"data.placement: {self.placement!r} is not a placement; choose center (the crops fill the image) or "
                "random (each crop small, at a random place on clutter, its centre known)."
            )
        self._check_settings()
        check_train_size(self.num_classes * self.train_per_class, self.batch_size, "the demo train split")
        for index, name in enumerate(DEMO_IMAGE_FILES[: self.num_classes]):
            if not (DEMO_IMAGE_DIR / name).is_file():
                raise ConfigError(
                    f"data.num_classes: demo photograph {DEMO_IMAGE_DIR / name} is missing from the "
                    "installed scikit-image. Reinstall scikit-image from its wheel, or set "
                    f"data.num_classes={index} if that is at least {MIN_CLASSES}."
                )
        self._validated = True

    def setup(self, stage: str | None = None) -> None:
        """Validate, then cut all train and val crops (once)."""
        self.validate()
        if self.train_dataset is not None:
            return
        rng = np.random.default_rng(self.seed)
        train_crops, val_crops = [], []
        for name in DEMO_IMAGE_FILES[: self.num_classes]:
            image = Image.fromarray(read_demo_image(name))
            split_x = int(TRAIN_WIDTH_FRACTION * image.width)
            train_crops.append(random_crops(image, self.train_per_class, (0, split_x), self.image_size, rng))
            val_crops.append(random_crops(image, self.val_per_class, (split_x, image.width), self.image_size, rng))
        mean, std = per_channel(self.mean, "data.mean"), per_channel(self.std, "data.std")
        train_centers = val_centers = None
        if self.placement == "random":
            placement_rng = np.random.default_rng([self.seed, 19])
            train_crops, train_centers = place_at_random(train_crops, placement_rng)
            val_crops, val_centers = place_at_random(val_crops, placement_rng)
        self.train_dataset = self._dataset(train_crops, mean, std, flip=True, centers=train_centers)
        self.val_dataset = self._dataset(
            val_crops, mean, std, flip=False, five_crop=self.five_crop, centers=val_centers
        )
        log.info(
            "Demo data: %d classes, %d train / %d val crops of %dpx",
            self.num_classes,
            len(self.train_dataset),
            len(self.val_dataset),
            self.image_size,
        )

    @staticmethod
    def _dataset(
        crops_per_class: list[np.ndarray],
        mean: list[float],
        std: list[float],
        flip: bool,
        five_crop: bool = False,
        centers: list[np.ndarray] | None = None,
    ) -> NormalizedTensorDataset:
        labels = torch.cat([torch.full((len(c),), label) for label, c in enumerate(crops_per_class)])
        images = torch.from_numpy(np.concatenate(crops_per_class))
        points = None if centers is None else torch.from_numpy(np.concatenate(centers)).float()
        return NormalizedTensorDataset(images, labels, mean, std, flip, five_crop, points)
