"""Learned parameters of the center-surround and tuned-normalization components (paper Sec. 4.3).

The paper found the optimised DoG kernels to have mostly small centre widths (small sigma_center^2: a preference
for high spatial frequencies), and tuned normalization to learn per-channel pool widths sigma_c (Eq. 2).
"""

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from neurov1.components import DoGConv2d, TunedNormalization
from neurov1.components.center_surround import INITIALISATION
from neurov1.inspection.figures import montage, panels, save_panels, summary_statistics
from neurov1.utils.plots import new_figure, save_figure

DOG_PARAMETERS = {
    "center_sigma": "centre width $\\sigma_c$ (px)",
    "surround_sigma": "surround width $\\sigma_s$ (px)",
    "scale": "scale $\\alpha$ (> 0: excitatory centre)",
}


def modules_of(net: nn.Module, cls: type[nn.Module]) -> dict[str, nn.Module]:
    """The submodules of ``net`` that are ``cls`` instances, by their module names, in module order."""
    return {name: module for name, module in net.named_modules() if isinstance(module, cls)}


@torch.no_grad()
def dog_parameters(net: nn.Module) -> dict[str, np.ndarray]:
    """Centre width, surround width (px) and scale of every DoG kernel of Eq. 1 in ``net``.

    One value per kernel, concatenated over the DoGConv2d modules in module order, each flattened over (out, in).
    """
    modules = modules_of(net, DoGConv2d).values()
    return {
        key: np.concatenate([getattr(module, key).flatten().cpu().numpy() for module in modules])
        for key in DOG_PARAMETERS
    }


def analyze_dog(net: nn.Module, out_dir: Path, bins: int, gallery_kernels: int) -> dict[str, Any]:
    """Histograms of the three DoG parameters, a gallery of kernels, and their summary statistics."""
    modules = modules_of(net, DoGConv2d)
    parameters = dog_parameters(net)
    figure, axes = panels(len(DOG_PARAMETERS))
    for axis, (key, label) in zip(axes[0], DOG_PARAMETERS.items(), strict=True):
        axis.hist(parameters[key], bins=bins, color="tab:blue")
        axis.set_xlabel(label)
        axis.set_ylabel("kernels")
    count = len(parameters["scale"])
    histogram = save_panels(
        figure, out_dir / "dog_parameters.png", f"Learned DoG kernels (Eq. 1): {count} kernels in {len(modules)} layers"
    )

    first = next(iter(modules.values()))
    with torch.no_grad():
        kernels = torch.cat([module.kernels().flatten(0, 1) for module in modules.values()])[:gallery_kernels]
    kernels = kernels / kernels.abs().amax(dim=(-2, -1), keepdim=True).clamp(min=1e-12)
    tiles = montage(kernels.cpu().numpy(), columns=first.channels, gap=1, fill=0.0)
    figure, axis = new_figure(0.45 * first.channels + 1, 0.45 * -(-len(kernels) // first.channels) + 1)
    axis.imshow(tiles, cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    axis.set_axis_off()
    gallery = save_figure(
        figure,
        out_dir / "dog_kernels.png",
        f"First {len(kernels)} DoG kernels of {next(iter(modules))} (row: output channel; red: excitatory)",
    )
    return {
        "layers": {name: module.channels**2 for name, module in modules.items()},
        "kernel_size": first.kernel_size,
        **{key: summary_statistics(values) for key, values in parameters.items()},
        "surround_to_center_ratio": summary_statistics(parameters["surround_sigma"] / parameters["center_sigma"]),
        "center_sigma_below_1px_fraction": float(np.mean(parameters["center_sigma"] < 1.0)),
        "excitatory_center_fraction": float(np.mean(parameters["scale"] > 0)),
        "form": first.form,
        "initialisation": INITIALISATION[first.form],
        "files": [histogram.name, gallery.name],
    }


@torch.no_grad()
def tuned_norm_parameters(net: nn.Module) -> dict[str, dict[str, np.ndarray]]:
    """Per TunedNormalization module: the learned width sigma_c per channel (C,) and the weights p of Eq. 2 (C, C)."""
    return {
        name: {"sigma": module.sigma.cpu().numpy(), "weights": module.weights().cpu().numpy()}
        for name, module in modules_of(net, TunedNormalization).items()
    }


def analyze_tuned_norm(net: nn.Module, out_dir: Path) -> dict[str, Any]:
    """sigma_c per channel of every tuned-normalization layer, its weight matrix as an image, summary statistics.

    sigma is the learned parameter; the forward clamps it at >= 0.5 channel before computing the weights.
    """
    parameters = tuned_norm_parameters(net)
    figure, axis = new_figure(7)
    for name, values in parameters.items():
        axis.plot(values["sigma"], label=name, linewidth=1)
    axis.set_xlabel("channel c")
    axis.set_ylabel("$\\sigma_c$ (channels)")
    sigma_plot = save_figure(figure, out_dir / "tuned_norm_sigma.png", "Tuned normalization: learned pool width")

    figure, axes = panels(len(parameters))
    for axis, (name, values) in zip(axes[0], parameters.items(), strict=True):
        image = axis.imshow(values["weights"], cmap="viridis", interpolation="nearest")
        axis.set_title(name, fontsize=9)
        axis.set_xlabel("normalising channel k")
        axis.set_ylabel("channel c")
        figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04)
    weights_plot = save_panels(
        figure, out_dir / "tuned_norm_weights.png", "Tuned normalization weights $p_{ck}$ (Eq. 2; rows sum to 1)"
    )
    channels = len(next(iter(parameters.values()))["sigma"])
    return {
        "layers": {name: summary_statistics(values["sigma"]) for name, values in parameters.items()},
        "sigma": summary_statistics(np.concatenate([values["sigma"] for values in parameters.values()])),
        "initialisation": f"sigma ~ U(0, 1) + C/8 = U({channels / 8:g}, {channels / 8 + 1:g}) channels",
        "files": [sigma_plot.name, weights_plot.name],
    }
