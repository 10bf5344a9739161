"""Shared fixtures: running the real entry points on the embedded demo data."""

import contextlib
import fcntl
import io
import logging
import os
import runpy
import shutil
import signal
import subprocess
import sys
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from neurov1.models.backbones import BUILT_IN
from neurov1.models.sites import GROUP, SITES, component_order, preset_components
from neurov1.utils.config import group_options, load_option

REPO = Path(__file__).resolve().parents[1]
# Under pytest-xdist each worker gets one core's worth of threads instead of fighting over both.
THREADS = "1" if os.environ.get("PYTEST_XDIST_WORKER") else str(torch.get_num_threads())
torch.set_num_threads(int(THREADS))
# The handlers a command may install (Lightning's and neurov1's preemption handling), put back after an in-process run.
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)

# What the tests iterate over, read from where it is defined: the component options of conf/model/components, the
# composite model A (its preset ``all``), and the smallest architecture of each built-in backbone family.
COMPONENTS = sorted(  # those with a _target_ (presets have none), in the order of their sites, as a model lists them
    (name for name in group_options(GROUP) if "_target_" in load_option(GROUP, name)),
    key=lambda name: list(SITES).index(load_option(GROUP, name)["site"]),
)
ALL = component_order(preset_components("all"))
FAMILIES = tuple(adapter.archs[0] for adapter in BUILT_IN)

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


class Commands:
    """Where :func:`run_module` runs a command by default during the current test (see there)."""

    as_processes = False


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    # (before the test's fixtures are set up: those it is the first to need run their commands the same way)
    Commands.as_processes = item.get_closest_marker("e2e") is not None


def run_module(
    module: str,
    *overrides: str,
    log_dir: Path,
    check: bool = True,
    env: dict[str, str] | None = None,
    hydra: bool = True,
    process: bool | None = None,
) -> subprocess.CompletedProcess:
    """Run ``python -m <module> <overrides> [paths.log_dir=<log_dir>]`` in a clean, offline environment.

    Where: ``process=True``, a process of its own; ``process=False``, this process (the command's own ``__main__``
    code, its exit status and console output as a real process would give them, without paying the imports of
    torch, Lightning and Hydra again: about 6 s a command). By default, a process of its own in the end-to-end tests
    (marked ``e2e``: a real process as a user starts it, and no state left behind for a later test, such as
    Brain-Score's cache folders, fixed when it is first imported), this process in the others.
    ``hydra=False`` for argparse commands (no ``paths.log_dir`` override).
    """
    variables = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB", "BRAINIO", "RESULTCACHING"))}
    variables.update(OMP_NUM_THREADS=THREADS, MKL_NUM_THREADS=THREADS, WANDB_SILENT="true", PYTHONUNBUFFERED="1")
    variables.pop("BRAINSCORE_HOME", None)
    variables.update(env or {})
    command = [sys.executable, "-m", module, *overrides, *([f"paths.log_dir={log_dir}"] if hydra else [])]
    if process if process is not None else Commands.as_processes:
        result = subprocess.run(command, cwd=REPO, env=variables, capture_output=True, text=True, timeout=1800)
    else:
        result = run_in_process(command, variables)
    if check and result.returncode != 0:
        pytest.fail(f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}")
    return result


