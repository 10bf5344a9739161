"""Where the cortical magnification looks: fixation policies of the polar transform (paper Sec. 5, future work).

The paper's polar map is fixed at the image centre, so objects away from the centre are under-sampled. A fixation
policy (``fixation=<policy>``, the node ``model.net.components.cortical_mag.fixation``) chooses a fixation per image
from the features at the component's site; the site's input is then translated (``F.grid_sample``, bilinear, zeros
outside the image) so that the fixation lands on the polar centre, and the unchanged polar pooling follows.

Coordinates are those of ``F.grid_sample``: ``(x, y)`` in [-1, 1], x to the right (columns), y downwards (rows),
(0, 0) the image centre, +-1 the outer edges of the border pixels. One image width is 2 units.

Policies (each a ``_partial_`` node; the polar transform gives it ``channels`` and ``input_size``):

- :class:`LearnedFixation`: a small head on the site's features (average pool 2, 3x3 conv, ReLU, 3x3 conv to one
  map, spatial softmax, centroid), trained end to end through the shift, plus ``loss_weight`` x the mean squared
  distance (in these units) to the object's centre where the data knows it. Options: ``layers`` (more hidden
  convolutions, dilated 2, 4, ...), ``pool``, ``loss="heatmap"`` (cross-entropy of the map against a Gaussian at
  the centre), ``detach`` (the head learns from its own loss alone) and ``norm`` (group normalisation after each
  hidden convolution); ``fixation=learned_heatmap`` combines them. Its output convolution is
  zero-initialised and its map is added to the log of the normalised saliency map below (``prior="saliency"``, the
  default), so that it starts at the saliency centroid and learns a correction; ``prior="none"`` (the policy
  ``learned_no_prior``) starts it at the centre.
- :class:`SaliencyFixation`: parameter free: the centroid of the positive part of the local contrast energy
  (squared difference to the 3x3 mean, summed over channels) above its image mean, squared.
- :class:`GivenFixation`: the centre the data supplies for each image (the object's centre, or a recorded human
  fixation); an image without one (NaN) is fixated at the centre.

``center`` is the absence of a policy: the polar transform of the paper, unchanged.
"""

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neurov1.components.parameters import ParameterError

POLICIES = ("center", "learned", "saliency", "given")
# LearnedFixation's starting map: the saliency map (the default: it is what made the head learn in the demo study,
# docs/how-to/where-to-look.md) or none (a uniform map, the centre)
PRIORS = ("saliency", "none")
# LearnedFixation's auxiliary loss where the object's centre is known: the squared distance of its fixation to the
# centre, or the cross-entropy of its spatial softmax against a Gaussian (half a cell wide) at the centre
LOSSES = ("distance", "heatmap")


def learned_policy(prior: str, loss: str = "distance") -> str:
    """The policy name of a learned head started from ``prior`` and taught by ``loss``: ``learned`` (the saliency
    map, the distance: the defaults), with ``_heatmap`` and/or ``_no_prior`` (started at the centre) otherwise;
    runs, records and the report keep them apart."""
    return "learned" + ("_heatmap" if loss == "heatmap" else "") + ("" if prior == "saliency" else "_no_prior")


def pixel_grid(height: int, width: int, device: torch.device | None = None, dtype: torch.dtype | None = None) -> Tensor:
    """(H, W, 2) coordinates (x, y) of the pixel centres (``align_corners=False``)."""
    ys = (torch.arange(height, device=device, dtype=dtype) * 2 + 1) / height - 1
    xs = (torch.arange(width, device=device, dtype=dtype) * 2 + 1) / width - 1
    return torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)


def centroid(weights: Tensor) -> Tensor:
    """(N, H, W) non-negative weights -> (N, 2) their centroid (x, y); the centre where all weights are zero."""
    grid = pixel_grid(*weights.shape[-2:], device=weights.device, dtype=weights.dtype)
    total = weights.sum(dim=(-2, -1))
    moments = torch.einsum("nhw,hwc->nc", weights, grid)
    return torch.where(total[:, None] > 0, moments / total.clamp_min(1e-12)[:, None], torch.zeros_like(moments))


def shift_to(x: Tensor, fixation: Tensor, center: tuple[float, float] = (0.0, 0.0)) -> Tensor:
    """Translate (N, C, H, W) maps so that the point ``fixation`` (N, 2) lands on ``center`` (bilinear, zeros
    outside). Differentiable in both. Where a fixation that needs no gradient (given, pinned, parameter free)
    equals center, the input is returned exactly (a learned one is always sampled, so its gradient flows)."""
    offset = fixation - fixation.new_tensor(center)
    still = (offset == 0).all(dim=-1)[:, None, None, None]
    if not fixation.requires_grad and bool(still.all()):  # (a pinned gaze, a centred batch: no sampling at all)
        return x
    grid = pixel_grid(*x.shape[-2:], device=x.device, dtype=x.dtype)[None] + offset[:, None, None, :]
    shifted = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return shifted if fixation.requires_grad else torch.where(still, x, shifted)


