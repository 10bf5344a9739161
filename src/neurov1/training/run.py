"""The steps of a training run around Lightning's fit (the command is ``python -m neurov1.train``).

Before the model is built: check the initial weights (``ckpt_init``), the checkpoint to resume from, the output
folders and the data (:func:`validate_run`); a run that already completed is recognised (:func:`completed_run`). After
fit: the content of ``metrics.json`` (:func:`run_summary`), written atomically with a ledger record
(:func:`write_outcome`).
"""

import json
import logging
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.plugins.environments import SLURMEnvironment
from omegaconf import DictConfig, OmegaConf, open_dict

from neurov1.errors import ConfigError, Diverged, OutputWriteError, Preempted, RunError
from neurov1.models import resolve_components
from neurov1.models.trust import composed_targets
from neurov1.results.ledger import write_record
from neurov1.training.callbacks import EvaluationCallback
from neurov1.training.checkpoints import (
    RUN_STATE_KEY,
    RunCheckpoints,
    check_checkpoint_matches,
    check_monitor,
    read_checkpoint,
    resume_checkpoint,
    scalar_metrics,
)
from neurov1.training.options import check_run_options
from neurov1.training.settings import ACCEPT_OPTION, check_resume, run_settings
from neurov1.utils.instantiate import instantiate, locate
from neurov1.utils.io import check_writable, remove_stale_temporaries, write_json_atomic
from neurov1.utils.naming import run_name, run_tags, sweep_group

log = logging.getLogger(__name__)

STATUS = {Diverged: "diverged", Preempted: "preempted"}  # any other RunError during fit: "failed"


def adopt_initial_model(cfg: DictConfig) -> None:
    """Take the architecture and components of ``ckpt_init``; refuse an explicitly different component selection."""
    stored = read_checkpoint(cfg.ckpt_init, key="ckpt_init", trusted=composed_targets(cfg))["hyper_parameters"]["net"]
    selected = resolve_components(OmegaConf.to_container(cfg.model.net.components, resolve=True))
    stored_components = resolve_components(stored.get("components") or {})
    if selected and selected != stored_components:
        raise ConfigError(
            f"ckpt_init={cfg.ckpt_init} was trained with [{','.join(stored_components)}] but the config selects "
            f"[{','.join(selected)}]. Drop +model/components: the model is taken from ckpt_init."
        )
    with open_dict(cfg):
        cfg.model.net.arch = stored["arch"]
        cfg.model.net.components = stored_components
        cfg.model.net.input_size = stored["input_size"]


def load_initial_weights(model: L.LightningModule, path: str, classifier: bool) -> None:
    """Load the weights of ``path``: all but the classifier head (ResNet: ``net.fc``), which only ``classifier`` and a
    fit bring.

    Head-only fine-tuning starts a new classifier; continued training on the same classes (Free adversarial
    training from a standard checkpoint, paper Appendix G) keeps the whole model.
    """
    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    own = model.state_dict()
    head = f"net.{model.classifier_name}."
    fits = classifier and all(
        state.get(k) is not None and state[k].shape == own[k].shape for k in own if k.startswith(head)
    )
    weights = {k: v for k, v in state.items() if k.startswith("net.") and (fits or not k.startswith(head))}
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if unexpected or any(key.startswith("net.") and not key.startswith(head) for key in missing):
        raise ConfigError(
            f"ckpt_init={path}: weights do not fit the model (missing {missing}, unexpected {unexpected})"
        )
    log.info("Initialised from %s (%s)", path, "the whole model" if fits else "all but the classifier")


@dataclass(frozen=True)
class Resume:
    """The checkpoint a run resumes from: its file, its optimizer step, the loggers' step the resumed run logs next,
    and the run's resumes so far (:func:`neurov1.training.settings.check_resume`), this one last."""

    path: Path
    global_step: int
    logger_step: int
    history: list[dict[str, Any]]


