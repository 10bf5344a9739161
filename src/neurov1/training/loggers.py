"""Loggers with the fallbacks users expect on clusters and offline machines, and that carry on when a run resumes."""

import csv
import io
import logging
import os
import socket
from pathlib import Path

from lightning.pytorch.loggers import CSVLogger, Logger, WandbLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment

from neurov1.utils.io import write_text_atomic

log = logging.getLogger(__name__)

WANDB_HOST = ("api.wandb.ai", 443)


def _wandb_online_reason() -> str | None:
    """None when W&B can run online, else why not (no API key, or the W&B server cannot be reached)."""
    has_key = bool(os.environ.get("WANDB_API_KEY"))
    netrc = Path.home() / ".netrc"
    if not has_key and not (netrc.is_file() and "api.wandb.ai" in netrc.read_text(errors="ignore")):
        return "no W&B API key (set WANDB_API_KEY or run `wandb login`)"
    try:
        socket.create_connection(WANDB_HOST, timeout=3).close()
    except OSError as error:
        return f"W&B server unreachable ({error})"
    return None


def wandb_logger(
    project: str,
    save_dir: str,
    name: str | None = None,
    tags: list[str] | None = None,
    group: str | None = None,
    entity: str | None = None,
    mode: str = "auto",
    run_id: str | None = None,
) -> WandbLogger:
    """A :class:`WandbLogger`; ``mode="auto"`` goes offline (sync later with ``wandb sync``) when online can't work.

    ``run_id``: the neurov1 run's identity, kept by a resumed run, so W&B continues the same run.
    """
    mode = wandb_mode(mode, save_dir)
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    return WandbLogger(
        project=project,
        save_dir=save_dir,
        name=name,
        tags=tags,
        group=group,
        entity=entity,
        mode=mode,
        id=run_id,
        resume="allow" if run_id else None,
    )


def wandb_mode(mode: str, save_dir: str | Path, key: str = "logger.wandb.mode") -> str:
    """The W&B mode to use: ``auto`` becomes online, or offline (with the reason logged) when online can't work."""
    if mode not in ("auto", "online", "offline", "disabled"):
        raise ValueError(f"{key} must be auto, online, offline or disabled, got {mode!r}")
    if mode != "auto":
        return mode
    reason = _wandb_online_reason()
    if reason:
        log.warning("W&B runs offline: %s. Upload later with `wandb sync %s/wandb`.", reason, save_dir)
    return "offline" if reason else "online"


class _ResumedCSVWriter(ExperimentWriter):
    """Lightning's CSV writer, except that an existing ``metrics.csv`` keeps its rows before ``resume_step``."""

    def __init__(self, log_dir: str, resume_step: int | None) -> None:
        self.resume_step = resume_step
        super().__init__(log_dir)

    def _check_log_dir_exists(self) -> None:
        if self.resume_step is None or not os.path.isfile(self.metrics_file_path):
            super()._check_log_dir_exists()
            return
        with open(self.metrics_file_path, newline="") as file:
            reader = csv.DictReader(file)
            rows = [row for row in reader if row.get("step") and int(float(row["step"])) < self.resume_step]
            header = list(reader.fieldnames or [])
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
        write_text_atomic(self.metrics_file_path, text.getvalue())
        self.metrics_keys = header


class RunCSVLogger(CSVLogger):
    """Lightning's CSVLogger, whose ``metrics.csv`` a resumed run continues (see :func:`resume_loggers`)."""

    resume_step: int | None = None

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _ResumedCSVWriter(self.log_dir, self.resume_step)
        return self._experiment


def resume_loggers(loggers: list[Logger], step: int) -> None:
    """A run resumed at logger step ``step``: file loggers keep what was logged before it and drop the rest."""
    for logger in loggers:
        if isinstance(logger, RunCSVLogger):
            logger.resume_step = step
