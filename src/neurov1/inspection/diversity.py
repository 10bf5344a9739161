"""Diversity of maximally activating stimuli: mean pairwise LPIPS, and the one-way ANOVA between models (Sec. 4.3).

LPIPS (Zhang et al. 2018) with the ``lpips`` package's AlexNet variant (v0.1): its linear-layer weights ship in
the wheel; the AlexNet trunk weights are read from a local file (torchvision's ImageNet AlexNet state dict, e.g.
``alexnet-owt-7be5be79.pth``), never downloaded. Without one the trunk is random (seeded) and the distances are
not LPIPS: every output says so.
"""

import json
import logging
import warnings
from pathlib import Path
from typing import Any

import lpips
import numpy as np
import torch
from scipy.stats import f_oneway

from neurov1.errors import ConfigError
from neurov1.inspection import SUMMARY_FILE
from neurov1.inspection.figures import panels, save_panels, summary_statistics
from neurov1.utils.io import write_json_atomic, write_text_atomic
from neurov1.utils.tables import Table, csv_text

log = logging.getLogger(__name__)

KEY = "lpips_diversity.trunk_weights"
RANDOM_TRUNK = "random (not comparable with LPIPS)"
DISTANCES_FILE = "lpips_distances.csv"


def lpips_metric(trunk_weights: str | None, seed: int) -> tuple[lpips.LPIPS, str]:
    """The LPIPS AlexNet metric (eval mode) and a description of its trunk: the weights file, or RANDOM_TRUNK.

    The package builds its trunk with torchvision's ``alexnet(pretrained=False)`` (no download); the weights file's
    ``features.<i>.*`` entries are then loaded into the package's slices ``slice<k>.<i>.*``.
    """
    with torch.random.fork_rng(), warnings.catch_warnings():
        # the package passes torchvision's deprecated pretrained=False: a warning, not a download
        warnings.simplefilter("ignore", UserWarning)
        torch.manual_seed(seed)
        metric = lpips.LPIPS(net="alex", version="0.1", pnet_rand=True, verbose=False).eval()
    if trunk_weights is None:
        log.warning(
            "lpips_diversity: no %s given, the AlexNet trunk is RANDOM: the distances are not LPIPS and not "
            "comparable with the paper. Set %s=<torchvision AlexNet ImageNet weights .pth>.",
            KEY,
            KEY,
        )
        return metric, RANDOM_TRUNK
    path = Path(trunk_weights).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"{KEY}={path}: no such file. Point it at torchvision's AlexNet ImageNet weights "
            "(alexnet-owt-7be5be79.pth), or set it to null for a random trunk (not LPIPS)."
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        metric.net.load_state_dict({key: state[f"features.{key.split('.', 1)[1]}"] for key in metric.net.state_dict()})
    except (KeyError, RuntimeError, TypeError) as error:
        raise ConfigError(
            f"{KEY}={path}: not a torchvision AlexNet state dict ({type(error).__name__}: {error}). Use the file "
            "torchvision's alexnet(weights='IMAGENET1K_V1') loads (alexnet-owt-7be5be79.pth)."
        ) from None
    return metric, str(path)


@torch.no_grad()
def pairwise_lpips(metric: lpips.LPIPS, images: torch.Tensor) -> np.ndarray:
    """The (N, N) LPIPS distances between images (N, 3, H, W) in [0, 1], computing each image's features once.

    LPIPS as the package computes it: d(x, y) = sum_l mean_hw sum_c w_lc (a_lchw(x) - a_lchw(y))^2, with a the
    trunk's layer-l features scaled to unit norm over channels (inputs mapped to [-1, 1] and shifted/scaled by
    the package's scaling layer) and w_l the linear layer's weights. Expanded, the squared difference becomes
    |x|_w^2 + |y|_w^2 - 2 <x, y>_w per layer, one weighted Gram matrix for all pairs (in float64).
    """
    features = metric.net(metric.scaling_layer(2 * images - 1))
    distances = torch.zeros(len(images), len(images), dtype=torch.float64)
    for layer, linear in zip(features, metric.lins, strict=True):
        unit = lpips.normalize_tensor(layer).double()
        weight = linear.model[-1].weight.double().view(1, -1, 1, 1)
        gram = (weight * unit).flatten(1) @ unit.flatten(1).T
        norms = gram.diagonal()
        distances += (norms[:, None] + norms[None, :] - 2 * gram) / (layer.shape[-2] * layer.shape[-1])
    return distances.clamp(min=0).numpy()


