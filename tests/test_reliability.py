"""Long runs that survive: kill -9, preemption, a full disk, divergence and bad input, on the demo data.

A reference run trains 3 epochs of 5 batches uninterrupted. Each fault-injection test runs the same training, hurts
it (SIGKILL at a random moment, a kill or a full disk in the middle of a checkpoint or ledger write, a SLURM
time-limit signal), resumes it, and compares the final weights and metrics.json with the reference.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import REPO, THREADS, TINY_DEMO, run_module
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


def kill_at_random_moment(process: subprocess.Popen, seconds: float = 0.5) -> None:
    delay = random.uniform(0, seconds)
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
def reference(tmp_path_factory) -> Path:
    """The uninterrupted run (no DataLoader workers)."""
    root = tmp_path_factory.mktemp("reference")
    finish(start(root / "run", env=environment(root)))
    return root / "run"


def test_reference_run_learns_and_keeps_the_best_epoch(reference):
    result = metrics(reference)
    assert result["status"] == "completed" and result["epochs"] == 3 and result["global_step"] == 15
    assert result["best"]["epoch"] >= 1  # the best checkpoint is not simply the first one
    assert {p.name for p in (reference / "checkpoints").iterdir()} == {"best.ckpt", "last.ckpt", "step.ckpt"}
    assert global_step(reference / "checkpoints" / "last.ckpt") == 15
    (record,) = records(reference)
    assert record["run_id"] == result["run_id"]


def test_killed_mid_epoch_resumes_from_its_step_checkpoint_to_the_same_result(reference, tmp_path):
    """SIGKILL at a random moment of epoch 1 or 2; resumed from step.ckpt; DataLoader workers change nothing."""
    run_dir, env = tmp_path / "run", environment(tmp_path)
    process = start(run_dir, "data.num_workers=2", env=env)
    wait_for_checkpoint(process, run_dir / "checkpoints" / "step.ckpt", 8)
    kill_at_random_moment(process)
    resumed_from = global_step(run_dir / "checkpoints" / "step.ckpt")
    assert resumed_from % BATCHES_PER_EPOCH != 0  # a mid-epoch state
    run_id = torch.load(run_dir / "checkpoints" / "step.ckpt", weights_only=True)["neurov1_run"]["run_id"]
    finish(start(run_dir, "data.num_workers=2", f"ckpt_path={run_dir / 'checkpoints' / 'step.ckpt'}", env=env))
    assert_same_run_as(reference, run_dir)
    assert metrics(run_dir)["run_id"] == run_id and [r["run_id"] for r in records(run_dir)] == [run_id]
    assert [path.parent for path in tmp_path.rglob("metrics.json")] == [run_dir]  # the same folder, not a new one


def test_killed_after_an_epoch_resumes_from_last_ckpt_to_the_same_result(reference, tmp_path):
    """SIGKILL at a random moment after the first epoch; ``ckpt_path=<run>/checkpoints/last.ckpt`` (no folder given)."""
    run_dir, env = tmp_path / "run", environment(tmp_path)
    process = start(run_dir, env=env)
    wait_for_checkpoint(process, run_dir / "checkpoints" / "last.ckpt", BATCHES_PER_EPOCH)
    kill_at_random_moment(process)
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
import errno, io, os, torch
save = torch.save
def save_until_full(obj, handle):
    if isinstance(obj, dict) and obj.get("global_step") == 8:
        handle.write(b"x" * 4096)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    save(obj, handle)
torch.save = save_until_full
"""


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


def test_kill_during_the_ledger_write_leaves_no_record_and_a_rerun_records_the_run_once(reference, tmp_path):
    run_dir, env = tmp_path / "run", environment(tmp_path)
    finish(start(run_dir, env=env, patch=KILL_DURING_LEDGER_WRITE), returncode=-signal.SIGKILL)
    assert not records(run_dir) and metrics(run_dir)["status"] == "completed"
    assert_no_temporary_files(tmp_path)
    finish(start(run_dir, "ckpt_path=auto", env=env))  # nothing left to train: the bookkeeping is completed
    assert_same_run_as(reference, run_dir)
    (record,) = records(run_dir)
    assert record["run_id"] == metrics(run_dir)["run_id"]


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
    }[case]
    if case in ("text_ckpt", "corrupt_init"):
        file.write_text("epoch 3, step 15\n")
    elif case == "truncated_ckpt":
        file.write_bytes(last[: len(last) // 2])
    elif case == "foreign_ckpt":
        torch.save({"model": torch.zeros(3)}, file)
    elif case == "weights_ckpt":
        write_weights_only(file, reference)
    log_dir = tmp_path / "out"
    if case == "readonly_log_dir":
        file = request.getfixturevalue("readonly_folder")
        log_dir = file / "out"
    components = [] if case in ("max_epochs", "readonly_log_dir", "cortical_mag_size") else ["+model/components=all"]
    started = time.time()
    result = run_module("neurov1.train", *TINY_DEMO, *components, *overrides, log_dir=log_dir, check=False)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith(message.format(file=file)), lines[-1]
    assert sum(line.startswith("ConfigError") for line in lines) == 1
    assert not list(log_dir.rglob("*.ckpt")) and not list(log_dir.rglob("metrics.json"))  # no work started
    assert time.time() - started < 60
