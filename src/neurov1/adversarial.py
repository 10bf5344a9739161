"""Free adversarial training (paper Sec. 4.5, Appendix G, Table 4) and L-inf PGD evaluation, in [0, 1] pixel space.

Free AT (Shafahi et al. 2019, "Adversarial training for free!", Alg. 1; facts: robustness-facts.md, "Free
adversarial training"): one perturbation delta, zero at the start and never reset, carried across the m replays of
a minibatch and across minibatches. Each replay: x_adv = clamp(x + delta, 0, 1), normalise, forward, loss; one
backward gives the weight gradients and g = dloss/ddelta; an optimizer step; delta <- clamp(delta + eps sign(g),
-eps, eps). Passing over the data ceil(epochs / m) times makes as many updates as standard training.

PGD (Madry et al. 2018): from x0 (or a uniform random point of the eps-ball around it), ``steps`` times
x <- clamp(x + alpha sign(grad_x loss), x0 - eps, x0 + eps) clamped to [0, 1].
"""

import bisect
import math
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Subset
from tqdm import tqdm

from neurov1.data.folders import make_loader
from neurov1.data.transforms import per_channel
from neurov1.errors import ConfigError, check_int
from neurov1.module import NeuroV1Module
from neurov1.utils.io import write_json_atomic, write_text_atomic
from neurov1.utils.tables import Table, csv_text, fmt

CSV_COLUMNS = ["model", "eps", "steps", "step_size", "random_start", "images", "clean_acc1", "acc1"]


def check_fraction(value: object, key: str, suggestion: str, positive: bool = False) -> float:
    """A number in [0, 1] ((0, 1] with ``positive``): an L-inf radius or step in [0, 1] pixel units."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or not (0 < value <= 1 if positive else 0 <= value <= 1):
        interval = "(0, 1]" if positive else "[0, 1]"
        raise ConfigError(f"{key}: must be a number in {interval} (pixel units), got {value!r}. Set {suggestion}.")
    return float(value)


@dataclass(frozen=True)
class PixelSpace:
    """The data's per-channel normalisation and its inverse: perturbations live in [0, 1] pixels."""

    mean: Tensor  # (1, 3, 1, 1)
    std: Tensor

    @classmethod
    def of(cls, datamodule: L.LightningDataModule, device: torch.device) -> "PixelSpace":
        """The ``mean``/``std`` the data module normalises its images with (``data.mean``, ``data.std``)."""
        mean, std = (
            torch.tensor(per_channel(getattr(datamodule, name), f"data.{name}"), device=device).view(1, 3, 1, 1)
            for name in ("mean", "std")
        )
        return cls(mean, std)

    def pixels(self, images: Tensor) -> Tensor:
        """Normalised images -> [0, 1] pixels."""
        return images * self.std + self.mean

    def normalize(self, pixels: Tensor) -> Tensor:
        """[0, 1] pixels -> the network's input."""
        return (pixels - self.mean) / self.std


def free_step(delta: Tensor, grad: Tensor, eps: float) -> Tensor:
    """delta <- clamp(delta + eps sign(grad), -eps, eps) (Shafahi et al. 2019, Alg. 1).

    A gradient with a non-finite value (an fp16 overflow the loss scaler will skip) leaves delta as it is; decided on
    the device, without a host synchronisation.
    """
    stepped = (delta + eps * grad.sign()).clamp(-eps, eps)
    return torch.where(torch.isfinite(grad).all(), stepped, delta)


def free_settings(adversarial: dict[str, Any]) -> dict[str, Any]:
    """Validated ``{replays, eps}`` (``model.adversarial``)."""
    unknown = sorted(set(adversarial) - {"replays", "eps"})
    if unknown:
        raise ConfigError(f"model.adversarial: unknown keys {unknown}; Free AT takes replays and eps.")
    check_int(adversarial.get("replays"), "model.adversarial.replays", 4)
    eps = check_fraction(adversarial.get("eps"), "model.adversarial.eps", "model.adversarial.eps=0.00784 (2/255)")
    return {"replays": adversarial["replays"], "eps": eps}


DELTA_KEY = "free_adversarial_delta"


