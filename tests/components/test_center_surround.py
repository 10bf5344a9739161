"""DoGConv2d and CenterSurround against a direct, loop-based evaluation of paper Eq. 1."""

import itertools
import math

import numpy as np
import pytest
import torch

from neurov1.components import CenterSurround, DoGConv2d


def reference_dog_kernels(center_sigma, surround_sigma, scale, kernel_size):
    """Eq. 1 evaluated per (out, in, row, col); (x, y) = (0, 0) at the kernel centre."""
    c_out, c_in = scale.shape
    half = kernel_size // 2
    kernels = np.zeros((c_out, c_in, kernel_size, kernel_size))
    for o, i, row, col in itertools.product(range(c_out), range(c_in), range(kernel_size), range(kernel_size)):
        x, y = col - half, row - half
        sc, ss, a = center_sigma[o, i], surround_sigma[o, i], scale[o, i]
        center = a / (2 * math.pi * sc**2) * math.exp(-(x**2 + y**2) / (2 * sc**2))
        surround = a / (2 * math.pi * ss**2) * math.exp(-(x**2 + y**2) / (2 * ss**2))
        kernels[o, i, row, col] = center - surround
    return kernels


def reference_conv2d(image, kernels, padding):
    """out[n, o, r, c] = sum_{i, u, v} w[o, i, u, v] x[n, i, r + u - p, c + v - p], zero outside the image."""
    batch, c_in, height, width = image.shape
    c_out, _, k, _ = kernels.shape
    out = np.zeros((batch, c_out, height + 2 * padding - k + 1, width + 2 * padding - k + 1))
    for n, o, r, c in itertools.product(range(batch), range(c_out), range(out.shape[2]), range(out.shape[3])):
        total = 0.0
        for i, u, v in itertools.product(range(c_in), range(k), range(k)):
            row, col = r + u - padding, c + v - padding
            if 0 <= row < height and 0 <= col < width:
                total += kernels[o, i, u, v] * image[n, i, row, col]
        out[n, o, r, c] = total
    return out


def module_parameters(dog):
    return [t.detach().double().numpy() for t in (dog.center_sigma, dog.surround_sigma, dog.scale)]


@pytest.mark.parametrize("kernel_size", [3, 5])
def test_kernels_match_equation_1(kernel_size):
    torch.manual_seed(0)
    dog = DoGConv2d(3, kernel_size=kernel_size).double()
    expected = reference_dog_kernels(*module_parameters(dog), kernel_size)
    assert dog.kernels().shape == (3, 3, kernel_size, kernel_size)
    np.testing.assert_allclose(dog.kernels().detach().numpy(), expected, rtol=1e-12, atol=1e-14)


def test_dog_conv_matches_loop_convolution():
    torch.manual_seed(1)
    dog = DoGConv2d(3).double()
    x = torch.randn(2, 3, 6, 7, dtype=torch.float64)
    expected = reference_conv2d(x.numpy(), reference_dog_kernels(*module_parameters(dog), 5), padding=2)
    out = dog(x)
    assert out.shape == x.shape
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-10, atol=1e-12)


def test_center_surround_filters_first_channels_and_passes_the_rest():
    torch.manual_seed(2)
    module = CenterSurround(8, fraction=0.25).double()
    assert module.n_dog_channels == 2
    x = torch.randn(2, 8, 6, 6, dtype=torch.float64)
    out = module(x)
    dog_part = reference_conv2d(x[:, :2].numpy(), reference_dog_kernels(*module_parameters(module.dog), 5), 2)
    np.testing.assert_allclose(out[:, :2].detach().numpy(), dog_part, rtol=1e-10, atol=1e-12)
    assert torch.equal(out[:, 2:], x[:, 2:])


def test_resnet_layer1_geometry():
    module = CenterSurround(64)
    assert module.n_dog_channels == 16
    assert module.dog.kernels().shape == (16, 16, 5, 5)
    assert module(torch.randn(1, 64, 16, 16)).shape == (1, 64, 16, 16)


def test_initial_widths_and_scale():
    torch.manual_seed(3)
    dog = DoGConv2d(64)
    center, ratio = dog.center_sigma, dog.surround_sigma / dog.center_sigma
    assert 0.5 - 1e-5 <= center.min() and center.max() <= 1.5 + 1e-5
    assert 1.5 - 1e-5 <= ratio.min() and ratio.max() <= 2.5 + 1e-5
    assert dog.scale.std().item() == pytest.approx(2.0, rel=0.1)


