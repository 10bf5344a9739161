"""Tuned (opponent) normalization across channels (paper Sec. 3.1, Eq. 2)."""

import torch
import torch.nn.functional as F
from torch import nn

from neurov1.components.parameters import ParameterError

_MIN_SIGMA = 0.5


class TunedNormalization(nn.Module):
    """Eq. 2: x'_c = x_c / (1 + sum_k p_ck x_k) at every spatial location, as one 1x1 convolution.

    Row c of p is a Gaussian over the circular channel distance d(k, c*) = min(|k - c*|, C - |k - c*|),
    centred at c* = (c + C // 2) mod C:
        p_ck = exp(-d(k, c*)^2 / (2 sigma_c^2)) / sum_k' exp(-d(k', c*)^2 / (2 sigma_c^2)),
    so every row sums to 1. sigma_c (in channels) is learnable per output channel, initialised
    U(0, 1) + C / 8 and clamped at >= 0.5 in the forward.

    Difference from the original code: it normalised over the other axis (its sigma indexed the input
    channel k); this module follows the paper (sigma_c per output channel c, rows sum to 1).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        if channels < 2:
            raise ParameterError("TunedNormalization", "channels", f"must be >= 2, got {channels}")
        self.channels = channels
        self.sigma = nn.Parameter(torch.rand(channels) + channels / 8)

        channel = torch.arange(channels)
        opponent = (channel + channels // 2) % channels
        separation = (channel[None, :] - opponent[:, None]).abs()
        circular_distance = torch.minimum(separation, channels - separation)
        # [c, k] = d(k, c*)^2
        self.register_buffer("squared_channel_distance", circular_distance.square().float(), persistent=False)

    def weights(self) -> torch.Tensor:
        """The normalization weights p, shape (C, C), row c = output channel c."""
        variance = self.sigma.clamp(min=_MIN_SIGMA).square()[:, None]
        return torch.softmax(-self.squared_channel_distance / (2 * variance), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pool = self.weights().to(x.dtype).view(self.channels, self.channels, 1, 1)
        return x / (1 + F.conv2d(x, pool))

    def extra_repr(self) -> str:
        return f"channels={self.channels}"
