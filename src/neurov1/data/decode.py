"""From an image file to the network's input: the paper's reference transforms, or the fast path to 64 px.

``data.decode=exact`` (:class:`ExactDecode`) runs the reference transforms of :mod:`neurov1.data.transforms`: decode
the whole JPEG, RandomResizedCrop to 224, Resize to 64, flip, convert to float and normalise, all in the loader's
workers. ``data.decode=fast`` (the default) produces the same samples in fewer steps:

- the crop box is drawn by torchvision's own ``RandomResizedCrop.get_params`` on the full-size image (the same
  distribution, and the same box for the same random state), then the flip as ``RandomHorizontalFlip`` draws it;
- the JPEG is decoded at the smallest DCT scale (1/2, 1/4, 1/8: Pillow's ``draft``) that leaves the box at least
  as large as the output (1.5 times for validation), so most of a large image is never decoded at full resolution;
- the box is resampled straight to 64 px in one antialiased bilinear resize (instead of 224 px, then 64 px);
- the sample leaves the worker as uint8 (H, W, 3): four times less to copy than float, and the conversion and
  normalisation run on the training device (:meth:`neurov1.data.base.BaseDataModule.device_transform`).

Validation (Resize 256, CenterCrop 224, Resize 64; or the five crops of 224) maps the same boxes back onto the
original image and resamples each straight to 64 px. Mean PSNR against the reference output for the same box, on
photographs: see ``tests/data/test_decode.py`` and docs/operations/data-path.md.
"""

import math

import numpy as np
import torch
from PIL import Image, JpegImagePlugin
from torchvision import transforms as T

from neurov1.data.boxes import UNKNOWN, map_point

RESAMPLE = Image.Resampling.BILINEAR  # torchvision's Resize on PIL images: bilinear, antialiased by Pillow
DCT_FACTORS = (8, 4, 2)  # the reduced scales a JPEG decoder offers (1/8, 1/4, 1/2)
# The decoded crop box keeps at least this many times the output size in pixels. Measured on 500 px photographs
# (docs/operations/data-path.md): training 1.0 (mean PSNR 45 dB against the reference, 2.0x its speed), validation 1.5
# (50 dB; decoding is not its bottleneck).
TRAIN_MIN_BOX_OVER_OUTPUT = 1.0
VAL_MIN_BOX_OVER_OUTPUT = 1.5
TRAIN_SCALE = (0.08, 1.0)  # RandomResizedCrop's defaults, as in the paper's transform
TRAIN_RATIO = (3 / 4, 4 / 3)

Box = tuple[float, float, float, float]  # (left, top, right, bottom) in pixels


def decode_box(image: Image.Image, box: Box, size: int, min_box_over_output: float) -> np.ndarray:
    """The ``box`` of a not yet decoded ``image`` (its own pixel coordinates), resampled to (size, size, 3) uint8.

    A JPEG is decoded at the smallest DCT scale that keeps the box's shorter side at least
    ``min_box_over_output * size`` pixels.
    """
    return decode_boxes(image, [box], size, min_box_over_output)[0]


def decode_boxes(image: Image.Image, boxes: list[Box], size: int, min_box_over_output: float) -> list[np.ndarray]:
    """:func:`decode_box` for several boxes of one image, decoded once (at the scale the smallest box allows)."""
    width, height = image.size
    shortest = min(min(right - left, bottom - top) for left, top, right, bottom in boxes)
    if isinstance(image, JpegImagePlugin.JpegImageFile):
        factor = next((f for f in DCT_FACTORS if shortest / f >= min_box_over_output * size), 1)
        if factor > 1:
            image.draft("RGB", (math.ceil(width / factor), math.ceil(height / factor)))
    scale_x, scale_y = image.size[0] / width, image.size[1] / height
    image.load()
    rgb = image if image.mode == "RGB" else image.convert("RGB")  # (convert would copy an RGB image)
    return [
        np.array(rgb.resize((size, size), RESAMPLE, box=(l * scale_x, t * scale_y, r * scale_x, b * scale_y)))
        for l, t, r, b in boxes  # noqa: E741
    ]


def _shape_only(width: int, height: int) -> torch.Tensor:
    """A tensor of shape (1, height, width) without memory: what RandomResizedCrop.get_params reads of an image."""
    return torch.empty(()).expand(1, height, width)


