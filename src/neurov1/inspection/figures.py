"""Figure and number helpers shared by the analyses: summary statistics, tile montages, multi-panel figures."""

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from neurov1.utils.plots import plt, write_png


def summary_statistics(values: np.ndarray) -> dict[str, float]:
    """Count, mean, standard deviation and the five quantiles (min, q25, median, q75, max) of ``values``."""
    values = np.asarray(values, dtype=np.float64).ravel()
    quantiles = np.quantile(values, [0.0, 0.25, 0.5, 0.75, 1.0])
    names = ("min", "q25", "median", "q75", "max")
    return {
        "count": int(values.size),
        "mean": float(values.mean()),
        "std": float(values.std()),
        **{name: float(value) for name, value in zip(names, quantiles, strict=True)},
    }


def montage(tiles: np.ndarray, columns: int, gap: int = 2, fill: float = 1.0) -> np.ndarray:
    """Tiles (N, h, w[, 3]) laid out row-major in ``columns`` columns, ``gap`` px apart on a ``fill`` background."""
    count, height, width = tiles.shape[:3]
    rows = -(-count // columns)
    canvas = np.full(
        (rows * (height + gap) - gap, columns * (width + gap) - gap, *tiles.shape[3:]), fill, dtype=np.float64
    )
    for index, tile in enumerate(tiles):
        row, column = divmod(index, columns)
        top, left = row * (height + gap), column * (width + gap)
        canvas[top : top + height, left : left + width] = tile
    return canvas


def panels(columns: int, rows: int = 1, panel_size: float = 3.2) -> tuple[Figure, np.ndarray]:
    """A figure of rows x columns panels and its axes as a 2D array."""
    return plt.subplots(rows, columns, figsize=(panel_size * columns, panel_size * rows), squeeze=False)


def save_panels(figure: Figure, path: Path, title: str) -> Path:
    """Figure title, then :func:`neurov1.utils.plots.write_png`."""
    figure.suptitle(title, fontsize=10)
    return write_png(figure, path)
