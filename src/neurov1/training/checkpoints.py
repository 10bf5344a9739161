"""Checkpoints that mean what they say: checked before any work starts, written atomically, resumable.

A training run keeps three files in ``<run>/checkpoints/``:

- ``last.ckpt``: the state at the end of the latest epoch (after its validation), rewritten every epoch;
- ``best.ckpt``: the state at the validation with the best ``monitor`` value so far;
- ``step.ckpt``: a mid-epoch state, every ``every_n_steps`` optimizer steps and/or ``every_minutes`` minutes of
  training, and when a preemption signal arrives (:mod:`neurov1.training.preemption`), so a killed run loses at
  most that.

Each is a complete training state: weights, optimizer, scheduler, Lightning's loop counters, the position in the
data order (the data module's state), the RNG states, the best score so far and the run's identity. Resuming from
any of them (``ckpt_path=<file>`` or ``ckpt_path=auto``, :func:`resume_checkpoint`) continues the same run in the
same folder. Files are written through :func:`neurov1.utils.io.atomic_writer` (:class:`AtomicCheckpointIO`), so a
kill or a full disk during a write leaves the previous file intact, and a checkpoint is never written from weights
that are not finite.
"""

import difflib
import logging
import math
import pickle
import random
import time
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Checkpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO

from neurov1.errors import ConfigError, Diverged, Preempted, check_int
from neurov1.models import resolve_components
from neurov1.models.trust import UntrustedTarget, check_saved_targets
from neurov1.training.preemption import PreemptionSignals, is_requeued_slurm_job
from neurov1.utils.instantiate import locate
from neurov1.utils.io import atomic_writer

log = logging.getLogger(__name__)

BEST, LAST, STEP = "best.ckpt", "last.ckpt", "step.ckpt"
RESUMABLE = (LAST, STEP)
RUN_STATE_KEY = "neurov1_run"  # run identity, best score and RNG states, beside Lightning's own keys


def _load_failure(key: str, path: Path, error: BaseException) -> ConfigError:
    if isinstance(error, pickle.UnpicklingError) and "weights only" in str(error).lower():
        return ConfigError(
            f"{key}={path}: holds Python objects that torch's safe loader (weights_only=True) refuses to rebuild; "
            "neurov1 never runs code from a file. Use a checkpoint written by neurov1.train."
        )
    if not zipfile.is_zipfile(path):  # torch writes zip archives, whose directory is at the end
        reason = "no zip directory at its end"
    else:
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        reason = f"{type(error).__name__}: {first_line[:120]}"
    return ConfigError(
        f"{key}={path}: not a readable checkpoint ({reason}): it is truncated, corrupt or not a torch file. Use "
        "another checkpoint of the run (ckpt_path=auto takes the newest readable one)."
    )


def read_checkpoint(
    path: str | Path, key: str = "ckpt_path", training_state: bool = False, trusted: Iterable[str] = ()
) -> dict[str, Any]:
    """Load a neurov1 checkpoint on the CPU (``weights_only=True``); ConfigError naming ``key`` if it cannot serve.

    ``training_state``: also require the optimizer and loop state a resume needs. Every ``_target_`` of its configs
    must be neurov1's own or in ``trusted`` (:mod:`neurov1.models.trust`): nothing it names is imported otherwise.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{key}={path}: no such checkpoint file. Point {key} at a .ckpt written by neurov1.train.")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch raises many types for a truncated or foreign file
        raise _load_failure(key, path, error) from None
    hyper_parameters = checkpoint.get("hyper_parameters") if isinstance(checkpoint, dict) else None
    if not isinstance(hyper_parameters, dict) or not isinstance(hyper_parameters.get("net"), dict):
        raise ConfigError(
            f"{key}={path}: not a neurov1 checkpoint (no hyper_parameters.net). Use best.ckpt, last.ckpt or "
            "step.ckpt from a neurov1.train run folder."
        )
    check_saved_targets(hyper_parameters, f"{key}={path}", trusted)
    if training_state and not {"loops", "optimizer_states", "state_dict"} <= set(checkpoint):
        raise ConfigError(
            f"{key}={path} holds weights only, no training state to resume. Start a new run from its weights "
            f"with ckpt_init={path} instead."
        )
    return checkpoint


def checkpoint_net_config(path: str | Path, key: str = "ckpt_path", trusted: Iterable[str] = ()) -> dict[str, Any]:
    """The ``net`` hyperparameters (arch, components, ...) stored in a neurov1 checkpoint (its targets trusted)."""
    return read_checkpoint(path, key, trusted=trusted)["hyper_parameters"]["net"]


def _describe(net: dict[str, Any]) -> str:
    components = list(net.get("components") or {})
    return f"{net.get('arch')} with [{','.join(components)}]" if components else f"{net.get('arch')} baseline"


def _parameters(components: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each component's parameters (without its _target_ and site), for messages."""
    return {name: {k: v for k, v in node.items() if k not in ("_target_", "site")} for name, node in components.items()}