def scale_box(box: Box, from_size: tuple[int, int], to_size: tuple[int, int]) -> Box:
    """A box in pixels of an image of ``from_size`` (width, height), in pixels of the same image at ``to_size``."""
    sx, sy = to_size[0] / from_size[0], to_size[1] / from_size[1]
    return (box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy)


class FastTrainCrop:
    """RandomResizedCrop -> Resize(size) -> RandomHorizontalFlip, decoded the fast way: (size, size, 3) uint8.

    ``original_size``: the (width, height) of the full-size image the box is drawn on, when ``image`` is a smaller
    copy of it (the streaming store keeps images re-encoded at a smaller size).
    """

    def __init__(self, size: int = 64) -> None:
        self.size = size

    def box(self, width: int, height: int) -> Box:
        """The crop box RandomResizedCrop(scale=(0.08, 1), ratio=(3/4, 4/3)) draws on a width x height image."""
        top, left, box_height, box_width = T.RandomResizedCrop.get_params(
            _shape_only(width, height), list(TRAIN_SCALE), list(TRAIN_RATIO)
        )
        return (left, top, left + box_width, top + box_height)

    def geometry(self, original_size: tuple[int, int], point: tuple[float, float]) -> tuple[float, float]:
        """Where ``point`` (original pixels) lands in the sample: the box and flip drawn as ``__call__`` draws them."""
        box = self.box(*original_size)
        flip = bool(torch.rand(1) < 0.5)
        return map_point(point, box, flip)

    def __call__(self, image: Image.Image, original_size: tuple[int, int] | None = None) -> torch.Tensor:
        original_size = original_size or image.size
        box = scale_box(self.box(*original_size), original_size, image.size)
        flip = bool(torch.rand(1) < 0.5)  # RandomHorizontalFlip's draw, after the crop's
        pixels = decode_box(image, box, self.size, TRAIN_MIN_BOX_OVER_OUTPUT)
        return torch.from_numpy(np.ascontiguousarray(pixels[:, ::-1]) if flip else pixels)


class FastCenterCrops:
    """Resize(resize) -> CenterCrop(crop) (or FiveCrop) -> Resize(size), decoded the fast way.

    Returns (size, size, 3) uint8, or (5, size, size, 3) for the five crops in FiveCrop's order (four corners, then
    the centre).
    """

    def __init__(self, size: int = 64, resize: int = 256, crop: int = 224, five_crop: bool = False) -> None:
        self.size = size
        self.resize = resize
        self.crop = crop
        self.five_crop = five_crop

    def boxes(self, width: int, height: int) -> list[Box]:
        """The crop boxes in the original image's pixels."""
        # torchvision's Resize(int): the shorter side becomes `resize`, the longer int(resize * long / short)
        if width <= height:
            resized = (self.resize, int(self.resize * height / width))
        else:
            resized = (int(self.resize * width / height), self.resize)
        crop, (rw, rh) = self.crop, resized
        center = (int(round((rw - crop) / 2.0)), int(round((rh - crop) / 2.0)))
        corners = [(0, 0), (rw - crop, 0), (0, rh - crop), (rw - crop, rh - crop)] if self.five_crop else []
        return [scale_box((x, y, x + crop, y + crop), resized, (width, height)) for x, y in [*corners, center]]

    def geometry(self, original_size: tuple[int, int], point: tuple[float, float]) -> tuple[float, float]:
        """Where ``point`` (original pixels) lands in the centre crop (unknown with five crops)."""
        return UNKNOWN if self.five_crop else map_point(point, self.boxes(*original_size)[-1], False)

    def __call__(self, image: Image.Image, original_size: tuple[int, int] | None = None) -> torch.Tensor:
        original_size = original_size or image.size
        boxes = [scale_box(box, original_size, image.size) for box in self.boxes(*original_size)]
        decoded = decode_boxes(image, boxes, self.size, VAL_MIN_BOX_OVER_OUTPUT)
        views = [torch.from_numpy(pixels) for pixels in decoded]
        return torch.stack(views) if self.five_crop else views[0]


class ExactDecode:
    """The reference pipeline: the whole image decoded as RGB, then ``transform`` (float, normalised).

    ``geometry``: the matching fast decoder's ``geometry`` (the same random draws in the same order), which maps
    an object's centre through this transform's crop, flip and resize (:func:`neurov1.data.boxes.located`).
    """

    def __init__(self, transform, geometry=None) -> None:
        self.transform = transform
        self.geometry = geometry

    def __call__(self, image: Image.Image, original_size: tuple[int, int] | None = None) -> torch.Tensor:
        return self.transform(image.convert("RGB"))
