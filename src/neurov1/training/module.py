"""The LightningModule: a neuro-constrained ResNet trained for ImageNet-style classification (paper Sec. 3.2)."""

import functools
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from neurov1.components.cortical_magnification import GAZES, PolarTransform
from neurov1.errors import ConfigError, Diverged
from neurov1.inspection.fixation import FIGURE, fixation_figure, validation_samples
from neurov1.models import backbone_for, build_network, fixation, rename_legacy_keys, resolve_components
from neurov1.models.contract import VISUAL_DEGREES, ScoringContract
from neurov1.training.checkpoints import LOWER_LR_HINT, read_checkpoint
from neurov1.utils.instantiate import instantiate, keyword_parameters

log = logging.getLogger(__name__)

# Older checkpoints stored the paper's optimizer and schedule as bare settings.
LEGACY_TARGETS = {"optimizer": "torch.optim.SGD", "scheduler": "torch.optim.lr_scheduler.MultiStepLR"}


def optimization_factory(node: Mapping[str, Any], key: str) -> functools.partial:
    """The optimizer or scheduler of a ``model.<key>`` node: the partial Hydra instantiates (``_partial_: true``);
    ConfigError naming ``model.<key>`` for an unknown class or parameter."""
    node = {"_target_": LEGACY_TARGETS[key], **node}
    factory = instantiate(node, key=f"model.{key}", _partial_=True)
    accepted = keyword_parameters(factory.func)
    unknown = sorted(set(factory.keywords) - set(accepted))
    if unknown:
        removal = " ".join(f"~model.{key}.{name}" for name in unknown)
        raise ConfigError(
            f"model.{key}: {node['_target_']} takes no {unknown}; it takes {', '.join(accepted)}. Remove the others "
            f"({removal}): an experiment may set them for its own {key}."
        )
    return factory


