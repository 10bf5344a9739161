"""A trained model as a Brain-Score model plugin folder, ready to submit to the public leaderboard.

Brain-Score (vision) takes models as plugin folders under ``brainscore_vision/models/<identifier>/``: an
``__init__.py`` that registers the model in ``model_registry``, the model code, a ``test.py`` and a
``requirements.txt``. The folder written here holds, besides those, the checkpoint's weights and architecture
(``weights.pt``: a plain dict of tensors and settings, loaded with ``weights_only=True``); the model is rebuilt by
``neurov1.models.build_network`` (so ``neurov1`` is a requirement) after the same check as every neurov1 load: the
configs in ``weights.pt`` may name only neurov1's own code and the targets the model was exported with
(:mod:`neurov1.models.trust`), so an edited ``weights.pt`` cannot run other code. It is wrapped with Brain-Score's
``PytorchWrapper`` as neurov1 wraps it for scoring (the layer read from the whole network) with the training
preprocessing (resize to the input size, the training normalisation), and committed as neurov1 scores it (its
scoring contract): the V1 layer to V1, at the model's ``visual_degrees``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from neurov1.errors import ConfigError
from neurov1.evaluation.base import check_gaze
from neurov1.models.contract import ScoringContract
from neurov1.models.trust import config_targets, is_trusted
from neurov1.utils.io import atomic_writer, write_text_atomic

INIT = '''"""{label}: a neurov1 model, committed as neurov1 scores it (its V1 layer to V1)."""

from brainscore_vision import model_registry
from brainscore_vision.model_helpers.brain_transformation import ModelCommitment

from .model import IDENTIFIER, LAYERS, VISUAL_DEGREES, get_model

model_registry[IDENTIFIER] = lambda: ModelCommitment(
    identifier=IDENTIFIER,
    activations_model=get_model(IDENTIFIER),
    layers=LAYERS,
    region_layer_map={{"V1": LAYERS[0]}},
    visual_degrees=VISUAL_DEGREES,
)
'''

MODEL = '''"""The network of {label}, rebuilt by neurov1 from weights.pt, as a Brain-Score activations model."""

import functools
from pathlib import Path

import torch
from brainscore_vision.model_helpers.activations.pytorch import load_preprocess_images

from neurov1.evaluation.brainscore.model import whole_network_wrapper
from neurov1.components import PolarTransform
from neurov1.models import build_network
from neurov1.models.trust import check_saved_targets

IDENTIFIER = {identifier!r}
# the model's scoring contract, as neurov1 scores it
LAYERS = [{layer!r}]  # the committed V1 layer
VISUAL_DEGREES = {visual_degrees!r}
IMAGE_SIZE = {image_size!r}
GAZE = {gaze!r}  # center: the cortical magnification fixates the polar centre (as the monkeys did) | free
MEAN, STD = {mean!r}, {std!r}  # the training normalisation, per channel
WEIGHTS = Path(__file__).with_name("weights.pt")
# Code of this model's own beyond neurov1's, trusted by whoever exported it: weights.pt may name nothing else.
TRUSTED_TARGETS = {trusted_targets!r}


def network() -> torch.nn.Module:
    saved = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
    check_saved_targets({{"net": saved["net"]}}, str(WEIGHTS), TRUSTED_TARGETS)
    net = build_network(**saved["net"])
    net.load_state_dict(saved["state_dict"])
    if GAZE == "center":
        for module in net.modules():
            if isinstance(module, PolarTransform):
                module.gaze = "center"
    return net.eval()


def get_model(name: str):
    assert name == IDENTIFIER
    preprocessing = functools.partial(
        load_preprocess_images, image_size=IMAGE_SIZE, normalize_mean=MEAN, normalize_std=STD
    )
    wrapper = whole_network_wrapper()(identifier=IDENTIFIER, model=network(), preprocessing=preprocessing)
    wrapper.image_size = IMAGE_SIZE
    return wrapper


def get_layers(name: str) -> list[str]:
    assert name == IDENTIFIER
    return LAYERS
'''

TEST = """import pytest

import brainscore_vision


@pytest.mark.travis_slow
def test_has_identifier():
    model = brainscore_vision.load_model({identifier!r})
    assert model.identifier == {identifier!r}
"""


def plugin_identifier(label: str) -> str:
    """A registry key from a model label: lower case letters, digits, ``-`` and ``_`` (``neurov1-<label>``)."""
    return "neurov1-" + re.sub(r"[^a-z0-9_-]+", "-", label.lower()).strip("-")


def write_plugin(
    out: Path,
    net: torch.nn.Module,
    net_config: dict[str, Any],
    scoring: ScoringContract,
    label: str,
    gaze: str = "center",
) -> Path:
    """Write the plugin folder ``out/<identifier>/`` of ``net`` committed by its ``scoring`` contract; returns it. An
    existing non-empty folder is refused."""
    identifier = plugin_identifier(label)
    folder = Path(out) / identifier
    if folder.exists() and any(folder.iterdir()):
        raise ConfigError(f"out: {folder} exists and is not empty; choose another out= or remove it.")
    folder.mkdir(parents=True, exist_ok=True)
    settings = {
        "label": label,
        "identifier": identifier,
        "layer": scoring.v1_layer,
        "visual_degrees": float(scoring.visual_degrees),
        "image_size": int(scoring.image_size),
        "mean": scoring.channel_mean(),
        "std": scoring.channel_std(),
        "gaze": check_gaze(gaze),
        "trusted_targets": sorted({target for _, target in config_targets(net_config) if not is_trusted(target)}),
    }
    with atomic_writer(folder / "weights.pt") as file:
        torch.save({"net": dict(net_config), "state_dict": net.state_dict()}, file)
    write_text_atomic(folder / "model.py", MODEL.format(**settings))
    write_text_atomic(folder / "__init__.py", INIT.format(**settings))
    write_text_atomic(folder / "test.py", TEST.format(**settings))
    write_text_atomic(folder / "requirements.txt", "neurov1\ntorch\ntorchvision\n")
    return folder
