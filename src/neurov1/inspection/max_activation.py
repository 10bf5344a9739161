"""Maximally activating stimuli of the artificial V1 channels (paper Sec. 4.3, Fig. F.2).

The paper generated them with the ``lucent`` package; this is our own implementation of the same recipe (Olah et
al. 2017, "Feature Visualization"): gradient ascent with Adam on a decorrelated image parameterisation (a Fourier
spectrum scaled by 1/frequency and colour-decorrelated channels), each step on a randomly jittered, scaled and
rotated view of the image. The objective of image n is the mean response of its target channel over all positions
of the V1 layer (lucent's ``channel`` objective). All channels are optimised together, one image per channel in one
batch: in eval mode the network treats every image on its own, and Adam's update is per parameter, so each image
follows exactly the ascent it would follow alone.
"""

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from neurov1.data.demo import demo_images
from neurov1.errors import ConfigError, check_int
from neurov1.inspection.figures import montage
from neurov1.utils.plots import DPI, new_figure, save_figure

KEY = "max_activation"


@dataclass(frozen=True)
class StimulusSettings:
    """Settings of ``max_activation`` (conf/analyze.yaml documents each).

    lr and init_std are lucent's defaults (0.05, 0.01) divided by 4, the factor by which lucent divides its image:
    Adam's steps do not depend on the gradient's scale, so this follows lucent's ascent.
    """

    channels: int | list[int] | None = None
    steps: int = 256
    lr: float = 0.0125
    seed: int = 0
    image_size: int | None = None
    mean: float = 0.5
    std: float = 0.5
    decay_power: float = 1.0
    init_std: float = 0.0025
    jitter: float = 4.0
    scale: tuple[float, float] = (0.9, 1.1)
    rotate: float = 10.0
    columns: int = 8

    def __post_init__(self) -> None:
        check_int(self.steps, f"{KEY}.steps", 256)
        check_int(self.columns, f"{KEY}.columns", 8)
        for name in ("lr", "std", "init_std"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{KEY}.{name} must be > 0, got {getattr(self, name)!r}.")
        if not (self.jitter >= 0 and self.rotate >= 0 and len(self.scale) == 2 and 0 < self.scale[0] <= self.scale[1]):
            raise ConfigError(
                f"{KEY}: jitter (px) and rotate (degrees) must be >= 0 and scale a range [low, high] with "
                f"0 < low <= high, got jitter={self.jitter!r}, rotate={self.rotate!r}, scale={self.scale!r}."
            )

    def resolve_channels(self, available: int) -> list[int]:
        """The channel indices to optimise: all (null), the first n (an integer n) or the listed ones."""
        if self.channels is None:
            return list(range(available))
        if isinstance(self.channels, int) and not isinstance(self.channels, bool):
            chosen = list(range(self.channels)) if 1 <= self.channels <= available else []
        else:
            chosen = list(self.channels)
        if not chosen or any(not 0 <= channel < available for channel in chosen) or len(set(chosen)) < len(chosen):
            raise ConfigError(
                f"{KEY}.channels={self.channels!r}: the V1 layer has {available} channels. Set "
                f"{KEY}.channels=null (all), "
                f"an integer n in 1..{available} (the first n) or a list of distinct indices in 0..{available - 1}."
            )
        return chosen


@functools.cache
def colour_correlation_sqrt() -> torch.Tensor:
    """A square root M (M M^T proportional to the RGB covariance) of natural photographs' colours, (3, 3).

    The covariance of the RGB values in [0, 1] of the colour photographs among the demo images (scikit-image's
    samples; lucent used ImageNet's), M = U sqrt(L) from its eigendecomposition U L U^T, scaled so that its largest
    column has norm 1. M times independent channels gives colours correlated as in natural images. Computed once
    per process (reading the photographs takes about a second).
    """
    colour = [image for image in demo_images().values() if np.ptp(image.astype(np.int16), axis=-1).any()]
    pixels = np.concatenate([image.reshape(-1, 3) for image in colour]) / 255
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(pixels, rowvar=False))
    root = eigenvectors * np.sqrt(eigenvalues)
    return torch.from_numpy(root / np.linalg.norm(root, axis=0).max()).float()


