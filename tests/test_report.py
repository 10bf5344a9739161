"""The report: paper Tables 1 and 2 from the results ledger, mean +- std over seeds, marked against the baseline."""

import json

import pytest

from neurov1.errors import ConfigError
from neurov1.results.ledger import load_records, write_record
from neurov1.results.paper_tables import build_report, probe_curve_points, probe_curves


def train_record(results, run_dir, components, seed, accuracy, v1=None, **training):
    final = {"val/acc1": accuracy, **(v1 or {})}
    record = {"run_dir": run_dir, "arch": "resnet50", "components": components, "seed": seed, "final": final}
    write_record(results, "train", None, {**record, "best": {"value": accuracy}, **training})


def test_tables_from_the_ledger(tmp_path):
    results = tmp_path / "results"
    for seed, (accuracy, overall) in enumerate([(0.60, 0.50), (0.62, 0.54)]):
        train_record(results, f"/runs/base{seed}", [], seed, accuracy, {"v1/overall": overall, "v1/orientation": 0.8})
    train_record(results, "/runs/tuned0", ["tuned_norm"], 0, 0.58)
    write_record(
        results,
        "evaluate",
        None,
        {
            "eval": "v1",
            "model": "resnet50-tuned_norm",
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
    write_record(
        results,
        "evaluate",
        None,
        {"eval": "adversarial", "model": "m", "checkpoint": "/runs/adv/b.pt", "metrics": adversarial},
    )
    train_record(results, "/runs/tiny", [], 0, 0.30, finetune={"batchnorm": "train"})
    corruption = {"corruption/clean_accuracy": 0.3, "corruption/mean_accuracy": 0.2, "corruption/difference": 0.1}
    corruption |= {"corruption/severity_1": 0.25, "corruption/gaussian_noise": 0.15, "corruption/noise": 0.15}
    write_record(
        results,
        "evaluate",
        None,
        {"eval": "corruption", "model": "m", "checkpoint": "/runs/tiny/b.ckpt", "metrics": corruption},
    )
    untrained = {"eval": "v1", "model": "resnet50-tuned_norm-untrained", "checkpoint": None}
    write_record(results, "evaluate", None, {**untrained, "metrics": {"v1/property": 0.5}})
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


def test_elimination_runs_have_their_own_tables(tmp_path, monkeypatch):
    results = tmp_path / "results"
    train_record(results, "/runs/base", [], 0, 0.60)
    train_record(results, "/sweep/0", ["center_surround", "tuned_norm"], 0, 0.5, {"v1/orientation": 0.7})
    monkeypatch.chdir(tmp_path)  # a run recorded by its absolute path, named relative to where the sweep ran
    train_record(results, str(tmp_path / "sweep" / "1"), ["tuned_norm"], 0, 0.55, {"v1/orientation": 0.8})
    train_record(results, "/sweep/2", ["center_surround"], 0, 0.45)

    def scored(components, removed, accuracy, run):
        return {
            "components": components,
            "removed": removed,
            "mean": accuracy,
            "std": 0.0,
            "values": [accuracy],
            "runs": [run],
        }

    candidates = [
        scored(["tuned_norm"], "center_surround", 0.55, "sweep/1"),
        scored(["center_surround"], "tuned_norm", 0.45, "/sweep/2"),
    ]
    start = ["center_surround", "tuned_norm"]
    round0 = {
        "round": 0,
        "current": start,
        "current_score": scored(start, None, 0.5, "/sweep/0"),
        "candidates": candidates,
        "removed": "center_surround",
        "kept": ["tuned_norm"],
    }
    settings = {"start": start, "metric": "val/acc1", "mode": "max", "seeds": [0], "min_components": 1}
    for _ in range(2):  # a finished elimination rerun is recorded again: the report keeps one
        write_record(results, "elimination", None, {"sweep_dir": "/sweep", "settings": settings, "rounds": [round0]})
    tables = build_report(results, tmp_path / "report")["tables"]
    titles = [table.title.split(":")[0] for table in tables]
    assert titles == ["Table 1", "Table 2", "Table 3", "Table 5"]
    assert [row[0] for row in tables[0].rows] == ["resnet50: baseline"]  # the elimination's runs are in Table 3
    assert tables[2].rows == [
        ["0", "✓", "✓", "—", "0.5000", "n/a", "n/a", "n/a", "start"],
        ["0", "", "✓", "center_surround", "0.5500", "n/a", "n/a", "n/a", "kept"],
        ["0", "✓", "", "tuned_norm", "0.4500", "n/a", "n/a", "n/a", ""],
    ]
    assert [row[4] for row in tables[3].rows] == ["0.700", "0.800", "n/a"]  # Table 5: orientation scores


def test_a_repeated_run_of_the_same_seed_counts_once_with_a_warning(tmp_path, caplog):
    results = tmp_path / "results"
    train_record(results, "/runs/base0", [], 0, 0.60)
    train_record(results, "/runs/base0-again", [], 0, 0.64)
    train_record(results, "/runs/base1", [], 1, 0.62)
    table1 = build_report(results, tmp_path / "report")["tables"][0]
    assert table1.rows == [["resnet50: baseline", "0.630 ± 0.010", "n/a", "n/a", "n/a"]]  # seeds 0 (newest) and 1
    (warning,) = [r.getMessage() for r in caplog.records if "trained 2 times" in r.getMessage()]
    assert "resnet50: baseline, seed 0" in warning and "/runs/base0-again" in warning and "/runs/base0" in warning


def test_an_unreadable_record_is_named_and_skipped(tmp_path, caplog):
    results = tmp_path / "results"
    train_record(results, "/runs/base0", [], 0, 0.60)
    broken = results / "records" / "train-broken.json"
    broken.write_text('{"command": "train", "run_dir": "/runs/x", "fin')
    table1 = build_report(results, tmp_path / "report")["tables"][0]
    assert table1.rows[0][:2] == ["resnet50: baseline", "0.600"]
    assert any(str(broken) in r.getMessage() and "Skipping ledger record" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"command": "train", "created_at": "2026-01-01T00:00:00+00:00", "run_dir": "/runs/x"}, "no seed"),
        ({"command": "train", "created_at": 1767225600, "run_dir": "/runs/x"}, "created_at is int, not str"),
        (
            {"command": "evaluate", "created_at": "yesterday", "eval": "v1", "model": "m", "metrics": {}},
            "created_at 'yesterday' is not an ISO time",
        ),
        ({"kind": "sweep", "created_at": "2026-01-01T00:00:00+00:00"}, "unknown command 'sweep'"),  # an old name
        ({"command": "evaluate", "created_at": "2026-01-01T00:00:00+00:00", "eval": "v1", "model": "m"}, "no metrics"),
        ([1, 2], "the record is list, not an object"),
    ],
)
def test_a_record_of_another_schema_or_with_wrong_types_is_named_and_skipped(tmp_path, caplog, record, reason):
    """Valid JSON that the report cannot use (a foreign schema, wrong types) is skipped with a warning, not a crash."""
    results = tmp_path / "results"
    train_record(results, "/runs/base0", [], 0, 0.60)
    foreign = results / "records" / "train-foreign.json"
    foreign.write_text(json.dumps(record))
    bad_metric = results / "records" / "train-bad-metric.json"
    good = json.loads(next(p for p in (results / "records").glob("*.json") if p != foreign).read_text())
    bad_metric.write_text(json.dumps({**good, "run_dir": "/runs/y", "final": {"val/acc1": "high"}}))
    table1 = build_report(results, tmp_path / "report")["tables"][0]
    assert table1.rows[0][:2] == ["resnet50: baseline", "0.600"]
    warnings = [r.getMessage() for r in caplog.records if "Skipping ledger record" in r.getMessage()]
    assert any(str(foreign) in w and reason in w for w in warnings), warnings
    assert any(str(bad_metric) in w and "final.val/acc1 is str" in w for w in warnings), warnings


