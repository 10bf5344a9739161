"""Fixation policies of the cortical magnification against direct, slow evaluations of their equations."""

import math
from functools import partial

import numpy as np
import pytest
import torch
from PIL import Image

from neurov1.components import GivenFixation, LearnedFixation, PolarTransform, SaliencyFixation
from neurov1.components.cortical_magnification import fixed_gaze
from neurov1.components.fixation import centroid, grid_glimpses, peaks, pixel_grid, shift_to
from neurov1.components.parameters import ParameterError
from neurov1.data.demo import place_at_random
from neurov1.errors import ConfigError
from neurov1.evaluation.accuracy import AccuracyEvaluation
from neurov1.models import resolve_components
from neurov1.models.fixation import combine_glimpses
from neurov1.training.module import NeuroV1Module


def slow_shift(x: np.ndarray, offset: tuple[float, float]) -> np.ndarray:
    """out[i, j] = x bilinearly sampled at pixel (i + dy, j + dx), dx = offset_x * W / 2; zero outside."""
    channels, height, width = x.shape
    dx, dy = offset[0] * width / 2, offset[1] * height / 2
    out = np.zeros_like(x)
    for i in range(height):
        for j in range(width):
            row, col = i + dy, j + dx
            r0, c0 = math.floor(row), math.floor(col)
            for r, wr in ((r0, 1 - (row - r0)), (r0 + 1, row - r0)):
                for c, wc in ((c0, 1 - (col - c0)), (c0 + 1, col - c0)):
                    if 0 <= r < height and 0 <= c < width:
                        out[:, i, j] += wr * wc * x[:, r, c]
    return out


