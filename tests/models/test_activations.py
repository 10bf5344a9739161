"""Layers read from the whole network (a hook on the layer, the forward stopped there), in every path that reads one.

The backbone of tests/plugins/skip_backbone.py runs a skip connection around its V1 stage and registers its
children out of order: a prefix of its children is not its computation, its own forward is.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from neurov1.errors import ConfigError
from neurov1.evaluation import v1_probe
from neurov1.evaluation.base import EvaluatedModel
from neurov1.evaluation.brainscore.evaluation import layers_to_score
from neurov1.evaluation.brainscore.model import brain_model
from neurov1.evaluation.brainscore.scoring import V1Settings
from neurov1.evaluation.regions import candidate_layers
from neurov1.inspection import tuning_curves
from neurov1.inspection.max_activation import StimulusSettings, maximize_channels
from neurov1.models import build_network
from neurov1.models.activations import LayerOutput, layer_input, layer_outputs
from neurov1.models.contract import ScoringContract

SKIP = "skip_backbone.SkipBackbone"
V1 = ScoringContract(v1_layer="layer1", image_size=64)


def hooked_outputs(net: nn.Module, images: torch.Tensor, layers: list[str]) -> dict[str, torch.Tensor]:
    """The layers' outputs during a complete forward of ``net`` (the reference)."""
    captured = {}
    handles = [
        net.get_submodule(layer).register_forward_hook(
            lambda _m, _i, output, layer=layer: captured.update({layer: output})
        )
        for layer in layers
    ]
    with torch.no_grad():
        net(images)
    for handle in handles:
        handle.remove()
    return captured


def modules_run(net: nn.Module, run) -> set[str]:
    names = set()
    handles = [m.register_forward_pre_hook(lambda *_, n=n: names.add(n)) for n, m in net.named_modules() if n]
    with torch.no_grad():
        run()
    for handle in handles:
        handle.remove()
    return names


def test_a_layer_is_read_from_the_whole_network_and_nothing_after_it_runs():
    net = build_network("resnet18", num_classes=10).eval()
    images = torch.randn(2, 3, 64, 64)
    expected = hooked_outputs(net, images, ["layer1"])["layer1"]
    reader = LayerOutput(net, "layer1")
    with torch.no_grad():
        torch.testing.assert_close(reader(images), expected)
    ran = modules_run(net, lambda: reader(images))
    assert {"conv1", "bn1", "relu", "maxpool", "layer1"} <= ran and not ran & {"layer2", "layer4", "avgpool", "fc"}
    with pytest.raises(ConfigError, match="eval.layers"):
        LayerOutput(net, "layer9")
    with pytest.raises(ConfigError, match="eval.layers: 'layer1.7'"):
        LayerOutput(net, "layer1.7")


@pytest.mark.parametrize(("arch", "layer"), [("resnet18", "layer1.0"), ("vgg11_bn", "features.13")])
def test_a_layer_inside_a_stage_is_read_there(arch, layer):
    """It stops at the layer itself, also inside a stage (a block of layer1, VGG's features)."""
    net = build_network(arch, num_classes=10, components={"tuned_norm": None}).eval()
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(
            layer_outputs(net, images, [layer])[layer], hooked_outputs(net, images, [layer])[layer]
        )


@pytest.fixture
def skip_net(monkeypatch) -> nn.Module:
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "plugins"))
    torch.manual_seed(0)
    net = build_network("skipnet", num_classes=5, components={"tuned_norm": None}, backbone=SKIP).eval()
    return net


def v1_stage(net: nn.Module) -> nn.Module:
    """The V1 computation of the skip backbone written out (the modules its forward runs up to its V1 stage)."""
    return nn.Sequential(net.stem, net.maxpool, net.layer1)


def test_a_prefix_of_the_skip_backbones_children_is_not_its_v1(skip_net):
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad(), pytest.raises(RuntimeError):
        nn.Sequential(*list(skip_net.children())[:4])(images)  # head first: what truncating the children would run


def test_the_layer_scan_and_the_brainscore_wrapper_read_the_skip_backbone_whole(skip_net, tmp_path):
    """eval=v1, eval=regions and the Brain-Score export commit layers through the same wrapper."""
    model = EvaluatedModel.of_network(skip_net, {"arch": "skipnet", "backbone": SKIP, "input_size": 64}, "skip")
    assert layers_to_score("v1", model) == ["layer1"] and layers_to_score("scan", model)[-1] == "layer2"
    assert candidate_layers(model) == ["layer2"]
    images = np.random.default_rng(0).normal(size=(3, 3, 64, 64)).astype(np.float32)
    wrapper = brain_model(skip_net, "layer1", "skip-test", model.scoring).activations_model
    read = wrapper.get_activations(list(images), ["layer1", "layer2"])
    expected = hooked_outputs(skip_net, torch.from_numpy(images), ["layer1", "layer2"])
    for layer in ("layer1", "layer2"):
        np.testing.assert_allclose(read[layer], expected[layer].numpy(), rtol=0, atol=1e-6)
    with torch.no_grad():
        np.testing.assert_allclose(read["layer1"], v1_stage(skip_net)(torch.from_numpy(images)).numpy(), atol=1e-6)


class Recorded(Exception):
    """Stops a path at the recording, with the network it records."""


@pytest.mark.parametrize(
    ("module", "path"),
    [
        (v1_probe, lambda net: v1_probe.probe_v1(net, "layer1", V1Settings(source="offline"), V1, progress=False)),
        (tuning_curves, lambda net: tuning_curves.analyze_tuning_curves(net, "layer1", Path("unused"), V1)),
    ],
    ids=["v1_probe", "tuning_curves"],
)
def test_the_probe_and_the_tuning_curves_record_the_skip_backbones_v1(skip_net, monkeypatch, module, path):
    def record(network, *args, **kwargs):
        raise Recorded(network)

    monkeypatch.setattr(module, "record", record)
    with pytest.raises(Recorded) as recorded:
        path(skip_net)
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(recorded.value.args[0](images), v1_stage(skip_net)(images))


def test_the_analyses_read_the_skip_backbone_whole(skip_net):
    """max_activation ascends on the V1 layer read from the network; polar reads the stem pooling's input."""
    settings = StimulusSettings(steps=3, seed=0)
    ours = maximize_channels(LayerOutput(skip_net, "layer1"), [0, 3], 32, settings, torch.device("cpu"))
    reference = maximize_channels(v1_stage(skip_net), [0, 3], 32, settings, torch.device("cpu"))
    torch.testing.assert_close(ours["images"], reference["images"])
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(layer_input(skip_net, images, "maxpool"), skip_net.stem(images))