@pytest.mark.parametrize(("raw_center", "raw_ratio"), itertools.product([-50.0, 0.0, 50.0], repeat=2))
def test_surround_wider_than_center_by_construction(raw_center, raw_ratio):
    dog = DoGConv2d(2)
    with torch.no_grad():
        dog.raw_center_sigma.fill_(raw_center)
        dog.raw_surround_ratio.fill_(raw_ratio)
    assert (dog.surround_sigma > dog.center_sigma).all()
    assert (dog.center_sigma >= dog.min_sigma).all()
    assert torch.isfinite(dog.kernels()).all()


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_sign_of_scale_sets_center_polarity(sign):
    dog = DoGConv2d(3)
    with torch.no_grad():
        dog.scale.copy_(sign * (dog.scale.abs() + 0.1))
    center_value = dog.kernels()[:, :, 2, 2]
    assert (sign * center_value > 0).all()


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: DoGConv2d(0), "channels must be >= 1, got 0"),
        (lambda: DoGConv2d(4, kernel_size=4), "kernel_size must be an odd integer >= 3, got 4"),
        (lambda: DoGConv2d(4, kernel_size=1), "kernel_size must be an odd integer >= 3, got 1"),
        (lambda: DoGConv2d(4, min_sigma=0.0), r"min_sigma must be in \(0, 0.5\) px, got 0.0"),
        (lambda: DoGConv2d(4, min_sigma=0.7), r"min_sigma must be in \(0, 0.5\) px, got 0.7"),
        (lambda: CenterSurround(0), "channels must be >= 1, got 0"),
        (lambda: CenterSurround(8, fraction=1.5), r"fraction must be in \(0, 1\], got 1.5"),
        (lambda: CenterSurround(8, fraction=0.0), r"fraction must be in \(0, 1\], got 0.0"),
        (lambda: CenterSurround(3, fraction=0.1), "fraction x 3 channels must round to >= 1 DoG channel, got 0.1"),
        (lambda: CenterSurround(8, kernel_size=4), "kernel_size must be an odd integer >= 3, got 4"),
    ],
)
def test_invalid_arguments_raise(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


def reference_released_kernels(center_sigma, surround_ratio, scale, kernel_size, min_sigma=0.1):
    """The released code's kernels per (out, in, row, col): a (sc/pi e^(-d^2/sc) - ss/pi e^(-d^2/ss)) with
    sc = max(raw sc, 0.1), ss = sc max(raw ratio, 1 + 1e-4), then each pixel divided by its L2 norm over all pairs."""
    c_out, c_in = scale.shape
    half = kernel_size // 2
    kernels = np.zeros((c_out, c_in, kernel_size, kernel_size))
    for o, i, row, col in itertools.product(range(c_out), range(c_in), range(kernel_size), range(kernel_size)):
        squared = (col - half) ** 2 + (row - half) ** 2
        sc = max(center_sigma[o, i], min_sigma)
        ss = sc * max(surround_ratio[o, i], 1 + 1e-4)
        kernels[o, i, row, col] = scale[o, i] * (
            sc / math.pi * math.exp(-squared / sc) - ss / math.pi * math.exp(-squared / ss)
        )
    for row, col in itertools.product(range(kernel_size), range(kernel_size)):
        kernels[:, :, row, col] /= math.sqrt(np.sum(kernels[:, :, row, col] ** 2))
    return kernels


def test_released_form_matches_the_released_kernels():
    torch.manual_seed(3)
    dog = DoGConv2d(3, form="released").double()
    with torch.no_grad():
        dog.raw_center_sigma[0, 0] = 0.01  # below the clamps, as training can drive them
        dog.raw_surround_ratio[1, 2] = 0.5
    raw = [t.detach().numpy() for t in (dog.raw_center_sigma, dog.raw_surround_ratio, dog.scale)]
    expected = reference_released_kernels(*raw, 5)
    np.testing.assert_allclose(dog.kernels().detach().numpy(), expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(np.sqrt((expected**2).sum(axis=(0, 1))), 1.0)  # unit norm per pixel across kernels
    x = torch.randn(2, 3, 6, 7, dtype=torch.float64)
    np.testing.assert_allclose(
        dog(x).detach().numpy(), reference_conv2d(x.numpy(), expected, 2), rtol=1e-10, atol=1e-12
    )


def test_released_form_initialisation_and_center_surround_pass_through():
    torch.manual_seed(4)
    module = CenterSurround(64, form="released")
    dog = module.dog
    assert dog.form == "released" and module(torch.randn(1, 64, 8, 8)).shape == (1, 64, 8, 8)
    for raw in (dog.raw_center_sigma, dog.raw_surround_ratio):  # U(0, 1) + k / 2 with the half-size k = 2
        assert 1.0 <= raw.min() and raw.max() <= 2.0
    assert 1.5 < dog.scale.std() < 2.5
