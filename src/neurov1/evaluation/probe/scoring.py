"""Scores of the probe's property distributions: Brain-Score's own metric, ceiling and reference data.

Each of the 15 grating-based benchmarks compares one property's distribution over the model's responsive units
with the macaque distribution of a reference assembly, with Brain-Score's ``ks_similarity`` metric (1000 bootstrap
samples of the reference's size, histograms on the reference's bins; numpy's global RNG, seeded as ``eval=v1``
seeds it before each benchmark) and ``NeuronalPropertyCeiling`` (the same metric between the data and itself).
Given the same per-unit values and seed, the numbers are Brain-Score's to the last digit.

Reference assemblies: Brain-Score's data (its cache, or a download) for all five; where it cannot be loaded, the
four that :mod:`neurov1.evaluation.brainscore.offline` rebuilds from the published histograms (all but Ringach2002).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from neurov1.evaluation.brainscore.offline import BENCHMARK_ASSEMBLIES, brainscore_assembly, reference_assembly
from neurov1.evaluation.brainscore.scoring import recorded_downloads, score_entry

log = logging.getLogger(__name__)

# benchmark id -> (reference assembly, property): benchmarks/marques2020/benchmarks/*.py
PROBE_BENCHMARKS: dict[str, tuple[str, str]] = {
    **{
        f"Marques2020_Ringach2002-{suffix}": ("Ringach2002", name)
        for suffix, name in (
            ("circular_variance", "circular_variance"),
            ("or_bandwidth", "bandwidth"),
            ("orth_pref_ratio", "orthogonal_preferred_ratio"),
            ("or_selective", "orientation_selective"),
            ("cv_bandwidth_ratio", "circular_variance_bandwidth_ratio"),
            ("opr_cv_diff", "orthogonal_preferred_ratio_circular_variance_difference"),
            ("max_dc", "max_dc"),
            ("modulation_ratio", "modulation_ratio"),
        )
    },
    "Marques2020_DeValois1982-pref_or": ("DeValois1982a", "preferred_orientation"),
    "Marques2020_DeValois1982-peak_sf": ("DeValois1982b", "peak_spatial_frequency"),
    "Marques2020_Schiller1976-sf_selective": ("Schiller1976c", "spatial_frequency_selective"),
    "Marques2020_Schiller1976-sf_bandwidth": ("Schiller1976c", "spatial_frequency_bandwidth"),
    "Marques2020_Cavanaugh2002-surround_suppression_index": ("Cavanaugh2002a", "surround_suppression_index"),
    "Marques2020_Cavanaugh2002-grating_summation_field": ("Cavanaugh2002a", "grating_summation_field"),
    "Marques2020_Cavanaugh2002-surround_diameter": ("Cavanaugh2002a", "surround_diameter"),
}
OFFLINE_ASSEMBLIES = frozenset(BENCHMARK_ASSEMBLIES.values())


_LOADED: dict[tuple[str, str], tuple[Any, str | None, str | None]] = {}


def _load_reference(name: str, source: str) -> tuple[Any, str | None, str | None]:
    reason = None
    if source != "offline":
        with recorded_downloads() as failed:
            try:
                return brainscore_assembly(name), "brainscore", None
            except Exception as error:  # noqa: BLE001 - no network: fall back or report
                where = "; ".join(remote for remote, _ in failed) or f"{type(error).__name__}: {error}"[:200]
                reason = f"Brain-Score data could not be loaded ({where})"
    if source != "brainscore" and name in OFFLINE_ASSEMBLIES:
        return reference_assembly(name), "offline", None
    missing = "not published inside the package (needs Brain-Score's data: network or its cache)"
    return None, None, reason or f"{name} reference data {missing}"


def load_references(names: set[str], source: str) -> dict[str, tuple[Any, str | None, str | None]]:
    """``name -> (assembly, source, reason)``: Brain-Score's data unless ``source`` is ``offline``, the rebuilt
    assembly where that fails (``auto``) or is asked for (``offline``); ``(None, None, reason)`` where neither.

    An assembly once loaded (with ``auto``, also the offline fallback) is kept for the process, so the probe of
    every epoch reuses it (the metric only clips its values into the bins: nothing changes the second time)."""
    references = {}
    for name in sorted(names):
        if (name, source) not in _LOADED:
            loaded = _load_reference(name, source)
            if loaded[0] is None:
                references[name] = loaded
                continue
            _LOADED[name, source] = loaded
        references[name] = _LOADED[name, source]
    return references


def property_assembly(values: np.ndarray, name: str):
    """Per-unit values as the ``neuroid x neuronal_property`` assembly Brain-Score's metric reads."""
    from brainscore_core.supported_data_standards.brainio.assemblies import DataAssembly

    count = len(values)
    coords = {"neuroid_id": ("neuroid", np.arange(count)), "region": ("neuroid", ["V1"] * count)}
    return DataAssembly(
        np.asarray(values, dtype=float)[:, None],
        coords={**coords, "neuronal_property": [name]},
        dims=["neuroid", "neuronal_property"],
    )


def score_property(benchmark_id: str, values: np.ndarray, reference: Any, seed: int) -> dict[str, Any]:
    """Ceiled, raw and ceiling score of one benchmark, in Brain-Score's order of random draws."""
    from brainscore_vision import load_metric
    from brainscore_vision.benchmarks import ceil_score
    from brainscore_vision.metrics.distribution_similarity import NeuronalPropertyCeiling

    _, name = PROBE_BENCHMARKS[benchmark_id]
    metric = load_metric("ks_similarity", property_name=name)
    np.random.seed(seed)
    raw = metric(property_assembly(values, name), reference)
    ceiling = NeuronalPropertyCeiling(metric)(reference)
    return score_entry(benchmark_id, ceil_score(raw, ceiling))


def distribution_summary(values: np.ndarray, property_name: str, reference: Any | None) -> dict[str, Any]:
    """Units, NaN count and quartiles of one property over the responsive units; with a reference, its bins and the
    model's and the reference's histograms on them (values clipped into the bins, as the metric does)."""
    finite = values[np.isfinite(values)]
    quartiles = np.percentile(finite, [25, 50, 75]).tolist() if len(finite) else [None] * 3
    summary = {"units": len(values), "nan": int(len(values) - len(finite))}
    summary.update(zip(("q25", "median", "q75"), quartiles, strict=True))
    if reference is not None:
        bins = np.asarray(reference.attrs[f"{property_name}_bins"], dtype=float)
        data = np.asarray(reference.loc[:, property_name].values, dtype=float)
        for key, sample in (("model", values), ("reference", data)):
            counts = np.histogram(np.clip(sample, bins[0], bins[-1]), bins=bins)[0]
            summary[f"{key}_histogram"] = (counts / max(counts.sum(), 1)).tolist()
        summary["bins"] = bins.tolist()
    return summary