def next_logger_step(checkpoint: dict[str, Any]) -> int:
    """The loggers' step at which a run resumed from ``checkpoint`` logs next.

    Lightning counts a logged training step once its batch has ended: a checkpoint written at the end of a batch
    (``step.ckpt``) has that batch's row logged but not counted, so the resumed run goes on one step later.
    """
    epoch_loop = checkpoint["loops"]["fit_loop"]
    step = epoch_loop["epoch_loop.state_dict"].get("_batches_that_stepped", 0)
    total = (epoch_loop.get("epoch_loop.batch_progress") or {}).get("total") or {}
    saved_at_batch_end = total.get("completed", 0) == total.get("processed", 0) - 1
    return step + 1 if saved_at_batch_end else step


def validate_run(cfg: DictConfig) -> tuple[L.LightningDataModule, Resume | None, dict[str, Any]]:
    """Check everything that can be checked cheaply and fill derived config values.

    Returns the validated data module, what the run resumes from (None for a new run) and the run's settings (the
    record of what defines it, :func:`neurov1.training.settings.run_settings`, that its checkpoints keep).
    """
    check_run_options(cfg)
    check_monitor(
        OmegaConf.to_container(cfg.get("callbacks") or {}, resolve=True), locate(cfg.model._target_, "model._target_")
    )
    run_dir = Path(cfg.paths.output_dir)
    check_writable(cfg.paths.results_dir, "paths.results_dir")
    if cfg.get("ckpt_init"):
        adopt_initial_model(cfg)
    components = resolve_components(OmegaConf.to_container(cfg.model.net.components, resolve=True))
    trusted = composed_targets(cfg)
    path = resume_checkpoint(cfg.ckpt_path, run_dir, trusted)
    run_state, checkpoint = {}, None
    if path is not None:
        checkpoint = read_checkpoint(path, training_state=True, trusted=trusted)
        check_checkpoint_matches(checkpoint, path, OmegaConf.to_container(cfg.model.net, resolve=True), "ckpt_path")
        run_state = checkpoint.get(RUN_STATE_KEY) or {}
    with open_dict(cfg):
        cfg.run_name = cfg.run_name or run_name(components, cfg.seed)
        cfg.run_id = run_state.get("run_id") or uuid.uuid4().hex[:12]
        cfg.group = cfg.get("group") or sweep_group()
        cfg.tags = list(dict.fromkeys([*cfg.tags, *run_tags(components, cfg.seed)]))
    settings, resume = run_settings(cfg), None
    if checkpoint is not None:
        if "settings" not in run_state:
            log.warning("%s records no settings (written before neurov1 kept them): its resume is not checked", path)
        change = check_resume(run_state.get("settings"), settings, cfg.get(ACCEPT_OPTION) or [], path)
        history = [*run_state.get("resumes", []), {**change, "global_step": checkpoint["global_step"]}]
        resume = Resume(path, checkpoint["global_step"], next_logger_step(checkpoint), history)
        remove_stale_temporaries(run_dir / "checkpoints")
    if cfg.model.net.input_size != cfg.data.image_size:
        raise ConfigError(
            f"model.net.input_size={cfg.model.net.input_size} but data.image_size={cfg.data.image_size}: the model "
            f"is built for the image size it is trained on. Set model.net.input_size={cfg.data.image_size}."
        )
    datamodule: L.LightningDataModule = instantiate(cfg.data)
    datamodule.validate()
    with open_dict(cfg):
        if cfg.model.net.num_classes is None:
            cfg.model.net.num_classes = datamodule.num_classes
    if cfg.model.net.num_classes != datamodule.num_classes:
        raise ConfigError(
            f"model.net.num_classes={cfg.model.net.num_classes} but {cfg.data._target_} has "
            f"{datamodule.num_classes} classes. Set model.net.num_classes=null to take it from the data."
        )
    return datamodule, resume, settings


def completed_run(cfg: DictConfig, resume: Resume | None) -> dict[str, Any] | None:
    """The ``metrics.json`` of this run if it already completed at the checkpoint it resumes from, else None.

    Rerunning a finished run (e.g. a sweep again with ``ckpt_path=auto``) then only completes its bookkeeping.
    """
    path = Path(cfg.paths.output_dir) / "metrics.json"
    if resume is None or not path.is_file():
        return None
    try:
        metrics = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    same_run = metrics.get("run_id") == cfg.run_id and metrics.get("global_step") == resume.global_step
    finished = metrics.get("status") == "completed" and metrics.get("epochs", 0) >= cfg.trainer.max_epochs
    return metrics if same_run and finished else None


