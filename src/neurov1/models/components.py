"""The component registry: names, parameters with their defaults, and validation of a component selection.

A selection is a mapping ``{name: {parameter: value}}`` as composed by Hydra under ``model.net.components``.
:func:`validate_components` checks it completely (names, the divisive/tuned exclusion, parameter keys and values)
and returns it in one canonical order with defaults filled in, before any module is built.
"""

import difflib
import math
from collections.abc import Mapping
from typing import Any

from neurov1.errors import ConfigError

# Parameter defaults; conf/model/components/<name>.yaml shows the same values (a test keeps them in sync).
COMPONENT_DEFAULTS: dict[str, dict[str, Any]] = {
    # DoG on a quarter of the channels of each layer-1 3x3 conv, 5x5 kernels (paper Sec. 3.1; facts file).
    "center_surround": {"fraction": 0.25, "kernel_size": 5},
    # Locally connected 3x3 layer replacing layer 1's last 3x3 conv. The original single-component model put
    # Dropout2d(p=0.5) before it, the composites did not: dropout=0.5 reproduces the former.
    "local_rf": {"kernel_size": 3, "dropout": 0.0},
    # Cirincione et al. divisive normalization with 3x3 spatial pools.
    "divisive_norm": {"kernel_size": 3},
    # Tuned normalization, paper Eq. 2 (no parameters beyond the learned per-channel widths).
    "tuned_norm": {},
    # Polar transform replacing the stem max-pool; null bins/center = the paper's bins and the image centre.
    "cortical_mag": {"radius_bins": None, "angle_bins": 30, "center": None},
}
COMPONENT_ORDER: tuple[str, ...] = tuple(COMPONENT_DEFAULTS)
EXCLUSIVE = ("divisive_norm", "tuned_norm")
KEY = "model.net.components"


def _unknown(kind: str, name: str, known: list[str], key: str, fix: str) -> ConfigError:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return ConfigError(f"{key}: unknown {kind} {name!r}.{hint} Known: {', '.join(known)}. {fix}")


def _check_odd_kernel(key: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1 or value % 2 == 0:
        raise ConfigError(f"{key} must be an odd integer >= 1, got {value!r}. Set {key}=3 (or 5, 7, ...).")


def _check_values(name: str, params: dict[str, Any]) -> None:
    key = f"{KEY}.{name}"
    if name == "center_surround":
        fraction = params["fraction"]
        if not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
            raise ConfigError(f"{key}.fraction must be in (0, 1], got {fraction!r} (paper: 0.25).")
        _check_odd_kernel(f"{key}.kernel_size", params["kernel_size"])
        if params["kernel_size"] < 3:
            raise ConfigError(f"{key}.kernel_size must be >= 3 for a center-surround kernel (paper: 5).")
    elif name == "local_rf":
        _check_odd_kernel(f"{key}.kernel_size", params["kernel_size"])
        dropout = params["dropout"]
        if not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ConfigError(f"{key}.dropout must be in [0, 1), got {dropout!r}.")
    elif name == "divisive_norm":
        _check_odd_kernel(f"{key}.kernel_size", params["kernel_size"])
    elif name == "cortical_mag":
        angle_bins = params["angle_bins"]
        if not isinstance(angle_bins, int) or angle_bins < 2:
            raise ConfigError(f"{key}.angle_bins must be an integer >= 2, got {angle_bins!r} (paper: 30).")
        edges = params["radius_bins"]
        if edges is not None:
            steps = [b - a for a, b in zip(edges, edges[1:], strict=False)]
            if len(edges) < 2 or edges[0] != 0 or any(s <= 0 for s in steps):
                raise ConfigError(f"{key}.radius_bins must be increasing edges starting at 0, got {edges!r}.")
            if any(later < earlier for earlier, later in zip(steps, steps[1:], strict=False)):
                raise ConfigError(f"{key}.radius_bins spacing must be non-decreasing (paper Sec. 3.1), got {edges!r}.")
        center = params["center"]
        if center is not None and (
            len(center) != 2 or not all(isinstance(c, (int, float)) and math.isfinite(c) for c in center)
        ):
            raise ConfigError(f"{key}.center must be null or [row, col] in pixels, got {center!r}.")


def validate_components(components: Mapping[str, Mapping[str, Any] | None]) -> dict[str, dict[str, Any]]:
    """Check a component selection and return it in canonical order with every parameter filled in.

    Raises :class:`ConfigError` naming the config key and the fix for unknown components or parameters, invalid
    values, and divisive + tuned normalization together (the paper never combines them: both normalise the same
    layer-1 block outputs).
    """
    if not isinstance(components, Mapping):
        raise ConfigError(f"{KEY} must be a mapping of component names to parameters, got {components!r}.")
    fix = "Select components with '+model/components=[center_surround,tuned_norm]' (or =all, =none)."
    for name in components:
        if name not in COMPONENT_DEFAULTS:
            raise _unknown("component", str(name), list(COMPONENT_ORDER), KEY, fix)
    if all(name in components for name in EXCLUSIVE):
        raise ConfigError(
            f"{KEY}: divisive_norm and tuned_norm cannot be combined: both normalise the output of every layer-1 "
            "block (the paper never combines them). Remove one, e.g. '+model/components=[divisive_norm,local_rf]'."
        )
    validated: dict[str, dict[str, Any]] = {}
    for name in COMPONENT_ORDER:
        if name not in components:
            continue
        given = dict(components[name] or {})
        for param in given:
            if param not in COMPONENT_DEFAULTS[name]:
                known = list(COMPONENT_DEFAULTS[name]) or ["(none)"]
                raise _unknown("parameter", str(param), known, f"{KEY}.{name}", "Remove or rename it.")
        params = {**COMPONENT_DEFAULTS[name], **given}
        _check_values(name, params)
        validated[name] = params
    return validated
