"""Cortical magnification: fixed log-polar-like pooling of a feature map (paper Sec. 3.1)."""

import contextlib
import inspect
import math
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neurov1.components.fixation import Fixation, shift_to
from neurov1.components.parameters import ParameterError

OWNER = "PolarTransform"
FILLS = ("paper", "released")
GAZES = ("center", "free")

_PAPER_INPUT_SIZE = 32
# Radial bin edges of the paper's 32x32 -> 16x16 transform, in pixels from the centre (18 bins).
_PAPER_RADIUS_EDGES = (*range(15), 16, 18, 20, 23)


def _size(value: int | Sequence[int], name: str) -> tuple[int, int]:
    size = (value, value) if isinstance(value, int) else tuple(value)
    if len(size) != 2 or any(not isinstance(v, int) or v < 1 for v in size):
        raise ParameterError(OWNER, name, f"must be a positive int or (H, W), got {value}")
    return size


def _validated_radius_edges(edges: Sequence[float]) -> tuple[float, ...]:
    edges = tuple(float(edge) for edge in edges)
    spacing = np.diff(edges)
    tolerance = 1e-9 * max(1.0, max(edges, default=1.0))
    if (
        len(edges) < 2
        or not np.all(np.isfinite(edges))
        or edges[0] != 0.0
        or np.any(spacing <= 0)
        or np.any(np.diff(spacing) < -tolerance)
    ):
        raise ParameterError(
            OWNER,
            "radius_bins",
            f"must be >= 2 finite edges starting at 0, increasing, with non-decreasing spacing (paper Sec. 3.1), "
            f"got {list(edges)}",
        )
    return edges


def _periodic_interpolation(known: np.ndarray, n_angles: int) -> np.ndarray:
    """(n_angles, len(known)) weights of periodic linear interpolation over bins 0..n_angles-1 from bins ``known``."""
    return np.stack(
        [np.interp(np.arange(n_angles), known, unit, period=n_angles) for unit in np.eye(len(known))], axis=1
    )


def _index_resampling(n: int, size: int) -> np.ndarray:
    """(size, n) weights of linear resampling of n samples to size samples, align_corners=False, edges clamped."""
    source = np.maximum((np.arange(size) + 0.5) * n / size - 0.5, 0.0)
    lower = np.floor(source).astype(int)
    upper = np.minimum(lower + 1, n - 1)
    weights = np.zeros((size, n))
    np.add.at(weights, (np.arange(size), lower), 1.0 - (source - lower))
    np.add.at(weights, (np.arange(size), upper), source - lower)
    return weights


