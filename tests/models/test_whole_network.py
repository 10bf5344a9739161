"""Networks seen whole: every component is part of the forward, where standard tools see it.

For every component config of ``conf/model/components`` (a node with a ``_target_``: a new one is tested here
without editing a list) in both backbone families, torch.fx, torchvision's feature extractor, ``torch.export`` and
``torch.jit.trace`` reproduce the eager outputs, and the components run at their places.
"""

import warnings

import pytest
import torch
import torch.fx
from torch import nn
from torchvision.models.feature_extraction import create_feature_extractor

from conftest import COMPONENTS, FAMILIES
from neurov1.models import SITES, backbone_for, build_network
from neurov1.models.sites import GROUP
from neurov1.utils.config import load_option

TOLERANCE = 1e-5


def component_sites() -> dict[str, str]:
    """Every component config of conf/model/components and its site."""
    return {name: load_option(GROUP, name)["site"] for name in COMPONENTS}


def component_sets() -> list[list[str]]:
    """Every component config, in as few networks as can hold them (a site that takes one gets one per network)."""
    sets: list[list[str]] = []
    for name, site in component_sites().items():
        taken = [{component_sites()[member] for member in chosen} for chosen in sets]
        free = [i for i, sites in enumerate(taken) if not (SITES[site].takes_one and site in sites)]
        if free:
            sets[free[0]].append(name)
        else:
            sets.append([name])
    return sets


def test_the_sets_hold_every_component_config():
    assert sorted(name for chosen in component_sets() for name in chosen) == sorted(component_sites())
    assert {"center_surround", "local_rf", "tuned_norm", "cortical_mag", "divisive_norm"} <= set(component_sites())


def collapsed(names: list[str]) -> list[str]:
    return [name for i, name in enumerate(names) if i == 0 or names[i - 1] != name]


def eager_order(net: nn.Module, images: torch.Tensor) -> list[str]:
    """The names of the modules in the order their forward starts in eager execution."""
    calls = []
    handles = [
        module.register_forward_pre_hook(lambda _m, _a, name=name: calls.append(name))
        for name, module in net.named_modules()
        if name
    ]
    with torch.no_grad():
        net(images)
    for handle in handles:
        handle.remove()
    return calls


def graph_order(graph: torch.fx.Graph) -> list[str]:
    """The modules a traced graph runs, in order: those it calls, and those whose parameters or buffers it reads."""
    owners = [
        node.target if node.op == "call_module" else node.target.rpartition(".")[0]
        for node in graph.nodes
        if node.op in ("call_module", "get_attr")
    ]
    return [owner for owner in owners if owner]  # (not the constants torch.fx keeps at the top)


def components_of(net: nn.Module) -> dict[str, nn.Module]:
    return {name: m for name, m in net.named_modules() if type(m).__module__.startswith("neurov1.components.")}


@pytest.fixture(
    scope="module",
    params=[(arch, tuple(chosen)) for arch in FAMILIES for chosen in component_sets()],
    ids=lambda param: f"{param[0]}-{'+'.join(param[1])}",
)
def network(request):
    arch, components = request.param
    torch.manual_seed(0)
    net = build_network(arch, num_classes=10, input_size=64, components=dict.fromkeys(components)).eval()
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        logits = net(images)
    return arch, components, net, images, logits


def assert_reproduced(outputs: torch.Tensor, expected: torch.Tensor) -> None:
    assert outputs.shape == expected.shape
    assert (outputs - expected).abs().max() <= TOLERANCE


@torch.no_grad()
def test_fx_traces_every_component_where_it_runs(network):
    arch, components, net, images, logits = network
    traced = torch.fx.symbolic_trace(net)
    assert_reproduced(traced(images), logits)
    seen = graph_order(traced.graph)
    assert collapsed(seen) == collapsed([name for name in eager_order(net, images) if name in set(seen)])
    for name in components_of(net):
        assert any(owner == name or owner.startswith(f"{name}.") for owner in seen), name


@torch.no_grad()
def test_the_feature_extractor_reads_the_v1_layer(network):
    arch, components, net, images, logits = network
    v1_layer = backbone_for(arch).v1_layer(net)
    expected = []
    handle = net.get_submodule(v1_layer).register_forward_hook(lambda _m, _i, output: expected.append(output))
    net(images)
    handle.remove()
    extractor = create_feature_extractor(net, {v1_layer: "v1", backbone_for(arch).classifier(net): "logits"})
    features = extractor(images)
    assert_reproduced(features["v1"], expected[0])
    assert_reproduced(features["logits"], logits)


def test_export_reproduces_the_network(network):
    arch, components, net, images, logits = network
    with torch.no_grad():
        program = torch.export.export(net, (images,))
        assert_reproduced(program.module()(images), logits)
    scopes = {path for node in program.graph.nodes for path, _ in node.meta.get("nn_module_stack", {}).values()}
    assert set(components_of(net)) <= scopes


@torch.no_grad()
def test_jit_trace_reproduces_the_network(network):
    arch, components, net, images, logits = network
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on Python values it records as constants
        traced = torch.jit.trace(net, (images,), check_trace=False)
    assert_reproduced(traced(images), logits)
    assert_reproduced(traced(images.flip(-1)), net(images.flip(-1)))  # another input: nothing was frozen in


def test_print_shows_each_component_at_its_place(network):
    """A replacing component is the module at its place; one that runs after a module is that module's child."""
    arch, components, net, images, logits = network
    for name, component in components_of(net).items():
        parent, _, attribute = name.rpartition(".")
        assert f"({attribute}): {type(component).__name__}(" in repr(net.get_submodule(parent)), name
