"""Tiny-ImageNet-C evaluation (paper Sec. 4.4, Appendix H, Tables 8-10).

Reads ``<root>/<corruption>/<severity>/<wnid>/*.JPEG`` (the released Tiny-ImageNet-C layout, or one written by
``python -m neurov1.corrupt``), measures top-1 accuracy per (corruption, severity), and writes the per-condition CSV,
the paper's Tables 8, 9 and 10 as markdown, the corruption error normalised by a baseline run when one is given,
and a plot of accuracy against severity per corruption group.
"""

import csv
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from torchmetrics.classification import MulticlassAccuracy
from tqdm import tqdm

from neurov1.data.decode import ExactDecode
from neurov1.data.folders import ImageFileDataset, class_folders, class_images
from neurov1.data.image_corruptions import CORRUPTION_GROUPS, CORRUPTIONS, SEVERITIES
from neurov1.data.transforms import native_five_crop_transform, tiny_imagenet_val_transform
from neurov1.errors import ConfigError, check_int
from neurov1.evaluation.base import EvaluatedModel, Evaluation, Outcome, Provenance
from neurov1.utils.io import write_json_atomic, write_text_atomic
from neurov1.utils.plots import new_figure, save_figure
from neurov1.utils.tables import Table, csv_text, fmt, markdown

log = logging.getLogger(__name__)

GROUP_OF = {corruption: group for group, members in CORRUPTION_GROUPS.items() for corruption in members}


def condition_folders(
    root: Path, corruptions: list[str], severities: list[int]
) -> tuple[dict[tuple[str, int], Path], list[str]]:
    """The present ``(corruption, severity) -> folder`` and the missing ones as ``corruption/severity``."""
    if not root.is_dir():
        raise ConfigError(
            f"eval.corruption.root: {root} does not exist. Set eval.corruption.root=<folder holding "
            "<corruption>/<severity>/<wnid>/ images>, e.g. the extracted Tiny-ImageNet-C, or make one with "
            "python -m neurov1.corrupt."
        )
    unknown = sorted(set(corruptions) - set(CORRUPTIONS)) + [str(s) for s in severities if s not in SEVERITIES]
    if unknown:
        raise ConfigError(f"eval.corruption: unknown corruptions/severities {unknown}; valid: {list(CORRUPTIONS)}, 1-5")
    present, missing = {}, []
    for corruption in corruptions:
        for severity in severities:
            folder = root / corruption / str(severity)
            if folder.is_dir() and any(child.is_dir() for child in folder.iterdir()):
                present[corruption, severity] = folder
            else:
                missing.append(f"{corruption}/{severity}")
    if not present:
        raise ConfigError(f"eval.corruption.root: {root} holds none of the requested <corruption>/<severity> folders.")
    return present, missing


class _Conditions(Dataset):
    """All conditions' images in one dataset, so one DataLoader (one worker pool) decodes them all."""

    def __init__(self, datasets: list[ImageFileDataset]) -> None:
        self.datasets = datasets
        self.offsets = np.cumsum([0, *(len(d) for d in datasets)])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int]:
        condition = int(np.searchsorted(self.offsets, index, side="right") - 1)
        image, label = self.datasets[condition][index - int(self.offsets[condition])]
        return image, label, condition


def top1_accuracy(num_classes: int, device: torch.device) -> MulticlassAccuracy:
    """torchmetrics' top-1 accuracy over all images (micro average), on ``device``."""
    return MulticlassAccuracy(num_classes, top_k=1, average="micro").to(device)


