"""The 15 grating-based V1 properties of Marques et al. (2021), per unit, vectorised over units.

Each function takes firing rates laid out as Brain-Score's property functions reshape them and returns the same
per-unit values that Brain-Score computes one neuron at a time (``brainscore_vision/benchmark_helpers/
properties_common.py`` and ``benchmarks/marques2020/benchmarks/*.py``), with the same unit selection:

- tuning-curve helpers: :func:`orientation_tuning` (``calc_bandwidth``: the curve on three periods, smoothed with a
  5-tap window, an interpolating cubic spline on a 1 degree grid; bandwidth from the threshold crossings around the
  peak), :func:`spatial_frequency_tuning` (``calc_spatial_frequency_tuning``: on log2 frequency, 100 points),
  :func:`size_tuning` (``calc_size_tuning``), :func:`circular_variance`, :func:`orthogonal_preferred_ratio`;
- per-benchmark property tables: :func:`ringach2002`, :func:`devalois1982a`, :func:`devalois1982b`,
  :func:`schiller1976`, :func:`cavanaugh2002`; each returns a :class:`Table`: every unit's property values, the
  boolean mask of the units the benchmark keeps (:func:`select` applies it) and the tuning curve each unit's
  values were computed from.

The interpolating spline is scipy's ``CubicSpline`` with not-a-knot ends, which is the curve FITPACK's
``UnivariateSpline(s=0)`` (Brain-Score's) fits through the same points, evaluated for all units at once.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.interpolate import CubicSpline

WINDOWS = {  # the smoothing windows of calc_bandwidth / calc_spatial_frequency_tuning
    "hanning": np.array([0, 2 / 5, 1, 2 / 5, 0]),
    "smooth": np.array([0, 1 / 5, 1, 1 / 5, 0]),
    "triangle": np.array([0.5, 0.75, 1, 0.75, 0.5]),
}
RESPONSE_THRESHOLD = 5  # spikes/s above baseline (or above zero) for a unit to count, every Marques benchmark
ORIENTATION_BIN_LIM = 157.5  # DeValois1982a: preferred orientations at or above it are counted from -180


class Table(NamedTuple):
    """One benchmark's properties of every unit (``values``), the units it keeps (``responsive``), and the tuning
    curve of each unit that its values come from (``curves``: units x levels of the parameter varied)."""

    values: dict[str, np.ndarray]
    responsive: np.ndarray
    curves: np.ndarray


def _smooth(values: np.ndarray, window: str) -> np.ndarray:
    """``np.convolve(w / w.sum(), row, mode)`` of each row for a symmetric 5-tap window over a padded row."""
    weights = WINDOWS[window] / WINDOWS[window].sum()
    length = values.shape[1] - 4
    return sum(weight * values[:, k : k + length] for k, weight in enumerate(weights))


def _crossings(curves: np.ndarray, peak: np.ndarray, threshold: np.ndarray, grid: np.ndarray):
    """Grid values of the last point before ``peak`` and the first after it where the curve is <= ``threshold``
    (NaN where there is none)."""
    below = curves <= threshold[:, None]
    index = np.arange(curves.shape[1])
    before = np.where(below & (index < peak[:, None]), index, -1).max(axis=1)
    after = np.where(below & (index > peak[:, None]), index, curves.shape[1]).min(axis=1)
    low = np.where(before >= 0, grid[np.clip(before, 0, None)], np.nan)
    high = np.where(after < curves.shape[1], grid[np.clip(after, None, curves.shape[1] - 1)], np.nan)
    return low, high


def orientation_tuning(curves: np.ndarray, orientation: np.ndarray, window: str, threshold: float, half: bool):
    """``calc_bandwidth`` for every row of ``curves`` (n, orientations): (bandwidth, preferred orientation in
    whole degrees 0..179)."""
    extended = np.hstack((orientation - 180, orientation, orientation + 180))
    tiled = np.tile(curves.astype(float), (1, 3))
    smoothed = _smooth(np.pad(tiled, ((0, 0), (2, 2))), window)  # np.convolve(..., mode="same")
    full_grid = np.linspace(-180, 359, 540)
    full = CubicSpline(extended, smoothed, axis=1)(full_grid)
    preferred = np.argmax(full[:, 180:360], axis=1)
    peak_value = full[np.arange(len(full)), preferred + 180]
    low, high = _crossings(full, preferred + 180, peak_value * threshold, full_grid)
    bandwidth = high - low
    bandwidth[bandwidth > 180] = np.nan
    return (bandwidth / 2 if half else bandwidth), preferred


def spatial_frequency_tuning(curves: np.ndarray, frequencies: np.ndarray, window: str, threshold: float):
    """``calc_spatial_frequency_tuning(mode="ratio")`` for every row of ``curves`` (n, frequencies): (bandwidth,
    100 x the low over the high threshold crossing frequency; peak frequency)."""
    log_frequency = np.log2(frequencies)
    curves = curves.astype(float)
    padded = np.hstack((curves[:, :1], curves[:, :1], curves, curves[:, -1:], curves[:, -1:]))
    full_grid = np.linspace(log_frequency[0], log_frequency[-1], num=100, endpoint=True)
    full = CubicSpline(log_frequency, _smooth(padded, window), axis=1)(full_grid)
    preferred = np.argmax(full, axis=1)
    peak_value = full[np.arange(len(full)), preferred]
    low, high = _crossings(full, preferred, peak_value * threshold, full_grid)
    return (2**low) / (2**high) * 100, np.power(2, full_grid[preferred])


def circular_variance(curves: np.ndarray, orientation: np.ndarray) -> np.ndarray:
    """1 - |sum r exp(2i theta)| / sum |r| of each row."""
    vector = curves @ np.exp(1j * 2 * orientation / 180 * np.pi)
    return 1 - np.absolute(vector) / np.sum(np.absolute(curves), axis=1)


def orthogonal_preferred_ratio(curves: np.ndarray) -> np.ndarray:
    """Response at the preferred orientation + 90 degrees over the response at the preferred orientation."""
    rows = np.arange(len(curves))
    preferred = np.argmax(curves, axis=1)
    orthogonal = (preferred + curves.shape[1] // 2) % curves.shape[1]
    return curves[rows, orthogonal] / curves[rows, preferred]


def size_tuning(curves: np.ndarray, radius: np.ndarray):
    """``calc_size_tuning`` for every row of ``curves`` (n, radii): (grating summation field, surround diameter,
    their ratio, surround suppression index)."""
    preferred = np.argmax(curves, axis=1)
    peak = curves.max(axis=1)
    plateau = curves[:, -1]
    with np.errstate(divide="ignore", invalid="ignore"):
        suppression = (peak - plateau) / peak
    suppressed = (peak > 0) & (suppression > 0.1)
    summation = radius[np.argmax(curves >= (peak * 0.95)[:, None], axis=1)] * 2
    plateau_level = plateau + 0.05 * np.absolute(plateau)
    beyond = (curves <= plateau_level[:, None]) & (radius[None, :] > radius[preferred][:, None])
    diameter = radius[np.argmax(beyond, axis=1)] * 2
    summation = np.where(suppressed, summation, np.nan)
    diameter = np.where(suppressed & beyond.any(axis=1), diameter, np.nan)
    return summation, diameter, diameter / summation, suppression


def _phase_components(responses: np.ndarray):
    """Mean over the last (phase) axis and the first harmonic's amplitude (``|fft|[..., 1] * 2 / phases``)."""
    phases = responses.shape[-1]
    return responses.mean(axis=-1), np.absolute(np.fft.fft(responses))[..., 1] / phases * 2