def polar(fixation=None, size=16, channels=3):
    return PolarTransform(size, size // 2, radius_bins=[0, 1, 2, 3, 4, 6, 8], fixation=fixation, channels=channels)


def test_shift_matches_a_direct_bilinear_translation():
    torch.manual_seed(0)
    x = torch.randn(3, 2, 6, 5, dtype=torch.float64)
    fixation = torch.tensor([[0.3, -0.2], [-0.55, 0.41], [1.2, 0.0]], dtype=torch.float64)
    shifted = shift_to(x, fixation)
    for n in range(3):
        expected = slow_shift(x[n].numpy(), tuple(fixation[n].tolist()))
        np.testing.assert_allclose(shifted[n].numpy(), expected, atol=1e-12)


def test_shift_to_the_polar_centre_is_exactly_the_input():
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(shift_to(x, torch.zeros(2, 2)), x)
    assert torch.equal(shift_to(x, torch.full((2, 2), 0.25), center=(0.25, 0.25)), x)


def test_centroid_and_peaks_match_direct_sums():
    weights = torch.rand(2, 5, 7)
    grid = pixel_grid(5, 7)
    for n in range(2):
        expected = sum(weights[n, i, j] * grid[i, j] for i in range(5) for j in range(7)) / weights[n].sum()
        torch.testing.assert_close(centroid(weights)[n], expected)
    assert torch.equal(centroid(torch.zeros(1, 4, 4)), torch.zeros(1, 2))
    spikes = torch.zeros(1, 9, 9)
    spikes[0, 1, 2], spikes[0, 6, 7], spikes[0, 6, 6] = 3.0, 2.0, 1.0  # (6, 6) is no local maximum
    torch.testing.assert_close(peaks(spikes, 2)[0], torch.stack([pixel_grid(9, 9)[1, 2], pixel_grid(9, 9)[6, 7]]))
    assert grid_glimpses(5).tolist()[0] == [0.0, 0.0] and grid_glimpses(5).shape == (5, 2)


def test_the_shift_gradient_reaches_the_fixation_head():
    torch.manual_seed(0)
    transform = polar(partial(LearnedFixation, prior="none"), channels=3)
    head = transform.fixation
    x = torch.randn(4, 3, 16, 16)
    target = torch.randn(4, 3, 8, 8)
    assert torch.allclose(head(x), torch.zeros(4, 2), atol=1e-6)  # zero-initialised, no prior: starts at the centre
    (transform(x) * target).sum().backward()  # the classification-like loss only
    assert head.out.weight.grad.abs().sum() > 0
    with torch.no_grad():
        head.out.weight.add_(0.1 * torch.randn_like(head.out.weight))
    head.zero_grad()
    (transform(x) * target).sum().backward()
    assert head.hidden.weight.grad.abs().sum() > 0  # through the whole head once its output is not zero


def test_given_with_every_object_at_the_centre_equals_center():
    x = torch.randn(3, 3, 16, 16)
    given, center = polar(GivenFixation), polar()
    given.fixation.given = torch.zeros(3, 2)
    assert torch.equal(given(x), center(x))
    given.fixation.given = torch.tensor([[float("nan"), float("nan")], [0.0, 0.0], [0.0, 0.0]])
    assert torch.equal(given(x), center(x))  # no known centre: the image centre


def test_given_fixation_equals_shifting_the_input_by_hand():
    x = torch.randn(2, 3, 16, 16)
    given, center = polar(GivenFixation), polar()
    where = torch.tensor([[0.25, -0.5], [-0.125, 0.375]])
    given.fixation.given = where
    torch.testing.assert_close(given(x), center(shift_to(x, where)))
    torch.testing.assert_close(given.last_fixation, where)


@pytest.mark.parametrize("policy", [LearnedFixation, SaliencyFixation, GivenFixation])
def test_a_pinned_gaze_is_exactly_the_centre_transform(policy):
    x = torch.randn(2, 3, 16, 16)
    transform, center = polar(policy), polar()
    if policy is GivenFixation:
        transform.fixation.given = torch.full((2, 2), 0.5)
    if policy is LearnedFixation:  # (it starts at the centre)
        torch.nn.init.normal_(transform.fixation.out.weight)
    net = torch.nn.Sequential(transform)
    with fixed_gaze(net, "center"):
        assert torch.equal(net(x), center(x))
    assert transform.gaze is None
    with fixed_gaze(net, "free"):
        assert not torch.equal(net(x), center(x)) or policy is SaliencyFixation


def test_saliency_fixates_the_high_contrast_patch():
    x = torch.zeros(1, 3, 16, 16)
    x[0, :, 2:6, 10:14] = torch.randn(3, 4, 4) * 5  # a textured patch up and to the right
    fixation = SaliencyFixation()(x)[0]
    patch_centre = pixel_grid(16, 16)[2:6, 10:14].mean(dim=(0, 1))
    assert (fixation - patch_centre).norm() < 0.15
    assert list(SaliencyFixation().parameters()) == []


def test_a_policy_without_cortical_magnification_is_one_clear_line():
    node = {"fixation": {"_target_": "neurov1.components.fixation.LearnedFixation", "_partial_": True}}
    with pytest.raises(ConfigError) as error:
        resolve_components({"cortical_mag": node})
    assert "\n" not in str(error.value) and "+model/components=cortical_mag" in str(error.value)


def module(policy: str | None, glimpses: int = 1) -> NeuroV1Module:
    node = {"_target_": "neurov1.components.PolarTransform", "_partial_": True, "site": "stem_pool"}
    if policy:
        node["fixation"] = {"_target_": f"neurov1.components.fixation.{policy}", "_partial_": True}
    net = {"arch": "resnet18", "num_classes": 3, "input_size": 64, "components": {"cortical_mag": node}}
    torch.manual_seed(0)
    return NeuroV1Module(net, {"lr": 0.1}, {"milestones": [1]}, glimpses=glimpses).eval()


def test_module_given_at_the_centre_equals_center_and_its_losses_follow_their_equations():
    images = torch.randn(4, 3, 64, 64)
    center, given, learned = module(None), module("GivenFixation"), module("LearnedFixation")
    given.load_state_dict(center.state_dict())
    assert torch.equal(given.look(images, torch.zeros(4, 2)), center.look(images))
    centers = torch.tensor([[0.5, -0.25], [float("nan"), float("nan")], [-0.5, 0.5], [0.0, 1.0]])
    given.look(images, centers)
    assert given.fixation_error(centers).tolist() == [0.0, 0.0, 0.0]
    # no policy: the polar centre; error = distance x visual_degrees / 2 (one image width = 2 units)
    center.look(images)
    expected = [math.hypot(0.5, 0.25) * 4, math.hypot(0.5, 0.5) * 4, 1.0 * 4]
    torch.testing.assert_close(center.fixation_error(centers), torch.tensor(expected))
    learned.look(images, centers)
    fixations = learned.polar_transforms[0].last_fixation
    known = [0, 2, 3]
    direct = 5.0 * sum(((fixations[i] - centers[i]) ** 2).sum() for i in known) / len(known)
    torch.testing.assert_close(learned.fixation_loss(centers), direct)
    assert learned.fixation_loss(torch.full((4, 2), float("nan"))) is None and center.fixation_loss(centers) is None


@pytest.mark.parametrize("policy", [None, "LearnedFixation", "SaliencyFixation"])
def test_glimpses_average_the_predictions_at_the_policy_fixations(policy):
    images = torch.randn(2, 3, 64, 64)
    model = module(policy, glimpses=3)
    averaged = model.glimpse_predictions(images)
    polar = model.polar_transforms[0]
    if policy is None:
        fixations = grid_glimpses(3)[None].expand(2, 3, 2)
    else:
        polar.glimpse_count = 3
        model(images)
        fixations = polar.last_glimpses
        polar.glimpse_count = 1
    direct = []
    for i in range(3):
        polar.gaze = fixations[:, i]
        direct.append(model(images).softmax(-1))
    polar.gaze = None
    torch.testing.assert_close(averaged, torch.stack(direct).mean(0))


def test_the_confident_rule_keeps_each_images_most_certain_glimpse():
    probabilities = torch.tensor(
        [
            [[0.5, 0.3, 0.2], [0.4, 0.4, 0.2]],  # glimpse 0
            [[0.1, 0.1, 0.8], [0.3, 0.3, 0.4]],  # glimpse 1: image 0 is most certain here
            [[0.2, 0.6, 0.2], [0.1, 0.0, 0.9]],  # glimpse 2: image 1 is most certain here
        ]
    )
    confident = combine_glimpses(probabilities, "confident")
    torch.testing.assert_close(confident, torch.stack([probabilities[1, 0], probabilities[2, 1]]))
    torch.testing.assert_close(combine_glimpses(probabilities, "mean"), probabilities.mean(0))
    with pytest.raises(ValueError, match="confident"):
        combine_glimpses(probabilities, "vote")
    with pytest.raises(ConfigError, match="eval.rule: one of"):
        AccuracyEvaluation(rule="vote")


def test_off_centre_demo_places_each_crop_where_its_centre_says():
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 256, size=(3, 3, 64, 64), dtype=np.uint8) for _ in range(3)]
    placed, centers = place_at_random(crops, np.random.default_rng(1))
    again, same = place_at_random(crops, np.random.default_rng(1))
    assert all(np.array_equal(a, b) for a, b in zip(placed, again, strict=True))
    assert all(np.array_equal(a, b) for a, b in zip(centers, same, strict=True))
    for label, (images, points) in enumerate(zip(placed, centers, strict=True)):
        for index, (image, (x, y)) in enumerate(zip(images, points, strict=True)):
            col, row = (x + 1) * 32 - 14, (y + 1) * 32 - 14  # top-left corner of the 28 px object
            assert col == int(col) and row == int(row) and 0 <= col <= 36 and 0 <= row <= 36
            window = np.s_[:, int(row) : int(row) + 28, int(col) : int(col) + 28]
            small = Image.fromarray(crops[label][index].transpose(1, 2, 0)).resize((28, 28), Image.Resampling.BICUBIC)
            assert np.array_equal(image[window], np.asarray(small).transpose(2, 0, 1))
            outside = image.astype(float)
            outside[window] = np.nan
            assert np.nanstd(outside) < 0.45 * crops[0].std()  # clutter at 35% contrast


