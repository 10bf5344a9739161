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


GLIMPSE_RULES = ("mean", "confident")


def glimpse_probabilities(net: nn.Module, images: Tensor, glimpses: int, centers: Tensor | None = None) -> Tensor:
    """(glimpses, N, classes) the softmax at each of ``glimpses`` fixations: the policy's k best (its own first,
    then its map's peaks; without a policy the centre and a 3x3 grid at 0.4 of the half-width, the paper's five
    crops as polar fixations). ``glimpses + 1`` forward passes (``glimpses`` without a policy). The policy's own
    fixations stay in :func:`last_fixations`."""
    polars = polar_transforms(net)
    if not polars or glimpses == 1:
        return look(net, images, centers).softmax(-1)[None]
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
    own = [polar.last_fixation for polar in polars]
    for i in range(1, glimpses):
        for polar, fixations in zip(polars, chosen, strict=True):
            polar.gaze = fixations[:, i] if fixations.ndim == 3 else fixations[i].expand(len(images), 2)
        try:
            probabilities.append(look(net, images, centers).softmax(-1))
        finally:
            for polar in polars:
                polar.gaze = None
    for polar, fixation in zip(polars, own, strict=True):
        polar.last_fixation = fixation
    return torch.stack(probabilities)


def combine_glimpses(probabilities: Tensor, rule: str = "mean") -> Tensor:
    """(k, N, classes) -> (N, classes): ``mean`` softmax (the paper's five crops), or the ``confident`` glimpse's
    (per image, the one whose top class is most probable: a saccade to the most likely fixation, as Jeremie, Dauce
    and Perrinet 2024)."""
    if rule == "mean":
        return probabilities.mean(0)
    if rule == "confident":
        best = probabilities.amax(-1).argmax(0)
        return probabilities[best, torch.arange(probabilities.shape[1], device=probabilities.device)]
    raise ValueError(f"glimpse rule must be one of {list(GLIMPSE_RULES)}, got {rule!r}")
