"""Analyse a trained model's learned components (paper Sec. 4.3, Figures F.1 and F.2) and its V1 units' tuning.

``python -m neurov1.analyze ckpt_path=<run>/checkpoints/best.ckpt [analysis=[dog,tuned_norm,polar,...]]`` writes
the figures, ``analysis.json`` (every number and the timings) and, for ``lpips_diversity``, ``lpips_distances.csv``
into the run directory. ``analysis=null`` (the default) runs every analysis that applies to the checkpoint's
components and lists the others as skipped; an explicit list naming one that does not apply is an error.
``python -m neurov1.analyze compare=[<run A>,<run B>]`` runs the one-way ANOVA of their pairwise LPIPS distances.

Everything that can be checked cheaply (names, settings, the checkpoint's components, the LPIPS trunk file) is
checked before the model is loaded and the optimisation starts.
"""

import difflib
import logging
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from neurov1.errors import ConfigError, check_int
from neurov1.inspection import SUMMARY_FILE
from neurov1.inspection.diversity import analyze_lpips, compare_runs, lpips_metric
from neurov1.inspection.fixation import FIGURE, fixation_figure, validation_samples
from neurov1.inspection.max_activation import StimulusSettings, maximize_channels, save_gallery
from neurov1.inspection.parameters import analyze_dog, analyze_tuned_norm
from neurov1.inspection.polar import analyze_polar
from neurov1.inspection.tuning_curves import analyze_tuning_curves
from neurov1.models import backbone_for, resolve_components
from neurov1.models.activations import LayerOutput
from neurov1.models.trust import composed_targets
from neurov1.training.checkpoints import checkpoint_net_config
from neurov1.training.module import NeuroV1Module
from neurov1.utils.cli import errors_exit, run
from neurov1.utils.config import CONFIG_PATH
from neurov1.utils.instantiate import instantiate
from neurov1.utils.io import write_json_atomic
from neurov1.utils.naming import model_label
from neurov1.utils.runtime import resolve_device

log = logging.getLogger(__name__)

# Each analysis and the component it needs (None: any model).
ANALYSES: dict[str, str | None] = {
    "dog": "center_surround",
    "tuned_norm": "tuned_norm",
    "polar": "cortical_mag",
    "fixation": "cortical_mag",
    "max_activation": None,
    "lpips_diversity": None,
    "tuning_curves": None,
}


def select_analyses(requested: list[str] | None, components: Collection[str]) -> tuple[list[str], dict[str, str]]:
    """The analyses to run, in canonical order, and the skipped ones with the reason.

    ``requested=None``: all that apply to ``components``. A requested unknown name, or one whose component is
    missing, raises :class:`ConfigError`. ``lpips_diversity`` brings ``max_activation`` (it needs its stimuli).
    """
    if requested is None:
        selected = [name for name, needed in ANALYSES.items() if needed is None or needed in components]
        return selected, {
            name: f"the model has no {needed}" for name, needed in ANALYSES.items() if needed and name not in selected
        }
    for name in requested:
        if name not in ANALYSES:
            close = difflib.get_close_matches(str(name), list(ANALYSES), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"analysis: unknown analysis {name!r}.{hint} Known: {', '.join(ANALYSES)}. "
                "Set e.g. analysis=[dog,max_activation], or analysis=null for every one that applies."
            )
        needed = ANALYSES[name]
        if needed is not None and needed not in components:
            raise ConfigError(
                f"analysis: {name} analyses the {needed} component, but the checkpoint's model has "
                f"[{','.join(components)}]. Remove {name} from analysis=[...], or set analysis=null to run every "
                "analysis that applies."
            )
    if "lpips_diversity" in requested and "max_activation" not in requested:
        log.info("lpips_diversity compares the max_activation stimuli: running max_activation too")
        requested = [*requested, "max_activation"]
    return [name for name in ANALYSES if name in requested], {}


def run_fixation(module: NeuroV1Module, out_dir: Path, label: str, count: int) -> dict[str, Any]:
    """``fixations.png``: the first ``count`` validation images of the checkpoint's data (its ``data`` config) with
    the fixations of its policy, the known object centres and the polar rings."""
    datamodule = instantiate(module.hparams["data"], key="data")
    datamodule.setup("validate")
    images, centers = validation_samples(datamodule.val_dataset, count)
    mean, std = module.scoring.channel_mean()[0], module.scoring.channel_std()[0]
    return fixation_figure(module, images, centers, out_dir / FIGURE, label, mean, std)


def _check_settings(cfg: DictConfig) -> None:
    check_int(cfg.dog.bins, "dog.bins", 40)
    check_int(cfg.dog.gallery_kernels, "dog.gallery_kernels", 64)
    check_int(cfg.tuning_curves.units, "tuning_curves.units", 8)
    check_int(cfg.fixation.images, "fixation.images", 16)
    if cfg.polar.image_size is not None:
        check_int(cfg.polar.image_size, "polar.image_size", 64, minimum=32)
    if not 0 <= cfg.polar.offset <= 0.5:
        raise ConfigError(f"polar.offset must be in [0, 0.5] (a fraction of the crop side), got {cfg.polar.offset!r}.")


