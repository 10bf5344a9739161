"""V2, V4 and IT (paper Table 7): layer selection, unavailable data, the report's table."""

import json

import pytest

from conftest import run_module
from neurov1.errors import ConfigError
from neurov1.evaluation.base import EvaluatedModel
from neurov1.evaluation.regions import (
    REGION_BENCHMARKS,
    RegionsEvaluation,
    candidate_layers,
    score_regions,
    select_layers,
)
from neurov1.models import build_network
from neurov1.results.ledger import load_records, write_record
from neurov1.results.paper_tables import build_report


class FakeScore(float):
    """A float with the attrs Brain-Score's scores carry."""

    @property
    def attrs(self):
        return {"raw": float(self) * 0.8, "ceiling": 0.8}


def test_the_best_layer_of_each_region_is_chosen():
    scores = {"V2": {"a": 0.2, "b": 0.5, "c": 0.5}, "V4": {"a": None, "b": float("nan")}, "IT": {"a": 0.1, "b": 0.3}}
    assert select_layers(scores) == {
        "V2": {"layer": "b", "score": 0.5},  # a tie goes to the earlier candidate
        "V4": {"layer": None, "score": None},
        "IT": {"layer": "b", "score": 0.3},
    }


def test_regions_are_scored_per_layer_and_an_unloadable_benchmark_is_reported():
    table = {("V4", "layer2.0"): 0.4, ("V4", "layer3.0"): 0.6, ("IT", "layer2.0"): 0.3, ("IT", "layer3.0"): 0.2}

    def load(benchmark_id):
        if benchmark_id == REGION_BENCHMARKS["V2"]:
            raise OSError("no network")
        return benchmark_id

    results = score_regions(
        ["V2", "V4", "IT"], ["layer2.0", "layer3.0"], lambda _, region, layer: FakeScore(table[region, layer]), load
    )
    assert results["V2"]["score"] is None and "no network" in results["V2"]["reason"]
    assert (results["V4"]["layer"], results["V4"]["score"]) == ("layer3.0", pytest.approx(0.6))
    assert (results["IT"]["layer"], results["IT"]["score"]) == ("layer2.0", pytest.approx(0.3))
    assert results["IT"]["layers"]["layer3.0"]["raw"] == pytest.approx(0.16)


RESNET50 = {"arch": "resnet50", "input_size": 64}
VGG11 = {"arch": "vgg11_bn", "input_size": 64}


def test_candidates_are_the_layers_after_v1():
    resnet = candidate_layers(EvaluatedModel.of_network(build_network("resnet50", 10, 64, {}), RESNET50, "resnet50"))
    assert (
        resnet[:2] == ["layer2.0", "layer2.0.downsample"]
        and resnet[-1] == "layer4.2"
        and not any(layer.startswith("layer1") for layer in resnet)
    )
    vgg = candidate_layers(EvaluatedModel.of_network(build_network("vgg11_bn", 10, 64, {}), VGG11, "vgg11_bn"))
    assert vgg and all(int(layer.split(".")[1]) > 13 for layer in vgg)
    with pytest.raises(ConfigError, match="eval.regions"):
        RegionsEvaluation(regions=["V3"])


def test_offline_every_region_is_listed_as_not_scored(tmp_path):
    overrides = ["ckpt_path=null", "model.net.arch=resnet18", "eval=regions", "eval.layers=[layer2.0,layer3.0]"]
    run_module("neurov1.evaluate", *overrides, f"eval.cache_dir={tmp_path / 'cache'}", log_dir=tmp_path)
    (path,) = tmp_path.rglob("regions.json")
    report = json.loads(path.read_text())
    assert list(report["regions"]) == ["V2", "V4", "IT"] and report["candidate_layers"] == ["layer2.0", "layer3.0"]
    assert all(r["score"] is None and r["reason"] for r in report["regions"].values())
    assert (path.parent / "regions.png").stat().st_size > 0 and "| V2 |" in (path.parent / "regions.md").read_text()
    (record,) = load_records(tmp_path / "results")
    assert record["eval"] == "regions" and record["metrics"] == {}


def test_report_has_a_table_7(tmp_path):
    results = tmp_path / "results"
    for seed in (0, 1):
        run = f"/runs/all{seed}"
        final = {"val/acc1": 0.6, "v1/overall": 0.5}
        write_record(
            results,
            "train",
            None,
            {
                "run_dir": run,
                "arch": "resnet50",
                "components": ["tuned_norm"],
                "seed": seed,
                "final": final,
                "best": {"value": 0.6},
            },
        )
        write_record(
            results,
            "evaluate",
            None,
            {
                "eval": "regions",
                "model": "m",
                "checkpoint": f"{run}/checkpoints/best.ckpt",
                "run_dir": "/eval",
                "metrics": {"regions/V4": 0.4 + 0.1 * seed},
            },
        )
    (table,) = [t for t in build_report(results, tmp_path / "report")["tables"] if t.title.startswith("Table 7")]
    assert "0.450" in table.markdown() and "V4" in table.markdown()
