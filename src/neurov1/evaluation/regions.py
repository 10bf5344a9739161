"""V2, V4 and IT predictivity (paper Table 7): ``eval=regions``.

For each region the paper committed the layer that scores best on the region's public benchmark among the
backbone's candidate layers, and reported that layer's score. The same here: every candidate layer (the backbone's
layer scan after its V1 layer, e.g. ResNet-50's 16 block outputs and 4 downsampling layers minus layer1's) is
committed to the region and scored on the benchmark through Brain-Score:

- V2: ``FreemanZiemba2013public.V2-pls``;
- V4: ``MajajHong2015public.V4-pls``;
- IT: ``MajajHong2015public.IT-pls``.

The benchmark is loaded once per region before any layer is scored: without network (or Brain-Score's cache) the
region is listed as not scored with the reason. Writes ``regions.json`` (chosen layer, its score and every
candidate's), ``regions.md``/``.csv`` and ``regions.png``; the ledger gets ``regions/<region>``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from neurov1.components.cortical_magnification import fixed_gaze
from neurov1.errors import ConfigError, check_int
from neurov1.evaluation.base import EvaluatedModel, Evaluation, Outcome, Provenance, check_gaze
from neurov1.evaluation.brainscore.environment import import_brainscore
from neurov1.evaluation.brainscore.evaluation import layers_to_score
from neurov1.evaluation.brainscore.model import brain_model, model_identifier
from neurov1.evaluation.brainscore.scoring import recorded_downloads, score_entry, unavailable_reason
from neurov1.models.activations import check_layers
from neurov1.utils.io import write_json_atomic, write_text_atomic
from neurov1.utils.plots import new_figure, save_figure
from neurov1.utils.tables import csv_text, fmt

log = logging.getLogger(__name__)

REGION_BENCHMARKS: dict[str, str] = {
    "V2": "FreemanZiemba2013public.V2-pls",
    "V4": "MajajHong2015public.V4-pls",
    "IT": "MajajHong2015public.IT-pls",
}


def select_layers(scores: Mapping[str, Mapping[str, float | None]]) -> dict[str, dict[str, Any]]:
    """Per region, the candidate layer with the best score (``None`` scores skipped; the first layer in candidate
    order wins a tie): ``{region: {"layer", "score"}}``; ``{"layer": None, "score": None}`` when none scored."""
    chosen = {}
    for region, per_layer in scores.items():
        scored = [(layer, value) for layer, value in per_layer.items() if value is not None and np.isfinite(value)]
        layer, value = max(scored, key=lambda item: item[1]) if scored else (None, None)
        chosen[region] = {"layer": layer, "score": value}
    return chosen


def candidate_layers(model: EvaluatedModel) -> list[str]:
    """The backbone's layer scan after the model's V1 layer (the layers V2, V4 and IT may be committed to)."""
    scan = layers_to_score("scan", model)
    v1 = model.scoring.v1_layer
    in_v1 = [index for index, layer in enumerate(scan) if layer == v1 or layer.startswith(f"{v1}.")]
    return scan[in_v1[-1] + 1 :] if in_v1 else scan


def score_regions(
    regions: Sequence[str],
    layers: Sequence[str],
    score: Callable[[Any, str, str], Any],
    load: Callable[[str], Any],
) -> dict[str, dict[str, Any]]:
    """Score every candidate layer of every region: ``load(benchmark id)`` once per region (its failure makes the
    region unscored with the reason), then ``score(benchmark, region, layer)`` (a Brain-Score score) per layer."""
    results = {}
    for region in regions:
        benchmark_id = REGION_BENCHMARKS[region]
        started = time.time()
        with recorded_downloads() as failed:
            try:
                benchmark = load(benchmark_id)
            except Exception as error:  # noqa: BLE001 - no network: reported, not raised
                reason = unavailable_reason(benchmark_id, error, failed)
                log.warning("%s not scored: %s", region, reason)
                results[region] = {"benchmark": benchmark_id, "layer": None, "score": None, "reason": reason}
                continue
        per_layer = {}
        for layer in layers:
            per_layer[layer] = score_entry(benchmark_id, score(benchmark, region, layer))
            log.info("%s %s: %s", region, layer, fmt(per_layer[layer]["ceiled"]))
        best = select_layers({region: {layer: e["ceiled"] for layer, e in per_layer.items()}})[region]
        results[region] = {"benchmark": benchmark_id, **best, "layers": per_layer, "seconds": time.time() - started}
    return results


def markdown_table(report: dict[str, Any]) -> str:
    regions = report["regions"]
    lines = [
        f"Brain regions of {report['model']} (paper Table 7: the best candidate layer per region)",
        "",
        "| model | " + " | ".join(regions) + " |",
        "|---" * (len(regions) + 1) + "|",
        f"| {report['model']} | " + " | ".join(fmt(r["score"]) for r in regions.values()) + " |",
        "",
        "| region | benchmark | layer | ceiled score | note |",
        "|---|---|---|---|---|",
    ]
    for region, result in regions.items():
        note = (result.get("reason") or "").replace("|", "/")[:160]
        layer = result["layer"] or "-"
        lines.append(f"| {region} | {result['benchmark']} | {layer} | {fmt(result['score'])} | {note} |")
    return "\n".join(lines) + "\n"


def bar_plot(report: dict[str, Any], path: Path) -> Path:
    regions = report["regions"]
    values = [result["score"] for result in regions.values()]
    figure, axis = new_figure(5)
    axis.bar(range(len(values)), [v or 0.0 for v in values], color=["C0" if v is not None else "0.8" for v in values])
    for index, (value, result) in enumerate(zip(values, regions.values(), strict=True)):
        text = f"{fmt(value)}\n{result['layer'] or 'not scored'}"
        axis.text(index, (value or 0.0) + 0.01, text, ha="center", fontsize=7)
    axis.set_xticks(range(len(values)), list(regions))
    axis.set_ylim(0, 1.1)
    axis.set_ylabel("ceiled score")
    return save_figure(figure, path, f"V2, V4, IT: {report['model']}")


class RegionsEvaluation(Evaluation):
    """Score V2, V4 and IT on the best candidate layer each (settings: ``conf/eval/regions.yaml``).

    Args:
        regions: a subset of V2, V4, IT.
        layers: ``scan`` (the backbone's layer scan after its V1 layer) or a list of module names.
        seed, batch_size, cache_dir, gaze: as ``eval=v1``.
    """

    name = "regions"

    def __init__(
        self,
        regions: Sequence[str] = ("V2", "V4", "IT"),
        layers: str | Sequence[str] = "scan",
        seed: int = 0,
        batch_size: int = 64,
        cache_dir: str | None = None,
        gaze: str = "center",
    ) -> None:
        check_int(batch_size, "eval.batch_size", 64)
        self.gaze = check_gaze(gaze)
        unknown = sorted(set(regions) - set(REGION_BENCHMARKS))
        if unknown or not regions:
            raise ConfigError(f"eval.regions: choose among {list(REGION_BENCHMARKS)}, got {list(regions)}.")
        self.regions = list(regions)
        self.layers = layers if isinstance(layers, str) else list(layers)
        self.seed, self.batch_size, self.cache_dir = seed, batch_size, cache_dir

    def run(
        self, model: EvaluatedModel, out_dir: Path, datamodule: Any = None, provenance: Provenance = None
    ) -> Outcome:
        net, label, scoring = model.net, model.label, model.scoring
        layers = candidate_layers(model) if self.layers == "scan" else list(self.layers)
        check_layers(net, layers)  # every layer exists, before anything is scored
        brainscore_vision = import_brainscore(self.cache_dir)
        size, degrees = scoring.image_size, scoring.visual_degrees

        def score(benchmark: Any, region: str, layer: str) -> Any:
            identifier = model_identifier(net, layer, size, degrees)
            committed = brain_model(net, layer, identifier, scoring, batch_size=self.batch_size, region=region)
            np.random.seed(self.seed)
            return benchmark(committed)

        started = time.time()
        with fixed_gaze(net, self.gaze):
            scored_regions = score_regions(self.regions, layers, score, brainscore_vision.load_benchmark)
        report = {
            "model": label,
            "gaze": self.gaze,
            "regions": scored_regions,
            "candidate_layers": layers,
            "visual_degrees": degrees,
            "image_size": size,
            "seed": self.seed,
            **(provenance or {}),
            "seconds": round(time.time() - started, 1),
        }
        out_dir.mkdir(parents=True, exist_ok=True)
        path = write_json_atomic(out_dir / "regions.json", report)
        write_text_atomic(out_dir / "regions.md", markdown_table(report))
        rows = [["region", "benchmark", "layer", "ceiled"]]
        rows += [[region, r["benchmark"], r["layer"], r["score"]] for region, r in report["regions"].items()]
        write_text_atomic(out_dir / "regions.csv", csv_text(rows))
        figure = bar_plot(report, out_dir / "regions.png")
        metrics = {f"regions/{region}": r["score"] for region, r in report["regions"].items() if r["score"] is not None}
        scored = ", ".join(f"{region} {fmt(r['score'])} ({r['layer']})" for region, r in report["regions"].items())
        log.info("%s: %s; %s", label, scored, path)
        return Outcome(report, metrics, None, figure, {"regions": self.regions, "layers": layers})