def analyze(cfg: DictConfig) -> dict[str, Any]:
    """Run the selected analyses of ``cfg.ckpt_path`` (or the comparison of ``cfg.compare``); write their outputs."""
    out_dir = Path(cfg.paths.output_dir)
    if cfg.compare is not None:
        if cfg.ckpt_path or not OmegaConf.is_list(cfg.compare):
            raise ConfigError(
                "compare: a list of analyze run directories, compare=[<run A>,<run B>], without ckpt_path."
            )
        result = compare_runs([str(run) for run in cfg.compare], out_dir)
        log.info("LPIPS ANOVA: F = %.3f, p = %.3g (%s)", result["F"], result["p"], out_dir / "lpips_anova.md")
        return result
    if not cfg.ckpt_path:
        raise ConfigError(
            "ckpt_path: required. Set ckpt_path=<run>/checkpoints/best.ckpt, or compare=[<run A>,<run B>]."
        )

    net_config = checkpoint_net_config(cfg.ckpt_path, trusted=composed_targets(cfg))
    components = resolve_components(net_config.get("components") or {})
    requested = None if cfg.analysis is None else list(OmegaConf.to_container(cfg.analysis, resolve=True))
    names, skipped = select_analyses(requested, components)
    for name, reason in skipped.items():
        log.info("Skipping %s: %s", name, reason)
    _check_settings(cfg)
    stimulus_settings = StimulusSettings(**OmegaConf.to_container(cfg.max_activation, resolve=True))
    device = resolve_device(cfg.device, "device")
    backbone = backbone_for(net_config["arch"], net_config.get("backbone"))
    channels = stimulus_settings.resolve_channels(backbone.v1_channels(net_config["arch"]))
    if "lpips_diversity" in names and len(channels) < 2:
        raise ConfigError("max_activation.channels: lpips_diversity needs the stimuli of at least 2 channels.")
    metric, trunk = (
        lpips_metric(cfg.lpips_diversity.trunk_weights, stimulus_settings.seed)
        if "lpips_diversity" in names
        else (None, None)
    )

    module = NeuroV1Module.load_from_checkpoint(
        cfg.ckpt_path, map_location="cpu", trusted_targets=composed_targets(cfg)
    )
    net, v1_layer = module.net.eval(), module.v1_layer
    label = model_label(net_config)
    input_size = net_config["input_size"]
    size = stimulus_settings.image_size or input_size

    report: dict[str, Any] = {
        "checkpoint": str(cfg.ckpt_path),
        "model": label,
        "components": list(components),
        "analyses": names,
        "skipped": skipped,
    }
    stimuli: dict[str, torch.Tensor] = {}

    def run_max_activation() -> dict[str, Any]:
        v1 = LayerOutput(net, v1_layer).to(device)
        stimuli.update(maximize_channels(v1, channels, size, stimulus_settings, device))
        gallery = save_gallery(
            stimuli["images"],
            channels,
            stimulus_settings.columns,
            out_dir / "max_activation.png",
            f"{label}\nmaximally activating stimuli of {v1_layer} channels ({size} px)",
        )
        return {
            "channels": channels,
            "image_size": size,
            "activation": stimuli["activation"].tolist(),
            "initial_activation": stimuli["initial_activation"].tolist(),
            "increased_fraction": float((stimuli["activation"] > stimuli["initial_activation"]).float().mean()),
            "settings": OmegaConf.to_container(cfg.max_activation, resolve=True),
            "device": str(device),
            "files": [gallery.name],
        }

    steps: dict[str, Callable[[], dict[str, Any]]] = {
        "dog": lambda: analyze_dog(net, out_dir, cfg.dog.bins, cfg.dog.gallery_kernels),
        "tuned_norm": lambda: analyze_tuned_norm(net, out_dir),
        "polar": lambda: analyze_polar(
            net,
            out_dir,
            input_size,
            cfg.polar.image_size or input_size,
            cfg.polar.offset,
            stimulus_settings.mean,
            stimulus_settings.std,
        ),
        "fixation": lambda: run_fixation(module, out_dir, label, cfg.fixation.images),
        "max_activation": run_max_activation,
        "lpips_diversity": lambda: analyze_lpips(metric, trunk, stimuli["images"], channels, out_dir),
        "tuning_curves": lambda: analyze_tuning_curves(
            net.to(device),
            v1_layer,
            out_dir,
            module.scoring,
            cfg.tuning_curves.units,
            cfg.tuning_curves.seed,
        ),
    }
    timings = {}
    for name in names:
        start = time.perf_counter()
        report[name] = steps[name]()
        timings[name] = round(time.perf_counter() - start, 3)
        log.info("%s: done in %.1f s (%s)", name, timings[name], ", ".join(report[name]["files"]))
    report["timings_s"] = timings
    path = write_json_atomic(out_dir / SUMMARY_FILE, report)
    if "lpips_diversity" in report:
        log.info(
            "Mean pairwise LPIPS of %d stimuli: %.4f (trunk: %s)",
            len(channels),
            report["lpips_diversity"]["mean"],
            trunk,
        )
    log.info("%s: %s", label, path)
    return report


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="analyze")
def main(cfg: DictConfig) -> None:
    with errors_exit():
        analyze(cfg)


if __name__ == "__main__":
    run(main)
