"""The report: paper Tables 1 and 2 from the results ledger, mean +- std over seeds, marked against the baseline."""

import pytest

from neurov1.errors import ConfigError
from neurov1.ledger import append_record
from neurov1.report import build_report


def train_record(results, run_dir, components, seed, accuracy, v1=None):
    final = {"val/acc1": accuracy, **(v1 or {})}
    record = {"run_dir": run_dir, "arch": "resnet50", "components": components, "seed": seed, "final": final}
    append_record(results, "train", {**record, "best": {"value": accuracy}})


def test_tables_from_the_ledger(tmp_path):
    results = tmp_path / "results"
    for seed, (accuracy, overall) in enumerate([(0.60, 0.50), (0.62, 0.54)]):
        train_record(results, f"/runs/base{seed}", [], seed, accuracy, {"v1/overall": overall})
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
    paths = build_report(results, tmp_path / "report")
    markdown = paths["markdown"].read_text()
    assert "| resnet50: baseline | 0.610 ± 0.010 | 0.520 ± 0.020 |" in markdown
    assert "| resnet50: tuned_norm | 0.580 ▼ | 0.600 ▲ |" in markdown
    assert markdown.index("tuned_norm") < markdown.index("| resnet50: baseline")  # baseline last, as in the paper
    assert "Table 2" in markdown and "0.900" in markdown
    assert "resnet50: baseline,val/acc1,0.61" in paths["csv"].read_text()
    assert paths["plot"].is_file()


def test_an_empty_ledger_is_reported(tmp_path):
    with pytest.raises(ConfigError, match="no ledger"):
        build_report(tmp_path, tmp_path / "out")
