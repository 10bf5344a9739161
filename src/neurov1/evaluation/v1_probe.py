"""In-silico V1 electrophysiology in seconds: ``eval=v1_probe`` (and ``callbacks=v1_probe`` every epoch).

Marques et al.'s grating experiments run natively on the model's device (:mod:`neurov1.evaluation.probe`): the
stimuli as tensors at the model's input size, every unit of the committed layer recorded in batches, the 15
grating-based properties vectorised over units, scored with Brain-Score's own metric and ceilings against the
reference data that can be loaded (offline: the 7 benchmarks rebuilt from published histograms; with network:
Brain-Score's data for all 15). The other benchmarks (V1 Predictivity, the 7 FreemanZiemba2013 texture properties)
need Brain-Score's images: with network they are scored through Brain-Score itself, offline they are listed as not
measured. Groups and headline scores are aggregated as ``eval=v1`` does.

Writes ``v1_probe.json`` (laid out like ``v1_scores.json``, plus ``units``, per-benchmark ``properties``
summaries, the per-unit ``unit_values`` and ``timings``), ``v1_probe.md``/``.csv`` and ``v1_probe_groups.png``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from neurov1.components.cortical_magnification import fixed_gaze
from neurov1.errors import check_int
from neurov1.evaluation.base import EvaluatedModel, Evaluation, Outcome, Provenance, check_gaze
from neurov1.evaluation.brainscore.benchmarks import PROPERTY_GROUPS
from neurov1.evaluation.brainscore.environment import configure_brainscore
from neurov1.evaluation.brainscore.evaluation import layers_to_score
from neurov1.evaluation.brainscore.model import brain_model, model_identifier
from neurov1.evaluation.brainscore.scoring import V1Settings, score_layer, summarize
from neurov1.evaluation.brainscore.tables import write_v1_outputs
from neurov1.evaluation.probe.electrophysiology import record
from neurov1.evaluation.probe.scoring import PROBE_BENCHMARKS, distribution_summary, load_references, score_property
from neurov1.evaluation.v1 import partial_note
from neurov1.models.activations import LayerOutput
from neurov1.models.contract import ScoringContract
from neurov1.utils.plots import new_figure, plt, save_figure, write_png

log = logging.getLogger(__name__)

NOT_MEASURED_OFFLINE = (
    "not measured by the probe: needs Brain-Score's stimuli and data (FreemanZiemba2013 textures, V1 recordings), "
    "only on its servers; with network (eval.source=auto|brainscore) it is scored through Brain-Score"
)


def probe_metrics(report: dict[str, Any]) -> dict[str, float]:
    """``v1_probe/<group>``, ``v1_probe/property`` (and overall/predictivity when scored), per-benchmark
    ``v1_probe/<benchmark>/median`` and ``/units`` (responsive units), and the call's cost ``v1_probe/seconds``."""
    metrics = {f"v1_probe/{key.removeprefix('v1_')}": value for key, value in report["scores"].items()}
    metrics["v1_probe/seconds"] = report["seconds"]
    metrics.update({f"v1_probe/{group}": value["score"] for group, value in report["groups"].items()})
    for benchmark_id, summary in report["properties"].items():
        short = benchmark_id.removeprefix("Marques2020_")
        metrics[f"v1_probe/{short}/median"] = summary["median"]
        metrics[f"v1_probe/{short}/units"] = summary["units"]
    return {key: float(value) for key, value in metrics.items() if value is not None}


def _strict(values: np.ndarray) -> list[float | None]:
    return [None if not np.isfinite(value) else float(value) for value in values]


