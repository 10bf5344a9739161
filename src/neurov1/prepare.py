"""Write a streaming store: ``python -m neurov1.prepare data=imagenet data.root=<folder> out=<store>``.

Reads the ImageNet-style folder of ``data`` (validated as for training: classes are the sorted train folders) and
writes its train and val images into a LitData store (:mod:`neurov1.data.store`) for ``data=imagenet_stream``,
with a progress bar; a killed run, started again with the same command, writes only its unfinished shards.
"""

import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig

from neurov1.data.folders import class_images
from neurov1.data.store import write_store
from neurov1.errors import ConfigError, check_int
from neurov1.utils.cli import errors_exit, run
from neurov1.utils.config import CONFIG_PATH
from neurov1.utils.instantiate import instantiate

log = logging.getLogger(__name__)


def prepare(cfg: DictConfig) -> dict:
    """Validate the source folder and the settings, then write (or finish) the store; returns its manifest."""
    for key, suggestion in (("long_side", 320), ("shard_size", 20000), ("workers", 8)):
        check_int(cfg[key], key, suggestion)
    if not (isinstance(cfg.quality, int) and 1 <= cfg.quality <= 100):
        raise ConfigError(f"quality: a JPEG quality from 1 to 100, got {cfg.quality!r}. Set quality=90.")
    datamodule = instantiate(cfg.data)
    if not hasattr(datamodule, "root_setting"):
        raise ConfigError(f"data: {cfg.data._target_} is not an image folder. Use data=imagenet data.root=<folder>.")
    datamodule.validate()
    datamodule.verify_all()
    root, classes = datamodule.root, datamodule.class_names
    splits = {}
    for split in ("train", "val"):
        paths, labels = class_images(root / split, classes)
        splits[split] = [(str(root / split / path), label) for path, label in zip(paths, labels, strict=True)]
    out = Path(cfg.out).expanduser().absolute()
    manifest = write_store(
        out,
        root,
        classes,
        splits,
        long_side=cfg.long_side,
        quality=cfg.quality,
        shard_size=cfg.shard_size,
        workers=cfg.workers,
        chunk_bytes=cfg.chunk_bytes,
        skip_unreadable=datamodule.on_bad_image == "skip",
    )
    log.info("Store %s: %s images, %d unreadable skipped", out, manifest["counts"], len(manifest["unreadable"]))
    return manifest


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="prepare")
def main(cfg: DictConfig) -> None:
    with errors_exit():
        prepare(cfg)


if __name__ == "__main__":
    run(main)
