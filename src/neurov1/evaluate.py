"""Evaluate a checkpoint: ``python -m neurov1.evaluate ckpt_path=<best.ckpt> eval=v1|corruption|adversarial``.

The evaluation is the ``eval`` node's ``_target_`` (:mod:`neurov1.evaluation`): Brain-Score V1 scores
(:mod:`neurov1.evaluation.v1`), Tiny-ImageNet-C (:mod:`neurov1.evaluation.corruption_robustness`) or clean vs L-inf PGD
accuracy (:mod:`neurov1.evaluation.adversarial`). Kinds that need data use the data the checkpoint was trained on
unless the command line gives a data group (``data=<group>``, then ``data.<key>=...``). ``ckpt_path=null``
evaluates an untrained model built from ``model`` (paper Table 6). Outputs go into the run folder; one record goes
into the results ledger.
"""

import logging
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from omegaconf import DictConfig, OmegaConf, open_dict

from neurov1.errors import ConfigError
from neurov1.evaluation.base import EvaluatedModel, Evaluation, Outcome
from neurov1.models.trust import composed_targets
from neurov1.results.ledger import write_record
from neurov1.training.module import NeuroV1Module
from neurov1.utils.cli import errors_exit, run
from neurov1.utils.config import CONFIG_PATH
from neurov1.utils.instantiate import instantiate, instantiate_loggers
from neurov1.utils.naming import model_label

log = logging.getLogger(__name__)


def load_network(cfg: DictConfig) -> tuple[NeuroV1Module, str]:
    """The checkpoint's model (its own architecture and components), or an untrained one built from the config."""
    if cfg.ckpt_path:
        module = NeuroV1Module.load_from_checkpoint(
            cfg.ckpt_path, map_location="cpu", trusted_targets=composed_targets(cfg)
        )
        return module, model_label(module.hparams["net"])
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    model_cfg["net"]["num_classes"] = model_cfg["net"]["num_classes"] or 1000
    module = instantiate(OmegaConf.create(model_cfg))
    return module, f"{model_label(model_cfg['net'])}-untrained"


def evaluation_data(cfg: DictConfig, module: NeuroV1Module, evaluation: Evaluation) -> L.LightningDataModule:
    """The validated data module: the command line's data group when it gives one, else the checkpoint's own."""
    given = cfg.get("data") is not None
    trained_on = module.hparams.get("data")
    if not given and trained_on is None:
        raise ConfigError(
            f"data: eval={evaluation.name} needs data and {cfg.ckpt_path or 'an untrained model'} does not say what "
            "it was trained on. Give it, e.g. data=imagenet data.root=<folder>."
        )
    node = cfg.data if given else OmegaConf.create(trained_on)
    with open_dict(node):
        node.five_crop = evaluation.five_crop
    datamodule = instantiate(node)
    datamodule.validate()
    classes = module.hparams["net"]["num_classes"]
    if datamodule.num_classes != classes:
        raise ConfigError(
            f"data: {type(datamodule).__name__} has {datamodule.num_classes} classes but the model classifies "
            f"{classes}. Evaluate on the data the model was trained on (or drop data= to take the checkpoint's)."
        )
    datamodule.setup("validate")
    return datamodule


def record_and_log(cfg: DictConfig, evaluation: Evaluation, label: str, outcome: Outcome) -> None:
    """Record the evaluation in the results ledger; log its metrics and figure to the loggers."""
    write_record(
        cfg.paths.results_dir,
        "evaluate",
        None,
        {
            "eval": evaluation.name,
            "model": label,
            "checkpoint": str(Path(cfg.ckpt_path).resolve()) if cfg.ckpt_path else None,
            "run_dir": str(cfg.paths.output_dir),
            "metrics": outcome.metrics,
            "settings": outcome.settings,
        },
    )
    with open_dict(cfg):
        cfg.run_name = cfg.run_name or label
    for logger in instantiate_loggers(cfg.get("logger")):
        logger.log_metrics(outcome.metrics)
        if outcome.figure is not None and hasattr(logger, "log_image"):
            logger.log_image(outcome.figure.stem, images=[str(outcome.figure)])
        logger.finalize("success")


def evaluate(cfg: DictConfig) -> Outcome:
    """Run the configured evaluation and write its outputs into the run directory."""
    evaluation: Evaluation = instantiate(cfg.eval)
    if not isinstance(evaluation, Evaluation):
        raise ConfigError(f"eval._target_: {cfg.eval._target_} is not a neurov1.evaluation.base.Evaluation.")
    module, label = load_network(cfg)
    datamodule = evaluation_data(cfg, module, evaluation) if evaluation.needs_data else None
    provenance = {"checkpoint": str(cfg.ckpt_path) if cfg.ckpt_path else None}
    outcome = evaluation.run(EvaluatedModel.of(module, label), Path(cfg.paths.output_dir), datamodule, provenance)
    record_and_log(cfg, evaluation, label, outcome)
    return outcome


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="evaluate")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point; returns the evaluation's headline number (V1 Overall, corrupted or PGD accuracy)."""
    with errors_exit():
        outcome: Any = evaluate(cfg)
    return outcome.headline


if __name__ == "__main__":
    run(main)