def probe_v1(
    net: nn.Module,
    layer: str,
    settings: V1Settings,
    scoring: ScoringContract,
    batch_size: int = 64,
    cache_dir: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Record ``layer`` of ``net`` (on its device) as its scoring contract commits it (input size, visual degrees,
    normalisation) and score the selected benchmarks; the report's dict."""
    started = time.perf_counter()
    image_size, visual_degrees = scoring.image_size, scoring.visual_degrees
    configure_brainscore(cache_dir)
    recording = record(
        LayerOutput(net, layer),
        image_size,
        visual_degrees,
        batch_size,
        scoring.channel_mean(),
        scoring.channel_std(),
        progress=progress,
        cache_dir=cache_dir,
    )
    tables = recording.tables()
    timings = dict(recording.seconds)

    scoring_started = time.perf_counter()
    selected = settings.selected()
    native = [benchmark for benchmark in selected if benchmark in PROBE_BENCHMARKS]
    references = load_references({PROBE_BENCHMARKS[b][0] for b in native}, settings.source)
    entries: dict[str, dict[str, Any]] = {}
    summaries: dict[str, dict[str, Any]] = {}
    for benchmark_id in native:
        assembly_name, property_name = PROBE_BENCHMARKS[benchmark_id]
        values = tables[assembly_name][property_name]
        reference, source, reason = references[assembly_name]
        summaries[benchmark_id] = distribution_summary(values, property_name, reference)
        if reference is None:
            entries[benchmark_id] = {"source": None, "reason": reason}
        elif not len(values):
            entries[benchmark_id] = {"source": None, "reason": "no unit of the layer responds to these gratings"}
        else:
            entries[benchmark_id] = {**score_property(benchmark_id, values, reference, settings.seed), "source": source}
    timings["scores"] = time.perf_counter() - scoring_started

    others = [benchmark for benchmark in selected if benchmark not in PROBE_BENCHMARKS]
    identifier = model_identifier(net, layer, image_size, visual_degrees)
    if others and settings.source != "offline":
        delegated_started = time.perf_counter()
        model = brain_model(net, layer, identifier, scoring, batch_size=batch_size)
        delegated = V1Settings(settings.predictivity, "brainscore", settings.seed, tuple(others))
        entries.update(score_layer(model, delegated, cache_dir)["benchmarks"])
        timings["brainscore"] = time.perf_counter() - delegated_started
    for benchmark_id in others:
        entries.setdefault(benchmark_id, {"source": None, "reason": NOT_MEASURED_OFFLINE})
    entries = {benchmark_id: entries[benchmark_id] for benchmark_id in selected}
    return {
        "identifier": identifier,
        "layer": layer,
        "visual_degrees": visual_degrees,
        "image_size": image_size,
        **summarize(entries, settings),
        "units": {
            "layer": recording.units,
            "receptive_field_on_stimuli": len(recording.selected),
            "responsive": {name: len(next(iter(table.values()))) for name, table in tables.items()},
        },
        "firing_rate_affine": {"slope": recording.affine[0], "offset": recording.affine[1]},
        "properties": summaries,
        "unit_values": {
            name: {prop: _strict(values) for prop, values in table.items()} for name, table in tables.items()
        },
        "timings": {step: round(seconds, 2) for step, seconds in timings.items()},
        "seconds": round(time.perf_counter() - started, 2),
    }


def plot_group_curves(curve: list[dict[str, float]], path: Path, label: str) -> Path:
    """The 7 group scores and V1 Property against the training epoch."""
    epochs = [point["epoch"] for point in curve]
    figure, axis = new_figure(7, 4)
    for index, key in enumerate(["property", *PROPERTY_GROUPS]):
        values = [point.get(f"v1_probe/{key}", float("nan")) for point in curve]
        style = {"color": "k", "linewidth": 2.5} if key == "property" else {"color": f"C{index - 1}"}
        title = "V1 Property" if key == "property" else key.replace("_", " ")
        axis.plot(epochs, values, marker="o", markersize=3, label=title, **style)
    axis.set_xlabel("epoch")
    axis.set_ylabel("ceiled score")
    axis.set_ylim(0, 1.05)
    return save_figure(figure, path, f"V1 probe through training: {label}")


def plot_histograms(first: dict[str, Any], last: dict[str, Any], path: Path, label: str) -> Path | None:
    """Per property: the reference distribution and the model's at the first and last probed epoch."""
    benchmarks = [b for b, summary in last["properties"].items() if "bins" in summary]
    if not benchmarks:
        return None
    columns = min(5, len(benchmarks))
    rows = -(-len(benchmarks) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.6 * rows), squeeze=False)
    for axis, benchmark_id in zip(axes.flat, benchmarks, strict=False):
        centres = np.arange(len(last["properties"][benchmark_id]["bins"]) - 1)
        axis.bar(centres, last["properties"][benchmark_id]["reference_histogram"], color="0.75", label="macaque V1")
        for report, style in ((first, ":"), (last, "-")):
            summary = report["properties"].get(benchmark_id, {})
            if "model_histogram" in summary:
                axis.step(
                    centres,
                    summary["model_histogram"],
                    where="mid",
                    linestyle=style,
                    color="C3",
                    label=f"epoch {report.get('epoch', '?')}",
                )
        axis.set_title(benchmark_id.removeprefix("Marques2020_"), fontsize=8)
        axis.set_xticks([])
    for axis in list(axes.flat)[len(benchmarks) :]:
        axis.axis("off")
    axes.flat[0].legend(fontsize=7)
    figure.suptitle(f"V1 properties, model vs macaque (reference bins): {label}", fontsize=10)
    return write_png(figure, path)


