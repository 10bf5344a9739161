"""Where the model looks: validation images with the fixation its policy chose, the known object centre and the
polar rings of the cortical magnification drawn around the fixation (``fixations.png``)."""

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import Circle  # noqa: E402
from torch import Tensor  # noqa: E402

FIGURE = "fixations.png"


def validation_samples(dataset: Any, count: int) -> tuple[Tensor, Tensor | None]:
    """The first ``count`` images (N, 3, H, W) of a validation set and their centres (N, 2), or None without."""
    samples = [dataset[i] for i in range(min(count, len(dataset)))]
    images = torch.stack([s[0] for s in samples])
    if images.dtype == torch.uint8:  # the fast path's (H, W, 3) uint8: to (3, H, W) in [-1, 1]
        images = images.movedim(-1, -3).float() / 127.5 - 1
    if images.ndim == 5:  # five crops: the centre one
        images = images[:, 4]
    centers = torch.stack([s[2] for s in samples]) if len(samples[0]) > 2 else None
    return images, centers


@torch.no_grad()
def fixation_figure(
    module: Any,
    images: Tensor,
    centers: Tensor | None,
    path: Path,
    title: str = "",
    mean: float = 0.5,
    std: float = 0.5,
    columns: int = 8,
) -> dict[str, Any]:
    """Draw ``images`` with the fixation of ``module``'s policy (red cross), the known centre (green circle) and
    the polar rings around the fixation (every third radial edge and the last); returns the fixations drawn."""
    was_training = module.training
    module.eval()
    try:
        logits = module.look(images, centers)
    finally:
        module.train(was_training)
    count, size = len(images), images.shape[-1]
    fixations = module.fixations(count)
    fixations = torch.zeros(count, 2) if fixations is None else fixations.detach().float().cpu()
    polars = module.polar_transforms
    rings: list[float] = []
    if polars:
        polar = polars[0]
        scale = size / polar.input_size[1]  # site pixels -> image pixels
        edges = polar.radius_edges
        rings = [edges[i] * scale for i in range(3, len(edges), 3)] + [edges[-1] * scale]
    rows = math.ceil(count / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(1.6 * columns, 1.7 * rows + 0.4), squeeze=False)
    predicted = logits.argmax(-1).tolist()
    for index, axis in enumerate(axes.flat):
        axis.axis("off")
        if index >= count:
            continue
        picture = (images[index].float().cpu() * std + mean).clamp(0, 1).permute(1, 2, 0)
        axis.imshow(picture.numpy(), extent=(-1, 1, 1, -1))
        x, y = fixations[index].tolist()
        for radius in rings:
            axis.add_patch(Circle((x, y), 2 * radius / size, fill=False, color="yellow", lw=0.6, alpha=0.8))
        axis.plot([x], [y], "r+", markersize=9, markeredgewidth=1.8)
        if centers is not None and not bool(torch.isnan(centers[index]).any()):
            axis.plot(*centers[index].tolist(), "o", markerfacecolor="none", markeredgecolor="lime", markersize=8)
        axis.set_xlim(-1, 1)
        axis.set_ylim(1, -1)
        axis.set_title(f"class {predicted[index]}", fontsize=7)
    policy = getattr(module, "fixation_policy", "center")
    figure.suptitle(f"{title} fixation={policy}: fixation (+), object centre (o), polar rings", fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return {"files": [path.name], "policy": policy, "fixations": fixations.tolist()}