def pair_distances(distances: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row indices, column indices and values of the distinct pairs (i < j) of a square distance matrix."""
    first, second = np.triu_indices(len(distances), k=1)
    return first, second, distances[first, second]


def analyze_lpips(
    metric: lpips.LPIPS, trunk: str, images: torch.Tensor, channels: list[int], out_dir: Path
) -> dict[str, Any]:
    """Mean pairwise LPIPS between the stimuli; writes every pair's distance (CSV) and a matrix/histogram figure."""
    distances = pairwise_lpips(metric, images)
    first, second, values = pair_distances(distances)
    pairs = [(channels[i], channels[j], f"{value:.6g}") for i, j, value in zip(first, second, values, strict=True)]
    csv_path = write_text_atomic(out_dir / DISTANCES_FILE, csv_text([("channel_a", "channel_b", "lpips"), *pairs]))

    label = "LPIPS" if trunk != RANDOM_TRUNK else "LPIPS with a RANDOM trunk"
    figure, axes = panels(2, panel_size=3.6)
    image = axes[0, 0].imshow(distances, cmap="viridis", interpolation="nearest")
    axes[0, 0].set_xlabel("stimulus (channel order)")
    axes[0, 0].set_ylabel("stimulus (channel order)")
    figure.colorbar(image, ax=axes[0, 0], fraction=0.046, pad=0.04)
    axes[0, 1].hist(values, bins=40, color="tab:blue")
    axes[0, 1].axvline(values.mean(), color="black", linestyle="--", label=f"mean {values.mean():.3f}")
    axes[0, 1].set_xlabel(f"pairwise {label}")
    axes[0, 1].set_ylabel("pairs")
    axes[0, 1].legend(fontsize=8)
    plot = save_panels(figure, out_dir / "lpips_diversity.png", f"Diversity of {len(channels)} stimuli: {label}")
    return {
        "trunk": trunk,
        "mean": float(values.mean()),
        "pairs": summary_statistics(values),
        "files": [csv_path.name, plot.name],
    }


def read_run(run: str | Path) -> dict[str, Any]:
    """The per-pair distances, model label and trunk of one ``neurov1.analyze`` run directory."""
    run = Path(run)
    path = run / DISTANCES_FILE
    summary_path = run / SUMMARY_FILE
    if not path.is_file() or not summary_path.is_file():
        raise ConfigError(
            f"compare: {run} holds no {DISTANCES_FILE} and {SUMMARY_FILE}. List run directories of "
            "'python -m neurov1.analyze ckpt_path=... analysis=[max_activation,lpips_diversity]'."
        )
    summary = json.loads(summary_path.read_text())
    values = np.loadtxt(path, delimiter=",", skiprows=1, usecols=2, ndmin=1)
    return {"run": str(run), "model": summary["model"], "trunk": summary["lpips_diversity"]["trunk"], "lpips": values}


def compare_runs(runs: list[str], out_dir: Path) -> dict[str, Any]:
    """One-way ANOVA (scipy.stats.f_oneway) between models over their per-pair LPIPS distances; markdown + JSON.

    As in the paper, every pair of stimuli of a model is one observation of that model's group (the pairs share
    stimuli, so they are not independent samples: read p as the paper's statistic, not an exact error rate).
    """
    if not runs or len(runs) < 2:
        raise ConfigError(f"compare={runs!r}: list at least two analyze run directories, compare=[<run A>,<run B>].")
    groups = [read_run(run) for run in runs]
    trunks = sorted({group["trunk"] for group in groups})
    if len(trunks) > 1:
        raise ConfigError(
            f"compare: the runs used different LPIPS trunks {trunks}, so their distances are not comparable. "
            "Rerun the analyses with the same lpips_diversity.trunk_weights."
        )
    statistic, p_value = f_oneway(*(group["lpips"] for group in groups))
    pairs = sum(len(group["lpips"]) for group in groups)
    result = {
        "test": "one-way ANOVA (scipy.stats.f_oneway) between models over their per-pair LPIPS distances",
        "F": float(statistic),
        "p": float(p_value),
        "df_between": len(groups) - 1,
        "df_within": pairs - len(groups),
        "trunk": trunks[0],
        "groups": [
            {
                "model": group["model"],
                "run": group["run"],
                "pairs": len(group["lpips"]),
                "mean": float(group["lpips"].mean()),
                "std": float(group["lpips"].std()),
            }
            for group in groups
        ],
    }
    table = Table(
        "# Diversity of maximally activating stimuli: one-way ANOVA of pairwise LPIPS",
        ["model", "pairs", "mean LPIPS", "std", "run"],
        [[g["model"], str(g["pairs"]), f"{g['mean']:.4f}", f"{g['std']:.4f}", g["run"]] for g in result["groups"]],
        [
            f"F({result['df_between']}, {result['df_within']}) = {result['F']:.3f}, p = {result['p']:.3g}",
            f"LPIPS trunk: {result['trunk']}",
        ],
    )
    write_text_atomic(out_dir / "lpips_anova.md", table.markdown())
    write_json_atomic(out_dir / "lpips_anova.json", result)
    return result
