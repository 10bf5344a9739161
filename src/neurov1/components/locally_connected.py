"""Local receptive fields: a 2D layer with convolution geometry but an unshared kernel per output location."""

import math

import torch
import torch.nn.functional as F
from torch import nn

from neurov1.components.parameters import ParameterError

OWNER = "LocallyConnected2d"


def _pair(value: int | tuple[int, int], name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or any(not isinstance(v, int) or v < 1 for v in pair):
        raise ParameterError(OWNER, name, f"must be a positive int or (H, W), got {value}")
    return pair


class _ContiguousGradient(torch.autograd.Function):
    """Identity whose backward makes the incoming gradient contiguous in one copy.

    The output of the location-batched matmul is returned permuted to (N, C, H, W), so its gradient reaches
    bmm with non-unit strides; bmm would then copy it batch by batch, which is slower.
    """

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.view_as(tensor)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad.contiguous()


def contiguous_gradient(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor``, whose gradient is made contiguous on the way back (:class:`_ContiguousGradient`)."""
    return _ContiguousGradient.apply(tensor)


torch.fx.wrap("contiguous_gradient")  # one call in traced graphs (torch.fx cannot trace into autograd Functions)


class LocallyConnected2d(nn.Module):
    """Locally connected layer: out[n, o, l] = sum_j W[l, o, j] * patch_l(x[n])[j] (+ b[o, l]).

    Geometry is that of nn.Conv2d(kernel_size, stride, padding): H_out = (H + 2 p - k) // s + 1, and
    patch_l is the zero-padded k x k input window of output location l = row * W_out + col, but every
    location has its own kernel (paper Sec. 3.1, "Local Receptive Fields").

    Layout: weight has shape (H_out * W_out, out_channels, k * k * in_channels) with the patch index
    j = (ki * k + kj) * in_channels + c (kernel row, kernel column, input channel), i.e. a Conv2d weight w
    of shape (out, in, k, k) corresponds to w.permute(0, 2, 3, 1).reshape(out, -1) at every location.
    The forward gathers all patches location-major, (L, k*k*C_in, N), with one index_select and computes
    one batched matmul over locations, (L, C_out, k*k*C_in) @ (L, k*k*C_in, N).
    bias (optional) has shape (out_channels, H_out, W_out).

    Initialisation follows the torchvision ResNet conv it replaces: kaiming normal, mode "fan_out",
    ReLU gain, fan_out = out_channels * k * k, i.e. W ~ N(0, 2 / fan_out); the original code used N(0, 1).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        input_size: int | tuple[int, int],
        kernel_size: int = 3,
        stride: int = 1,
        padding: int | None = None,
        bias: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        for name, value, minimum in (
            ("in_channels", in_channels, 1),
            ("out_channels", out_channels, 1),
            ("kernel_size", kernel_size, 1),
            ("stride", stride, 1),
        ):
            if not isinstance(value, int) or value < minimum:
                raise ParameterError(OWNER, name, f"must be an integer >= {minimum}, got {value!r}")
        if padding is None and kernel_size % 2 == 0:
            raise ParameterError(
                OWNER, "kernel_size", f"must be odd to keep the size (padding None), got {kernel_size}"
            )
        padding = kernel_size // 2 if padding is None else padding
        if not isinstance(padding, int) or padding < 0:
            raise ParameterError(
                OWNER, "padding", f"must be an integer >= 0 or None (kernel_size // 2), got {padding!r}"
            )
        if not isinstance(dropout, int | float) or not 0 <= dropout < 1:
            raise ParameterError(OWNER, "dropout", f"must be in [0, 1), got {dropout!r}")
        height, width = _pair(input_size, "input_size")
        out_height = (height + 2 * padding - kernel_size) // stride + 1
        out_width = (width + 2 * padding - kernel_size) // stride + 1
        if out_height < 1 or out_width < 1:
            raise ParameterError(
                OWNER, "kernel_size", f"{kernel_size} exceeds the input size {(height, width)} with padding {padding}"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.input_size = (height, width)
        self.output_size = (out_height, out_width)
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        # The original single-component model applied Dropout2d(p=0.5) to the layer's input; composites did not.
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else None

        patch_length = kernel_size * kernel_size * in_channels
        fan_out = out_channels * kernel_size * kernel_size
        self.weight = nn.Parameter(
            torch.randn(out_height * out_width, out_channels, patch_length) * math.sqrt(2.0 / fan_out)
        )
        if bias:
            bound = 1.0 / math.sqrt(patch_length)
            self.bias = nn.Parameter(torch.empty(out_channels, out_height, out_width).uniform_(-bound, bound))
        else:
            self.register_parameter("bias", None)

        padded_width = width + 2 * padding
        window_rows = torch.arange(out_height)[:, None, None, None] * stride
        window_cols = torch.arange(out_width)[None, :, None, None] * stride
        kernel_offsets = torch.arange(kernel_size)
        rows = window_rows + kernel_offsets[None, None, :, None]
        cols = window_cols + kernel_offsets[None, None, None, :]
        # Flat index into the padded image of pixel (ki, kj) of the window of each location, (L * k * k,).
        self.register_buffer("patch_pixel_index", (rows * padded_width + cols).reshape(-1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (checked on tensors; torch.fx traces with proxies, whose shapes are not known)
        if not isinstance(x, torch.fx.Proxy) and (
            x.ndim != 4 or x.shape[1] != self.in_channels or tuple(x.shape[-2:]) != self.input_size
        ):
            raise ValueError(
                f"LocallyConnected2d: expected input of shape (N, {self.in_channels}, {self.input_size[0]}, "
                f"{self.input_size[1]}), got {tuple(x.shape)}"
            )
        if self.dropout is not None:
            x = self.dropout(x)
        batch = x.shape[0]
        p = self.padding
        # (padded pixels, C_in * N): each row holds one padded pixel of every channel and sample.
        pixels = F.pad(x, (p, p, p, p)).permute(2, 3, 1, 0).reshape(-1, self.in_channels * batch)
        locations = self.output_size[0] * self.output_size[1]
        patches = pixels.index_select(0, self.patch_pixel_index).view(locations, -1, batch)
        out = contiguous_gradient(torch.bmm(self.weight.to(x.dtype), patches))
        out = out.permute(2, 1, 0).contiguous().view(batch, self.out_channels, *self.output_size)
        if self.bias is not None:
            out = out + self.bias.to(out.dtype)
        return out

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, input_size={self.input_size}, "
            f"output_size={self.output_size}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding}, bias={self.bias is not None}, dropout={self.dropout.p if self.dropout else 0.0}"
        )