def check_checkpoint_matches(checkpoint: dict[str, Any], path: str | Path, net: dict[str, Any], key: str) -> None:
    """Raise :class:`ConfigError` when the checkpoint's architecture or components differ from ``net``."""
    stored = checkpoint["hyper_parameters"]["net"]
    wanted = {**net, "components": resolve_components(net.get("components") or {})}
    stored_components = resolve_components(stored.get("components") or {})
    if stored.get("arch") != wanted.get("arch") or stored_components != wanted["components"]:
        names = ",".join(stored_components)
        selection = f"'+model/components=[{names}]'" if names else "no +model/components"
        raise ConfigError(
            f"{key}={path} was trained as {_describe(stored)} (parameters {_parameters(stored_components)}) but the "
            f"config builds {_describe(wanted)} (parameters {_parameters(wanted['components'])}). Resume with "
            f"model.net.arch={stored.get('arch')} and {selection}, or drop {key} to start a new run."
        )


def newest_checkpoint(folder: Path, trusted: Iterable[str] = ()) -> Path | None:
    """The resumable checkpoint of ``folder`` furthest into training (``last`` wins a tie); unreadable ones skipped
    (one naming code that is not trusted stops the search: see :func:`read_checkpoint`)."""
    candidates = []
    for rank, name in enumerate(RESUMABLE):
        path = folder / name
        if not path.is_file():
            continue
        try:
            checkpoint = read_checkpoint(path, training_state=True, trusted=trusted)
        except UntrustedTarget:
            raise
        except ConfigError as error:
            log.warning("ckpt_path=auto skips %s", error)
            continue
        candidates.append((checkpoint.get("global_step", 0), -rank, path))
    return max(candidates)[2] if candidates else None


def resume_checkpoint(ckpt_path: str | None, run_dir: Path, trusted: Iterable[str] = ()) -> Path | None:
    """The checkpoint a run in ``run_dir`` resumes from, or None for a new run.

    ``ckpt_path``: a file; ``auto``, the newest readable ``last``/``step`` checkpoint of ``run_dir`` (None when it
    has none); ``null``, a new run, except in a requeued SLURM job, which resumes as with ``auto``. A new run in a
    folder that already holds checkpoints is refused rather than overwriting them.
    """
    folder = run_dir / "checkpoints"
    if ckpt_path is None and any((folder / name).is_file() for name in RESUMABLE):
        if not is_requeued_slurm_job():
            raise ConfigError(
                f"ckpt_path=null but {folder} holds the checkpoints of an earlier run. Resume it with ckpt_path=auto, "
                "or start a new run in another folder (drop hydra.run.dir)."
            )
        log.info("Requeued SLURM job: resuming from the newest checkpoint in %s", folder)
        ckpt_path = "auto"
    if ckpt_path is None:
        return None
    if ckpt_path == "auto":
        newest = newest_checkpoint(folder, trusted)
        log.info("ckpt_path=auto: %s", f"resuming from {newest}" if newest else f"no checkpoint in {folder}, new run")
        return newest
    return Path(ckpt_path).expanduser().absolute()


