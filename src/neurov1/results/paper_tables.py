"""The paper's tables and plots from the results ledger (the command is ``python -m neurov1.report``).

From the records of finished runs (``neurov1.results.ledger``) it builds, as far as such runs exist:

- Table 1 (ImageNet accuracy, V1 Overall, Predictivity, Property) and Table 2 (the 7 V1 property groups) of the
  standard-trained models, mean +- std over seeds per component set, ▲/▼ above/below the baseline as in the paper;
- Tables 3 and 5 (backward elimination: a checkmark per component, the chosen metric, Table 1 and 2 metrics);
- Table 4 (adversarially trained models: accuracy, V1 scores, PGD accuracy);
- Table 6 (V1 scores of untrained models: ``neurov1.evaluate eval=v1 ckpt_path=null``);
- Table 7 (V1, V2, V4, IT: ``neurov1.evaluate eval=regions ckpt_path=...`` records of the runs);
- Tables 8-10 (Tiny-ImageNet-C accuracy of the models with corruption results).

Outputs: ``report.md``, ``report.csv`` (every model and metric, numeric), one CSV per table under ``tables/``, a bar
plot of Table 1 (``report.png``) and a heat map of the property groups relative to the baseline
(``v1_groups_vs_baseline.png``).
V1 and other scores come from the training record (callbacks) or from ``neurov1.evaluate`` records of the run's
checkpoints.
"""

import logging
import os
import re
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from neurov1.errors import ConfigError
from neurov1.evaluation.brainscore.benchmarks import PROPERTY_GROUPS
from neurov1.evaluation.corruption_robustness import robustness_tables, summary_from_metrics
from neurov1.results.ledger import load_records
from neurov1.sweeps.elimination import score_cell, trace_rows, trace_table
from neurov1.utils.io import write_text_atomic
from neurov1.utils.plots import new_figure, save_figure
from neurov1.utils.tables import Table, csv_text, markdown, mean_std

TABLE1 = (
    ("val/acc1", "Accuracy"),
    ("v1/overall", "V1 Overall"),
    ("v1/predictivity", "V1 Predictivity"),
    ("v1/property", "V1 Property"),
)
TABLE2 = tuple((f"v1/{group}", group.replace("_", " ").capitalize()) for group in PROPERTY_GROUPS)
TABLE4 = (*TABLE1, ("adversarial/clean_acc1", "Clean acc. (PGD set)"), ("adversarial/acc1", "PGD acc."))
TABLE7 = (("v1/overall", "V1"), ("regions/V2", "V2"), ("regions/V4", "V4"), ("regions/IT", "IT"))
BASELINE = "baseline"
# Where to look (fixation policies of the cortical magnification): runs on data with known object centres.
WHERE_TO_LOOK_FINAL = ("val/fixation_error", "val/acc1_glimpses")
# Each column's metric, first found first: glimpses and the fixation error of ``eval=accuracy eval.glimpses=k`` on the
# run's checkpoint (the best epoch's, like Top-1) are preferred to those of the last epoch of training.
WHERE_TO_LOOK = (
    (("val/acc1",), "Top-1"),
    (("accuracy/acc1_glimpses", "val/acc1_glimpses"), "Top-1, glimpses"),
    (("v1_probe/property",), "V1 Property (probe, gaze pinned)"),
    (("accuracy/fixation_error", "val/fixation_error"), "Fixation error (deg)"),
)
FIXATION_SUFFIX = re.compile(r" \[fixation=(\w+)\]")
# How a run was trained (its regime), from its record; each regime gets its own rows (a fine-tuned head's accuracy is
# not ImageNet's).
REGIME_SUFFIX = {"standard": "", "adversarial": " (Free-AT)", "finetune": " (fine-tuned head)"}

NO_V1_SCORES = (
    "No V1 scores in these runs: train with callbacks=v1, or score checkpoints with "
    "`python -m neurov1.evaluate eval=v1 ckpt_path=...` (same results_dir)."
)

Stats = dict[str, tuple[float, float, int]]

