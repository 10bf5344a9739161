"""End to end on CPU without network: scoring a demo checkpoint's V1 layer, and the V1 training callback."""

import csv
import json

import pytest

from conftest import TINY_DEMO, run_dirs, run_module

PREF_OR = "Marques2020_DeValois1982-pref_or"

pytestmark = pytest.mark.xdist_group("brainscore")  # one worker renders the shared stimulus cache


def evaluation_env(stimulus_cache, scratch):
    """Shared generated stimuli; fresh Brain-Score result caches, so every run computes its scores anew (Brain-Score
    reads them when it is first imported: the commands that get them run as processes of their own, the default)."""
    return {
        "NEUROV1_CACHE_DIR": str(stimulus_cache),
        "BRAINSCORE_HOME": str(scratch / "brain-score"),
        "RESULTCACHING_HOME": str(scratch / "result_caching"),
    }


@pytest.mark.e2e
def test_offline_v1_evaluation_of_a_demo_checkpoint(demo_run, stimulus_cache, tmp_path):
    checkpoint = demo_run / "checkpoints" / "best.ckpt"
    reports = []
    for attempt in range(2):
        scratch = tmp_path / f"attempt{attempt}"
        run_module(
            "neurov1.evaluate",
            f"ckpt_path={checkpoint}",
            "eval=v1",
            log_dir=scratch / "runs",
            env=evaluation_env(stimulus_cache, scratch),
        )
        (run_dir,) = {p.parent for p in (scratch / "runs").rglob("v1_scores.json")}
        reports.append(json.loads((run_dir / "v1_scores.json").read_text()))
        for name in ("v1_scores.md", "v1_scores.csv", "v1_groups.png"):
            assert (run_dir / name).is_file()
    report = reports[0]
    marques = {b: e for b, e in report["benchmarks"].items() if b.startswith("Marques2020")}
    assert len(marques) == 22 and len(report["benchmarks"]) == 23
    offline = {b for b, e in marques.items() if e["source"] == "offline"}
    assert len(offline) == 7
    for benchmark, entry in marques.items():
        if benchmark in offline:
            assert 0 <= entry["raw"] <= 1 and 0.9 < entry["ceiling"] < 1 and entry["ceiled"] is not None
        else:
            assert entry["source"] is None and entry["reason"]
    assert len(report["groups"]) == 7 and set(report["scores"]) == {"v1_overall", "v1_predictivity", "v1_property"}
    assert report["scores"]["v1_property"] is not None and report["scores"]["v1_overall"] is None
    assert report["partial"] and len(report["missing"]) == 16
    assert report["visual_degrees"] == 8 and report["identifier"].endswith("-layer1-64px-8deg")
    assert reports[0]["benchmarks"] == {
        b: {**e, "seconds": reports[0]["benchmarks"][b]["seconds"]} for b, e in reports[1]["benchmarks"].items()
    }, "the same checkpoint scores identically"
    assert reports[0]["scores"] == reports[1]["scores"]


@pytest.mark.e2e
def test_v1_callback_logs_scores_during_training(stimulus_cache, tmp_path):
    overrides = ["callbacks=v1", "callbacks.v1.every_n_epochs=1", f"eval.benchmarks=[{PREF_OR}]"]
    environment = evaluation_env(stimulus_cache, tmp_path)
    run_module("neurov1.train", *TINY_DEMO, *overrides, log_dir=tmp_path / "runs", env=environment)
    (run_dir,) = run_dirs(tmp_path / "runs")
    report = json.loads((run_dir / "v1" / "epoch_001" / "v1_scores.json").read_text())
    assert report["benchmarks"][PREF_OR]["source"] == "offline" and report["epoch"] == 1
    rows = list(csv.DictReader((run_dir / "csv" / "metrics.csv").open()))
    logged = [float(row["v1/orientation"]) for row in rows if row.get("v1/orientation")]
    assert logged == [pytest.approx(report["groups"]["orientation"]["score"])]


@pytest.mark.e2e
def test_a_failing_v1_evaluation_does_not_stop_training(tmp_path):
    result = run_module("neurov1.train", *TINY_DEMO, "callbacks=v1", "eval.layers=[layer9]", log_dir=tmp_path, env={})
    (run_dir,) = run_dirs(tmp_path)
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "completed"
    assert "v1 evaluation after epoch 1 failed; training continues" in result.stdout + result.stderr


@pytest.mark.e2e
def test_several_layers_of_an_untrained_model(stimulus_cache, tmp_path):
    run_module(
        "neurov1.evaluate",
        "ckpt_path=null",
        "model.net.arch=resnet18",
        "+model/components=tuned_norm",
        "eval.layers=[layer1,layer2.0.downsample]",
        f"eval.benchmarks=[{PREF_OR}]",
        log_dir=tmp_path / "runs",
        env=evaluation_env(stimulus_cache, tmp_path),
    )
    (run_dir,) = {p.parent for p in (tmp_path / "runs").rglob("v1_scores.json")}
    report = json.loads((run_dir / "v1_scores.json").read_text())
    assert report["model"] == "resnet18-tuned_norm-untrained" and report["layer"] == "layer1"
    assert list(report["layers"]) == ["layer1", "layer2.0.downsample"]
    assert all(layer["scores"]["v1_property"] is not None for layer in report["layers"].values())
    assert (run_dir / "v1_layers.png").is_file()


def test_an_unknown_layer_is_refused_before_scoring(tmp_path):
    result = run_module(
        "neurov1.evaluate", "ckpt_path=null", "eval.layers=[layer1,layer5]", log_dir=tmp_path, check=False, env={}
    )
    assert result.returncode != 0 and "ConfigError: eval.layers: 'layer5' is not a layer" in result.stderr
