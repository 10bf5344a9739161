"""In-silico electrophysiology of one layer: Marques et al.'s experiments, run directly on the model's device.

The steps and constants of Brain-Score's ``benchmark_helpers/properties_common.py``, batched over stimuli and
vectorised over units:

1. Receptive field mapping (``map_receptive_field_locations``): every unit of the layer (channel x row x column)
   sees the blank and the 3528 small gratings of the receptive field set (21 x 21 positions, 8 gratings each); its
   map is the largest response at each position above its blank response; the centroid of the map's values above
   5 % of its peak, in degrees, is the unit's receptive field position. Units within 0.15 deg of the stimulus
   centre (0.5, 0.5) are recorded from in every later experiment; the rest are never kept in memory.
2. Firing rates (``firing_rates_affine``, ``get_firing_rates``): rectified activations are mapped to spikes/s by
   the affine map that gives the responsive units' median peak orientation response 33.8 spikes/s and their median
   blank response 0.82 spikes/s (macaque V1 medians), then rectified again.
3. Property tables (:mod:`neurov1.evaluation.probe.properties`) from the orientation, spatial frequency and size
   sets, reshaped by their sorted parameter values in benchmark row order.

Memory: the receptive field maps are held as (positions, units) float32 and reduced in chunks of units; stimulus
responses of the selected units only; batches hold at most ``ACTIVATION_BUDGET`` layer values (fewer images for
large layers; the blank, run once, is padded to ``batch_size`` images). Peak memory stays near 441 x units x 4
bytes plus one batch. Batches are padded to their full size as Brain-Score pads them, so that at the default sizes
every image meets the same kernels as there.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from neurov1.evaluation.brainscore.stimulus_sets import (
    BLANK,
    ORIENTATION,
    PARAMETER_COLUMNS,
    RECEPTIVE_FIELD,
    SIZE,
    SPATIAL_FREQUENCY,
    grating_parameters,
)
from neurov1.evaluation.probe import properties
from neurov1.evaluation.probe.gratings import probe_stimuli
from neurov1.models.contract import NORMALISATION

Channels = tuple[float, float, float]
RF_THRESHOLD = 0.05  # fraction of a unit's peak map value that counts as excitatory (RF_THRSH)
RF_DELTA = 0.15  # deg: largest distance of a receptive field centre from the stimulus centre (RF_DELTA)
STIMULUS_POSITION = np.array([0.5, 0.5])  # (y, x) deg: centre of every orientation, frequency and size grating
MEDIAN_MAX_RESPONSE, MEDIAN_SPONTANEOUS = 33.8, 0.82  # spikes/s, V1 (MEDIAN_MAX_RESP, MEDIAN_SPONTANEOUS)
SINGLE_MAX_RESPONSE, RESPONSE_THRESHOLD = 243.1, 5  # spikes/s, V1 (SINGLE_MAX_RESP, RESP_THRESH)
UNIT_CHUNK = 1 << 16  # units reduced at once when locating receptive fields
ACTIVATION_BUDGET = 1 << 22  # layer values per batch (64 images of ResNet-50's layer1 at 64 px)


def _column(name: str, column: str) -> np.ndarray:
    return grating_parameters(name)[:, PARAMETER_COLUMNS.index(column)]


def levels(name: str, column: str) -> np.ndarray:
    """The sorted distinct values of a parameter in a set (as the benchmarks reshape responses)."""
    return np.array(sorted(set(_column(name, column))))


def _sizes(name: str, columns: tuple[str, ...]) -> list[int]:
    return [len(levels(name, column)) for column in columns]


@dataclass
class Recording:
    """What one layer's units did in the experiments.

    Attributes:
        units: units of the layer (channels x rows x columns).
        selected: indices (into the flattened layer) of the units whose receptive field lies on the stimuli.
        rf_maps: (selected, 21, 21) receptive field maps of those units (activation units, above the blank).
        affine: (slope, offset) from rectified activations to spikes/s.
        rates: firing rates (spikes/s) of the selected units per stimulus set, (selected, stimuli) float32.
        seconds: wall time of each step.
    """

    units: int
    selected: np.ndarray
    rf_maps: np.ndarray
    affine: tuple[float, float]
    rates: dict[str, np.ndarray]
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def baseline(self) -> np.ndarray:
        """Blank firing rate of each selected unit."""
        return self.rates[BLANK][:, 0]

    def layouts(self) -> dict[str, np.ndarray]:
        """Firing rates reshaped by the sets' sorted parameter levels, as the benchmarks reshape them: orientation
        (units, cycles, frequencies, orientations, phases); spatial frequency and size (units, radii, frequencies,
        orientations, phases)."""
        n = len(self.selected)
        grid = ("radius", "spatial_frequency", "orientation", "phase")
        return {
            ORIENTATION: self.rates[ORIENTATION].reshape(n, -1, *_sizes(ORIENTATION, grid[1:])),
            SPATIAL_FREQUENCY: self.rates[SPATIAL_FREQUENCY].reshape(n, *_sizes(SPATIAL_FREQUENCY, grid)),
            SIZE: self.rates[SIZE].reshape(n, *_sizes(SIZE, grid)),
        }

    def unit_tables(self) -> dict[str, properties.Table]:
        """Per reference assembly, every selected unit's properties, which units respond and their tuning curves."""
        layouts, baseline = self.layouts(), self.baseline
        orientation = levels(ORIENTATION, "orientation")
        frequencies = levels(SPATIAL_FREQUENCY, "spatial_frequency")
        return {
            "Ringach2002": properties.ringach2002(layouts[ORIENTATION], baseline, orientation),
            "DeValois1982a": properties.devalois1982a(layouts[ORIENTATION], baseline, orientation),
            "DeValois1982b": properties.devalois1982b(layouts[SPATIAL_FREQUENCY], baseline, frequencies),
            "Schiller1976c": properties.schiller1976(layouts[SPATIAL_FREQUENCY], baseline, frequencies),
            "Cavanaugh2002a": properties.cavanaugh2002(layouts[SIZE], baseline, levels(SIZE, "radius")),
        }

    def tables(self) -> dict[str, dict[str, np.ndarray]]:
        """Per reference assembly, the properties of its responsive units (Brain-Score's property assemblies)."""
        return {name: properties.select(table.values, table.responsive) for name, table in self.unit_tables().items()}


