"""Long runs that survive: kill -9, preemption, a full disk, divergence and bad input, on the demo data.

A reference run trains 3 epochs of 5 batches uninterrupted. Each fault-injection test runs the same training, hurts
it (SIGKILL at a seeded moment, a kill or a full disk in the middle of a checkpoint or ledger write, a SLURM
time-limit signal), resumes it, and compares the final weights and metrics.json with the reference.
"""

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import REPO, THREADS, TINY_DEMO, built_once, run_module
from neurov1.results.ledger import load_records

BATCHES_PER_EPOCH = 5  # 10 classes x 8 crops / batch 16
RUN = (
    *(o for o in TINY_DEMO if not o.startswith("trainer.max_epochs")),
    "trainer.max_epochs=3",
    "+model/components=all",
    "model.optimizer.lr=0.01",
    "model.scheduler.milestones=[1,2]",
    "callbacks.checkpoint.every_n_steps=3",  # step.ckpt at steps 3, 8, 13 (mid-epoch); last.ckpt at 5, 10, 15
)
# Runs the training entry point after executing PATCH (fault injection inside the training process).
PATCHED_ENTRY = """
import sys
exec(sys.argv.pop(1))
from neurov1.train import main, resume_in_run_folder
from neurov1.utils.cli import run
run(main, rewrite=resume_in_run_folder)
"""
COMPARED = ("epochs", "global_step", "final")


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    variables = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB", "SLURM"))}
    temporary = tmp_path / "tmp"
    temporary.mkdir(exist_ok=True)
    variables.update(OMP_NUM_THREADS=THREADS, PYTHONUNBUFFERED="1", TMPDIR=str(temporary), **extra)
    return variables


def start(run_dir: Path, *overrides: str, env: dict[str, str], patch: str | None = None) -> subprocess.Popen:
    """The training of RUN in ``run_dir`` (its folder fixed with hydra.run.dir), as a child process."""
    arguments = [*RUN, f"hydra.run.dir={run_dir}", f"paths.log_dir={run_dir.parent}", *overrides]
    command = [sys.executable, "-m", "neurov1.train", *arguments]
    if patch is not None:
        command = [sys.executable, "-c", PATCHED_ENTRY, patch, *arguments]
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen, returncode: int = 0) -> str:
    """Wait for the process; returns its stderr after checking the exit status."""
    out, err = process.communicate(timeout=900)
    assert process.returncode == returncode, f"exit {process.returncode}:\n{out[-2000:]}\n{err[-4000:]}"
    return err


def global_step(path: Path) -> int | None:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)["global_step"]
    except (OSError, RuntimeError, EOFError, KeyError):
        return None


def wait_for_checkpoint(process: subprocess.Popen, path: Path, step: int) -> None:
    """Until ``path`` holds a checkpoint of ``step`` or later."""
    deadline = time.time() + 600
    while (global_step(path) or -1) < step:
        assert process.poll() is None, f"the run ended first:\n{process.communicate()[1][-4000:]}"
        assert time.time() < deadline, f"no checkpoint {path} of step {step}"
        time.sleep(0.05)


def kill_at_seeded_moment(process: subprocess.Popen, seed: int, seconds: float = 0.5) -> None:
    """SIGKILL ``process`` a delay of up to ``seconds`` after now, drawn from ``seed`` (the same point on every run)."""
    delay = random.Random(seed).uniform(0, seconds)
    print(f"SIGKILL after {delay:.3f} s")
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    process.wait()


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]


def metrics(run_dir: Path) -> dict:
    text = (run_dir / "metrics.json").read_text()
    return json.loads(text, parse_constant=lambda name: pytest.fail(f"metrics.json is not strict JSON: {name}"))


def assert_same_run_as(reference: Path, run_dir: Path) -> None:
    """Same final weights (max abs difference <= 1e-5) and metrics.json metrics as the uninterrupted reference."""
    expected, actual = weights(reference), weights(run_dir)
    assert expected.keys() == actual.keys()
    difference = max((expected[k].double() - actual[k].double()).abs().max().item() for k in expected)
    assert difference <= 1e-5
    wanted, got = metrics(reference), metrics(run_dir)
    assert got["status"] == "completed"
    for key in COMPARED:
        assert got[key] == pytest.approx(wanted[key], abs=1e-5), key
    assert (got["best"]["value"], got["best"]["epoch"]) == (wanted["best"]["value"], wanted["best"]["epoch"])
    assert got["best"]["checkpoint"] == str(run_dir / "checkpoints" / "best.ckpt")


