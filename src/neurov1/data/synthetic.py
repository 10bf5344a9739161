"""An ImageNet-like JPEG folder made from the photographs shipped with scikit-image (no download).

For benchmarks and tests of the ImageNet data path: ``root/{train,val}/<class>/*.JPEG``, one class per photograph,
each file a random crop of it (half to all of its area, landscape 4:3 or portrait 3:4, as most ImageNet photos),
randomly flipped and brightened a little, resized to ``long_side`` pixels on its longer side (ImageNet's typical
500 px) and saved as JPEG (quality 90). Deterministic for a seed.
"""

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

from neurov1.data.demo import DEMO_IMAGE_FILES, read_demo_image
from neurov1.utils.io import write_bytes_atomic

ASPECTS = (4 / 3, 3 / 4)


def photo_crop(photo: Image.Image, rng: np.random.Generator, long_side: int) -> Image.Image:
    """A random crop of ``photo`` at a 4:3 or 3:4 aspect, flipped and brightened at random, resized to long_side."""
    aspect = ASPECTS[rng.integers(len(ASPECTS))]
    width, height = photo.size
    area = rng.uniform(0.5, 1.0) * width * height
    box_width = min(width, round(np.sqrt(area * aspect)))
    box_height = min(height, round(box_width / aspect))
    left, top = rng.integers(0, width - box_width + 1), rng.integers(0, height - box_height + 1)
    image = photo.crop((left, top, left + box_width, top + box_height))
    if rng.random() < 0.5:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.8, 1.2))
    scale = long_side / max(image.size)
    return image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BICUBIC)


def imagenet_like(
    root: str | Path,
    classes: int = 10,
    train_per_class: int = 20,
    val_per_class: int = 5,
    long_side: int = 500,
    quality: int = 90,
    seed: int = 0,
) -> Path:
    """Write the folder (files that already exist are kept, so a second call costs nothing); returns ``root``."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for label, name in enumerate(DEMO_IMAGE_FILES[:classes]):
        photo = Image.fromarray(read_demo_image(name))
        for split, count in (("train", train_per_class), ("val", val_per_class)):
            folder = root / split / f"n{label:08d}"
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(count):
                image = photo_crop(photo, rng, long_side)
                path = folder / f"{Path(name).stem}_{index:05d}.JPEG"
                if not path.is_file():
                    encoded = io.BytesIO()
                    image.save(encoded, format="JPEG", quality=quality)
                    write_bytes_atomic(path, encoded.getvalue(), sync=False)
    return root
