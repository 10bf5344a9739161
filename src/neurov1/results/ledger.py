"""The results ledger: one JSON record per finished run (train or evaluate) under ``<results_dir>/records/``.

A record is written atomically when its run has finished, so a crashed run leaves no partial record and parallel
sweep jobs never write to the same file. A training run's record is named after the run's identity
(``train-<run_id>.json``): a run resumed and finished again replaces its record instead of adding a second one.
A record that cannot be read is skipped with a warning naming its file.
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
            record = json.loads(path.read_text())
            if isinstance(record, dict) and "kind" in record:  # written before the field was named command
                record["command"] = record.pop("kind")
            if not isinstance(record, dict) or "command" not in record or "created_at" not in record:
                raise ValueError("not a neurov1 ledger record")
        except (OSError, ValueError) as error:
            log.warning("Skipping ledger record %s: %s. Delete or restore the file.", path, error)
            continue
        records.append(record)
    return sorted(records, key=lambda record: record["created_at"])
