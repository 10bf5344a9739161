"""Center-surround antagonism: learnable difference-of-Gaussians convolution (paper Sec. 3.1, Eq. 1)."""

import math

import torch
import torch.nn.functional as F
from torch import nn

_MIN_SURROUND_RATIO = 1.0 + 1e-3


def _inverse_softplus(y: torch.Tensor) -> torch.Tensor:
    """x such that softplus(x) = y, for y > 0."""
    return y + torch.log(-torch.expm1(-y))


class DoGConv2d(nn.Module):
    """Full cross-channel convolution with one learnable difference-of-Gaussians kernel per (out, in) pair.

    Eq. 1, with (x, y) the integer pixel offset from the kernel centre:
        DoG(x, y) = a / (2 pi sc^2) exp(-(x^2 + y^2) / (2 sc^2))
                  - a / (2 pi ss^2) exp(-(x^2 + y^2) / (2 ss^2))
    with centre width sc and surround width ss in pixels and signed scale a (a > 0: excitatory centre).
    ss > sc holds by construction: sc = min_sigma + softplus(raw_center_sigma) and
    ss = sc * (1 + 1e-3 + softplus(raw_surround_ratio)).
    Initialisation: sc ~ U(0.5, 1.5) px, ss / sc ~ U(1.5, 2.5), a ~ N(0, 2^2).

    Difference from the original code: it used the amplitude s / pi and exp(-d^2 / s) instead of
    1 / (2 pi s^2) and exp(-d^2 / (2 s^2)), and L2-normalised the kernels; this module follows Eq. 1.
    Output: conv2d(x, DoG, padding=k // 2), no bias, same spatial size as the input.
    """

    def __init__(self, channels: int, kernel_size: int = 5, min_sigma: float = 0.1) -> None:
        super().__init__()
        if channels < 1:
            raise ValueError(f"DoGConv2d: channels must be >= 1, got {channels}")
        if kernel_size < 3 or kernel_size % 2 == 0:
            raise ValueError(f"DoGConv2d: kernel_size must be odd and >= 3, got {kernel_size}")
        if not 0.0 < min_sigma < 0.5:
            raise ValueError(f"DoGConv2d: min_sigma must be in (0, 0.5) px, got {min_sigma}")
        self.channels = channels
        self.kernel_size = kernel_size
        self.min_sigma = min_sigma

        pair_shape = (channels, channels)
        center_sigma = torch.empty(pair_shape).uniform_(0.5, 1.5)
        surround_ratio = torch.empty(pair_shape).uniform_(1.5, 2.5)
        self.raw_center_sigma = nn.Parameter(_inverse_softplus(center_sigma - min_sigma))
        self.raw_surround_ratio = nn.Parameter(_inverse_softplus(surround_ratio - _MIN_SURROUND_RATIO))
        self.scale = nn.Parameter(2.0 * torch.randn(pair_shape))

        offsets = torch.arange(kernel_size, dtype=torch.float32) - kernel_size // 2
        squared_distance = offsets[:, None] ** 2 + offsets[None, :] ** 2
        self.register_buffer("squared_distance", squared_distance, persistent=False)

    @property
    def center_sigma(self) -> torch.Tensor:
        """Centre width sc (px), shape (C_out, C_in)."""
        return self.min_sigma + F.softplus(self.raw_center_sigma)

    @property
    def surround_sigma(self) -> torch.Tensor:
        """Surround width ss = sc * ratio (px), ratio > 1, shape (C_out, C_in)."""
        return self.center_sigma * (_MIN_SURROUND_RATIO + F.softplus(self.raw_surround_ratio))

    def kernels(self) -> torch.Tensor:
        """The DoG kernels of Eq. 1, shape (C_out, C_in, k, k)."""

        def gaussian(sigma: torch.Tensor) -> torch.Tensor:
            variance = sigma[..., None, None] ** 2
            return torch.exp(-self.squared_distance / (2 * variance)) / (2 * math.pi * variance)

        return self.scale[..., None, None] * (gaussian(self.center_sigma) - gaussian(self.surround_sigma))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.kernels().to(x.dtype), padding=self.kernel_size // 2)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, kernel_size={self.kernel_size}, min_sigma={self.min_sigma}"


class CenterSurround(nn.Module):
    """DoG convolution on the first n = round(fraction * C) channels; the other C - n pass unchanged.

    out = concat(DoGConv2d(x[:, :n]), x[:, n:]) along channels (paper: a quarter of the 3x3 conv outputs
    of each ResNet-50 layer1 block, i.e. 16 of 64 channels, 256 DoG kernels of 5x5 px).
    """

    def __init__(self, channels: int, fraction: float = 0.25, kernel_size: int = 5) -> None:
        super().__init__()
        if channels < 1:
            raise ValueError(f"CenterSurround: channels must be >= 1, got {channels}")
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"CenterSurround: fraction must be in (0, 1], got {fraction}")
        n_dog_channels = round(fraction * channels)
        if n_dog_channels < 1:
            raise ValueError(
                f"CenterSurround: fraction * channels must round to >= 1 DoG channel, "
                f"got fraction={fraction}, channels={channels}"
            )
        self.channels = channels
        self.fraction = fraction
        self.n_dog_channels = n_dog_channels
        self.dog = DoGConv2d(n_dog_channels, kernel_size=kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.n_dog_channels
        return torch.cat([self.dog(x[:, :n]), x[:, n:]], dim=1)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, fraction={self.fraction}, n_dog_channels={self.n_dog_channels}"
