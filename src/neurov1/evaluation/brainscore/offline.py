"""Offline Brain-Score V1 property benchmarks: seven Marques2020 benchmarks without network access.

Brain-Score's Marques2020 benchmarks (Marques, Schrimpf & DiCarlo 2021, "Multi-scale hierarchical neural network
models that bridge from single neurons in the primate primary visual cortex to object recognition behavior") compare
a model's distribution of a single-neuron property with a published histogram. Their data (grating stimulus sets and
property assemblies) download from Brain-Score's S3 bucket. Everything they need for seven of them is published
inside the installed package, so this module rebuilds it locally and registers it in Brain-Score's own registries;
``brainscore_vision.load_benchmark(id)`` then returns the standard benchmark (``PropertiesBenchmark`` with the
``ks_similarity`` metric and ``NeuronalPropertyCeiling``), unchanged.

Reproduced:

- Stimulus sets ``Marques2020_blank`` (1 image), ``_receptive_field`` (3528), ``_orientation`` (1152),
  ``_spatial_frequency`` (2112) and ``_size`` (2304): drawn by the package's own ``Grating``/``Stimulus`` classes
  from its published parameters (``data/marques2020/data_packaging/marques_gen_stim.py``: 672 px for 12 deg, grey
  background, full-contrast sine gratings in a hard circular aperture 0.5 deg off centre). See
  :mod:`neurov1.evaluation.brainscore.stimulus_sets` for row order, metadata and the on-disk cache. Rendered
  lazily: only when a benchmark records from a model (its ``__call__``), never when it is built or its ceiling is
  computed.
- Property assemblies ``DeValois1982a``, ``DeValois1982b``, ``Schiller1976c`` and ``Cavanaugh2002a``: built by
  calling ``collect_data()`` of the package's packaging scripts (``data/marques2020/data_packaging/
  marques_devalois1982a.py``, ``marques_devalois1982b.py``, ``marques_schiller1976c.py``,
  ``marques_cavanaugh2002a.py``), which hold the histograms digitised from the papers and draw each neuron's value
  uniformly inside its histogram bin (``marques_utils.gen_sample``, global numpy RNG). We seed that RNG (``seed``,
  default 0) and restore its state afterwards. The stored S3 assemblies were sampled the same way from an unknown
  RNG state, so individual values differ, but every bin count is identical and the neurons come in the same bin
  order; the metric and the ceiling only ever look at binned histograms, so they see the same data. Sources:

  - De Valois, Yund & Hepler 1982, Vision Res 22:531-544 (preferred orientation, n=385);
  - De Valois, Albrecht & Thorell 1982, Vision Res 22:545-559 (peak spatial frequency, n=363: simple/complex x
    foveal/parafoveal histograms summed);
  - Schiller, Finlay & Volman 1976, J Neurophysiol 39:1334-1351 (spatial frequency selective 14/73 of 87,
    bandwidth of the 73 selective cells; the other 14 are NaN);
  - Cavanaugh, Bair & Movshon 2002, J Neurophysiol 88:2530-2546 (n=190: surround suppression index, strongly
    suppressed; grating summation field, surround diameter and their ratio for the 148 suppressed cells, NaN
    otherwise).

Not reproduced: the Ringach2002 and FreemanZiemba2013 property benchmarks (their data exist only on S3, and the
texture stimuli are not public).

Usage::

    benchmark = offline_benchmark("Marques2020_DeValois1982-pref_or", cache_dir)
    score = benchmark(model)  # a BrainModel, e.g. ModelCommitment; renders what the benchmark needs, once

Brain-Score notes for callers:

- Every property benchmark records from the model on ``Marques2020_blank`` and ``Marques2020_receptive_field``
  (receptive field mapping) and ``Marques2020_orientation`` (the affine map to firing rates), plus the set of its
  assembly (:func:`stimulus_sets_for`). Each is loaded with ``brainscore_vision.load_stimulus_set`` by name and
  resized to the model's ``visual_degrees`` by ``benchmark_helpers.screen.place_on_screen`` (12 deg images cropped
  to e.g. 8 deg), whose output is written to ``$BRAINSCORE_HOME/stimuli_on_screen/`` and cached by stimulus set
  identifier in ``$RESULTCACHING_HOME``.
- Activations, receptive fields, firing rates and properties are cached by model identifier and stimulus set
  identifier. The local sets keep Brain-Score's names, so their cache entries are shared with S3-loaded sets of the
  same name (they should contain the same images) and a changed model under an unchanged identifier returns old
  results.
- The ceiling and the score bootstrap with the global numpy RNG: seed it for reproducible numbers.
"""

