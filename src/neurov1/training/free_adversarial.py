"""Free adversarial training (paper Sec. 4.5, Appendix G, Table 4), in [0, 1] pixel space.

Free AT (Shafahi et al. 2019, "Adversarial training for free!", Alg. 1; the code the paper used:
github.com/mahyarnajibi/FreeAdversarialTraining): one perturbation delta, zero at the start and never reset,
carried across the m replays of a minibatch and across minibatches. Each replay: x_adv = clamp(x + delta, 0, 1),
normalise, forward, loss; one backward gives the weight gradients and g = dloss/ddelta; an optimizer step;
delta <- clamp(delta + eps sign(g), -eps, eps). Passing over the data ceil(epochs / m) times makes as many updates
as standard training.
"""

import bisect
import math
from typing import Any

import torch
from torch import Tensor

from neurov1.data.transforms import PixelSpace
from neurov1.errors import ConfigError, check_fraction, check_int
from neurov1.training.module import LEGACY_TARGETS, NeuroV1Module


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
        target = self.hparams["scheduler"].get("_target_", LEGACY_TARGETS["scheduler"])
        if target != LEGACY_TARGETS["scheduler"]:
            raise ConfigError(
                f"model.scheduler: Free adversarial training steps the paper's MultiStepLR by effective epoch, got "
                f"{target}. Use model/scheduler=multistep."
            )
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
        """The optimizer with the learning rate x gamma at each milestone (effective epochs), stepped every update."""
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

    def training_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> Tensor:
        images, labels, *_ = batch  # (object centres, if the data has them, are not used here)
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
