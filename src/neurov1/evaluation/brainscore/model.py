"""A trained network as a Brain-Score model: one committed V1 layer, 64 px input, the training normalisation."""

import functools
import hashlib
from collections import OrderedDict

from torch import nn

from neurov1.errors import ConfigError
from neurov1.evaluation.brainscore.environment import import_brainscore


def truncated_network(net: nn.Module, layer: str) -> nn.Sequential:
    """The modules of ``net`` that compute ``layer``'s output, in order and under their original names.

    The top-level children up to the one holding ``layer``, descending into ``nn.Sequential`` children to stop at
    ``layer`` itself (``layer1.0``; VGG's ``features.13``). This is the network's own computation up to there for
    networks that apply their top-level children in order up to their V1 stage, as torchvision's ResNets and VGGs
    do, so nothing after the scored layer runs. The modules are shared with ``net`` (not copied) and put in eval mode.
    """

    def cut(module: nn.Module, path: list[str]) -> nn.Sequential:
        children = OrderedDict()
        for name, child in module.named_children():
            if name == path[0]:
                children[name] = cut(child, path[1:]) if len(path) > 1 and isinstance(child, nn.Sequential) else child
                return nn.Sequential(children)
            children[name] = child
        raise ConfigError(
            f"eval.layers: {layer!r} is not a layer of the model; its modules there: {list(children)}. Name a "
            "module of the model (e.g. eval.layers=v1)."
        )

    truncated = cut(net, layer.split("."))
    try:
        truncated.get_submodule(layer)
    except AttributeError as error:
        raise ConfigError(f"eval.layers: {layer!r} is not a layer of the model ({error})") from None
    return truncated.eval()


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
    net: nn.Module,
    layer: str,
    identifier: str,
    image_size: int = 64,
    visual_degrees: float = 8,
    mean: float = 0.5,
    std: float = 0.5,
    batch_size: int = 64,
    region: str = "V1",
):
    """A ``ModelCommitment`` with ``layer`` committed to ``region`` (no layer search), preprocessing as in training."""
    import_brainscore()
    from brainscore_vision.model_helpers.activations.pytorch import PytorchWrapper, load_preprocess_images
    from brainscore_vision.model_helpers.brain_transformation import ModelCommitment

    preprocessing = functools.partial(
        load_preprocess_images, image_size=image_size, normalize_mean=(mean,) * 3, normalize_std=(std,) * 3
    )
    wrapper = PytorchWrapper(
        model=truncated_network(net, layer), preprocessing=preprocessing, identifier=identifier, batch_size=batch_size
    )
    return ModelCommitment(
        identifier=identifier,
        activations_model=wrapper,
        layers=[layer],
        region_layer_map={region: layer},
        visual_degrees=visual_degrees,
    )
