"""Export a checkpoint: ``python -m neurov1.export ckpt_path=<best.ckpt> format=brainscore out=<folder>``.

``format=brainscore`` writes a Brain-Score model plugin folder (:mod:`neurov1.evaluation.brainscore.submission`):
copy it into ``brainscore_vision/models/`` of a Brain-Score checkout, or zip it for the website's submission form.
"""

import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig

from neurov1.errors import ConfigError
from neurov1.evaluation.brainscore.submission import write_plugin
from neurov1.models.trust import composed_targets
from neurov1.training.module import NeuroV1Module
from neurov1.utils.cli import errors_exit, run
from neurov1.utils.config import CONFIG_PATH
from neurov1.utils.naming import model_label

log = logging.getLogger(__name__)
FORMATS = ("brainscore",)


def export(cfg: DictConfig) -> Path:
    """Check the settings and the checkpoint, then write the export; returns its folder."""
    if cfg.format not in FORMATS:
        raise ConfigError(f"format: one of {', '.join(FORMATS)}, got {cfg.format!r}.")
    if not cfg.out:
        raise ConfigError("out: the folder to write into, e.g. out=submissions.")
    module = NeuroV1Module.load_from_checkpoint(
        cfg.ckpt_path, map_location="cpu", trusted_targets=composed_targets(cfg)
    )
    net_config = module.hparams["net"]
    gaze = cfg.get("gaze", "center")
    folder = write_plugin(Path(cfg.out), module.net, net_config, module.scoring, model_label(net_config), gaze)
    log.info("Brain-Score plugin of %s (V1: %s): %s", cfg.ckpt_path, module.v1_layer, folder)
    return folder


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="export")
def main(cfg: DictConfig) -> None:
    with errors_exit():
        export(cfg)


if __name__ == "__main__":
    run(main)
