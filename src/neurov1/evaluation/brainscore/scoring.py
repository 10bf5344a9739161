"""Score one layer of a network on the paper's V1 benchmarks: Predictivity, the 22 properties, V1 Overall.

Aggregation as in the paper (Sec. 3.2): a property group's score is the mean of its benchmarks' ceiled scores,
V1 Property the mean of the 7 group means, V1 Overall the mean of V1 Predictivity and V1 Property. Benchmarks that
cannot be scored (no network and no offline version, missing credentials) are listed with the reason, and the
headline scores are marked partial.
"""

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from neurov1.errors import ConfigError
from neurov1.evaluation.brainscore.benchmarks import PREDICTIVITY, PROPERTY_BENCHMARKS, PROPERTY_GROUPS
from neurov1.evaluation.brainscore.environment import import_brainscore
from neurov1.utils.io import default_cache_dir

log = logging.getLogger(__name__)

SOURCES = ("auto", "brainscore", "offline")


@dataclass(frozen=True)
class V1Settings:
    """What to score and how (``conf/eval/v1.yaml``)."""

    predictivity: str = "public"  # public | private (the paper's, needs Brain-Score credentials)
    source: str = "auto"  # auto: Brain-Score's data, offline benchmarks where it cannot be loaded
    seed: int = 0
    benchmarks: tuple[str, ...] | None = None  # a subset of the 23 benchmark ids; None = all

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ConfigError(f"eval.source must be one of {SOURCES}, got {self.source!r}")
        if self.predictivity not in PREDICTIVITY:
            raise ConfigError(f"eval.predictivity must be one of {tuple(PREDICTIVITY)}, got {self.predictivity!r}")
        unknown = set(self.benchmarks or ()) - {PREDICTIVITY[self.predictivity], *PROPERTY_BENCHMARKS}
        if unknown:
            raise ConfigError(f"eval.benchmarks: unknown benchmark ids {sorted(unknown)}")

    def header(self, model: str) -> dict[str, Any]:
        """The first keys of a V1 report (``v1_scores.json``, ``v1_probe.json``): model and settings."""
        return {
            "model": model,
            "source": self.source,
            "predictivity_benchmark": PREDICTIVITY[self.predictivity],
            "seed": self.seed,
        }

    def selected(self) -> list[str]:
        everything = [PREDICTIVITY[self.predictivity], *PROPERTY_BENCHMARKS]
        return [b for b in everything if self.benchmarks is None or b in self.benchmarks]


@contextlib.contextmanager
def recorded_downloads() -> Iterator[list[tuple[str, str]]]:
    """Record the (remote location, local path) of every Brain-Score file download that fails inside the block."""
    from brainscore_core.supported_data_standards.brainio.fetch import BotoFetcher

    failed: list[tuple[str, str]] = []
    original = BotoFetcher.download_boto

    def download(fetcher: BotoFetcher) -> None:
        try:
            original(fetcher)
        except Exception:
            failed.append((fetcher.location, fetcher.output_filename))
            raise

    BotoFetcher.download_boto = download
    try:
        yield failed
    finally:
        BotoFetcher.download_boto = original


def unavailable_reason(benchmark_id: str, error: BaseException, failed_downloads: list[tuple[str, str]]) -> str:
    text = f"{type(error).__name__}: {error}"
    if benchmark_id == PREDICTIVITY["private"] and ("403" in text or "Forbidden" in text or "AccessDenied" in text):
        return (
            f"{benchmark_id} is private Brain-Score data and needs credentials; use eval.predictivity=public "
            f"({PREDICTIVITY['public']}) or configure Brain-Score credentials. ({text[:200]})"
        )
    if failed_downloads:
        files = "; ".join(f"{remote} -> {local}" for remote, local in failed_downloads)
        return (
            f"Brain-Score data could not be downloaded (no network?): {files}. Pre-populate the cache by copying "
            "these files to the paths shown (BRAINIO_HOME, set through eval.cache_dir), e.g. from a machine where "
            "the same evaluation ran with network."
        )
    return text[:500]


def _value(item: Any) -> float | None:
    """A Score/array/number as one float (the 'center' of an aggregation dimension when there is one)."""
    if item is None:
        return None
    if hasattr(item, "dims") and "aggregation" in item.dims:
        item = item.sel(aggregation="center")
    return float(np.mean(np.asarray(getattr(item, "values", item), dtype=float)))