def test_the_fixation_figure_draws_every_image_with_its_fixation(tmp_path):
    from neurov1.inspection.fixation import fixation_figure

    model = module("GivenFixation")
    centers = torch.tensor([[0.5, -0.5], [float("nan"), float("nan")], [-0.25, 0.25]])
    drawn = fixation_figure(model, torch.randn(3, 3, 64, 64), centers, tmp_path / "fixations.png", "given")
    assert (tmp_path / "fixations.png").stat().st_size > 0 and drawn["policy"] == "given"
    assert drawn["fixations"] == [[0.5, -0.5], [0.0, 0.0], [-0.25, 0.25]]


def test_placement_is_checked_and_run_names_carry_the_policy():
    from neurov1.data.demo import DemoDataModule
    from neurov1.utils.naming import run_name, run_tags

    with pytest.raises(ConfigError, match="data.placement: 'middle' is not a placement"):
        DemoDataModule(placement="middle").validate()
    node = {"_target_": "neurov1.components.PolarTransform", "_partial_": True, "site": "stem_pool"}
    learned = {**node, "fixation": {"_target_": "neurov1.components.fixation.LearnedFixation", "_partial_": True}}
    assert run_name({"cortical_mag": learned}, 1) == "cortical_mag-learned-s1"
    assert run_name({"cortical_mag": node}, 1) == "cortical_mag-s1"  # center: today's names
    assert "fixation=learned" in run_tags({"cortical_mag": learned}, 1)
    cases = (
        ("saliency", "distance", "learned"),
        ("none", "distance", "learned_no_prior"),
        ("none", "heatmap", "learned_heatmap_no_prior"),
    )
    for prior, loss, policy in cases:  # (the report keeps them apart)
        head = {**learned["fixation"], "prior": prior, "loss": loss}
        assert f"fixation={policy}" in run_tags({"cortical_mag": {**learned, "fixation": head}}, 1)
        assert LearnedFixation(3, prior=prior, loss=loss).policy == policy


