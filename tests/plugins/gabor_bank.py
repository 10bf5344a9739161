"""A component that lives outside neurov1: a fixed Gabor filter bank for the stem's first convolution.

In the style of VOneNet's front end: every output channel is one Gabor filter (orientations evenly spaced over
180 degrees, even and odd phases alternating), the same on every input channel; nothing is learned.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn


class GaborBank(nn.Module):
    """out[o] = sum_c x[c] * G_o / in_channels, with G_o a Gabor filter; stride and size of the conv it replaces."""

    def __init__(
        self, in_channels: int, out_channels: int, stride: int, kernel_size: int = 7, wavelength: float = 4.0
    ) -> None:
        super().__init__()
        if kernel_size % 2 == 0 or kernel_size < 3:
            raise ValueError(f"GaborBank: kernel_size must be odd and >= 3, got {kernel_size}")
        offsets = torch.arange(kernel_size, dtype=torch.float32) - kernel_size // 2
        y, x = torch.meshgrid(offsets, offsets, indexing="ij")
        filters = []
        for channel in range(out_channels):
            theta = math.pi * (channel // 2) / max(1, out_channels // 2)
            phase = 0.0 if channel % 2 == 0 else math.pi / 2
            along = x * math.cos(theta) + y * math.sin(theta)
            envelope = torch.exp(-(x**2 + y**2) / (2 * (kernel_size / 4) ** 2))
            filters.append(envelope * torch.cos(2 * math.pi * along / wavelength + phase))
        weight = torch.stack(filters)[:, None].expand(-1, in_channels, -1, -1) / in_channels
        self.register_buffer("weight", weight.contiguous())
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight.to(x.dtype), stride=self.stride, padding=self.weight.shape[-1] // 2)
