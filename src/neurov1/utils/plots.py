"""Figures written next to the result tables (non-interactive backend)."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def new_figure(width: float, height: float = 3.5):
    """A figure and its single axis."""
    return plt.subplots(figsize=(width, height))


def save_figure(figure: Figure, path: Path, title: str) -> Path:
    """Title, legend (if any labelled artists), tight layout, 120 dpi PNG; closes the figure."""
    axis = figure.axes[0]
    axis.set_title(title, fontsize=10)
    if axis.get_legend_handles_labels()[0]:
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
