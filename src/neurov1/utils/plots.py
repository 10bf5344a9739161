"""Figures written next to the result tables (non-interactive backend), atomically like the tables."""

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from neurov1.utils.io import write_bytes_atomic  # noqa: E402

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
    """Tight layout, a PNG at ``DPI`` written atomically; closes the figure."""
    buffer = io.BytesIO()
    try:
        figure.tight_layout()
        figure.savefig(buffer, format="png", dpi=DPI)
    finally:
        plt.close(figure)
    return write_bytes_atomic(path, buffer.getvalue())
