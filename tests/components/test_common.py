"""Checks every public module of neurov1.components must pass: gradients, mixed precision, dtypes and devices.

Component-specific behaviour (loop-based references, validation errors, special properties) is tested in the
per-component files.
"""

from functools import partial

import pytest
import torch

import neurov1.components
from neurov1.components import (
    CenterSurround,
    DivisiveNormalization,
    DoGConv2d,
    GivenFixation,
    LearnedFixation,
    LocallyConnected2d,
    PolarTransform,
    SaliencyFixation,
    TunedNormalization,
)


def polar_with(policy, **options):
    """A polar transform whose fixation policy moves its gaze (a learned head with a random, not zero, output
    layer, as after training; given fixations away from the centre)."""
    polar = PolarTransform(24, 12, fixation=partial(policy, **options), channels=3)
    if isinstance(polar.fixation, LearnedFixation):
        torch.nn.init.normal_(polar.fixation.out.weight)
    if isinstance(polar.fixation, GivenFixation):
        polar.fixation.given = torch.tensor([[0.3, -0.2], [-0.5, 0.1]])
    return polar


# id -> (module builder, input shape (N, C, H, W))
MODULES = {
    "dog": (lambda: DoGConv2d(4), (2, 4, 8, 8)),
    "center_surround": (lambda: CenterSurround(8, fraction=0.5), (2, 8, 8, 8)),
    "locally_connected": (lambda: LocallyConnected2d(4, 4, 8, stride=2, bias=True), (2, 4, 8, 8)),
    "divisive_normalization": (lambda: DivisiveNormalization(4), (2, 4, 8, 8)),
    "tuned_normalization": (lambda: TunedNormalization(8), (2, 8, 6, 6)),
    "polar_transform": (lambda: PolarTransform(24, 12), (2, 3, 24, 24)),
    "polar_learned_fixation": (lambda: polar_with(LearnedFixation, hidden=4), (2, 3, 24, 24)),
    "polar_saliency_fixation": (lambda: polar_with(SaliencyFixation), (2, 3, 24, 24)),
    "polar_given_fixation": (lambda: polar_with(GivenFixation), (2, 3, 24, 24)),
}

# Modules without learnable parameters; their gradient check rests on the input gradient alone.
PARAMETER_FREE = {"polar_transform", "polar_saliency_fixation", "polar_given_fixation"}

# Parameters whose gradient legitimately has exact zeros (they must still get a non-zero gradient somewhere):
# a location's kernel taps that only ever see zero padding (see test_locally_connected.py).
SPARSE_GRADIENTS = {"locally_connected": {"weight"}}


def build(name, dtype=torch.float32):
    """Seeded module and matching random input of the given dtype."""
    torch.manual_seed(0)
    builder, shape = MODULES[name]
    return builder().to(dtype), torch.rand(*shape, dtype=dtype)


def test_table_covers_every_public_module():
    built = {type(module).__name__ for builder, _ in MODULES.values() for module in builder().modules()}
    assert set(neurov1.components.__all__) <= built


@pytest.mark.parametrize("name", MODULES)
def test_gradients_reach_every_parameter_and_the_input(name):
    module, x = build(name)
    x.requires_grad_(True)
    module(x).sum().backward()
    parameters = dict(module.named_parameters())
    assert bool(parameters) == (name not in PARAMETER_FREE)
    for parameter_name, parameter in [*parameters.items(), ("input", x)]:
        assert parameter.grad is not None, parameter_name
        assert torch.isfinite(parameter.grad).all(), parameter_name
        assert parameter.grad.abs().sum() > 0, parameter_name
    for parameter_name, parameter in parameters.items():
        if parameter_name not in SPARSE_GRADIENTS.get(name, set()):
            assert (parameter.grad != 0).all(), parameter_name


@pytest.mark.parametrize("name", MODULES)
def test_bfloat16_autocast_matches_float32(name):
    module, x = build(name)
    expected = module(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = module(x)
    assert torch.isfinite(out).all()
    assert (out.float() - expected).abs().max() <= 5e-2 * expected.abs().max()


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("name", MODULES)
def test_runs_in_any_float_dtype(name, dtype):
    module, x = build(name, dtype)
    out = module(x)
    assert out.dtype == dtype and torch.isfinite(out).all()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", MODULES)
def test_cuda_matches_cpu(name):
    module, x = build(name)
    torch.testing.assert_close(module.cuda()(x.cuda()).cpu(), module.cpu()(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", MODULES)
def test_channels_last_inputs_and_weights_give_the_same_result_and_gradients(name):
    module, x = build(name)
    x.requires_grad_(True)
    expected = module(x)
    expected.sum().backward()
    expected_grads = {n: p.grad.clone() for n, p in module.named_parameters()}
    expected_input_grad = x.grad.clone()
    module.zero_grad()
    x.grad = None
    last = module.to(memory_format=torch.channels_last)
    x_last = x.detach().contiguous(memory_format=torch.channels_last).requires_grad_(True)
    out = last(x_last)
    out.sum().backward()
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(x_last.grad, expected_input_grad, rtol=1e-4, atol=1e-5)
    for parameter_name, parameter in last.named_parameters():
        torch.testing.assert_close(parameter.grad, expected_grads[parameter_name], rtol=1e-4, atol=1e-5)