class FreeAdversarialModule(NeuroV1Module):
    """:class:`NeuroV1Module` trained with Free adversarial training (manual optimisation).

    What a step and an epoch mean: ``trainer.max_epochs`` and ``scheduler.milestones`` are *effective* epochs, those
    of the standard schedule with as many updates (paper: 120 epochs, lr x0.1 every 40). At the start of fit the
    Trainer is set to pass over the data ceil(max_epochs / replays) times, so Lightning's epoch is one pass in which
    every batch is replayed m times; every replay is one optimizer update, so ``global_step`` counts updates and
    ``train/effective_epoch`` (logged) = updates / batches per pass. The learning rate follows the milestones update
    by update. ``train/loss`` and ``train/acc1`` are measured on the perturbed inputs of every replay. Validation is
    clean. The perturbation is saved in every checkpoint (under ``free_adversarial_delta``), so a resumed run carries
    on with it; under DDP each process keeps its own and the checkpoint holds rank 0's.

    Args:
        adversarial: ``replays`` (m) and ``eps`` (L-inf radius in [0, 1] pixels); the other arguments are
            :class:`NeuroV1Module`'s.
    """

    def __init__(self, *args: Any, adversarial: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, adversarial=free_settings(adversarial or {}), **kwargs)
        self.automatic_optimization = False
        self.delta: Tensor | None = None  # (batch, C, H, W) in [0, 1] pixel units, carried across batches
        self.pixel_space: PixelSpace | None = None

    def setup(self, stage: str) -> None:
        """Read ``trainer.max_epochs`` as effective epochs: pass over the data ceil(max_epochs / replays) times.

        (-1, unlimited, stays unlimited.) A Trainer fits this module once: setup converts its ``max_epochs``.
        """
        super().setup(stage)
        loop = self.trainer.fit_loop
        if stage == "fit" and loop.max_epochs > 0:
            loop.max_epochs = math.ceil(loop.max_epochs / self.hparams["adversarial"]["replays"])

    def on_fit_start(self) -> None:
        self.pixel_space = PixelSpace.of(self.trainer.datamodule, self.device)
        if self.delta is not None:  # resumed: loaded on the CPU before the module moved to its device
            self.delta = self.delta.to(self.device)

    def configure_optimizers(self) -> dict[str, Any]:
        """SGD with the learning rate x gamma at each milestone (effective epochs), stepped every update."""
        optimizer = self.build_optimizer()
        schedule = self.hparams["scheduler"]
        milestones = sorted(schedule["milestones"])

        def factor(updates: int) -> float:  # before fit starts num_training_batches is inf: effective epoch 0
            return schedule["gamma"] ** bisect.bisect_right(milestones, updates / self.trainer.num_training_batches)

        return {"optimizer": optimizer, "lr_scheduler": torch.optim.lr_scheduler.LambdaLR(optimizer, factor)}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.delta is not None:
            checkpoint[DELTA_KEY] = self.delta.detach().cpu()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        self.delta = checkpoint.get(DELTA_KEY)  # None from a standard checkpoint or one saved before any batch

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        images, labels = batch
        settings = self.hparams["adversarial"]
        optimizer, scheduler = self.optimizers(), self.lr_schedulers()
        if self.delta is None:
            self.delta = torch.zeros_like(images, dtype=torch.float32)
        delta = self.delta[: len(images)].clone()  # a smaller last batch uses the first rows
        pixels = self.pixel_space.pixels(images)
        losses = []
        for _ in range(settings["replays"]):
            delta.requires_grad_(True)
            logits = self(self.pixel_space.normalize((pixels + delta).clamp(0, 1)))
            loss = self.loss(logits, labels)
            optimizer.zero_grad()
            self.manual_backward(loss)  # one backward: the weights' gradients and dloss/ddelta
            optimizer.step()
            scheduler.step()
            delta = free_step(delta.detach(), delta.grad, settings["eps"])
            self.train_acc1(logits.detach(), labels)
            losses.append(loss.detach())
        self.delta[: len(images)] = delta
        loss = torch.stack(losses).mean()
        self.log_training(loss)
        self.log("train/optimizer_updates", float(self.global_step), on_step=True)  # m per batch
        self.log("train/effective_epoch", self.global_step / self.trainer.num_training_batches, on_step=True)
        return loss


