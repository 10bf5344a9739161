"""The benchmark commands run end to end on CPU (tiny settings): tables with every path and model."""

import json

import pytest

from conftest import REPO, run_module


@pytest.mark.e2e
def test_data_bench_times_every_path_against_the_reference(tmp_path):
    run_module(
        "neurov1.bench",
        "data",
        "--images",
        "20",
        "--rounds",
        "1",
        "--out",
        str(tmp_path),
        log_dir=tmp_path,
        hydra=False,
    )
    rows = json.loads((tmp_path / "bench-data.json").read_text())
    paths = [row["path"] for row in rows[:-1]]
    assert paths == ["folder, decode=exact", "folder, decode=fast", "streaming store"]
    assert rows[0]["train_ratio"] == 1.0 and all(row["train_per_core"] > 0 for row in rows[:-1])
    assert "| streaming store |" in (tmp_path / "bench-data.md").read_text()


@pytest.mark.e2e
def test_gpu_check_runs_end_to_end_on_the_cpu(tmp_path):
    arguments = ["gpu", "--device", "cpu", "--batch", "4", "--steps", "2", "--warmup", "1", "--no-compile"]
    run_module("neurov1.bench", *arguments, "--images", "20", "--out", str(tmp_path), log_dir=tmp_path, hydra=False)
    result = json.loads((tmp_path / "bench-gpu.json").read_text())
    assert [row["path"] for row in result["data"]] == ["folder, decode=fast", "streaming store"]
    assert [row["model"] for row in result["training"]] == ["baseline", "all"]
    assert all(row["images_per_s"] > 0 and row["hours_for_100_epochs"] > 0 for row in result["training"])
    assert not (REPO / "fixations.png").exists()  # (a benchmark's fit draws no validation figure in the working folder)
