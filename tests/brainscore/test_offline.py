"""Offline Marques2020 V1 property benchmarks: ceilings, reference histograms, stimulus generation and caching.

The default tests render at most a few dozen images. The ``slow`` test renders all five stimulus sets (9,097 images)
and scores a tiny torch model end to end, in a subprocess with its own Brain-Score caches.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from neurov1.evaluation.brainscore import offline
from neurov1.evaluation.brainscore import stimulus_sets as stimuli

# Brain-Score's expected ceilings (brainscore_vision/benchmarks/marques2020/test.py::test_ceilings)
EXPECTED_CEILINGS = {
    "Marques2020_DeValois1982-pref_or": 0.962,
    "Marques2020_DeValois1982-peak_sf": 0.967,
    "Marques2020_Schiller1976-sf_selective": 0.963,
    "Marques2020_Schiller1976-sf_bandwidth": 0.933,
    "Marques2020_Cavanaugh2002-surround_suppression_index": 0.958,
    "Marques2020_Cavanaugh2002-grating_summation_field": 0.956,
    "Marques2020_Cavanaugh2002-surround_diameter": 0.955,
}

# Published histograms (the papers, as digitised in brainscore_vision/data/marques2020/data_packaging/*.py):
# (assembly, property, counts, bin edges, number of NaN neurons)
RF_BINS = [0.0625, 0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0]
PUBLISHED_HISTOGRAMS = [
    # De Valois, Yund & Hepler 1982
    ("DeValois1982a", "preferred_orientation", [110, 83, 100, 92], np.linspace(-22.5, 157.5, 5), 0),
    # De Valois, Albrecht & Thorell 1982: simple/complex x foveal/parafoveal, summed
    (
        "DeValois1982b",
        "peak_spatial_frequency",
        np.array([0, 4, 4, 8, 25, 33, 26, 28, 12, 5, 2, 1])
        + np.array([0, 0, 0, 9, 9, 7, 10, 23, 12, 8, 3, 3])
        + np.array([2, 4, 10, 12, 18, 7, 18, 3, 4, 0, 0, 0])
        + np.array([1, 2, 1, 2, 5, 15, 13, 9, 3, 2, 0, 0]),
        [0.35, 0.5, 0.7, 1.0, 1.4, 2.0, 2.8, 4.0, 5.6, 8.0, 11.2, 16.0, 22.4],
        0,
    ),
    # Schiller, Finlay & Volman 1976: simple + complex bandwidths of the 73 selective cells
    ("Schiller1976c", "spatial_frequency_selective", [14, 73], np.linspace(0, 1, 3), 0),
    (
        "Schiller1976c",
        "spatial_frequency_bandwidth",
        np.array([0, 0, 0, 6, 5, 10, 7, 2, 0, 0]) + np.array([0, 3, 4, 10, 17, 6, 2, 1, 0, 0]),
        np.linspace(0, 100, 11),
        14,
    ),
    # Cavanaugh, Bair & Movshon 2002 (n=190; field sizes for the 148 suppressed cells)
    ("Cavanaugh2002a", "surround_suppression_index", [66, 44, 38, 23, 16, 3, 0, 0, 0, 0], np.linspace(0, 2, 11), 0),
    ("Cavanaugh2002a", "strongly_suppressed", [42, 148], np.linspace(0, 1, 3), 0),
    ("Cavanaugh2002a", "grating_summation_field", [0, 9, 30, 55, 42, 10, 2, 0], RF_BINS, 42),
    ("Cavanaugh2002a", "surround_diameter", [0, 0, 2, 20, 33, 49, 40, 4], RF_BINS, 42),
    ("Cavanaugh2002a", "surround_grating_summation_field_ratio", [69, 38, 31, 10, 0], [1, 2, 4, 8, 16, 32], 42),
]
NUM_NEUROIDS = {"DeValois1982a": 385, "DeValois1982b": 363, "Schiller1976c": 87, "Cavanaugh2002a": 190}

PUBLISHED_SET_SIZES = {
    "Marques2020_blank": 1,
    "Marques2020_receptive_field": 3528,
    "Marques2020_orientation": 1152,
    "Marques2020_spatial_frequency": 2112,
    "Marques2020_size": 2304,
}
GRATING_SETS = [name for name in PUBLISHED_SET_SIZES if name != "Marques2020_blank"]
CANONICAL = list(stimuli.PARAMETER_COLUMNS)  # position_y, position_x, contrast, radius, sf, orientation, phase


@pytest.fixture(autouse=True)
def brainscore_homes(tmp_path_factory, monkeypatch):
    """Brain-Score's download and result caches in temporary folders (nothing here should write to them)."""
    home = tmp_path_factory.mktemp("brainscore_home")
    for variable in ("BRAINIO_HOME", "BRAINSCORE_HOME", "RESULTCACHING_HOME"):
        monkeypatch.setenv(variable, str(home / variable.lower()))
    monkeypatch.setenv("BS_INSTALL_DEPENDENCIES", "no")