class NeuroV1Module(L.LightningModule):
    """Classifier around :func:`neurov1.models.build_network` (its V1 layer: :attr:`v1_layer`).

    All constructor arguments are plain dicts (Hydra builds this class with ``_recursive_: false``), saved as
    hyperparameters, so ``NeuroV1Module.load_from_checkpoint(path)`` rebuilds the exact component set from the
    checkpoint alone, with torch's default ``weights_only=True``.

    Args:
        optimizer: a ``_partial_`` node of a torch optimizer (``conf/model/optimizer``; the paper's SGD).
        scheduler: a ``_partial_`` node of a torch learning-rate scheduler stepped every epoch
            (``conf/model/scheduler``; the paper's MultiStepLR).
        net: ``build_network`` arguments: ``arch``, ``num_classes``, ``input_size``, ``components`` (stored
            resolved: every component's ``_target_``, ``site`` and parameters), ``backbone`` (an adapter class or
            null for the built-in one of ``arch``).
        finetune: head-only fine-tuning (paper Sec. 3.2, Tiny-ImageNet): every parameter but the classifier head
            (ResNet: ``fc``) is frozen;
            ``batchnorm: train`` lets BatchNorm running statistics adapt (as the original code did), ``eval`` keeps
            them.
        adversarial: Free adversarial training settings (``replays``, ``eps``) of
            :class:`neurov1.training.free_adversarial.FreeAdversarialModule`, which trains with them; kept here so
            that a checkpoint loaded as this class still says how its weights were trained.
        visual_degrees: the field of view of the input image in degrees of visual angle (the model's commitment).
        data: the data config the model is trained on (``neurov1.evaluate`` takes it unless given ``data=``).
        scoring: the model's :class:`ScoringContract` (what every scoring path reads), saved with it; null: made
            from the settings above (the backbone's V1 layer, ``input_size``, ``visual_degrees``, the data's
            normalisation and ``five_crop``), as for checkpoints from before it was saved.
        gaze: where the cortical magnification looks during neural scoring (``eval=v1|v1_probe|regions``, the
            Brain-Score export read it from ``model.gaze``): ``center`` pins it at the polar centre (the monkeys
            fixated the screen's centre), ``free`` lets the fixation policy choose. Not a hyperparameter.
        glimpses: at validation, also the mean prediction over the policy's k best fixations
            (``val/acc1_glimpses``; 1: none). Not a hyperparameter.

    With a fixation policy (``fixation=learned|saliency|given``) a batch may carry each image's object centre
    (``(images, labels, centers)``; ``(x, y)`` in [-1, 1], NaN where unknown): ``given`` fixates there, ``learned``
    adds its ``loss_weight`` x the mean squared distance of its fixation to the known centres to the loss
    (``train/fixation_loss``), and validation logs ``val/fixation_error``, the mean distance in degrees of visual
    angle (``visual_degrees`` per image width) of the fixation (the polar centre without a policy) to the centre.
    """

    # The metrics this module logs (a checkpoint's ``monitor`` is checked against them before training).
    LOGGED_METRICS = (
        "val/acc1",
        "val/acc5",
        "val/loss",
        "val/acc1_five_crop",
        "val/acc1_glimpses",
        "val/fixation_error",
        "train/loss",
        "train/acc1",
        "train/fixation_loss",
    )

    def __init__(
        self,
        net: dict[str, Any],
        optimizer: dict[str, Any],
        scheduler: dict[str, Any],
        finetune: dict[str, Any] | None = None,
        adversarial: dict[str, Any] | None = None,
        visual_degrees: float = VISUAL_DEGREES,
        data: dict[str, Any] | None = None,
        channels_last: bool | str = "auto",
        compile: bool = False,
        scoring: dict[str, Any] | None = None,
        gaze: str = "center",
        glimpses: int = 1,
    ) -> None:
        super().__init__()
        if gaze not in GAZES:
            raise ConfigError(f"model.gaze: center (pinned at the polar centre) or free (the policy), got {gaze!r}.")
        if isinstance(glimpses, bool) or not isinstance(glimpses, int) or glimpses < 1:
            raise ConfigError(f"model.glimpses: a positive integer (1: one fixation), got {glimpses!r}.")
        self.gaze = gaze
        self.glimpses = glimpses
        net = {"backbone": None, **net, "components": resolve_components(net.get("components") or {})}
        if finetune is not None and finetune.get("batchnorm") not in ("train", "eval"):
            raise ConfigError(f"finetune.batchnorm must be train or eval, got {finetune.get('batchnorm')!r}")
        if channels_last not in (True, False, "auto"):
            raise ConfigError(f"model.channels_last: true, false or auto (on GPUs), got {channels_last!r}.")
        if not isinstance(compile, bool):
            raise ConfigError(f"model.compile: true or false, got {compile!r}.")
        # How the network runs (not what it is): not hyperparameters, so a checkpoint loads as a plain eager model.
        self.channels_last = channels_last
        self.compile_net = compile
        for key, node in (("optimizer", optimizer), ("scheduler", scheduler)):
            optimization_factory(node, key)  # a ConfigError for an unknown class or parameter now, not at fit start
        self.net = build_network(**net)
        self.backbone = backbone_for(net["arch"], net["backbone"])
        self.scoring = (
            ScoringContract.from_dict(scoring) if scoring else ScoringContract.of(self.net, net, visual_degrees, data)
        )
        hparams = {
            "net": net,
            "optimizer": dict(optimizer),
            "scheduler": dict(scheduler),
            "finetune": finetune,
            "adversarial": adversarial,
            "visual_degrees": visual_degrees,
            "data": data,
            "scoring": self.scoring.as_dict(),
        }
        self.save_hyperparameters(hparams)
        if finetune is not None:
            head = self.classifier_name + "."
            for name, parameter in self.net.named_parameters():
                parameter.requires_grad_(name.startswith(head))
        num_classes = net["num_classes"]
        top5 = min(5, num_classes)
        # The training epoch's running loss and accuracy are part of the checkpoint (persistent), so an epoch resumed
        # in its middle reports the same epoch values as an uninterrupted one.
        self.train_loss = MeanMetric()
        self.train_acc1 = MulticlassAccuracy(num_classes, top_k=1, average="micro")
        for metric in (self.train_loss, self.train_acc1):
            metric.persistent(True)
        self.val_acc1 = MulticlassAccuracy(num_classes, top_k=1, average="micro")
        self.val_acc5 = MulticlassAccuracy(num_classes, top_k=top5, average="micro")
        self.val_acc1_five_crop = MulticlassAccuracy(num_classes, top_k=1, average="micro")
        self.val_acc1_glimpses = MulticlassAccuracy(num_classes, top_k=1, average="micro")
        self.val_fixation_error = MeanMetric()
        self.loss = nn.CrossEntropyLoss()
        self._unchecked_loss: tuple[Tensor, int, int, float] | None = None

    @classmethod
    def load_from_checkpoint(  # type: ignore[override]
        cls,
        checkpoint_path: str | Path,
        map_location: Any = None,
        hparams_file: str | Path | None = None,
        strict: bool | None = None,
        *,
        trusted_targets: Iterable[str] = (),
        **kwargs: Any,
    ) -> "NeuroV1Module":
        """Lightning's ``load_from_checkpoint``, after checking that the checkpoint is a readable neurov1 checkpoint
        whose configs name only neurov1's own code or ``trusted_targets`` (e.g. ``["userpkg.Gain"]`` for a component
        of your own): a checkpoint from elsewhere never imports or runs other code (:mod:`neurov1.models.trust`)."""
        read_checkpoint(checkpoint_path, trusted=trusted_targets)
        return super().load_from_checkpoint(checkpoint_path, map_location, hparams_file, strict, **kwargs)

    def setup(self, stage: str) -> None:
        """Channels-last memory format (``channels_last``: true, or auto on a GPU) and ``torch.compile`` (``compile``).

        ``nn.Module.compile`` compiles the network in place, so parameter names (and checkpoints) stay those of the
        eager model.
        """
        on_gpu = self.trainer.strategy.root_device.type == "cuda"
        if self.channels_last is True or (self.channels_last == "auto" and on_gpu):
            self.net.to(memory_format=torch.channels_last)
        if self.compile_net and getattr(self.net, "_compiled_call_impl", None) is None:
            self.net.compile()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Older checkpoints load too: component names from before components were plug-ins, and running training
        metrics (empty) where they were not saved yet."""
        state = checkpoint["state_dict"] = rename_legacy_keys(
            checkpoint["state_dict"], self.hparams["net"]["components"]
        )
        for key, value in self.state_dict().items():
            if key.startswith(("train_loss.", "train_acc1.")):
                state.setdefault(key, value)

    @property
    def v1_layer(self) -> str:
        """The name (in ``net``) of the module whose output is the artificial V1 (the scoring contract's)."""
        return self.scoring.v1_layer

    @property
    def classifier_name(self) -> str:
        """The name (in ``net``) of the classifier head (ResNet: ``fc``)."""
        return self.backbone.classifier(self.net)

    @property
    def components(self) -> list[str]:
        """Names of the components in this model, in canonical order."""
        return list(self.hparams["net"]["components"])

    def forward(self, images: Tensor) -> Tensor:
        return self.net(images)

    @property
    def polar_transforms(self) -> list[PolarTransform]:
        """The network's cortical magnification modules (where fixation policies live)."""
        return fixation.polar_transforms(self.net)

    @property
    def fixation_policy(self) -> str:
        """``center`` (no policy, or no cortical magnification), or the policy's name."""
        return fixation.fixation_policy(self.net)

    def look(self, images: Tensor, centers: Tensor | None = None) -> Tensor:
        """The logits, with ``centers`` (N, 2) given to the ``given`` policy (None: it fixates the centre)."""
        return fixation.look(self.net, images, centers)

    def fixations(self, count: int) -> Tensor | None:
        """(count, 2) the last forward's fixations (:func:`neurov1.models.fixation.last_fixations`)."""
        return fixation.last_fixations(self.net, count)

    def fixation_loss(self, centers: Tensor | None) -> Tensor | None:
        """Each learned policy's loss on the known centres (:meth:`LearnedFixation.fixation_loss`), or None."""
        if centers is None:
            return None
        known = ~centers.isnan().any(-1)
        losses = [
            polar.fixation.fixation_loss(polar.last_fixation, centers, known)
            for polar in self.polar_transforms
            if polar.fixation is not None and polar.fixation.loss_weight > 0 and polar.last_fixation is not None
        ]
        if not losses or not bool(known.any()):
            return None
        return torch.stack(losses).sum()

    def fixation_error(self, centers: Tensor) -> Tensor:
        """(n,) distances in degrees of visual angle from each fixation to its known centre (rows without one
        left out); the image centre for a model without cortical magnification."""
        known = ~centers.isnan().any(-1)
        fixations = self.fixations(len(centers))
        fixations = centers.new_zeros(centers.shape) if fixations is None else fixations.to(centers)
        degrees_per_unit = self.hparams["visual_degrees"] / 2  # one image width is 2 units
        return (fixations[known] - centers[known]).norm(dim=-1) * degrees_per_unit

    def training_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> Tensor:
        images, labels, *rest = batch
        centers = rest[0] if rest else None
        logits = self.look(images, centers)
        loss = self.loss(logits, labels)
        auxiliary = self.fixation_loss(centers)
        if auxiliary is not None:
            self.log("train/fixation_loss", auxiliary.detach(), on_step=True, on_epoch=True)
            loss = loss + auxiliary
        self.train_acc1(logits.detach(), labels)
        self.log_training(loss)
        return loss

    def log_training(self, loss: Tensor) -> None:
        """Log a step's loss and the epoch's loss and accuracy (``train_acc1`` updated by the step); watch the loss."""
        self.watch_loss(loss)
        self.train_loss(loss.detach())
        self.log("train/loss", self.train_loss, prog_bar=True, on_step=True, on_epoch=True)
        self.log("train/acc1", self.train_acc1, prog_bar=True, on_step=False, on_epoch=True)

    def watch_loss(self, loss: Tensor) -> None:
        """Stop with :class:`Diverged` at a non-finite loss.

        The loss of a step is checked at the next one (or at the epoch's end), so the device never waits for the host
        in the middle of a step; a checkpoint is never written from non-finite weights either
        (:func:`neurov1.training.checkpoints.check_finite_weights`).
        """
        self.check_last_loss()
        lr = self.trainer.optimizers[0].param_groups[0]["lr"] if self.trainer.optimizers else float("nan")
        self._unchecked_loss = (loss.detach(), self.current_epoch, self.global_step, lr)

    def check_last_loss(self) -> None:
        if self._unchecked_loss is None:
            return
        (loss, epoch, step, lr), self._unchecked_loss = self._unchecked_loss, None
        if not bool(torch.isfinite(loss)):
            raise Diverged(
                f"non-finite loss {float(loss)} at epoch {epoch}, step {step}, learning rate {lr:g}. {LOWER_LR_HINT} "
                f"(e.g. model.optimizer.lr={lr / 10:g}); metrics.json says diverged and no checkpoint holds these "
                "weights."
            )

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        """Drop the graph of the recorded fixations (so the network can be copied, e.g. for an evaluation)."""
        for polar in self.polar_transforms:
            if polar.last_fixation is not None:
                polar.last_fixation = polar.last_fixation.detach()

    def on_fit_end(self) -> None:
        """``fixations.png`` in the run folder (and to W&B): validation images with the chosen fixations, the known
        object centres and the polar rings (models with cortical magnification, when validation runs: not for a
        benchmark's fit, whose Trainer has no run folder)."""
        trainer = self.trainer
        dataset = getattr(trainer.datamodule, "val_dataset", None) if trainer.datamodule is not None else None
        if not self.polar_transforms or dataset is None or not trainer.is_global_zero or not trainer.limit_val_batches:
            return
        path = Path(trainer.default_root_dir) / FIGURE
        try:  # a figure: the finished run stands without it
            images, centers = validation_samples(dataset, 16)
            mean, std = self.scoring.channel_mean()[0], self.scoring.channel_std()[0]
            centers = None if centers is None else centers.to(self.device)
            fixation_figure(self, images.to(self.device), centers, path, "", mean, std)
        except Exception as error:  # noqa: BLE001
            log.warning("%s not drawn: %s: %s", path, type(error).__name__, error)
            return
        for logger in trainer.loggers:
            if type(logger).__name__ == "WandbLogger":
                logger.log_image("fixations", [str(path)])

    def on_train_epoch_end(self) -> None:
        self.check_last_loss()

    def on_validation_start(self) -> None:
        self.check_last_loss()

    def on_train_epoch_start(self) -> None:
        """Start the epoch's running loss and accuracy afresh; with ``finetune.batchnorm=eval``, freeze BatchNorm.

        (Lightning restores each submodule's mode after validation, so setting it once per epoch holds. An epoch
        resumed in its middle does not start again: its restored running metrics carry on.)
        """
        self.train_loss.reset()
        self.train_acc1.reset()
        if (self.hparams.get("finetune") or {}).get("batchnorm") == "eval":
            for module in self.net.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()

    def glimpse_predictions(self, images: Tensor, centers: Tensor | None = None) -> Tensor:
        """(N, classes) the mean softmax over the policy's ``glimpses`` best fixations
        (:func:`neurov1.models.fixation.glimpse_probabilities`)."""
        return fixation.glimpse_probabilities(self.net, images, self.glimpses, centers).mean(0)

    def validation_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> None:
        images, labels, *rest = batch
        centers = rest[0] if rest else None
        if images.ndim == 5:  # five crops (N, 5, C, H, W): the prediction is the mean softmax over the crops
            views = self(images.flatten(0, 1)).unflatten(0, images.shape[:2])
            self.val_acc1_five_crop(views.softmax(-1).mean(1), labels)
            self.log("val/acc1_five_crop", self.val_acc1_five_crop, prog_bar=True)
            logits = views[:, 4]  # the centre crop: the single-crop evaluation
        else:
            if self.glimpses > 1:
                self.val_acc1_glimpses(self.glimpse_predictions(images, centers), labels)
                self.log("val/acc1_glimpses", self.val_acc1_glimpses, prog_bar=True)
            logits = self.look(images, centers)
            if centers is not None and bool((~centers.isnan().any(-1)).any()):
                errors = self.fixation_error(centers)
                self.val_fixation_error(errors)
                self.log("val/fixation_error", self.val_fixation_error)
        self.val_acc1(logits, labels)
        self.val_acc5(logits, labels)
        self.log("val/loss", self.loss(logits, labels), prog_bar=True, sync_dist=True)
        self.log("val/acc1", self.val_acc1, prog_bar=True)
        self.log("val/acc5", self.val_acc5)

    def build_optimizer(self) -> torch.optim.Optimizer:
        """The ``optimizer`` node's optimizer over the trainable parameters."""
        return optimization_factory(self.hparams["optimizer"], "optimizer")(
            [parameter for parameter in self.parameters() if parameter.requires_grad]
        )

    def configure_optimizers(self) -> dict[str, Any]:
        """The optimizer and the ``scheduler`` node's schedule, stepped every epoch."""
        optimizer = self.build_optimizer()
        scheduler = optimization_factory(self.hparams["scheduler"], "scheduler")(optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}