def assert_no_temporary_files(tmp_path: Path) -> None:
    """No temporary file in the test's folders, nor in the system temp folder the run was given (TMPDIR)."""
    leftovers = [p for p in tmp_path.rglob("*.tmp")] + [p for p in (tmp_path / "tmp").rglob("*") if p.is_file()]
    assert not leftovers, leftovers


def records(run_dir: Path, folder: Path | None = None) -> list[dict]:
    """The ledger records of ``run_dir`` (ledger: ``folder``, by default beside the run as ``start`` places it)."""
    folder = folder or run_dir.parent / "results"
    return (
        [r for r in load_records(folder) if r.get("run_dir") == str(run_dir)] if (folder / "records").is_dir() else []
    )


@pytest.fixture(scope="module")
def reference(tmp_path_factory, worker_id) -> Path:
    """The uninterrupted run (no DataLoader workers), trained once per test session (read only by the tests)."""

    def train(root: Path) -> None:
        root.mkdir()
        finish(start(root / "run", env=environment(root)))

    return built_once(tmp_path_factory, worker_id, "reliability_reference", train) / "run"


def test_reference_run_learns_and_keeps_the_best_epoch(reference):
    result = metrics(reference)
    assert result["status"] == "completed" and result["epochs"] == 3 and result["global_step"] == 15
    assert result["best"]["epoch"] >= 1  # the best checkpoint is not simply the first one
    assert {p.name for p in (reference / "checkpoints").iterdir()} == {"best.ckpt", "last.ckpt", "step.ckpt"}
    assert global_step(reference / "checkpoints" / "last.ckpt") == 15
    (record,) = records(reference)
    assert record["run_id"] == result["run_id"]


@pytest.mark.e2e
def test_killed_mid_epoch_resumes_from_its_step_checkpoint_to_the_same_result(reference, tmp_path):
    """SIGKILL at a seeded moment of epoch 1 or 2; resumed from step.ckpt; DataLoader workers change nothing."""
    run_dir, env = tmp_path / "run", environment(tmp_path)
    process = start(run_dir, "data.num_workers=2", env=env)
    wait_for_checkpoint(process, run_dir / "checkpoints" / "step.ckpt", 8)
    kill_at_seeded_moment(process, seed=1)
    resumed_from = global_step(run_dir / "checkpoints" / "step.ckpt")
    assert resumed_from % BATCHES_PER_EPOCH != 0  # a mid-epoch state
    run_id = torch.load(run_dir / "checkpoints" / "step.ckpt", weights_only=True)["neurov1_run"]["run_id"]
    err = finish(start(run_dir, "data.num_workers=2", f"ckpt_path={run_dir / 'checkpoints' / 'step.ckpt'}", env=env))
    assert "not resumable" not in err  # the data module resumes the loader itself
    assert_same_run_as(reference, run_dir)
    assert metrics(run_dir)["run_id"] == run_id and [r["run_id"] for r in records(run_dir)] == [run_id]
    assert [path.parent for path in tmp_path.rglob("metrics.json")] == [run_dir]  # the same folder, not a new one


@pytest.mark.e2e
def test_killed_after_an_epoch_resumes_from_last_ckpt_to_the_same_result(reference, tmp_path):
    """SIGKILL at a seeded moment after the first epoch; ``ckpt_path=<run>/checkpoints/last.ckpt`` (no folder given)."""
    run_dir, env = tmp_path / "run", environment(tmp_path)
    process = start(run_dir, env=env)
    wait_for_checkpoint(process, run_dir / "checkpoints" / "last.ckpt", BATCHES_PER_EPOCH)
    kill_at_seeded_moment(process, seed=2)
    last = run_dir / "checkpoints" / "last.ckpt"
    assert global_step(last) % BATCHES_PER_EPOCH == 0
    command = [sys.executable, "-m", "neurov1.train", *RUN, f"paths.log_dir={tmp_path}", f"ckpt_path={last}"]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    assert_same_run_as(reference, run_dir)  # continued in its own folder
    assert metrics(run_dir)["resumed_from"] == str(last)


