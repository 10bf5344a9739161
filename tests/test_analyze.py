"""Analyses of learned components: each against a direct computation, and the command on the demo checkpoint."""

import json

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_module
from scipy.stats import f_oneway

from conftest import ALL, run_module
from neurov1.analyze import analyze, select_analyses
from neurov1.components import DoGConv2d, PolarTransform, TunedNormalization
from neurov1.data.demo import demo_images
from neurov1.errors import ConfigError
from neurov1.evaluation.probe import properties
from neurov1.inspection.diversity import compare_runs, lpips_metric, pairwise_lpips
from neurov1.inspection.max_activation import (
    FourierImage,
    StimulusSettings,
    colour_correlation_sqrt,
    maximize_channels,
    random_views,
)
from neurov1.inspection.parameters import analyze_dog, dog_parameters, modules_of, tuned_norm_parameters
from neurov1.inspection.polar import central_magnification, scaled_transform
from neurov1.models import build_network
from neurov1.models.activations import LayerOutput
from neurov1.training.module import NeuroV1Module
from neurov1.utils.config import CONFIG_PACKAGE


def compose_analyze(*overrides: str, out_dir):
    with initialize_config_module(CONFIG_PACKAGE, version_base="1.3"):
        return compose("analyze", overrides=[*overrides, f"paths.output_dir={out_dir}"])


def resnet18(*components: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_network("resnet18", num_classes=2, components={name: {} for name in components}).eval()


def test_dog_widths_read_back_equal_the_module_parameters(tmp_path):
    net = resnet18("center_surround")
    modules = list(modules_of(net, DoGConv2d).values())
    parameters = dog_parameters(net)
    for key in ("center_sigma", "surround_sigma", "scale"):
        expected = torch.cat([getattr(module, key).detach().flatten() for module in modules]).numpy()
        np.testing.assert_array_equal(parameters[key], expected)
    assert len(modules) == 4 and len(parameters["scale"]) == 4 * 16 * 16  # 2 blocks x 2 convs, 16x16 kernels each
    result = analyze_dog(net, tmp_path, bins=10, gallery_kernels=32)
    assert result["center_sigma"]["median"] == pytest.approx(float(np.median(parameters["center_sigma"])))
    assert result["surround_to_center_ratio"]["min"] > 1  # Eq. 1: sigma_surround > sigma_center
    assert result["excitatory_center_fraction"] == pytest.approx(float(np.mean(parameters["scale"] > 0)))
    assert all((tmp_path / name).stat().st_size > 0 for name in result["files"])


def test_tuned_norm_parameters_are_the_modules_sigma_and_eq2_weights():
    net = resnet18("tuned_norm")
    modules = modules_of(net, TunedNormalization)
    parameters = tuned_norm_parameters(net)
    assert list(parameters) == ["layer1.0.tuned_norm", "layer1.1.tuned_norm"]
    for name, module in modules.items():
        np.testing.assert_array_equal(parameters[name]["sigma"], module.sigma.detach().numpy())
        weights = parameters[name]["weights"]
        np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-6)
        assert (weights.argmax(axis=1) == (np.arange(64) + 32) % 64).all()  # peak at the opponent channel c + C/2


def test_central_magnification_of_the_paper_geometry():
    transform = PolarTransform(32, 16)
    numbers = central_magnification(transform)
    rows, cols = np.mgrid[0:32, 0:32]
    inside = np.hypot(cols - 16, 16 - rows) < 8  # the disc of radius 8 px = half the distance to the border
    assert numbers["disc_radius_px"] == 8
    assert numbers["input_area_fraction"] == pytest.approx(inside.mean())
    assert numbers["polar_map_fraction"] == pytest.approx(8 / 18)  # rings [0,1), ..., [7,8) of 18
    scaled = scaled_transform(transform, 64)
    assert scaled.output_size == (32, 32) and scaled.center == (32.0, 32.0)
    assert scaled.radius_edges == tuple(2 * edge for edge in transform.radius_edges)
    assert central_magnification(scaled)["polar_map_fraction"] == pytest.approx(8 / 18)


def test_colour_root_decorrelates_natural_colours():
    root = colour_correlation_sqrt()
    assert np.linalg.norm(root.numpy(), axis=0).max() == pytest.approx(1.0)
    colour = [image for image in demo_images().values() if np.ptp(image.astype(int), axis=-1).any()]
    assert len(colour) >= 5  # the colour photographs among the demo images (the others are grey)
    pixels = np.concatenate([image.reshape(-1, 3) for image in colour]) / 255
    decorrelated = pixels @ np.linalg.inv(root.numpy()).T
    covariance = np.cov(decorrelated, rowvar=False)
    off_diagonal = covariance - np.diag(np.diag(covariance))
    assert np.abs(off_diagonal).max() < 1e-6 * np.abs(covariance).max()


