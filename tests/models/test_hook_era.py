"""Checkpoints written before components were part of the forward (they ran on forward hooks) still load.

The fixtures in tests/fixtures/hook_era/ were written by that code (their README says how).
"""

import json
import lzma
from pathlib import Path

import pytest
import torch

from neurov1.models import build_network
from neurov1.training.module import NeuroV1Module

FIXTURES = Path(__file__).parents[1] / "fixtures" / "hook_era"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("hook_era") / "last.ckpt"
    path.write_bytes(lzma.decompress((FIXTURES / "resnet18_all_8px.ckpt.xz").read_bytes()))
    return path


def test_a_hook_era_checkpoint_loads_and_computes_what_it_computed(checkpoint):
    model = NeuroV1Module.load_from_checkpoint(checkpoint, map_location="cpu").eval()  # weights_only=True
    expected = torch.load(FIXTURES / "resnet18_all_8px.expected.pt", weights_only=True)
    assert model.components == ["center_surround", "local_rf", "tuned_norm", "cortical_mag"]
    v1 = []
    model.net.get_submodule(model.v1_layer).register_forward_hook(lambda _m, _i, output: v1.append(output))
    with torch.no_grad():
        logits = model(expected["images"])
    # (1e-5: the float32 sums may be taken in another order on another machine or thread count)
    torch.testing.assert_close(v1[0], expected["v1"], rtol=0, atol=1e-5)
    torch.testing.assert_close(logits, expected["logits"], rtol=0, atol=1e-5)


def test_a_hook_era_checkpoint_resumes_its_state_dict_strictly(checkpoint):
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    model = NeuroV1Module.load_from_checkpoint(checkpoint, map_location="cpu")
    assert set(model.state_dict()) == set(state)


@pytest.mark.parametrize("name", json.loads((FIXTURES / "state_dict_keys.json").read_text()))
def test_every_family_keeps_the_hook_era_state_dict_keys(name):
    """ResNet-50, ResNet-18 and VGG11-BN with components at every kind of site: the same keys and shapes."""
    saved = json.loads((FIXTURES / "state_dict_keys.json").read_text())[name]
    with torch.device("meta"):
        net = build_network(saved["arch"], 10, saved["input_size"], dict.fromkeys(saved["components"]))
    assert {key: list(value.shape) for key, value in net.state_dict().items()} == saved["state_dict"]
