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
    "model.scheduler.milestones=[1]",  # (the demo's [5, 7] lie beyond one epoch)
    "logger=csv",
    "~callbacks.progress_bar",
    "~callbacks.model_summary",
)


def run_module(
    module: str,
    *overrides: str,
    log_dir: Path,
    check: bool = True,
    env: dict[str, str] | None = None,
    hydra: bool = True,
) -> subprocess.CompletedProcess:
    """Run ``python -m <module> <overrides> [paths.log_dir=<log_dir>]`` in a clean, offline environment.

    ``hydra=False`` for argparse commands (no ``paths.log_dir`` override).
    """
    variables = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB", "BRAINIO", "RESULTCACHING"))}
    variables.update(OMP_NUM_THREADS=THREADS, MKL_NUM_THREADS=THREADS, WANDB_SILENT="true", PYTHONUNBUFFERED="1")
    variables.pop("BRAINSCORE_HOME", None)
    variables.update(env or {})
    command = [sys.executable, "-m", module, *overrides, *([f"paths.log_dir={log_dir}"] if hydra else [])]
    result = subprocess.run(command, cwd=REPO, env=variables, capture_output=True, text=True, timeout=1800)
    if check and result.returncode != 0:
        pytest.fail(f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}")
    return result


def run_dirs(log_dir: Path) -> list[Path]:
    """Run directories (those holding metrics.json) below ``log_dir``, oldest first."""
    return sorted((p.parent for p in log_dir.rglob("metrics.json")), key=lambda p: p.stat().st_mtime)


@pytest.fixture
def tiny_demo():
    return TINY_DEMO


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> Path:
    """The run directory of one tiny demo run of the composite model A (all four components)."""
    log_dir = tmp_path_factory.mktemp("demo_all")
    run_module("neurov1.train", *TINY_DEMO, "+model/components=all", log_dir=log_dir)
    (run_dir,) = run_dirs(log_dir)
    return run_dir


@pytest.fixture(scope="session")
def stimulus_cache() -> Path:
    """A cache of generated Marques2020 stimuli shared by the V1 tests (and kept between test sessions)."""
    path = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "neurov1-tests"
    path.mkdir(parents=True, exist_ok=True)
    return path
