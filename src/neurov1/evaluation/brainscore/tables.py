"""V1 score outputs: ``v1_scores.json``, tables laid out like the paper's Tables 1 and 2, and plots."""

from pathlib import Path
from typing import Any

from neurov1.evaluation.brainscore.benchmarks import PROPERTY_GROUPS
from neurov1.utils.io import write_json_atomic, write_text_atomic
from neurov1.utils.plots import new_figure, save_figure
from neurov1.utils.tables import csv_text, fmt

HEADLINE = (("v1_overall", "V1 Overall"), ("v1_predictivity", "V1 Predictivity"), ("v1_property", "V1 Property"))


def _group_cell(group: dict[str, Any]) -> str:
    """A group score, with the fraction of its benchmarks scored when not all were."""
    partial = f" ({group['scored']}/{group['total']})" if group["scored"] < group["total"] else ""
    return fmt(group["score"]) + partial


def _group_title(group: str) -> str:
    return group.replace("_", " ").capitalize().replace("Receptive field size", "RF size")


def markdown_tables(results: dict[str, Any], name: str) -> str:
    """Table 1 (headline scores), Table 2 (7 property groups) and every benchmark with its source."""
    partial = " (partial: see missing benchmarks)" if results["partial"] else ""
    scores, groups = results["scores"], results["groups"]
    lines = [
        f"V1 scores of `{results['layer']}`, {results['visual_degrees']:g} visual degrees, "
        f"{results['image_size']} px{partial}",
        "",
        "| model | " + " | ".join(title for _, title in HEADLINE) + " |",
        "|---" * (len(HEADLINE) + 1) + "|",
        f"| {name} | " + " | ".join(fmt(scores[key]) for key, _ in HEADLINE) + " |",
        "",
        "| model | " + " | ".join(_group_title(g) for g in PROPERTY_GROUPS) + " |",
        "|---" * (len(PROPERTY_GROUPS) + 1) + "|",
        f"| {name} | " + " | ".join(_group_cell(groups[g]) for g in PROPERTY_GROUPS) + " |",
        "",
        "| benchmark | group | ceiled | raw | ceiling | source | note |",
        "|---|---|---|---|---|---|---|",
    ]
    group_of = {b: g for g, members in PROPERTY_GROUPS.items() for b in members}
    for benchmark_id, entry in results["benchmarks"].items():
        lines.append(
            f"| {benchmark_id} | {group_of.get(benchmark_id, 'predictivity')} | {fmt(entry.get('ceiled'))} | "
            f"{fmt(entry.get('raw'))} | {fmt(entry.get('ceiling'))} | {entry.get('source') or 'not scored'} | "
            f"{(entry.get('reason') or '').replace('|', '/')[:160]} |"
        )
    return "\n".join(lines) + "\n"


def csv_table(results: dict[str, Any]) -> str:
    """One row per benchmark, group and headline score."""
    rows = [["level", "name", "ceiled", "raw", "ceiling", "source"]]
    rows += [["headline", key, results["scores"][key], "", "", ""] for key, _ in HEADLINE]
    for group, value in results["groups"].items():
        rows.append(["group", group, value["score"], "", "", f"{value['scored']}/{value['total']} benchmarks"])
    for benchmark_id, entry in results["benchmarks"].items():
        values = [entry.get(key) for key in ("ceiled", "raw", "ceiling", "source")]
        rows.append(["benchmark", benchmark_id, *values])
    return csv_text(rows)


def plot_groups(results: dict[str, Any], path: Path, name: str) -> Path:
    """Bar plot of the 7 property group scores (missing groups shown empty)."""
    values = [results["groups"][g]["score"] for g in PROPERTY_GROUPS]
    figure, axis = new_figure(8)
    axis.bar(range(len(values)), [v or 0.0 for v in values], color=["C0" if v is not None else "0.8" for v in values])
    for index, value in enumerate(values):
        axis.text(index, (value or 0.0) + 0.01, fmt(value), ha="center", fontsize=8)
    axis.set_xticks(range(len(values)), [_group_title(g) for g in PROPERTY_GROUPS], rotation=30, ha="right")
    axis.set_ylim(0, 1.05)
    axis.set_ylabel("ceiled score")
    return save_figure(figure, path, f"V1 property groups: {name} ({results['layer']})")


def plot_layers(per_layer: dict[str, dict[str, Any]], path: Path, name: str) -> Path:
    """V1 Overall, Predictivity and Property per scored layer (paper Fig. B.1)."""
    layers = list(per_layer)
    figure, axis = new_figure(max(6, 0.45 * len(layers)))
    for key, title in HEADLINE:
        values = [per_layer[layer]["scores"][key] for layer in layers]
        axis.plot(range(len(layers)), [float("nan") if v is None else v for v in values], marker="o", label=title)
    axis.set_xticks(range(len(layers)), layers, rotation=60, ha="right", fontsize=8)
    axis.set_ylabel("score")
    return save_figure(figure, path, f"V1 alignment per layer: {name}")


def write_v1_outputs(
    report: dict[str, Any], out_dir: Path, name: str, stem: str = "v1_scores", plot_stem: str = "v1"
) -> dict[str, Path]:
    """Write ``<stem>.json``, ``<stem>.md``, ``<stem>.csv``, ``<plot_stem>_groups.png`` (and
    ``<plot_stem>_layers.png``): ``v1_scores.*`` and ``v1_*.png`` for Brain-Score, ``v1_probe*`` for the probe."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": write_json_atomic(out_dir / f"{stem}.json", report),
        "markdown": write_text_atomic(out_dir / f"{stem}.md", markdown_tables(report, name)),
        "csv": write_text_atomic(out_dir / f"{stem}.csv", csv_table(report)),
        "groups_plot": plot_groups(report, out_dir / f"{plot_stem}_groups.png", name),
    }
    if len(report.get("layers", {})) > 1:
        paths["layers_plot"] = plot_layers(report["layers"], out_dir / f"{plot_stem}_layers.png", name)
    return paths
