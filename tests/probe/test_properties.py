"""The vectorised property functions compute Brain-Score's per-neuron values."""

import numpy as np
import pytest

from neurov1.evaluation.brainscore.environment import import_brainscore
from neurov1.evaluation.probe import properties

ORIENTATION = np.linspace(0, 165, 12)
FREQUENCIES = np.logspace(-1.5 + 0.125, 4 - 0.125, 22, base=2)
RADII = np.logspace(-3 + 0.75, 4 - 0.75, 12, base=2) / 2


@pytest.fixture(scope="module")
def common():
    import_brainscore()
    from brainscore_vision.benchmark_helpers import properties_common

    return properties_common


def tuned(rng, n, axis, width):
    """Noisy tuning curves with random preferences; float32 like firing rates."""
    preferred = rng.uniform(axis.min(), axis.max(), (n, 1))
    return (rng.gamma(2, size=(n, len(axis))) * np.exp(-(((axis - preferred) / width) ** 2))).astype(np.float32)


def assert_same(ours, theirs):
    ours, theirs = np.asarray(ours, float), np.asarray(theirs, float)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    np.testing.assert_allclose(ours[~np.isnan(ours)], theirs[~np.isnan(theirs)], rtol=1e-12, atol=1e-12)


def test_orientation_tuning(common):
    rng = np.random.default_rng(0)
    curves = tuned(rng, 500, ORIENTATION, 40)
    curves[::5] = 1 + 0.05 * rng.random((100, len(ORIENTATION)))  # untuned: no bandwidth
    for window, threshold, mode in (("hanning", 0.707, "half"), ("smooth", 0.5, "full")):
        bandwidth, preferred = properties.orientation_tuning(curves, ORIENTATION, window, threshold, mode == "half")
        reference = [
            common.calc_bandwidth(c, ORIENTATION, filt_type=window, thrsh=threshold, mode=mode) for c in curves
        ]
        assert_same(bandwidth, [r[0] for r in reference])
        assert_same(preferred, [r[1] for r in reference])
    assert np.isnan(bandwidth).any() and not np.isnan(bandwidth).all()
    assert_same(
        properties.circular_variance(curves, ORIENTATION),
        [common.calc_circular_variance(c, ORIENTATION) for c in curves],
    )
    assert_same(
        properties.orthogonal_preferred_ratio(curves),
        [common.calc_orthogonal_preferred_ratio(c, ORIENTATION) for c in curves],
    )


def test_spatial_frequency_tuning(common):
    curves = tuned(np.random.default_rng(1), 500, np.log2(FREQUENCIES), 1.5)
    bandwidth, peak = properties.spatial_frequency_tuning(curves, FREQUENCIES, "smooth", 0.707)
    reference = [
        common.calc_spatial_frequency_tuning(c, FREQUENCIES, filt_type="smooth", thrsh=0.707, mode="ratio")
        for c in curves
    ]
    assert_same(bandwidth, [r[0] for r in reference])
    assert_same(peak, [r[1] for r in reference])
    assert np.isnan(bandwidth).any() and not np.isnan(bandwidth).all()


def test_size_tuning(common):
    rng = np.random.default_rng(2)
    rising = np.minimum(RADII, rng.uniform(0.2, 4, (500, 1)))
    curves = (rising * rng.uniform(0, 1.5, (500, 1)) - (RADII > 1) * rng.uniform(0, 1, (500, 1))).astype(np.float32)
    ours = properties.size_tuning(curves, RADII)
    reference = np.array([common.calc_size_tuning(c, RADII) for c in curves])
    for index in range(4):
        assert_same(ours[index], reference[:, index])
    assert np.isnan(ours[0]).any() and not np.isnan(ours[0]).all()
