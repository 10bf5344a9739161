"""The GPU check (``make bench-gpu``): what one GPU node does with the paper's ImageNet-64 recipe.

On a synthetic ImageNet-like folder (no download) and a streaming store of it:

1. the data path with every CPU core as DataLoader workers (images/s the node can feed), fast folder and store;
2. end-to-end training of ``experiment=paper_imagenet64`` (ResNet-50, 1000 classes, SGD, batch ``--batch``, bf16
   autocast, channels-last) from the store, for the baseline and ``+model/components=all``, eager and compiled:
   images/s after warm-up (the compilation excluded), peak GPU memory, and the hours 100 ImageNet epochs
   (1,281,167 images each) would take at that rate.
"""

import os
import time
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader

from neurov1.bench.data import build_inputs
from neurov1.bench.model import ALL
from neurov1.data import ImageNetDataModule, ImageNetStreamDataModule
from neurov1.training.module import NeuroV1Module

IMAGENET_TRAIN = 1_281_167
EPOCHS = 100
SGD = {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-5}


def loader_rate(loader: DataLoader, batches: int, warmup: int) -> float:
    """Images/s of a loader over ``batches`` batches after ``warmup`` (epochs are cycled)."""

    def endless():
        while True:
            yield from loader

    stream = endless()
    for _ in range(warmup):
        next(stream)
    started, images = time.perf_counter(), 0
    for _ in range(batches):
        images += len(next(stream)[1])
    return images / (time.perf_counter() - started)


class StepTimer(L.Callback):
    """Times the training steps after ``warmup`` of them (the first ones compile and fill the pipeline)."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.images = 0
        self.started: float | None = None
        self.seconds = 0.0

    def on_train_batch_start(self, trainer: L.Trainer, module: L.LightningModule, batch, batch_idx: int) -> None:
        if trainer.global_step == self.warmup:
            if module.device.type == "cuda":
                torch.cuda.synchronize()
            self.started = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, outputs, batch, batch_idx: int) -> None:
        if self.started is not None:
            self.images += len(batch[1])

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if module.device.type == "cuda":
            torch.cuda.synchronize()
        self.seconds = time.perf_counter() - self.started if self.started else float("nan")


def training_rate(
    store: Path, components: dict, compiled: bool, device: str, batch: int, steps: int, warmup: int
) -> dict:
    """End-to-end training images/s and peak memory of ResNet-50 with ``components`` from the store."""
    workers = len(os.sched_getaffinity(0))
    data = ImageNetStreamDataModule(str(store), batch_size=batch, num_workers=workers, pin_memory=device == "cuda")
    net = {"arch": "resnet50", "num_classes": 1000, "input_size": 64, "components": components}
    model = NeuroV1Module(net, SGD, {"milestones": [60, 80], "gamma": 0.1}, compile=compiled)
    timer = StepTimer(warmup)
    trainer = L.Trainer(
        accelerator=device,
        devices=1,
        precision="bf16-mixed" if device == "cuda" else "32-true",
        max_steps=warmup + steps,
        max_epochs=-1,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
        callbacks=[timer],
    )
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    trainer.fit(model, datamodule=data)
    rate = timer.images / timer.seconds
    return {
        "model": "all" if components else "baseline",
        "compiled": compiled,
        "images_per_s": rate,
        "peak_memory_gb": torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None,
        "hours_for_100_epochs": IMAGENET_TRAIN * EPOCHS / rate / 3600,
    }


def gpu_rows(work: Path, device: str, batch: int, steps: int, warmup: int, compile_too: bool, images: int) -> dict:
    root, store = build_inputs(None, work, images)
    workers = len(os.sched_getaffinity(0))
    folder = ImageNetDataModule(root, batch_size=batch, num_workers=workers, pin_memory=device == "cuda")
    stream = ImageNetStreamDataModule(str(store), batch_size=batch, num_workers=workers, pin_memory=device == "cuda")
    data = []
    for name, module in (("folder, decode=fast", folder), ("streaming store", stream)):
        module.setup("fit")
        data.append(
            {"path": name, "workers": workers, "images_per_s": loader_rate(module.train_dataloader(), steps, warmup)}
        )
    training = [
        training_rate(store, components, compiled, device, batch, steps, warmup)
        for components in ({}, ALL)
        for compiled in ((False, True) if compile_too else (False,))
    ]
    name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    return {"device": name, "batch": batch, "steps": steps, "data": data, "training": training}


def markdown(result: dict) -> str:
    lines = [
        f"GPU check on {result['device']}: batch {result['batch']}, {result['steps']} timed steps",
        "",
        "| data path (all CPU cores) | workers | images/s |",
        "|---|---|---|",
        *[f"| {r['path']} | {r['workers']} | {r['images_per_s']:.0f} |" for r in result["data"]],
        "",
        "| model (ResNet-50, bf16, channels-last) | compiled | images/s end to end | peak memory (GB) | 100 epochs |",
        "|---|---|---|---|---|",
        *[
            f"| {r['model']} | {'yes' if r['compiled'] else 'no'} | {r['images_per_s']:.0f} | "
            f"{'n/a' if r['peak_memory_gb'] is None else format(r['peak_memory_gb'], '.1f')} | "
            f"{r['hours_for_100_epochs']:.1f} h |"
            for r in result["training"]
        ],
    ]
    return "\n".join(lines) + "\n"
