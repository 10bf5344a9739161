"""The ablation sweeps end to end on the demo data: single-component and backward elimination, and their report."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO, THREADS, TINY_DEMO, run_module
from neurov1.results.ledger import load_records
from neurov1.results.paper_tables import build_report

pytestmark = pytest.mark.xdist_group("sweeps")
START = ("center_surround", "tuned_norm", "cortical_mag")


@pytest.mark.e2e
def test_single_component_sweep_and_its_report(tmp_path):
    run_module("neurov1.train", "-m", *TINY_DEMO, "sweep=single_component", "seed=0,1", log_dir=tmp_path)
    records = [r for r in load_records(tmp_path / "results") if r["command"] == "train"]
    assert sorted((tuple(r["components"]), r["seed"]) for r in records) == sorted(
        ((), seed) if name == "none" else ((name,), seed)
        for name in ("none", "center_surround", "local_rf", "divisive_norm", "tuned_norm", "cortical_mag")
        for seed in (0, 1)
    )
    result = run_module(
        "neurov1.report",
        str(tmp_path / "results"),
        "--wandb",
        "--wandb-mode",
        "offline",
        log_dir=tmp_path,
        hydra=False,
        env={"WANDB_SILENT": "true"},
    )
    markdown = (tmp_path / "results" / "report" / "report.md").read_text()
    table1 = markdown[markdown.index("Table 1") : markdown.index("Table 2")]
    rows = [line for line in table1.splitlines() if line.startswith("| resnet18")]
    assert len(rows) == 6 and rows[-1].startswith("| resnet18: baseline |")  # baseline last
    assert all(row.count("±") == 1 for row in rows)  # accuracy: mean ± std over the 2 seeds; no V1 callback
    assert "Table 2" in markdown and "callbacks=v1" in markdown  # says how to get V1 scores
    assert (tmp_path / "results" / "report" / "tables" / "table_1.csv").is_file()
    folder = result.stderr.split("Logged to W&B: ")[1].strip()
    assert "offline-run" in folder and os.listdir(folder)


SWEEP = (
    "-m",
    *TINY_DEMO,
    "sweep=backward_elimination",
    f"hydra.sweeper.start=[{','.join(START)}]",
    "hydra.sweeper.metric=val/acc1",
)


def completed_runs(sweep_dir):
    runs = [json.loads(p.read_text()) for p in sweep_dir.glob("*/metrics.json")]
    return [(tuple(r["components"]), r["seed"]) for r in runs if r["status"] == "completed"]


@pytest.mark.e2e
def test_interrupted_elimination_resumes_without_rerunning_finished_runs(tmp_path):
    sweep_dir = tmp_path / "train" / "backward_elimination" / "default"
    command = [sys.executable, "-m", "neurov1.train", *SWEEP, f"paths.log_dir={tmp_path}"]
    env = {**os.environ, "OMP_NUM_THREADS": THREADS, "WANDB_MODE": "disabled"}
    process = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.time() + 300
    while len(completed_runs(sweep_dir) if sweep_dir.is_dir() else []) < 2 and process.poll() is None:
        assert time.time() < deadline, "the elimination did not finish two runs in time"
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)  # as a cluster job killed at its time limit
    process.wait()
    before = {p: p.stat().st_mtime_ns for p in sweep_dir.glob("*/metrics.json")}
    assert 2 <= len(before) < 6 and not list((tmp_path / "results" / "records").glob("*elimination*"))

    run_module("neurov1.train", *SWEEP, log_dir=tmp_path)
    runs = completed_runs(sweep_dir)
    assert len(runs) == len(set(runs)) == 4 + 2  # every set of the 2 rounds once, none twice
    assert all(path.stat().st_mtime_ns == mtime for path, mtime in before.items())  # finished runs untouched
    state = json.loads((sweep_dir / "elimination.json").read_text())
    assert state["done"] and len(state["rounds"]) == 2 and len(state["final"]) == 1
    assert "Final set:" in (sweep_dir / "elimination.md").read_text()

    # the report's checkmark table lists the start set and every evaluated set
    (record,) = [r for r in load_records(tmp_path / "results") if r["command"] == "elimination"]
    assert record["settings"]["metric"] == "val/acc1"
    markdown = build_report(tmp_path / "results", tmp_path / "report")["paths"]["markdown"].read_text()
    table = markdown[markdown.index("Table 3") : markdown.index("Table 5")]
    assert table.count("| ✓ | ✓ | ✓ |") == 1 and "kept" in table