def test_fourier_image_range_grey_start_and_one_over_f_scaling():
    image = FourierImage(2, 32, decay_power=1.0, init_std=0.5, generator=torch.Generator().manual_seed(0))
    pixels = image()
    assert pixels.shape == (2, 3, 32, 32) and pixels.min() >= 0 and pixels.max() <= 1
    amplitudes = {}
    with torch.no_grad():
        for cycles in (2, 8):  # one cosine of `cycles` periods across the image in decorrelated channel 0
            image.spectrum.zero_()
            assert torch.equal(image(), torch.full((2, 3, 32, 32), 0.5))
            image.spectrum[0, 0, 0, cycles, 0] = 1.0
            amplitudes[cycles] = torch.logit(image()[0, 0]).abs().max().item()
    assert amplitudes[2] / amplitudes[8] == pytest.approx(4.0, rel=1e-4)  # weight 1 / f


def test_random_views_without_transforms_is_the_identity():
    images = torch.rand(3, 3, 16, 16)
    settings = StimulusSettings(jitter=0.0, scale=(1.0, 1.0), rotate=0.0)
    views = random_views(images, settings, torch.Generator().manual_seed(0))
    torch.testing.assert_close(views, images, atol=1e-5, rtol=0)


def test_gradient_ascent_raises_the_target_channels_and_is_deterministic():
    v1 = LayerOutput(resnet18(), "layer1")
    settings = StimulusSettings(steps=6, lr=0.05, seed=3)
    first = maximize_channels(v1, [0, 5, 9], 32, settings, torch.device("cpu"))
    assert first["images"].shape == (3, 3, 32, 32) and 0 <= first["images"].min() and first["images"].max() <= 1
    assert (first["activation"] > first["initial_activation"]).all()
    again = maximize_channels(v1, [0, 5, 9], 32, settings, torch.device("cpu"))
    assert torch.equal(first["images"], again["images"])
    other_seed = maximize_channels(v1, [0, 5, 9], 32, StimulusSettings(steps=6, seed=4), torch.device("cpu"))
    assert not torch.equal(first["images"], other_seed["images"])


def test_channel_selection():
    assert StimulusSettings().resolve_channels(4) == [0, 1, 2, 3]
    assert StimulusSettings(channels=2).resolve_channels(4) == [0, 1]
    assert StimulusSettings(channels=[3, 1]).resolve_channels(4) == [3, 1]
    for channels in (5, 0, [4], [1, 1]):
        with pytest.raises(ConfigError, match="max_activation.channels"):
            StimulusSettings(channels=channels).resolve_channels(4)
    with pytest.raises(ConfigError, match="max_activation.steps"):
        StimulusSettings(steps=0)


def test_pairwise_lpips_is_the_package_metric_and_a_distance():
    metric, trunk = lpips_metric(None, seed=0)
    assert trunk == "random (not comparable with LPIPS)"
    images = torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    images[3] = images[0]
    distances = pairwise_lpips(metric, images)
    with torch.no_grad():
        for i, j in ((0, 1), (1, 0), (2, 1)):
            direct = metric(images[i : i + 1], images[j : j + 1], normalize=True).item()
            assert distances[i, j] == pytest.approx(direct, rel=1e-4)
    np.testing.assert_allclose(distances, distances.T, atol=1e-12)
    assert distances[0, 3] == pytest.approx(0, abs=1e-9) and np.diag(distances) == pytest.approx(0, abs=1e-9)
    assert distances[0, 1] > 0


def test_lpips_trunk_comes_from_a_local_file(tmp_path):
    other, _ = lpips_metric(None, seed=1)
    state = {f"features.{key.split('.', 1)[1]}": value for key, value in other.net.state_dict().items()}
    path = tmp_path / "alexnet.pth"
    torch.save(state, path)
    metric, trunk = lpips_metric(str(path), seed=0)
    assert trunk == str(path)
    assert torch.equal(metric.net.slice1.get_submodule("0").weight, state["features.0.weight"])
    assert torch.equal(metric.net.slice5.get_submodule("10").weight, state["features.10.weight"])
    with pytest.raises(ConfigError, match="lpips_diversity.trunk_weights=.*no such file"):
        lpips_metric(str(tmp_path / "missing.pth"), seed=0)
    torch.save({"classifier.1.weight": torch.zeros(1)}, tmp_path / "wrong.pth")
    with pytest.raises(ConfigError, match="not a torchvision AlexNet state dict"):
        lpips_metric(str(tmp_path / "wrong.pth"), seed=0)


def test_analysis_selection():
    every = ["dog", "tuned_norm", "polar", "fixation", "max_activation", "lpips_diversity", "tuning_curves"]
    assert select_analyses(None, ALL)[0] == every
    selected, skipped = select_analyses(None, [])
    assert selected == ["max_activation", "lpips_diversity", "tuning_curves"]
    assert set(skipped) == {"dog", "tuned_norm", "polar", "fixation"}
    assert select_analyses(["lpips_diversity", "dog"], ALL)[0] == ["dog", "max_activation", "lpips_diversity"]
    with pytest.raises(ConfigError, match="unknown analysis 'dogg'. Did you mean 'dog'"):
        select_analyses(["dogg"], ALL)
    with pytest.raises(ConfigError, match="analysis: dog analyses the center_surround component.*analysis=null"):
        select_analyses(["dog"], ["tuned_norm"])


