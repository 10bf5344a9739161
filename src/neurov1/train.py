"""Train a neuro-constrained network: ``python -m neurov1.train [experiment=...] [+model/components=...]``.

Order of work: check the component selection, the checkpoint to resume from, the output folders and the dataset
layout (all cheap), build the model, verify the images (``data.verify=all``, cached), then fit. ``metrics.json``
is written atomically in the run folder at the end, whatever the outcome (``status``: completed, diverged,
preempted or failed), and a completed (or diverged) run adds its record to the results ledger.

Resuming: ``ckpt_path=<run>/checkpoints/last.ckpt`` (or ``step.ckpt``) continues that run in its own folder;
``ckpt_path=auto`` resumes from the newest readable checkpoint of the run folder (``hydra.run.dir``) if it has one.
"""

import logging
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.utilities.exceptions import SIGTERMException
from lightning.pytorch.utilities.warnings import PossibleUserWarning
from omegaconf import DictConfig, OmegaConf

from neurov1.errors import Preempted, RunError
from neurov1.training.checkpoints import AtomicCheckpointIO, RunCheckpoints
from neurov1.training.loggers import resume_loggers
from neurov1.training.run import (
    cluster_plugins,
    completed_run,
    load_initial_weights,
    run_summary,
    validate_run,
    write_outcome,
)
from neurov1.utils.cli import errors_exit, hydra_quoted, is_multirun, override_value, run
from neurov1.utils.config import CONFIG_PATH
from neurov1.utils.folder_lock import hold_run_folder
from neurov1.utils.instantiate import instantiate, instantiate_callbacks, instantiate_loggers
from neurov1.utils.io import output_write_error
from neurov1.utils.runtime import keep_large_allocations_in_heap

log = logging.getLogger(__name__)

NOT_RESUMABLE_WARNING = "You're resuming from a checkpoint that ended before the epoch ended"


def resume_in_run_folder(arguments: list[str]) -> list[str]:
    """``ckpt_path=<run>/checkpoints/<file>`` continues the run in ``<run>``: add ``hydra.run.dir=<run>``.

    (Unless the command line chooses the folder itself or is a multirun.)
    """
    ckpt_path = override_value(arguments, "ckpt_path")
    if not ckpt_path or ckpt_path == "auto" or is_multirun(arguments):
        return arguments
    if override_value(arguments, "hydra.run.dir") is not None:
        return arguments
    path = Path(str(ckpt_path)).expanduser().absolute()
    if path.parent.name != "checkpoints" or not path.is_file():
        return arguments
    return [*arguments, f"hydra.run.dir={hydra_quoted(str(path.parent.parent))}"]


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit the configured model on the configured data; returns the content of ``metrics.json``."""
    started = time.time()
    keep_large_allocations_in_heap()
    datamodule, resume, settings = validate_run(cfg)
    if (finished := completed_run(cfg, resume)) is not None:
        log.info("%s completed earlier (%s): nothing to train", cfg.run_name, resume.path)
        write_outcome(cfg, finished)
        return finished
    L.seed_everything(cfg.seed, workers=True)
    finetune = OmegaConf.to_container(cfg.finetune) if cfg.get("finetune") else None
    data = OmegaConf.to_container(cfg.data, resolve=True)
    model: L.LightningModule = instantiate(cfg.model, finetune=finetune, data=data)
    if cfg.get("ckpt_init") and resume is None:
        load_initial_weights(model, cfg.ckpt_init, classifier=finetune is None)
    datamodule.verify_all()
    loggers = instantiate_loggers(cfg.get("logger"))
    callbacks = instantiate_callbacks(cfg.get("callbacks"))
    if not loggers:  # logger=none: the learning rate has nowhere to go (Lightning would refuse the monitor)
        callbacks = [callback for callback in callbacks if not isinstance(callback, LearningRateMonitor)]
    checkpoints = next((c for c in callbacks if isinstance(c, RunCheckpoints)), None)
    if checkpoints is not None:
        checkpoints.record_run(settings, resume.history if resume else [])
    if resume is not None:
        resume_loggers(loggers, resume.logger_step)
        # The data module puts the loader at its place in the epoch itself (neurov1.data.sampling), which Lightning
        # cannot see: its warning that the loader is not resumable does not apply.
        warnings.filterwarnings("ignore", message=NOT_RESUMABLE_WARNING, category=PossibleUserWarning)
    trainer: L.Trainer = instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers or False, plugins=[AtomicCheckpointIO(), *cluster_plugins()]
    )
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))

    failure: RunError | None = None
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=resume.path if resume else None)
    except RunError as error:
        failure = error
    except OSError as error:  # a logger's file on a full disk, say
        failure = output_write_error(error)
        if failure is None:
            raise
    except SIGTERMException:  # Lightning's own handler caught SIGTERM before neurov1's was installed
        failure = Preempted("SIGTERM received before training started; nothing to save. Run the command again.")

    metrics = run_summary(cfg, trainer, model, datamodule, resume, started, failure)
    if trainer.is_global_zero:
        write_outcome(cfg, metrics)
    if failure is not None:
        if isinstance(failure, Preempted):
            outcome = checkpoints.signals.hand_over() if checkpoints and trainer.is_global_zero else "not requeued"
            raise Preempted(f"{failure} ({outcome})")
        raise failure
    return metrics


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point; returns the best monitored metric so sweepers can optimise it."""
    folder_key = "hydra.sweep.dir" if HydraConfig.get().mode == RunMode.MULTIRUN else "hydra.run.dir"
    try:
        with errors_exit(), hold_run_folder(cfg.paths.output_dir, folder_key):
            metrics = train(cfg)
    finally:
        _finish_wandb()
    return metrics["best"]["value"]


def _finish_wandb() -> None:
    """Close an open W&B run so the next job of a multirun starts cleanly."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.finish()


if __name__ == "__main__":
    run(main, rewrite=resume_in_run_folder)
