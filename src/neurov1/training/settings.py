"""What defines a training run, so that a resume continues the same run or says why it cannot.

Every checkpoint records the run's settings: its composed config, resolved and flattened to ``key: value`` (the
seed, the architecture and components, the data and its sampling, the batch size, the optimizer and scheduler, the
precision, ...). A resume compares them with the config it was started with. Settings that cannot alter what the run
computes (:data:`FREE`: where files go, loggers, callbacks and evaluations, data workers, ``trainer.max_epochs``
upwards, ...) may change; any other difference refuses the resume in one line listing each, unless the user accepts
those keys deliberately with ``accept_resume_changes=[key,...]``. Every difference of every resume, free or accepted,
is kept in the checkpoints and in ``metrics.json`` (``resumes``).
"""

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from neurov1.errors import ConfigError
from neurov1.models import resolve_components

ACCEPT_OPTION = "accept_resume_changes"
MAX_EPOCHS = "trainer.max_epochs"
# Keys (and everything below them) whose change cannot alter the run's weights: where and how it is observed, run
# or stored, and its length (trainer.max_epochs, upwards only: see settings_changes).
FREE = (
    "paths",
    "logger",
    "callbacks",
    "eval",
    "tags",
    "group",
    "run_name",
    "run_id",
    "task_name",
    "ckpt_path",
    "ckpt_init",  # its weights are in the checkpoint being resumed
    "trusted_targets",
    ACCEPT_OPTION,
    MAX_EPOCHS,
    "trainer.accelerator",
    "trainer.default_root_dir",
    "trainer.log_every_n_steps",
    "trainer.check_val_every_n_epoch",
    "trainer.val_check_interval",
    "trainer.limit_val_batches",
    "trainer.num_sanity_val_steps",
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
    "trainer.profiler",
    "data.num_workers",
    "data.pin_memory",
    "data.root",
    "data.verify",
    "data.verify_cache",
    "data.five_crop",
    "model.channels_last",
    "model.compile",
    "model.visual_degrees",
    "model.gaze",  # where neural scoring fixates
    "model.glimpses",  # an extra validation prediction
)
UNSET = "<unset>"


def _below(key: str, prefixes: Iterable[str]) -> bool:
    return any(key == prefix or key.startswith(f"{prefix}.") for prefix in prefixes)


def _flatten(node: Any, key: str = "") -> dict[str, Any]:
    if isinstance(node, Mapping) and node:
        flat: dict[str, Any] = {}
        for name, value in node.items():
            flat.update(_flatten(value, f"{key}.{name}" if key else str(name)))
        return flat
    return {key: node}


def run_settings(cfg: DictConfig) -> dict[str, Any]:
    """The run's config, resolved and flattened (``data.batch_size: 64``), components complete with their defaults."""
    plain = OmegaConf.to_container(cfg, resolve=True)
    plain["model"]["net"]["components"] = resolve_components(plain["model"]["net"].get("components") or {})
    return _flatten(plain)


def settings_changes(stored: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, list[Any]]:
    """``{key: [stored value, current value]}`` of every setting that differs (``<unset>`` where one has none)."""
    keys = sorted(set(stored) | set(current))
    return {
        key: [stored.get(key, UNSET), current.get(key, UNSET)]
        for key in keys
        if stored.get(key, UNSET) != current.get(key, UNSET)
    }


def _alters_the_run(key: str, stored: Any, current: Any) -> bool:
    if key == MAX_EPOCHS:
        return not (isinstance(stored, int) and isinstance(current, int) and current >= stored)
    return not _below(key, FREE)


def check_resume(
    stored: Mapping[str, Any] | None, current: Mapping[str, Any], accepted: Iterable[str], checkpoint: Path
) -> dict[str, Any]:
    """What a resume from ``checkpoint`` (its ``stored`` settings) changes; ConfigError listing every change that
    would alter the run and is not in ``accepted`` (keys, or prefixes of keys). Returns the record of this resume
    for ``metrics.json``."""
    accepted = [str(key) for key in accepted]
    changes = settings_changes(stored or {}, current) if stored is not None else {}
    refused = {
        key: values for key, values in changes.items() if _alters_the_run(key, *values) and not _below(key, accepted)
    }
    if refused:
        listed = "; ".join(f"{key} {old!r} -> {new!r}" for key, (old, new) in refused.items())
        raise ConfigError(
            f"ckpt_path={checkpoint}: this resume would change the run it continues: {listed}. Resume with the run's "
            "own settings, start a new run in another folder (drop ckpt_path), or accept the change deliberately with "
            f"{ACCEPT_OPTION}=[{','.join(refused)}] (recorded in metrics.json)."
        )
    return {
        "from": str(checkpoint),
        "settings_recorded": stored is not None,
        "changes": changes,
        "accepted": sorted(key for key, values in changes.items() if _alters_the_run(key, *values)),
    }
