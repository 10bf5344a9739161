"""What every evaluation offers: ``eval=v1|corruption|adversarial|...`` is a ``_target_`` node of one of these.

``neurov1.evaluate`` instantiates the node (the constructor checks its settings: a ``ConfigError`` naming
``eval.<key>``), gives it the network and, when it ``needs_data``, the validated data module, and records its
``Outcome`` in the ledger; the training callbacks run the same evaluations.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
from torch import nn


@dataclass
class Outcome:
    """An evaluation's full result, its metrics for loggers and the ledger, and what commands return to sweepers."""

    result: dict[str, Any]
    metrics: dict[str, float]
    headline: float | None
    figure: Path | None = None
    settings: dict[str, Any] | None = None


class Evaluation:
    """Base of the evaluations.

    Attributes:
        name: the ledger's ``eval`` field (``v1``, ``corruption``, ``adversarial``).
        needs_data: whether ``run`` needs a data module (its validation split).
        five_crop: whether that data module should hand out the five crops too.
    """

    name = ""
    needs_data = False
    five_crop = False

    def run(
        self,
        net: nn.Module,
        hparams: Mapping[str, Any],
        label: str,
        out_dir: Path,
        datamodule: L.LightningDataModule | None = None,
        provenance: Mapping[str, Any] | None = None,
    ) -> Outcome:
        """Evaluate ``net`` (a model's network, with its module's ``hparams``); write the outputs into ``out_dir``.

        ``provenance`` says where the weights come from (``checkpoint``: its path, or ``epoch``: the training epoch);
        it is recorded in the written result."""
        raise NotImplementedError

    def plot_curve(self, curve: list[dict[str, float]], out_dir: Path, label: str) -> list[Path]:
        """Figures of this evaluation's metrics against the training epoch (``curve``: one dict per evaluation, with its
        ``epoch``), drawn into ``out_dir`` at the end of fit by the training callback; none by default."""
        return []
