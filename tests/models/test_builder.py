"""The model builder: components at their sites in ResNets and VGGs, torchvision compatibility, config checks."""

import copy
import io
from pathlib import Path

import pytest
import torch
import torchvision
from torch import _dynamo, nn

from conftest import ALL, COMPONENTS, FAMILIES
from neurov1.components import (
    CenterSurround,
    DivisiveNormalization,
    LocallyConnected2d,
    PolarTransform,
    TunedNormalization,
)
from neurov1.errors import ConfigError
from neurov1.evaluation.base import EvaluatedModel
from neurov1.evaluation.brainscore.evaluation import layers_to_score
from neurov1.models import SITES, backbone_for, build_network, count_parameters, rename_legacy_keys, resolve_components
from neurov1.training.module import NeuroV1Module

COMPOSITE = dict.fromkeys(ALL)  # the composite model A as a components mapping


def v1_output(model: nn.Module, arch: str, images: torch.Tensor) -> torch.Tensor:
    features = []
    layer = model.get_submodule(backbone_for(arch).v1_layer(model))
    handle = layer.register_forward_hook(lambda _m, _i, output: features.append(output))
    with torch.no_grad():
        model.eval()(images)
    handle.remove()
    return features[0]


def test_baseline_is_torchvision_resnet50():
    model = build_network("resnet50", num_classes=1000)
    reference = torchvision.models.resnet50()
    assert count_parameters(model) == 25_557_032
    assert list(model.state_dict()) == list(reference.state_dict())
    assert type(model) is torchvision.models.ResNet


@pytest.mark.parametrize("arch", [*FAMILIES, "resnet50"])
def test_baseline_forward_equals_torchvision(arch):
    torch.manual_seed(0)
    model = build_network(arch, num_classes=10)
    reference = getattr(torchvision.models, arch)(num_classes=10)
    reference.load_state_dict(model.state_dict())
    images = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(model.eval()(images), reference.eval()(images))


@pytest.mark.parametrize(
    "components", [{}, *[{name: None} for name in COMPONENTS], COMPOSITE], ids=lambda c: "+".join(c) or "-"
)
def test_v1_layer_shape_and_torchvision_names(components):
    model = build_network("resnet50", num_classes=10, components=components)
    names = dict(model.named_modules())
    for name in ("conv1", "bn1", "maxpool", "layer1", "layer1.0.conv2", "layer1.2.conv2", "layer4", "fc"):
        assert name in names
    assert v1_output(model, "resnet50", torch.randn(2, 3, 64, 64)).shape == (2, 256, 16, 16)
    assert model(torch.randn(2, 3, 64, 64)).shape == (2, 10)


def test_placement_of_every_component_in_resnet50():
    model = build_network("resnet50", num_classes=10, components={**COMPOSITE, "local_rf": {"dropout": 0.5}})
    for block in model.layer1:
        assert isinstance(block.conv2.center_surround, CenterSurround)
        assert block.conv2.center_surround.n_dog_channels == 16  # a quarter of the 64 channels of the 3x3 conv
        assert isinstance(block.tuned_norm, TunedNormalization)
    assert isinstance(model.layer1[2].conv2, LocallyConnected2d) and model.layer1[2].conv2.dropout.p == 0.5
    assert isinstance(model.layer1[0].conv2, nn.Conv2d) and isinstance(model.layer1[1].conv2, nn.Conv2d)
    assert isinstance(model.maxpool, PolarTransform)
    later = [module for name, module in model.named_modules() if name.startswith(("layer2", "layer3", "layer4"))]
    assert not any(isinstance(m, CenterSurround | TunedNormalization) for m in later)
    dog_kernels = sum(block.conv2.center_surround.dog.kernels().shape[:2].numel() for block in model.layer1)
    assert dog_kernels == 3 * 256


