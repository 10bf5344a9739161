"""Figure F.1: an image and its cortical-magnification transform, centred and off-centre, on the input and the stem.

The photograph is scikit-image's cat (``chelsea.png``, shipped with the package), cropped square around the cat's
face (centred, Fig. F.1 A) and shifted sideways so the face lies off the fixation point (Fig. F.1 C).
"""

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from neurov1.components import PolarTransform
from neurov1.data.demo import read_demo_image
from neurov1.inspection.figures import panels, save_panels
from neurov1.inspection.parameters import modules_of
from neurov1.models.activations import layer_input

IMAGE_FILE = "chelsea.png"
CAT_FACE = (160, 235)  # (row, col) px of the cat's face in chelsea.png (300 x 451 px)
CROP_SIDE = 240  # px


def crops(offset: float) -> dict[str, np.ndarray]:
    """Square crops (CROP_SIDE px, HxWx3 uint8) with the cat's face at the centre and ``offset`` x side to the side.

    The off-centre crop is shifted to the right (the face appears left of centre), clamped to the image.
    """
    image = read_demo_image(IMAGE_FILE)
    top = CAT_FACE[0] - CROP_SIDE // 2
    left = CAT_FACE[1] - CROP_SIDE // 2
    shifted = min(left + round(offset * CROP_SIDE), image.shape[1] - CROP_SIDE)
    return {
        "centred": image[top : top + CROP_SIDE, left : left + CROP_SIDE],
        "off-centre": image[top : top + CROP_SIDE, shifted : shifted + CROP_SIDE],
    }


def resized(crop: np.ndarray, size: int) -> torch.Tensor:
    """A uint8 HxWx3 crop as a (3, size, size) float image in [0, 1] (antialiased bilinear resize)."""
    image = torch.from_numpy(crop.copy()).permute(2, 0, 1).float()[None] / 255
    return torch.nn.functional.interpolate(image, size=(size, size), mode="bilinear", antialias=True)[0].clamp(0, 1)


def scaled_transform(transform: PolarTransform, input_size: int) -> PolarTransform:
    """The same polar geometry (radial edges, angle bins, fixation point, output/input ratio) for another input size."""
    factor = input_size / transform.input_size[0]
    return PolarTransform(
        input_size=input_size,
        output_size=round(transform.output_size[0] * factor),
        radius_bins=[edge * factor for edge in transform.radius_edges],
        angle_bins=len(transform.angle_edges) - 1,
        center=[coordinate * factor for coordinate in transform.center],
    )


def central_magnification(transform: PolarTransform) -> dict[str, float]:
    """How much more of the polar map the centre gets than its share of the input.

    Central disc: radius = half the distance from the fixation point to the nearest border. Each ring becomes one
    row of the polar map (before the final resize, which keeps the proportions), so the disc's share of the map is
    the share of rings lying inside it; its share of the input is its share of the pixels.
    """
    height, width = transform.input_size
    center_row, center_col = transform.center
    radius = min(center_row, center_col, height - center_row, width - center_col) / 2
    ring_upper_edges = np.asarray(transform.radius_edges[1:])
    pixels_per_ring = transform.region_pixel_count.sum(dim=1).numpy()
    disc_rings = ring_upper_edges <= radius
    input_fraction = pixels_per_ring[disc_rings].sum() / (height * width)
    map_fraction = disc_rings.mean()
    return {
        "disc_radius_px": float(radius),
        "input_area_fraction": float(input_fraction),
        "polar_map_fraction": float(map_fraction),
        "magnification": float(map_fraction / input_fraction),
    }


def geometry(transform: PolarTransform) -> dict[str, Any]:
    return {
        "input_size": list(transform.input_size),
        "output_size": list(transform.output_size),
        "radius_edges_px": list(transform.radius_edges),
        "angle_bins": len(transform.angle_edges) - 1,
        "center": list(transform.center),
        "empty_regions": int((transform.region_pixel_count == 0).sum()),
    }


def _show(axis: Any, image: torch.Tensor, title: str) -> None:
    axis.imshow(image.permute(1, 2, 0).numpy() if image.ndim == 3 else image.numpy(), cmap="magma")
    axis.set_title(title, fontsize=9)
    axis.set_axis_off()


@torch.no_grad()
def analyze_polar(
    net: nn.Module,
    out_dir: Path,
    model_size: int,
    image_size: int,
    offset: float,
    mean: float,
    std: float,
) -> dict[str, Any]:
    """Figure F.1 at ``image_size`` px with the model's polar geometry, and the model's own stem on the same crops.

    Stem: the crop at the model's input size ``model_size``, normalised with ``mean``/``std``, and the feature map
    that the model's PolarTransform (in place of the stem's pooling) receives from it in the network's forward
    (channel mean shown), before and after the transform.
    """
    ((pooling, stem_transform),) = modules_of(net, PolarTransform).items()
    input_transform = scaled_transform(stem_transform, image_size)
    views = crops(offset)

    figure, axes = panels(4)
    for column, (name, crop) in enumerate(views.items()):
        image = resized(crop, image_size)
        _show(axes[0, 2 * column], image, f"{name} ({image_size} px)")
        _show(axes[0, 2 * column + 1], input_transform(image).clamp(0, 1), f"{name} transformed (rows: radius)")
    input_figure = save_panels(figure, out_dir / "polar_input.png", "Cortical magnification of the input (Fig. F.1)")

    net.eval()
    figure, axes = panels(3, rows=2)
    for row, (name, crop) in enumerate(views.items()):
        image = resized(crop, model_size)
        features = layer_input(net, ((image - mean) / std)[None], pooling)[0]
        transformed = stem_transform(features)
        _show(axes[row, 0], image, f"{name} input ({model_size} px)")
        _show(axes[row, 1], features.mean(0), f"stem features {tuple(features.shape)}, channel mean")
        _show(axes[row, 2], transformed.mean(0), f"after PolarTransform {tuple(transformed.shape)}")
    stem_figure = save_panels(
        figure, out_dir / "polar_stem.png", "The model's stem: before and after its polar transform"
    )
    return {
        "stem": {**geometry(stem_transform), "central_disc": central_magnification(stem_transform)},
        "input": {**geometry(input_transform), "central_disc": central_magnification(input_transform)},
        "image": f"{IMAGE_FILE} (scikit-image), {CROP_SIDE} px crops, off-centre shift {offset:g} x side",
        "files": [input_figure.name, stem_figure.name],
    }