@pytest.fixture(autouse=True)
def restore_registries():
    """Undo register_offline_data after each test, so other tests see Brain-Score's own (S3) loaders."""
    import brainscore_vision
    import brainscore_vision.data.marques2020  # noqa: F401  (its S3 loaders are part of the state to restore)

    saved = dict(brainscore_vision.stimulus_set_registry), dict(brainscore_vision.data_registry)
    yield
    for registry, entries in zip(
        (brainscore_vision.stimulus_set_registry, brainscore_vision.data_registry), saved, strict=True
    ):
        registry.clear()
        registry.update(entries)


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file())


def fake_activations(metadata) -> xr.DataArray:
    """Activations-shaped array carrying the stimulus metadata, for Brain-Score's own row-order assertion."""
    coords = {column: ("presentation", metadata[column].to_numpy()) for column in CANONICAL}
    return xr.DataArray(np.zeros((1, len(metadata))), dims=("neuroid", "presentation"), coords=coords)


# --- benchmarks and ceilings -------------------------------------------------------------------------------------


def test_offline_benchmark_ids():
    assert set(offline.OFFLINE_BENCHMARKS) == set(EXPECTED_CEILINGS)
    assert len(offline.OFFLINE_BENCHMARKS) == 7


@pytest.mark.parametrize("benchmark_id", list(EXPECTED_CEILINGS))
def test_ceiling_matches_brainscore(benchmark_id, tmp_path):
    from brainscore_vision.benchmark_helpers.properties_common import PropertiesBenchmark

    benchmark = offline.offline_benchmark(benchmark_id, tmp_path, progress=False)
    assert isinstance(benchmark, PropertiesBenchmark)
    assert benchmark.identifier == benchmark_id
    np.random.seed(0)  # the ceiling is a bootstrap over the global numpy RNG
    ceiling = float(benchmark.ceiling)
    assert ceiling == pytest.approx(EXPECTED_CEILINGS[benchmark_id], abs=0.01)
    assert files_under(tmp_path) == []  # building a benchmark and its ceiling renders nothing


def test_unknown_benchmark_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="Marques2020_DeValois1982-pref_or"):
        offline.offline_benchmark("Marques2020_Ringach2002-or_bandwidth", tmp_path)
    with pytest.raises(ValueError):
        offline.stimulus_sets_for("MajajHong2015public.IT-pls")


def test_stimulus_sets_for_benchmark():
    assert offline.stimulus_sets_for("Marques2020_DeValois1982-pref_or") == (
        "Marques2020_blank",
        "Marques2020_receptive_field",
        "Marques2020_orientation",
    )
    assert offline.stimulus_sets_for("Marques2020_Cavanaugh2002-surround_diameter")[-1] == "Marques2020_size"
    assert offline.stimulus_sets_for("Marques2020_Schiller1976-sf_bandwidth")[-1] == "Marques2020_spatial_frequency"


def test_registration_replaces_s3_loaders_lazily_and_idempotently(tmp_path):
    import brainscore_vision

    offline.register_offline_data(tmp_path, progress=False)
    offline.register_offline_data(tmp_path, progress=False)
    for name in stimuli.STIMULUS_SETS:
        entry = brainscore_vision.stimulus_set_registry[name]
        assert entry.func is stimuli.generate_marques_stimuli and entry.args == (name, tmp_path)
    assembly = brainscore_vision.load_dataset("Cavanaugh2002a")  # a plugin re-import must not undo the override
    assert assembly.attrs["identifier"] == "movshon.Cavanaugh2002a"
    blank = brainscore_vision.load_stimulus_set("Marques2020_blank")  # renders (one image)
    assert blank.identifier == "Marques2020_blank" and Path(blank.get_stimulus(0)).is_file()
    assert [p.name for p in files_under(tmp_path)] == ["0.png", "index.csv"]


