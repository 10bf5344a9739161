"""``eval=v1_probe`` and ``callbacks=v1_probe`` end to end on CPU without network."""

import csv
import json
import subprocess
import sys

import pytest

from conftest import TINY_DEMO, run_dirs, run_module
from neurov1.evaluation.brainscore.benchmarks import PREDICTIVITY, PROPERTY_BENCHMARKS
from neurov1.evaluation.brainscore.offline import OFFLINE_BENCHMARKS
from neurov1.evaluation.probe.scoring import PROBE_BENCHMARKS
from neurov1.results.ledger import load_records


@pytest.mark.e2e
def test_probe_of_a_demo_checkpoint(demo_run, stimulus_cache, tmp_path):
    checkpoint = demo_run / "checkpoints" / "last.ckpt"
    overrides = [f"ckpt_path={checkpoint}", "eval=v1_probe", "eval.source=offline", f"eval.cache_dir={stimulus_cache}"]
    run_module("neurov1.evaluate", *overrides, log_dir=tmp_path / "eval")
    (path,) = (tmp_path / "eval").rglob("v1_probe.json")
    report = json.loads(path.read_text())
    assert list(report["benchmarks"]) == [PREDICTIVITY["public"], *PROPERTY_BENCHMARKS]
    for benchmark_id, entry in report["benchmarks"].items():
        if benchmark_id in OFFLINE_BENCHMARKS:
            assert entry["source"] == "offline" and 0 <= entry["ceiled"] <= 1.5 and entry["ceiling"] > 0
        else:
            assert entry["source"] is None and entry["reason"]
    ringach = report["benchmarks"]["Marques2020_Ringach2002-max_dc"]["reason"]
    assert "Ringach2002" in ringach and "network" in ringach
    assert "only on its servers" in report["benchmarks"]["Marques2020_FreemanZiemba2013-max_noise"]["reason"]
    assert report["scores"]["v1_property"] is not None and report["scores"]["v1_overall"] is None
    assert report["partial"] and set(report["missing"]) == set(report["benchmarks"]) - set(OFFLINE_BENCHMARKS)
    units = report["units"]
    assert 0 < units["receptive_field_on_stimuli"] < units["layer"] == 64 * 16 * 16
    assert set(report["properties"]) == set(PROBE_BENCHMARKS)
    assert len(report["unit_values"]["Cavanaugh2002a"]["surround_diameter"]) == units["responsive"]["Cavanaugh2002a"]
    assert report["seconds"] > 0 and set(report["timings"]) >= {"stimuli", "receptive_fields", "responses"}
    for name in ("v1_probe.md", "v1_probe.csv", "v1_probe_groups.png"):
        assert (path.parent / name).stat().st_size > 0
    (record,) = load_records(tmp_path / "eval" / "results")
    assert record["eval"] == "v1_probe" and record["metrics"]["v1_probe/property"] == pytest.approx(
        report["scores"]["v1_property"]
    )


@pytest.mark.e2e
def test_probe_callback_follows_training(stimulus_cache, tmp_path):
    overrides = ["trainer.max_epochs=2", "callbacks=v1_probe", "callbacks.v1_probe.evaluation.source=offline"]
    run_module(
        "neurov1.train",
        *TINY_DEMO,
        *overrides,
        f"callbacks.v1_probe.evaluation.cache_dir={stimulus_cache}",
        log_dir=tmp_path / "runs",
    )
    (run_dir,) = run_dirs(tmp_path / "runs")
    folder = run_dir / "v1_probe"
    curve = json.loads((folder / "curve.json").read_text())
    assert [point["epoch"] for point in curve] == [1, 2]
    assert all(0 <= point["v1_probe/property"] <= 1.5 and "v1_probe/receptive_field_size" in point for point in curve)
    assert all(point["v1_probe/seconds"] > 0 for point in curve)  # the cost of each call
    for epoch in (1, 2):
        assert json.loads((folder / f"epoch_{epoch:03d}" / "v1_probe.json").read_text())["epoch"] == epoch
    assert (folder / "v1_probe_curves.png").stat().st_size > 0 and (folder / "v1_probe_histograms.png").stat().st_size
    assert json.loads((run_dir / "metrics.json").read_text())["curves"]["v1_probe"] == curve
    rows = list(csv.DictReader((run_dir / "csv" / "metrics.csv").open()))
    logged = [float(row["v1_probe/property"]) for row in rows if row.get("v1_probe/property")]
    assert logged == [pytest.approx(point["v1_probe/property"]) for point in curve]


@pytest.mark.slow
@pytest.mark.parametrize("case", ["ResNet-50|layer1|224", "ResNet-50|layer2|64"])
def test_larger_layers_and_inputs_stay_within_4_gb(case):
    # a fresh process (the benchmark's child): the floor and one probe; its peak resident memory
    command = [sys.executable, "-m", "neurov1.bench", "--probe-child", case]
    result = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
    assert result["peak_rss_mb"] < 4096 and result["seconds"] > 0
