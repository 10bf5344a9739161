"""Head-only fine-tuning (paper Sec. 3.2) and five-crop evaluation (paper Discussion)."""

import json

import pytest
import torch
from PIL import Image

from conftest import ALL, TINY_DEMO, run_dirs, run_module
from neurov1.data import DemoDataModule
from neurov1.data.transforms import imagenet_five_crop_transform, imagenet_val_transform

FINETUNE = ["experiment=finetune_tiny_imagenet", "data=demo", "trainer=cpu", *TINY_DEMO[1:], "eval.five_crop=true"]


def state(path):
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


@pytest.mark.parametrize("batchnorm", ["train", "eval"])
def test_only_the_head_changes(demo_run, tmp_path, batchnorm):
    initial = demo_run / "checkpoints" / "last.ckpt"
    run_module("neurov1.train", *FINETUNE, f"ckpt_init={initial}", f"finetune.batchnorm={batchnorm}", log_dir=tmp_path)
    (run_dir,) = run_dirs(tmp_path)
    before, after = state(initial), state(run_dir / "checkpoints" / "last.ckpt")
    statistics = ("running_mean", "running_var", "num_batches_tracked")
    changed = {key for key in before if key.startswith("net.") and not torch.equal(before[key], after[key])}
    assert {"net.fc.weight", "net.fc.bias"} <= changed
    moved_statistics = {key for key in changed if key.endswith(statistics)}
    assert changed - moved_statistics == {"net.fc.weight", "net.fc.bias"}, "frozen weights must not change"
    assert bool(moved_statistics) == (batchnorm == "train")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["components"] == ALL  # from ckpt_init
    assert metrics["finetune"] == {"batchnorm": batchnorm} and "val/acc1_five_crop" in metrics["final"]


def test_finetune_refuses_another_component_set(demo_run, tmp_path):
    initial = demo_run / "checkpoints" / "last.ckpt"
    result = run_module(
        "neurov1.train",
        *FINETUNE,
        f"ckpt_init={initial}",
        "+model/components=tuned_norm",
        log_dir=tmp_path,
        check=False,
    )
    assert result.returncode != 0 and "Drop +model/components: the model is taken from ckpt_init" in result.stderr


def test_five_crop_centre_view_is_the_single_crop_evaluation():
    image = Image.fromarray(torch.randint(0, 256, (300, 400, 3), dtype=torch.uint8).numpy())
    views = imagenet_five_crop_transform()(image)
    assert views.shape == (5, 3, 64, 64)
    torch.testing.assert_close(views[4], imagenet_val_transform()(image))
    assert not torch.equal(views[0], views[4])


def test_demo_five_crop_batches():
    data = DemoDataModule(train_per_class=4, val_per_class=2, batch_size=4, five_crop=True)
    data.setup("validate")
    images, labels = next(iter(data.val_dataloader()))
    assert images.shape == (4, 5, 3, 64, 64) and labels.shape == (4,)