# --- reference assemblies ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "prop", "counts", "bins", "n_nan"), PUBLISHED_HISTOGRAMS)
def test_reference_histograms_equal_published_counts(name, prop, counts, bins, n_nan):
    assembly = offline.reference_assembly(name)
    np.testing.assert_allclose(assembly.attrs[f"{prop}_bins"], bins)
    values = assembly.sel(neuronal_property=prop).values
    assert np.isnan(values).sum() == n_nan
    histogram, _ = np.histogram(values[~np.isnan(values)], bins=assembly.attrs[f"{prop}_bins"])
    np.testing.assert_array_equal(histogram, counts)


@pytest.mark.parametrize("name", list(NUM_NEUROIDS))
def test_reference_assembly_layout(name, tmp_path):
    from brainscore_core.supported_data_standards.brainio.assemblies import PropertyAssembly

    state = np.random.get_state()
    assembly = offline.reference_assembly(name, tmp_path)
    assert np.array_equal(np.random.get_state()[1], state[1])  # the global RNG is left as it was
    assert isinstance(assembly, PropertyAssembly)
    assert assembly.dims == ("neuroid", "neuronal_property")
    assert len(assembly["neuroid"]) == NUM_NEUROIDS[name]
    assert set(assembly["region"].values) == {"V1"}
    np.testing.assert_array_equal(assembly["neuroid_id"].values, np.arange(NUM_NEUROIDS[name]))
    assert int(assembly.attrs["number_of_trials"]) == 20
    stimulus_set = assembly.stimulus_set
    assert stimulus_set.identifier == assembly.attrs["stimulus_set_identifier"] == offline.ASSEMBLY_STIMULUS_SETS[name]
    assert len(stimulus_set) == PUBLISHED_SET_SIZES[stimulus_set.identifier]
    assert set(stimulus_set["degrees"]) == {12}
    assert files_under(tmp_path) == []  # metadata only until an image path is asked for
    again = offline.reference_assembly(name, tmp_path)
    np.testing.assert_array_equal(again.values, assembly.values)  # deterministic
    other_seed = offline.reference_assembly(name, seed=1)
    assert not np.array_equal(np.nan_to_num(other_seed.values), np.nan_to_num(assembly.values))


def test_unknown_assembly_is_rejected():
    with pytest.raises(ValueError, match="Ringach2002"):
        offline.reference_assembly("Ringach2002")


# --- stimulus sets -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "size"), list(PUBLISHED_SET_SIZES.items()))
def test_set_sizes_from_parameter_grid(name, size):
    metadata = stimuli.stimulus_metadata(name)
    assert len(metadata) == size
    np.testing.assert_array_equal(metadata["stimulus_id"], np.arange(size))
    assert (metadata["degrees"] == 12).all()
    assert metadata["filename"].is_unique


def test_published_parameter_values():
    # Marques2020: radii in 12 half-octave steps, spatial frequencies in 22 quarter-octave steps,
    # orientations 0:15:165, phases 0:45:315, receptive field positions -2.5:0.25:2.5, stimuli at (0.5, 0.5) deg.
    size = stimuli.stimulus_metadata("Marques2020_size")
    radii = np.unique(size["radius"])
    assert len(radii) == 12 and radii[0] == pytest.approx(0.105, abs=1e-3) and radii[-1] == pytest.approx(4.76, 1e-3)
    np.testing.assert_allclose(np.diff(np.log2(radii)), 0.5)
    sf = np.unique(stimuli.stimulus_metadata("Marques2020_spatial_frequency")["spatial_frequency"])
    assert len(sf) == 22 and sf[0] == pytest.approx(0.386, abs=1e-3) and sf[-1] == pytest.approx(14.67, abs=1e-2)
    np.testing.assert_allclose(np.diff(np.log2(sf)), 0.25)
    orientation = stimuli.stimulus_metadata("Marques2020_orientation")
    np.testing.assert_array_equal(np.unique(orientation["orientation"]), np.arange(0, 166, 15))
    np.testing.assert_array_equal(np.unique(orientation["phase"]), np.arange(0, 316, 45))
    rf = stimuli.stimulus_metadata("Marques2020_receptive_field")
    np.testing.assert_allclose(np.unique(rf["position_x"]), np.linspace(-2.5, 2.5, 21))
    for name in ("Marques2020_orientation", "Marques2020_spatial_frequency", "Marques2020_size"):
        metadata = stimuli.stimulus_metadata(name)
        assert set(metadata["position_x"]) == set(metadata["position_y"]) == {0.5}
        assert set(metadata["contrast"]) == {1.0}