def check_monitor(callbacks: Mapping[str, Any], module_class: type) -> None:
    """ConfigError before any work when ``callbacks.checkpoint.monitor`` is none of the metrics the model logs
    (``module_class.LOGGED_METRICS``), nor in the namespace of an evaluation that runs during training (``v1/...``)."""
    monitor = (callbacks.get("checkpoint") or {}).get("monitor")
    logged = getattr(module_class, "LOGGED_METRICS", None)
    namespaces = [
        f"{locate(node['evaluation']['_target_'], f'callbacks.{name}.evaluation._target_').name}/"
        for name, node in callbacks.items()
        if isinstance(node, Mapping) and "_target_" in (node.get("evaluation") or {})
    ]
    if monitor is None or logged is None or monitor in logged or monitor.startswith(tuple(namespaces)):
        return
    close = difflib.get_close_matches(monitor, logged, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    evaluations = "".join(f"; evaluations log {namespace}..." for namespace in namespaces)
    raise ConfigError(
        f"callbacks.checkpoint.monitor={monitor!r} is not a metric of this run.{hint} The model logs "
        f"{', '.join(logged)}{evaluations}. Set e.g. callbacks.checkpoint.monitor=val/acc1."
    )


def rng_states() -> dict[str, Any]:
    """Python's, numpy's, torch's (and CUDA's) global RNG states, as types ``torch.load(weights_only=True)`` reads."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.copy()), position, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_states(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_states` returned."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy(), position, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class _WriteErrors:
    """A file handle that remembers the OSError of a failed write (torch's zip writer reports a full disk as a
    RuntimeError, "unexpected pos", losing the reason)."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.error: OSError | None = None

    def write(self, data: bytes) -> int:
        try:
            return self.handle.write(data)
        except OSError as error:
            self.error = error
            raise

    def flush(self) -> None:
        self.handle.flush()


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer through :func:`neurov1.utils.io.atomic_writer`, on any filesystem.

    (Lightning's own writer stages the file in the system temp folder and moves it: across filesystems that is a
    copy, which a kill truncates, leaving the staged file behind.) A write that fails (a full disk) is the one-line
    :class:`neurov1.errors.OutputWriteError` of the atomic writer; the previous file stays intact.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options, got {storage_options!r}")
        with atomic_writer(path) as handle:
            recorder = _WriteErrors(handle)
            try:
                torch.save(checkpoint, recorder)
            except RuntimeError:
                if recorder.error is None:
                    raise
                raise recorder.error from None


class RunCheckpoints(Checkpoint):
    """Writes ``best.ckpt``, ``last.ckpt`` and ``step.ckpt`` (see the module doc) and stops on preemption signals.

    Args:
        dirpath: the run's checkpoint folder.
        monitor: the logged metric that decides ``best.ckpt``; mode: ``max`` or ``min``.
        every_n_steps: a ``step.ckpt`` every this many optimizer steps (null: none by count).
        every_minutes: a ``step.ckpt`` when this many minutes of training passed since the last checkpoint.
        preemption_signals: the signals that save a checkpoint at the next batch end and stop the run.
        run_id: the run's identity, stored in every checkpoint (the entry point gives a resumed run its old one).
    """

    def __init__(
        self,
        dirpath: str | Path,
        monitor: str = "val/acc1",
        mode: str = "max",
        every_n_steps: int | None = None,
        every_minutes: float | None = 30.0,
        preemption_signals: list[str] | tuple[str, ...] = ("USR2", "TERM"),
        run_id: str | None = None,
    ) -> None:
        if mode not in ("max", "min"):
            raise ConfigError(f"callbacks.checkpoint.mode={mode!r}: use max (accuracy) or min (loss).")
        if every_n_steps is not None:
            check_int(every_n_steps, "callbacks.checkpoint.every_n_steps", 5000)
        if every_minutes is not None and not (isinstance(every_minutes, int | float) and every_minutes > 0):
            raise ConfigError(
                f"callbacks.checkpoint.every_minutes={every_minutes!r}: must be a positive number of minutes or null. "
                "Set e.g. callbacks.checkpoint.every_minutes=30."
            )
        self.dirpath = Path(dirpath)
        self.monitor = monitor
        self.mode = mode
        self.every_n_steps = every_n_steps
        self.every_minutes = every_minutes
        self.signals = PreemptionSignals(preemption_signals)
        self.run_id = run_id
        self.settings: dict[str, Any] | None = None  # what defines the run (record_run), kept in every checkpoint
        self.resumes: list[dict[str, Any]] = []
        self._stop_after: Path | None = None  # a preemption saved this checkpoint; the run stops at the next step
        self.best_score: float | None = None
        self.best_epoch: int | None = None
        self.restored_metrics: dict[str, float] = {}  # the logged metrics at the checkpoint a run resumed from
        self._seconds_before = 0.0  # training time of the run before this process resumed it
        self._fit_started = time.monotonic()
        self._rng_to_restore: dict[str, Any] | None = None
        self._last_save_time = time.monotonic()
        self._last_save_step = 0

    def record_run(self, settings: dict[str, Any], resumes: list[dict[str, Any]]) -> None:
        """Keep the run's settings (:func:`neurov1.training.settings.run_settings`) and its resumes so far in every
        checkpoint, so that a resume can tell whether it continues the same run."""
        self.settings, self.resumes = settings, resumes

    @property
    def best_path(self) -> Path:
        return self.dirpath / BEST

    @property
    def last_path(self) -> Path:
        return self.dirpath / LAST

    @property
    def step_path(self) -> Path:
        return self.dirpath / STEP

    @staticmethod
    def _fitting(trainer: L.Trainer) -> bool:
        return trainer.state.fn == "fit" and not trainer.sanity_checking and not trainer.fast_dev_run

    def _improves(self, value: float) -> bool:
        if self.best_score is None:
            return True
        return value > self.best_score if self.mode == "max" else value < self.best_score

    def on_sanity_check_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.signals.install()

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._fit_started = time.monotonic()

    @property
    def seconds(self) -> float:
        """The run's time in fit so far, over all the processes that resumed it."""
        return self._seconds_before + time.monotonic() - self._fit_started

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.signals.install()
        if self._rng_to_restore is not None:
            set_rng_states(self._rng_to_restore)
            self._rng_to_restore = None
        self._last_save_time = time.monotonic()
        self._last_save_step = trainer.global_step

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._fitting(trainer):
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            logged = ", ".join(sorted(trainer.callback_metrics)) or "none"
            raise ConfigError(
                f"callbacks.checkpoint.monitor={self.monitor!r} was not logged (logged: {logged}). "
                "Set callbacks.checkpoint.monitor=val/acc1."
            )
        value = float(value)
        if not math.isfinite(value):
            log.warning(
                "%s = %s after epoch %d: not a candidate for best.ckpt", self.monitor, value, trainer.current_epoch
            )
        elif self._improves(value):
            self.best_score, self.best_epoch = value, trainer.current_epoch
            self._save(trainer, self.best_path)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._fitting(trainer):
            return
        self._save(trainer, self.last_path)
        if self._agree(trainer, self.signals.received is not None):
            self._stop_after = self.last_path

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if not self._fitting(trainer) or trainer.fit_loop.epoch_loop.batch_progress.is_last_batch:
            return  # (at the epoch's last batch, its validation and last.ckpt come next)
        if self._agree(trainer, self.signals.received is not None):
            self._save(trainer, self.step_path)
            self._stop_after = self.step_path
        elif self._agree(trainer, self._step_due(trainer)):
            self._save(trainer, self.step_path)

    def _stop_if_preempted(self, trainer: L.Trainer) -> None:
        """Stop after a preemption checkpoint, once Lightning has logged the step (or epoch) it was taken at: the
        resumed run logs from the next one, so no row of the loggers is lost."""
        if self._stop_after is not None:
            raise self._preempted(trainer, self._stop_after)

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._stop_if_preempted(trainer)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._stop_if_preempted(trainer)

    def _step_due(self, trainer: L.Trainer) -> bool:
        by_steps = self.every_n_steps is not None and trainer.global_step - self._last_save_step >= self.every_n_steps
        minutes = (time.monotonic() - self._last_save_time) / 60
        return by_steps or (self.every_minutes is not None and minutes >= self.every_minutes)

    @staticmethod
    def _agree(trainer: L.Trainer, decision: bool) -> bool:
        """One decision for all processes (any process's True), so that they all save at the same step."""
        return trainer.strategy.reduce_boolean_decision(decision, all=False) if trainer.world_size > 1 else decision

    def _preempted(self, trainer: L.Trainer, path: Path) -> Preempted:
        return Preempted(
            f"{self.signals.received.name} received; saved {path} at epoch {trainer.current_epoch}, step "
            f"{trainer.global_step}. Resume with ckpt_path=auto hydra.run.dir={self.dirpath.parent}"
        )

    def _save(self, trainer: L.Trainer, path: Path) -> None:
        """Write ``path`` (and flush the loggers first, so that their files hold everything logged before it)."""
        check_finite_weights(trainer)
        self._last_save_time = time.monotonic()
        self._last_save_step = trainer.global_step
        for logger in trainer.loggers:
            logger.save()
        trainer.save_checkpoint(path, weights_only=False)

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        checkpoint[RUN_STATE_KEY] = {
            "run_id": self.run_id,
            "monitor": self.monitor,
            "best_score": self.best_score,
            "best_epoch": self.best_epoch,
            "metrics": scalar_metrics(trainer.callback_metrics),
            "seconds": self.seconds,
            "rng": rng_states(),
            "settings": self.settings,
            "resumes": self.resumes,
        }

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get(RUN_STATE_KEY) or {}
        if state.get("monitor") == self.monitor and self.best_path.is_file():
            self.best_score, self.best_epoch = state.get("best_score"), state.get("best_epoch")
        self.restored_metrics = state.get("metrics") or {}
        self._seconds_before = state.get("seconds", 0.0)
        self._rng_to_restore = state.get("rng")


def scalar_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The single-number entries of Lightning's logged metrics, as floats, sorted by name."""
    return {key: float(value) for key, value in sorted(metrics.items()) if getattr(value, "numel", lambda: 1)() == 1}


def check_finite_weights(trainer: L.Trainer) -> None:
    """:class:`Diverged` when a parameter or buffer of the model holds a NaN or an infinity."""
    tensors = [
        (name, tensor)
        for name, tensor in (*trainer.lightning_module.named_parameters(), *trainer.lightning_module.named_buffers())
        if tensor.is_floating_point()
    ]
    if not tensors or bool(torch.stack([torch.isfinite(tensor).all() for _, tensor in tensors]).all()):
        return
    bad = [name for name, tensor in tensors if not bool(torch.isfinite(tensor).all())]
    raise Diverged(
        f"non-finite values in {len(bad)} weight tensors ({', '.join(bad[:3])}) at epoch {trainer.current_epoch}, "
        f"step {trainer.global_step}; no checkpoint was written from them. {LOWER_LR_HINT}"
    )


LOWER_LR_HINT = "Lower the learning rate (model.optimizer.lr) or check the data"