def run_in_process(command: list[str], variables: dict[str, str]) -> subprocess.CompletedProcess:
    """``command`` (``python -m <module> ...``) run by this interpreter, as its process would run it: in the
    repository, with exactly ``variables`` as its environment, its output captured; then the state a command may
    change (environment, import path and the modules imported from it, working folder, logging, warning filters,
    signal handlers, torch's global switches, Hydra's singletons) is put back as it was."""
    from hydra.core.global_hydra import GlobalHydra

    module, arguments = command[2], command[3:]
    saved_environment, saved_argv, saved_cwd, saved_path = dict(os.environ), sys.argv, os.getcwd(), sys.path[:]
    # PYTHONPATH entries the command gets (and this process has not) go before the others, as Python would put them
    added = [entry for entry in variables.get("PYTHONPATH", "").split(os.pathsep) if entry and entry not in sys.path]
    root = logging.getLogger()
    saved_handlers, saved_level, saved_filters = root.handlers[:], root.level, warnings.filters[:]
    saved_signals = {number: signal.getsignal(number) for number in SIGNALS}
    saved_torch = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    stdout, stderr, status = io.StringIO(), io.StringIO(), 0
    os.environ.clear()
    os.environ.update(variables)
    sys.argv = [module, *arguments]
    sys.path[:0] = added
    os.chdir(REPO)
    GlobalHydra.instance().clear()
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr), warnings.catch_warnings():
            # (the command module is usually imported already, by a test; python -m runs a second copy of it as
            # __main__ too, and each command module only defines functions, so the copy is harmless)
            warnings.filterwarnings("ignore", "'neurov1.* found in sys.modules", RuntimeWarning)
            runpy.run_module(module, run_name="__main__", alter_sys=False)
    except SystemExit as exit_:
        if isinstance(exit_.code, int) or exit_.code is None:
            status = exit_.code or 0
        else:  # SystemExit("message"): Python prints the message and exits with status 1
            status = 1
            stderr.write(f"{exit_.code}\n")
    except Exception:
        status = 1
        stderr.write(traceback.format_exc())
    finally:
        GlobalHydra.instance().clear()
        for handler in root.handlers:
            if handler not in saved_handlers:
                handler.close()
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        warnings.filters[:] = saved_filters
        for number, handler in saved_signals.items():
            signal.signal(number, handler)
        torch.set_num_threads(saved_torch[0])
        torch.use_deterministic_algorithms(saved_torch[1])
        os.chdir(saved_cwd)
        sys.argv = saved_argv
        sys.path[:] = saved_path
        for name, loaded in list(sys.modules.items()):  # the command's own modules from those entries
            if any(str(getattr(loaded, "__file__", None) or "").startswith(entry) for entry in added):
                del sys.modules[name]
        os.environ.clear()
        os.environ.update(saved_environment)
    return subprocess.CompletedProcess(command, status, stdout.getvalue(), stderr.getvalue())


def run_dirs(log_dir: Path) -> list[Path]:
    """Run directories (those holding metrics.json) below ``log_dir``, oldest first."""
    return sorted((p.parent for p in log_dir.rglob("metrics.json")), key=lambda p: p.stat().st_mtime)


@pytest.fixture
def tiny_demo():
    return TINY_DEMO


def built_once(tmp_path_factory: pytest.TempPathFactory, worker_id: str, name: str, build: Callable[[Path], Any]):
    """The folder ``name`` of this test session, made by ``build(folder)`` once for all xdist workers: the first
    worker that needs it builds it while holding a lock; the others wait and read it. Returns the folder."""
    shared = tmp_path_factory.getbasetemp()
    if worker_id != "master":  # (each xdist worker has a folder of its own inside the session's)
        shared = shared.parent
    folder, finished = shared / name, shared / f"{name}.finished"
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not finished.exists():
            shutil.rmtree(folder, ignore_errors=True)  # (a worker that failed while building it)
            build(folder)
            finished.touch()
    return folder


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory, worker_id) -> Path:
    """The run directory of one tiny demo run of the composite model A (all four components), trained once per test
    session (:func:`built_once`)."""

    def train(log_dir: Path) -> None:
        run_module("neurov1.train", *TINY_DEMO, "+model/components=all", log_dir=log_dir)

    (run_dir,) = run_dirs(built_once(tmp_path_factory, worker_id, "demo_all", train))
    return run_dir


@pytest.fixture(scope="session")
def stimulus_cache() -> Path:
    """A cache of generated Marques2020 stimuli shared by the V1 tests (and kept between test sessions)."""
    path = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "neurov1-tests"
    path.mkdir(parents=True, exist_ok=True)
    return path
