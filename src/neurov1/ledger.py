"""The results ledger: one JSON record per finished run (train or evaluate) under ``<results_dir>/records/``.

A record is written once, atomically, when its run has finished, so a crashed run leaves no partial record and
parallel sweep jobs never write to the same file.
"""

import datetime
import json
import uuid
from pathlib import Path
from typing import Any

from neurov1.errors import ConfigError
from neurov1.utils.io import write_json_atomic


def append_record(results_dir: str | Path, kind: str, record: dict[str, Any]) -> Path:
    """Add one record (``kind``: train or evaluate) to the ledger; returns its file."""
    created = datetime.datetime.now(datetime.UTC)
    name = f"{created:%Y%m%dT%H%M%S%f}-{kind}-{uuid.uuid4().hex[:8]}.json"
    return write_json_atomic(
        Path(results_dir) / "records" / name, {"kind": kind, "created_at": created.isoformat(), **record}
    )


def load_records(results_dir: str | Path) -> list[dict[str, Any]]:
    """Every record of the ledger, oldest first."""
    folder = Path(results_dir) / "records"
    if not folder.is_dir():
        raise ConfigError(
            f"results_dir: {results_dir} holds no ledger (no records/ folder). Point it at paths.results_dir of "
            "finished runs (default outputs/results)."
        )
    return [json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))]
