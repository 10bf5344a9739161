"""What every evaluation offers: ``eval=v1|corruption|adversarial|...`` is a ``_target_`` node of one of these.

``neurov1.evaluate`` instantiates the node (the constructor checks its settings: a ``ConfigError`` naming
``eval.<key>``), gives it the model (:class:`EvaluatedModel`) and, when it ``needs_data``, the validated data
module, and records its ``Outcome`` in the ledger; the training callbacks run the same evaluations.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from neurov1.components.cortical_magnification import GAZES
from neurov1.errors import ConfigError
from neurov1.models.contract import ScoringContract

Provenance = Mapping[str, Any] | None  # where the weights come from (checkpoint path or training epoch)


@dataclass(frozen=True)
class EvaluatedModel:
    """What an evaluation evaluates.

    Attributes:
        net: the network (put in eval mode by the evaluation).
        scoring: its scoring contract (V1 layer, visual degrees, input size and normalisation, five-crop).
        architecture: its ``model.net`` settings (``arch``, ``backbone``, ``num_classes``, ``input_size``,
            ``components``).
        label: its name in outputs and the ledger (e.g. ``resnet18-center_surround+tuned_norm``).
    """

    net: nn.Module
    scoring: ScoringContract
    architecture: Mapping[str, Any]
    label: str

    @classmethod
    def of(cls, module: Any, label: str, net: nn.Module | None = None) -> "EvaluatedModel":
        """A :class:`neurov1.training.module.NeuroV1Module`'s (``net``: another copy of its network)."""
        return cls(module.net if net is None else net, module.scoring, module.hparams["net"], label)

    @classmethod
    def of_network(cls, net: nn.Module, architecture: Mapping[str, Any], label: str) -> "EvaluatedModel":
        """A network built from ``architecture`` (``model.net``) alone, with the contract it makes by default."""
        return cls(net, ScoringContract.of(net, architecture), {"components": {}, **architecture}, label)


def check_gaze(gaze: str) -> str:
    """``eval.gaze`` (from ``model.gaze``): ``center`` pins the cortical magnification's fixation at the polar
    centre while scoring, as the monkeys of the V1 experiments fixated the screen's centre; ``free`` lets the
    model's fixation policy choose."""
    if gaze not in GAZES:
        raise ConfigError(f"eval.gaze (model.gaze): center or free, got {gaze!r}.")
    return gaze


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
        self, model: EvaluatedModel, out_dir: Path, datamodule: Any = None, provenance: Provenance = None
    ) -> Outcome:
        """Evaluate ``model``; write the outputs into ``out_dir``.

        ``provenance`` says where the weights come from (``checkpoint``: its path, or ``epoch``: the training epoch);
        it is recorded in the written result."""
        raise NotImplementedError

    def plot_curve(self, curve: list[dict[str, float]], out_dir: Path, label: str) -> list[Path]:
        """Figures of this evaluation's metrics against the training epoch (``curve``: one dict per evaluation, with its
        ``epoch``), drawn into ``out_dir`` at the end of fit by the training callback; none by default."""
        return []
