"""Greedy backward elimination of components (paper Sec. 4.2, Tables 3 and 5).

Start from a component set; each round evaluates every set with one component removed (round 0 also the start set
itself), averages the chosen metric over seeds per set, and keeps the removal whose set scores best; the rounds go
on down to ``min_components`` components. Ties go to the removal listed first in the canonical component order.

The state of an elimination is its sweep folder: every finished run leaves ``<job>/metrics.json`` (written
atomically at its end, with ``status: completed``), and :func:`eliminate` replays the rounds from those runs alone.
So an interrupted elimination resumes by running the same command: the finished runs are found again, and only the
missing ones are launched. ``elimination.json`` (settings, rounds, pending runs) and the trace table
``elimination.md``/``.csv`` are rewritten after every batch of runs.

The Hydra sweeper that launches the rounds is ``hydra_plugins/neurov1_sweepers``.
"""

import difflib
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from neurov1.errors import ConfigError
from neurov1.models import component_order
from neurov1.utils.io import write_json_atomic, write_text_atomic
from neurov1.utils.tables import Table, csv_text, mean_std

log = logging.getLogger(__name__)

KEY = "hydra.sweeper"
STATE_FILE = "elimination.json"
# Overrides the sweeper sets for each job itself; given on the command line they would contradict the elimination.
RESERVED_OVERRIDES = ("model/components", "seed")
# Metrics only logged when their evaluation callback is enabled: metric prefix -> callbacks.<name>.
CALLBACK_METRICS = {"v1/": "v1", "corruption/": "corruption", "adversarial/": "adversarial"}

ComponentSet = tuple[str, ...]
RunKey = tuple[ComponentSet, int]


@dataclass(frozen=True)
class Settings:
    """What to eliminate from and how to choose (``hydra.sweeper.*``)."""

    start: ComponentSet
    metric: str = "v1/overall"
    mode: str = "max"
    seeds: tuple[int, ...] = (0,)
    min_components: int = 1

    def __post_init__(self) -> None:
        start = tuple(component_order(self.start))
        if len(start) != len(self.start):
            raise ConfigError(f"{KEY}.start={list(self.start)} names a component twice; list each once.")
        object.__setattr__(self, "start", start)
        if self.mode not in ("max", "min"):
            raise ConfigError(f"{KEY}.mode={self.mode!r}: use max (accuracy, V1 scores) or min (losses).")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"{KEY}.seeds={list(self.seeds)}: give one or more distinct seeds, e.g. [0,1,2].")
        if not 1 <= self.min_components < len(self.start):
            raise ConfigError(
                f"{KEY}.min_components={self.min_components} with {len(self.start)} start components: it must be at "
                f"least 1 and below the start set's size, e.g. {KEY}.min_components=1."
            )


@dataclass
class Trace:
    """Rounds decided so far, and the runs still missing before the next round can be decided."""

    settings: Settings
    rounds: list[dict[str, Any]] = field(default_factory=list)
    pending: list[RunKey] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return not self.pending

    @property
    def final(self) -> ComponentSet:
        return tuple(self.rounds[-1]["kept"]) if self.rounds else self.settings.start


def metric_value(metrics: dict[str, Any], metric: str, run_dir: Path) -> float:
    """The run's value of ``metric``: its best checkpoint score if that is the monitored metric, else its last one."""
    best = metrics.get("best") or {}
    if metric == best.get("monitor") and best.get("value") is not None:
        return float(best["value"])
    if metric in metrics["final"]:
        return float(metrics["final"][metric])
    logged = sorted({*metrics["final"], *([best["monitor"]] if best.get("monitor") else [])})
    close = difflib.get_close_matches(metric, logged, n=1)
    raise ConfigError(
        f"{KEY}.metric={metric}: run {run_dir} did not log it.{f' Did you mean {close[0]!r}?' if close else ''} "
        f"It logged: {', '.join(logged)}. Offline, V1 Predictivity (and so v1/overall) cannot be scored: choose "
        f"{KEY}.metric=v1/property or val/acc1. The finished runs are kept and reused when you rerun."
    )


