"""Center-surround antagonism: learnable difference-of-Gaussians convolution (paper Sec. 3.1, Eq. 1)."""

import math

import torch
import torch.nn.functional as F
from torch import nn

from neurov1.components.parameters import ParameterError

_MIN_SURROUND_RATIO = {"paper": 1.0 + 1e-3, "released": 1.0 + 1e-4}
FORMS = tuple(_MIN_SURROUND_RATIO)
INITIALISATION = {
    "paper": "center_sigma ~ U(0.5, 1.5) px, surround/center ~ U(1.5, 2.5), scale ~ N(0, 2^2)",
    "released": "center_sigma, surround/center ~ U(h, h + 1) with h = (kernel_size // 2) / 2, scale ~ N(0, 2^2)",
}


def _inverse_softplus(y: torch.Tensor) -> torch.Tensor:
    """x such that softplus(x) = y, for y > 0."""
    return y + torch.log(-torch.expm1(-y))


class DoGConv2d(nn.Module):
    """Full cross-channel convolution with one learnable difference-of-Gaussians kernel per (out, in) pair.

    With (x, y) the integer pixel offset from the kernel centre, d^2 = x^2 + y^2, centre width sc, surround
    width ss > sc and signed scale a (a > 0: excitatory centre), ``form`` selects the kernel:

    - "paper" (default), Eq. 1 of the paper:
          DoG(x, y) = a / (2 pi sc^2) exp(-d^2 / (2 sc^2)) - a / (2 pi ss^2) exp(-d^2 / (2 ss^2)),
      sc = min_sigma + softplus(raw_center_sigma) px, ss = sc * (1 + 1e-3 + softplus(raw_surround_ratio));
      initialisation sc ~ U(0.5, 1.5) px, ss / sc ~ U(1.5, 2.5), a ~ N(0, 2^2).
    - "released", the formulation of the paper's released code
      (github.com/bionicvisionlab/2023-Pogoncheff-Explaining-V1-Properties):
          K(x, y) = a (sc / pi exp(-d^2 / sc) - ss / pi exp(-d^2 / ss)),
      sc = max(raw_center_sigma, min_sigma), ss = sc * max(raw_surround_ratio, 1 + 1e-4), and then every kernel
      pixel is divided by the L2 norm of that pixel across all C_out * C_in kernels (so the kernel of one pair
      depends on all others); initialisation sc, ss / sc ~ U(h, h + 1) with h = (k // 2) / 2, a ~ N(0, 2^2).
      Here sc and ss are the formula's widths, not Gaussian standard deviations (those are sqrt(s / 2)).

    Output: conv2d(x, kernels, padding=k // 2), no bias, same spatial size as the input.
    """

    def __init__(self, channels: int, kernel_size: int = 5, min_sigma: float = 0.1, form: str = "paper") -> None:
        super().__init__()
        if channels < 1:
            raise ParameterError("DoGConv2d", "channels", f"must be >= 1, got {channels}")
        if not isinstance(kernel_size, int) or kernel_size < 3 or kernel_size % 2 == 0:
            raise ParameterError(
                "DoGConv2d", "kernel_size", f"must be an odd integer >= 3, got {kernel_size!r} (paper: 5)"
            )
        if not 0.0 < min_sigma < 0.5:
            raise ParameterError("DoGConv2d", "min_sigma", f"must be in (0, 0.5) px, got {min_sigma}")
        if form not in FORMS:
            raise ParameterError("DoGConv2d", "form", f"must be one of {list(FORMS)}, got {form!r}")
        self.channels = channels
        self.kernel_size = kernel_size
        self.min_sigma = min_sigma
        self.form = form

        pair_shape = (channels, channels)
        if form == "paper":
            center_sigma = torch.empty(pair_shape).uniform_(0.5, 1.5)
            surround_ratio = torch.empty(pair_shape).uniform_(1.5, 2.5)
            self.raw_center_sigma = nn.Parameter(_inverse_softplus(center_sigma - min_sigma))
            self.raw_surround_ratio = nn.Parameter(_inverse_softplus(surround_ratio - _MIN_SURROUND_RATIO[form]))
        else:
            low = (kernel_size // 2) / 2
            self.raw_center_sigma = nn.Parameter(torch.empty(pair_shape).uniform_(low, low + 1))
            self.raw_surround_ratio = nn.Parameter(torch.empty(pair_shape).uniform_(low, low + 1))
        self.scale = nn.Parameter(2.0 * torch.randn(pair_shape))

        offsets = torch.arange(kernel_size, dtype=torch.float32) - kernel_size // 2
        squared_distance = offsets[:, None] ** 2 + offsets[None, :] ** 2
        self.register_buffer("squared_distance", squared_distance, persistent=False)

    @property
    def center_sigma(self) -> torch.Tensor:
        """Centre width sc (px), shape (C_out, C_in)."""
        if self.form == "paper":
            return self.min_sigma + F.softplus(self.raw_center_sigma)
        return self.raw_center_sigma.clamp(min=self.min_sigma)

    @property
    def surround_sigma(self) -> torch.Tensor:
        """Surround width ss = sc * ratio (px), ratio > 1, shape (C_out, C_in)."""
        minimum = _MIN_SURROUND_RATIO[self.form]
        if self.form == "paper":
            return self.center_sigma * (minimum + F.softplus(self.raw_surround_ratio))
        return self.center_sigma * self.raw_surround_ratio.clamp(min=minimum)

    def kernels(self) -> torch.Tensor:
        """The DoG kernels of the selected form, shape (C_out, C_in, k, k)."""
        distance = self.squared_distance
        center, surround = self.center_sigma[..., None, None], self.surround_sigma[..., None, None]
        if self.form == "paper":

            def gaussian(sigma: torch.Tensor) -> torch.Tensor:
                return torch.exp(-distance / (2 * sigma**2)) / (2 * math.pi * sigma**2)

            return self.scale[..., None, None] * (gaussian(center) - gaussian(surround))

        def bump(sigma: torch.Tensor) -> torch.Tensor:
            return sigma / math.pi * torch.exp(-distance / sigma)

        kernels = self.scale[..., None, None] * (bump(center) - bump(surround))
        return F.normalize(kernels.flatten(0, 1), dim=0).view_as(kernels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.kernels().to(x.dtype), padding=self.kernel_size // 2)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, kernel_size={self.kernel_size}, min_sigma={self.min_sigma}, form={self.form}"


class CenterSurround(nn.Module):
    """DoG convolution on the first n = round(fraction * C) channels; the other C - n pass unchanged.

    out = concat(DoGConv2d(x[:, :n]), x[:, n:]) along channels (paper: a quarter of the 3x3 conv outputs
    of each ResNet-50 layer1 block, i.e. 16 of 64 channels, 256 DoG kernels of 5x5 px). ``form`` selects the
    kernel formulation of DoGConv2d: "paper" (Eq. 1) or "released" (the released code).
    """

    def __init__(self, channels: int, fraction: float = 0.25, kernel_size: int = 5, form: str = "paper") -> None:
        super().__init__()
        if channels < 1:
            raise ParameterError("CenterSurround", "channels", f"must be >= 1, got {channels}")
        if not isinstance(fraction, int | float) or not 0.0 < fraction <= 1.0:
            raise ParameterError("CenterSurround", "fraction", f"must be in (0, 1], got {fraction!r} (paper: 0.25)")
        n_dog_channels = round(fraction * channels)
        if n_dog_channels < 1:
            raise ParameterError(
                "CenterSurround", "fraction", f"x {channels} channels must round to >= 1 DoG channel, got {fraction}"
            )
        self.channels = channels
        self.fraction = fraction
        self.n_dog_channels = n_dog_channels
        self.dog = DoGConv2d(n_dog_channels, kernel_size=kernel_size, form=form)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.n_dog_channels
        return torch.cat([self.dog(x[:, :n]), x[:, n:]], dim=1)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, fraction={self.fraction}, n_dog_channels={self.n_dog_channels}"
