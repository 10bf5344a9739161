"""Components as plug-ins: the sites a backbone offers, and the check of a component selection.

A component is a config node ``model.net.components.<name>`` (``conf/model/components/<name>.yaml``)::

    _target_: neurov1.components.CenterSurround   # its nn.Module class (or a factory)
    _partial_: true
    site: v1_conv                                 # where it goes
    fraction: 0.25                                # its own parameters
    kernel_size: 5

The builder gives the constructor the geometry of each place of its site (the keywords below that it accepts) and
inserts the module there. The constructor is the one place of a component's defaults and value checks; it raises
:class:`neurov1.components.parameters.ParameterError` (or ValueError), which the builder reports as a one-line
``ConfigError`` naming ``model.net.components.<name>.<parameter>``.

Sites, in their canonical order (also the order of component names in labels such as
``center_surround+local_rf+tuned_norm+cortical_mag``):

========================  =======================================================  ==============================
site                      where (in every backbone that has it)                    geometry given
========================  =======================================================  ==============================
``v1_conv``               after every spatial convolution of the V1 stage          channels, input_size
``v1_last_conv``          replaces the V1 stage's last spatial convolution (one)   in_channels, out_channels,
                                                                                   input_size, stride
``v1_block_output``       after every V1 block's output (one: one normalization)   channels, input_size
``stem_pool``             replaces the stem's pooling into the V1 stage (one)      channels, input_size, output_size
``stem_conv``             replaces the stem's first convolution (one)              in_channels, out_channels,
                                                                                   stride, input_size, output_size
========================  =======================================================  ==============================

(``input_size``/``output_size``: the spatial size, in pixels, of the feature map entering/leaving the place.)
Several components may share ``v1_conv`` (applied in name order); every other site takes one.
"""

import difflib
import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from neurov1.errors import ConfigError
from neurov1.utils.config import group_options, load_option
from neurov1.utils.instantiate import instantiate, keyword_parameters

KEY = "model.net.components"
GROUP = "model/components"
NODE_KEYS = ("_target_", "_partial_", "site")


@dataclass(frozen=True)
class Site:
    """A place in a backbone for components: it replaces the module there, or runs on that module's output.

    ``geometry``: the keywords the builder gives a component's constructor there (those it accepts).
    """

    replaces: bool
    takes_one: bool
    where: str
    geometry: tuple[str, ...]


SITES: dict[str, Site] = {
    "v1_conv": Site(False, False, "after every spatial convolution of the V1 stage", ("channels", "input_size")),
    "v1_last_conv": Site(
        True, True, "the V1 stage's last spatial convolution", ("in_channels", "out_channels", "input_size", "stride")
    ),
    "v1_block_output": Site(False, True, "every V1 block's output", ("channels", "input_size")),
    "stem_pool": Site(True, True, "the stem's pooling into the V1 stage", ("channels", "input_size", "output_size")),
    "stem_conv": Site(
        True,
        True,
        "the stem's first convolution",
        ("in_channels", "out_channels", "stride", "input_size", "output_size"),
    ),
}


def _plain(value: Any) -> Any:
    """A default value as config data (tuples as lists), so checkpoints load with ``weights_only=True``."""
    return list(value) if isinstance(value, tuple) else value


def _preset(name: str) -> dict[str, Any]:
    """The bundled config node of a component named without one (older checkpoints, sweeps by name)."""
    preset = load_option(GROUP, name)
    if preset is None or "_target_" not in preset:
        known = [option for option in group_options(GROUP) if "_target_" in (load_option(GROUP, option) or {})]
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"{KEY}: unknown component {name!r}.{hint} Known: {', '.join(known)}; a component of your own needs its "
            f"node with _target_ and site (see docs/how-to/add-a-component.md)."
        )
    return preset


def resolve_component(name: str, node: Mapping[str, Any] | None) -> dict[str, Any]:
    """One component's complete node: ``_target_``, ``site`` and every constructor parameter (defaults filled)."""
    node = dict(node or {})
    if "_target_" not in node and "fixation" in node:
        raise ConfigError(
            f"{KEY}.{name}.fixation: a fixation policy moves the polar map of the cortical magnification, which this "
            "model does not have: add it (+model/components=cortical_mag or all) or drop the fixation override."
        )
    if "_target_" not in node:
        node = {**_preset(name), **node}
    key = f"{KEY}.{name}"
    parameters = {k: v for k, v in node.items() if k not in NODE_KEYS}
    factory = instantiate({"_target_": node["_target_"], **parameters}, key=key, _partial_=True)
    site = node.get("site")
    if site not in SITES:
        raise ConfigError(
            f"{key}.site: {site!r} is not a site; choose one of {', '.join(SITES)} (docs/concepts/components.md)."
        )
    accepted = keyword_parameters(factory.func)
    geometry = SITES[site].geometry
    own = [p for p in accepted if p not in geometry]
    for parameter in parameters:
        if parameter in geometry:
            raise ConfigError(f"{key}.{parameter}: set by the site {site} from the backbone; remove it.")
        if parameter not in accepted:
            close = difflib.get_close_matches(parameter, own, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"{key}: unknown parameter {parameter!r}.{hint} {node['_target_']} takes {', '.join(own) or 'none'}."
            )
    nested = getattr(factory.func, "NODE_PARAMETERS", ())  # config nodes of their own: absent unless given
    for parameter in own:
        if parameter in nested:
            continue
        if parameter not in parameters and accepted[parameter].default is not inspect.Parameter.empty:
            parameters[parameter] = _plain(accepted[parameter].default)
    return {"_target_": node["_target_"], "site": site, **parameters}


def resolve_components(components: Mapping[str, Mapping[str, Any] | None] | None) -> dict[str, dict[str, Any]]:
    """Check a component selection and return it complete and in canonical order (by site, then name).

    ConfigError naming the key and the fix: unknown component or parameter, an import failure, an unknown site,
    two components at a site that takes one (e.g. divisive_norm and tuned_norm, which both normalise every V1 block).
    """
    if components is None:
        return {}
    if not isinstance(components, Mapping):
        raise ConfigError(f"{KEY} must map component names to their nodes, got {components!r}.")
    resolved = {str(name): resolve_component(str(name), node) for name, node in components.items()}
    for site_name, site in SITES.items():
        names = sorted(name for name, node in resolved.items() if node["site"] == site_name)
        if site.takes_one and len(names) > 1:
            raise ConfigError(
                f"{KEY}: {' and '.join(names)} cannot be combined: the site {site_name} ({site.where}) takes one "
                f"component. Keep one, e.g. '+model/components=[{names[0]}]'."
            )
    return dict(sorted(resolved.items(), key=lambda item: (list(SITES).index(item[1]["site"]), item[0])))


def preset_components(name: str) -> list[str]:
    """The components of a preset of ``conf/model/components`` (its defaults list, e.g. ``all``: the paper's
    composite model A), the one place such a set is written."""
    return [str(entry) for entry in load_option(GROUP, name)["defaults"]]


def component_order(names: list[str] | tuple[str, ...]) -> list[str]:
    """Component names (bundled presets or complete nodes are looked up by name) in canonical order."""
    return list(resolve_components(dict.fromkeys(names)))