@dataclass(frozen=True)
class PGDAttack:
    """L-inf projected gradient descent in [0, 1] pixels (Madry et al. 2018).

    Args:
        eps: radius (paper's Free-AT training radius: 2/255).
        steps: gradient-sign steps.
        step_size: alpha per step (usual: 1/255 or eps/4).
        random_start: start from a uniform random point of the eps-ball (seeded by ``seed``) instead of x0.
    """

    eps: float
    steps: int
    step_size: float
    random_start: bool
    seed: int

    @classmethod
    def from_config(cls, settings: Mapping[str, Any], key: str) -> "PGDAttack":
        """The attack of the config node ``key``; ConfigError naming ``<key>.<field>`` for what cannot work."""
        names = [field.name for field in fields(cls)]
        unknown = sorted(set(settings) - set(names))
        if unknown:
            raise ConfigError(f"{key}: unknown keys {unknown}; PGD takes {', '.join(names)}.")
        return cls(**{name: settings.get(name) for name in names})._check(key)

    def _check(self, key: str) -> "PGDAttack":
        check_fraction(self.eps, f"{key}.eps", f"{key}.eps=0.00784 (2/255)")
        check_int(self.steps, f"{key}.steps", 10)
        check_fraction(self.step_size, f"{key}.step_size", f"{key}.step_size=0.00196 (eps/4)", positive=True)
        if not isinstance(self.random_start, bool):
            raise ConfigError(f"{key}.random_start: must be true or false, got {self.random_start!r}.")
        check_int(self.seed, f"{key}.seed", 0, minimum=0)
        return self

    def perturb(
        self, net: nn.Module, pixels: Tensor, labels: Tensor, space: PixelSpace, generator: torch.Generator
    ) -> Tensor:
        """Adversarial [0, 1] pixels within ``eps`` of ``pixels`` (L-inf) that raise the cross-entropy of ``net``."""
        adversarial = pixels.clone()
        if self.random_start:
            noise = torch.rand(pixels.shape, generator=generator).to(pixels.device)
            adversarial = (adversarial + self.eps * (2 * noise - 1)).clamp(0, 1)
        with torch.enable_grad():
            for _ in range(self.steps):
                adversarial.requires_grad_(True)
                loss = F.cross_entropy(net(space.normalize(adversarial)), labels, reduction="sum")
                (grad,) = torch.autograd.grad(loss, adversarial)
                adversarial = adversarial.detach() + self.step_size * grad.sign()
                adversarial = adversarial.clamp(pixels - self.eps, pixels + self.eps).clamp(0, 1)
        return adversarial.detach()


def pgd_accuracy(
    net: nn.Module, datamodule: L.LightningDataModule, attack: PGDAttack, limit: int | None = None
) -> dict[str, Any]:
    """Clean and PGD top-1 accuracy of ``net`` (put in eval mode) on the data module's val split.

    ``limit``: at most this many evenly spaced val images. Batches and workers are the data module's.
    """
    dataset = datamodule.val_dataset
    if limit and limit < len(dataset):
        dataset = Subset(dataset, np.linspace(0, len(dataset) - 1, limit).astype(int).tolist())
    loader = make_loader(dataset, datamodule.batch_size, datamodule.num_workers, pin_memory=False, train=False)
    net.eval()
    device = next(net.parameters()).device
    space = PixelSpace.of(datamodule, device)
    generator = torch.Generator().manual_seed(attack.seed)
    clean = robust = 0
    started = time.time()
    with tqdm(total=len(dataset), unit="img", desc=f"PGD-{attack.steps}") as progress:
        for images, labels in loader:
            images, labels = datamodule.device_transform(images.to(device)), labels.to(device)
            adversarial = attack.perturb(net, space.pixels(images), labels, space, generator)
            with torch.no_grad():
                clean += int((net(images).argmax(-1) == labels).sum())
                robust += int((net(space.normalize(adversarial)).argmax(-1) == labels).sum())
            progress.update(len(labels))
    return {
        "attack": asdict(attack),
        "images": len(dataset),
        "clean_acc1": clean / len(dataset),
        "acc1": robust / len(dataset),
        "seconds": round(time.time() - started, 1),
    }


def adversarial_metrics(result: dict[str, Any]) -> dict[str, float]:
    """``adversarial/clean_acc1`` and ``adversarial/acc1`` for loggers and the results ledger."""
    return {"adversarial/clean_acc1": result["clean_acc1"], "adversarial/acc1": result["acc1"]}


def write_outputs(result: dict[str, Any], output_dir: Path, label: str) -> dict[str, Path]:
    """``adversarial_accuracy.md`` and ``.csv`` (one row: settings, clean and PGD accuracy) and ``.json``."""
    attack = result["attack"]
    values = [label, attack["eps"], attack["steps"], attack["step_size"], attack["random_start"], result["images"]]
    values += [result["clean_acc1"], result["acc1"]]
    row = [label, f"{attack['eps'] * 255:.3g}/255", str(attack["steps"]), f"{attack['step_size'] * 255:.3g}/255"]
    row += [str(attack["random_start"]).lower(), str(result["images"]), fmt(result["clean_acc1"]), fmt(result["acc1"])]
    header = ["model", "eps", "steps", "step size", "random start", "images", "clean acc1", "PGD acc1"]
    table = Table("L-inf PGD accuracy on the val split ([0, 1] pixel units)", header, [row])
    table.notes.append(f"PGD seed {attack['seed']}; {result['seconds']:.0f} s.")
    return {
        "markdown": write_text_atomic(output_dir / "adversarial_accuracy.md", table.markdown()),
        "csv": write_text_atomic(output_dir / "adversarial_accuracy.csv", csv_text([CSV_COLUMNS, values])),
        "json": write_json_atomic(output_dir / "adversarial_accuracy.json", {"model": label, **result}),
    }