def test_heatmap_loss_is_the_cross_entropy_against_a_gaussian_at_the_centre():
    torch.manual_seed(0)
    head = LearnedFixation(3, pool=1, prior="none", loss="heatmap", loss_weight=2.0)
    torch.nn.init.normal_(head.out.weight)
    x, centers = torch.randn(3, 3, 4, 6), torch.tensor([[0.2, -0.5], [float("nan"), 0.0], [-0.9, 0.7]])
    known = ~centers.isnan().any(-1)
    fixation = head(x)
    loss = head.fixation_loss(fixation, centers, known)
    direct = []  # per image with a centre: - sum over cells of target * log softmax, target ~ exp(-d^2 / (2 * 0.5^2))
    for i in (0, 2):
        logits, weights, values = head.last_logits[i], [], []
        for row in range(4):
            for col in range(6):
                x_cell, y_cell = (2 * col + 1) / 6 - 1, (2 * row + 1) / 4 - 1
                d2 = ((x_cell - centers[i, 0]) ** 2 + (y_cell - centers[i, 1]) ** 2) / (2 / 6) ** 2
                weights.append(math.exp(-d2 / (2 * 0.25)))
                values.append(logits[row, col] - torch.logsumexp(logits.flatten(), 0))
        total = sum(weights)
        direct.append(-sum(w / total * v for w, v in zip(weights, values, strict=True)))
    torch.testing.assert_close(loss, 2.0 * torch.stack(direct).mean())
    loss.backward()
    assert head.out.weight.grad.abs().sum() > 0


def test_a_detached_head_learns_from_its_own_loss_alone():
    torch.manual_seed(0)
    polar = PolarTransform(32, 16, fixation=partial(LearnedFixation, prior="none", detach=True, layers=3), channels=3)
    torch.nn.init.normal_(polar.fixation.out.weight)
    assert [name for name, _ in polar.fixation.named_parameters()] == [
        "hidden.weight", "hidden.bias", "context.0.weight", "context.0.bias", "context.2.weight", "context.2.bias",
        "out.weight",
    ]  # fmt: skip
    x = torch.randn(2, 3, 32, 32, requires_grad=True)
    polar(x).square().sum().backward()  # the classification side: reaches the input, not the head
    assert x.grad.abs().sum() > 0 and all(p.grad is None for p in polar.fixation.parameters())
    x.grad = None
    fixation = polar.last_fixation
    polar.fixation.fixation_loss(fixation, torch.zeros(2, 2), torch.ones(2, dtype=torch.bool)).backward()
    assert polar.fixation.out.weight.grad.abs().sum() > 0 and x.grad is None  # the head learns; the features do not
    with pytest.raises(ParameterError, match="detach"):
        LearnedFixation(3, detach=True, loss_weight=0)