def _probabilities(net: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Softmax of the logits; for five-crop batches (N, 5, C, H, W) the mean softmax over the crops."""
    if images.ndim == 5:
        return net(images.flatten(0, 1)).softmax(-1).unflatten(0, images.shape[:2]).mean(1)
    return net(images).softmax(-1)


@torch.no_grad()
def accuracy(
    net: nn.Module, loader: DataLoader, to_input: Callable[[Tensor], Tensor] = lambda images: images
) -> dict[str, float | None]:
    """Top-1 accuracy of ``net`` on ``loader``; for five-crop batches also the single (centre) crop's accuracy.

    ``to_input``: the data module's device transform of a batch (:meth:`BaseDataModule.device_transform`).
    Returns ``{"accuracy": ..., "single_crop": ..., "five_crop": ... or None}``; ``accuracy`` is the five-crop one
    when the loader yields five crops.
    """
    device = next(net.parameters()).device
    single = five = None
    for images, labels in loader:
        images, labels = to_input(images.to(device)), labels.to(device)
        views = net(images.flatten(0, 1)).unflatten(0, images.shape[:2]) if images.ndim == 5 else None
        logits = views[:, 4] if views is not None else net(images)  # the centre crop: the single-crop view
        single = single or top1_accuracy(logits.shape[-1], device)
        single.update(logits, labels)
        if views is not None:
            five = five or top1_accuracy(logits.shape[-1], device)
            five.update(views.softmax(-1).mean(1), labels)
    five_crop = None if five is None else float(five.compute())
    return {
        "accuracy": float(single.compute()) if five_crop is None else five_crop,
        "single_crop": float(single.compute()),
        "five_crop": five_crop,
    }


@torch.no_grad()
def evaluate_corruptions(
    net: nn.Module,
    root: str | Path,
    num_classes: int,
    corruptions: list[str] | None = None,
    severities: list[int] | None = None,
    batch_size: int = 256,
    num_workers: int = 4,
    limit_per_condition: int | None = None,
    five_crop: bool = False,
    image_size: int = 64,
) -> dict[str, Any]:
    """Accuracy per (corruption, severity) of ``net`` (put in eval mode); missing conditions are listed."""
    root = Path(root)
    present, missing = condition_folders(root, list(corruptions or CORRUPTIONS), list(severities or SEVERITIES))
    transform = (native_five_crop_transform if five_crop else tiny_imagenet_val_transform)(image_size)
    conditions, datasets = list(present), []
    for folder in present.values():
        wnids = class_folders(folder)
        if len(wnids) != num_classes:
            raise ConfigError(
                f"eval.corruption.root: {folder} has {len(wnids)} class folders but the model has {num_classes} "
                "classes; use the corrupted version of the data the classifier was trained (fine-tuned) on."
            )
        paths, labels = class_images(folder, wnids)
        if limit_per_condition:
            keep = np.linspace(0, len(paths) - 1, min(limit_per_condition, len(paths))).astype(int)
            paths, labels = [paths[i] for i in keep], [labels[i] for i in keep]
        datasets.append(ImageFileDataset(folder, paths, labels, ExactDecode(transform)))
    net.eval()
    device = next(net.parameters()).device
    accuracies = [top1_accuracy(num_classes, device) for _ in conditions]
    counts = np.zeros(len(conditions), dtype=int)
    started = time.time()
    loader = DataLoader(_Conditions(datasets), batch_size=batch_size, num_workers=num_workers)
    with tqdm(total=len(loader.dataset), unit="img", desc="Tiny-ImageNet-C") as progress:
        for images, labels, condition in loader:
            probabilities, labels = _probabilities(net, images.to(device)), labels.to(device)
            for index in condition.unique().tolist():
                among = (condition == index).to(device)
                accuracies[index].update(probabilities[among], labels[among])
            np.add.at(counts, condition.numpy(), 1)
            progress.update(len(labels))
    seconds = time.time() - started
    rows = [
        {
            "corruption": corruption,
            "group": GROUP_OF[corruption],
            "severity": severity,
            "accuracy": float(accuracies[index].compute()),
            "images": int(counts[index]),
        }
        for index, (corruption, severity) in enumerate(conditions)
    ]
    images = int(counts.sum())
    log.info("Tiny-ImageNet-C: %d images in %.0f s (%.0f images/s)", images, seconds, images / seconds)
    return {"rows": rows, "missing": missing, "images": images, "seconds": seconds, "images_per_s": images / seconds}


def load_rows(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a ``corruption_accuracy.csv`` written by another run (the baseline of the corruption error)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"eval.corruption.baseline: {path} is not a file. Point it at corruption_accuracy.csv of a baseline run."
        )
    with path.open() as handle:
        return [
            {**row, "severity": int(row["severity"]), "accuracy": float(row["accuracy"])}
            for row in csv.DictReader(handle)
        ]


def summarize(rows: list[dict[str, Any]], clean_accuracy: float | None, baseline: list[dict] | None) -> dict:
    """Mean corrupted accuracy, per severity, per corruption and group (Tables 8-10), CE and mCE vs a baseline."""
    by_corruption: dict[str, list[float]] = {}
    by_severity: dict[int, list[float]] = {}
    for row in rows:
        by_corruption.setdefault(row["corruption"], []).append(row["accuracy"])
        by_severity.setdefault(row["severity"], []).append(row["accuracy"])
    per_corruption = {c: float(np.mean(v)) for c, v in by_corruption.items()}
    per_group = {
        group: float(np.mean([per_corruption[c] for c in members if c in per_corruption]))
        for group, members in CORRUPTION_GROUPS.items()
        if any(c in per_corruption for c in members)
    }
    mean_corrupted = float(np.mean([row["accuracy"] for row in rows]))
    summary = {
        "clean_accuracy": clean_accuracy,
        "mean_corrupted_accuracy": mean_corrupted,
        "difference": None if clean_accuracy is None else clean_accuracy - mean_corrupted,
        "per_severity": {s: float(np.mean(v)) for s, v in sorted(by_severity.items())},
        "per_corruption": per_corruption,
        "per_group": per_group,
    }
    if baseline:
        base = {(row["corruption"], row["severity"]): 1 - row["accuracy"] for row in baseline}
        errors: dict[str, list[tuple[float, float]]] = {}
        for row in rows:
            key = (row["corruption"], row["severity"])
            if key in base:
                errors.setdefault(row["corruption"], []).append((1 - row["accuracy"], base[key]))
        corruption_error = {c: sum(e for e, _ in v) / sum(b for _, b in v) for c, v in errors.items()}
        summary["corruption_error"] = corruption_error
        summary["mce"] = 100 * float(np.mean(list(corruption_error.values())))
    return summary


def _five_crop_note(clean: dict[str, float | None] | None) -> list[str]:
    if not clean or clean.get("five_crop") is None:
        return []
    return [
        f"Clean accuracy: single crop {clean['single_crop']:.3f}, mean of five crops {clean['five_crop']:.3f} "
        "(the corrupted accuracies above use five crops)."
    ]


def summary_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """Flat ``corruption/*`` metrics for loggers and the results ledger (inverse: :func:`summary_from_metrics`)."""
    metrics = {
        "corruption/clean_accuracy": summary["clean_accuracy"],
        "corruption/mean_accuracy": summary["mean_corrupted_accuracy"],
        "corruption/difference": summary["difference"],
        "corruption/mce": summary.get("mce"),
        **{f"corruption/severity_{s}": v for s, v in summary["per_severity"].items()},
        **{f"corruption/{c}": v for c, v in summary["per_corruption"].items()},
        **{f"corruption/{g}": v for g, v in summary["per_group"].items()},
    }
    return {key: float(value) for key, value in metrics.items() if value is not None}


def summary_from_metrics(metrics: dict[str, float]) -> dict[str, Any]:
    """The table fields of a summary from its flat metrics (entries that were not measured are absent)."""

    def present(names: dict[Any, str]) -> dict[Any, float]:
        return {key: metrics[name] for key, name in names.items() if name in metrics}

    return {
        "clean_accuracy": metrics.get("corruption/clean_accuracy"),
        "mean_corrupted_accuracy": metrics.get("corruption/mean_accuracy"),
        "difference": metrics.get("corruption/difference"),
        "mce": metrics.get("corruption/mce"),
        "per_severity": present({s: f"corruption/severity_{s}" for s in SEVERITIES}),
        "per_corruption": present({c: f"corruption/{c}" for c in CORRUPTIONS}),
        "per_group": present({g: f"corruption/{g}" for g in CORRUPTION_GROUPS}),
    }


def robustness_tables(summaries: dict[str, dict[str, Any]]) -> list[Table]:
    """The paper's Tables 8 (clean vs corrupted), 9 (per severity) and 10 (per corruption, grouped), a row a model."""
    with_mce = any(summary.get("mce") is not None for summary in summaries.values())
    table8 = Table(
        "Table 8: Tiny-ImageNet val and Tiny-ImageNet-C accuracy",
        ["model", "Tiny-ImageNet Val.", "Tiny-ImageNet-C", "Δ", *(["mCE"] if with_mce else [])],
    )
    table9 = Table("Table 9: accuracy per corruption severity", ["model", *map(str, SEVERITIES)])
    tables10 = {
        group: Table(
            f"Table 10 ({group} corruptions): accuracy per corruption (mean over severities)",
            ["model", *(c.replace("_", " ").title() for c in members), "Avg."],
        )
        for group, members in CORRUPTION_GROUPS.items()
    }
    for name, summary in summaries.items():
        mce = summary.get("mce")
        table8.rows.append(
            [name, *map(fmt, (summary["clean_accuracy"], summary["mean_corrupted_accuracy"], summary["difference"]))]
            + ([f"{mce:.1f}" if mce is not None else "n/a"] if with_mce else [])
        )
        table9.rows.append([name, *(fmt(summary["per_severity"].get(s)) for s in SEVERITIES)])
        for group, members in CORRUPTION_GROUPS.items():
            cells = [fmt(summary["per_corruption"].get(c)) for c in members]
            tables10[group].rows.append([name, *cells, fmt(summary["per_group"].get(group))])
    if with_mce:
        table8.notes.append("mCE: mean corruption error relative to the baseline run (baseline = 100).")
    return [table8, table9, *tables10.values()]


def markdown_tables(summary: dict[str, Any], missing: list[str], name: str) -> str:
    """Tables 8-10 of one model, with its five-crop clean accuracy, corruption errors and missing conditions."""
    tables = robustness_tables({name: summary})
    tables[0].notes += _five_crop_note(summary.get("clean"))
    if "corruption_error" in summary:
        errors = [[c, f"{v:.3f}"] for c, v in summary["corruption_error"].items()]
        tables.append(Table("Corruption error (CE) vs the baseline", ["corruption", "CE"], errors))
    if missing:
        tables[-1].notes.append(f"Missing (not evaluated, n/a above): {', '.join(missing)}")
    return markdown(tables)


def plot_severity(rows: list[dict[str, Any]], path: Path, name: str) -> Path:
    """Accuracy against severity, one line per corruption group."""
    figure, axis = new_figure(5)
    for group in CORRUPTION_GROUPS:
        points = [
            (severity, float(np.mean(values)))
            for severity in SEVERITIES
            if (values := [r["accuracy"] for r in rows if r["group"] == group and r["severity"] == severity])
        ]
        if points:
            axis.plot(*zip(*points, strict=True), marker="o", label=group)
    axis.set_xlabel("severity")
    axis.set_ylabel("top-1 accuracy")
    axis.set_xticks(list(SEVERITIES))
    return save_figure(figure, path, f"Tiny-ImageNet-C: {name}")


def write_corruption_outputs(
    result: dict[str, Any], summary: dict[str, Any], out_dir: Path, name: str
) -> dict[str, Path]:
    """Write ``corruption_accuracy.csv``, ``corruption_tables.md``, ``corruption_scores.json`` and a plot."""
    out_dir.mkdir(parents=True, exist_ok=True)
    columns = ["corruption", "group", "severity", "accuracy", "images"]
    table = csv_text([columns, *([row[c] for c in columns] for row in result["rows"])])
    return {
        "csv": write_text_atomic(out_dir / "corruption_accuracy.csv", table),
        "markdown": write_text_atomic(
            out_dir / "corruption_tables.md", markdown_tables(summary, result["missing"], name)
        ),
        "json": write_json_atomic(out_dir / "corruption_scores.json", {**result, "summary": summary, "model": name}),
        "plot": plot_severity(result["rows"], out_dir / "corruption_severity.png", name),
    }


class CorruptionEvaluation(Evaluation):
    """Tiny-ImageNet-C accuracy (paper Sec. 4.4, Tables 8-10): ``eval=corruption`` (``conf/eval/corruption.yaml``).

    Clean accuracy comes from the data module's validation split (``corruption.clean``); the corrupted sets from
    ``corruption.root``. Logs the ``corruption/*`` metrics of :func:`summary_metrics`.
    """

    name = "corruption"

    def __init__(
        self, corruption: Mapping[str, Any], batch_size: int = 256, num_workers: int = 4, five_crop: bool = False
    ) -> None:
        self.corruption = dict(corruption)
        check_int(batch_size, "eval.batch_size", 256)
        check_int(num_workers, "eval.num_workers", 4, minimum=0)
        self.baseline = load_rows(self.corruption["baseline"]) if self.corruption.get("baseline") else None
        self.needs_data = bool(self.corruption.get("clean", True))
        self.batch_size, self.num_workers, self.five_crop = batch_size, num_workers, five_crop

    def run(
        self, model: EvaluatedModel, out_dir: Path, datamodule: Any = None, provenance: Provenance = None
    ) -> Outcome:
        settings, net, label = self.corruption, model.net, model.label
        net.eval()
        clean_result = accuracy(net, datamodule.val_dataloader(), datamodule.device_transform) if datamodule else None
        result = evaluate_corruptions(
            net,
            settings["root"],
            num_classes=model.architecture["num_classes"],
            corruptions=list(settings["corruptions"]) if settings.get("corruptions") else None,
            severities=list(settings.get("severities") or SEVERITIES),
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            limit_per_condition=settings.get("limit_per_condition"),
            five_crop=self.five_crop,
            image_size=model.scoring.image_size,
        )
        clean = None if clean_result is None else clean_result["accuracy"]
        summary = summarize(result["rows"], clean, self.baseline)
        summary["clean"] = clean_result
        result.update(provenance or {})
        paths = write_corruption_outputs(result, summary, out_dir, label)
        log.info(
            "%s: clean %s, Tiny-ImageNet-C %.3f over %d conditions (%d missing); %s",
            label,
            "n/a" if clean is None else f"{clean:.3f}",
            summary["mean_corrupted_accuracy"],
            len(result["rows"]),
            len(result["missing"]),
            paths["markdown"],
        )
        metrics = summary_metrics(summary)
        metrics.update({f"corruption/clean_{k}": v for k, v in (clean_result or {}).items() if v is not None})
        return Outcome({"summary": summary, **result}, metrics, summary["mean_corrupted_accuracy"], paths["plot"])
