"""The 15 Tiny-ImageNet-C corruptions (Hendrycks & Dietterich, ICLR 2019) at severities 1-5.

:func:`corrupt` applies one to an HxWx3 uint8 image. Each corruption function takes the image as floats in [0, 1]
and returns floats that :func:`corrupt` clips to [0, 1] and rounds back to uint8. All randomness comes from the
``numpy.random.Generator`` passed in, so a seed fixes the output. The parameters are the published 64 px
Tiny-ImageNet-C ones (github.com/hendrycks/robustness, ``ImageNet-C/create_c/make_tinyimagenet_c.py``) and are used
unchanged at other image sizes.

Frost is a stand-in: the original blends photographs of frost, which are not available, so :func:`frost` blends a
seeded procedural ice texture (:func:`frost_texture`) with the published weights instead.
"""

import io
from collections.abc import Callable

import numpy as np
from PIL import Image
from scipy import ndimage
from skimage import color

CORRUPTION_GROUPS: dict[str, tuple[str, ...]] = {
    "noise": ("gaussian_noise", "shot_noise", "impulse_noise"),
    "blur": ("defocus_blur", "glass_blur", "motion_blur", "zoom_blur"),
    "weather": ("snow", "frost", "fog", "brightness"),
    "digital": ("contrast", "elastic_transform", "pixelate", "jpeg_compression"),
}
CORRUPTIONS: tuple[str, ...] = tuple(name for group in CORRUPTION_GROUPS.values() for name in group)
SEVERITIES = (1, 2, 3, 4, 5)

# Tiny-ImageNet-C (64 px) parameters per severity 1..5, from Hendrycks & Dietterich (2019) and their generator
# (github.com/hendrycks/robustness, ImageNet-C/create_c/make_tinyimagenet_c.py).
GAUSSIAN_NOISE_SIGMA = (0.04, 0.08, 0.12, 0.15, 0.18)
SHOT_NOISE_PHOTONS = (250, 100, 50, 30, 15)
IMPULSE_NOISE_AMOUNT = (0.01, 0.02, 0.05, 0.08, 0.14)
DEFOCUS_BLUR = ((0.5, 0.6), (1, 0.1), (1.5, 0.1), (2.5, 0.01), (3, 0.1))  # (disk radius, alias blur sigma)
GLASS_BLUR = ((0.1, 1, 1), (0.5, 1, 1), (0.6, 1, 2), (0.7, 2, 1), (0.9, 2, 2))  # (sigma, max delta, iterations)
MOTION_BLUR = ((10, 1), (10, 1.5), (10, 2), (10, 2.5), (12, 3))  # (radius, sigma)
ZOOM_BLUR_MAX_ZOOM = (1.06, 1.11, 1.16, 1.21, 1.26)
ZOOM_BLUR_STEP = 0.01
# (mean, std, zoom, threshold, blur radius, blur sigma, image weight)
SNOW = (
    (0.1, 0.2, 1, 0.6, 8, 3, 0.8),
    (0.1, 0.2, 1, 0.5, 10, 4, 0.8),
    (0.15, 0.3, 1.75, 0.55, 10, 4, 0.7),
    (0.25, 0.3, 2.25, 0.6, 12, 6, 0.65),
    (0.3, 0.3, 1.25, 0.65, 14, 12, 0.6),
)
FROST = ((1, 0.3), (0.9, 0.4), (0.8, 0.45), (0.75, 0.5), (0.7, 0.55))  # (image weight, frost weight)
FOG = ((0.4, 3), (0.7, 3), (1, 2.5), (1.5, 2), (2, 1.75))  # (strength, decay)
BRIGHTNESS = (0.1, 0.2, 0.3, 0.4, 0.5)
CONTRAST = (0.4, 0.3, 0.2, 0.1, 0.05)
# (alpha, sigma, affine jitter) in pixels, 64 x the published fractions of the image size:
# (0, 0, .08), (.05, .3, .06), (.1, .08, .06), (.1, .03, .03), (.16, .03, .02).
ELASTIC_TRANSFORM = ((0, 0, 5.12), (3.2, 19.2, 3.84), (6.4, 5.12, 3.84), (6.4, 1.92, 1.92), (10.24, 1.92, 1.28))
PIXELATE = (0.9, 0.8, 0.7, 0.6, 0.5)
JPEG_QUALITY = (65, 58, 50, 40, 25)

LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601, as in OpenCV's RGB2GRAY

# Procedural frost stand-in, chosen by eye to resemble the frost photographs: pale blue-white ice needles.
FROST_TINT = np.array([0.85, 0.92, 1.0])
FROST_MEAN, FROST_STD = 0.25, 0.25
FROST_NEEDLES_PER_PIXEL = 1 / 100
FROST_NEEDLE_LENGTH = (6, 22)  # pixels
FROST_BRANCHES_PER_NEEDLE = 6
FROST_BRANCH_FRACTION = (0.15, 0.4)  # of the needle's length
FROST_DECAY = 2.0  # plasma fractal decay of the density map
FROST_HAZE = 0.5


def gaussian_noise(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Additive zero-mean Gaussian noise."""
    return image + rng.normal(0, GAUSSIAN_NOISE_SIGMA[severity - 1], image.shape)


def shot_noise(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Poisson photon noise: each value is a photon count with mean value x photons, rescaled."""
    photons = SHOT_NOISE_PHOTONS[severity - 1]
    return rng.poisson(image * photons) / photons


def impulse_noise(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Salt-and-pepper noise: a fraction of the channel values set to 0 or 1 with equal odds."""
    hit = rng.random(image.shape) < IMPULSE_NOISE_AMOUNT[severity - 1]
    salt = rng.random(image.shape) < 0.5
    return np.where(hit, salt.astype(float), image)


def defocus_blur(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Convolution with a disk, antialiased by a 3x3 Gaussian of the alias sigma."""
    radius, alias_sigma = DEFOCUS_BLUR[severity - 1]
    reach = int(np.ceil(radius)) + 1
    offsets = np.arange(-reach, reach + 1)
    disk = (offsets[:, None] ** 2 + offsets[None, :] ** 2 <= radius**2).astype(float)
    taps = np.exp(-(np.array([-1.0, 0.0, 1.0]) ** 2) / (2 * alias_sigma**2))
    disk = ndimage.convolve(disk, np.outer(taps, taps), mode="constant")
    return ndimage.convolve(image, (disk / disk.sum())[..., None], mode="mirror")


def glass_blur(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian blur, then local pixel scrambling, then Gaussian blur again.

    The scrambling sweeps the pixels from the bottom right to the top left (``iterations`` times) and sets each to
    the current value of the pixel at a random offset in [-max delta, max delta) rows and columns. That is what the
    reference code does: its "swap" is a tuple assignment of numpy views, which copies instead of swapping.
    """
    sigma, max_delta, iterations = GLASS_BLUR[severity - 1]
    height, width = image.shape[:2]
    rows = range(height - max_delta, max_delta, -1)
    cols = range(width - max_delta, max_delta, -1)
    source_of = list(range(height * width))  # flat index of the pixel whose value each position now holds
    for _ in range(iterations):
        offsets = rng.integers(-max_delta, max_delta, size=(len(rows) * len(cols), 2)).tolist()
        positions = ((row, col) for row in rows for col in cols)
        for (row, col), (row_offset, col_offset) in zip(positions, offsets, strict=True):
            source_of[row * width + col] = source_of[(row + row_offset) * width + col + col_offset]
    blurred = _gaussian_blur(image, sigma)
    return _gaussian_blur(blurred.reshape(height * width, -1)[source_of].reshape(image.shape), sigma)


def motion_blur(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Blur along a line at a random angle in [-45, 45) degrees."""
    radius, sigma = MOTION_BLUR[severity - 1]
    return _motion_blur(image, radius, sigma, rng.uniform(-45, 45))


def zoom_blur(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Mean of the image and its centre zoomed by 1, 1.01, ... up to the maximum zoom."""
    # np.arange as in the reference: float rounding includes the end point 1.06 and 1.11 but not the others.
    zooms = np.arange(1, ZOOM_BLUR_MAX_ZOOM[severity - 1], ZOOM_BLUR_STEP)
    return (image + sum(_zoom_center(image, zoom) for zoom in zooms)) / (len(zooms) + 1)


def snow(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Thresholded, zoomed Gaussian noise streaked by motion blur, over a whitened image."""
    mean, std, zoom, threshold, blur_radius, blur_sigma, image_weight = SNOW[severity - 1]
    flakes = _zoom_center(rng.normal(mean, std, image.shape[:2]), zoom)
    flakes[flakes < threshold] = 0
    flakes = _motion_blur(np.clip(flakes, 0, 1), blur_radius, blur_sigma, rng.uniform(-135, -45))
    whitened = np.maximum(image, 1.5 * (image @ LUMA_WEIGHTS)[..., None] + 0.5)
    blended = image_weight * image + (1 - image_weight) * whitened
    return blended + (flakes + np.rot90(flakes, 2))[..., None]


def frost(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Weighted sum of the image and a frost texture (a procedural stand-in, see :func:`frost_texture`)."""
    image_weight, frost_weight = FROST[severity - 1]
    return image_weight * image + frost_weight * frost_texture(image.shape[:2], rng)


def fog(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Add a plasma fractal haze, then rescale so the image's peak stays below 1."""
    strength, decay = FOG[severity - 1]
    height, width = image.shape[:2]
    haze = plasma_fractal(max(height, width), decay, rng)[:height, :width, None]
    peak = image.max()
    return (image + strength * haze) * peak / (peak + strength)


def brightness(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Raise the HSV value channel."""
    hsv = color.rgb2hsv(image)
    hsv[..., 2] = np.clip(hsv[..., 2] + BRIGHTNESS[severity - 1], 0, 1)
    return color.hsv2rgb(hsv)


def contrast(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Scale each channel's deviations from its mean."""
    means = image.mean(axis=(0, 1))
    return (image - means) * CONTRAST[severity - 1] + means


def elastic_transform(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """A random affine warp composed with a smoothed random displacement field, resampled once (bilinear).

    The affine moves three anchor points by up to the jitter; the displacement is uniform noise in [-1, 1] smoothed by
    a Gaussian of the given sigma (truncated at 3 sigma) and scaled by alpha.
    """
    alpha, sigma, jitter = ELASTIC_TRANSFORM[severity - 1]
    height, width = image.shape[:2]
    half_side = max(1, min(height, width) // 3)
    anchors = np.array([height // 2, width // 2]) + half_side * np.array([[1, 1], [1, -1], [-1, -1]])
    moved = anchors + rng.uniform(-jitter, jitter, anchors.shape)
    # The affine taking the moved anchors back to the originals maps each output pixel to where it samples the input.
    output_to_input = np.linalg.solve(np.column_stack([moved, np.ones(3)]), anchors)
    displacement = [
        alpha * ndimage.gaussian_filter(rng.uniform(-1, 1, (height, width)), sigma, mode="reflect", truncate=3)
        for _ in range(2)
    ]
    rows, cols = np.mgrid[:height, :width].astype(float)
    points = np.stack([rows + displacement[0], cols + displacement[1], np.ones_like(rows)], axis=-1)
    coordinates = np.moveaxis(points @ output_to_input, -1, 0)
    channels = [
        ndimage.map_coordinates(channel, coordinates, order=1, mode="mirror") for channel in image.transpose(2, 0, 1)
    ]
    return np.stack(channels, axis=-1)


def pixelate(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Box-filter down by the factor, then box-resample back up."""
    factor = PIXELATE[severity - 1]
    picture = _to_pil(image)
    small = picture.resize((max(1, int(picture.width * factor)), max(1, int(picture.height * factor))), Image.BOX)
    return _from_pil(small.resize(picture.size, Image.BOX))


def jpeg_compression(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Round trip through a JPEG of the given quality (Pillow, 4:2:0 chroma subsampling)."""
    buffer = io.BytesIO()
    _to_pil(image).save(buffer, "JPEG", quality=JPEG_QUALITY[severity - 1])
    with Image.open(buffer) as decoded:
        return _from_pil(decoded)


CORRUPTION_FUNCTIONS: dict[str, Callable[[np.ndarray, int, np.random.Generator], np.ndarray]] = {
    "gaussian_noise": gaussian_noise,
    "shot_noise": shot_noise,
    "impulse_noise": impulse_noise,
    "defocus_blur": defocus_blur,
    "glass_blur": glass_blur,
    "motion_blur": motion_blur,
    "zoom_blur": zoom_blur,
    "snow": snow,
    "frost": frost,
    "fog": fog,
    "brightness": brightness,
    "contrast": contrast,
    "elastic_transform": elastic_transform,
    "pixelate": pixelate,
    "jpeg_compression": jpeg_compression,
}


def corrupt(image: np.ndarray, name: str, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Corruption ``name`` at ``severity`` (1-5) of an HxWx3 uint8 image, as a new HxWx3 uint8 image."""
    if name not in CORRUPTION_FUNCTIONS:
        raise ValueError(f"unknown corruption {name!r}; valid corruptions: {', '.join(CORRUPTIONS)}")
    if isinstance(severity, bool) or not isinstance(severity, int | np.integer) or severity not in SEVERITIES:
        raise ValueError(f"severity {severity!r} is invalid; valid severities: {', '.join(map(str, SEVERITIES))}")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be an HxWx3 uint8 array, got {image.dtype} of shape {image.shape}")
    corrupted = CORRUPTION_FUNCTIONS[name](image / 255.0, int(severity), rng)
    return np.rint(np.clip(corrupted, 0, 1) * 255).astype(np.uint8)


def plasma_fractal(size: int, decay: float, rng: np.random.Generator) -> np.ndarray:
    """Diamond-square plasma fractal on a periodic square grid (side: a power of two >= size), scaled to [0, 1].

    The noise amplitude falls by ``decay**2`` per halving of the step, as in the reference implementation (whose
    noise is ``wibble * uniform(-wibble, wibble)`` with ``wibble`` divided by ``decay`` per step).
    """
    side = max(2, 1 << (size - 1).bit_length())
    grid = np.zeros((side, side))
    step, amplitude = side, 1.0
    while step > 1:
        half = step // 2
        corners = grid[::step, ::step]
        centres = (corners + np.roll(corners, -1, 0) + np.roll(corners, -1, 1) + np.roll(corners, (-1, -1), (0, 1))) / 4
        grid[half::step, half::step] = centres + amplitude * rng.uniform(-1, 1, centres.shape)
        centres = grid[half::step, half::step]
        # Edge midpoints: the mean of the two corners on the edge and the two centres beside it (wrapping around).
        top = (corners + np.roll(corners, -1, 1) + centres + np.roll(centres, 1, 0)) / 4
        left = (corners + np.roll(corners, -1, 0) + centres + np.roll(centres, 1, 1)) / 4
        grid[::step, half::step] = top + amplitude * rng.uniform(-1, 1, top.shape)
        grid[half::step, ::step] = left + amplitude * rng.uniform(-1, 1, left.shape)
        step, amplitude = half, amplitude / decay**2
    grid -= grid.min()
    return grid / grid.max()


def frost_texture(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A seeded procedural stand-in for the frost photographs of the original: an HxWx3 texture in [0, 1].

    Straight ice needles of random brightness with side branches at +-60 degrees (hexagonal ice), denser where a
    plasma fractal is high, over a faint plasma haze; normalised to a fixed mean and contrast and tinted pale
    blue-white. Sizes are in pixels as at 64 px. It imitates the look of the photographs (bright crystals on dark
    glass), not their statistics, so frost results are not comparable with Tiny-ImageNet-C.
    """
    height, width = shape
    count = max(1, round(height * width * FROST_NEEDLES_PER_PIXEL))
    starts = rng.uniform((0, 0), (height, width), (count, 2))
    angles = rng.uniform(0, 2 * np.pi, count)
    lengths = rng.uniform(*FROST_NEEDLE_LENGTH, count)
    along = rng.uniform(0.1, 0.9, (count, FROST_BRANCHES_PER_NEEDLE)) * lengths[:, None]
    directions = np.stack([np.sin(angles), np.cos(angles)], axis=-1)
    branch_starts = starts[:, None] + along[..., None] * directions[:, None]
    branch_angles = angles[:, None] + rng.choice([-np.pi / 3, np.pi / 3], along.shape)
    branch_lengths = rng.uniform(*FROST_BRANCH_FRACTION, along.shape) * lengths[:, None]
    needles = _draw_segments(
        shape,
        np.concatenate([starts, branch_starts.reshape(-1, 2)]),
        np.concatenate([angles, branch_angles.ravel()]),
        np.concatenate([lengths, branch_lengths.ravel()]),
        rng.uniform(0.4, 1, count * (1 + FROST_BRANCHES_PER_NEEDLE)),
    )
    density = plasma_fractal(max(height, width), FROST_DECAY, rng)[:height, :width]
    texture = ndimage.gaussian_filter(needles, 0.5) * (0.5 + density) + FROST_HAZE * density
    texture = (texture - texture.mean()) / max(texture.std(), 1e-12) * FROST_STD + FROST_MEAN
    return np.clip(texture[..., None] * FROST_TINT, 0, 1)


def _draw_segments(
    shape: tuple[int, int], starts: np.ndarray, angles: np.ndarray, lengths: np.ndarray, inks: np.ndarray
) -> np.ndarray:
    """Line segments (start row/col, angle, length, ink per pixel of length) drawn by half-pixel point sampling."""
    steps = np.arange(0, lengths.max() + 0.5, 0.5)
    inside = steps <= lengths[:, None]
    rows = np.rint(starts[:, :1] + steps * np.sin(angles)[:, None]).astype(int)[inside]
    cols = np.rint(starts[:, 1:] + steps * np.cos(angles)[:, None]).astype(int)[inside]
    sample_inks = np.broadcast_to(inks[:, None] / 2, inside.shape)[inside]
    visible = (rows >= 0) & (rows < shape[0]) & (cols >= 0) & (cols < shape[1])
    canvas = np.zeros(shape)
    np.add.at(canvas, (rows[visible], cols[visible]), sample_inks[visible])
    return canvas


def _gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    return ndimage.gaussian_filter(image, (sigma, sigma, 0), mode="nearest")


def _motion_blur(image: np.ndarray, radius: int, sigma: float, angle: float) -> np.ndarray:
    """Convolution with a one-sided line kernel at ``angle`` degrees, like ImageMagick's motion blur.

    The kernel has 2 radius + 1 taps at whole-pixel steps i = 0..2 radius along the line, weighted exp(-i^2 / 2 sigma^2)
    and normalised; it is applied as the weighted sum of the correspondingly shifted, edge-padded images.
    """
    steps = np.arange(2 * radius + 1)
    weights = np.exp(-(steps**2) / (2 * sigma**2))
    row_shifts = np.rint(steps * np.sin(np.deg2rad(angle))).astype(int)
    col_shifts = np.rint(steps * np.cos(np.deg2rad(angle))).astype(int)
    reach = 2 * radius
    height, width = image.shape[:2]
    padded = np.pad(image, [(reach, reach), (reach, reach)] + [(0, 0)] * (image.ndim - 2), mode="edge")
    shifted = (
        padded[reach + row : reach + row + height, reach + col : reach + col + width]
        for row, col in zip(row_shifts, col_shifts, strict=True)
    )
    return sum(weight * part for weight, part in zip(weights, shifted, strict=True)) / weights.sum()


def _zoom_center(image: np.ndarray, zoom: float) -> np.ndarray:
    """The centre of a 2-D image (or of each channel) magnified by ``zoom`` (bilinear), at the original size."""
    if image.ndim == 3:
        return np.stack([_zoom_center(channel, zoom) for channel in image.transpose(2, 0, 1)], axis=-1)
    center = (np.array(image.shape) - 1) / 2
    return ndimage.affine_transform(
        image, [1 / zoom, 1 / zoom], offset=center * (1 - 1 / zoom), order=1, mode="nearest"
    )


def _to_pil(image: np.ndarray) -> Image.Image:
    return Image.fromarray(np.rint(np.clip(image, 0, 1) * 255).astype(np.uint8))


def _from_pil(picture: Image.Image) -> np.ndarray:
    return np.asarray(picture.convert("RGB"), dtype=float) / 255