def test_components_run_where_they_are_attached():
    """A component after a module transforms that module's output (in its forward), also in a deep copy."""
    torch.manual_seed(0)
    model = build_network("resnet18", num_classes=10, components={"tuned_norm": None}).eval()
    block = model.layer1[0]
    x = torch.rand(2, 64, 16, 16)
    with torch.no_grad():
        plain = torchvision.models.resnet.BasicBlock.forward(block, x)
        torch.testing.assert_close(block(x), block.tuned_norm(plain))
        copied = copy.deepcopy(model)
        copied.layer1[0].tuned_norm.sigma.add_(5.0)  # the copy's hook must use the copy's component
        assert not torch.allclose(copied.layer1[0](x), block(x))


def test_placement_in_basic_block_resnet18():
    components = {"center_surround": None, "local_rf": None, "divisive_norm": None, "cortical_mag": None}
    model = build_network("resnet18", num_classes=10, components=components)
    for block in model.layer1:
        assert isinstance(block.conv1.center_surround, CenterSurround)
        assert isinstance(block.conv2.center_surround, CenterSurround)
        assert isinstance(block.divisive_norm, DivisiveNormalization)
    assert isinstance(model.layer1[1].conv2, LocallyConnected2d)
    assert isinstance(model.layer1[1].conv2.center_surround, CenterSurround)  # after the replacing layer too
    assert v1_output(model, "resnet18", torch.randn(2, 3, 64, 64)).shape == (2, 64, 16, 16)


def test_vgg_offers_every_site_at_the_resolution_of_resnets_layer1():
    model = build_network("vgg11_bn", num_classes=10, components=COMPOSITE)
    features = model.features
    assert isinstance(features[7], PolarTransform) and features[7].input_size == (32, 32)  # the second max pool
    assert isinstance(features[11], LocallyConnected2d) and features[11].output_size == (16, 16)
    assert isinstance(features[8].center_surround, CenterSurround)
    assert isinstance(features[10].tuned_norm, TunedNormalization) and isinstance(features[13].tuned_norm, nn.Module)
    assert backbone_for("vgg11_bn").v1_layer(model) == "features.13"
    assert v1_output(model, "vgg11_bn", torch.randn(2, 3, 64, 64)).shape == (2, 256, 16, 16)
    assert model(torch.randn(2, 3, 64, 64)).shape == (2, 10)


@pytest.mark.parametrize("arch", ["resnet34", "resnet101", "vgg16_bn"])
def test_other_depths_build(arch):
    model = build_network(arch, num_classes=5, components={"center_surround": None, "tuned_norm": None})
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 5)


def test_components_reach_gradients():
    model = build_network("resnet18", num_classes=4, components=COMPOSITE)
    model(torch.randn(2, 3, 64, 64)).sum().backward()
    for name, parameter in model.layer1.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name


def test_the_composite_compiles_as_one_graph_in_both_families():
    for arch in FAMILIES:
        net = build_network(arch, 10, 64, {"center_surround": None, "tuned_norm": None, "cortical_mag": None})
        explanation = _dynamo.explain(net.train())(torch.randn(2, 3, 64, 64))
        assert (explanation.graph_count, explanation.graph_break_count) == (1, 0), explanation.break_reasons


def test_resolution_fills_every_parameter_in_canonical_order():
    resolved = resolve_components({"tuned_norm": None, "center_surround": {"fraction": 0.5}, "cortical_mag": None})
    assert list(resolved) == ["center_surround", "tuned_norm", "cortical_mag"]  # by site: v1_conv, ..., stem_pool
    assert resolved["center_surround"] == {
        "_target_": "neurov1.components.CenterSurround",
        "site": "v1_conv",
        "fraction": 0.5,
        "kernel_size": 5,
        "form": "paper",
    }
    assert list(SITES) == ["v1_conv", "v1_last_conv", "v1_block_output", "stem_pool", "stem_conv"]


