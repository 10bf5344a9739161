"""The results ledger: one JSON record per finished run (train or evaluate) under ``<results_dir>/records/``.

A record is written atomically when its run has finished, so a crashed run leaves no partial record and parallel
sweep jobs never write to the same file. A training run's record is named after the run's identity
(``train-<run_id>.json``): a run resumed and finished again replaces its record instead of adding a second one.
A record that cannot be used (unreadable, of a foreign schema, or with values of the wrong type: :data:`SCHEMAS`)
is skipped with a warning naming its file and what is wrong; records are data, read and checked, never code.
"""

import datetime
import json
import logging
import uuid
from pathlib import Path
from typing import Any

from neurov1.errors import ConfigError
from neurov1.utils.io import write_json_atomic

log = logging.getLogger(__name__)


class Optional_:  # noqa: N801 - a marker in the schemas below, named like the typing term it stands for
    """A schema entry for a key that a record may lack (or hold as null)."""

    def __init__(self, spec: Any) -> None:
        self.spec = spec


NUMBER = (int, float, type(None))  # a metric: null where it was not finite
METRICS = {str: NUMBER}
ROUND_ENTRY = {"components": [str], "removed": (str, type(None)), "values": [NUMBER], "mean": NUMBER, "std": NUMBER}
# What every record holds, and what each command adds: all that the report (neurov1.results.paper_tables) reads.
COMMON = {"command": str, "created_at": str}
SCHEMAS: dict[str, dict[str, Any]] = {
    "train": {
        "run_dir": str,
        "seed": int,
        "arch": str,
        "components": [str],
        "status": Optional_(str),
        "failure": Optional_(str),
        "final": METRICS,
        "best": {"value": NUMBER},
        "curves": Optional_({str: [{str: NUMBER}]}),
        "finetune": Optional_(dict),
        "adversarial_training": Optional_(dict),
        "fixation": Optional_(str),
    },
    "evaluate": {
        "eval": str,
        "model": str,
        "checkpoint": Optional_(str),
        "metrics": METRICS,
    },
    "elimination": {
        "sweep_dir": str,
        "settings": {"start": [str], "seeds": [int], "metric": str, "mode": str},
        "rounds": [
            {
                "round": int,
                "removed": (str, type(None)),
                "kept": [str],
                "current_score": ROUND_ENTRY,
                "candidates": [{**ROUND_ENTRY, "runs": [str]}],
            }
        ],
    },
}


def schema_error(value: Any, spec: Any, key: str = "") -> str | None:
    """What is wrong with ``value`` by ``spec`` (a type or tuple of types, ``[item spec]``, ``{str: value spec}``
    for any keys, or ``{key: spec}`` for these keys), or None. A bool is not a number."""
    if isinstance(spec, Optional_):
        return None if value is None else schema_error(value, spec.spec, key)
    if isinstance(spec, type | tuple):
        types = spec if isinstance(spec, tuple) else (spec,)
        if isinstance(value, bool) and bool not in types or not isinstance(value, types):
            names = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            return f"{key or 'the record'} is {type(value).__name__}, not {names}"
        return None
    if isinstance(spec, list):
        if not isinstance(value, list):
            return f"{key} is {type(value).__name__}, not a list"
        return next((e for i, item in enumerate(value) if (e := schema_error(item, spec[0], f"{key}[{i}]"))), None)
    if not isinstance(value, dict):
        return f"{key or 'the record'} is {type(value).__name__}, not an object"
    if list(spec) == [str]:
        return next((e for name, item in value.items() if (e := schema_error(item, spec[str], f"{key}.{name}"))), None)
    for name, item_spec in spec.items():
        path = f"{key}.{name}" if key else name
        if name not in value and not isinstance(item_spec, Optional_):
            return f"no {path}"
        if error := schema_error(value.get(name), item_spec, path):
            return error
    return None


def check_record(record: Any) -> dict[str, Any]:
    """``record`` if it is a ledger record the report can use; ValueError saying what is wrong otherwise. (Records
    written before the field was named ``command`` call it ``kind``.)"""
    if isinstance(record, dict) and "kind" in record and "command" not in record:
        record["command"] = record.pop("kind")
    error = schema_error(record, COMMON)
    if error is None and record["command"] not in SCHEMAS:
        error = f"unknown command {record['command']!r} (known: {', '.join(SCHEMAS)})"
    if error is None:
        error = schema_error(record, SCHEMAS[record["command"]])
    if error is None:
        try:
            datetime.datetime.fromisoformat(record["created_at"])
        except ValueError:
            error = f"created_at {record['created_at']!r} is not an ISO time"
    if error is not None:
        raise ValueError(f"not a neurov1 ledger record: {error}")
    return record


def write_record(results_dir: str | Path, command: str, identity: str | None, record: dict[str, Any]) -> Path:
    """Write the record of one run of ``command`` (train, evaluate, elimination); returns its file.

    ``identity``: the run's own identity (a new record replaces the run's earlier one), None for a new one.
    """
    created = datetime.datetime.now(datetime.UTC)
    identity = identity or f"{created:%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}"
    return write_json_atomic(
        Path(results_dir) / "records" / f"{command}-{identity}.json",
        {"command": command, "created_at": created.isoformat(), **record},
    )


def load_records(results_dir: str | Path) -> list[dict[str, Any]]:
    """Every readable record of the ledger, oldest first; unreadable ones are skipped with a warning."""
    folder = Path(results_dir) / "records"
    if not folder.is_dir():
        raise ConfigError(
            f"results_dir: {results_dir} holds no ledger (no records/ folder). Point it at paths.results_dir of "
            "finished runs (default outputs/results)."
        )
    records = []
    for path in sorted(folder.glob("*.json")):
        try:
            record = check_record(json.loads(path.read_text()))
        except (OSError, ValueError) as error:
            log.warning("Skipping ledger record %s: %s. Delete or restore the file.", path, error)
            continue
        records.append(record)
    return sorted(records, key=lambda record: datetime.datetime.fromisoformat(record["created_at"]))
