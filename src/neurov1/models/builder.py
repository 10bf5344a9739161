"""Build a backbone with its components: each component constructed with its site's geometry and put in place.

A component at a replacing site becomes the module there (``layer1.2.conv2`` is then a LocallyConnected2d); one
at a site that runs on a module's output becomes a child of that module, named after the component
(``layer1.0.conv2.center_surround``, ``layer1.0.tuned_norm``), and that module's forward passes its output through
it (:func:`attach_after`). So the components are part of the network's forward (``print(net)``, torch.fx,
``torch.export`` and ``torch.jit.trace`` see them), and the backbone's own module names, and a baseline's state
dict, stay exactly torchvision's.
"""

import functools
import re
from collections.abc import Mapping
from typing import Any

from torch import nn

from neurov1.components.parameters import ParameterError
from neurov1.errors import ConfigError
from neurov1.models.backbones import Backbone, backbone_for, offered_sites
from neurov1.models.contract import IMAGE_SIZE
from neurov1.models.sites import KEY, SITES, resolve_components
from neurov1.utils.instantiate import instantiate, keyword_parameters


def _forward_then_components(self: nn.Module, *args: Any, **kwargs: Any) -> Any:
    """The forward of a module with components after it: its class's own forward, then each component in turn."""
    output = super(type(self), self).forward(*args, **kwargs)
    for name in self.components_after:
        output = getattr(self, name)(output)
    return output


def _rebuild(base: type[nn.Module]) -> nn.Module:
    """An empty instance of ``followed(base)``, for copying and unpickling (the state is set afterwards)."""
    cls = followed(base)
    return cls.__new__(cls)


def _reduce(self: nn.Module, protocol: int) -> tuple:
    return _rebuild, (type(self).__mro__[1],), self.__getstate__()


@functools.cache
def followed(base: type[nn.Module]) -> type[nn.Module]:
    """``base`` (e.g. torchvision's Conv2d or Bottleneck) whose forward passes its output through the child modules
    named in its ``components_after`` list. Same name, state dict and behaviour otherwise (a subclass, made once per
    class, as ``torch.nn.utils.parametrize`` makes its parametrized classes)."""
    namespace = {"forward": _forward_then_components, "__reduce_ex__": _reduce, "__module__": __name__}
    return type(base.__name__, (base,), namespace)


def attach_after(module: nn.Module, name: str, component: nn.Module) -> None:
    """Run ``component`` on every output of ``module``, as its child ``name`` (after those attached before)."""
    module.add_module(name, component)
    if "components_after" not in vars(module):
        module.__class__ = followed(type(module))
        module.components_after = []
    module.components_after.append(name)


def construct(name: str, spec: Mapping[str, Any], geometry: Mapping[str, Any]) -> nn.Module:
    """The component ``name`` for one place: Hydra instantiates its node as a partial (its ``_partial_``), which is
    called with the geometry of the place that its constructor accepts."""
    node = {key: value for key, value in spec.items() if key != "site"}
    factory = instantiate(node, key=f"{KEY}.{name}", _partial_=True)
    accepted = keyword_parameters(factory.func)
    try:
        module = factory(**{key: value for key, value in geometry.items() if key in accepted})
    except ParameterError as error:
        if error.parameter in geometry:
            raise ConfigError(
                f"{KEY}.{name}: the site {spec['site']} gives {error.parameter}={geometry[error.parameter]}, which "
                f"{spec['_target_']} refuses ({error.detail}). Choose another site or backbone."
            ) from None
        raise ConfigError(f"{KEY}.{name}.{error.parameter}: {error.detail}.") from None
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{KEY}.{name}: {spec['_target_']} refused its parameters ({error}).") from None
    if not isinstance(module, nn.Module):
        raise ConfigError(
            f"{KEY}.{name}._target_: {spec['_target_']} built a {type(module).__name__}, not an nn.Module."
        )
    return module


def build_network(
    arch: str = "resnet50",
    num_classes: int = 1000,
    input_size: int = IMAGE_SIZE,
    components: Mapping[str, Mapping[str, Any] | None] | None = None,
    backbone: str | None = None,
) -> nn.Module:
    """The ``arch`` network with ``components`` (``model.net.components``) at their sites.

    Components are checked completely (:func:`neurov1.models.sites.resolve_components`) before anything is built;
    replacing sites are filled first, so components that run after a convolution also run after its replacement.
    """
    adapter = backbone_for(arch, backbone)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ConfigError(f"model.net.num_classes must be a positive integer, got {num_classes!r}.")
    adapter.check_input_size(input_size)
    resolved = resolve_components(components)
    net = adapter.build(arch, num_classes)
    for name, spec in sorted(resolved.items(), key=lambda item: not SITES[item[1]["site"]].replaces):
        site = SITES[spec["site"]]
        places = adapter.places(net, spec["site"], input_size)
        if not places:
            raise ConfigError(
                f"{KEY}.{name}: the {adapter.name} backbone ({arch}) has no site {spec['site']} ({site.where}); it "
                f"offers {', '.join(offered_sites(adapter, net, input_size))}. Remove the component or choose "
                "another model.net.arch."
            )
        for place in places:
            component = construct(name, spec, place.geometry)
            if site.replaces:
                setattr(place.parent, place.attribute, component)
            else:
                attach_after(getattr(place.parent, place.attribute), name, component)
    return net


def count_parameters(model: nn.Module) -> int:
    """Number of learnable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


_LEGACY_CENTER_SURROUND = re.compile(r"^(.*layer1\.\d+)\.center_surround(\d)\.")
_LEGACY_NORMALIZATION = re.compile(r"^(.*layer1\.\d+)\.normalization\.")


def rename_legacy_keys(state: Mapping[str, Any], components: Mapping[str, Any]) -> dict[str, Any]:
    """State-dict keys of checkpoints from before components were plug-ins, in today's names.

    (``layer1.0.center_surround2.*`` -> ``layer1.0.conv2.center_surround.*``; ``layer1.0.normalization.*`` ->
    ``layer1.0.<divisive_norm|tuned_norm>.*``.)
    """
    norm = next((name for name in ("divisive_norm", "tuned_norm") if name in components), "normalization")
    renamed = {}
    for key, value in state.items():
        key = _LEGACY_CENTER_SURROUND.sub(r"\1.conv\2.center_surround.", key)
        key = _LEGACY_NORMALIZATION.sub(rf"\1.{norm}.", key)
        renamed[key] = value
    return renamed


__all__ = ["Backbone", "attach_after", "build_network", "construct", "count_parameters", "rename_legacy_keys"]
