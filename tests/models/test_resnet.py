"""The model builder: placement of every component, torchvision compatibility, and config validation."""

import pytest
import torch
import torchvision
from torch import nn

from neurov1.components import (
    CenterSurround,
    DivisiveNormalization,
    LocallyConnected2d,
    PolarTransform,
    TunedNormalization,
)
from neurov1.errors import ConfigError
from neurov1.models import COMPONENT_ORDER, build_resnet, count_parameters, validate_components

SINGLE = [{name: {}} for name in COMPONENT_ORDER]
ALL = {"center_surround": {}, "local_rf": {}, "tuned_norm": {}, "cortical_mag": {}}


def v1_output(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    features = []
    handle = model.layer1.register_forward_hook(lambda _m, _i, output: features.append(output))
    with torch.no_grad():
        model.eval()(images)
    handle.remove()
    return features[0]


def test_baseline_is_torchvision_resnet50():
    model = build_resnet("resnet50", num_classes=1000)
    reference = torchvision.models.resnet50()
    assert count_parameters(model) == 25_557_032
    assert list(model.state_dict()) == list(reference.state_dict())
    assert isinstance(model, torchvision.models.ResNet)


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_baseline_forward_equals_torchvision(arch):
    torch.manual_seed(0)
    model = build_resnet(arch, num_classes=10)
    reference = getattr(torchvision.models, arch)(num_classes=10)
    reference.load_state_dict(model.state_dict())
    images = torch.randn(2, 3, 64, 64)
    model.eval(), reference.eval()
    torch.testing.assert_close(model(images), reference(images))


@pytest.mark.parametrize("components", [{}, *SINGLE, ALL], ids=lambda c: "+".join(c) or "baseline")
def test_v1_layer_shape_and_names(components):
    model = build_resnet("resnet50", num_classes=10, components=components)
    names = dict(model.named_modules())
    for name in ("conv1", "bn1", "maxpool", "layer1", "layer1.0.conv2", "layer1.2.conv2", "layer4", "fc"):
        assert name in names
    assert v1_output(model, torch.randn(2, 3, 64, 64)).shape == (2, 256, 16, 16)
    assert model(torch.randn(2, 3, 64, 64)).shape == (2, 10)


def test_placement_of_every_component_in_resnet50():
    model = build_resnet("resnet50", num_classes=10, components={**ALL, "local_rf": {"dropout": 0.5}})
    for block in model.layer1:
        assert isinstance(block.center_surround2, CenterSurround)
        assert block.center_surround2.n_dog_channels == 16  # a quarter of the 64 channels of the 3x3 conv
        assert isinstance(block.normalization, TunedNormalization)
    assert isinstance(model.layer1[2].conv2, LocallyConnected2d)
    assert isinstance(model.layer1[2].dropout2, nn.Dropout2d)
    assert isinstance(model.layer1[0].conv2, nn.Conv2d) and isinstance(model.layer1[1].conv2, nn.Conv2d)
    assert isinstance(model.maxpool, PolarTransform)
    for block in [*model.layer2, *model.layer3, *model.layer4]:
        assert block.center_surround2 is None and block.normalization is None
    dog_kernels = sum(block.center_surround2.dog.kernels().shape[:2].numel() for block in model.layer1)
    assert dog_kernels == 3 * 256


def test_placement_in_basic_block_resnet18():
    components = {"center_surround": {}, "local_rf": {}, "divisive_norm": {}, "cortical_mag": {}}
    model = build_resnet("resnet18", num_classes=10, components=components)
    for block in model.layer1:
        assert isinstance(block.center_surround1, CenterSurround)
        assert isinstance(block.center_surround2, CenterSurround)
        assert isinstance(block.normalization, DivisiveNormalization)
    assert isinstance(model.layer1[1].conv2, LocallyConnected2d)
    assert v1_output(model, torch.randn(2, 3, 64, 64)).shape == (2, 64, 16, 16)


@pytest.mark.parametrize("arch", ["resnet34", "resnet101"])
def test_other_depths_build(arch):
    model = build_resnet(arch, num_classes=5, components=ALL)
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 5)


def test_components_reach_gradients():
    model = build_resnet("resnet18", num_classes=4, components=ALL)
    model(torch.randn(2, 3, 64, 64)).sum().backward()
    for name, parameter in model.layer1.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name


def test_validation_fills_defaults_in_canonical_order():
    validated = validate_components({"tuned_norm": None, "center_surround": {"fraction": 0.5}})
    assert list(validated) == ["center_surround", "tuned_norm"]
    assert validated["center_surround"] == {"fraction": 0.5, "kernel_size": 5}


@pytest.mark.parametrize(
    ("components", "message"),
    [
        ({"tuned_normalization": {}}, "unknown component 'tuned_normalization'.*Did you mean 'tuned_norm'"),
        ({"divisive_norm": {}, "tuned_norm": {}}, "divisive_norm and tuned_norm cannot be combined"),
        ({"center_surround": {"fractoin": 0.5}}, r"center_surround: unknown parameter 'fractoin'"),
        ({"center_surround": {"fraction": 1.5}}, r"center_surround.fraction must be in \(0, 1\]"),
        ({"center_surround": {"kernel_size": 4}}, "kernel_size must be an odd integer"),
        ({"local_rf": {"dropout": 1.0}}, r"local_rf.dropout must be in \[0, 1\)"),
        ({"cortical_mag": {"radius_bins": [0, 2, 3]}}, "spacing must be non-decreasing"),
        ({"cortical_mag": {"center": [1.0]}}, r"cortical_mag.center must be null or \[row, col\]"),
    ],
)
def test_invalid_selection_is_refused_before_building(components, message):
    with pytest.raises(ConfigError, match=message):
        build_resnet("resnet50", components=components)


def test_unknown_architecture():
    with pytest.raises(ValueError, match="model.net.arch"):
        build_resnet("resnet51")