@pytest.mark.parametrize("name", GRATING_SETS)
def test_row_order_is_what_the_benchmarks_expect(name):
    from brainscore_vision.benchmark_helpers.properties_common import _assert_grating_activations

    metadata = stimuli.stimulus_metadata(name)
    _assert_grating_activations(fake_activations(metadata))  # Brain-Score's own check of the row order
    generator = stimuli.packaging_module("marques_gen_stim")
    published = np.asarray(generator.GRAT_PARAMS[name])
    rows = metadata[CANONICAL].to_numpy()
    # the same stimuli as the package's parameter table ...
    assert sorted(map(tuple, rows)) == sorted(map(tuple, published))
    if name == "Marques2020_orientation":
        # ... not a grid (radius = 1, 1.5 or 2 cycles): the table's own order, multiplier > sf > orientation > phase
        np.testing.assert_array_equal(rows, published)
    else:
        # ... a full grid: canonical nested order, position_y slowest, phase fastest
        sort_keys = [metadata[column].to_numpy() for column in reversed(CANONICAL)]
        np.testing.assert_array_equal(np.lexsort(sort_keys), np.arange(len(metadata)))
        assert metadata["phase"].iloc[0] != metadata["phase"].iloc[1]


def test_rendered_subset(tmp_path):
    subset = stimuli.generate_marques_stimuli("Marques2020_size", tmp_path, workers=1, progress=False, limit=16)
    assert subset.identifier == "Marques2020_size"
    assert len(subset) == 16
    np.testing.assert_array_equal(subset[CANONICAL], stimuli.stimulus_metadata("Marques2020_size")[CANONICAL][:16])
    for column in ("stimulus_id", "image_id", "degrees", *CANONICAL, "image_file_name", "filename"):
        assert column in subset.columns
    from PIL import Image

    for stimulus_id, row in subset.set_index("stimulus_id").iterrows():
        path = Path(subset.get_stimulus(stimulus_id))
        assert path.parent == tmp_path / "marques2020" / "Marques2020_size"
        with Image.open(path) as image:
            assert image.size == (672, 672) and image.mode == "L"
            pixels = np.asarray(image)
        # 56 px per degree; the aperture is centred 0.5 deg right of and below the image centre (336 px)
        rows, columns = np.nonzero(pixels != 128)  # grey background is 128 (the grating's zero is 127)
        distance = np.hypot(rows - 364, columns - 364)
        radius_px = row["radius"] * 56
        assert distance.max() <= radius_px + 1
        assert len(distance) >= 0.5 * np.pi * radius_px**2
    blank = stimuli.generate_marques_stimuli("Marques2020_blank", tmp_path, progress=False)
    with Image.open(blank.get_stimulus(0)) as image:
        assert image.size == (448, 448) and set(np.unique(np.asarray(image))) == {128}
    assert list(blank.columns) == ["stimulus_id", "image_id", "degrees", "image_file_name", "filename"]


def test_generation_is_deterministic(tmp_path):
    serial = stimuli.generate_marques_stimuli("Marques2020_receptive_field", tmp_path / "a", workers=1, limit=40)
    parallel = stimuli.generate_marques_stimuli("Marques2020_receptive_field", tmp_path / "b", workers=2, limit=40)
    for stimulus_id in serial["stimulus_id"]:
        first, second = (Path(s.get_stimulus(stimulus_id)).read_bytes() for s in (serial, parallel))
        assert first == second
    index_a, index_b = (tmp_path / d / "marques2020/Marques2020_receptive_field/index.csv" for d in "ab")
    assert index_a.read_bytes() == index_b.read_bytes()
    assert not [p for p in files_under(tmp_path) if p.name.endswith(".tmp")]


def test_interrupted_generation_is_redone_and_finished_one_reused(tmp_path, monkeypatch):
    name = "Marques2020_spatial_frequency"
    first = stimuli.generate_marques_stimuli(name, tmp_path, workers=1, progress=False, limit=6)
    directory = stimuli.stimulus_directory(name, tmp_path)
    index = directory / stimuli.INDEX_FILE
    originals = {p.name: p.read_bytes() for p in directory.glob("*.png")}
    assert len(originals) == 6 and index.is_file()

    # interrupted: the index (written last) is missing and an image was cut short
    index.unlink()
    (directory / "3.png").write_bytes(originals["3.png"][:100])
    stimuli.generate_marques_stimuli(name, tmp_path, workers=1, progress=False, limit=6)
    assert index.is_file()
    assert {p.name: p.read_bytes() for p in directory.glob("*.png")} == originals

    # finished: reused without drawing anything
    def no_rendering(*args, **kwargs):
        raise AssertionError("a finished stimulus set was rendered again")

    monkeypatch.setattr(stimuli, "_render_chunk", no_rendering)
    monkeypatch.setattr(stimuli, "render_stimulus", no_rendering)
    reused = stimuli.generate_marques_stimuli(name, tmp_path, workers=2, progress=False, limit=6)
    assert reused.equals(first) and dict(reused.stimulus_paths) == dict(first.stimulus_paths)

    # a different request (here: more rows) is not served from the old index
    with pytest.raises(AssertionError, match="rendered again"):
        stimuli.generate_marques_stimuli(name, tmp_path, workers=1, progress=False, limit=7)
    assert not index.exists()  # a failed re-render leaves no index behind