def test_probe_curves_are_drawn_per_component_set(tmp_path):
    results = tmp_path / "results"
    for seed, start in enumerate((0.40, 0.44)):
        curve = [{"epoch": epoch, "v1_probe/property": start + 0.1 * epoch} for epoch in (1, 2, 3)]
        train_record(results, f"/runs/base{seed}", [], seed, 0.6, curves={"v1_probe": curve})
    train_record(results, "/runs/tuned0", ["tuned_norm"], 0, 0.58)  # no probe curve: not drawn, not an error
    points = probe_curve_points(load_records(results))
    assert list(points) == ["resnet50: baseline"]
    assert points["resnet50: baseline"] == pytest.approx({1: 0.52, 2: 0.62, 3: 0.72})
    report = build_report(results, tmp_path / "report")
    assert report["paths"]["probe_curves"].stat().st_size > 0
    assert probe_curves([], tmp_path / "empty.png") is None and not (tmp_path / "empty.png").exists()


def test_records_written_before_the_command_field_was_named_still_count(tmp_path):
    results = tmp_path / "results"
    train_record(results, "/runs/base0", [], 0, 0.60)
    (path,) = (results / "records").glob("*.json")
    record = json.loads(path.read_text())
    path.write_text(json.dumps({"kind": record.pop("command"), **record}))
    (loaded,) = load_records(results)
    assert loaded["command"] == "train" and "kind" not in loaded
    assert build_report(results, tmp_path / "report")["tables"][0].rows[0][:2] == ["resnet50: baseline", "0.600"]