KILL_DURING_CHECKPOINT_WRITE = """
import io, os, signal, torch
save = torch.save
def save_then_die(obj, handle):
    if isinstance(obj, dict) and obj.get("global_step") == 8:
        buffer = io.BytesIO()
        save(obj, buffer)
        handle.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
        handle.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    save(obj, handle)
torch.save = save_then_die
"""


@pytest.mark.e2e
def test_kill_during_a_checkpoint_write_keeps_the_previous_one_and_auto_resumes(reference, tmp_path):
    run_dir, env = tmp_path / "run", environment(tmp_path)
    finish(start(run_dir, env=env, patch=KILL_DURING_CHECKPOINT_WRITE), returncode=-signal.SIGKILL)
    checkpoints = run_dir / "checkpoints"
    assert global_step(checkpoints / "step.ckpt") == 3 and global_step(checkpoints / "last.ckpt") == 5
    assert_no_temporary_files(tmp_path)
    finish(start(run_dir, "ckpt_path=auto", env=env))
    assert_same_run_as(reference, run_dir)
    assert metrics(run_dir)["resumed_from"] == str(checkpoints / "last.ckpt")  # the newest readable one


FULL_DISK_DURING_CHECKPOINT_WRITE = """
import contextlib, errno, os
import neurov1.training.checkpoints as checkpoints
writer, step_writes = checkpoints.atomic_writer, []
class FullDisk:  # the file of the second step.ckpt: a disk that fills after 64 KB, under torch's own zip writer
    def __init__(self, handle):
        self.handle, self.written = handle, 0
    def write(self, data):
        if self.written + len(data) > 65536:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.written += len(data)
        return self.handle.write(data)
    def __getattr__(self, name):
        return getattr(self.handle, name)
@contextlib.contextmanager
def filling_writer(path, sync=True):
    with writer(path, sync) as handle:
        step_writes.extend([path] if str(path).endswith("step.ckpt") else [])
        yield FullDisk(handle) if str(path).endswith("step.ckpt") and len(step_writes) == 2 else handle
checkpoints.atomic_writer = filling_writer
"""


@pytest.mark.e2e
def test_a_full_disk_during_a_checkpoint_write_is_one_line_and_keeps_the_previous_checkpoint(tmp_path):
    run_dir, env = tmp_path / "run", environment(tmp_path)
    err = finish(start(run_dir, env=env, patch=FULL_DISK_DURING_CHECKPOINT_WRITE), returncode=1)
    step_checkpoint = run_dir / "checkpoints" / "step.ckpt"
    assert err.strip().splitlines()[-1] == (
        f"OutputWriteError: cannot write {step_checkpoint}: No space left on device (ENOSPC). Free space on that "
        "filesystem, or write elsewhere (e.g. paths.log_dir=<a folder with room>); a previous step.ckpt is unchanged."
    )
    assert "Traceback" not in err
    assert global_step(step_checkpoint) == 3
    assert_no_temporary_files(tmp_path)
    assert metrics(run_dir)["status"] == "failed" and not records(run_dir)
    assert "Traceback" in (run_dir / "train.log").read_text()  # the full story is in the run's log


KILL_DURING_LEDGER_WRITE = """
import os, signal, neurov1.results.ledger
from neurov1.utils.io import atomic_writer
def write_then_die(path, data):
    with atomic_writer(path) as handle:
        handle.write(b'{"kind": "tr')
        handle.flush()
        os.kill(os.getpid(), signal.SIGKILL)
neurov1.results.ledger.write_json_atomic = write_then_die
"""


@pytest.mark.e2e
def test_kill_during_the_ledger_write_leaves_no_record_and_a_rerun_records_the_run_once(reference, tmp_path):
    run_dir, env = tmp_path / "run", environment(tmp_path)
    finish(start(run_dir, env=env, patch=KILL_DURING_LEDGER_WRITE), returncode=-signal.SIGKILL)
    assert not records(run_dir) and metrics(run_dir)["status"] == "completed"
    assert_no_temporary_files(tmp_path)
    finish(start(run_dir, "ckpt_path=auto", env=env))  # nothing left to train: the bookkeeping is completed
    assert_same_run_as(reference, run_dir)
    (record,) = records(run_dir)
    assert record["run_id"] == metrics(run_dir)["run_id"]


