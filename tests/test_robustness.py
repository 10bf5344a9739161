"""Tiny-ImageNet-C evaluation: conditions, Tables 8-10, corruption error, and the command on a generated fixture."""

import csv
import json
import shutil

import pytest

from conftest import TINY_DEMO, run_dirs, run_module
from neurov1.data.image_corruptions import CORRUPTION_GROUPS, CORRUPTIONS
from neurov1.errors import ConfigError
from neurov1.evaluation.corruption_robustness import condition_folders, markdown_tables, summarize
from neurov1.results.ledger import load_records


def rows_with(accuracy_of):
    return [
        {"corruption": c, "group": g, "severity": s, "accuracy": accuracy_of(c, s), "images": 10}
        for g, members in CORRUPTION_GROUPS.items()
        for c in members
        for s in range(1, 6)
    ]


def test_tables_8_to_10_aggregate_as_in_the_paper():
    rows = rows_with(lambda c, s: 0.9 - 0.1 * s - 0.01 * CORRUPTIONS.index(c))
    summary = summarize(rows, clean_accuracy=0.8, baseline=None)
    mean = sum(r["accuracy"] for r in rows) / 75
    assert summary["mean_corrupted_accuracy"] == pytest.approx(mean)
    assert summary["difference"] == pytest.approx(0.8 - mean)
    assert summary["per_severity"][1] == pytest.approx(sum(0.8 - 0.01 * i for i in range(15)) / 15)
    assert summary["per_corruption"]["shot_noise"] == pytest.approx(0.6 - 0.01)
    assert summary["per_group"]["noise"] == pytest.approx(0.6 - 0.01)
    tables = markdown_tables(summary, [], "model")
    for title in ("Table 8", "Table 9", "Table 10", "noise corruptions", "digital corruptions"):
        assert title in tables


def test_corruption_error_is_relative_to_the_baseline():
    baseline = rows_with(lambda c, s: 0.5)
    better = rows_with(lambda c, s: 0.75)
    summary = summarize(better, None, baseline)
    assert all(ce == pytest.approx(0.5) for ce in summary["corruption_error"].values())
    assert summary["mce"] == pytest.approx(50.0)
    assert summarize(baseline, None, baseline)["mce"] == pytest.approx(100.0)


def test_missing_conditions_are_listed(tmp_path):
    (tmp_path / "fog" / "2" / "n01").mkdir(parents=True)
    present, missing = condition_folders(tmp_path, ["fog", "snow"], [1, 2])
    assert list(present) == [("fog", 2)] and missing == ["fog/1", "snow/1", "snow/2"]
    with pytest.raises(ConfigError, match="eval.corruption.root"):
        condition_folders(tmp_path / "nowhere", ["fog"], [1])
    with pytest.raises(ConfigError, match="unknown corruptions"):
        condition_folders(tmp_path, ["fogg"], [1])


@pytest.fixture(scope="module")
def demo_c(tmp_path_factory):
    """A Tiny-ImageNet-C-shaped fixture: all 15 corruptions x 5 severities of 2 demo val crops per class."""
    root = tmp_path_factory.mktemp("demo-c")
    run_module("neurov1.corrupt", "--demo", str(root), "--limit", "2", "--workers", "2", log_dir=root, hydra=False)
    return root


@pytest.mark.e2e
def test_corruption_evaluation_of_a_demo_checkpoint(demo_run, demo_c, tmp_path):
    checkpoint = demo_run / "checkpoints" / "best.ckpt"
    overrides = [
        f"ckpt_path={checkpoint}",
        "eval=corruption",
        "data=demo",
        f"eval.corruption.root={demo_c}",
        "eval.corruption.limit_per_condition=10",
        "eval.num_workers=0",
        "eval.five_crop=true",
    ]
    run_module("neurov1.evaluate", *overrides, log_dir=tmp_path / "a")
    (run_dir,) = {p.parent for p in (tmp_path / "a").rglob("corruption_accuracy.csv")}
    rows = list(csv.DictReader((run_dir / "corruption_accuracy.csv").open()))
    assert len(rows) == 75 and {r["corruption"] for r in rows} == set(CORRUPTIONS)
    assert all(int(r["images"]) == 10 and 0 <= float(r["accuracy"]) <= 1 for r in rows)
    tables = (run_dir / "corruption_tables.md").read_text()
    assert "Table 8" in tables and "Table 9" in tables and "Table 10" in tables and "mean of five crops" in tables
    assert (run_dir / "corruption_severity.png").is_file()
    (record,) = load_records(tmp_path / "a" / "results")
    assert record["command"] == "evaluate" and record["eval"] == "corruption"
    assert record["checkpoint"] == str(checkpoint)
    assert "corruption/mean_accuracy" in record["metrics"]

    # The same model as its own baseline: corruption error 1 everywhere; a missing folder is listed, not fatal.
    shutil.rmtree(demo_c / "fog" / "5")
    run_module(
        "neurov1.evaluate",
        *overrides,
        f"eval.corruption.baseline={run_dir / 'corruption_accuracy.csv'}",
        log_dir=tmp_path / "b",
    )
    (second,) = {p.parent for p in (tmp_path / "b").rglob("corruption_scores.json")}
    scores = json.loads((second / "corruption_scores.json").read_text())
    assert scores["missing"] == ["fog/5"] and len(scores["rows"]) == 74
    assert scores["summary"]["mce"] == pytest.approx(100.0)
    assert "Missing (not evaluated, n/a above): fog/5" in (second / "corruption_tables.md").read_text()


def test_corruption_callback_at_the_end_of_fit(demo_c, tmp_path):
    settings = "callbacks.corruption.evaluation"
    overrides = ["callbacks=corruption", f"{settings}.corruption.root={demo_c}", f"{settings}.num_workers=0"]
    run_module(
        "neurov1.train", *TINY_DEMO, *overrides, f"{settings}.corruption.limit_per_condition=4", log_dir=tmp_path
    )
    (run_dir,) = run_dirs(tmp_path)
    rows = list(csv.DictReader((run_dir / "corruption" / "epoch_001" / "corruption_accuracy.csv").open()))
    assert len(rows) >= 74 and all(int(r["images"]) == 4 for r in rows)
    logged = list(csv.DictReader((run_dir / "csv" / "metrics.csv").open()))
    assert any(row.get("corruption/mean_accuracy") for row in logged)