def test_where_to_look_table_gives_each_policy_and_its_share_of_the_gap(tmp_path):
    results = tmp_path / "results"
    cases = {"center": (0.40, 2.0), "given": (0.80, 0.0), "learned": (0.70, 0.8)}
    for policy, (accuracy, error) in cases.items():
        for seed in (0, 1):
            final = {"val/fixation_error": error, "val/acc1_glimpses": accuracy + 0.01}
            train_record(results, f"/runs/{policy}{seed}", ["cortical_mag"], seed, accuracy + 0.02 * seed, final,
                         fixation=policy)  # fmt: skip
    write_record(
        results,
        "evaluate",
        None,
        {
            "eval": "v1_probe",
            "model": "m",
            "checkpoint": "/runs/learned0/best.ckpt",
            "metrics": {"v1_probe/property": 0.5},
        },
    )
    for seed, (glimpses, error) in enumerate([(0.75, 0.5), (0.65, 0.7)]):  # eval=accuracy eval.glimpses=5
        metrics = {"accuracy/acc1": 0.7, "accuracy/acc1_glimpses": glimpses, "accuracy/fixation_error": error}
        record = {"eval": "accuracy", "model": "m", "checkpoint": f"/runs/learned{seed}/best.ckpt", "metrics": metrics}
        write_record(results, "evaluate", None, record)
    markdown = build_report(results, tmp_path / "report")["paths"]["markdown"].read_text()
    assert "Where to look" in markdown
    # (learned: glimpses and fixation error of its checkpoints' evaluations; the others: of their last epoch)
    assert (
        "| resnet50: cortical_mag | learned | 0.710 ± 0.010 | 0.700 ± 0.050 | 0.500 | 0.600 ± 0.100 | 75% |" in markdown
    )
    assert "| resnet50: cortical_mag | center | 0.410 ± 0.010 | 0.410 ± 0.000 | n/a | 2.000 ± 0.000 | 0% |" in markdown
    assert "| resnet50: cortical_mag | given | 0.810 ± 0.010 |" in markdown and "| 100% |" in markdown
    assert "resnet50: cortical_mag [fixation=learned]" in markdown  # Table 1 keeps the policies apart