class PolarTransform(nn.Module):
    """Pools an (H, W) map into polar regions and resizes the polar map to output_size (fixed, linear).

    Pixel (row, col) has x = col - center_col, y = center_row - row, radius r = sqrt(x^2 + y^2) (px) and
    angle atan2(y, x) in [0, 2 pi). Region (i, j) holds the pixels with r in [r_i, r_{i+1}) and angle in
    [theta_j, theta_{j+1}); theta has angle_bins + 1 edges evenly spaced over [0, 2 pi]; pixels beyond the
    last radial edge belong to no region. Per channel:
      (a) region value = mean of its pixels; an empty region is 0 unless step (b) fills it;
      (b) rings that lie inside the image and have empty regions are filled; ``fill`` selects how:
          - "paper" (default; paper Sec. 3.1 and its released code): a ring lies inside when its upper edge
            r_{i+1} <= the distance d from the centre to the nearest border; its empty regions are filled by
            linear interpolation along the angle, periodic, from its non-empty regions (a ring with one
            non-empty region becomes constant); its non-empty regions keep their means;
          - "released" (the paper's released code): a ring lies inside when its lower edge r_i <= d; its n
            non-empty pixel masks m_0..m_{n-1} (in angle order) are resampled to angle_bins masks by linear
            interpolation along the mask index (align_corners=False, not periodic): mask j = (1 - t) m_k +
            t m_{k+1} with s = (j + 1/2) n / angle_bins - 1/2 clamped at 0, k = floor(s), t = s - k
            (m_n = m_{n-1}); region j = sum(mask_j * x) / sum(mask_j). Every region of such a ring changes,
            and on the paper's geometry the ring [16, 18) px, which crosses the border, is resampled too;
      (c) the (radius_bins, angle_bins) map is reflect-padded by 1 on the angle axis;
      (d) it is resized bilinearly (align_corners=False, no antialiasing) to output_size (rows = radius,
          columns = angle).
    Defaults reproduce the paper: 32x32 -> 16x16, radial edges 0, 1, ..., 14, 16, 18, 20, 23 px, 30 angle
    bins, centre (H / 2, W / 2). Without radius_bins, other input sizes use these edges scaled by
    min(H, W) / 32. center = (row, col) in px is the fixation point. A ring to fill that contains no pixel at
    all (e.g. the scaled default edges for inputs below 32 px) raises ValueError: pass radius_bins.

    For analyses: polar_map(x) returns the (radius_bins, angle_bins) map of steps (a)-(b) and the buffer
    region_pixel_count (radius_bins, angle_bins) tells which regions were empty (0: filled or zero).

    All steps are precomputed as one dense matrix M of shape (H_out * W_out, H * W) (float32, 4 bytes per
    entry), so the forward is out = x.flatten(-2) @ M^T.

    ``fixation`` (``fixation=learned|saliency|given``; :mod:`neurov1.components.fixation`): a policy chosen per
    image; the input is first translated so that its fixation lands on ``center``, then pooled as above. Its
    factory is called with the site's ``channels`` and ``input_size``. Null (``fixation=center``): no policy, the
    paper's transform. :attr:`gaze` overrides the policy: ``"center"`` pins the fixation at ``center`` (neural
    scoring: the monkeys fixated the screen's centre), an (N, 2) tensor gives each image's fixation (glimpses);
    None lets the policy choose. :attr:`last_fixation` holds the last forward's fixations (N, 2).
    """

    # A nested config node (the fixation group's), left out of resolved configs when not given, so that a model
    # without a policy (fixation=center) keeps the settings and checkpoints it had before policies existed.
    NODE_PARAMETERS = ("fixation",)

    def __init__(
        self,
        input_size: int | Sequence[int],
        output_size: int | Sequence[int],
        radius_bins: Sequence[float] | None = None,
        angle_bins: int = 30,
        center: Sequence[float] | None = None,
        fill: str = "paper",
        fixation: Callable[..., Fixation] | None = None,
        channels: int | None = None,
    ) -> None:
        super().__init__()
        height, width = _size(input_size, "input_size")
        out_height, out_width = _size(output_size, "output_size")
        if not isinstance(angle_bins, int) or angle_bins < 2:
            raise ParameterError(OWNER, "angle_bins", f"must be an int >= 2, got {angle_bins!r} (paper: 30)")
        if fill not in FILLS:
            raise ParameterError(OWNER, "fill", f"must be one of {list(FILLS)}, got {fill!r}")
        center = (height / 2, width / 2) if center is None else tuple(float(c) for c in center)
        if (
            len(center) != 2
            or not all(math.isfinite(c) for c in center)
            or not (0.0 <= center[0] <= height and 0.0 <= center[1] <= width)
        ):
            raise ParameterError(
                OWNER, "center", f"must be null or (row, col) in [0, {height}] x [0, {width}], got {center}"
            )
        if radius_bins is None:
            scale = min(height, width) / _PAPER_INPUT_SIZE
            radius_bins = [edge * scale for edge in _PAPER_RADIUS_EDGES]
        self.input_size = (height, width)
        self.output_size = (out_height, out_width)
        self.center = center
        self.fill = fill
        self.radius_edges = _validated_radius_edges(radius_bins)
        self.angle_edges = tuple(np.linspace(0.0, 2 * math.pi, angle_bins + 1).tolist())
        self.polar_size = (len(self.radius_edges) - 1, angle_bins)

        region_pixel_count, polar_matrix = self._polar_pooling_matrix()
        resize_matrix = self._pad_and_resize_matrix()
        self.register_buffer("region_pixel_count", region_pixel_count, persistent=False)
        self.register_buffer("polar_matrix", polar_matrix.float(), persistent=False)
        self.register_buffer("pooling_matrix", (resize_matrix @ polar_matrix).float(), persistent=False)
        self.fixation: Fixation | None = None
        if fixation is not None:
            self.fixation = _build_policy(fixation, channels, (height, width))
        # The fixation point in grid_sample coordinates ((x, y) in [-1, 1], y downwards).
        self.center_xy = (2 * center[1] / width - 1, 2 * center[0] / height - 1)
        self.gaze: Tensor | str | None = None
        self.last_fixation: Tensor | None = None
        self.glimpse_count = 1
        self.last_glimpses: Tensor | None = None

    def _polar_pooling_matrix(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Steps (a) and (b): pixel counts (R, A) and the float64 matrix (R * A, H * W)."""
        height, width = self.input_size
        center_row, center_col = self.center
        n_rings, n_angles = self.polar_size
        rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
        x, y = (cols - center_col).ravel(), (center_row - rows).ravel()
        radius = np.sqrt(x**2 + y**2)
        angle = np.mod(np.arctan2(y, x), 2 * math.pi)
        angle[angle >= 2 * math.pi] = 0.0
        ring = np.searchsorted(self.radius_edges, radius, side="right") - 1
        sector = np.searchsorted(self.angle_edges, angle, side="right") - 1
        pixel = np.flatnonzero(ring < n_rings)
        region = ring[pixel] * n_angles + sector[pixel]
        count = np.bincount(region, minlength=n_rings * n_angles)
        membership = np.zeros((n_rings * n_angles, height * width))
        membership[region, pixel] = 1.0
        polar = membership / np.maximum(count, 1)[:, None]

        border_distance = min(center_row, center_col, height - center_row, width - center_col)
        for i in range(n_rings):
            ring_rows = slice(i * n_angles, (i + 1) * n_angles)
            filled = np.flatnonzero(count[ring_rows])
            inside_edge = self.radius_edges[i + 1] if self.fill == "paper" else self.radius_edges[i]
            if inside_edge > border_distance or (self.fill == "paper" and len(filled) == n_angles):
                continue
            if len(filled) == 0:
                raise ParameterError(
                    OWNER,
                    "radius_bins",
                    f"ring [{self.radius_edges[i]:g}, {self.radius_edges[i + 1]:g}) lies inside the {height}x{width} "
                    "input but contains no pixel: widen it (edges in input pixels, e.g. [0,1,2,3,4,6,8]) or move the "
                    "center",
                )
            if self.fill == "paper":
                polar[ring_rows] = _periodic_interpolation(filled, n_angles) @ polar[i * n_angles + filled]
            else:
                masks = _index_resampling(len(filled), n_angles) @ membership[i * n_angles + filled]
                polar[ring_rows] = masks / masks.sum(axis=1, keepdims=True)
        return torch.from_numpy(count.reshape(self.polar_size)), torch.from_numpy(polar)

    def _pad_and_resize_matrix(self) -> torch.Tensor:
        """Steps (c) and (d) as a float64 matrix (H_out * W_out, R * A), from the identity basis."""
        n_regions = self.polar_size[0] * self.polar_size[1]
        basis = torch.eye(n_regions, dtype=torch.float64).view(n_regions, 1, *self.polar_size)
        padded = F.pad(basis, (1, 1, 0, 0), mode="reflect")
        resized = F.interpolate(padded, size=self.output_size, mode="bilinear", align_corners=False)
        return resized.view(n_regions, -1).T

    def _check_input(self, x: torch.Tensor) -> None:
        # (checked on tensors; torch.fx traces with proxies, whose shapes are not known)
        if not isinstance(x, torch.fx.Proxy) and (x.ndim < 2 or tuple(x.shape[-2:]) != self.input_size):
            raise ValueError(
                f"PolarTransform: expected input spatial size {self.input_size}, got {tuple(x.shape[-2:])}"
            )

    def polar_map(self, x: torch.Tensor) -> torch.Tensor:
        """Steps (a)-(b) only: (..., H, W) -> (..., radius_bins, angle_bins)."""
        self._check_input(x)
        return F.linear(x.flatten(-2), self.polar_matrix.to(x.dtype)).unflatten(-1, self.polar_size)

    def fixate(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> the same translated so that each image's fixation lands on ``center`` (:attr:`gaze`'s
        when it is a tensor, else the policy's); records it in :attr:`last_fixation` (and with
        :attr:`glimpse_count` > 1 the policy's best fixations in :attr:`last_glimpses`). Unchanged without a policy
        or with the gaze pinned at the centre."""
        self.last_glimpses = None
        if isinstance(self.gaze, torch.Tensor):
            fixation = self.gaze.to(x)
        elif self.fixation is None or self.gaze == "center":
            self.last_fixation = None
            return x
        elif self.glimpse_count > 1:
            self.last_glimpses = self.fixation.glimpses(x, self.glimpse_count)
            fixation = self.last_glimpses[:, 0]
        else:
            fixation = self.fixation(x)
        self.last_fixation = fixation
        if self.fixation is not None and not self.fixation.through_shift:  # (learns from its own loss alone)
            fixation = fixation.detach()
        return shift_to(x, fixation, self.center_xy)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., H, W) -> (..., H_out, W_out)."""
        self._check_input(x)
        # (the module's own state decides first: torch.fx traces x.ndim as a proxy, which cannot decide a branch)
        if (self.fixation is not None or isinstance(self.gaze, torch.Tensor)) and x.ndim == 4:
            x = self.fixate(x)
        else:
            self.last_fixation = None  # (not one of an earlier forward)
        return F.linear(x.flatten(-2), self.pooling_matrix.to(x.dtype)).unflatten(-1, self.output_size)

    def extra_repr(self) -> str:
        policy = f", fixation={self.fixation.policy}" if self.fixation is not None else ""
        return (
            f"input_size={self.input_size}, output_size={self.output_size}, "
            f"polar_size={self.polar_size}, center={self.center}, fill={self.fill}{policy}"
        )


def _build_policy(factory: Callable[..., Fixation], channels: int | None, input_size: tuple[int, int]) -> Fixation:
    """The policy for this site: its factory (a partial of the ``fixation`` node) called with the site's geometry
    that it accepts."""
    if not callable(factory):
        raise ParameterError(OWNER, "fixation", f"must be a policy node (fixation=<policy>), got {factory!r}")
    accepted = inspect.signature(factory).parameters
    geometry = {"channels": channels, "input_size": input_size}
    if "channels" in accepted and channels is None:
        raise ParameterError(OWNER, "fixation", "this policy needs the site's channels (site stem_pool gives them)")
    policy = factory(**{key: value for key, value in geometry.items() if key in accepted})
    if not isinstance(policy, Fixation):
        raise ParameterError(OWNER, "fixation", f"must build a neurov1.components.fixation.Fixation, got {policy!r}")
    return policy


@contextlib.contextmanager
def fixed_gaze(net: nn.Module, gaze: str = "center") -> Iterator[None]:
    """Within the block, every cortical magnification of ``net`` fixates its polar centre (``gaze="center"``: as
    the monkeys of the V1 experiments fixated the screen's centre) or its policy's choice (``"free"``)."""
    if gaze not in GAZES:
        raise ValueError(f"gaze must be one of {list(GAZES)}, got {gaze!r}")
    polars = [module for module in net.modules() if isinstance(module, PolarTransform)]
    saved = [polar.gaze for polar in polars]
    for polar in polars:
        polar.gaze = "center" if gaze == "center" else None
    try:
        yield
    finally:
        for polar, before in zip(polars, saved, strict=True):
            polar.gaze = before