def test_the_normalised_head_follows_its_equations_and_keeps_the_plain_heads_keys():
    torch.manual_seed(0)
    head = LearnedFixation(3, hidden=8, layers=2, pool=2, prior="none", norm=True)
    for parameter in head.parameters():  # (away from the identity affine and the zero output)
        torch.nn.init.normal_(parameter)
    x = torch.randn(2, 3, 16, 16)

    def group_norm(h, norm, groups=4):  # per image, over each group's channels and positions; then the affine
        grouped = h.view(len(h), groups, -1)
        mean = grouped.mean(-1, keepdim=True)
        variance = grouped.var(-1, unbiased=False, keepdim=True)
        normal = ((grouped - mean) / torch.sqrt(variance + norm.eps)).view_as(h)
        return normal * norm.weight[:, None, None] + norm.bias[:, None, None]

    conv, dilated = torch.nn.functional.conv2d, head.context[0]
    pooled = x.view(2, 3, 8, 2, 8, 2).mean((3, 5))
    h = torch.relu(group_norm(conv(pooled, head.hidden.weight, head.hidden.bias, padding=1), head.hidden_norm))
    h = torch.relu(group_norm(conv(h, dilated.weight, dilated.bias, padding=2, dilation=2), head.context[1]))
    direct = conv(h, head.out.weight, padding=1)[:, 0]
    torch.testing.assert_close(head.logits(x), direct, atol=1e-5, rtol=1e-5)
    plain = LearnedFixation(3, hidden=8, layers=2, pool=2, prior="none")  # (norm=false: the keys as before)
    assert list(plain.state_dict()) == [
        "hidden.weight",
        "hidden.bias",
        "context.0.weight",
        "context.0.bias",
        "out.weight",
    ]
    added = {"hidden_norm.weight", "hidden_norm.bias", "context.1.weight", "context.1.bias"}
    assert set(head.state_dict()) == set(plain.state_dict()) | added
    with pytest.raises(ParameterError, match="norm"):
        LearnedFixation(3, norm="yes")


def test_demo_samples_carry_their_centre_mirrored_with_the_flip():
    from neurov1.data.demo import DemoDataModule

    data = DemoDataModule(num_classes=2, train_per_class=4, val_per_class=2, batch_size=2, placement="random")
    data.setup("fit")
    centers = data.train_dataset.centers
    flips = 0
    for index in range(8):
        image, label, center = data.train_dataset[(index, 1000 + index)]
        stored = centers[index]
        assert center[1] == stored[1] and center[0] in (stored[0], -stored[0])
        flips += bool(center[0] == -stored[0] and stored[0] != 0)
    assert 0 < flips < 8
    image, label, center = data.val_dataset[0]
    assert torch.equal(center, data.val_dataset.centers[0])


def test_the_learned_head_with_the_saliency_prior_starts_at_the_saliency_centroid():
    x = torch.zeros(2, 3, 16, 16)
    x[:, :, 2:6, 10:14] = torch.randn(2, 3, 4, 4) * 5
    head = LearnedFixation(3, pool=1)  # (the saliency prior is the default)
    torch.testing.assert_close(head(x), SaliencyFixation()(x), atol=1e-3, rtol=0)
    assert (head.policy, LearnedFixation(3, prior="none").policy) == ("learned", "learned_no_prior")
    with pytest.raises(Exception, match="prior"):
        LearnedFixation(3, prior="other")


def test_after_glimpses_the_recorded_fixation_is_the_last_forward_s():
    model = module(None, glimpses=3)
    images = torch.randn(2, 3, 64, 64)
    model.glimpse_predictions(images)
    model.look(images)
    assert torch.equal(model.fixations(2), torch.zeros(2, 2))  # the centre, not the last glimpse's


def test_a_model_without_a_policy_keeps_its_resolved_config():
    node = resolve_components({"cortical_mag": None})["cortical_mag"]
    assert "fixation" not in node and "channels" not in node  # settings and checkpoints as before policies existed
