"""Running a network whose cortical magnification has a fixation policy: the given centres, the recorded fixations
and the glimpses (used by the training module and ``eval=accuracy``)."""

import torch
from torch import Tensor, nn

from neurov1.components.cortical_magnification import PolarTransform
from neurov1.components.fixation import GivenFixation, grid_glimpses


def polar_transforms(net: nn.Module) -> list[PolarTransform]:
    """The network's cortical magnification modules (where fixation policies live)."""
    return [module for module in net.modules() if isinstance(module, PolarTransform)]


def fixation_policy(net: nn.Module) -> str:
    """``center`` (no policy, or no cortical magnification), or the policy's name."""
    policies = [polar.fixation.policy for polar in polar_transforms(net) if polar.fixation is not None]
    return policies[0] if policies else "center"


def look(net: nn.Module, images: Tensor, centers: Tensor | None = None) -> Tensor:
    """The logits, with ``centers`` (N, 2) given to the ``given`` policy (None: it fixates the centre)."""
    givens = [polar.fixation for polar in polar_transforms(net) if isinstance(polar.fixation, GivenFixation)]
    for given in givens:
        given.given = centers
    try:
        return net(images)
    finally:
        for given in givens:
            given.given = None


def last_fixations(net: nn.Module, count: int) -> Tensor | None:
    """(count, 2) the last forward's fixation of the first cortical magnification (its polar centre without a
    policy); None without cortical magnification (the model looks at the image centre)."""
    for polar in polar_transforms(net):
        if polar.last_fixation is not None and len(polar.last_fixation) == count:
            return polar.last_fixation
        return torch.tensor(polar.center_xy).expand(count, 2)
    return None


def glimpse_predictions(net: nn.Module, images: Tensor, glimpses: int, centers: Tensor | None = None) -> Tensor:
    """(N, classes) the mean softmax over ``glimpses`` fixations: the policy's k best (its own first, then its map's
    peaks; without a policy the centre and a 3x3 grid at 0.4 of the half-width, the paper's five crops as polar
    fixations). ``glimpses + 1`` forward passes (``glimpses`` without a policy)."""
    polars = polar_transforms(net)
    if not polars or glimpses == 1:
        return look(net, images, centers).softmax(-1)
    for polar in polars:
        polar.glimpse_count = glimpses
    try:
        probabilities = [look(net, images, centers).softmax(-1)]
    finally:
        for polar in polars:
            polar.glimpse_count = 1
    chosen = [
        polar.last_glimpses if polar.last_glimpses is not None else grid_glimpses(glimpses).to(images)
        for polar in polars
    ]
    for i in range(1, glimpses):
        for polar, fixations in zip(polars, chosen, strict=True):
            polar.gaze = fixations[:, i] if fixations.ndim == 3 else fixations[i].expand(len(images), 2)
        try:
            probabilities.append(look(net, images, centers).softmax(-1))
        finally:
            for polar in polars:
                polar.gaze = None
    return torch.stack(probabilities).mean(0)