def test_bad_input_stops_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match="ckpt_path=.*no such checkpoint file"):
        analyze(compose_analyze(f"ckpt_path={tmp_path}/missing.ckpt", out_dir=tmp_path))
    baseline = tmp_path / "baseline.ckpt"
    torch.save({"hyper_parameters": {"net": {"arch": "resnet18", "components": {}}}}, baseline)
    with pytest.raises(ConfigError, match="analysis: polar analyses the cortical_mag component"):
        analyze(compose_analyze(f"ckpt_path={baseline}", "analysis=[polar]", out_dir=tmp_path))
    with pytest.raises(ConfigError, match="ckpt_path: required"):
        analyze(compose_analyze(out_dir=tmp_path))
    with pytest.raises(ConfigError, match="compare: .* holds no lpips_distances.csv"):
        analyze(compose_analyze(f"compare=[{tmp_path},{tmp_path}]", out_dir=tmp_path))
    assert not list(tmp_path.glob("*.png"))


def fake_run(path, model, values, trunk="random (not comparable with LPIPS)"):
    path.mkdir()
    lines = ["channel_a,channel_b,lpips", *(f"0,{i + 1},{value}" for i, value in enumerate(values))]
    (path / "lpips_distances.csv").write_text("\n".join(lines) + "\n")
    (path / "analysis.json").write_text(json.dumps({"model": model, "lpips_diversity": {"trunk": trunk}}))
    return str(path)


def test_compare_is_the_one_way_anova_of_pairwise_lpips(tmp_path):
    groups = [np.array([0.30, 0.32, 0.35, 0.31]), np.array([0.25, 0.27, 0.22])]
    runs = [fake_run(tmp_path / f"run{i}", f"model{i}", values) for i, values in enumerate(groups)]
    result = compare_runs(runs, tmp_path)
    grand = np.concatenate(groups).mean()
    between = sum(len(g) * (g.mean() - grand) ** 2 for g in groups) / (len(groups) - 1)
    within = sum(((g - g.mean()) ** 2).sum() for g in groups) / (7 - len(groups))
    assert result["F"] == pytest.approx(between / within)
    assert result["p"] == pytest.approx(f_oneway(*groups).pvalue)
    assert (result["df_between"], result["df_within"]) == (1, 5)
    assert "F(1, 5) = " in (tmp_path / "lpips_anova.md").read_text()
    assert json.loads((tmp_path / "lpips_anova.json").read_text())["groups"][1]["model"] == "model1"
    other = fake_run(tmp_path / "real", "model2", [0.3, 0.2], trunk="/weights/alexnet.pth")
    with pytest.raises(ConfigError, match="different LPIPS trunks"):
        compare_runs([runs[0], other], tmp_path)


@pytest.mark.e2e
def test_analyze_command_writes_every_analysis_on_the_demo_checkpoint(demo_run, tmp_path):
    checkpoint = demo_run / "checkpoints" / "best.ckpt"
    run_module(
        "neurov1.analyze",
        f"ckpt_path={checkpoint}",
        "max_activation.channels=4",
        "max_activation.steps=3",
        "dog.gallery_kernels=16",
        log_dir=tmp_path,
    )
    (summary_path,) = tmp_path.rglob("analysis.json")
    run_dir = summary_path.parent
    summary = json.loads(summary_path.read_text())
    analyses = ["dog", "tuned_norm", "polar", "fixation", "max_activation", "lpips_diversity", "tuning_curves"]
    assert summary["analyses"] == analyses
    assert summary["fixation"]["policy"] == "center" and len(summary["fixation"]["fixations"]) == 16
    for name in summary["analyses"]:
        assert all((run_dir / file).stat().st_size > 0 for file in summary[name]["files"]), name
    net = NeuroV1Module.load_from_checkpoint(checkpoint, map_location="cpu").net
    assert summary["dog"]["center_sigma"]["mean"] == pytest.approx(float(dog_parameters(net)["center_sigma"].mean()))
    assert summary["max_activation"]["channels"] == [0, 1, 2, 3]
    assert summary["lpips_diversity"]["trunk"] == "random (not comparable with LPIPS)"
    assert summary["lpips_diversity"]["pairs"]["count"] == 6
    assert summary["polar"]["stem"]["input_size"] == [32, 32]
    tuning = summary["tuning_curves"]
    assert 0 < len(tuning["units"]) <= 8 and tuning["units_responsive"] <= tuning["units_recorded"]
    orientation_curves = np.array(tuning["curves"]["orientation"])
    assert (
        orientation_curves.shape == (len(tuning["units"]), 12) and len(tuning["curves"]["spatial_frequency"][0]) == 22
    )
    # the titles' values are the probe's, computed from the drawn curves
    variance = properties.circular_variance(orientation_curves, np.linspace(0, 165, 12))
    np.testing.assert_allclose(tuning["values"]["Ringach2002"]["circular_variance"], variance, rtol=1e-5)

    result = analyze(compose_analyze(f"compare=[{run_dir},{run_dir}]", out_dir=tmp_path / "compare"))
    assert result["F"] == pytest.approx(0.0) and result["groups"][0]["pairs"] == 6