from __future__ import annotations

import os

os.environ.setdefault("BS_INSTALL_DEPENDENCIES", "no")  # before brainscore_vision is imported: no pip installs

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import xarray as xr

from neurov1.evaluation.brainscore.stimulus_sets import (
    BLANK,
    ORIENTATION,
    RECEPTIVE_FIELD,
    SIZE,
    SPATIAL_FREQUENCY,
    STIMULUS_SETS,
    generate_marques_stimuli,
    lazy_stimulus_set,
    packaging_module,
    stimulus_metadata,
)

__all__ = [
    "ASSEMBLY_STIMULUS_SETS",
    "BENCHMARK_ASSEMBLIES",
    "OFFLINE_BENCHMARKS",
    "STIMULUS_SETS",
    "generate_marques_stimuli",
    "offline_benchmark",
    "reference_assembly",
    "register_offline_data",
    "stimulus_metadata",
    "stimulus_sets_for",
]

# benchmark id -> data_registry key of the property assembly it loads (benchmarks/marques2020/benchmarks/*.py)
BENCHMARK_ASSEMBLIES: dict[str, str] = {
    "Marques2020_DeValois1982-pref_or": "DeValois1982a",
    "Marques2020_DeValois1982-peak_sf": "DeValois1982b",
    "Marques2020_Schiller1976-sf_selective": "Schiller1976c",
    "Marques2020_Schiller1976-sf_bandwidth": "Schiller1976c",
    "Marques2020_Cavanaugh2002-surround_suppression_index": "Cavanaugh2002a",
    "Marques2020_Cavanaugh2002-grating_summation_field": "Cavanaugh2002a",
    "Marques2020_Cavanaugh2002-surround_diameter": "Cavanaugh2002a",
}
OFFLINE_BENCHMARKS: tuple[str, ...] = tuple(BENCHMARK_ASSEMBLIES)

# assembly -> the stimulus set it references (data/marques2020/__init__.py, `stimulus_set_loader`)
ASSEMBLY_STIMULUS_SETS: dict[str, str] = {
    "DeValois1982a": ORIENTATION,
    "DeValois1982b": SPATIAL_FREQUENCY,
    "Schiller1976c": SPATIAL_FREQUENCY,
    "Cavanaugh2002a": SIZE,
}

# recorded by every property benchmark (benchmark_helpers/properties_common.py): blank and receptive field set for
# map_receptive_field_locations, blank and orientation set for firing_rates_affine
_COMMON_STIMULUS_SETS = (BLANK, RECEPTIVE_FIELD, ORIENTATION)


def _check_benchmark(benchmark_id: str) -> None:
    if benchmark_id not in BENCHMARK_ASSEMBLIES:
        raise ValueError(f"{benchmark_id!r} has no offline data; supported benchmarks: {', '.join(OFFLINE_BENCHMARKS)}")


def stimulus_sets_for(benchmark_id: str) -> tuple[str, ...]:
    """The stimulus sets a benchmark records the model on (rendered on its first call)."""
    _check_benchmark(benchmark_id)
    own = ASSEMBLY_STIMULUS_SETS[BENCHMARK_ASSEMBLIES[benchmark_id]]
    return tuple(dict.fromkeys((*_COMMON_STIMULUS_SETS, own)))


