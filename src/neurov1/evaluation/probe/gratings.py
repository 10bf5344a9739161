"""The Marques2020 gratings as the model sees them through Brain-Score, rendered straight into tensors.

Brain-Score shows a property benchmark's stimuli to a model in three steps: the stimulus set's PNG (672 px for
12 deg; the blank 448 px), ``benchmark_helpers.screen.place_on_screen`` (a centre crop to the model's
``visual_degrees``, or a grey border around it above 12 deg) and the model's preprocessing (a bilinear, antialiased
PIL resize of the RGB image to the input size, ``ToTensor``, the normalisation). This module reproduces that chain
without a file: each grating is drawn with the package's own formula (``marques_stim_common.Grating``: a sine
grating, ``uint8(((sin + 1) / 2) * 255)``, inside a hard circular aperture on grey 128) in float64, only inside
the aperture's bounding box, on the cropped screen; the screen is resized with torch's uint8 antialiased bilinear
kernel, which gives Pillow's values (identical at 448 -> 64 px; at most 1 grey level apart at a few pixels for
other ratios). The parameters come from :func:`neurov1.evaluation.brainscore.stimulus_sets.grating_parameters` (the
package's ``GRAT_PARAMS`` in benchmark row order).

Sets are uint8 tensors of shape (n, size, size), one grey level per pixel (the three RGB channels are equal), kept
per (input size, visual degrees) in the cache folder and in memory (9,097 x 64 x 64 px: 37 MB).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from neurov1.evaluation.brainscore.stimulus_sets import (
    BLANK,
    ORIENTATION,
    RECEPTIVE_FIELD,
    SIZE,
    SPATIAL_FREQUENCY,
    grating_parameters,
    packaging_module,
)
from neurov1.utils.io import atomic_writer, default_cache_dir

GRATING_SETS: tuple[str, ...] = (RECEPTIVE_FIELD, ORIENTATION, SPATIAL_FREQUENCY, SIZE)
GREY = 128  # marques_stim_common: uint8(255 / 2 + 1); PIL's "gray" background is (128, 128, 128) too
RENDER_CHUNK = 256  # stimuli drawn and resized at once
STIMULI_VERSION = 1  # of the rendering: part of the cache file name


def screen_size(source_px: int, source_degrees: float, visual_degrees: float) -> tuple[int, int]:
    """(size, left) of the screen that ``place_on_screen`` cuts from (or pads around) a square source image.

    ``size = round(source_px * visual_degrees / source_degrees)``, ``left = round((source_px - size) / 2)`` (numpy's
    half-to-even rounding, as Brain-Score's ``ImageConverter``): the crop box starts at ``left``; a negative
    ``left`` is the grey border of an enlarged screen.
    """
    size = int(np.round(source_px * visual_degrees / source_degrees))
    return size, int(np.round((source_px - size) / 2))


def _draw_boxes(parameters: np.ndarray, origins: np.ndarray, box: int, source_px: int, px_per_degree: float):
    """Grey levels (n, box, box) of the gratings in square boxes whose top-left source pixels are ``origins`` (n, 2:
    row, column), and their aperture masks; the arithmetic of ``Grating.update_frame/update_tex/update_stimulus``."""
    p = torch.from_numpy(parameters)
    offsets = torch.arange(box, dtype=torch.float64)
    rows = torch.from_numpy(origins[:, 0]).double()[:, None] + offsets  # (n, box) source pixel indices
    cols = torch.from_numpy(origins[:, 1]).double()[:, None] + offsets
    y = ((rows - source_px / 2) / px_per_degree - p[:, 0:1])[:, :, None]
    x = ((cols - source_px / 2) / px_per_degree - p[:, 1:2])[:, None, :]
    orientation = (p[:, 5] / 180 * np.pi)[:, None, None]
    # numpy's order of operations, in place: sin((x cos + y sin) * sf * 2 * pi + phase) * contrast, then
    # ((t + 1) / 2) * 255 truncated to uint8
    texture = x * torch.cos(orientation) + y * torch.sin(orientation)
    texture.mul_(p[:, 4, None, None]).mul_(2).mul_(np.pi).add_((p[:, 6] / 180 * np.pi)[:, None, None]).sin_()
    texture.mul_(p[:, 2, None, None]).add_(1).div_(2).mul_(255)
    inside = x * x + y * y <= p[:, 3, None, None] ** 2
    return texture.to(torch.uint8), inside


def render_gratings(parameters: np.ndarray, image_size: int, visual_degrees: float) -> torch.Tensor:
    """Gratings with the given parameter rows (position_y, position_x, contrast, radius, spatial_frequency,
    orientation, phase) as a model with ``image_size`` px for ``visual_degrees`` sees them: uint8 (n, size, size)."""
    gen = packaging_module("marques_gen_stim")
    source_px, source_degrees = gen.SIZE_PX, gen.DEGREES
    px_per_degree = source_px / source_degrees
    screen, left = screen_size(source_px, source_degrees, visual_degrees)
    out = torch.empty((len(parameters), image_size, image_size), dtype=torch.uint8)
    visible = (max(left, 0), min(left + screen, source_px))  # source pixels on the screen (rows and columns)
    for start in range(0, len(parameters), RENDER_CHUNK):
        chunk = parameters[start : start + RENDER_CHUNK]
        canvas = torch.full((len(chunk), screen, screen), GREY, dtype=torch.uint8)
        for radius in np.unique(chunk[:, 3]):  # one box size per radius
            which = np.flatnonzero(chunk[:, 3] == radius)
            reach = radius * px_per_degree + 1
            centres = source_px / 2 + chunk[which, :2] * px_per_degree  # (row, column) of each aperture centre
            first = np.clip(np.floor(centres - reach), *visible).astype(np.int64)
            last = np.clip(np.ceil(centres + reach) + 1, *visible).astype(np.int64)
            box = int((last - first).max())
            if box <= 0:
                continue  # every aperture of this size lies off the screen
            grey, inside = _draw_boxes(chunk[which], first, box, source_px, px_per_degree)
            for k, index in enumerate(which):
                (r0, c0), (r1, c1) = first[k] - left, last[k] - left
                patch = canvas[index, r0:r1, c0:c1]
                patch.copy_(torch.where(inside[k, : r1 - r0, : c1 - c0], grey[k, : r1 - r0, : c1 - c0], patch))
        resized = F.interpolate(canvas[:, None], size=(image_size, image_size), mode="bilinear", antialias=True)
        out[start : start + len(chunk)] = resized[:, 0]
    return out


def stimuli_file(image_size: int, visual_degrees: float, cache_dir: str | os.PathLike[str] | None) -> Path:
    """Where the rendered sets are kept between processes: ``<cache_dir>/v1_probe/stimuli-<size>px-<deg>deg.pt``."""
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    return root / "v1_probe" / f"stimuli-{image_size}px-{visual_degrees:g}deg-v{STIMULI_VERSION}.pt"


def render_probe_stimuli(image_size: int, visual_degrees: float) -> dict[str, torch.Tensor]:
    """The blank and the four grating sets rendered afresh (what :func:`probe_stimuli` keeps)."""
    sets = {name: render_gratings(grating_parameters(name), image_size, visual_degrees) for name in GRATING_SETS}
    # the blank (448 px of grey 128 for 12 deg) is uniform grey at any crop and size
    sets[BLANK] = torch.full((1, image_size, image_size), GREY, dtype=torch.uint8)
    return sets


@functools.cache
def probe_stimuli(
    image_size: int, visual_degrees: float, cache_dir: str | os.PathLike[str] | None = None
) -> dict[str, torch.Tensor]:
    """The blank and the four grating sets at the model's resolution, uint8 (n, size, size), in benchmark row order.

    Rendered once per (size, degrees): kept in :func:`stimuli_file` (written atomically; an unreadable or
    incomplete file is rendered again) and, for the process, in memory (``probe_stimuli.cache_clear()`` forgets).
    """
    path = stimuli_file(image_size, visual_degrees, cache_dir)
    expected = {BLANK: 1, **{name: len(grating_parameters(name)) for name in GRATING_SETS}}
    try:
        sets = torch.load(path, map_location="cpu", weights_only=True)
        if {name: tuple(tensor.shape) for name, tensor in sets.items()} != {
            name: (length, image_size, image_size) for name, length in expected.items()
        }:
            raise ValueError(f"{path} holds other shapes")
    except Exception:  # noqa: BLE001 - a missing, truncated or foreign cache file is rendered again
        sets = render_probe_stimuli(image_size, visual_degrees)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_writer(path) as file:
            torch.save(sets, file)
    return sets
