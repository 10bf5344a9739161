"""LocallyConnected2d against a direct, loop-based evaluation with one kernel per output location."""

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from neurov1.components import LocallyConnected2d

GEOMETRIES = [  # (kernel_size, stride, padding)
    (3, 1, 1),
    (3, 2, 1),
    (2, 2, 0),
    (5, 1, 2),
    (3, 3, 0),
    (1, 1, 0),
]


def reference_locally_connected(image, weight, bias, kernel_size, stride, padding):
    """out[n, o, r, c] = sum_{ki, kj, i} W[l, o, (ki k + kj) C_in + i] x[n, i, r s + ki - p, c s + kj - p] + b

    l = r * W_out + c; taps outside the image are zero padding.
    """
    batch, c_in, height, width = image.shape
    c_out = weight.shape[1]
    out_height = (height + 2 * padding - kernel_size) // stride + 1
    out_width = (width + 2 * padding - kernel_size) // stride + 1
    out = np.zeros((batch, c_out, out_height, out_width))
    for r, c, o in itertools.product(range(out_height), range(out_width), range(c_out)):
        location = r * out_width + c
        total = np.zeros(batch) if bias is None else np.full(batch, bias[o, r, c])
        for ki, kj, i in itertools.product(range(kernel_size), range(kernel_size), range(c_in)):
            row, col = r * stride + ki - padding, c * stride + kj - padding
            if 0 <= row < height and 0 <= col < width:
                total += weight[location, o, (ki * kernel_size + kj) * c_in + i] * image[:, i, row, col]
        out[:, o, r, c] = total
    return out


@pytest.mark.parametrize(("kernel_size", "stride", "padding"), GEOMETRIES)
@pytest.mark.parametrize("bias", [False, True])
def test_matches_loop_reference(kernel_size, stride, padding, bias):
    torch.manual_seed(0)
    layer = LocallyConnected2d(3, 4, (7, 6), kernel_size, stride, padding, bias=bias).double()
    x = torch.randn(2, 3, 7, 6, dtype=torch.float64)
    bias_values = None if layer.bias is None else layer.bias.detach().numpy()
    expected = reference_locally_connected(
        x.numpy(), layer.weight.detach().numpy(), bias_values, kernel_size, stride, padding
    )
    np.testing.assert_allclose(layer(x).detach().numpy(), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("kernel_size", "stride", "padding"), GEOMETRIES)
def test_shape_and_shared_weights_equal_conv2d(kernel_size, stride, padding):
    torch.manual_seed(1)
    layer = LocallyConnected2d(3, 5, (9, 8), kernel_size, stride, padding).double()
    conv = torch.nn.Conv2d(3, 5, kernel_size, stride, padding, bias=False).double()
    with torch.no_grad():
        layer.weight.copy_(conv.weight.permute(0, 2, 3, 1).reshape(5, -1).expand_as(layer.weight))
    x = torch.randn(2, 3, 9, 8, dtype=torch.float64)
    expected = conv(x)
    assert layer.output_size == tuple(expected.shape[-2:])
    torch.testing.assert_close(layer(x), expected, rtol=1e-12, atol=1e-12)


def test_weight_and_bias_shapes():
    layer = LocallyConnected2d(64, 32, 16, bias=True)
    assert layer.weight.shape == (256, 32, 64 * 9)
    assert layer.bias.shape == (32, 16, 16)
    assert LocallyConnected2d(64, 32, 16).bias is None


def test_kaiming_fan_out_initialisation():
    torch.manual_seed(2)
    layer = LocallyConnected2d(64, 64, 16)
    assert layer.weight.std().item() == pytest.approx(math.sqrt(2.0 / (64 * 9)), rel=0.02)
    assert abs(layer.weight.mean().item()) < 1e-3


def test_kernel_taps_only_get_gradient_from_their_own_window():
    torch.manual_seed(3)
    layer = LocallyConnected2d(3, 4, 6, bias=True)
    layer(torch.rand(2, 3, 6, 6)).sum().backward()
    # Each location's kernel only sees its own window: padded taps of corner kernels get no gradient.
    corner_taps = layer.weight.grad[0].view(4, 3, 3, 3)
    assert (corner_taps[:, 0] == 0).all() and (corner_taps[:, 1:, 1:] != 0).all()


def test_gradients_match_loop_formula():
    torch.manual_seed(4)
    layer = LocallyConnected2d(2, 3, 5, stride=2).double()
    x = torch.randn(2, 2, 5, 5, dtype=torch.float64, requires_grad=True)
    upstream = torch.randn(2, 3, 3, 3, dtype=torch.float64)
    layer(x).backward(upstream)
    patches = F.unfold(x.detach(), 3, padding=1, stride=2)  # (N, C_in * 9, L), channel-major
    patches = patches.view(2, 2, 9, 9).permute(0, 3, 2, 1).reshape(2, 9, 18)  # (N, L, 9 * C_in)
    expected = torch.einsum("nol,nlj->loj", upstream.flatten(2), patches)
    torch.testing.assert_close(layer.weight.grad, expected)


def test_wrong_input_size_raises():
    layer = LocallyConnected2d(3, 4, (7, 6))
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 3, 7, 6\), got \(2, 3, 6, 6\)"):
        layer(torch.randn(2, 3, 6, 6))
    with pytest.raises(ValueError, match=r"got \(2, 4, 7, 6\)"):
        layer(torch.randn(2, 4, 7, 6))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"in_channels": 0}, "in_channels must be an integer >= 1, got 0"),
        ({"out_channels": 0}, "out_channels must be an integer >= 1, got 0"),
        ({"kernel_size": 0}, "kernel_size must be an integer >= 1, got 0"),
        ({"stride": 0}, "stride must be an integer >= 1, got 0"),
        ({"padding": -1}, "padding must be an integer >= 0 or None"),
        ({"input_size": (0, 5)}, r"input_size must be a positive int or \(H, W\), got \(0, 5\)"),
        ({"input_size": (4, 4, 4)}, "input_size must be a positive int"),
        ({"input_size": 2, "kernel_size": 5, "padding": 0}, "kernel_size 5 exceeds the input size"),
        ({"kernel_size": 4}, r"kernel_size must be odd to keep the size \(padding None\), got 4"),
    ],
)
def test_invalid_arguments_raise(kwargs, match):
    arguments = {"in_channels": 3, "out_channels": 4, "input_size": 8} | kwargs
    with pytest.raises(ValueError, match=match):
        LocallyConnected2d(**arguments)
