"""Divisive normalization with learned spatial and cross-channel pools (Cirincione et al.)."""

import math

import torch
import torch.nn.functional as F
from torch import nn

from neurov1.components.parameters import ParameterError

_MIN_SQUARED_WIDTH = 0.1


class DivisiveNormalization(nn.Module):
    """out = x / (conv2d(x, G, padding=k // 2) + |b|), one learnable scalar b (init U(1, 2)).

    G[o, i] is a k x k anisotropic Gaussian pool per (output, input) channel pair, with x the column and
    y the row offset (px) from the kernel centre:

        G[o, i](x, y) = |A| / (2 pi rho sigma) exp(-(xr^2 / rho^2 + yr^2 / sigma^2) / 2),
        xr = (x - v) cos(theta) + (y - w) sin(theta),  yr = -(x - v) sin(theta) + (y - w) cos(theta).

    Per pair: amplitude A (init U(0, 1)), widths rho, sigma (px, init U(1, 2)), orientation theta (rad,
    init U(0, 2 pi)), centre offsets v, w (px, init N(0, 1)).
    Clamps: rho^2 and sigma^2 are clamped at >= 0.1 px^2 in the exponent and in the normaliser
    2 pi sqrt(rho^2 sigma^2), which is therefore >= 0.2 pi, so nothing divides by ~0.

    Difference from the original code: it rotated absolute kernel coordinates 1..k; here the rotation is
    about the (v, w)-shifted kernel centre, as in the formula above.
    """

    def __init__(self, channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        if channels < 1:
            raise ParameterError("DivisiveNormalization", "channels", f"must be >= 1, got {channels}")
        if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
            raise ParameterError(
                "DivisiveNormalization", "kernel_size", f"must be an odd integer >= 1, got {kernel_size!r} (paper: 3)"
            )
        self.channels = channels
        self.kernel_size = kernel_size

        pair_shape = (channels, channels)
        self.amplitude = nn.Parameter(torch.rand(pair_shape))
        self.rho = nn.Parameter(torch.empty(pair_shape).uniform_(1.0, 2.0))
        self.sigma = nn.Parameter(torch.empty(pair_shape).uniform_(1.0, 2.0))
        self.theta = nn.Parameter(torch.empty(pair_shape).uniform_(0.0, 2 * math.pi))
        self.offset_x = nn.Parameter(torch.randn(pair_shape))
        self.offset_y = nn.Parameter(torch.randn(pair_shape))
        self.bias = nn.Parameter(torch.empty(()).uniform_(1.0, 2.0))

        offsets = torch.arange(kernel_size, dtype=torch.float32) - kernel_size // 2
        self.register_buffer("kernel_x", offsets[None, :].expand(kernel_size, -1).clone(), persistent=False)
        self.register_buffer("kernel_y", offsets[:, None].expand(-1, kernel_size).clone(), persistent=False)

    def pool_kernels(self) -> torch.Tensor:
        """The Gaussian pools G, shape (C_out, C_in, k, k)."""

        def per_pair(parameter: torch.Tensor) -> torch.Tensor:
            return parameter[..., None, None]

        dx = self.kernel_x - per_pair(self.offset_x)
        dy = self.kernel_y - per_pair(self.offset_y)
        cos, sin = per_pair(torch.cos(self.theta)), per_pair(torch.sin(self.theta))
        x_rotated = dx * cos + dy * sin
        y_rotated = -dx * sin + dy * cos
        rho_squared = per_pair(self.rho.square().clamp(min=_MIN_SQUARED_WIDTH))
        sigma_squared = per_pair(self.sigma.square().clamp(min=_MIN_SQUARED_WIDTH))
        normaliser = 2 * math.pi * torch.sqrt(rho_squared * sigma_squared)
        exponent = -0.5 * (x_rotated.square() / rho_squared + y_rotated.square() / sigma_squared)
        return per_pair(self.amplitude.abs()) * torch.exp(exponent) / normaliser

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pool = F.conv2d(x, self.pool_kernels().to(x.dtype), padding=self.kernel_size // 2)
        return x / (pool + self.bias.abs())

    def extra_repr(self) -> str:
        return f"channels={self.channels}, kernel_size={self.kernel_size}"
