"""Where the objects are: ILSVRC2012 object boxes, mapped through each sample's crop, flip and resize.

``data.boxes=DIR`` reads the localisation files of the ImageNet Object Localization Challenge
(``LOC_train_solution.csv``, ``LOC_val_solution.csv``; header ``ImageId,PredictionString``, the string a
space-separated list of ``wnid xmin ymin xmax ymax`` groups in pixels of the original image). An image's object
centre is the centre of its largest box; an image without a box has none (NaN). Each sample then carries its centre
in the network's input as ``(x, y)`` in [-1, 1] (``F.grid_sample``'s coordinates: x to the right, y downwards),
NaN where it is unknown or falls outside the crop, for the fixation policies (:mod:`neurov1.components.fixation`).
"""

import csv
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from neurov1.errors import ConfigError

FILES = ("LOC_train_solution.csv", "LOC_val_solution.csv")
HEADER = ["ImageId", "PredictionString"]
FIX = (
    "expected the ILSVRC2012 localisation format: header ImageId,PredictionString, then rows like "
    "'n01751748_11135,n01751748 22 14 301 270' (groups of 'wnid xmin ymin xmax ymax', pixels, xmin < xmax, "
    "ymin < ymax); repair or re-download the file"
)
Box = tuple[float, float, float, float]
UNKNOWN = (math.nan, math.nan)


def _malformed(path: Path, line: int, problem: str) -> ConfigError:
    return ConfigError(f"data.boxes: {path} line {line}: {problem}; {FIX}.")


def parse_boxes(text: str) -> list[Box]:
    """The boxes of a PredictionString (ValueError when it is not groups of ``wnid xmin ymin xmax ymax``)."""
    fields = text.split()
    if len(fields) % 5:
        raise ValueError(f"{len(fields)} fields are not groups of 5")
    boxes = []
    for start in range(0, len(fields), 5):
        wnid, *numbers = fields[start : start + 5]
        xmin, ymin, xmax, ymax = (float(n) for n in numbers)
        if (
            not all(map(math.isfinite, (xmin, ymin, xmax, ymax)))
            or xmin >= xmax
            or ymin >= ymax
            or xmin < 0
            or ymin < 0
        ):
            raise ValueError(f"box {wnid} {' '.join(numbers)} is not a box")
        boxes.append((xmin, ymin, xmax, ymax))
    return boxes


def object_center(boxes: Sequence[Box]) -> tuple[float, float]:
    """The centre (x, y) in pixels of the largest box (the first of equal ones)."""
    xmin, ymin, xmax, ymax = max(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
    return ((xmin + xmax) / 2, (ymin + ymax) / 2)


def read_box_file(path: Path) -> dict[str, tuple[float, float]]:
    """{ImageId: object centre in original pixels} of one localisation file; one-line ConfigError when malformed."""
    centers = {}
    try:
        with path.open(newline="") as handle:
            rows = csv.reader(handle)
            header = next(rows, None)
            if header != HEADER:
                raise _malformed(path, 1, f"header {','.join(header or [])!r} is not {','.join(HEADER)}")
            for line, row in enumerate(rows, start=2):
                if len(row) != 2 or not row[0]:
                    raise _malformed(path, line, f"{len(row)} columns instead of ImageId,PredictionString")
                try:
                    boxes = parse_boxes(row[1])
                except ValueError as error:
                    raise _malformed(path, line, str(error)) from None
                if boxes:
                    centers[row[0]] = object_center(boxes)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise ConfigError(f"data.boxes: cannot read {path} ({type(error).__name__}: {error}); {FIX}.") from None
    return centers


def read_boxes(directory: str | Path) -> dict[str, tuple[float, float]]:
    """{ImageId (the file's stem): object centre (x, y) in original pixels} from the files of ``directory``."""
    folder = Path(directory).expanduser()
    found = [folder / name for name in FILES if (folder / name).is_file()]
    if not found:
        raise ConfigError(
            f"data.boxes: {folder} holds neither {' nor '.join(FILES)} (the ILSVRC2012 localisation files of the "
            "ImageNet Object Localization Challenge); set data.boxes=<their folder> or null."
        )
    centers: dict[str, tuple[float, float]] = {}
    for path in found:
        centers.update(read_box_file(path))
    return centers


def centers_of(relative_paths: Sequence[str], centers: dict[str, tuple[float, float]]) -> np.ndarray:
    """(N, 2) float64 centres in original pixels of the images (by file stem), NaN for those without a box."""
    return np.array([centers.get(Path(p).stem, UNKNOWN) for p in relative_paths], dtype=np.float64).reshape(-1, 2)


def map_point(point: Sequence[float], box: Box, flip: bool) -> tuple[float, float]:
    """A point (x, y) in original pixels, in the coordinates of the input made from ``box`` (resized to the
    output, then mirrored when ``flip``): (x, y) in [-1, 1]; NaN when unknown or outside the box."""
    left, top, right, bottom = box
    x = 2 * (point[0] - left) / (right - left) - 1
    y = 2 * (point[1] - top) / (bottom - top) - 1
    if not (math.isfinite(x) and math.isfinite(y)) or abs(x) > 1 or abs(y) > 1:
        return UNKNOWN
    return (-x if flip else x, y)


def located(
    decode: Callable[..., torch.Tensor],
    image: Image.Image,
    point: Sequence[float],
    original_size: tuple[int, int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``decode``'s sample of ``image`` and the object centre ``point`` (original pixels) mapped through the same
    crop, flip and resize (the decoder's ``geometry`` replays its random draws; torch's RNG is then rewound so the
    sample is exactly the one ``decode`` alone makes). NaN when the decoder has no geometry (e.g. five crops)."""
    geometry: Any = getattr(decode, "geometry", None)
    size = original_size or image.size
    center = UNKNOWN
    if geometry is not None and np.all(np.isfinite(point)):
        state = torch.get_rng_state()
        center = geometry(size, point)
        torch.set_rng_state(state)
    sample = decode(image, original_size) if original_size is not None else decode(image)
    return sample, torch.tensor(center, dtype=torch.float32)