class V1ProbeEvaluation(Evaluation):
    """Native V1 electrophysiology of one layer (settings: ``conf/eval/v1_probe.yaml``).

    Args:
        layer: ``v1`` (the backbone's V1 layer) or a module name.
        predictivity, source, benchmarks, seed: as ``eval=v1`` (:class:`V1Settings`); ``source=offline`` never
            touches the network.
        batch_size: stimuli per forward pass; cache_dir: Brain-Score's caches; progress: a progress bar.
        gaze: as ``eval=v1`` (``center``: fixation pinned at the polar centre); recorded in ``v1_probe.json``.
    """

    name = "v1_probe"

    def __init__(
        self,
        layer: str = "v1",
        predictivity: str = "public",
        source: str = "auto",
        benchmarks: Sequence[str] | None = None,
        seed: int = 0,
        batch_size: int = 64,
        cache_dir: str | None = None,
        progress: bool = True,
        gaze: str = "center",
    ) -> None:
        check_int(batch_size, "eval.batch_size", 64)
        self.gaze = check_gaze(gaze)
        self.settings = V1Settings(predictivity, source, seed, tuple(benchmarks) if benchmarks else None)
        self.layer = layer
        self.batch_size = batch_size
        self.cache_dir = cache_dir
        self.progress = progress

    def run(
        self, model: EvaluatedModel, out_dir: Path, datamodule: Any = None, provenance: Provenance = None
    ) -> Outcome:
        label = model.label
        (layer,) = layers_to_score(self.layer, model)
        with fixed_gaze(model.net, self.gaze):
            probed = probe_v1(
                model.net,
                layer,
                self.settings,
                model.scoring,
                batch_size=self.batch_size,
                cache_dir=self.cache_dir,
                progress=self.progress,
            )
        report = {
            **self.settings.header(label),
            **probed,
            **(provenance or {}),
            "components": list(model.architecture["components"]),
            "gaze": self.gaze,
        }
        paths = write_v1_outputs(report, out_dir, label, stem="v1_probe", plot_stem="v1_probe")
        property_score = report["scores"]["v1_property"]
        log.info(
            "%s %s: V1 Property %s%s in %.1f s (%d units on the stimuli of %d); %s",
            label,
            layer,
            "n/a" if property_score is None else f"{property_score:.3f}",
            partial_note(report),
            report["seconds"],
            report["units"]["receptive_field_on_stimuli"],
            report["units"]["layer"],
            paths["json"],
        )
        settings = {"layer": layer, "source": self.settings.source, "seed": self.settings.seed}
        return Outcome(report, probe_metrics(report), property_score, paths["groups_plot"], settings)

    def plot_curve(self, curve: list[dict[str, float]], out_dir: Path, label: str) -> list[Path]:
        """``v1_probe_curves.png`` (group scores against epoch) and ``v1_probe_histograms.png`` (first and last
        probed epoch against the reference data), from ``curve`` and the per-epoch reports in ``out_dir``."""
        if not curve:
            return []
        reports = [
            json.loads((out_dir / f"epoch_{point['epoch']:03d}" / "v1_probe.json").read_text())
            for point in (curve[0], curve[-1])
        ]
        figures = [plot_group_curves(curve, out_dir / "v1_probe_curves.png", label)]
        histograms = plot_histograms(*reports, out_dir / "v1_probe_histograms.png", label)
        return figures + ([histograms] if histograms else [])
