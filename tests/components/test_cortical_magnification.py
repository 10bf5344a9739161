"""PolarTransform (cortical magnification) against a slow, pixel-by-pixel evaluation of its definition."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from neurov1.components import PolarTransform

PAPER_RADIUS_EDGES = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 16, 18, 20, 23]


def reference_regions(height, width, radius_edges, angle_bins, center):
    """Region (i, j) of every pixel, or None beyond the last radial edge, found by explicit comparisons."""
    angle_edges = np.linspace(0.0, 2 * math.pi, angle_bins + 1)
    regions = {}
    for row in range(height):
        for col in range(width):
            x, y = col - center[1], center[0] - row
            radius = math.sqrt(x * x + y * y)
            angle = math.atan2(y, x)
            if angle < 0:
                angle += 2 * math.pi
            if angle >= 2 * math.pi:
                angle -= 2 * math.pi
            ring = next(
                (i for i in range(len(radius_edges) - 1) if radius_edges[i] <= radius < radius_edges[i + 1]),
                None,
            )
            sector = next(j for j in range(angle_bins) if angle_edges[j] <= angle < angle_edges[j + 1])
            regions[row, col] = None if ring is None else (ring, sector)
    return regions


def reference_polar_map(image, regions, radius_edges, angle_bins, center):
    """Region means, then periodic linear interpolation of empty regions in rings inside the image."""
    height, width = image.shape
    n_rings = len(radius_edges) - 1
    total = np.zeros((n_rings, angle_bins))
    count = np.zeros((n_rings, angle_bins), dtype=int)
    for (row, col), region in regions.items():
        if region is not None:
            total[region] += image[row, col]
            count[region] += 1
    polar = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
    border_distance = min(center[0], center[1], height - center[0], width - center[1])
    for i in range(n_rings):
        if radius_edges[i + 1] > border_distance:
            continue
        for j in range(angle_bins):
            if count[i, j] > 0:
                continue
            back = next(d for d in range(1, angle_bins + 1) if count[i, (j - d) % angle_bins] > 0)
            ahead = next(d for d in range(1, angle_bins + 1) if count[i, (j + d) % angle_bins] > 0)
            before, after = polar[i, (j - back) % angle_bins], polar[i, (j + ahead) % angle_bins]
            polar[i, j] = (before * ahead + after * back) / (back + ahead)
    return polar


def reference_transform(images, module):
    """(N, C, H, W) -> polar maps (N, C, R, A) and the output after reflect padding and bilinear resizing."""
    height, width = module.input_size
    angle_bins = len(module.angle_edges) - 1
    regions = reference_regions(height, width, module.radius_edges, angle_bins, module.center)
    polar = np.stack(
        [
            np.stack(
                [
                    reference_polar_map(channel, regions, module.radius_edges, angle_bins, module.center)
                    for channel in sample
                ]
            )
            for sample in images
        ]
    )
    padded = F.pad(torch.from_numpy(polar), (1, 1, 0, 0), mode="reflect")
    resized = F.interpolate(padded, size=module.output_size, mode="bilinear", align_corners=False)
    return polar, resized.numpy()


CASES = {
    "paper_default": dict(input_size=32, output_size=16),
    "moved_center": dict(input_size=32, output_size=16, center=(13.3, 18.7)),
    "non_square": dict(input_size=(24, 40), output_size=(12, 20)),
    "custom_bins": dict(input_size=(20, 18), output_size=(8, 10), radius_bins=[0, 1.5, 3, 5, 7.5, 11], angle_bins=12),
    "ring_edge_on_border": dict(input_size=8, output_size=6, radius_bins=[0, 1, 2, 4]),
    # Pixels just below the centre row have angles that round up to 2 pi; they belong to angle bin 0.
    "angle_rounding_to_2pi": dict(input_size=32, output_size=16, center=(math.nextafter(16.0, 0.0), 16.0)),
}


@pytest.mark.parametrize("case", CASES)
def test_matches_pixel_loop_reference(case):
    module = PolarTransform(**CASES[case])
    torch.manual_seed(0)
    x = torch.rand(2, 2, *module.input_size, dtype=torch.float64)
    expected_polar, expected = reference_transform(x.numpy(), module)
    np.testing.assert_allclose(module.double().polar_map(x).numpy(), expected_polar, rtol=1e-6, atol=1e-6)
    out = module(x)
    assert out.shape == (2, 2, *module.output_size)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-6, atol=1e-6)


def test_paper_geometry():
    module = PolarTransform(32, 16)
    assert module.radius_edges == tuple(float(edge) for edge in PAPER_RADIUS_EDGES)
    assert len(module.angle_edges) == 31 and module.angle_edges[-1] == pytest.approx(2 * math.pi)
    assert module.polar_size == (18, 30)
    assert module.center == (16.0, 16.0)
    assert module.pooling_matrix.shape == (256, 1024)
    assert module.region_pixel_count.sum() == sum(
        1 for row in range(32) for col in range(32) if math.hypot(col - 16, 16 - row) < 23
    )
    assert module(torch.rand(3, 5, 32, 32)).shape == (3, 5, 16, 16)
    assert list(module.state_dict()) == []


def test_default_edges_scale_with_input_size():
    module = PolarTransform((48, 64), 24)
    assert module.radius_edges == pytest.approx([edge * 1.5 for edge in PAPER_RADIUS_EDGES])


@pytest.mark.parametrize("case", CASES)
def test_constant_image_is_preserved_inside_the_covered_rings(case):
    module = PolarTransform(**CASES[case])
    height, width = module.input_size
    center_row, center_col = module.center
    border_distance = min(center_row, center_col, height - center_row, width - center_col)
    n_inside = sum(1 for edge in module.radius_edges[1:] if edge <= border_distance)
    polar = module.polar_map(torch.full((1, 1, height, width), 3.0))
    torch.testing.assert_close(polar[..., :n_inside, :], torch.full_like(polar[..., :n_inside, :], 3.0))
    # Output rows whose bilinear source rows (y = (i + 0.5) R / H_out - 0.5) all lie in covered rings.
    n_rings, out_rows = module.polar_size[0], module.output_size[0]
    rows = [i for i in range(out_rows) if (i + 0.5) * n_rings / out_rows - 0.5 <= n_inside - 1]
    out = module(torch.full((2, 3, height, width), 3.0))
    assert len(rows) > 0
    torch.testing.assert_close(out[..., rows, :], torch.full_like(out[..., rows, :], 3.0))


def test_input_gradient_is_the_column_sum_of_the_pooling_matrix():
    module = PolarTransform(32, 16)
    assert list(module.parameters()) == []
    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    module(x).sum().backward()
    torch.testing.assert_close(x.grad, module.pooling_matrix.sum(0).view(1, 1, 32, 32).expand_as(x))


def test_wrong_input_size_raises():
    with pytest.raises(ValueError, match=r"expected input spatial size \(32, 32\), got \(30, 32\)"):
        PolarTransform(32, 16)(torch.rand(1, 1, 30, 32))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"input_size": 0}, "input_size must be a positive int or \\(H, W\\), got 0"),
        ({"output_size": (16,)}, "output_size must be a positive int or \\(H, W\\), got \\(16,\\)"),
        ({"radius_bins": [1, 2, 3]}, "radius_bins must be >= 2 finite edges starting at 0"),
        ({"radius_bins": [0, 2, 3]}, "non-decreasing spacing .*got \\[0.0, 2.0, 3.0\\]"),
        ({"radius_bins": [0, 1, 1, 2]}, "radius_bins must be"),
        ({"radius_bins": [0]}, "radius_bins must be"),
        ({"angle_bins": 1}, "angle_bins must be an int >= 2, got 1"),
        (
            {"center": (40, 16)},
            "center must be null or \\(row, col\\) in \\[0, 32\\] x \\[0, 32\\], got \\(40.0, 16.0\\)",
        ),
        ({"center": (15.5, 15.5), "radius_bins": [0, 0.5, 1, 2, 4]}, "radius_bins ring \\[0, 0.5\\)"),
        ({"input_size": 16, "output_size": 8}, "radius_bins ring \\[0.5, 1\\) lies inside the 16x16 input"),
    ],
)
def test_invalid_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PolarTransform(**({"input_size": 32, "output_size": 16} | kwargs))


PAPER_RADIUS_EDGES = [*range(15), 16, 18, 20, 23]


def released_transform(images, radius_edges=PAPER_RADIUS_EDGES, angle_bins=30, output_size=16):
    """The released code's polar transform, recomputed from its description with float32 pixel masks.

    Masks of (ring, angle bin) from float32 radius and angle; a ring whose lower edge is within the edge radius has
    its non-empty masks resampled to angle_bins masks by torch's 1-D linear interpolation over the mask index;
    region = sum(mask * x) / sum(mask) (1 for an empty mask); reflect pad by 1 on the angle axis; bilinear resize.
    """
    height, width = images.shape[-2:]
    rows, cols = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    x, y = (cols - width // 2).float(), (height // 2 - rows).float()
    radius = torch.sqrt(x**2 + y**2)
    angle = torch.atan2(y, x)
    angle = torch.where(y < 0, angle + 2 * math.pi, angle)
    angle_edges = np.linspace(0, 2 * math.pi, angle_bins + 1)
    edge_radius = min(height // 2, width // 2)
    rings = []
    for low, high in zip(radius_edges, radius_edges[1:], strict=False):
        in_ring = (radius >= low) & (radius < high)
        masks = torch.stack(
            [
                (in_ring & (angle >= a_low) & (angle < a_high)).flatten().float()
                for a_low, a_high in zip(angle_edges, angle_edges[1:], strict=False)
            ]
        )
        if low <= edge_radius:
            nonempty = masks[masks.sum(dim=1) > 0]
            masks = F.interpolate(nonempty.T[None], size=angle_bins, mode="linear")[0].T
        rings.append(masks)
    masks = torch.cat(rings)
    counts = masks.sum(dim=1).clamp(min=1)
    polar = (images.flatten(-2) @ masks.T / counts).unflatten(-1, (len(radius_edges) - 1, angle_bins))
    padded = F.pad(polar, (1, 1, 0, 0), mode="reflect")
    return F.interpolate(padded, size=(output_size, output_size), mode="bilinear", align_corners=False, antialias=False)


def test_released_fill_reproduces_the_released_transform():
    torch.manual_seed(0)
    images = torch.rand(4, 3, 32, 32)
    module = PolarTransform(32, 16, fill="released")
    torch.testing.assert_close(module(images), released_transform(images), atol=1e-4, rtol=0)


def test_released_fill_differs_from_the_paper_fill_in_the_fovea_only():
    torch.manual_seed(1)
    images = torch.rand(8, 1, 32, 32, dtype=torch.float64)
    paper, released = PolarTransform(32, 16), PolarTransform(32, 16, fill="released")
    paper_map, released_map = paper.double().polar_map(images), released.double().polar_map(images)
    difference = (paper_map - released_map).abs().mean(dim=(0, 1, 3))  # per ring
    # Rings 1-4 have empty regions: the paper fills only those, the released code resamples every region.
    assert difference[1:5].mean() > 0.1  # 0.14 on 64 x 3 uniform images
    # Complete rings inside the image are the same means in both; [16, 18) px crosses the border: released only.
    complete_inside = [i for i in range(18) if paper.region_pixel_count[i].all() and PAPER_RADIUS_EDGES[i + 1] <= 16]
    assert complete_inside == list(range(5, 15))
    torch.testing.assert_close(paper_map[..., 5:15, :], released_map[..., 5:15, :])
    assert difference[15] > 0 and torch.equal(paper_map[..., 16:, :], released_map[..., 16:, :])
    output_correlation = torch.corrcoef(torch.stack([paper(images).flatten(), released(images).flatten()]))[0, 1]
    assert 0.9 < output_correlation < 0.99  # 0.95 on 64 x 3 uniform images