def peaks(weights: Tensor, k: int) -> Tensor:
    """(N, H, W) map -> (N, k, 2) the positions of its k highest local maxima (3x3), highest first."""
    n, height, width = weights.shape
    pooled = F.max_pool2d(weights[:, None], 3, stride=1, padding=1)[:, 0]
    scores = torch.where(weights >= pooled, weights, torch.full_like(weights, -math.inf)).flatten(1)
    top = scores.topk(min(k, height * width), dim=1).indices
    grid = pixel_grid(height, width, device=weights.device, dtype=weights.dtype).flatten(0, 1)
    found = grid[top]
    if found.shape[1] < k:  # fewer pixels than glimpses: repeat the best
        found = torch.cat([found, found[:, :1].expand(n, k - found.shape[1], 2)], dim=1)
    return found


@torch.no_grad()
def saliency_map(x: Tensor) -> Tensor:
    """(N, C, H, W) -> (N, H, W): local contrast energy (squared difference to the 3x3 mean, summed over channels),
    its excess over the image mean, squared (no gradient)."""
    x = x.detach().float()
    energy = (x - F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)).square().sum(1)
    return (energy - energy.mean(dim=(-2, -1), keepdim=True)).clamp_min(0).square()


def grid_glimpses(k: int, spread: float = 0.4) -> Tensor:
    """(k, 2) fixations of a policy without a map: the centre, then the corners and edges of a 3x3 grid at
    ``spread`` (the paper's five crops: the centre and the four corners)."""
    ring = [(-1, -1), (1, -1), (-1, 1), (1, 1), (0, -1), (0, 1), (-1, 0), (1, 0)]
    points = [(0.0, 0.0)] + [(spread * x, spread * y) for x, y in ring]
    return torch.tensor([points[i % len(points)] for i in range(k)], dtype=torch.float32)


