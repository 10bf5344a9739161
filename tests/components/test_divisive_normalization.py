"""DivisiveNormalization against a direct, loop-based evaluation of its anisotropic Gaussian pool."""

import itertools
import math

import numpy as np
import pytest
import torch

from neurov1.components import DivisiveNormalization


def reference_pool_kernels(module):
    """G[o, i](x, y) = |A| / (2 pi rho sigma) exp(-(xr^2 / rho^2 + yr^2 / sigma^2) / 2), per entry."""
    amplitude, rho, sigma, theta, v, w = (
        t.detach().double().numpy()
        for t in (module.amplitude, module.rho, module.sigma, module.theta, module.offset_x, module.offset_y)
    )
    channels, k = module.channels, module.kernel_size
    kernels = np.zeros((channels, channels, k, k))
    for o, i, row, col in itertools.product(range(channels), range(channels), range(k), range(k)):
        x, y = col - k // 2, row - k // 2
        dx, dy = x - v[o, i], y - w[o, i]
        x_rotated = dx * math.cos(theta[o, i]) + dy * math.sin(theta[o, i])
        y_rotated = -dx * math.sin(theta[o, i]) + dy * math.cos(theta[o, i])
        exponent = -0.5 * (x_rotated**2 / rho[o, i] ** 2 + y_rotated**2 / sigma[o, i] ** 2)
        kernels[o, i, row, col] = abs(amplitude[o, i]) / (2 * math.pi * rho[o, i] * sigma[o, i]) * math.exp(exponent)
    return kernels


def reference_divisive_normalization(image, kernels, bias):
    """out[n, c, r, q] = x[n, c, r, q] / (sum_{i, u, v} G[c, i, u, v] x[n, i, r + u - h, q + v - h] + |b|).

    h = k // 2; taps outside the image are zero padding.
    """
    batch, channels, height, width = image.shape
    k = kernels.shape[-1]
    out = np.zeros_like(image)
    for n, c, r, q in itertools.product(range(batch), range(channels), range(height), range(width)):
        pool = 0.0
        for i, u, v in itertools.product(range(channels), range(k), range(k)):
            row, col = r + u - k // 2, q + v - k // 2
            if 0 <= row < height and 0 <= col < width:
                pool += kernels[c, i, u, v] * image[n, i, row, col]
        out[n, c, r, q] = image[n, c, r, q] / (pool + abs(bias))
    return out


@pytest.mark.parametrize("kernel_size", [3, 5])
def test_pool_kernels_match_formula(kernel_size):
    torch.manual_seed(0)
    module = DivisiveNormalization(3, kernel_size).double()
    with torch.no_grad():
        module.amplitude[0, 0] = -0.7  # |A| is used
    kernels = module.pool_kernels()
    assert kernels.shape == (3, 3, kernel_size, kernel_size)
    np.testing.assert_allclose(kernels.detach().numpy(), reference_pool_kernels(module), rtol=1e-12, atol=1e-15)


def test_forward_matches_loop_reference():
    torch.manual_seed(1)
    module = DivisiveNormalization(3).double()
    with torch.no_grad():
        module.bias.fill_(-1.3)  # |b| is used
    x = torch.rand(2, 3, 5, 6, dtype=torch.float64)
    expected = reference_divisive_normalization(x.numpy(), reference_pool_kernels(module), -1.3)
    np.testing.assert_allclose(module(x).detach().numpy(), expected, rtol=1e-10, atol=1e-12)


def test_rotation_is_about_the_shifted_centre():
    module = DivisiveNormalization(1, kernel_size=5).double()
    with torch.no_grad():
        module.rho.fill_(2.0)
        module.sigma.fill_(0.5)
        module.offset_x.fill_(1.0)
        module.offset_y.fill_(0.0)
        module.theta.fill_(math.pi / 2)  # long axis along y, through (x, y) = (1, 0)
    kernel = module.pool_kernels()[0, 0]
    assert kernel.argmax().item() == 2 * 5 + 3  # row 2 (y = 0), col 3 (x = 1)
    torch.testing.assert_close(kernel[:, 3], kernel[:, 3].flip(0))
    assert (kernel[:, 3] > kernel[:, 2]).all() and kernel[0, 3] > kernel[2, 4]


def test_width_clamps_keep_kernels_finite():
    module = DivisiveNormalization(2)
    with torch.no_grad():
        module.rho.zero_()
        module.sigma.fill_(1e-8)
        module.offset_x.zero_()
        module.offset_y.zero_()
    kernels = module.pool_kernels()
    assert torch.isfinite(kernels).all()
    # rho^2 and sigma^2 are clamped at 0.1 px^2: the centre value is |A| / (2 pi sqrt(0.1 * 0.1)).
    torch.testing.assert_close(kernels[..., 1, 1], module.amplitude.abs() / (2 * math.pi * 0.1))


def test_initialisation_ranges():
    torch.manual_seed(2)
    module = DivisiveNormalization(32)
    assert 0 <= module.amplitude.min() and module.amplitude.max() <= 1
    for width in (module.rho, module.sigma):
        assert 1 <= width.min() and width.max() <= 2
    assert 0 <= module.theta.min() and module.theta.max() <= 2 * math.pi
    assert module.offset_x.std().item() == pytest.approx(1.0, rel=0.1)
    assert 1 <= module.bias.item() <= 2


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"channels": 0}, "channels must be >= 1, got 0"),
        ({"kernel_size": 4}, "kernel_size must be an odd integer >= 1, got 4"),
        ({"kernel_size": -1}, "kernel_size must be an odd integer >= 1, got -1"),
    ],
)
def test_invalid_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DivisiveNormalization(**({"channels": 4} | kwargs))
