"""Paper tables from the results ledger: ``python -m neurov1.report [results_dir] [--out DIR]``.

Table 1 (ImageNet accuracy, V1 Overall, Predictivity, Property) and Table 2 (the 7 V1 property groups), mean +- std
over seeds per component set, with values above/below the baseline marked as in the paper, as markdown and CSV,
plus a bar plot with error bars. V1 scores come from the train record (``callbacks=v1``) or from ``neurov1.evaluate
eval=v1`` records of the run's checkpoints.
"""

import argparse
import csv
import io
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from neurov1.brainscore.benchmarks import PROPERTY_GROUPS
from neurov1.errors import ConfigError
from neurov1.ledger import load_records
from neurov1.utils.io import write_text_atomic
from neurov1.utils.plots import new_figure, save_figure

TABLE1 = (
    ("val/acc1", "Accuracy"),
    ("v1/overall", "V1 Overall"),
    ("v1/predictivity", "V1 Predictivity"),
    ("v1/property", "V1 Property"),
)
TABLE2 = tuple((f"v1/{group}", group.replace("_", " ").capitalize()) for group in PROPERTY_GROUPS)
BASELINE = "baseline"


def run_metrics(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per train run: component set, seed and every metric (its best val/acc1, its V1 scores)."""
    runs = {}
    for record in records:
        if record["kind"] != "train":
            continue
        metrics = {key: value for key, value in record["final"].items() if key.startswith("v1/")}
        metrics["val/acc1"] = record["best"]["value"]
        label = f"{record['arch']}: {'+'.join(record['components']) or BASELINE}"
        runs[record["run_dir"]] = {"label": label, "seed": record["seed"], "metrics": metrics}
    for record in records:
        if record["kind"] == "evaluate" and record["eval"] == "v1" and record.get("checkpoint"):
            for run_dir, run in runs.items():
                if record["checkpoint"].startswith(run_dir):
                    run["metrics"].update(record["metrics"])
    return runs


def aggregate(runs: dict[str, dict[str, Any]]) -> dict[str, dict[str, tuple[float, float, int]]]:
    """``{component set: {metric: (mean, std, seeds)}}`` over the runs of each set."""
    values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for run in runs.values():
        for key, value in run["metrics"].items():
            if value is not None:
                values[run["label"]][key].append(float(value))
    return {
        label: {key: (float(np.mean(v)), float(np.std(v)), len(v)) for key, v in metrics.items()}
        for label, metrics in values.items()
    }


def _cell(stats: dict[str, tuple[float, float, int]], baseline: dict | None, key: str) -> str:
    if key not in stats:
        return "n/a"
    mean, std, seeds = stats[key]
    text = f"{mean:.3f} ± {std:.3f}" if seeds > 1 else f"{mean:.3f}"
    if baseline and key in baseline and baseline is not stats:
        text += " ▲" if mean > baseline[key][0] else " ▼" if mean < baseline[key][0] else ""
    return text


def table(aggregated: dict[str, dict], columns: tuple[tuple[str, str], ...], title: str) -> str:
    """A markdown table, one row per component set (baseline last, as in the paper)."""
    baseline_label = next((label for label in aggregated if label.endswith(BASELINE)), None)
    baseline = aggregated.get(baseline_label) if baseline_label else None
    labels = sorted(aggregated, key=lambda label: (label == baseline_label, label))
    lines = [title, "", "| model | " + " | ".join(t for _, t in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    lines += [
        f"| {label} | " + " | ".join(_cell(aggregated[label], baseline, k) for k, _ in columns) + " |"
        for label in labels
    ]
    return "\n".join(lines) + "\n"


def csv_rows(aggregated: dict[str, dict]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["model", "metric", "mean", "std", "seeds"])
    for label, metrics in sorted(aggregated.items()):
        for key, (mean, std, seeds) in sorted(metrics.items()):
            writer.writerow([label, key, mean, std, seeds])
    return buffer.getvalue()


def plot(aggregated: dict[str, dict], path: Path) -> Path:
    """Bars with error bars (std over seeds) per model for each Table 1 metric."""
    labels = sorted(aggregated)
    figure, axis = new_figure(max(6, 1.5 * len(labels)))
    width = 0.8 / len(TABLE1)
    for index, (key, title) in enumerate(TABLE1):
        stats = [aggregated[label].get(key, (np.nan, 0.0, 0)) for label in labels]
        positions = np.arange(len(labels)) + index * width
        axis.bar(positions, [s[0] for s in stats], width, yerr=[s[1] for s in stats], label=title, capsize=2)
    axis.set_xticks(np.arange(len(labels)) + 0.4 - width / 2, labels, rotation=20, ha="right", fontsize=8)
    axis.set_ylim(0, 1)
    return save_figure(figure, path, "Accuracy and V1 scores (mean ± std over seeds)")


def build_report(results_dir: Path, out_dir: Path) -> dict[str, Path]:
    """Write ``report.md``, ``report.csv`` and ``report.png`` for the ledger in ``results_dir``."""
    aggregated = aggregate(run_metrics(load_records(results_dir)))
    if not aggregated:
        raise ConfigError(f"results_dir: {results_dir} holds no train records yet.")
    markdown = (
        table(aggregated, TABLE1, "Table 1: accuracy and V1 alignment (▲/▼: above/below the baseline)")
        + "\n"
        + table(aggregated, TABLE2, "Table 2: V1 property groups")
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    return {
        "markdown": write_text_atomic(out_dir / "report.md", markdown),
        "csv": write_text_atomic(out_dir / "report.csv", csv_rows(aggregated)),
        "plot": plot(aggregated, out_dir / "report.png"),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results_dir", nargs="?", type=Path, default=Path("outputs/results"))
    parser.add_argument("--out", type=Path, help="output folder (default: <results_dir>/report)")
    args = parser.parse_args(argv)
    try:
        paths = build_report(args.results_dir, args.out or args.results_dir / "report")
    except ConfigError as error:
        raise SystemExit(f"ConfigError: {error}") from None
    print(paths["markdown"].read_text())
    print(f"Written: {', '.join(str(p) for p in paths.values())}", file=sys.stderr)


if __name__ == "__main__":
    main()
