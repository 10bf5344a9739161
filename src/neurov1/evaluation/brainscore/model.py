"""A trained network as a Brain-Score model: one committed layer, with its scoring contract's input and degrees."""

import functools
import hashlib
from collections import OrderedDict

import numpy as np
import torch
from torch import nn

from neurov1.evaluation.brainscore.environment import import_brainscore
from neurov1.models.activations import layer_outputs
from neurov1.models.contract import ScoringContract


@functools.cache
def whole_network_wrapper() -> type:
    """Brain-Score's ``PytorchWrapper`` whose activations come from the whole network, stopped after the layers read
    (:func:`neurov1.models.activations.layer_outputs`). (A class made on first use: Brain-Score is imported only
    after :func:`import_brainscore` has set its environment.)"""
    import_brainscore()
    from brainscore_vision.model_helpers.activations.pytorch import PytorchWrapper

    class WholeNetworkWrapper(PytorchWrapper):
        def get_activations(self, images: list, layer_names: list[str]) -> OrderedDict:
            parameter = next(self._model.parameters())
            batch = torch.stack([torch.as_tensor(np.asarray(image)) for image in images])
            self._model.eval()
            with torch.no_grad():
                outputs = layer_outputs(self._model, batch.to(parameter.device, parameter.dtype), layer_names)
            return OrderedDict((name, outputs[name].cpu().numpy()) for name in layer_names)

    return WholeNetworkWrapper


def weights_digest(net: nn.Module) -> str:
    """A short SHA-1 over every parameter and buffer: identical only for identical weights."""
    digest = hashlib.sha1()
    for name, tensor in net.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:12]


def model_identifier(net: nn.Module, layer: str, image_size: int, visual_degrees: float) -> str:
    """Unique per weights, committed layer, resolution and visual degrees (Brain-Score caches results by it).

    Short on purpose: Brain-Score's result cache builds file names from it.
    """
    return f"neurov1-{weights_digest(net)}-{layer}-{image_size}px-{visual_degrees:g}deg"


def brain_model(
    net: nn.Module, layer: str, identifier: str, scoring: ScoringContract, batch_size: int = 64, region: str = "V1"
):
    """A ``ModelCommitment`` with ``layer`` committed to ``region`` (no layer search) at the contract's visual degrees,
    its images preprocessed as in training (the contract's input size and normalisation)."""
    import_brainscore()
    from brainscore_vision.model_helpers.activations.pytorch import load_preprocess_images
    from brainscore_vision.model_helpers.brain_transformation import ModelCommitment

    preprocessing = functools.partial(
        load_preprocess_images,
        image_size=scoring.image_size,
        normalize_mean=scoring.channel_mean(),
        normalize_std=scoring.channel_std(),
    )
    wrapper = whole_network_wrapper()(
        model=net, preprocessing=preprocessing, identifier=identifier, batch_size=batch_size
    )
    return ModelCommitment(
        identifier=identifier,
        activations_model=wrapper,
        layers=[layer],
        region_layer_map={region: layer},
        visual_degrees=scoring.visual_degrees,
    )