def _preferred(table: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per unit, the multi-index of the first maximum of the unit's table (``np.unravel_index(np.argmax(...))``)."""
    flat = table.reshape(len(table), -1)
    return np.unravel_index(np.argmax(flat, axis=1), table.shape[1:])


def ringach2002(responses: np.ndarray, baseline: np.ndarray, orientation: np.ndarray) -> Table:
    """Ringach et al. 2002 properties from the orientation set: ``responses`` (n, cycles, frequencies,
    orientations, phases), ``baseline`` (n,)."""
    rows = np.arange(len(responses))
    dc, ac = _phase_components(responses)
    cycle, frequency, preferred = _preferred(dc)
    max_dc = dc[rows, cycle, frequency, preferred]
    max_ac = ac[rows, cycle, frequency, preferred]
    curves = dc[rows, cycle, frequency, :]
    variance = circular_variance(curves, orientation)
    bandwidth = orientation_tuning(curves, orientation, "hanning", 0.707, half=True)[0]
    ratio = orthogonal_preferred_ratio(curves)
    properties = {
        "baseline": baseline,
        "max_dc": max_dc,
        "min_dc": curves.min(axis=1),
        "max_ac": max_ac,
        "modulation_ratio": max_ac / max_dc,
        "circular_variance": variance,
        "bandwidth": bandwidth,
        "orthogonal_preferred_ratio": ratio,
        "orientation_selective": np.where(np.isnan(bandwidth), 0.0, 1.0),
        "circular_variance_bandwidth_ratio": variance / bandwidth,
        "orthogonal_preferred_ratio_circular_variance_difference": ratio - variance,
        "orthogonal_preferred_ratio_bandwidth_ratio": ratio / bandwidth,
    }
    return Table(properties, max_dc > baseline + RESPONSE_THRESHOLD, curves)


def devalois1982a(responses: np.ndarray, baseline: np.ndarray, orientation: np.ndarray) -> Table:
    """Preferred orientation (De Valois, Yund & Hepler 1982) from the orientation set (layout as Ringach)."""
    rows = np.arange(len(responses))
    dc = responses.mean(axis=-1)
    cycle, frequency, _ = _preferred(dc)
    curves = dc[rows, cycle, frequency, :]
    preferred = orientation_tuning(curves, orientation, "smooth", 0.5, half=False)[1].astype(float)
    preferred[preferred >= ORIENTATION_BIN_LIM] -= 180
    good = dc.reshape(len(dc), -1).max(axis=1) > baseline + RESPONSE_THRESHOLD
    return Table({"preferred_orientation": preferred}, good, curves)


def with_harmonic(responses: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """(n, ..., 2): the baseline-subtracted mean response and the first harmonic, as Cavanaugh/DeValois1982b."""
    dc, ac = _phase_components(responses)
    dc = dc - baseline.reshape((-1,) + (1,) * (dc.ndim - 1))
    return np.stack((dc, ac), axis=-1)


def devalois1982b(responses: np.ndarray, baseline: np.ndarray, frequencies: np.ndarray) -> Table:
    """Peak spatial frequency (De Valois, Albrecht & Thorell 1982) from the spatial frequency set: ``responses``
    (n, radii, frequencies, orientations, phases)."""
    rows = np.arange(len(responses))
    table = with_harmonic(responses, baseline)
    radius, _, orientation, component = _preferred(table)
    curves = table[rows, radius, :, orientation, component]
    peak = spatial_frequency_tuning(curves, frequencies, "smooth", 0.707)[1]
    good = table.reshape(len(table), -1).max(axis=1) > RESPONSE_THRESHOLD
    return Table({"peak_spatial_frequency": peak}, good, curves)


def schiller1976(responses: np.ndarray, baseline: np.ndarray, frequencies: np.ndarray) -> Table:
    """Spatial frequency selectivity and bandwidth (Schiller, Finlay & Volman 1976) from the spatial frequency set."""
    rows = np.arange(len(responses))
    dc = responses.mean(axis=-1)
    radius, _, orientation = _preferred(dc)
    curves = dc[rows, radius, :, orientation]
    bandwidth = spatial_frequency_tuning(curves, frequencies, "smooth", 0.707)[0]
    properties = {
        "spatial_frequency_selective": np.where(np.isnan(bandwidth), 0.0, 1.0),
        "spatial_frequency_bandwidth": bandwidth,
    }
    return Table(properties, dc.reshape(len(dc), -1).max(axis=1) > baseline + RESPONSE_THRESHOLD, curves)


def cavanaugh2002(responses: np.ndarray, baseline: np.ndarray, radius: np.ndarray) -> Table:
    """Size tuning (Cavanaugh, Bair & Movshon 2002) from the size set: ``responses`` (n, radii, frequencies,
    orientations, phases)."""
    rows = np.arange(len(responses))
    table = with_harmonic(responses, baseline)
    _, frequency, orientation, component = _preferred(table)
    curves = table[rows, :, frequency, orientation, component]
    summation, diameter, ratio, suppression = size_tuning(curves, radius)
    properties = {
        "surround_suppression_index": suppression,
        "strongly_suppressed": np.where(suppression >= 0.1, 1.0, 0.0),
        "grating_summation_field": summation,
        "surround_diameter": diameter,
        "surround_grating_summation_field_ratio": ratio,
    }
    return Table(properties, table.reshape(len(table), -1).max(axis=1) > RESPONSE_THRESHOLD, curves)


def select(properties: dict[str, np.ndarray], responsive: np.ndarray) -> dict[str, np.ndarray]:
    """The values of the responsive units only (as Brain-Score's property assemblies hold them), as float64."""
    return {name: np.asarray(values, dtype=float)[responsive] for name, values in properties.items()}
