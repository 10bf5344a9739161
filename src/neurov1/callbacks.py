"""Training callbacks that score the model while it trains."""

import copy
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L

from neurov1.adversarial import PGDAttack, adversarial_metrics, pgd_accuracy
from neurov1.adversarial import write_outputs as write_adversarial_outputs
from neurov1.errors import check_int
from neurov1.utils.naming import model_label

log = logging.getLogger(__name__)


def publish_on_rank_zero(
    trainer: L.Trainer, evaluate: Callable[[], dict[str, float]], failure: str, barrier: str
) -> None:
    """Run ``evaluate`` on rank zero and send its metrics to every logger (and to metrics.json and the ledger).

    A failure is logged with ``failure`` and never stops training; all ranks then meet at ``barrier``.
    """
    if trainer.is_global_zero:
        try:
            metrics = evaluate()
            trainer.callback_metrics.update(metrics)
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=trainer.global_step)
        except Exception:  # noqa: BLE001 - an evaluation failure must never stop or lose the training run
            log.exception(failure)
    trainer.strategy.barrier(barrier)


class V1EvaluationCallback(L.Callback):
    """Brain-Score V1 evaluation every ``every_n_epochs`` epochs and at the end of fit (``callbacks=v1``).

    Runs on rank zero only, on a copy of the network in eval mode; logs ``v1/overall``, ``v1/predictivity``,
    ``v1/property`` and ``v1/<group>`` to every logger and writes the outputs of ``neurov1.evaluate`` into
    ``<output_dir>/epoch_<n>/``. A failure is reported and training goes on.

    Args:
        evaluation: the ``eval`` config node (``conf/eval/v1.yaml``).
        every_n_epochs: 0 evaluates only at the end of fit.
        output_dir: where each epoch's ``v1_scores.json`` and tables go.
    """

    def __init__(self, evaluation: dict[str, Any], output_dir: str, every_n_epochs: int = 10) -> None:
        self.evaluation = dict(evaluation)
        self.output_dir = Path(output_dir)
        self.every_n_epochs = every_n_epochs
        self.last_evaluated_epoch: int | None = None

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch + 1
        if self.every_n_epochs and epoch % self.every_n_epochs == 0:
            self._evaluate(trainer, pl_module, epoch)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.last_evaluated_epoch != trainer.current_epoch:
            self._evaluate(trainer, pl_module, trainer.current_epoch)

    def _evaluate(self, trainer: L.Trainer, pl_module: L.LightningModule, epoch: int) -> None:
        self.last_evaluated_epoch = epoch
        failure = f"V1 evaluation after epoch {epoch} failed; training continues"
        publish_on_rank_zero(trainer, lambda: self._score(pl_module, epoch), failure, "v1_evaluation")

    def _score(self, pl_module: L.LightningModule, epoch: int) -> dict[str, float]:
        from neurov1.brainscore.evaluation import evaluate_v1
        from neurov1.brainscore.report import write_outputs
        from neurov1.brainscore.scoring import V1Settings
        from neurov1.evaluate import v1_metrics

        settings = self.evaluation
        net = copy.deepcopy(pl_module.net).eval()
        hparams = pl_module.hparams["net"]
        label = f"{model_label(hparams)}-epoch{epoch}"
        report = evaluate_v1(
            net,
            label,
            V1Settings(
                predictivity=settings["predictivity"],
                source=settings["source"],
                seed=settings["seed"],
                benchmarks=tuple(settings["benchmarks"]) if settings.get("benchmarks") else None,
            ),
            layers=list(settings["layers"]),
            visual_degrees=settings["visual_degrees"],
            image_size=hparams["input_size"],
            batch_size=settings["batch_size"],
            cache_dir=settings.get("cache_dir"),
        )
        report["epoch"] = epoch
        write_outputs(report, self.output_dir / f"epoch_{epoch:03d}", label)
        metrics = v1_metrics(report)
        log.info("V1 evaluation after epoch %d: %s", epoch, metrics)
        return metrics


class EndOfFitEvaluation(L.Callback):
    """An evaluation run once at the end of fit on rank zero, published to every logger; a failure is only reported.

    Subclasses name it (``name``: the log message and the barrier) and implement ``_evaluate``.
    """

    name: str

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        failure = f"{self.name} at the end of fit failed"
        barrier = self.name.lower().replace(" ", "_")
        publish_on_rank_zero(trainer, lambda: self._evaluate(trainer, pl_module), failure, barrier)

    def _evaluate(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, float]:
        raise NotImplementedError


class CorruptionEvaluationCallback(EndOfFitEvaluation):
    """Tiny-ImageNet-C accuracy at the end of fit on rank zero, optionally on a subset (``callbacks=corruption``).

    Writes the outputs of ``neurov1.evaluate eval=corruption`` into ``output_dir`` (clean accuracy: the last
    ``val/acc1``) and logs the ``corruption/*`` metrics of :func:`neurov1.robustness.summary_metrics`. A failure is
    reported only.
    """

    name = "Tiny-ImageNet-C evaluation"

    def __init__(
        self,
        root: str,
        output_dir: str,
        limit_per_condition: int | None = None,
        corruptions: list[str] | None = None,
        severities: list[int] | None = None,
        batch_size: int = 256,
        num_workers: int = 4,
    ) -> None:
        self.root = root
        self.output_dir = Path(output_dir)
        self.limit_per_condition = limit_per_condition
        self.corruptions = list(corruptions) if corruptions else None
        self.severities = list(severities) if severities else None
        self.batch_size = batch_size
        self.num_workers = num_workers

    def _evaluate(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, float]:
        from neurov1.robustness import evaluate_corruptions, summarize, summary_metrics, write_outputs

        hparams = pl_module.hparams["net"]
        result = evaluate_corruptions(
            copy.deepcopy(pl_module.net).eval(),
            self.root,
            num_classes=hparams["num_classes"],
            corruptions=self.corruptions,
            severities=self.severities,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            limit_per_condition=self.limit_per_condition,
            image_size=hparams["input_size"],
        )
        clean = trainer.callback_metrics.get("val/acc1")
        summary = summarize(result["rows"], None if clean is None else float(clean), None)
        write_outputs(result, summary, self.output_dir, model_label(hparams))
        return summary_metrics(summary)


class AdversarialEvaluationCallback(EndOfFitEvaluation):
    """Clean vs L-inf PGD accuracy on the val split at the end of fit, on rank zero (``callbacks=adversarial``).

    Writes the outputs of ``neurov1.evaluate eval=adversarial`` into ``output_dir`` and logs ``adversarial/clean_acc1``
    and ``adversarial/acc1``. A failure is reported only.

    Args:
        attack: :class:`neurov1.adversarial.PGDAttack` settings (eps, steps, step_size, random_start, seed).
        output_dir: where the table and JSON go.
        limit: at most this many evenly spaced val images; None: all.
    """

    name = "PGD evaluation"

    def __init__(self, attack: dict[str, Any], output_dir: str, limit: int | None = None) -> None:
        self.attack = PGDAttack.from_config(attack, "callbacks.adversarial.attack")
        if limit is not None:
            check_int(limit, "callbacks.adversarial.limit", 1000)
        self.output_dir = Path(output_dir)
        self.limit = limit

    def _evaluate(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, float]:
        result = pgd_accuracy(copy.deepcopy(pl_module.net), trainer.datamodule, self.attack, self.limit)
        write_adversarial_outputs(result, self.output_dir, model_label(pl_module.hparams["net"]))
        return adversarial_metrics(result)