class FourierImage(nn.Module):
    """``count`` RGB images of ``size`` px: image = sigmoid(M . irfft2(w(f) z)), values in (0, 1).

    z: the learnable spectrum (count, 3, size, size // 2 + 1) of three decorrelated channels, initialised
    N(0, init_std^2) for its real and imaginary parts; w(f) = 1 / max(f, 1 / size)^decay_power with f the spatial
    frequency (cycles/px), so that an equal step on every coefficient gives the 1/f amplitude spectrum of natural
    images; M the colour correlation root of :func:`colour_correlation_sqrt`.
    """

    def __init__(self, count: int, size: int, decay_power: float, init_std: float, generator: torch.Generator) -> None:
        super().__init__()
        self.size = size
        frequency = torch.sqrt(torch.fft.fftfreq(size)[:, None] ** 2 + torch.fft.rfftfreq(size)[None, :] ** 2)
        self.register_buffer("frequency_weight", frequency.clamp(min=1 / size) ** -decay_power)
        self.register_buffer("colour", colour_correlation_sqrt().clone())
        shape = (count, 3, size, size // 2 + 1, 2)
        self.spectrum = nn.Parameter(init_std * torch.randn(shape, generator=generator))

    def forward(self) -> torch.Tensor:
        spectrum = torch.view_as_complex(self.spectrum) * self.frequency_weight
        decorrelated = torch.fft.irfft2(spectrum, s=(self.size, self.size), norm="ortho")
        return torch.sigmoid(torch.einsum("ij,njhw->nihw", self.colour, decorrelated))


def random_views(images: torch.Tensor, settings: StimulusSettings, generator: torch.Generator) -> torch.Tensor:
    """Each image rotated by U(-rotate, rotate) degrees, zoomed by U(scale) and shifted by U(-jitter, jitter) px
    per axis, in one bilinear resampling that reflects at the borders (lucent's jitter/scale/rotate robustness)."""
    count, _, size, _ = images.shape
    draws = torch.rand(count, 4, generator=generator).to(images.device)
    angle = torch.deg2rad((2 * draws[:, 0] - 1) * settings.rotate)
    zoom = settings.scale[0] + (settings.scale[1] - settings.scale[0]) * draws[:, 1]
    shift = (2 * draws[:, 2:] - 1) * settings.jitter * 2 / size  # px -> grid units ([-1, 1] spans the image)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def maximize_channels(
    v1: nn.Module, channels: list[int], size: int, settings: StimulusSettings, device: torch.device
) -> dict[str, torch.Tensor]:
    """Gradient ascent on one :class:`FourierImage` per channel; deterministic for ``settings.seed`` on a device.

    ``v1`` maps normalised images to the V1 layer's output (N, C, h, w); it is put in eval mode with its parameters
    frozen. Returns the stimuli (N, 3, size, size) in [0, 1] and the target channels' mean activation of the
    initial and of the final images (without transforms), on the CPU.
    """
    v1.eval().requires_grad_(False)
    generator = torch.Generator().manual_seed(settings.seed)
    image = FourierImage(len(channels), size, settings.decay_power, settings.init_std, generator).to(device)
    optimizer = torch.optim.Adam(image.parameters(), lr=settings.lr)
    rows = torch.arange(len(channels), device=device)
    target = torch.tensor(channels, device=device)

    def activation(images: torch.Tensor) -> torch.Tensor:
        return v1((images - settings.mean) / settings.std)[rows, target].mean(dim=(-2, -1))

    with torch.no_grad():
        initial = activation(image())
    progress = tqdm(range(settings.steps), desc=f"max_activation ({len(channels)} channels)", unit="step")
    for _ in progress:
        optimizer.zero_grad(set_to_none=True)
        response = activation(random_views(image(), settings, generator))
        (-response.sum()).backward()
        optimizer.step()
        progress.set_postfix(mean_activation=f"{response.mean().item():.3f}", refresh=False)
    with torch.no_grad():
        stimuli = image()
        final = activation(stimuli)
    return {"images": stimuli.cpu(), "activation": final.cpu(), "initial_activation": initial.cpu()}


def save_gallery(images: torch.Tensor, channels: list[int], columns: int, path: Path, title: str) -> Path:
    """The stimuli as a grid of tiles at their pixel size, each labelled with its channel."""
    size, gap = images.shape[-1], 2
    tiles = montage(images.permute(0, 2, 3, 1).numpy(), min(columns, len(channels)), gap=gap)
    figure, axis = new_figure(tiles.shape[1] / DPI + 0.3, tiles.shape[0] / DPI + 0.6)
    axis.imshow(tiles, interpolation="nearest")
    for index, channel in enumerate(channels):
        row, column = divmod(index, min(columns, len(channels)))
        axis.text(
            column * (size + gap) + 1,
            row * (size + gap) + 1,
            str(channel),
            fontsize=5,
            va="top",
            color="white",
            bbox={"facecolor": "black", "alpha": 0.5, "pad": 0.5, "linewidth": 0},
        )
    axis.set_axis_off()
    return save_figure(figure, path, title)
