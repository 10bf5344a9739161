"""Result tables kept as rows, rendered as markdown (and handed to W&B as the same rows)."""

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Table:
    """A titled table: a header row, string cells, and notes printed below it."""

    title: str
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        lines = [self.title, "", "| " + " | ".join(self.header) + " |", "|---" * len(self.header) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        lines += [line for note in self.notes for line in ("", note)]
        return "\n".join(lines) + "\n"

    def csv(self) -> str:
        return csv_text([self.header, *self.rows])


def fmt(value: float | None) -> str:
    """Three decimals, or n/a for a value that was not measured."""
    return "n/a" if value is None else f"{value:.3f}"


def mean_std(mean: float, std: float, count: int, digits: int = 3) -> str:
    """``mean ± std`` of ``count`` values (seeds), or the mean alone for a single value."""
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if count > 1 else f"{mean:.{digits}f}"


def csv_text(rows: Iterable[Sequence[Any]]) -> str:
    """Rows (the first one a header) as CSV text, one line per row."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def markdown(tables: list[Table]) -> str:
    """Tables separated by blank lines."""
    return "\n".join(table.markdown() for table in tables)