class Fixation(nn.Module):
    """A fixation policy: (N, C, H, W) site features -> (N, 2) fixations; ``map`` for glimpses (or None).

    ``loss_weight``: the weight of the auxiliary loss on the distance to the known object centre (0: none).
    """

    policy = ""
    loss_weight = 0.0
    through_shift = True  # False: the shift passes no gradient to the fixation (the policy learns from its own loss)

    def forward(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def map(self, x: Tensor) -> Tensor | None:
        """(N, H', W') where the policy would look (higher: more), for choosing glimpses; None: no map."""
        return None

    def glimpses(self, x: Tensor, k: int) -> Tensor:
        """(N, k, 2) the k best fixations: the policy's own first, then the peaks of its map (or a grid)."""
        first = self(x)[:, None]
        if k == 1:
            return first
        weights = self.map(x)
        rest = peaks(weights, k - 1) if weights is not None else grid_glimpses(k)[1:].to(x)[None].expand(len(x), -1, -1)
        return torch.cat([first, rest], dim=1)


def group_norm(channels: int) -> nn.GroupNorm:
    """The learned head's normalisation after each hidden convolution (``norm=true``): per image, in 4 groups (fewer
    where ``channels`` is not a multiple of 4). It keeps the head's ReLUs alive at a higher rate of learning:
    without it, a detached heatmap head at loss weight 2 or 4 fell silent in some demo seeds (its map stayed
    uniform: the centre), docs/how-to/where-to-look.md."""
    return nn.GroupNorm(math.gcd(4, channels), channels)


class LearnedFixation(Fixation):
    """A head predicting the fixation from the site's features; starts at the saliency centroid (``prior``) or the
    centre (``prior="none"``): its output layer is zero-initialised."""

    def __init__(
        self,
        channels: int,
        hidden: int = 16,
        loss_weight: float = 5.0,
        pool: int = 2,
        prior: str = "saliency",
        layers: int = 1,
        loss: str = "distance",
        detach: bool = False,
        norm: bool = False,
    ) -> None:
        super().__init__()
        if prior not in PRIORS:
            raise ParameterError("LearnedFixation", "prior", f"must be one of {list(PRIORS)}, got {prior!r}")
        if loss not in LOSSES:
            raise ParameterError("LearnedFixation", "loss", f"must be one of {list(LOSSES)}, got {loss!r}")
        self.prior = prior
        self.loss_kind = loss
        self.policy = learned_policy(prior, loss)
        if not isinstance(hidden, int) or hidden < 1:
            raise ParameterError("LearnedFixation", "hidden", f"must be a positive int, got {hidden!r} (default 16)")
        if not isinstance(layers, int) or layers < 1:
            raise ParameterError("LearnedFixation", "layers", f"must be a positive int, got {layers!r} (default 1)")
        if not isinstance(pool, int) or pool < 1:
            raise ParameterError("LearnedFixation", "pool", f"must be a positive int, got {pool!r} (default 2)")
        if isinstance(loss_weight, bool) or not isinstance(loss_weight, int | float) or loss_weight < 0:
            raise ParameterError("LearnedFixation", "loss_weight", f"must be >= 0, got {loss_weight!r} (default 5)")
        if not isinstance(detach, bool) or (detach and loss_weight == 0):
            raise ParameterError(
                "LearnedFixation", "detach", f"must be a bool, and needs loss_weight > 0 to learn, got {detach!r}"
            )
        if not isinstance(norm, bool):
            raise ParameterError("LearnedFixation", "norm", f"must be a bool, got {norm!r} (default false)")
        self.loss_weight = float(loss_weight)
        self.pool = pool
        self.detach = detach
        self.through_shift = not detach
        self.hidden = nn.Conv2d(channels, hidden, 3, padding=1)
        self.hidden_norm = group_norm(hidden) if norm else nn.Identity()
        # further 3x3 convolutions dilated 2, 4, ...: the receptive field doubles with each (layers > 1)
        self.context = nn.Sequential(
            *(
                module
                for layer in range(1, layers)
                for module in (
                    nn.Conv2d(hidden, hidden, 3, padding=2**layer, dilation=2**layer),
                    *([group_norm(hidden)] if norm else []),
                    nn.ReLU(),
                )
            )
        )
        self.out = nn.Conv2d(hidden, 1, 3, padding=1, bias=False)  # (a bias cannot move a spatial softmax)
        nn.init.zeros_(self.out.weight)
        self.last_logits: Tensor | None = None

    def logits(self, x: Tensor) -> Tensor:
        """(N, H / pool, W / pool) the head's map before the spatial softmax (plus the log of the normalised
        saliency map with ``prior="saliency"``: the head then starts at the saliency centroid and learns a
        correction)."""
        if self.detach:
            x = x.detach()
        pooled = F.avg_pool2d(x, self.pool) if self.pool > 1 and min(x.shape[-2:]) >= 2 * self.pool else x
        logits = self.out(self.context(F.relu(self.hidden_norm(self.hidden(pooled)))))[:, 0]
        if self.prior == "saliency":
            saliency = saliency_map(x)
            saliency = F.adaptive_avg_pool2d(saliency[:, None], logits.shape[-2:])[:, 0]
            total = saliency.flatten(1).sum(-1).clamp_min(1e-12)[:, None, None]
            logits = logits + torch.log(saliency / total + 1e-6).to(logits.dtype)
        return logits

    def map(self, x: Tensor) -> Tensor:
        logits = self.logits(x)
        self.last_logits = logits
        return logits.flatten(1).softmax(-1).view_as(logits)

    def forward(self, x: Tensor) -> Tensor:
        return centroid(self.map(x))

    def fixation_loss(self, fixation: Tensor, centers: Tensor, known: Tensor) -> Tensor:
        """``loss_weight`` x the mean over the images with a ``known`` centre of the squared distance of the last
        forward's ``fixation`` (N, 2) to ``centers`` (N, 2) (``loss="distance"``), or of the cross-entropy of its
        spatial softmax against a Gaussian at the centre, half a map cell wide (``loss="heatmap"``: its gradient
        does not vanish while the softmax is flat, so the head learns faster)."""
        if self.loss_kind == "distance":
            return self.loss_weight * (fixation[known] - centers[known]).square().sum(-1).mean()
        logits = self.last_logits[known]
        height, width = logits.shape[-2:]
        grid = pixel_grid(height, width, device=logits.device, dtype=logits.dtype).flatten(0, 1)
        cells = (grid[None] - centers[known][:, None].to(logits)).square().sum(-1) / (2.0 / width) ** 2
        target = torch.softmax(-cells / (2 * 0.5**2), dim=1)
        return self.loss_weight * -(target * logits.flatten(1).log_softmax(1)).sum(1).mean()


class SaliencyFixation(Fixation):
    """Parameter free: the centroid of local contrast energy above its image mean, squared (no gradient)."""

    policy = "saliency"

    def map(self, x: Tensor) -> Tensor:
        return saliency_map(x)

    def forward(self, x: Tensor) -> Tensor:
        return centroid(self.map(x)).to(x.dtype)


class GivenFixation(Fixation):
    """The fixation the data supplies per image (:attr:`given`, set by the training module from the batch)."""

    policy = "given"

    def __init__(self) -> None:
        super().__init__()
        self.given: Tensor | None = None

    def forward(self, x: Tensor) -> Tensor:
        if self.given is None or len(self.given) != len(x):
            return x.new_zeros(len(x), 2)
        given = self.given.to(device=x.device, dtype=x.dtype)
        return torch.nan_to_num(given, nan=0.0).clamp(-1, 1)


__all__ = [
    "POLICIES",
    "learned_policy",
    "Fixation",
    "GivenFixation",
    "LearnedFixation",
    "SaliencyFixation",
    "centroid",
    "grid_glimpses",
    "peaks",
    "pixel_grid",
    "saliency_map",
    "shift_to",
]