def score_entry(benchmark_id: str, score: Any) -> dict[str, Any]:
    """Ceiled, raw and ceiling values of one Brain-Score score (plus the paper-era normalisation for predictivity)."""
    raw, ceiling = _value(score.attrs.get("raw")), _value(score.attrs.get("ceiling"))
    entry = {"ceiled": _value(score), "raw": raw, "ceiling": ceiling}
    if benchmark_id in PREDICTIVITY.values() and raw is not None and ceiling:
        # Brain-Score 2.4 ceils PLS predictivity as r^2 / ceiling; the paper (2023) used (r / ceiling)^2.
        entry["ceiled_r2_over_ceiling"] = raw**2 / ceiling
        entry["ceiled_paper_era"] = (raw / ceiling) ** 2
    return entry


def _run(benchmark: Any, model: Any, seed: int) -> Any:
    np.random.seed(seed)  # Marques2020 bootstraps draw from numpy's global RNG
    return benchmark(model)


def score_layer(model: Any, settings: V1Settings, cache_dir: str | None = None) -> dict[str, Any]:
    """Score a Brain-Score ``model`` (:func:`neurov1.evaluation.brainscore.model.brain_model`) on the selected
    benchmarks."""
    brainscore_vision = import_brainscore(cache_dir)
    from neurov1.evaluation.brainscore.offline import OFFLINE_BENCHMARKS, offline_benchmark

    entries: dict[str, dict[str, Any]] = {}
    selected = settings.selected()
    for benchmark_id in selected:
        if settings.source == "offline":
            continue
        started = time.time()
        with recorded_downloads() as failed:
            try:
                score = _run(brainscore_vision.load_benchmark(benchmark_id), model, settings.seed)
                entries[benchmark_id] = {**score_entry(benchmark_id, score), "source": "brainscore"}
            except Exception as error:  # noqa: BLE001 - every failure becomes a reported, unscored benchmark
                reason = unavailable_reason(benchmark_id, error, failed)
                log.warning("%s not scored from Brain-Score data: %s", benchmark_id, reason)
                entries[benchmark_id] = {"source": None, "reason": reason}
        entries[benchmark_id]["seconds"] = round(time.time() - started, 1)

    if settings.source != "brainscore":
        for benchmark_id in selected:
            if entries.get(benchmark_id, {}).get("source") or benchmark_id not in OFFLINE_BENCHMARKS:
                continue
            started = time.time()
            try:
                score = _run(offline_benchmark(benchmark_id, cache_dir or default_cache_dir()), model, settings.seed)
                entries[benchmark_id] = {**score_entry(benchmark_id, score), "source": "offline"}
            except Exception as error:  # noqa: BLE001
                log.warning("%s not scored offline: %s", benchmark_id, error)
                entries[benchmark_id] = {"source": None, "reason": f"offline: {type(error).__name__}: {error}"[:500]}
            entries[benchmark_id]["seconds"] = round(time.time() - started, 1)

    for benchmark_id in selected:
        entries.setdefault(
            benchmark_id, {"source": None, "reason": "no offline version (needs Brain-Score data)", "seconds": 0.0}
        )
    return summarize(entries, settings)


def summarize(entries: dict[str, dict[str, Any]], settings: V1Settings) -> dict[str, Any]:
    """Group means, V1 Property (mean of group means), V1 Predictivity, V1 Overall, and what is missing."""
    groups = {}
    for group, members in PROPERTY_GROUPS.items():
        scored = [entries[b]["ceiled"] for b in members if entries.get(b, {}).get("source")]
        groups[group] = {
            "score": float(np.mean(scored)) if scored else None,
            "scored": len(scored),
            "total": len(members),
        }
    group_scores = [g["score"] for g in groups.values() if g["score"] is not None]
    predictivity_entry = entries.get(PREDICTIVITY[settings.predictivity], {})
    predictivity = predictivity_entry.get("ceiled") if predictivity_entry.get("source") else None
    prop = float(np.mean(group_scores)) if group_scores else None
    missing = [b for b in settings.selected() if not entries[b].get("source")]
    return {
        "benchmarks": entries,
        "groups": groups,
        "scores": {
            "v1_overall": None if predictivity is None or prop is None else (predictivity + prop) / 2,
            "v1_predictivity": predictivity,
            "v1_property": prop,
        },
        "partial": bool(missing) or settings.benchmarks is not None,
        "missing": missing,
    }
