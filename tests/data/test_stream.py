"""The streaming store (neurov1.prepare, LitData chunks) and training from it, resumed mid-epoch."""

import io
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

from conftest import REPO, THREADS, TINY_DEMO, run_module
from neurov1.data import ImageNetStreamDataModule
from neurov1.data.store import read_manifest
from neurov1.data.synthetic import imagenet_like
from neurov1.errors import ConfigError

# Every test here writes or reads a real store (built once per module, about a minute): the end-to-end tier.
pytestmark = pytest.mark.e2e

PREPARE = ("data.num_workers=2", "shard_size=40")


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """An ImageNet-like folder: 10 classes, 8 train and 3 val images each, 500 px JPEGs."""
    return imagenet_like(tmp_path_factory.mktemp("source"), classes=10, train_per_class=8, val_per_class=3)


@pytest.fixture(scope="module")
def store(source, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("store") / "imagenet-stream"
    run_module("neurov1.prepare", f"data.root={source}", f"out={out}", *PREPARE, log_dir=out.parent / "logs")
    return out


def test_the_store_holds_every_image_re_encoded_with_its_label_and_original_size(source, store):
    from litdata import StreamingDataset

    manifest = read_manifest(str(store))
    assert manifest["classes"] == sorted(p.name for p in (source / "train").iterdir())
    assert manifest["counts"] == {"train": 80, "val": 30} and manifest["long_side"] == 320
    assert not (store / ".parts").exists()
    items = [StreamingDataset(str(store / "train"))[i] for i in range(80)]
    assert sorted(item["label"] for item in items) == sorted(list(range(10)) * 8)
    for item in items[:5]:
        with Image.open(io.BytesIO(item["image"])) as image:
            assert max(image.size) == 320 and image.format == "JPEG"
        assert max(item["width"], item["height"]) == 500  # the original's size, for the crop boxes


def test_batches_are_uint8_pixels_and_validation_is_complete(store):
    module = ImageNetStreamDataModule(str(store), batch_size=8, num_workers=0)
    assert module.num_classes == 10
    module.setup("fit")
    images, labels = next(iter(module.train_dataloader()))
    assert (images.shape, images.dtype, labels.shape) == ((8, 64, 64, 3), torch.uint8, (8,))
    assert module.device_transform(images).shape == (8, 3, 64, 64)
    validation = list(module.val_dataloader())
    assert sum(len(labels) for _, labels in validation) == 30


def test_a_killed_prepare_finishes_its_unfinished_shards_only(source, tmp_path):
    out = tmp_path / "store"
    command = [
        sys.executable,
        "-m",
        "neurov1.prepare",
        f"data.root={source}",
        f"out={out}",
        *PREPARE,
        f"paths.log_dir={tmp_path / 'logs'}",
    ]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (out / ".parts" / "train-00000" / "DONE").is_file():
        assert process.poll() is None and time.time() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = {path.name: path.stat().st_mtime_ns for path in (out / ".parts" / "train-00000" / "data").glob("*.bin")}
    run_module("neurov1.prepare", f"data.root={source}", f"out={out}", *PREPARE, log_dir=tmp_path / "logs")
    assert read_manifest(str(out))["counts"] == {"train": 80, "val": 30}
    kept = {path.name.split("-", 1)[1]: path.stat().st_mtime_ns for path in (out / "train").glob("part00000-*.bin")}
    assert kept == done  # the shard finished before the kill was moved into place, not written again


def test_a_store_of_other_settings_or_an_unfinished_one_is_refused(source, store, tmp_path):
    result = run_module(
        "neurov1.prepare",
        f"data.root={source}",
        f"out={store}",
        "long_side=256",
        *PREPARE,
        log_dir=tmp_path,
        check=False,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert (
        result.stderr.strip().splitlines()[-1].startswith(f"ConfigError: out={store} holds a store written with other")
    )
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "store.json").write_text(json.dumps({"complete": False}))
    with pytest.raises(ConfigError, match="is incomplete; finish it by running the same neurov1.prepare again"):
        read_manifest(str(tmp_path / "half"))
    with pytest.raises(ConfigError, match="is not a neurov1 store"):
        read_manifest(str(tmp_path))


def test_unreadable_images_are_named_or_skipped(source, tmp_path):
    broken = tmp_path / "source"
    subprocess.run(["cp", "-r", str(source), str(broken)], check=True)
    bad = sorted((broken / "train").rglob("*.JPEG"))[5]
    bad.write_bytes(bad.read_bytes()[:2000])
    out = tmp_path / "store"
    arguments = (f"data.root={broken}", f"out={out}", "data.verify=none", *PREPARE)
    result = run_module("neurov1.prepare", *arguments, log_dir=tmp_path / "logs", check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"cannot be decoded, e.g. {bad};" in result.stderr.strip().splitlines()[-1]
    run_module("neurov1.prepare", *arguments, "data.on_bad_image=skip", log_dir=tmp_path / "logs")
    manifest = read_manifest(str(out))
    assert manifest["counts"]["train"] == 79 and manifest["unreadable"][0].startswith(str(bad))


def test_training_from_the_store_resumes_mid_epoch_to_the_same_weights(store, tmp_path):
    """SIGKILL after a mid-epoch checkpoint; LitData's loader state (as of the last trained batch) resumes it."""
    overrides = [o for o in TINY_DEMO if not o.startswith(("data.", "trainer.max_epochs"))]
    overrides += [
        "data=imagenet_stream",
        f"data.root={store}",
        "data.batch_size=8",
        "data.num_workers=2",
        "data.pin_memory=false",
        "trainer.max_epochs=2",
        "callbacks.checkpoint.every_n_steps=4",
    ]
    environment = {"OMP_NUM_THREADS": THREADS, "PYTHONUNBUFFERED": "1"}

    def command(run_dir, *extra):
        return [
            sys.executable,
            "-m",
            "neurov1.train",
            *overrides,
            f"hydra.run.dir={run_dir}",
            f"paths.log_dir={tmp_path}",
            *extra,
        ]

    env = {**__import__("os").environ, **environment}
    reference = subprocess.run(command(tmp_path / "a"), cwd=REPO, env=env, capture_output=True, text=True)
    assert reference.returncode == 0, reference.stderr[-3000:]
    run_dir = tmp_path / "b"
    process = subprocess.Popen(command(run_dir), cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    step = run_dir / "checkpoints" / "step.ckpt"
    while True:  # a mid-epoch checkpoint of the second epoch (10 batches per epoch)
        try:
            if torch.load(step, weights_only=True)["global_step"] >= 12:
                break
        except (OSError, RuntimeError, EOFError):
            pass
        assert process.poll() is None, process.stderr.read()[-3000:]
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    resumed = subprocess.run(command(run_dir, f"ckpt_path={step}"), cwd=REPO, env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    expected, actual = (
        torch.load(d / "checkpoints" / "last.ckpt", weights_only=True) for d in (tmp_path / "a", run_dir)
    )
    assert actual["global_step"] == expected["global_step"] == 20
    assert (
        max((expected["state_dict"][k] - actual["state_dict"][k]).abs().max() for k in expected["state_dict"]) <= 1e-5
    )
    metrics = [json.loads((d / "metrics.json").read_text())["final"] for d in (tmp_path / "a", run_dir)]
    assert metrics[0] == pytest.approx(metrics[1], abs=1e-5)


def test_two_data_parallel_processes_share_out_the_store(store, tmp_path):
    overrides = [o for o in TINY_DEMO if not o.startswith(("data.", "trainer.max_epochs"))]
    overrides += [
        "data=imagenet_stream",
        f"data.root={store}",
        "data.batch_size=8",
        "data.num_workers=1",
        "data.pin_memory=false",
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.precision=32-true",
        "trainer.max_epochs=2",
    ]
    run_module("neurov1.train", *overrides, log_dir=tmp_path, process=True)  # (the second rank reruns its command)
    (metrics,) = tmp_path.rglob("metrics.json")
    result = json.loads(metrics.read_text())
    assert result["status"] == "completed" and result["global_step"] == 2 * 80 // (2 * 8)  # each process half