@pytest.mark.e2e
@pytest.mark.parametrize(("received", "requeued"), [("SIGUSR2", True), ("SIGTERM", False)])
def test_slurm_signals_save_a_checkpoint_requeue_and_the_requeued_job_resumes(reference, tmp_path, received, requeued):
    """The signal path of a SLURM job, sent to a local run: a fake scontrol records the requeue."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scontrol = bin_dir / "scontrol"
    scontrol.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "scontrol.log"}\n')
    scontrol.chmod(0o755)
    job = {"SLURM_JOB_ID": "4242", "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    run_dir, env = tmp_path / "run", environment(tmp_path, **job)
    process = start(run_dir, env=env)
    wait_for_checkpoint(process, run_dir / "checkpoints" / "step.ckpt", 3)
    process.send_signal(getattr(signal, received))
    err = finish(process, returncode=1)
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"Preempted: {received} received; saved {run_dir / 'checkpoints'}/")
    assert line.endswith("(SLURM job 4242 requeued)" if requeued else "(not requeued)")
    assert "Traceback" not in err
    if requeued:
        assert (tmp_path / "scontrol.log").read_text() == "requeue 4242\n"
    else:
        assert not (tmp_path / "scontrol.log").exists()
    assert metrics(run_dir)["status"] == "preempted" and not records(run_dir)
    # the requeued job: the same command in the same folder; SLURM counts the restart
    finish(start(run_dir, env=environment(tmp_path, **job, SLURM_RESTART_COUNT="1")))
    assert_same_run_as(reference, run_dir)
    assert csv_rows(run_dir) == csv_rows(reference)  # no row lost at the step the signal stopped


def csv_rows(run_dir: Path) -> list[tuple[int, dict[str, float]]]:
    """The rows of the run's ``csv/metrics.csv``: (step, the metrics it holds, rounded)."""
    lines = (run_dir / "csv" / "metrics.csv").read_text().splitlines()
    header = lines[0].split(",")
    rows = []
    for line in lines[1:]:
        values = dict(zip(header, line.split(","), strict=True))
        rows.append((int(values.pop("step")), {k: round(float(v), 4) for k, v in values.items() if v}))
    return sorted(rows, key=lambda row: (row[0], sorted(row[1])))


def test_a_new_run_never_overwrites_the_checkpoints_of_an_earlier_one(reference, tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "last.ckpt").write_bytes((reference / "checkpoints" / "last.ckpt").read_bytes())
    err = finish(start(run_dir, env=environment(tmp_path)), returncode=1)
    assert err.strip().splitlines()[-1] == (
        f"ConfigError: ckpt_path=null but {run_dir / 'checkpoints'} holds the checkpoints of an earlier run. Resume "
        "it with ckpt_path=auto, or start a new run in another folder (drop hydra.run.dir)."
    )


def test_divergence_stops_at_once_with_one_line_and_saves_nothing_as_best(tmp_path):
    from neurov1.results.paper_tables import build_report

    result = run_module("neurov1.train", *TINY_DEMO, "model.optimizer.lr=1e6", log_dir=tmp_path, check=False)
    assert result.returncode == 1
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("Diverged: non-finite ") and "Lower the learning rate (model.optimizer.lr)" in line
    assert "Traceback" not in result.stderr
    (run_dir,) = [path.parent for path in tmp_path.rglob("metrics.json")]
    summary = metrics(run_dir)
    assert summary["status"] == "diverged" and summary["failure"].startswith("Diverged: non-finite ")
    best = run_dir / "checkpoints" / "best.ckpt"
    if best.exists():  # a best checkpoint from before the divergence may exist, but holds finite weights only
        state = torch.load(best, map_location="cpu", weights_only=True)["state_dict"]
        assert all(torch.isfinite(t).all() for t in state.values() if t.is_floating_point())
    (record,) = records(run_dir, tmp_path / "results")
    assert record["status"] == "diverged"
    report = build_report(tmp_path / "results", tmp_path / "report")
    (table,) = report["tables"]  # no Table 1 from a diverged run: only the list of failed runs
    assert table.title.startswith("Runs that did not complete") and table.rows[0][2] == "diverged"


