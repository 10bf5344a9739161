"""Evaluate a checkpoint: ``python -m neurov1.evaluate ckpt_path=<best.ckpt> eval=v1``.

Writes ``v1_scores.json`` (every benchmark's ceiled/raw/ceiling values and source, the 7 group scores, V1
Predictivity/Property/Overall, visual degrees, identifier, timings), ``v1_scores.md``/``.csv`` (laid out like the
paper's Tables 1 and 2) and ``v1_groups.png`` into the run directory. ``eval=corruption``: Tiny-ImageNet-C tables
(:mod:`neurov1.robustness`); ``eval=adversarial``: clean vs L-inf PGD accuracy (:mod:`neurov1.adversarial`).
"""

import logging
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf, open_dict

from neurov1.adversarial import PGDAttack, adversarial_metrics, pgd_accuracy
from neurov1.adversarial import write_outputs as write_adversarial_outputs
from neurov1.brainscore.evaluation import appendix_b_layers, evaluate_v1
from neurov1.brainscore.report import write_outputs
from neurov1.brainscore.scoring import V1Settings
from neurov1.checkpoints import checkpoint_net_config
from neurov1.errors import ConfigError, check_int
from neurov1.ledger import write_record
from neurov1.module import NeuroV1Module
from neurov1.robustness import accuracy, evaluate_corruptions, load_rows, summary_metrics
from neurov1.robustness import summarize as summarize_corruptions
from neurov1.robustness import write_outputs as write_corruption_outputs
from neurov1.utils.cli import CONFIG_DIR, errors_exit, run
from neurov1.utils.instantiate import instantiate_loggers
from neurov1.utils.naming import model_label
from neurov1.utils.runtime import resolve_device

log = logging.getLogger(__name__)


def load_network(cfg: DictConfig) -> tuple[NeuroV1Module, str]:
    """The checkpoint's model (its own architecture and components), or an untrained one built from the config."""
    if cfg.ckpt_path:
        checkpoint_net_config(cfg.ckpt_path)  # a clear error for a missing or foreign file
        module = NeuroV1Module.load_from_checkpoint(cfg.ckpt_path, map_location="cpu")
        return module, model_label(module.hparams["net"])
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    model_cfg["net"]["num_classes"] = model_cfg["net"]["num_classes"] or 1000
    module = NeuroV1Module(model_cfg["net"], model_cfg["optimizer"], model_cfg["scheduler"])
    return module, f"{model_label(model_cfg['net'])}-untrained"


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Run the configured evaluation and write its outputs into the run directory."""
    if cfg.eval.name == "corruption":
        return evaluate_corruption(cfg)
    if cfg.eval.name == "adversarial":
        return evaluate_adversarial(cfg)
    if cfg.eval.name != "v1":
        raise ConfigError(f"eval={cfg.eval.name}: unknown evaluation; available: v1, corruption, adversarial")
    settings = V1Settings(
        predictivity=cfg.eval.predictivity,
        source=cfg.eval.source,
        seed=cfg.eval.seed,
        benchmarks=tuple(cfg.eval.benchmarks) if cfg.eval.benchmarks else None,
    )
    module, label = load_network(cfg)
    net = module.net
    layers = appendix_b_layers(net) if cfg.eval.layers == "appendix_b" else list(cfg.eval.layers)
    report = evaluate_v1(
        net,
        label,
        settings,
        layers=layers,
        visual_degrees=cfg.eval.visual_degrees,
        image_size=module.hparams["net"]["input_size"],
        batch_size=cfg.eval.batch_size,
        cache_dir=cfg.eval.cache_dir,
    )
    report["checkpoint"] = str(cfg.ckpt_path) if cfg.ckpt_path else None
    report["components"] = module.components
    paths = write_outputs(report, Path(cfg.paths.output_dir), label)
    scores = report["scores"]
    log.info(
        "%s %s: V1 Overall %s, Predictivity %s, Property %s%s; %s",
        label,
        report["layer"],
        *(
            f"{scores[k]:.3f}" if scores[k] is not None else "n/a"
            for k in ("v1_overall", "v1_predictivity", "v1_property")
        ),
        _partial_note(report),
        paths["json"],
    )
    _record_and_log(cfg, label, v1_metrics(report), paths["groups_plot"])
    return report


def evaluate_corruption(cfg: DictConfig) -> dict[str, Any]:
    """Clean and Tiny-ImageNet-C accuracy, Tables 8-10, CE vs a baseline, a severity plot; logged to loggers."""
    settings = cfg.eval.corruption
    baseline = load_rows(settings.baseline) if settings.baseline else None
    module, label = load_network(cfg)
    net = module.net.eval()
    clean, clean_result = None, None
    if settings.clean:
        with open_dict(cfg):
            cfg.data.five_crop = cfg.eval.five_crop
        datamodule = hydra.utils.instantiate(cfg.data)
        datamodule.validate()
        datamodule.setup("validate")
        clean_result = accuracy(net, datamodule.val_dataloader(), datamodule.device_transform)
        clean = clean_result["accuracy"]
    result = evaluate_corruptions(
        net,
        settings.root,
        num_classes=module.hparams["net"]["num_classes"],
        corruptions=list(settings.corruptions) if settings.corruptions else None,
        severities=list(settings.severities),
        batch_size=cfg.eval.batch_size,
        num_workers=cfg.eval.num_workers,
        limit_per_condition=settings.limit_per_condition,
        five_crop=cfg.eval.five_crop,
        image_size=module.hparams["net"]["input_size"],
    )
    summary = summarize_corruptions(result["rows"], clean, baseline)
    summary["clean"] = clean_result
    paths = write_corruption_outputs(result, summary, Path(cfg.paths.output_dir), label)
    log.info(
        "%s: clean %s, Tiny-ImageNet-C %.3f over %d conditions (%d missing); %s",
        label,
        "n/a" if clean is None else f"{clean:.3f}",
        summary["mean_corrupted_accuracy"],
        len(result["rows"]),
        len(result["missing"]),
        paths["markdown"],
    )
    metrics = summary_metrics(summary)
    metrics.update({f"corruption/clean_{k}": v for k, v in (clean_result or {}).items() if v is not None})
    _record_and_log(cfg, label, metrics, paths["plot"])
    return {"summary": summary, **result}


def evaluate_adversarial(cfg: DictConfig) -> dict[str, Any]:
    """Clean vs L-inf PGD top-1 accuracy on the data group's val split (paper Sec. 4.5, Table 4), logged."""
    attack = PGDAttack.from_config(cfg.eval.attack, "eval.attack")
    if cfg.eval.limit is not None:
        check_int(cfg.eval.limit, "eval.limit", 1000)
    device = resolve_device(cfg.eval.device, "eval.device")
    datamodule = hydra.utils.instantiate(cfg.data)
    datamodule.validate()
    module, label = load_network(cfg)
    classes = module.hparams["net"]["num_classes"]
    if datamodule.num_classes != classes:
        raise ConfigError(
            f"data: {type(datamodule).__name__} has {datamodule.num_classes} classes but {label} classifies {classes}. "
            "Evaluate on the data the model was trained on (e.g. data=imagenet data.root=...)."
        )
    datamodule.setup("validate")
    result = pgd_accuracy(module.net.to(device), datamodule, attack, cfg.eval.limit)
    paths = write_adversarial_outputs(result, Path(cfg.paths.output_dir), label)
    log.info(
        "%s: clean %.3f, PGD-%d (eps %.3g/255) %.3f on %d images; %s",
        label,
        result["clean_acc1"],
        attack.steps,
        attack.eps * 255,
        result["acc1"],
        result["images"],
        paths["markdown"],
    )
    _record_and_log(
        cfg, label, adversarial_metrics(result), settings={"attack": result["attack"], "limit": cfg.eval.limit}
    )
    return result