def reference_assembly(
    name: str,
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    seed: int = 0,
    workers: int | None = 2,
    progress: bool = True,
):
    """The property assembly ``name`` (a ``PropertyAssembly``) rebuilt from the published histograms.

    Same dims (``neuroid`` x ``neuronal_property``), coords (``neuroid_id``, ``region``), attrs
    (``number_of_trials``, ``<property>_bins``, ``identifier``, ``stimulus_set_identifier``) and values per bin as
    the one Brain-Score loads from S3. ``attrs['stimulus_set']`` carries the full metadata of the referenced
    stimulus set at once and renders its images into ``cache_dir`` only when a path is first requested (without a
    ``cache_dir`` paths are unavailable).

    :param seed: seeds the global numpy RNG for the within-bin sampling; its previous state is restored.
    """
    from brainscore_core.supported_data_standards.brainio.assemblies import PropertyAssembly

    if name not in ASSEMBLY_STIMULUS_SETS:
        raise ValueError(f"unknown assembly {name!r}; expected one of {', '.join(ASSEMBLY_STIMULUS_SETS)}")
    script = packaging_module(f"marques_{name.lower()}")
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        data = script.collect_data()
    finally:
        np.random.set_state(state)
    assembly = PropertyAssembly(xr.DataArray(data), name=script.ASSEMBLY_NAME)
    stimulus_set_name = ASSEMBLY_STIMULUS_SETS[name]
    assembly.attrs["identifier"] = script.ASSEMBLY_NAME  # e.g. "devalois.DeValois1982a", as load_assembly_from_s3
    assembly.attrs["stimulus_set_identifier"] = stimulus_set_name
    assembly.attrs["stimulus_set"] = lazy_stimulus_set(stimulus_set_name, cache_dir, workers, progress)
    return assembly


# Brain-Score's own loaders (its ``data.marques2020`` plugin: S3 download or its cache), kept when replaced below
_PACKAGE_LOADERS: dict[str, Callable[[], Any]] = {}


def brainscore_assembly(name: str):
    """The property assembly ``name`` from Brain-Score's own data (its cache, or a download), even after
    :func:`register_offline_data` pointed the registry at the rebuilt one."""
    import brainscore_vision
    import brainscore_vision.data.marques2020  # noqa: F401  (registers the S3 loaders)

    return _PACKAGE_LOADERS.get(name, brainscore_vision.data_registry[name])()


def register_offline_data(
    cache_dir: str | os.PathLike[str], progress: bool = True, *, workers: int | None = 2, seed: int = 0
) -> None:
    """Point Brain-Score's registries for the five stimulus sets and four assemblies at the local versions.

    Lazy and idempotent: nothing is built here; a stimulus set is rendered (once, into ``cache_dir``) when Brain-Score
    loads it by name, i.e. when a benchmark records from a model. Brain-Score's own ``data.marques2020`` plugin is
    imported first, so that a later plugin import does not overwrite these entries.
    """
    import brainscore_vision
    import brainscore_vision.data.marques2020  # noqa: F401  (registers the S3 loaders that are replaced below)

    for name in STIMULUS_SETS:
        brainscore_vision.stimulus_set_registry[name] = partial(
            generate_marques_stimuli, name, cache_dir, workers=workers, progress=progress
        )
    for name in ASSEMBLY_STIMULUS_SETS:
        _PACKAGE_LOADERS.setdefault(name, brainscore_vision.data_registry[name])
        brainscore_vision.data_registry[name] = partial(
            reference_assembly, name, cache_dir, seed=seed, workers=workers, progress=progress
        )


def offline_benchmark(
    benchmark_id: str, cache_dir: str | os.PathLike[str], progress: bool = True, *, workers: int | None = 2
):
    """Brain-Score's own benchmark ``benchmark_id`` (one of :data:`OFFLINE_BENCHMARKS`) on the local data.

    Raises ``ValueError`` for any other id.
    """
    _check_benchmark(benchmark_id)
    register_offline_data(cache_dir, progress=progress, workers=workers)
    import brainscore_vision

    return brainscore_vision.load_benchmark(benchmark_id)
