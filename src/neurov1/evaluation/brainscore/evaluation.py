"""V1 evaluation of a network: wrap each requested layer for Brain-Score, score it, collect one report."""

import logging
import time
from collections.abc import Sequence
from typing import Any

from neurov1.errors import ConfigError
from neurov1.evaluation.base import EvaluatedModel
from neurov1.evaluation.brainscore.environment import configure_brainscore
from neurov1.evaluation.brainscore.model import brain_model, model_identifier
from neurov1.evaluation.brainscore.scoring import V1Settings, score_layer
from neurov1.models import backbone_for
from neurov1.models.activations import check_layers

log = logging.getLogger(__name__)


def layers_to_score(setting: str | Sequence[str], model: EvaluatedModel) -> list[str]:
    """``eval.layers``: ``v1`` (the model's V1 layer, from its scoring contract), ``scan`` (its backbone's layer scan:
    for ResNet-50 the 16 block outputs and 4 downsampling layers of the paper's Appendix B), or a list of module names
    (``v1`` allowed in it)."""
    if setting == "scan":
        return backbone_for(model.architecture["arch"], model.architecture.get("backbone")).scan_layers(model.net)
    names = [setting] if isinstance(setting, str) else list(setting)
    return [model.scoring.v1_layer if name == "v1" else name for name in names]


def evaluate_v1(
    model: EvaluatedModel,
    settings: V1Settings,
    layers: Sequence[str],
    batch_size: int = 64,
    cache_dir: str | None = None,
) -> dict[str, Any]:
    """Score ``layers`` of ``net`` (the first one is the committed V1 layer of the report's headline scores).

    ``net`` is put in eval mode; each forward stops after the layer read. With several layers the report also holds
    ``layers: {layer: {scores, groups, ...}}`` (paper Appendix B).
    """
    if not layers:
        raise ConfigError("eval.layers must name at least one layer, e.g. eval.layers=v1")
    net, scoring = model.net, model.scoring
    check_layers(net, layers)  # every layer exists, before any scoring starts
    configure_brainscore(cache_dir)
    per_layer = {}
    for layer in layers:
        started = time.time()
        identifier = model_identifier(net, layer, scoring.image_size, scoring.visual_degrees)
        log.info("Scoring %s (%s) on V1 benchmarks", layer, identifier)
        results = score_layer(brain_model(net, layer, identifier, scoring, batch_size=batch_size), settings, cache_dir)
        per_layer[layer] = {
            "identifier": identifier,
            "layer": layer,
            "visual_degrees": scoring.visual_degrees,
            "image_size": scoring.image_size,
            **results,
            "seconds": round(time.time() - started, 1),
        }
    report = {
        **settings.header(model.label),
        **per_layer[layers[0]],
    }
    if len(layers) > 1:
        keys = ("identifier", "scores", "groups", "partial", "missing", "seconds")
        report["layers"] = {layer: {key: results[key] for key in keys} for layer, results in per_layer.items()}
    return report
