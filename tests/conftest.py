"""Shared fixtures: running the real entry points on the embedded demo data."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
# Under pytest-xdist each worker gets one core's worth of threads instead of fighting over both.
THREADS = "1" if os.environ.get("PYTEST_XDIST_WORKER") else str(torch.get_num_threads())
torch.set_num_threads(int(THREADS))

# A few-second demo run: ResNet-18, few crops, one epoch.
TINY_DEMO = (
    "experiment=demo",
    "model.net.arch=resnet18",
    "data.train_per_class=8",
    "data.val_per_class=4",
    "data.batch_size=16",
    "trainer.max_epochs=1",
    "logger=csv",
    "~callbacks.progress_bar",
    "~callbacks.model_summary",
)


def run_module(module: str, *overrides: str, log_dir: Path, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``python -m <module> <overrides> paths.log_dir=<log_dir>`` in a clean, offline environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB")}
    env.update(OMP_NUM_THREADS=THREADS, MKL_NUM_THREADS=THREADS, WANDB_SILENT="true", PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", module, *overrides, f"paths.log_dir={log_dir}"]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    if check and result.returncode != 0:
        pytest.fail(f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}")
    return result


def run_dirs(log_dir: Path) -> list[Path]:
    """Run directories (those holding metrics.json) below ``log_dir``, oldest first."""
    return sorted((p.parent for p in log_dir.rglob("metrics.json")), key=lambda p: p.stat().st_mtime)


@pytest.fixture
def tiny_demo():
    return TINY_DEMO