def test_lazy_stimulus_paths(tmp_path):
    lazy = stimuli.lazy_stimulus_set("Marques2020_blank", tmp_path, progress=False)
    assert files_under(tmp_path) == [] and len(lazy) == 1
    assert Path(lazy.get_stimulus(0)).is_file()
    without_cache = stimuli.lazy_stimulus_set("Marques2020_blank", None)
    with pytest.raises(RuntimeError, match="cache_dir"):
        without_cache.get_stimulus(0)


def test_unknown_stimulus_set_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="Marques2020_size"):
        stimuli.generate_marques_stimuli("FreemanZiemba2013_properties", tmp_path)


# --- end to end (slow) ---------------------------------------------------------------------------------------------

E2E_BENCHMARK = "Marques2020_DeValois1982-pref_or"


@pytest.mark.slow
def test_end_to_end_tiny_model(tmp_path):
    """Render all five sets, then score a one-layer torch model on pref_or (about 2.5 min on 2 CPU cores)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for variable in ("BRAINIO_HOME", "BRAINSCORE_HOME", "RESULTCACHING_HOME"):
        env[variable] = str(tmp_path / variable.lower())  # decorated caches read these at import: own process
    command = [sys.executable, __file__, "--end-to-end", str(tmp_path / "stimuli")]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=3600)
    assert result.returncode == 0, result.stderr[-5000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    print(json.dumps(report, indent=2))
    assert report["set_sizes"] == PUBLISHED_SET_SIZES
    assert 0 < report["raw"] <= 1 and np.isfinite(report["score"])
    assert report["ceiling"] == pytest.approx(EXPECTED_CEILINGS[E2E_BENCHMARK], abs=0.01)


def _end_to_end(cache_dir: str) -> dict:
    import functools

    import torch
    from brainscore_vision.model_helpers.activations.pytorch import PytorchWrapper, load_preprocess_images
    from brainscore_vision.model_helpers.brain_transformation import ModelCommitment

    report = {"generation_seconds": {}, "set_sizes": {}}
    for name in stimuli.STIMULUS_SETS:
        start = time.perf_counter()
        stimulus_set = stimuli.generate_marques_stimuli(name, cache_dir, workers=2, progress=True)
        report["generation_seconds"][name] = round(time.perf_counter() - start, 1)
        report["set_sizes"][name] = len(stimulus_set)

    torch.manual_seed(0)
    net = torch.nn.Sequential()
    net.add_module("layer1", torch.nn.Sequential(torch.nn.Conv2d(3, 32, 8, stride=4, padding=4), torch.nn.ReLU()))
    identifier = "neurov1-test-tiny-conv-seed0-64px-8deg"
    preprocessing = functools.partial(
        load_preprocess_images, image_size=64, normalize_mean=(0.5,) * 3, normalize_std=(0.5,) * 3
    )
    wrapper = PytorchWrapper(model=net.eval(), preprocessing=preprocessing, identifier=identifier, batch_size=64)
    model = ModelCommitment(
        identifier=identifier,
        activations_model=wrapper,
        layers=["layer1"],
        region_layer_map={"V1": "layer1"},
        visual_degrees=8,
    )
    start = time.perf_counter()
    benchmark = offline.offline_benchmark(E2E_BENCHMARK, cache_dir, progress=False)
    np.random.seed(0)
    score = benchmark(model)
    report["benchmark_seconds"] = round(time.perf_counter() - start, 1)
    report.update(score=float(score), raw=float(score.raw), ceiling=float(score.ceiling))
    return report


if __name__ == "__main__" and sys.argv[1:2] == ["--end-to-end"]:
    print(json.dumps(_end_to_end(sys.argv[2])))