def finished_runs(sweep_dir: Path) -> dict[RunKey, tuple[Path, dict[str, Any]]]:
    """``{(components, seed): (run dir, metrics.json)}`` of the completed runs in ``sweep_dir`` (first one wins)."""
    runs: dict[RunKey, tuple[Path, dict[str, Any]]] = {}
    for path in sorted(sweep_dir.glob("*/metrics.json"), key=lambda p: _job_number(p.parent)):
        metrics = json.loads(path.read_text())
        if metrics.get("status") == "completed":
            runs.setdefault((tuple(metrics["components"]), int(metrics["seed"])), (path.parent, metrics))
    return runs


def _job_number(run_dir: Path) -> int:
    return int(run_dir.name) if run_dir.name.isdigit() else -1


def next_job_number(sweep_dir: Path) -> int:
    """The first job number not used yet by a folder of ``sweep_dir`` (finished, failed or interrupted)."""
    return max((_job_number(path) for path in sweep_dir.iterdir() if path.is_dir()), default=-1) + 1


def eliminate(settings: Settings, runs: dict[RunKey, tuple[Path, dict[str, Any]]]) -> Trace:
    """Replay the elimination on the finished ``runs`` as far as they allow."""
    trace = Trace(settings)
    current = settings.start
    while len(current) > settings.min_components:
        candidates = [(tuple(c for c in current if c != removed), removed) for removed in current]
        evaluated = ([(current, None)] if not trace.rounds else []) + candidates
        trace.pending = [(s, seed) for s, _ in evaluated for seed in settings.seeds if (s, seed) not in runs]
        if trace.pending:
            return trace
        scored = [_score(settings, runs, s, removed) for s, removed in evaluated]
        scored_candidates = scored[-len(candidates) :]
        pick = max if settings.mode == "max" else min
        best = pick(scored_candidates, key=lambda entry: entry["mean"])  # first one wins a tie
        trace.rounds.append(
            {
                "round": len(trace.rounds),
                "current": list(current),
                # the start set was scored in this batch; later sets were the previous round's pick
                "current_score": scored[0] if not trace.rounds else _kept(trace.rounds[-1]),
                "candidates": scored_candidates,
                "removed": best["removed"],
                "kept": best["components"],
            }
        )
        current = tuple(best["components"])
    return trace


def _kept(entry: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in entry["candidates"] if c["removed"] == entry["removed"])


def _score(settings: Settings, runs: dict, components: ComponentSet, removed: str | None) -> dict[str, Any]:
    found = [runs[components, seed] for seed in settings.seeds]
    values = [metric_value(metrics, settings.metric, run_dir) for run_dir, metrics in found]
    return {
        "components": list(components),
        "removed": removed,
        "mean": float(np.mean(values)),
        "std": float(np.std(values)),
        "values": values,
        "runs": [str(run_dir) for run_dir, _ in found],
    }


def check_arguments(arguments: list[str]) -> None:
    """Refuse command-line overrides the sweeper sets itself, and sweeps inside the elimination."""
    for argument in arguments:
        key = argument.partition("=")[0].lstrip("+~")
        if key in RESERVED_OVERRIDES:
            raise ConfigError(
                f"{argument}: backward elimination sets {key} for each run itself. Choose the start set with "
                f"{KEY}.start=[center_surround,tuned_norm,...] and the seeds with {KEY}.seeds=[0,1,2]."
            )
        value = argument.partition("=")[2]
        if "," in value and not value.startswith(("[", "{", "'", '"')):
            raise ConfigError(f"{argument}: a sweep inside backward elimination is not supported; give one value.")


def check_metric_is_logged(settings: Settings, callbacks: dict[str, Any] | None) -> None:
    """A metric that only an evaluation callback logs needs that callback (checked before any run starts)."""
    for prefix, callback in CALLBACK_METRICS.items():
        if settings.metric.startswith(prefix) and callback not in (callbacks or {}):
            raise ConfigError(
                f"{KEY}.metric={settings.metric} is only logged with the {callback} callback: add "
                f"callbacks={callback}, or choose {KEY}.metric=val/acc1."
            )


