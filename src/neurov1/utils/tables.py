"""Result tables kept as rows, rendered as markdown (and handed to W&B as the same rows)."""

from dataclasses import dataclass, field


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


def fmt(value: float | None) -> str:
    """Three decimals, or n/a for a value that was not measured."""
    return "n/a" if value is None else f"{value:.3f}"


def markdown(tables: list[Table]) -> str:
    """Tables separated by blank lines."""
    return "\n".join(table.markdown() for table in tables)
