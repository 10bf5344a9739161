"""V1 scoring: aggregation as in the paper, score extraction, unavailable data, model identifiers."""

import numpy as np
import pytest
import torch
from brainscore_core.metrics import Score

from neurov1.errors import ConfigError
from neurov1.evaluation.base import EvaluatedModel
from neurov1.evaluation.brainscore.benchmarks import PREDICTIVITY, PROPERTY_BENCHMARKS, PROPERTY_GROUPS
from neurov1.evaluation.brainscore.evaluation import layers_to_score
from neurov1.evaluation.brainscore.model import model_identifier
from neurov1.evaluation.brainscore.scoring import V1Settings, score_entry, summarize, unavailable_reason
from neurov1.models import build_network


def test_the_paper_benchmark_set():
    assert len(PROPERTY_BENCHMARKS) == 22 and len(set(PROPERTY_BENCHMARKS)) == 22
    assert {group: len(members) for group, members in PROPERTY_GROUPS.items()} == {
        "orientation": 7,
        "spatial_frequency": 3,
        "response_selectivity": 4,
        "receptive_field_size": 2,
        "surround_modulation": 1,
        "texture_modulation": 2,
        "response_magnitude": 3,
    }


def test_property_is_the_mean_of_group_means_and_overall_the_mean_with_predictivity():
    settings = V1Settings()
    values = {benchmark: 0.1 * (index % 10) for index, benchmark in enumerate(PROPERTY_BENCHMARKS)}
    entries = {b: {"ceiled": v, "source": "brainscore"} for b, v in values.items()}
    entries[PREDICTIVITY["public"]] = {"ceiled": 0.3, "source": "brainscore"}
    result = summarize(entries, settings)
    group_means = {g: np.mean([values[b] for b in members]) for g, members in PROPERTY_GROUPS.items()}
    for group, mean in group_means.items():
        assert result["groups"][group]["score"] == pytest.approx(mean)
    prop = np.mean(list(group_means.values()))
    assert prop != pytest.approx(np.mean(list(values.values())))  # not a flat mean of the 22
    assert result["scores"]["v1_property"] == pytest.approx(prop)
    assert result["scores"]["v1_overall"] == pytest.approx((0.3 + prop) / 2)
    assert not result["partial"] and result["missing"] == []


def test_missing_benchmarks_make_the_result_partial():
    settings = V1Settings()
    entries = {b: {"source": None, "reason": "offline"} for b in settings.selected()}
    entries["Marques2020_Cavanaugh2002-surround_suppression_index"] = {"ceiled": 0.8, "source": "offline"}
    result = summarize(entries, settings)
    assert result["partial"] and len(result["missing"]) == 22
    assert result["scores"] == {"v1_overall": None, "v1_predictivity": None, "v1_property": 0.8}
    assert result["groups"]["orientation"] == {"score": None, "scored": 0, "total": 7}


def test_predictivity_reports_todays_and_the_paper_era_normalisation():
    score = Score(0.5**2 / 0.8)
    score.attrs["raw"] = Score(0.5)
    score.attrs["ceiling"] = Score(0.8)
    entry = score_entry(PREDICTIVITY["public"], score)
    assert entry["raw"] == 0.5 and entry["ceiling"] == 0.8
    assert entry["ceiled"] == pytest.approx(0.3125) == entry["ceiled_r2_over_ceiling"]
    assert entry["ceiled_paper_era"] == pytest.approx((0.5 / 0.8) ** 2)


def test_unavailable_data_names_the_missing_files_and_the_cache():
    reason = unavailable_reason(
        "Marques2020_Ringach2002-max_dc",
        OSError("no network"),
        [("s3://bucket/ringach.nc", "/c/brainio/sha/ringach.nc")],
    )
    assert "s3://bucket/ringach.nc -> /c/brainio/sha/ringach.nc" in reason and "BRAINIO_HOME" in reason
    private = unavailable_reason(PREDICTIVITY["private"], RuntimeError("An error occurred (403) Forbidden"), [])
    assert "eval.predictivity=public" in private


def test_settings_are_validated():
    with pytest.raises(ConfigError, match="eval.source"):
        V1Settings(source="s3")
    with pytest.raises(ConfigError, match="eval.benchmarks"):
        V1Settings(benchmarks=("Marques2020_nothing",))


def test_identifier_changes_with_weights_layer_and_degrees():
    torch.manual_seed(0)
    net = build_network("resnet18", num_classes=10)
    first = model_identifier(net, "layer1", 64, 8)
    assert first == model_identifier(net, "layer1", 64, 8)
    assert first != model_identifier(net, "layer2", 64, 8) != model_identifier(net, "layer1", 64, 10)
    with torch.no_grad():
        net.fc.bias.add_(1.0)
    assert model_identifier(net, "layer1", 64, 8) != first
    assert len(first) < 60


RESNET50 = {"arch": "resnet50", "input_size": 64}
VGG11 = {"arch": "vgg11_bn", "input_size": 64}


def test_the_resnet50_scan_is_appendix_bs_twenty_layers_and_v1_is_layer1():
    net = EvaluatedModel.of_network(build_network("resnet50", num_classes=10), RESNET50, "resnet50")
    layers = layers_to_score("scan", net)
    assert len(layers) == 20
    assert layers[:4] == ["layer1.0", "layer1.0.downsample", "layer1.1", "layer1.2"]
    assert layers[-1] == "layer4.2"
    assert layers_to_score("v1", net) == ["layer1"]
    assert layers_to_score(["v1", "layer2"], net) == ["layer1", "layer2"]
    vgg = EvaluatedModel.of_network(build_network("vgg11_bn", num_classes=10), VGG11, "vgg11_bn")
    assert layers_to_score("v1", vgg) == ["features.13"]
    assert layers_to_score("scan", vgg)[:3] == ["features.2", "features.3", "features.6"]