def noise_jpeg_tree(root: Path, train_per_class: int = 8, val_per_class: int = 2) -> Path:
    """An ImageNet-style folder of real (noise) JPEGs, 3 classes."""
    from PIL import Image

    generator = torch.Generator().manual_seed(0)
    for wnid in ("n01", "n02", "n03"):
        for split, count in (("train", train_per_class), ("val", val_per_class)):
            (root / split / wnid).mkdir(parents=True, exist_ok=True)
            for index in range(count):
                pixels = torch.randint(0, 256, (72, 96, 3), generator=generator, dtype=torch.uint8).numpy()
                Image.fromarray(pixels).save(root / split / wnid / f"{wnid}_{index}.JPEG", quality=90)
    return root


@pytest.fixture
def truncated_jpeg_data(tmp_path) -> tuple[Path, Path, tuple[str, ...]]:
    """The data root, its one truncated JPEG (its header reads fine), and the overrides that train on it."""
    root = noise_jpeg_tree(tmp_path / "imagenet")
    bad = root / "train" / "n02" / "n02_3.JPEG"
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])
    demo = [o for o in TINY_DEMO if not o.startswith("data.")]
    data = ("data=imagenet", f"data.root={root}", "data.batch_size=4", "data.num_workers=2", "data.pin_memory=false")
    return root, bad, (*demo, *data, f"data.verify_cache={tmp_path / 'cache'}")


