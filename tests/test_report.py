"""The report: paper Tables 1 and 2 from the results ledger, mean +- std over seeds, marked against the baseline."""

import pytest

from neurov1.errors import ConfigError
from neurov1.ledger import append_record
from neurov1.report import build_report


def train_record(results, run_dir, components, seed, accuracy, v1=None, **training):
    final = {"val/acc1": accuracy, **(v1 or {})}
    record = {"run_dir": run_dir, "arch": "resnet50", "components": components, "seed": seed, "final": final}
    append_record(results, "train", {**record, "best": {"value": accuracy}, **training})


def test_tables_from_the_ledger(tmp_path):
    results = tmp_path / "results"
    for seed, (accuracy, overall) in enumerate([(0.60, 0.50), (0.62, 0.54)]):
        train_record(results, f"/runs/base{seed}", [], seed, accuracy, {"v1/overall": overall, "v1/orientation": 0.8})
    train_record(results, "/runs/tuned0", ["tuned_norm"], 0, 0.58)
    append_record(
        results,
        "evaluate",
        {
            "eval": "v1",
            "checkpoint": "/runs/tuned0/checkpoints/best.ckpt",
            "metrics": {"v1/overall": 0.6, "v1/orientation": 0.9},
        },
    )
    paths = build_report(results, tmp_path / "report")["paths"]
    markdown = paths["markdown"].read_text()
    assert "| resnet50: baseline | 0.610 ± 0.010 | 0.520 ± 0.020 |" in markdown
    assert "| resnet50: tuned_norm | 0.580 ▼ | 0.600 ▲ |" in markdown
    assert markdown.index("tuned_norm") < markdown.index("| resnet50: baseline")  # baseline last, as in the paper
    assert "Table 2" in markdown and "0.900" in markdown
    assert "resnet50: baseline,standard,val/acc1,0.61" in paths["csv"].read_text()
    assert paths["plot"].is_file() and paths["heat_map"].is_file()  # orientation: tuned_norm vs baseline
    assert "Table 4" not in markdown and "Table 8" not in markdown  # no such runs


def test_adversarial_and_robustness_tables_keep_their_own_rows(tmp_path):
    results = tmp_path / "results"
    train_record(results, "/runs/base", [], 0, 0.60)
    free_at = {"adversarial_training": {"replays": 4, "eps": 2 / 255}}
    train_record(results, "/runs/adv", ["tuned_norm"], 0, 0.40, {"v1/overall": 0.7}, **free_at)
    adversarial = {"adversarial/clean_acc1": 0.41, "adversarial/acc1": 0.2}
    append_record(results, "evaluate", {"eval": "adversarial", "checkpoint": "/runs/adv/b.pt", "metrics": adversarial})
    train_record(results, "/runs/tiny", [], 0, 0.30, finetune={"batchnorm": "train"})
    corruption = {"corruption/clean_accuracy": 0.3, "corruption/mean_accuracy": 0.2, "corruption/difference": 0.1}
    corruption |= {"corruption/severity_1": 0.25, "corruption/gaussian_noise": 0.15, "corruption/noise": 0.15}
    append_record(results, "evaluate", {"eval": "corruption", "checkpoint": "/runs/tiny/b.ckpt", "metrics": corruption})
    untrained = {"eval": "v1", "model": "resnet50-tuned_norm-untrained", "checkpoint": None}
    append_record(results, "evaluate", {**untrained, "metrics": {"v1/property": 0.5}})
    tables = {t.title.split(":")[0]: t for t in build_report(results, tmp_path / "report")["tables"]}
    assert [row[0] for row in tables["Table 1"].rows] == ["resnet50: baseline"]  # not the Free-AT or fine-tuned runs
    free_at_row = ["resnet50: tuned_norm (Free-AT)", "0.400", "0.700", "n/a", "n/a", "0.410", "0.200"]
    assert tables["Table 4"].rows == [free_at_row]
    assert tables["Table 8"].rows == [["resnet50: baseline (fine-tuned head)", "0.300", "0.200", "0.100"]]
    assert tables["Table 9"].rows[0][1:3] == ["0.250", "n/a"]
    assert tables["Table 10 (noise corruptions)"].rows[0][1] == "0.150"
    assert tables["Table 6"].rows == [["resnet50-tuned_norm-untrained", "n/a", "n/a", "0.500"]]


def test_an_empty_ledger_is_reported(tmp_path):
    with pytest.raises(ConfigError, match="no ledger"):
        build_report(tmp_path, tmp_path / "out")
