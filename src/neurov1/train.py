"""Train a neuro-constrained ResNet: ``python -m neurov1.train [experiment=...] [+model/components=...]``.

Order of work: validate the component selection, the checkpoint to resume from and the dataset layout (all
cheap), then build the model, loggers and trainer, fit, and write ``metrics.json`` atomically in the run dir.
"""

import logging
import sys
import time
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from neurov1.checkpoints import check_checkpoint_matches, checkpoint_net_config
from neurov1.errors import ConfigError
from neurov1.ledger import append_record
from neurov1.models import validate_components
from neurov1.utils.cli import CONFIG_DIR, config_errors_exit, run
from neurov1.utils.instantiate import instantiate_callbacks, instantiate_loggers
from neurov1.utils.io import write_json_atomic
from neurov1.utils.naming import run_name, run_tags, sweep_group
from neurov1.utils.runtime import keep_large_allocations_in_heap

log = logging.getLogger(__name__)


def _scalar_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    return {key: float(value) for key, value in sorted(metrics.items()) if getattr(value, "numel", lambda: 1)() == 1}


def adopt_initial_model(cfg: DictConfig) -> None:
    """Take the architecture and components of ``ckpt_init``; refuse an explicitly different component selection."""
    stored = checkpoint_net_config(cfg.ckpt_init, key="ckpt_init")
    selected = validate_components(OmegaConf.to_container(cfg.model.net.components, resolve=True))
    stored_components = validate_components(stored.get("components") or {})
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
    """Load the weights of ``path``: all but the classifier (``net.fc``), which only ``classifier`` and a fit bring.

    Head-only fine-tuning starts a new classifier; continued training on the same classes (Free adversarial
    training from a standard checkpoint, paper Appendix G) keeps the whole model.
    """
    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    own = model.state_dict()
    fits = classifier and all(
        state.get(k) is not None and state[k].shape == own[k].shape for k in own if k.startswith("net.fc.")
    )
    weights = {k: v for k, v in state.items() if k.startswith("net.") and (fits or not k.startswith("net.fc."))}
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if unexpected or any(key.startswith("net.") and not key.startswith("net.fc.") for key in missing):
        raise ConfigError(
            f"ckpt_init={path}: weights do not fit the model (missing {missing}, unexpected {unexpected})"
        )
    log.info("Initialised from %s (%s)", path, "the whole model" if fits else "all but the classifier")


def prepare(cfg: DictConfig) -> L.LightningDataModule:
    """Check everything that can be checked cheaply, fill derived config values, return the validated data."""
    if cfg.get("ckpt_init"):
        adopt_initial_model(cfg)
    components = validate_components(OmegaConf.to_container(cfg.model.net.components, resolve=True))
    with open_dict(cfg):
        cfg.run_name = cfg.run_name or run_name(components, cfg.seed)
        cfg.group = cfg.get("group") or sweep_group()
        cfg.tags = list(dict.fromkeys([*cfg.tags, *run_tags(components, cfg.seed)]))
    if cfg.ckpt_path:
        check_checkpoint_matches(cfg.ckpt_path, OmegaConf.to_container(cfg.model.net, resolve=True))
    if cfg.model.net.input_size != cfg.data.image_size:
        raise ConfigError(
            f"model.net.input_size={cfg.model.net.input_size} but data.image_size={cfg.data.image_size}: the model "
            f"is built for the image size it is trained on. Set model.net.input_size={cfg.data.image_size}."
        )
    datamodule: L.LightningDataModule = hydra.utils.instantiate(cfg.data)
    datamodule.validate()
    with open_dict(cfg):
        if cfg.model.net.num_classes is None:
            cfg.model.net.num_classes = datamodule.num_classes
    if cfg.model.net.num_classes != datamodule.num_classes:
        raise ConfigError(
            f"model.net.num_classes={cfg.model.net.num_classes} but {cfg.data._target_} has "
            f"{datamodule.num_classes} classes. Set model.net.num_classes=null to take it from the data."
        )
    return datamodule


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit the configured model on the configured data; returns the content of ``metrics.json``."""
    started = time.time()
    keep_large_allocations_in_heap()
    L.seed_everything(cfg.seed, workers=True)
    datamodule = prepare(cfg)
    finetune = OmegaConf.to_container(cfg.finetune) if cfg.get("finetune") else None
    model: L.LightningModule = hydra.utils.instantiate(cfg.model, finetune=finetune)
    if cfg.get("ckpt_init"):
        load_initial_weights(model, cfg.ckpt_init, classifier=finetune is None)
    callbacks = instantiate_callbacks(cfg.get("callbacks"))
    loggers = instantiate_loggers(cfg.get("logger"))
    trainer: L.Trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))

    trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.ckpt_path)

    checkpoint = trainer.checkpoint_callback
    best_score = getattr(checkpoint, "best_model_score", None)
    metrics = {
        "run_name": cfg.run_name,
        "components": model.components,
        "component_params": model.hparams["net"]["components"],
        "arch": cfg.model.net.arch,
        "seed": cfg.seed,
        "ckpt_init": cfg.get("ckpt_init"),
        "finetune": finetune,
        "adversarial_training": model.hparams.get("adversarial"),
        "data": {
            "name": type(datamodule).__name__,
            "root": str(cfg.data.get("root", "embedded demo data")),
            "num_classes": datamodule.num_classes,
            "image_size": cfg.data.image_size,
        },
        "epochs": trainer.current_epoch,
        "max_epochs": cfg.trainer.max_epochs,
        "global_step": trainer.global_step,
        "best": {
            "monitor": getattr(checkpoint, "monitor", None),
            "value": None if best_score is None else float(best_score),
            "checkpoint": getattr(checkpoint, "best_model_path", None) or None,
        },
        "last_checkpoint": str(Path(checkpoint.dirpath) / "last.ckpt") if checkpoint and checkpoint.dirpath else None,
        "final": _scalar_metrics(trainer.callback_metrics),
        "duration_s": round(time.time() - started, 1),
        "status": "interrupted" if trainer.interrupted else "completed",
    }
    if trainer.is_global_zero:
        path = write_json_atomic(Path(cfg.paths.output_dir) / "metrics.json", metrics)
        append_record(cfg.paths.results_dir, "train", {**metrics, "run_dir": str(cfg.paths.output_dir)})
        best = metrics["best"]
        log.info(
            "%s: best %s = %s after %d epochs in %.0f s; metrics in %s",
            cfg.run_name,
            best["monitor"],
            "n/a" if best["value"] is None else f"{best['value']:.4f}",
            metrics["epochs"],
            metrics["duration_s"],
            path,
        )
    return metrics


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point; returns the best monitored metric so sweepers can optimise it."""
    try:
        with config_errors_exit():
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
    run(main)
