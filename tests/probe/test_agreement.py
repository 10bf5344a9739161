"""The probe against Brain-Score's own code on the same model: same units, same values, same scores.

Brain-Score's side runs its own functions (``properties_common``: receptive field mapping, firing rates; the
benchmarks' property functions) and its own benchmarks (offline data) through 672 px PNGs, ``place_on_screen`` and
the PIL preprocessing; the probe renders the same pixels as tensors (tests/probe/test_stimuli.py).
"""

import uuid

import numpy as np
import pytest
import torch
import torchvision

from neurov1.evaluation.brainscore.environment import configure_brainscore
from neurov1.evaluation.brainscore.model import brain_model, model_identifier
from neurov1.evaluation.brainscore.offline import OFFLINE_BENCHMARKS, register_offline_data
from neurov1.evaluation.brainscore.scoring import V1Settings, score_layer
from neurov1.evaluation.probe.electrophysiology import STIMULUS_POSITION, record
from neurov1.evaluation.probe.scoring import PROBE_BENCHMARKS
from neurov1.evaluation.v1_probe import probe_v1
from neurov1.models.activations import LayerOutput
from neurov1.models.contract import ScoringContract
from neurov1.training.module import NeuroV1Module

pytestmark = pytest.mark.xdist_group("brainscore")  # one worker renders the shared stimulus cache

PROPERTY_FUNCTIONS = {  # reference assembly -> (benchmark module, property function, stimulus set)
    "Ringach2002": ("ringach2002_benchmark", "ringach2002_properties", "Marques2020_orientation"),
    "DeValois1982a": ("devalois1982a_benchmark", "devalois1982a_properties", "Marques2020_orientation"),
    "DeValois1982b": ("devalois1982b_benchmark", "devalois1982b_properties", "Marques2020_spatial_frequency"),
    "Schiller1976c": ("schiller1976_benchmark", "schiller1976_properties", "Marques2020_spatial_frequency"),
    "Cavanaugh2002a": ("cavanaugh2002a_benchmark", "cavanaugh2002_properties", "Marques2020_size"),
}


def ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov distance (NaN values dropped; values rounded to 9 decimals, so that the last-bit
    differences of two spline implementations do not count as different values)."""
    a, b = (np.sort(np.round(x[np.isfinite(x)], 9)) for x in (a, b))
    if not len(a) and not len(b):
        return 0.0
    grid = np.concatenate((a, b))
    return float(np.abs(np.searchsorted(a, grid, "right") / len(a) - np.searchsorted(b, grid, "right") / len(b)).max())


def brainscore_tables(net, layer, identifier, cache):
    """Brain-Score's selected units, firing rates and property tables for ``layer`` of ``net``."""
    import importlib

    from brainscore_vision.benchmark_helpers import properties_common as common

    model = brain_model(net, layer, identifier, ScoringContract(layer, 64))
    model.start_recording("V1", time_bins=[(70, 170)])
    arguments = {"model_identifier": identifier, "model": model, "region": "V1"}
    selected = np.atleast_1d(common.filter_receptive_fields(**arguments, pos=STIMULUS_POSITION))
    rates = {
        name: common.get_firing_rates(**arguments, stimulus_identifier=name, number_of_trials=1, in_rf=selected)
        for name in (
            "Marques2020_blank",
            "Marques2020_orientation",
            "Marques2020_spatial_frequency",
            "Marques2020_size",
        )
    }
    tables = {}
    for assembly, (module, function, stimuli) in PROPERTY_FUNCTIONS.items():
        compute = getattr(
            importlib.import_module(f"brainscore_vision.benchmarks.marques2020.benchmarks.{module}"), function
        )
        table = compute(model_identifier=identifier, responses=rates[stimuli], baseline=rates["Marques2020_blank"])
        tables[assembly] = {prop: table.sel(neuronal_property=prop).values for prop in table.neuronal_property.values}
    return model, np.sort(selected), {name: rate.values for name, rate in rates.items()}, tables


def assert_agreement(net, layer, stimulus_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("RESULTCACHING_HOME", str(tmp_path / "result_caching"))
    configure_brainscore(stimulus_cache)
    register_offline_data(stimulus_cache, progress=False)
    # Brain-Score's result cache folder is fixed when it is first imported in a process, and activations cached by an
    # earlier test of this worker under the same weights were recorded from stimuli at other paths: a fresh name
    identifier = f"{model_identifier(net, layer, 64, 8)}-{uuid.uuid4().hex[:8]}"
    model, selected, rates, tables = brainscore_tables(net, layer, identifier, stimulus_cache)
    recording = record(LayerOutput(net, layer), 64, 8.0, progress=False, cache_dir=stimulus_cache)

    np.testing.assert_array_equal(recording.selected, selected)
    assert len(selected) >= 5
    for name, values in rates.items():
        np.testing.assert_allclose(recording.rates[name], values, rtol=1e-5, atol=1e-4, err_msg=name)
    ours = recording.tables()
    for assembly, table in tables.items():
        for prop, values in table.items():
            # the same computation up to float32 rounding (Brain-Score pads each batch to 64 images; the blank is
            # one image here): nearly every unit's value is equal, and the distributions are the same
            assert ours[assembly][prop].shape == values.shape, prop
            same = np.isclose(ours[assembly][prop], values, rtol=1e-4, atol=1e-4, equal_nan=True)
            assert same.mean() >= 0.95, (prop, same.mean())
            assert ks_distance(ours[assembly][prop], values) <= 0.02, prop

    settings = V1Settings(source="offline", seed=0)
    official = score_layer(model, settings, str(stimulus_cache))["benchmarks"]
    probe = probe_v1(net, layer, settings, ScoringContract(layer, 64), cache_dir=str(stimulus_cache), progress=False)
    probe = probe["benchmarks"]
    for benchmark_id in OFFLINE_BENCHMARKS:
        assert benchmark_id in PROBE_BENCHMARKS
        assert probe[benchmark_id]["source"] == official[benchmark_id]["source"] == "offline"
        assert probe[benchmark_id]["ceiled"] == pytest.approx(official[benchmark_id]["ceiled"], abs=0.005)
        assert probe[benchmark_id]["ceiling"] == pytest.approx(official[benchmark_id]["ceiling"], abs=1e-12)


@pytest.mark.e2e
def test_agrees_with_brainscore_on_a_trained_demo_model(demo_run, stimulus_cache, tmp_path, monkeypatch):
    module = NeuroV1Module.load_from_checkpoint(demo_run / "checkpoints" / "last.ckpt", map_location="cpu")
    assert_agreement(module.net.eval(), "layer1", stimulus_cache, tmp_path, monkeypatch)


@pytest.mark.slow
def test_agrees_with_brainscore_on_an_untrained_resnet50(stimulus_cache, tmp_path, monkeypatch):
    torch.manual_seed(0)
    assert_agreement(torchvision.models.resnet50().eval(), "layer1", stimulus_cache, tmp_path, monkeypatch)