def cluster_plugins() -> list[Any]:
    """Under SLURM, Lightning's own requeue handler is replaced by neurov1's (:mod:`neurov1.training.preemption`)."""
    return [SLURMEnvironment(auto_requeue=False)] if SLURMEnvironment.detect() else []


def run_summary(
    cfg: DictConfig,
    trainer: L.Trainer,
    model: L.LightningModule,
    datamodule: L.LightningDataModule,
    resume: Resume | None,
    started: float,
    failure: RunError | None,
) -> dict[str, Any]:
    """The content of ``metrics.json``: what was trained, how far, the best and final metrics, and the outcome."""
    checkpoints = next((c for c in trainer.callbacks if isinstance(c, RunCheckpoints)), None)
    best = checkpoints.best_score if checkpoints else None
    unreadable = datamodule.unreadable_files()
    return {
        "run_name": cfg.run_name,
        "run_id": cfg.run_id,
        "components": model.components,
        "component_params": model.hparams["net"]["components"],
        "fixation": getattr(model, "fixation_policy", "center"),
        "arch": cfg.model.net.arch,
        "seed": cfg.seed,
        "ckpt_init": cfg.get("ckpt_init"),
        "resumed_from": str(resume.path) if resume else None,
        # every resume of the run, with what it changed (neurov1.training.settings)
        "resumes": resume.history if resume else [],
        "finetune": model.hparams.get("finetune"),
        "adversarial_training": model.hparams.get("adversarial"),
        "data": {
            "name": type(datamodule).__name__,
            "root": str(cfg.data.get("root", "embedded demo data")),
            "num_classes": datamodule.num_classes,
            "image_size": cfg.data.image_size,
            "unreadable_images_skipped": len(unreadable),
            "unreadable_files": unreadable[:100],
        },
        "epochs": trainer.current_epoch,
        "max_epochs": cfg.trainer.max_epochs,
        "global_step": trainer.global_step,
        "best": {
            "monitor": checkpoints.monitor if checkpoints else None,
            "value": best,
            "epoch": checkpoints.best_epoch if checkpoints else None,
            "checkpoint": str(checkpoints.best_path) if best is not None else None,
        },
        "last_checkpoint": str(checkpoints.last_path) if checkpoints and checkpoints.last_path.is_file() else None,
        # a resumed run that had nothing left to train still reports the metrics its checkpoint was taken with
        "final": {**(checkpoints.restored_metrics if checkpoints else {}), **scalar_metrics(trainer.callback_metrics)},
        "curves": {c.evaluation.name: c.curve() for c in trainer.callbacks if isinstance(c, EvaluationCallback)},
        "duration_s": round(time.time() - started, 1),  # this process
        "fit_seconds": round(checkpoints.seconds, 1) if checkpoints else None,  # in fit, over all resumes
        "status": "completed" if failure is None else STATUS.get(type(failure), "failed"),
        "failure": None if failure is None else f"{type(failure).__name__}: {failure}",
    }


def write_outcome(cfg: DictConfig, metrics: dict[str, Any]) -> None:
    """``metrics.json`` always; a ledger record for a completed or diverged run (the report lists the latter)."""
    try:
        path = write_json_atomic(Path(cfg.paths.output_dir) / "metrics.json", metrics)
    except OutputWriteError as error:
        log.error("metrics.json not written: %s", error)
        return
    if metrics["status"] in ("completed", "diverged"):
        write_record(cfg.paths.results_dir, "train", cfg.run_id, {**metrics, "run_dir": str(cfg.paths.output_dir)})
    best = metrics["best"]
    log.info(
        "%s (%s): best %s = %s after %d epochs in %.0f s; metrics in %s",
        cfg.run_name,
        metrics["status"],
        best["monitor"],
        "n/a" if best["value"] is None else f"{best['value']:.4f}",
        metrics["epochs"],
        metrics["duration_s"],
        path,
    )