def check_same_arguments(sweep_dir: Path, arguments: list[str]) -> None:
    """Resuming must train the same way: the command-line overrides must equal those the folder was started with."""
    state_file = sweep_dir / STATE_FILE
    if not state_file.is_file():
        return
    before = json.loads(state_file.read_text())["arguments"]
    if sorted(before) != sorted(arguments):
        raise ConfigError(
            f"hydra.sweep.dir={sweep_dir} holds an elimination started with the overrides {before}, not {arguments}. "
            f"Rerun with those overrides to resume it, or start another one with {KEY}.name=<new name>."
        )


def write_state(sweep_dir: Path, trace: Trace, arguments: list[str]) -> dict[str, Path]:
    """``elimination.json`` and the trace table (``elimination.md``, ``elimination.csv``), atomically."""
    state = {
        "settings": asdict(trace.settings),
        "arguments": arguments,
        "done": trace.done,
        "final": list(trace.final) if trace.done else None,
        "rounds": trace.rounds,
        "pending": [{"components": list(s), "seed": seed} for s, seed in trace.pending],
    }
    return {
        "json": write_json_atomic(sweep_dir / STATE_FILE, state),
        "markdown": write_text_atomic(sweep_dir / "elimination.md", trace_markdown(trace)),
        "csv": write_text_atomic(sweep_dir / "elimination.csv", trace_csv(trace)),
    }


def trace_rows(rounds: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any], str]]:
    """(round, scored set, role) per evaluated set: the start set, then each round's candidates."""
    rows = []
    for entry in rounds:
        if entry["round"] == 0:
            rows.append((0, entry["current_score"], "start"))
        rows += [(entry["round"], c, "kept" if c["removed"] == entry["removed"] else "") for c in entry["candidates"]]
    return rows


def score_cell(entry: dict[str, Any]) -> str:
    """The metric of a scored set: mean (± std over seeds when there are several)."""
    return mean_std(entry["mean"], entry["std"], len(entry["values"]), digits=4)


def trace_table(
    start: list[str], rounds: list[dict[str, Any]], title: str, columns: list[tuple[str, Callable[[dict], str]]]
) -> Table:
    """One row per evaluated set: round, a checkmark per start component, the removed one, ``columns``, its role."""
    table = Table(title, ["round", *start, "removed", *(name for name, _ in columns), ""])
    for number, entry, role in trace_rows(rounds):
        marks = ["✓" if c in entry["components"] else "" for c in start]
        cells = [cell(entry) for _, cell in columns]
        table.rows.append([str(number), *marks, entry["removed"] or "—", *cells, role])
    return table


def trace_markdown(trace: Trace) -> str:
    settings = trace.settings
    seeds = f"{len(settings.seeds)} seed{'s' if len(settings.seeds) > 1 else ''}"
    table = trace_table(
        list(settings.start),
        trace.rounds,
        f"Backward elimination from {'+'.join(settings.start)} on {settings.metric} (✓: in the model)",
        [(f"{settings.metric} ({settings.mode}, {seeds})", score_cell)],
    )
    if trace.done:
        table.notes.append(f"Final set: {'+'.join(trace.final)}.")
    else:
        table.notes.append(f"In progress: {len(trace.pending)} runs pending for round {len(trace.rounds)}.")
    return table.markdown()


def trace_csv(trace: Trace) -> str:
    rows = [["round", "components", "removed", "metric", "mean", "std", "seeds", "role"]]
    for number, entry, role in trace_rows(trace.rounds):
        components, removed, seeds = "+".join(entry["components"]), entry["removed"] or "", len(entry["values"])
        rows.append([number, components, removed, trace.settings.metric, entry["mean"], entry["std"], seeds, role])
    return csv_text(rows)


def components_override(components: ComponentSet) -> str:
    """The job override selecting exactly ``components`` (canonical order)."""
    ordered = component_order(components)
    return f"+model/components=[{','.join(ordered)}]"
