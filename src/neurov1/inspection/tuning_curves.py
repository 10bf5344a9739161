"""Tuning curves of sampled V1 units, next to the property values the probe computes from them.

``neurov1.analyze analysis=[tuning_curves]`` records the V1 layer with the probe
(:mod:`neurov1.evaluation.probe.electrophysiology`) and draws, for a sample of the units whose receptive field lies
on the stimuli and that every property benchmark counts as responsive, one row of four panels: the receptive field
map (its 21 x 21 positions, deg), the orientation tuning curve (the Ringach2002 curve: mean over phases at the
preferred cycle and spatial frequency), the spatial frequency curve (Schiller1976's: at the preferred radius and
orientation) and the size curve (Cavanaugh2002's: at the preferred frequency, orientation and response component),
each titled with the property values computed from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from neurov1.evaluation.brainscore.stimulus_sets import ORIENTATION, RECEPTIVE_FIELD, SIZE, SPATIAL_FREQUENCY
from neurov1.evaluation.probe.electrophysiology import levels, record
from neurov1.models.activations import LayerOutput
from neurov1.models.contract import ScoringContract
from neurov1.utils.plots import plt, write_png

CURVES = {  # each curve drawn, from the assembly whose property functions computed it (and its values)
    "orientation": "Ringach2002",
    "spatial_frequency": "Schiller1976c",
    "size": "Cavanaugh2002a",
}
SHOWN = {  # reference assembly -> the properties written in the panel titles
    "Ringach2002": ("circular_variance", "bandwidth", "modulation_ratio"),
    "DeValois1982a": ("preferred_orientation",),
    "DeValois1982b": ("peak_spatial_frequency",),
    "Schiller1976c": ("spatial_frequency_bandwidth",),
    "Cavanaugh2002a": ("surround_suppression_index", "grating_summation_field", "surround_diameter"),
}


def analyze_tuning_curves(
    net: nn.Module, layer: str, out_dir: Path, scoring: ScoringContract, units: int = 8, seed: int = 0
) -> dict[str, Any]:
    """Record ``layer`` as the scoring contract commits the model, sample ``units`` responsive units (``seed``),
    write ``tuning_curves.png``; their values."""
    recording = record(
        LayerOutput(net, layer),
        scoring.image_size,
        scoring.visual_degrees,
        mean=scoring.channel_mean(),
        std=scoring.channel_std(),
        progress=False,
    )
    tables = recording.unit_tables()
    responsive = np.logical_and.reduce([table.responsive for table in tables.values()])
    candidates = np.flatnonzero(responsive)
    sample = np.sort(np.random.default_rng(seed).choice(candidates, min(units, len(candidates)), replace=False))
    values = {name: {prop: tables[name].values[prop][sample] for prop in shown} for name, shown in SHOWN.items()}
    curves = {name: tables[assembly].curves[sample] for name, assembly in CURVES.items()}
    figure, axes = plt.subplots(max(len(sample), 1), 4, figsize=(13, 2.4 * max(len(sample), 1)), squeeze=False)
    position_y, position_x = levels(RECEPTIVE_FIELD, "position_y"), levels(RECEPTIVE_FIELD, "position_x")
    for row, unit in enumerate(sample):
        index = recording.selected[unit]
        field, orientation, frequency, size = axes[row]
        extent = (position_x[0], position_x[-1], position_y[-1], position_y[0])
        field.imshow(recording.rf_maps[unit], cmap="magma", extent=extent)
        field.set_title(f"{layer} unit {index}: RF map (deg)", fontsize=8)
        orientation.plot(levels(ORIENTATION, "orientation"), curves["orientation"][row], marker="o")
        orientation.set_title(
            f"CV {values['Ringach2002']['circular_variance'][row]:.2f}, half-BW "
            f"{values['Ringach2002']['bandwidth'][row]:.0f} deg, pref "
            f"{values['DeValois1982a']['preferred_orientation'][row]:.0f} deg",
            fontsize=8,
        )
        orientation.set_xlabel("orientation (deg)", fontsize=8)
        frequency.semilogx(levels(SPATIAL_FREQUENCY, "spatial_frequency"), curves["spatial_frequency"][row], marker="o")
        frequency.set_title(
            f"peak {values['DeValois1982b']['peak_spatial_frequency'][row]:.2f} c/deg, BW "
            f"{values['Schiller1976c']['spatial_frequency_bandwidth'][row]:.0f}",
            fontsize=8,
        )
        frequency.set_xlabel("spatial frequency (c/deg)", fontsize=8)
        size.semilogx(2 * levels(SIZE, "radius"), curves["size"][row], marker="o")
        cavanaugh = values["Cavanaugh2002a"]
        size.set_title(
            f"SSI {cavanaugh['surround_suppression_index'][row]:.2f}, GSF "
            f"{cavanaugh['grating_summation_field'][row]:.2f}, surround {cavanaugh['surround_diameter'][row]:.2f} deg",
            fontsize=8,
        )
        size.set_xlabel("diameter (deg)", fontsize=8)
        for axis in (orientation, frequency, size):
            axis.set_ylabel("spikes/s", fontsize=8)
            axis.tick_params(labelsize=7)
    if not len(sample):
        axes[0, 0].set_title("no unit responds to every grating set", fontsize=9)
    path = write_png(figure, out_dir / "tuning_curves.png")
    return {
        "layer": layer,
        "units_recorded": len(recording.selected),
        "units_responsive": int(responsive.sum()),
        "units": recording.selected[sample].tolist(),
        "values": {
            name: {prop: [None if not np.isfinite(v) else float(v) for v in vals] for prop, vals in props.items()}
            for name, props in values.items()
        },
        "curves": {name: curve.tolist() for name, curve in curves.items()},
        "files": [path.name],
    }