def _record_and_log(
    cfg: DictConfig,
    label: str,
    metrics: dict[str, float],
    image: Path | None = None,
    settings: dict[str, Any] | None = None,
) -> None:
    """Record the evaluation (with its ``settings``) in the results ledger; log metrics and figure to the loggers."""
    write_record(
        cfg.paths.results_dir,
        "evaluate",
        None,
        {
            "eval": cfg.eval.name,
            "model": label,
            "checkpoint": str(Path(cfg.ckpt_path).resolve()) if cfg.ckpt_path else None,
            "run_dir": str(cfg.paths.output_dir),
            "metrics": metrics,
            "settings": settings,
        },
    )
    with open_dict(cfg):
        cfg.run_name = cfg.run_name or label
    for logger in instantiate_loggers(cfg.get("logger")):
        logger.log_metrics(metrics)
        if image is not None and hasattr(logger, "log_image"):
            logger.log_image(image.stem, images=[str(image)])
        logger.finalize("success")


def _partial_note(report: dict[str, Any]) -> str:
    if report["missing"]:
        return f" (partial: {len(report['missing'])} of {len(report['benchmarks'])} benchmarks not scored)"
    return f" (partial: a subset of {len(report['benchmarks'])} benchmarks)" if report["partial"] else ""


def v1_metrics(report: dict[str, Any]) -> dict[str, float]:
    """Flat ``v1/overall``, ``v1/predictivity``, ``v1/property`` and ``v1/<group>`` metrics (scored ones only)."""
    metrics = {f"v1/{key.removeprefix('v1_')}": value for key, value in report["scores"].items()}
    metrics.update({f"v1/{group}": value["score"] for group, value in report["groups"].items()})
    return {key: float(value) for key, value in metrics.items() if value is not None}


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="evaluate")
def main(cfg: DictConfig) -> float | None:
    with errors_exit():
        report = evaluate(cfg)
    if cfg.eval.name == "adversarial":
        return report["acc1"]
    return report["scores"]["v1_overall"] if "scores" in report else report["summary"]["mean_corrupted_accuracy"]


if __name__ == "__main__":
    run(main)