def test_a_truncated_jpeg_met_in_training_names_the_file_in_one_line(truncated_jpeg_data, tmp_path):
    _, bad, overrides = truncated_jpeg_data
    result = run_module("neurov1.train", *overrides, log_dir=tmp_path / "out", check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(f"ConfigError: data.root: cannot decode image {bad} (OSError: image file is truncated")
    assert line.endswith("or set data.on_bad_image=skip; data.verify=all finds every unreadable image before training.")
    (run_dir,) = [path.parent for path in (tmp_path / "out").rglob("metrics.json")]
    assert metrics(run_dir)["status"] == "failed"


def test_verify_all_finds_a_truncated_jpeg_before_training(truncated_jpeg_data, tmp_path):
    root, bad, overrides = truncated_jpeg_data
    result = run_module("neurov1.train", *overrides, "data.verify=all", log_dir=tmp_path / "out", check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(f"ConfigError: data.verify=all: 1 of 30 images under {root} cannot be decoded: {bad} (")
    assert "Remove or replace them, or train without them with data.on_bad_image=skip." in line
    assert not list((tmp_path / "out").rglob("*.ckpt"))  # stopped before training


def test_skipping_unreadable_images_trains_and_counts_them(truncated_jpeg_data, tmp_path):
    _, bad, overrides = truncated_jpeg_data
    run_module("neurov1.train", *overrides, "data.on_bad_image=skip", log_dir=tmp_path / "out")
    (run_dir,) = [path.parent for path in (tmp_path / "out").rglob("metrics.json")]
    data = metrics(run_dir)["data"]
    assert data["unreadable_images_skipped"] == 1 and data["unreadable_files"] == [str(bad)]


def test_full_verification_is_paid_once_per_folder(tmp_path):
    from neurov1.data.verify import verify_decodes

    root = noise_jpeg_tree(tmp_path / "data", train_per_class=3, val_per_class=1)
    paths = sorted(root.rglob("*.JPEG"))
    assert verify_decodes(root, paths, workers=2, cache_dir=tmp_path / "cache") == len(paths)
    assert verify_decodes(root, paths, workers=2, cache_dir=tmp_path / "cache") == 0
    paths[0].write_bytes(paths[1].read_bytes())  # a changed file is decoded again
    assert verify_decodes(root, paths, workers=2, cache_dir=tmp_path / "cache") == 1


def test_auto_resume_takes_the_newest_readable_checkpoint(reference, tmp_path):
    from neurov1.training.checkpoints import newest_checkpoint

    folder = tmp_path / "checkpoints"
    folder.mkdir()
    for name in ("last.ckpt", "step.ckpt"):
        (folder / name).write_bytes((reference / "checkpoints" / name).read_bytes())
    assert newest_checkpoint(folder) == folder / "last.ckpt"  # step 15 (end of training) beats step 13
    last = (folder / "last.ckpt").read_bytes()
    (folder / "last.ckpt").write_bytes(last[: len(last) // 3])
    assert newest_checkpoint(folder) == folder / "step.ckpt"  # the truncated one is skipped
    (folder / "step.ckpt").write_text("not a checkpoint")
    assert newest_checkpoint(folder) is None


@pytest.fixture
def readonly_folder(tmp_path):
    """A folder nobody may write in, root included (immutable attribute), or skip where that cannot be made."""
    folder = tmp_path / "readonly"
    folder.mkdir()
    if os.geteuid() == 0:
        if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
            pytest.skip("running as root without chattr +i: no read-only folder can be made")
        yield folder
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    else:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)


class Payload:
    """A pickled object whose unpickling would run a shell command (creating ``marker``)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def write_weights_only(path: Path, reference: Path) -> Path:
    checkpoint = torch.load(reference / "checkpoints" / "last.ckpt", weights_only=True)
    torch.save({"state_dict": checkpoint["state_dict"], "hyper_parameters": checkpoint["hyper_parameters"]}, path)
    return path


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("max_epochs", "ConfigError: trainer.max_epochs: must be a positive integer, got 0. Set e.g. "),
        ("text_ckpt", "ConfigError: ckpt_path={file}: not a readable checkpoint (no zip directory at its end)"),
        ("truncated_ckpt", "ConfigError: ckpt_path={file}: not a readable checkpoint (no zip directory at its end)"),
        ("foreign_ckpt", "ConfigError: ckpt_path={file}: not a neurov1 checkpoint (no hyper_parameters.net)"),
        ("weights_ckpt", "ConfigError: ckpt_path={file} holds weights only, no training state to resume."),
        ("corrupt_init", "ConfigError: ckpt_init={file}: not a readable checkpoint (no zip directory at its end)"),
        ("readonly_log_dir", "ConfigError: paths.log_dir: cannot write to {file}/out ("),
        ("cortical_mag_size", "ConfigError: model.net.components.cortical_mag.radius_bins: ring [0.5, 1) lies inside "),
        (
            "pickle_ckpt",
            "ConfigError: ckpt_path={file}: holds Python objects that torch's safe loader (weights_only=True) ",
        ),
        (
            "quoted_milestones",
            "ConfigError: model.scheduler.milestones: must be a list of integers, got '[1]' (quoted: ",
        ),
        ("late_milestones", "ConfigError: model.scheduler.milestones: must be increasing epochs in 1..trainer.max_epo"),
        ("negative_lr", "ConfigError: model.optimizer.lr: must be > 0, got -0.1. Set e.g. model.optimizer.lr=0.1."),
        ("text_lr", "ConfigError: model.optimizer.lr: must be a number, got 'abc'. Set e.g. model.optimizer.lr=0.1."),
        ("batch_size", "ConfigError: data.batch_size: must be an integer, got 1.5. Set e.g. data.batch_size=128."),
        ("precision", "ConfigError: trainer.precision: must be one of 64, 32, 16, transformer-engine, "),
        ("monitor", "ConfigError: callbacks.checkpoint.monitor='val/acc' is not a metric of this run. Did you mean "),
    ],
)
def test_bad_input_is_one_line_before_any_work(reference, tmp_path, case, message, request):
    file = tmp_path / "input.ckpt"
    last = (reference / "checkpoints" / "last.ckpt").read_bytes()
    overrides = {
        "max_epochs": ["trainer.max_epochs=0"],
        "text_ckpt": [f"ckpt_path={file}"],
        "truncated_ckpt": [f"ckpt_path={file}"],
        "foreign_ckpt": [f"ckpt_path={file}"],
        "weights_ckpt": [f"ckpt_path={file}"],
        "corrupt_init": [f"ckpt_init={file}"],
        "readonly_log_dir": [],
        "cortical_mag_size": ["data.image_size=32", "model.net.input_size=32", "+model/components=[cortical_mag]"],
        "pickle_ckpt": [f"ckpt_path={file}"],
        "quoted_milestones": ['model.scheduler.milestones="[1]"'],
        "late_milestones": ["model.scheduler.milestones=[5,7]"],
        "negative_lr": ["model.optimizer.lr=-0.1"],
        "text_lr": ["model.optimizer.lr=abc"],
        "batch_size": ["data.batch_size=1.5"],
        "precision": ["trainer.precision=17"],
        "monitor": ["callbacks.checkpoint.monitor=val/acc"],
    }[case]
    if case in ("text_ckpt", "corrupt_init"):
        file.write_text("epoch 3, step 15\n")
    elif case == "truncated_ckpt":
        file.write_bytes(last[: len(last) // 2])
    elif case == "foreign_ckpt":
        torch.save({"model": torch.zeros(3)}, file)
    elif case == "weights_ckpt":
        write_weights_only(file, reference)
    elif case == "pickle_ckpt":
        torch.save({"payload": Payload(tmp_path / "payload-ran")}, file)
    log_dir = tmp_path / "out"
    if case == "readonly_log_dir":
        file = request.getfixturevalue("readonly_folder")
        log_dir = file / "out"
    components = ["+model/components=all"] if case.endswith("_ckpt") or case == "corrupt_init" else []
    started = time.time()
    result = run_module("neurov1.train", *TINY_DEMO, *components, *overrides, log_dir=log_dir, check=False)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith(message.format(file=file)), lines[-1]
    assert sum(line.startswith("ConfigError") for line in lines) == 1 and "ConfigError" not in result.stdout
    assert not list(log_dir.rglob("*.ckpt")) and not list(log_dir.rglob("metrics.json"))  # no work started
    assert not (tmp_path / "payload-ran").exists()
    assert time.time() - started < 60


@pytest.mark.e2e
def test_two_runs_started_in_one_folder_one_runs_and_the_other_is_refused_naming_it(tmp_path):
    """Seeds 0 and 1 in the same hydra.run.dir at the same moment: one run writes the folder, the other stops."""
    run_dir, env = tmp_path / "run", environment(tmp_path)
    processes = {seed: start(run_dir, f"seed={seed}", env=env) for seed in (0, 1)}
    outcomes = {seed: (process.communicate(timeout=900), process.returncode) for seed, process in processes.items()}
    (winner,) = [seed for seed, (_, code) in outcomes.items() if code == 0]
    (loser,) = [seed for seed, (_, code) in outcomes.items() if code != 0]
    assert outcomes[loser][1] == 1
    line = outcomes[loser][0][1].strip().splitlines()[-1]
    holder = f"(pid {processes[winner].pid} on {socket.gethostname()}, started "
    assert line.startswith(f"ConfigError: hydra.run.dir={run_dir}: another run is writing this folder {holder}")
    assert "neurov1.train" in line and f"seed={winner}" in line
    assert metrics(run_dir)["seed"] == winner and metrics(run_dir)["status"] == "completed"
    assert f"seed={winner}" in (run_dir / ".hydra" / "overrides.yaml").read_text()
    (record,) = records(run_dir)
    assert record["seed"] == winner
    assert not (run_dir / ".neurov1.lock").exists()  # let go when the run ended


HOLD_FOLDER = """
import os, sys, time
from neurov1.utils.folder_lock import hold_run_folder
with hold_run_folder(sys.argv[1]):
    worker = os.fork()  # as a data loader forks its workers: the child outlives a killed holder for a while
    if worker == 0:
        time.sleep(600)
        os._exit(0)
    print("held", worker, flush=True)
    time.sleep(600)
"""


def test_a_folder_lock_names_its_holder_and_is_taken_over_once_the_holder_is_killed(tmp_path):
    from neurov1.errors import ConfigError
    from neurov1.utils.folder_lock import hold_run_folder

    folder = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_FOLDER, str(folder)], stdout=subprocess.PIPE, text=True)
    said, worker = holder.stdout.readline().split()
    assert said == "held"
    with pytest.raises(ConfigError, match=rf"another run is writing this folder \(pid {holder.pid} on "):
        with hold_run_folder(folder):
            pass
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert (folder / ".neurov1.lock").exists()  # left behind by the killed holder: a stale lock
    try:  # taken over while the holder's forked worker still runs: the lock was the holder's alone
        with hold_run_folder(folder):
            assert str(os.getpid()) in (folder / ".neurov1.lock").read_text()
            with hold_run_folder(folder):  # the same process again: already held
                pass
    finally:
        os.kill(int(worker), signal.SIGKILL)
    assert not (folder / ".neurov1.lock").exists()


def copy_run(reference: Path, run_dir: Path) -> Path:
    shutil.copytree(reference, run_dir)
    return run_dir


def test_a_resume_that_changes_the_run_is_refused_listing_each_change(reference, tmp_path):
    run_dir, env = copy_run(reference, tmp_path / "run"), environment(tmp_path)
    before = metrics(run_dir)
    err = finish(start(run_dir, "ckpt_path=auto", "seed=1", "trainer.max_epochs=4", env=env), returncode=1)
    last = run_dir / "checkpoints" / "last.ckpt"
    assert err.strip().splitlines()[-1] == (
        f"ConfigError: ckpt_path={last}: this resume would change the run it continues: data.shuffle_seed 0 -> 1; "
        "seed 0 -> 1. Resume with the run's own settings, start a new run in another folder (drop ckpt_path), or "
        "accept the change deliberately with accept_resume_changes=[data.shuffle_seed,seed] (recorded in "
        "metrics.json)."
    )
    assert metrics(run_dir) == before  # not relabelled
    step = run_dir / "checkpoints" / "step.ckpt"  # mid-epoch: another batch size would train samples twice
    err = finish(start(run_dir, f"ckpt_path={step}", "data.batch_size=8", env=env), returncode=1)
    assert "this resume would change the run it continues: data.batch_size 16 -> 8." in err.strip().splitlines()[-1]


@pytest.mark.e2e
def test_changes_that_cannot_alter_the_run_are_allowed_and_recorded_and_others_can_be_accepted(reference, tmp_path):
    run_dir, env = copy_run(reference, tmp_path / "run"), environment(tmp_path)
    finish(start(run_dir, "ckpt_path=auto", "trainer.max_epochs=4", "data.num_workers=1", env=env))
    (resume,) = metrics(run_dir)["resumes"]
    assert resume["changes"]["trainer.max_epochs"] == [3, 4] and resume["changes"]["data.num_workers"] == [0, 1]
    assert resume["accepted"] == [] and resume["global_step"] == 15 and metrics(run_dir)["global_step"] == 20
    accepted = ("accept_resume_changes=[model.optimizer]", "model.optimizer.lr=0.001")
    finish(start(run_dir, "ckpt_path=auto", "trainer.max_epochs=5", *accepted, env=env))
    first, second = metrics(run_dir)["resumes"]
    assert first == resume and second["accepted"] == ["model.optimizer.lr"]
    assert second["changes"]["model.optimizer.lr"] == [0.01, 0.001] and metrics(run_dir)["epochs"] == 5


@pytest.fixture
def small_filesystem(tmp_path):
    """A tmpfs of 150 MB mounted for the test (root only; skipped where mounting is not allowed)."""
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=150m", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


def test_a_full_disk_is_one_line_and_metrics_json_records_it(small_filesystem, tmp_path):
    """A real full filesystem under the run folder: the baseline ResNet-18 checkpoint (about 90 MB with its
    optimizer state: one fits) fills it at the second checkpoint."""
    run_dir, env = small_filesystem / "run", environment(tmp_path)
    overrides = [o for o in RUN if o != "+model/components=all"]
    command = [sys.executable, "-m", "neurov1.train", *overrides, f"hydra.run.dir={run_dir}"]
    result = subprocess.run(
        [*command, f"paths.log_dir={tmp_path / 'logs'}"], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert result.returncode == 1, result.stderr[-3000:]
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(f"OutputWriteError: cannot write {run_dir / 'checkpoints'}/") and "(ENOSPC)" in line
    assert "Traceback" not in result.stderr and "enforce fail" not in result.stderr
    summary = metrics(run_dir)
    assert summary["status"] == "failed" and summary["failure"].startswith("OutputWriteError: cannot write")
    assert global_step(run_dir / "checkpoints" / "step.ckpt") == 3  # the previous checkpoint is intact


def test_resuming_in_a_folder_whose_path_has_quotes_leaves_no_stray_folder(reference, tmp_path):
    from neurov1.utils.cli import hydra_quoted

    run_dir = copy_run(reference, tmp_path / """it's a "run\\" """.strip())
    checkpoint = hydra_quoted(str(run_dir / "checkpoints" / "last.ckpt"))  # as Hydra wants such a path quoted
    command = [sys.executable, "-m", "neurov1.train", *RUN, f"ckpt_path={checkpoint}"]
    result = subprocess.run(
        [*command, f"paths.log_dir={tmp_path}"], cwd=REPO, env=environment(tmp_path), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]  # (finished: it completes its bookkeeping)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([run_dir.name, "results", "tmp"])
