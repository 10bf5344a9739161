"""Figures written next to the result tables (non-interactive backend), atomically like the tables."""

import os
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

DPI = 120


def new_figure(width: float, height: float = 3.5):
    """A figure and its single axis."""
    return plt.subplots(figsize=(width, height))


def save_figure(figure: Figure, path: Path, title: str) -> Path:
    """Title, legend (if any labelled artists), then :func:`write_png`."""
    axis = figure.axes[0]
    axis.set_title(title, fontsize=10)
    if axis.get_legend_handles_labels()[0]:
        axis.legend(fontsize=8)
    return write_png(figure, path)


def write_png(figure: Figure, path: Path) -> Path:
    """Tight layout, a PNG at ``DPI`` through a temporary file and an atomic rename; closes the figure."""
    path = Path(path)
    figure.tight_layout()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            figure.savefig(handle, format="png", dpi=DPI)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        plt.close(figure)
    return path