@torch.no_grad()
def _activations(
    network: nn.Module, images: torch.Tensor, batch_size: int, mean: Channels, std: Channels, progress: tqdm | None
) -> Iterator[tuple[int, torch.Tensor]]:
    """(first row, flattened layer activations) of each batch of uint8 grey images, preprocessed as Brain-Score's
    ``load_preprocess_images`` does (``ToTensor``: /255; ``Normalize``; three equal channels). A short batch is
    padded with copies of its last image, as Brain-Score's activations extractor pads it: every image then goes
    through the same kernels as there (convolution results can differ in the last bit with the batch size)."""
    device = next(network.parameters()).device
    mean_, std_ = (torch.tensor(value, device=device).view(1, 3, 1, 1) for value in (mean, std))
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size]
        count = len(batch)
        if count < batch_size:
            batch = torch.cat((batch, batch[-1:].expand(batch_size - count, -1, -1)))
        batch = batch.to(device).float().div(255)[:, None].expand(-1, 3, -1, -1).sub(mean_).div(std_)
        yield start, network(batch)[:count].flatten(1).float()
        if progress is not None:
            progress.update(count)


def _receptive_field_positions(rf_maps: np.ndarray, positions_y: np.ndarray, positions_x: np.ndarray) -> np.ndarray:
    """(units, 2) centroids (y, x, deg) of (units, ny, nx) maps; NaN for a unit without any response."""
    n, ny, nx = rf_maps.shape
    flat = rf_maps.reshape(n, -1)
    peak = flat.max(axis=1)
    excitatory = flat > (peak.astype(np.float64) * RF_THRESHOLD).astype(np.float32)[:, None]
    weights = np.where(excitatory, flat, np.float32(0)).T  # (positions, units): sums run over positions in order
    rows, cols = np.divmod(np.arange(ny * nx), nx)
    total = weights.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        centroid_y = (rows[:, None] * weights).sum(axis=0) / total
        centroid_x = (cols[:, None] * weights).sum(axis=0) / total
    position = np.stack(
        (np.interp(centroid_y, np.arange(ny), positions_y), np.interp(centroid_x, np.arange(nx), positions_x)), axis=1
    )
    position[~(peak > 0)] = np.nan
    return position


