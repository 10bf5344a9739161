"""A layer's activations, read from the whole network: a forward hook on that module, and the forward stops there.

Every path that scores or analyses a layer (``eval=v1``, ``eval=v1_probe``, ``eval=regions``, ``analyze``, the
layer scan, the Brain-Score export) reads it this way, so it sees exactly what the network computes at that module
whatever the network's forward does around it (skip connections, reordered stages), and nothing after the module
runs.
"""

from collections.abc import Sequence

from torch import Tensor, nn

from neurov1.errors import ConfigError


class _Stop(Exception):
    """Raised by the last hook a reading needs: the rest of the forward does not run."""


def check_layers(net: nn.Module, layers: Sequence[str], key: str = "eval.layers") -> None:
    """ConfigError naming ``key`` when a layer is not a module of ``net``."""
    names = dict(net.named_modules())
    for layer in layers:
        if layer in names and layer:
            continue
        parts = str(layer).split(".")
        known = next(".".join(parts[:end]) for end in range(len(parts), -1, -1) if ".".join(parts[:end]) in names)
        there = [f"{known}.{child}".lstrip(".") for child, _ in names[known].named_children()]
        raise ConfigError(
            f"{key}: {layer!r} is not a layer of the model; its modules there: {there}. Name a module of the model "
            f"(e.g. {key}=v1)."
        )


def _read(net: nn.Module, images: Tensor, layers: Sequence[str], inputs: bool) -> dict[str, Tensor]:
    """The first output (or first positional input) of each module in ``layers`` during ``net(images)``; the forward
    stops once all are read."""
    check_layers(net, layers)
    read: dict[str, Tensor] = {}

    def keep(name: str, value: Tensor) -> None:
        read.setdefault(name, value)
        if len(read) == len(set(layers)):
            raise _Stop

    handles = []
    for name in dict.fromkeys(layers):
        module = net.get_submodule(name)
        if inputs:
            handles.append(module.register_forward_pre_hook(lambda _m, args, name=name: keep(name, args[0])))
        else:
            handles.append(module.register_forward_hook(lambda _m, _a, output, name=name: keep(name, output)))
    try:
        net(images)
    except _Stop:
        pass
    finally:
        for handle in handles:
            handle.remove()
    missing = [name for name in layers if name not in read]
    if missing:
        raise ConfigError(f"eval.layers: the forward of the model never runs {missing}; name modules it runs.")
    return read


def layer_outputs(net: nn.Module, images: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:
    """The outputs of the modules ``layers`` of ``net`` for ``images``, from one forward that stops after them."""
    return _read(net, images, layers, inputs=False)


def layer_input(net: nn.Module, images: Tensor, layer: str) -> Tensor:
    """The input of the module ``layer`` of ``net`` for ``images`` (the forward stops before that module runs)."""
    return _read(net, images, [layer], inputs=True)[layer]


class LayerOutput(nn.Module):
    """``net`` read at ``layer``: ``forward(images)`` is :func:`layer_outputs` of that one layer.

    Holds ``net`` (shared, not copied: the same parameters, device and mode), so it can go wherever a module mapping
    images to the layer's activations is needed (the V1 probe, gradient ascent on V1 channels).
    """

    def __init__(self, net: nn.Module, layer: str) -> None:
        super().__init__()
        check_layers(net, [layer])
        self.net = net
        self.layer = layer

    def forward(self, images: Tensor) -> Tensor:
        return layer_outputs(self.net, images, [self.layer])[self.layer]

    def extra_repr(self) -> str:
        return f"layer={self.layer!r}"


__all__ = ["LayerOutput", "check_layers", "layer_input", "layer_outputs"]
