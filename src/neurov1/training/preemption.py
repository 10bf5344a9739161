"""Preemption and time limits: the signals that end a job early, and requeueing it on SLURM.

SLURM warns a job before it stops it: at the time limit with the signal given by ``--signal`` (submitit, which
``hydra/launcher=slurm`` uses, sends SIGUSR2 ``hydra.launcher.signal_delay_s`` seconds early), on preemption with
SIGTERM followed by SIGKILL after the grace time. The handler installed here only records the signal: a checkpoint
written from inside a signal handler could catch a step half done. :class:`neurov1.training.checkpoints.RunCheckpoints`
saves at the next batch end (at the epoch's last batch: after its validation and ``last.ckpt``) and stops the
run with :class:`neurov1.errors.Preempted`; the entry point then writes ``metrics.json`` and calls
:meth:`PreemptionSignals.hand_over`, which requeues the job after a time-limit signal under SLURM: through
submitit's own handler when submitit launched the job (it re-pickles the launcher and counts time-outs), else with
``scontrol requeue``. The requeued job runs in the same folder and resumes from its newest checkpoint
(``SLURM_RESTART_COUNT`` > 0, see :func:`neurov1.training.checkpoints.resume_checkpoint`).
"""

import logging
import os
import re
import signal
import subprocess
import threading
from collections.abc import Sequence
from types import FrameType
from typing import Any

from neurov1.errors import ConfigError

log = logging.getLogger(__name__)


def parse_signal(name: str, key: str) -> signal.Signals:
    """``USR2``, ``SIGUSR2`` or ``12`` -> signal.SIGUSR2; ConfigError naming ``key`` for an unknown name."""
    text = str(name).upper()
    try:
        return (
            signal.Signals(int(text))
            if text.isdigit()
            else signal.Signals[text if text.startswith("SIG") else f"SIG{text}"]
        )
    except (KeyError, ValueError):
        raise ConfigError(
            f"{key}: unknown signal {name!r}. Use names such as USR2 (SLURM time limit) or TERM."
        ) from None


def slurm_job_id() -> str | None:
    """The id ``scontrol requeue`` takes for this job (``<array job>_<task>`` for an array task), or None."""
    array_job, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    job = f"{array_job}_{task}" if array_job and task else os.environ.get("SLURM_JOB_ID")
    return job if job and re.fullmatch(r"[0-9_]+", job) else None


def is_requeued_slurm_job() -> bool:
    """Whether this process is a SLURM job that was requeued (it should resume from its run folder)."""
    return int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0) > 0


class PreemptionSignals:
    """Records the first of ``signals`` that arrives; :meth:`hand_over` then requeues the job where that applies.

    Args:
        signals: names such as ``USR2`` and ``TERM`` (``callbacks.checkpoint.preemption_signals``).
        requeue_on: the signals after which a SLURM job is requeued (the time-limit warning; a SIGTERM is either a
            preemption, which SLURM requeues itself, or a cancellation).
    """

    def __init__(self, signals: Sequence[str], requeue_on: Sequence[str] = ("USR2",)) -> None:
        key = "callbacks.checkpoint.preemption_signals"
        self.signals = [parse_signal(name, key) for name in signals]
        self.requeue_on = {parse_signal(name, key) for name in requeue_on}
        self.received: signal.Signals | None = None
        self._previous: dict[signal.Signals, Any] = {}

    def install(self) -> None:
        """Take over the signals (main thread only; Lightning restores the previous handlers when fit ends)."""
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in self.signals:
            handler = signal.getsignal(signum)
            if handler is not self._record:
                self._previous[signum] = handler
                signal.signal(signum, self._record)

    def _record(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signal.Signals(signum)

    def hand_over(self) -> str:
        """After the checkpoint is saved: requeue a SLURM job stopped by a time-limit signal; says what was done."""
        received = self.received
        if received is None or received not in self.requeue_on:
            return "not requeued"
        previous = self._previous.get(received)
        if callable(previous) and getattr(previous, "__module__", "").startswith("submitit"):
            log.info("Handing %s to submitit, which requeues the job", received.name)
            previous(received, None)  # requeues and exits the process
        job = slurm_job_id()
        if job is None:
            return "not under SLURM, not requeued"
        try:
            result = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"scontrol requeue {job} failed: {error}"
        if result.returncode != 0:
            return f"scontrol requeue {job} failed: {(result.stderr or result.stdout).strip()}"
        return f"SLURM job {job} requeued"