def record(
    network: nn.Module,
    image_size: int,
    visual_degrees: float,
    batch_size: int = 64,
    mean: Channels = (NORMALISATION,) * 3,
    std: Channels = (NORMALISATION,) * 3,
    progress: bool = True,
    cache_dir: str | None = None,
) -> Recording:
    """Run the experiments on ``network`` (images to the recorded layer's activations, in eval mode, on its device),
    its inputs normalised per channel with ``mean`` and ``std`` as in training."""
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    stimuli = probe_stimuli(image_size, visual_degrees, cache_dir)
    seconds["stimuli"] = time.perf_counter() - started
    total = sum(len(stimuli[name]) for name in (BLANK, RECEPTIVE_FIELD, ORIENTATION, SPATIAL_FREQUENCY, SIZE))
    bar = tqdm(total=total, desc="v1 probe", unit="img", disable=not progress, dynamic_ncols=True)
    with bar:
        started = time.perf_counter()
        positions_y, positions_x = levels(RECEPTIVE_FIELD, "position_y"), levels(RECEPTIVE_FIELD, "position_x")
        per_position = len(stimuli[RECEPTIVE_FIELD]) // (len(positions_y) * len(positions_x))
        # the blank, padded to a whole batch as Brain-Score pads it; it also gives the layer's size
        ((_, blank),) = list(_activations(network, stimuli[BLANK], batch_size, mean, std, bar))
        units = blank.shape[1]
        blank = blank[0].clamp(min=0)
        # whole receptive field positions per batch, at most ACTIVATION_BUDGET values (large layers: smaller batches)
        step = max(min(batch_size, ACTIVATION_BUDGET // units) // per_position, 1) * per_position
        best = torch.empty((len(positions_y) * len(positions_x), units), dtype=torch.float32)
        for start, out in _activations(network, stimuli[RECEPTIVE_FIELD], step, mean, std, bar):
            peak = out.clamp_(min=0).view(-1, per_position, units).amax(dim=1)
            best[start // per_position : start // per_position + len(peak)] = peak.cpu()
        rf_maps = best.sub_(blank.cpu()).clamp_(min=0).numpy()  # (positions, units), in place
        selected = []
        for first in range(0, units, UNIT_CHUNK):
            chunk = rf_maps[:, first : first + UNIT_CHUNK].T.reshape(-1, len(positions_y), len(positions_x))
            distance = np.linalg.norm(
                _receptive_field_positions(chunk, positions_y, positions_x) - STIMULUS_POSITION, axis=1
            )
            selected.append(first + np.flatnonzero(distance <= RF_DELTA))
        selected = np.concatenate(selected)
        maps = rf_maps[:, selected].T.reshape(-1, len(positions_y), len(positions_x)).copy()
        del best, rf_maps
        seconds["receptive_fields"] = time.perf_counter() - started

        started = time.perf_counter()
        index = torch.from_numpy(selected).to(blank.device)
        activations = {BLANK: blank[index].cpu().numpy()[:, None]}
        for name in (ORIENTATION, SPATIAL_FREQUENCY, SIZE):
            kept = np.empty((len(selected), len(stimuli[name])), dtype=np.float32)
            for start, out in _activations(network, stimuli[name], step, mean, std, bar):
                kept[:, start : start + len(out)] = out[:, index].clamp(min=0).T.cpu().numpy()
            activations[name] = kept
        seconds["responses"] = time.perf_counter() - started
    affine = firing_rate_affine(activations[ORIENTATION], activations[BLANK])
    rates = {name: np.maximum(affine[0] * values + affine[1], 0) for name, values in activations.items()}
    return Recording(units, selected, maps, affine, rates, seconds)


def firing_rate_affine(orientation: np.ndarray, blank: np.ndarray) -> tuple[float, float]:
    """``firing_rates_affine``: (slope, offset) mapping rectified activations to spikes/s, from the orientation set
    responses (units, stimuli) and the blank responses (units, 1) of the selected units."""
    levels = _sizes(ORIENTATION, ("spatial_frequency", "orientation", "phase"))
    peak = orientation.reshape(len(orientation), -1, *levels).mean(axis=4).reshape(len(orientation), -1).max(axis=1)
    above = peak - blank[:, 0]
    responsive = above > (RESPONSE_THRESHOLD / SINGLE_MAX_RESPONSE) * np.max(above)
    median_baseline = np.median(blank[responsive])
    median_peak = np.median(peak[responsive])
    slope = (MEDIAN_MAX_RESPONSE - MEDIAN_SPONTANEOUS) / (median_peak - median_baseline)
    return float(slope), float(MEDIAN_SPONTANEOUS - slope * median_baseline)