log = logging.getLogger(__name__)


def training_regime(record: dict[str, Any]) -> str:
    if record.get("adversarial_training"):
        return "adversarial"
    return "finetune" if record.get("finetune") else "standard"


def _label(record: dict[str, Any], regime: str) -> str:
    policy = record.get("fixation") or "center"
    fixation = f" [fixation={policy}]" if policy != "center" else ""
    return f"{record['arch']}: {'+'.join(record['components']) or BASELINE}{fixation}{REGIME_SUFFIX[regime]}"


def failed_runs(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Train records of runs that did not complete honestly (e.g. diverged): no table counts them."""
    return [r for r in records if r["command"] == "train" and r.get("status", "completed") != "completed"]


def run_metrics(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per completed train run (by run dir, oldest first): label, training regime, seed and every metric.

    Evaluations of a run's checkpoints add their metrics to it.
    """
    runs = {}
    for record in records:
        if record["command"] != "train" or record.get("status", "completed") != "completed":
            continue
        regime = training_regime(record)
        metrics = {key: value for key, value in record["final"].items() if not key.startswith(("train/", "val/"))}
        metrics["val/acc1"] = record["best"]["value"]
        for key in WHERE_TO_LOOK_FINAL:  # (of the last epoch)
            if record["final"].get(key) is not None:
                metrics[key] = record["final"][key]
        runs[os.path.abspath(record["run_dir"])] = {
            "label": _label(record, regime),
            "regime": regime,
            "seed": record["seed"],
            "run_dir": os.path.abspath(record["run_dir"]),
            "metrics": metrics,
        }
    for record in records:
        if record["command"] == "evaluate" and record.get("checkpoint"):
            checkpoint = os.path.abspath(record["checkpoint"])
            for run_dir, run in runs.items():
                if checkpoint.startswith(run_dir + "/"):
                    run["metrics"].update(record["metrics"])
    return runs


def one_run_per_seed(runs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The newest run of each (model, seed): a repeated run is not an extra seed. A warning names the repeats."""
    newest: dict[tuple[str, int], dict[str, Any]] = {}
    repeats: dict[tuple[str, int], list[str]] = defaultdict(list)
    for run in runs:  # oldest first
        key = (run["label"], run["seed"])
        if key in newest:
            repeats[key].append(newest[key]["run_dir"])
        newest[key] = run
    for (label, seed), older in repeats.items():
        log.warning(
            "%s, seed %s was trained %d times; the report counts the newest run (%s), not %s",
            label,
            seed,
            len(older) + 1,
            newest[(label, seed)]["run_dir"],
            ", ".join(older),
        )
    return list(newest.values())


def failed_table(records: list[dict[str, Any]]) -> Table:
    """The runs that did not complete, left out of every other table."""
    table = Table("Runs that did not complete (left out of every table)", ["model", "seed", "status", "reason", "run"])
    for record in records:
        reason = (record.get("failure") or "").split(". ")[0]
        table.rows.append(
            [_label(record, training_regime(record)), str(record["seed"]), record["status"], reason, record["run_dir"]]
        )
    return table


def aggregate(runs: Iterable[dict[str, Any]]) -> dict[str, Stats]:
    """``{label: {metric: (mean, std, seeds)}}`` over the given runs of each label."""
    values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        for key, value in run["metrics"].items():
            if value is not None:
                values[run["label"]][key].append(float(value))
    return {
        label: {key: (float(np.mean(v)), float(np.std(v)), len(v)) for key, v in metrics.items()}
        for label, metrics in values.items()
    }


def _cell(stats: Stats, baseline: Stats | None, key: str) -> str:
    if key not in stats:
        return "n/a"
    mean = stats[key][0]
    text = mean_std(*stats[key])
    if baseline and key in baseline and baseline is not stats:
        text += " ▲" if mean > baseline[key][0] else " ▼" if mean < baseline[key][0] else ""
    return text


def _baseline(aggregated: dict[str, Stats]) -> str | None:
    return next((label for label in aggregated if label.endswith(f": {BASELINE}")), None)


def comparison_table(aggregated: dict[str, Stats], columns: tuple[tuple[str, str], ...], title: str) -> Table:
    """One row per model (baseline last, as in the paper), marked against the baseline when there is one."""
    baseline_label = _baseline(aggregated)
    baseline = aggregated.get(baseline_label) if baseline_label else None
    table = Table(title, ["model", *(t for _, t in columns)])
    for label in sorted(aggregated, key=lambda label: (label == baseline_label, label)):
        table.rows.append([label, *(_cell(aggregated[label], baseline, key) for key, _ in columns)])
    return table


def where_to_look_table(aggregated: dict[str, Stats]) -> Table:
    """Each fixation policy's accuracy, glimpses, V1 probe score, fixation error and the share of the gap between
    the centre (no policy) and the given fixation (the object's true centre) that it recovers."""
    table = Table(
        "Where to look: fixation policies on data with known object centres (mean ± std over seeds)",
        ["model", "policy", *(title for _, title in WHERE_TO_LOOK), "Share of the centre-to-given gap"],
    )

    def base_and_policy(label: str) -> tuple[str, str]:
        found = FIXATION_SUFFIX.search(label)
        return FIXATION_SUFFIX.sub("", label), found.group(1) if found else "center"

    by_base: dict[str, dict[str, Stats]] = defaultdict(dict)
    for label, stats in aggregated.items():
        base, policy = base_and_policy(label)
        by_base[base][policy] = stats
    order = ["center", "given", "learned", "saliency"]
    for base, policies in sorted(by_base.items()):
        center, given = policies.get("center"), policies.get("given")
        for policy in sorted(policies, key=lambda p: (order.index(p) if p in order else len(order), p)):
            stats = policies[policy]
            share = "n/a"
            if center and given and "val/acc1" in stats and given["val/acc1"][0] != center["val/acc1"][0]:
                gap = given["val/acc1"][0] - center["val/acc1"][0]
                share = f"{(stats['val/acc1'][0] - center['val/acc1'][0]) / gap:.0%}"
            found = [next((key for key in keys if key in stats), keys[-1]) for keys, _ in WHERE_TO_LOOK]
            cells = [_cell(stats, None, key) for key in found]
            table.rows.append([base, policy, *cells, share])
    table.notes.append(
        "Top-1: best epoch; glimpses and fixation error: eval=accuracy of the run's checkpoint where recorded, else "
        "the last epoch (fixation error: mean distance of the fixation to the object's centre in degrees of visual "
        "angle); V1 Property: the V1 probe (callback or eval=v1_probe) of the run."
    )
    return table


def _has_v1_groups(stats: Iterable[Stats]) -> bool:
    return any(key in entry for entry in stats for key, _ in TABLE2)


def elimination_tables(record: dict[str, Any], runs: dict[str, dict[str, Any]]) -> list[Table]:
    """Tables 3 and 5 of one backward elimination: its sets with Table 1 and Table 2 metrics of their runs."""
    settings = record["settings"]
    set_stats = {}  # per evaluated set (by its runs): the metrics of its runs over seeds
    for _, entry, _ in trace_rows(record["rounds"]):
        found = [{**runs[path], "label": "set"} for path in map(os.path.abspath, entry["runs"]) if path in runs]
        set_stats[tuple(entry["runs"])] = aggregate(found).get("set", {})

    def column(key: str) -> Any:
        return lambda entry: _cell(set_stats[tuple(entry["runs"])], None, key)

    chosen = [(f"{settings['metric']} (chosen on)", score_cell)]
    source = f"{record['sweep_dir']}, {len(settings['seeds'])} seed(s), {settings['mode']} {settings['metric']}"
    table3 = trace_table(
        settings["start"],
        record["rounds"],
        f"Table 3: backward elimination ({source}; ✓: component in the model)",
        chosen + [(title, column(key)) for key, title in TABLE1 if key != settings["metric"]],
    )
    table5 = trace_table(
        settings["start"],
        record["rounds"],
        "Table 5: V1 property groups of the backward-elimination models",
        [(title, column(key)) for key, title in TABLE2],
    )
    final = record["rounds"][-1]["kept"]
    table3.notes.append(f"Final set: {'+'.join(final)}; kept: the removal chosen in each round.")
    if not _has_v1_groups(set_stats.values()):
        table5.notes.append(NO_V1_SCORES)
    return [table3, table5]


def latest_eliminations(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The newest record of each elimination (rerunning a finished one records it again)."""
    latest = {record["sweep_dir"]: record for record in records if record["command"] == "elimination"}
    return list(latest.values())


def build_tables(records: list[dict[str, Any]]) -> tuple[list[Table], dict[str, dict[str, Stats]]]:
    """Every table the ledger has runs for, and the aggregated metrics per training regime."""
    runs = run_metrics(records)
    eliminations = latest_eliminations(records)
    # an elimination's runs have Tables 3 and 5; Tables 1 and 2 hold the other standard runs (the paper's ablation)
    in_elimination = {
        os.path.abspath(run) for record in eliminations for _, e, _ in trace_rows(record["rounds"]) for run in e["runs"]
    }
    by_regime = {
        regime: aggregate(
            one_run_per_seed(
                r for run_dir, r in runs.items() if r["regime"] == regime and run_dir not in in_elimination
            )
        )
        for regime in REGIME_SUFFIX
    }
    tables = []
    if by_regime["standard"]:
        title = "Table 1: accuracy and V1 alignment (mean ± std over seeds; ▲/▼: above/below the baseline)"
        tables.append(comparison_table(by_regime["standard"], TABLE1, title))
        tables.append(comparison_table(by_regime["standard"], TABLE2, "Table 2: V1 property groups"))
        if not _has_v1_groups(by_regime["standard"].values()):
            tables[-1].notes.append(NO_V1_SCORES)
    for record in eliminations:
        tables += elimination_tables(record, runs)
    if by_regime["adversarial"]:
        title = "Table 4: Free adversarial training (PGD accuracy from eval=adversarial)"
        tables.append(comparison_table(by_regime["adversarial"], TABLE4, title))
    untrained = [
        {"label": record["model"], "metrics": record["metrics"]}
        for record in records
        if record["command"] == "evaluate" and record["eval"] == "v1" and not record.get("checkpoint")
    ]
    if untrained:
        tables.append(comparison_table(aggregate(untrained), TABLE1[1:], "Table 6: V1 scores of untrained models"))
    regions = {label: stats for label, stats in by_regime["standard"].items() if any(k in stats for k, _ in TABLE7[1:])}
    if regions:
        tables.append(comparison_table(regions, TABLE7, "Table 7: V1, V2, V4 and IT (eval=regions: best layer)"))
    robust = {
        label: summary_from_metrics({key: mean for key, (mean, _, _) in stats.items()})
        for aggregated in by_regime.values()
        for label, stats in sorted(aggregated.items())
        if "corruption/mean_accuracy" in stats
    }
    if robust:
        tables += robustness_tables(robust)
    fixation_errors = {"val/fixation_error", "accuracy/fixation_error"}
    where = {label: stats for label, stats in by_regime["standard"].items() if fixation_errors & stats.keys()}
    if where:
        tables.append(where_to_look_table(where))
    if failed := failed_runs(records):
        tables.append(failed_table(failed))
    return tables, by_regime


def csv_rows(by_regime: dict[str, dict[str, Stats]]) -> str:
    rows = [["model", "training", "metric", "mean", "std", "seeds"]]
    for regime, aggregated in by_regime.items():
        for label, metrics in sorted(aggregated.items()):
            rows += [[label, regime, key, *stats] for key, stats in sorted(metrics.items())]
    return csv_text(rows)


def bar_plot(aggregated: dict[str, Stats], path: Path) -> Path:
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


def group_heat_map(aggregated: dict[str, Stats], path: Path) -> Path | None:
    """Each model's V1 property-group scores minus the baseline's (blue: above, red: below); None without data."""
    baseline_label = _baseline(aggregated)
    keys = [key for key, _ in TABLE2 if baseline_label and key in aggregated[baseline_label]]
    labels = sorted(label for label in aggregated if label != baseline_label)
    if not keys or not labels:
        return None
    baseline = aggregated[baseline_label]
    stats = [aggregated[label] for label in labels]
    delta = np.array([[s[k][0] - baseline[k][0] if k in s else np.nan for k in keys] for s in stats])
    limit = float(np.nanmax(np.abs(delta))) if np.isfinite(delta).any() else 1.0
    figure, axis = new_figure(max(6.0, 1.3 * len(keys) + 3), 0.45 * len(labels) + 1.8)
    image = axis.imshow(delta, cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto")
    for (row, col), value in np.ndenumerate(delta):
        axis.text(col, row, "n/a" if np.isnan(value) else f"{value:+.3f}", ha="center", va="center", fontsize=7)
    titles = dict(TABLE2)
    axis.set_xticks(range(len(keys)), [titles[k] for k in keys], rotation=20, ha="right", fontsize=8)
    axis.set_yticks(range(len(labels)), labels, fontsize=8)
    figure.colorbar(image, ax=axis, label="score − baseline")
    return save_figure(figure, path, f"V1 property groups relative to {baseline_label}")


def probe_curve_points(records: list[dict[str, Any]]) -> dict[str, dict[int, float]]:
    """``{component set: {epoch: V1 Property}}`` (mean over seeds) of the V1 probe curves that ``callbacks=v1_probe``
    leaves in the completed train records."""
    by_label: dict[str, dict[int, list[float]]] = {}
    for record in records:
        if record["command"] != "train" or record.get("status", "completed") != "completed":
            continue
        for point in (record.get("curves") or {}).get("v1_probe", []):
            if "v1_probe/property" in point:
                label = _label(record, training_regime(record))
                by_label.setdefault(label, {}).setdefault(point["epoch"], []).append(point["v1_probe/property"])
    return {
        label: {epoch: float(np.mean(values)) for epoch, values in sorted(points.items())}
        for label, points in sorted(by_label.items())
    }


def probe_curves(records: list[dict[str, Any]], path: Path) -> Path | None:
    """V1 Property (probe) against the training epoch, one line per component set; None when no run has a curve."""
    curves = probe_curve_points(records)
    if not curves:
        return None
    figure, axis = new_figure(7, 4)
    for label, points in curves.items():
        axis.plot(list(points), list(points.values()), marker="o", markersize=3, label=label)
    axis.set_xlabel("epoch")
    axis.set_ylabel("V1 Property (probe)")
    return save_figure(figure, path, "V1 alignment through training (V1 probe, mean over seeds)")


def slug(title: str) -> str:
    """A file-name form of a table title (its part before the colon)."""
    return re.sub(r"[^a-z0-9]+", "_", title.split(":")[0].lower()).strip("_")


def build_report(results_dir: Path, out_dir: Path) -> dict[str, Any]:
    """Write the report of the ledger in ``results_dir`` into ``out_dir``; returns its files and tables."""
    records = load_records(results_dir)
    tables, by_regime = build_tables(records)
    if not tables:
        raise ConfigError(f"results_dir: {results_dir} holds no finished train runs or eliminations yet.")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "markdown": write_text_atomic(out_dir / "report.md", markdown(tables)),
        "csv": write_text_atomic(out_dir / "report.csv", csv_rows(by_regime)),
        "tables": [write_text_atomic(out_dir / "tables" / f"{slug(t.title)}.csv", t.csv()) for t in tables],
    }
    if by_regime["standard"]:
        paths["plot"] = bar_plot(by_regime["standard"], out_dir / "report.png")
        if heat_map := group_heat_map(by_regime["standard"], out_dir / "v1_groups_vs_baseline.png"):
            paths["heat_map"] = heat_map
    if curves := probe_curves(records, out_dir / "v1_probe_curves.png"):
        paths["probe_curves"] = curves
    return {"paths": paths, "tables": tables}
