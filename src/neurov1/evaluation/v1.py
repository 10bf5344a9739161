"""Brain-Score V1 alignment (paper Sec. 3.2, Tables 1, 2 and 6): ``eval=v1``.

Writes ``v1_scores.json`` (every benchmark's ceiled/raw/ceiling values and source, the 7 group scores, V1
Predictivity/Property/Overall, visual degrees, identifier, timings), ``v1_scores.md``/``.csv`` (laid out like the
paper's Tables 1 and 2) and ``v1_groups.png``.
"""

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from neurov1.components.cortical_magnification import fixed_gaze
from neurov1.errors import check_int
from neurov1.evaluation.base import EvaluatedModel, Evaluation, Outcome, Provenance, check_gaze
from neurov1.evaluation.brainscore.evaluation import evaluate_v1, layers_to_score
from neurov1.evaluation.brainscore.scoring import V1Settings
from neurov1.evaluation.brainscore.tables import write_v1_outputs

log = logging.getLogger(__name__)


def v1_metrics(report: dict[str, Any]) -> dict[str, float]:
    """Flat ``v1/overall``, ``v1/predictivity``, ``v1/property`` and ``v1/<group>`` metrics (scored ones only)."""
    metrics = {f"v1/{key.removeprefix('v1_')}": value for key, value in report["scores"].items()}
    metrics.update({f"v1/{group}": value["score"] for group, value in report["groups"].items()})
    return {key: float(value) for key, value in metrics.items() if value is not None}


def partial_note(report: dict[str, Any]) -> str:
    """Why the headline scores are partial, if they are."""
    if report["missing"]:
        return f" (partial: {len(report['missing'])} of {len(report['benchmarks'])} benchmarks not scored)"
    return f" (partial: a subset of {len(report['benchmarks'])} benchmarks)" if report["partial"] else ""


class V1Evaluation(Evaluation):
    """Score layers of the network on Brain-Score's V1 benchmarks (settings: ``conf/eval/v1.yaml``).

    Args:
        layers: ``v1`` (the backbone's V1 layer), ``scan`` (its layer scan, paper Appendix B) or module names.
        predictivity, source, benchmarks, seed: :class:`neurov1.evaluation.brainscore.scoring.V1Settings`.
        batch_size: images per forward pass; cache_dir: Brain-Score's caches and the generated stimuli.
        five_crop: training validation also reports the mean prediction over five crops (read by the data groups).
        gaze: ``center`` (default) pins the cortical magnification's fixation at the polar centre while scoring;
            ``free`` lets the fixation policy choose (``model.gaze``); recorded in ``v1_scores.json``.
    """

    name = "v1"

    def __init__(
        self,
        layers: str | Sequence[str] = "v1",
        predictivity: str = "public",
        source: str = "auto",
        benchmarks: Sequence[str] | None = None,
        seed: int = 0,
        batch_size: int = 64,
        cache_dir: str | None = None,
        five_crop: bool = False,
        gaze: str = "center",
    ) -> None:
        check_int(batch_size, "eval.batch_size", 64)
        self.gaze = check_gaze(gaze)
        self.settings = V1Settings(predictivity, source, seed, tuple(benchmarks) if benchmarks else None)
        self.layers = layers if isinstance(layers, str) else list(layers)
        self.batch_size = batch_size
        self.cache_dir = cache_dir
        self.five_crop = five_crop

    def run(
        self, model: EvaluatedModel, out_dir: Path, datamodule: Any = None, provenance: Provenance = None
    ) -> Outcome:
        label = model.label
        layers = layers_to_score(self.layers, model)
        with fixed_gaze(model.net, self.gaze):
            report = evaluate_v1(model, self.settings, layers, batch_size=self.batch_size, cache_dir=self.cache_dir)
        report.update(provenance or {})
        report["gaze"] = self.gaze
        report["components"] = list(model.architecture["components"])
        paths = write_v1_outputs(report, out_dir, label)
        scores = report["scores"]
        log.info(
            "%s %s: V1 Overall %s, Predictivity %s, Property %s%s; %s",
            label,
            report["layer"],
            *(
                f"{scores[k]:.3f}" if scores[k] is not None else "n/a"
                for k in ("v1_overall", "v1_predictivity", "v1_property")
            ),
            partial_note(report),
            paths["json"],
        )
        return Outcome(report, v1_metrics(report), scores["v1_overall"], paths["groups_plot"])
