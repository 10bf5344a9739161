"""The training callback that scores the model while it trains, with any evaluation."""

import copy
import json
import logging
from collections.abc import Callable
from pathlib import Path

import lightning as L

from neurov1.errors import ConfigError
from neurov1.evaluation.base import EvaluatedModel, Evaluation
from neurov1.utils.io import write_json_atomic
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


class EvaluationCallback(L.Callback):
    """An evaluation run during training: every ``every_n_epochs`` epochs and at the end of fit.

    ``callbacks=v1`` (Brain-Score V1 every 10 epochs), ``callbacks=corruption`` (Tiny-ImageNet-C on a subset) and
    ``callbacks=adversarial`` (PGD on the val split) use it with the evaluations of ``conf/eval/``. It runs on
    rank zero only, on a copy of the network in eval mode, with the training data module (for evaluations that
    need data), writes the outputs of ``neurov1.evaluate`` into ``<output_dir>/epoch_<n>/`` and sends the
    evaluation's metrics to every logger. A failure is reported and training goes on. Each evaluation's metrics
    are added to ``<output_dir>/curve.json`` (one point per epoch; kept across resumes, recorded in
    ``metrics.json`` and the ledger), and at the end of fit the evaluation draws its curves next to it
    (:meth:`Evaluation.plot_curve`).

    Args:
        evaluation: an evaluation (:class:`neurov1.evaluation.base.Evaluation`).
        output_dir: the folder of the per-epoch outputs.
        every_n_epochs: 0 evaluates only at the end of fit.
    """

    def __init__(self, evaluation: Evaluation, output_dir: str, every_n_epochs: int = 0) -> None:
        if not isinstance(every_n_epochs, int) or every_n_epochs < 0:
            raise ConfigError(f"callbacks.*.every_n_epochs: must be an integer >= 0, got {every_n_epochs!r}.")
        self.evaluation = evaluation
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
        if trainer.is_global_zero:
            try:
                self.evaluation.plot_curve(self.curve(), self.output_dir, model_label(pl_module.hparams["net"]))
            except Exception:  # noqa: BLE001 - a figure must never fail the run
                log.exception("%s curves not drawn", self.evaluation.name)

    @property
    def curve_path(self) -> Path:
        return self.output_dir / "curve.json"

    def curve(self) -> list[dict[str, float]]:
        """``[{"epoch": n, <metric>: value, ...}, ...]`` of every evaluation of this run so far, by epoch."""
        try:
            return json.loads(self.curve_path.read_text())
        except (OSError, ValueError):
            return []

    def _add_to_curve(self, epoch: int, metrics: dict[str, float]) -> None:
        points = [point for point in self.curve() if point["epoch"] != epoch] + [{"epoch": epoch, **metrics}]
        write_json_atomic(self.curve_path, sorted(points, key=lambda point: point["epoch"]))

    def _evaluate(self, trainer: L.Trainer, pl_module: L.LightningModule, epoch: int) -> None:
        self.last_evaluated_epoch = epoch
        name = self.evaluation.name
        failure = f"{name} evaluation after epoch {epoch} failed; training continues"
        publish_on_rank_zero(trainer, lambda: self._score(trainer, pl_module, epoch), failure, f"{name}_evaluation")

    def _score(self, trainer: L.Trainer, pl_module: L.LightningModule, epoch: int) -> dict[str, float]:
        label = f"{model_label(pl_module.hparams['net'])}-epoch{epoch}"
        model = EvaluatedModel.of(pl_module, label, net=copy.deepcopy(pl_module.net).eval())
        datamodule = trainer.datamodule if self.evaluation.needs_data else None
        out_dir = self.output_dir / f"epoch_{epoch:03d}"
        outcome = self.evaluation.run(model, out_dir, datamodule, {"epoch": epoch})
        log.info("%s evaluation after epoch %d: %s", self.evaluation.name, epoch, outcome.metrics)
        self._add_to_curve(epoch, outcome.metrics)
        return outcome.metrics