@pytest.mark.parametrize(
    ("components", "message"),
    [
        ({"tuned_normalization": None}, "unknown component 'tuned_normalization'.*Did you mean 'tuned_norm'"),
        (
            {"divisive_norm": None, "tuned_norm": None},
            "divisive_norm and tuned_norm cannot be combined: the site v1_block_output",
        ),
        ({"center_surround": {"fractoin": 0.5}}, r"center_surround: unknown parameter 'fractoin'. Did you mean"),
        ({"center_surround": {"channels": 8}}, r"center_surround.channels: set by the site v1_conv"),
        ({"center_surround": {"fraction": 1.5}}, r"center_surround.fraction: must be in \(0, 1\], got 1.5"),
        ({"center_surround": {"kernel_size": 4}}, "center_surround.kernel_size: must be an odd integer >= 3"),
        ({"center_surround": {"form": "orig"}}, r"center_surround.form: must be one of \['paper', 'released'\]"),
        ({"cortical_mag": {"fill": "zero"}}, r"cortical_mag.fill: must be one of \['paper', 'released'\]"),
        ({"local_rf": {"dropout": 1.0}}, r"local_rf.dropout: must be in \[0, 1\)"),
        ({"cortical_mag": {"radius_bins": [0, 2, 3]}}, "cortical_mag.radius_bins: must be .* non-decreasing"),
        ({"cortical_mag": {"center": [1.0]}}, r"cortical_mag.center: must be null or \(row, col\)"),
        ({"tuned_norm": {"_target_": "nowhere.Module", "site": "v1_conv"}}, r"tuned_norm._target_: cannot import"),
        ({"tuned_norm": {"site": "v2"}}, r"tuned_norm.site: 'v2' is not a site"),
    ],
)
def test_a_bad_selection_is_one_config_error_naming_the_key(components, message):
    with pytest.raises(ConfigError, match=r"model\.net\.components.*" + message):
        build_network("resnet50", components=components)


def test_unknown_architecture():
    with pytest.raises(ConfigError, match="model.net.arch: unknown architecture 'resnet51'"):
        build_network("resnet51")


def test_checkpoints_from_before_plug_ins_keep_their_weights():
    model = build_network("resnet18", 10, 64, {"center_surround": None, "tuned_norm": None})
    state = model.state_dict()
    legacy = {
        key.replace("conv2.center_surround.", "center_surround2.")
        .replace("conv1.center_surround.", "center_surround1.")
        .replace("tuned_norm.", "normalization."): value
        for key, value in state.items()
    }
    assert rename_legacy_keys(legacy, {"tuned_norm": {}}) == state


def test_a_backbone_of_your_own_offers_every_site(monkeypatch):
    """tests/plugins/wide_resnet_backbone.py, selected by model.net.backbone, with all five components."""
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "plugins"))
    backbone = "wide_resnet_backbone.WideResNetBackbone"
    module = NeuroV1Module(
        net={"arch": "resnext50_32x4d", "num_classes": 7, "components": COMPOSITE, "backbone": backbone},
        optimizer={"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.1},
        scheduler={"_target_": "torch.optim.lr_scheduler.MultiStepLR", "_partial_": True, "milestones": [1]},
    )
    net = module.net
    assert isinstance(net.layer1[2].conv2, LocallyConnected2d) and isinstance(net.maxpool, PolarTransform)
    assert net.layer1[0].conv2.groups == 32  # ResNeXt's grouped convolution, followed by the DoG
    assert module.v1_layer == "layer1" and len(layers_to_score("scan", EvaluatedModel.of(module, "resnext"))) == 20
    with torch.no_grad():
        assert net.eval()(torch.randn(2, 3, 64, 64)).shape == (2, 7)
    with pytest.raises(ConfigError, match="unknown architecture 'resnet50'; choose one of resnext50_32x4d"):
        build_network("resnet50", backbone=backbone)


def test_a_network_with_components_pickles_whole():
    """torch.save(net) keeps the components in the forward (their modules' classes are rebuilt on loading)."""
    net = build_network("resnet18", 10, 64, {"center_surround": None, "tuned_norm": None}).eval()
    buffer = io.BytesIO()
    torch.save(net, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    images = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(images), net(images))
    assert isinstance(loaded.layer1[0].conv1, nn.Conv2d) and loaded.layer1[0].components_after == ["tuned_norm"]
