"""TunedNormalization against a direct, loop-based evaluation of paper Eq. 2."""

import itertools
import math

import numpy as np
import pytest
import torch

from neurov1.components import TunedNormalization


def reference_weights(sigma):
    """p_ck = exp(-d(k, c*)^2 / (2 sigma_c^2)) / sum_k' (...), c* = (c + C // 2) mod C, sigma_c >= 0.5."""
    channels = len(sigma)
    weights = np.zeros((channels, channels))
    for c in range(channels):
        opponent = (c + channels // 2) % channels
        width = max(sigma[c], 0.5)
        for k in range(channels):
            distance = min(abs(k - opponent), channels - abs(k - opponent))
            weights[c, k] = math.exp(-(distance**2) / (2 * width**2))
        weights[c] /= weights[c].sum()
    return weights


def reference_tuned_normalization(image, weights):
    """x'[n, c, i, j] = x[n, c, i, j] / (1 + sum_k p_ck x[n, k, i, j])."""
    batch, channels, height, width = image.shape
    out = np.zeros_like(image)
    for n, c, i, j in itertools.product(range(batch), range(channels), range(height), range(width)):
        pool = sum(weights[c, k] * image[n, k, i, j] for k in range(channels))
        out[n, c, i, j] = image[n, c, i, j] / (1 + pool)
    return out


@pytest.mark.parametrize("channels", [7, 8])
def test_weights_match_formula_and_forward_matches_loop_reference(channels):
    torch.manual_seed(channels)
    module = TunedNormalization(channels).double()
    with torch.no_grad():
        module.sigma[0] = 0.1  # clamped to 0.5
    sigma = module.sigma.detach().numpy()
    weights = module.weights()
    np.testing.assert_allclose(weights.detach().numpy(), reference_weights(sigma), rtol=1e-12, atol=1e-15)
    x = torch.rand(2, channels, 4, 5, dtype=torch.float64)
    expected = reference_tuned_normalization(x.numpy(), reference_weights(sigma))
    np.testing.assert_allclose(module(x).detach().numpy(), expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("channels", [2, 7, 8, 256])
def test_rows_are_normalised_circular_gaussians_peaking_at_the_opponent(channels):
    torch.manual_seed(0)
    weights = TunedNormalization(channels).double().weights().detach()
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(channels, dtype=torch.float64))
    channel = torch.arange(channels)
    opponent = (channel + channels // 2) % channels
    assert torch.equal(weights.argmax(dim=1), opponent)
    # by_offset[c, d] = p[c, (c* + d) mod C]: symmetric in d <-> -d, decreasing away from the opponent.
    by_offset = weights.gather(1, (opponent[:, None] + channel[None, :]) % channels)
    torch.testing.assert_close(by_offset, by_offset[:, (-channel) % channels], rtol=1e-12, atol=0)
    half = by_offset[:, : channels // 2 + 1]
    assert (half[:, 1:] <= half[:, :-1]).all()


def test_sigma_initialisation_and_clamp():
    torch.manual_seed(1)
    module = TunedNormalization(64)
    assert 8 <= module.sigma.min() and module.sigma.max() <= 9
    with torch.no_grad():
        module.sigma.fill_(-3.0)
    narrow = module.weights()
    with torch.no_grad():
        module.sigma.fill_(0.5)
    torch.testing.assert_close(narrow, module.weights())


def test_distance_buffer_is_not_saved():
    assert list(TunedNormalization(4).state_dict()) == ["sigma"]


@pytest.mark.parametrize("channels", [0, 1])
def test_invalid_arguments_raise(channels):
    with pytest.raises(ValueError, match=f"TunedNormalization: channels must be >= 2, got {channels}"):
        TunedNormalization(channels)
