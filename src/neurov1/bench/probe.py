"""The V1 probe's cost (``python -m neurov1.bench probe``): against its floor and against Brain-Score.

For each model (untrained weights: the cost does not depend on them), in one run:

- floor: the network's own forward passes up to the V1 layer over the 9,097 probe stimuli (batches of 64);
- probe: ``eval=v1_probe`` offline with the stimuli in memory (what every call pays once they are rendered or
  read from the cache file; a first probe runs before), its steps, and its overhead over the floor, both measured
  in one child process; the first rendering of the stimuli is reported once;
- Brain-Score (the demo model only): a first ``eval=v1`` offline evaluation through Brain-Score (fresh result
  caches; the 672 px PNG stimuli already rendered), the probe's speed-up over it;
- the peak resident memory of a child process after its first probe (before anything else runs in it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from neurov1.bench.model import ALL, peak_rss_mb
from neurov1.evaluation.brainscore.model import brain_model, model_identifier
from neurov1.evaluation.brainscore.scoring import V1Settings, score_layer
from neurov1.evaluation.brainscore.stimulus_sets import BLANK, STIMULUS_SETS, generate_marques_stimuli
from neurov1.evaluation.probe.electrophysiology import ACTIVATION_BUDGET
from neurov1.evaluation.probe.gratings import probe_stimuli
from neurov1.evaluation.v1_probe import probe_v1
from neurov1.models import build_network
from neurov1.models.activations import LayerOutput
from neurov1.models.contract import VISUAL_DEGREES, ScoringContract
from neurov1.utils.io import default_cache_dir

PROBE_MODELS: dict[str, tuple[str, dict[str, dict]]] = {
    "demo ResNet-18, all": ("resnet18", ALL),
    "ResNet-50": ("resnet50", {}),
    "ResNet-50, all": ("resnet50", ALL),
}
BRAINSCORE_MODEL = "demo ResNet-18, all"
OFFLINE = V1Settings(source="offline")


def network(name: str, image_size: int = 64) -> torch.nn.Module:
    torch.manual_seed(0)
    arch, components = PROBE_MODELS[name]
    return build_network(arch, num_classes=1000, input_size=image_size, components=components).eval()


def contract(layer: str, image_size: int) -> ScoringContract:
    """The probed layer committed with the default visual degrees and normalisation."""
    return ScoringContract(v1_layer=layer, image_size=image_size)


@torch.no_grad()
def floor_seconds(net: torch.nn.Module, layer: str, image_size: int) -> float:
    """Forward passes up to ``layer`` over every probe stimulus, preprocessed and batched as the probe does them
    (batches of 64, fewer for layers over ``ACTIVATION_BUDGET / 64`` values)."""
    reader, scoring = LayerOutput(net, layer), contract(layer, image_size)
    stimuli = probe_stimuli(image_size, scoring.visual_degrees)
    units = reader(stimuli[BLANK].float().expand(1, 3, -1, -1)).numel()
    size = max(min(64, ACTIVATION_BUDGET // units) // 8, 1) * 8
    reader(stimuli[BLANK].float().expand(size, 3, -1, -1))  # one untimed batch: first-call allocations
    started = time.perf_counter()
    for images in stimuli.values():
        for start in range(0, len(images), size):
            batch = images[start : start + size].float().div(255).sub(scoring.mean).div(scoring.std)
            reader(batch[:, None].expand(-1, 3, -1, -1))
    return time.perf_counter() - started


def probe_child(name: str, layer: str, image_size: int) -> dict:
    """Run in a fresh process: one probe and the process's peak memory so far, then the floor, then the probe again
    (stimuli in memory, as every later call), whose time is reported."""
    net = network(name, image_size=image_size)
    probe_v1(net, layer, OFFLINE, contract(layer, image_size), progress=False)
    peak = peak_rss_mb()
    floor = floor_seconds(net, layer, image_size)
    started = time.perf_counter()
    report = probe_v1(net, layer, OFFLINE, contract(layer, image_size), progress=False)
    seconds = time.perf_counter() - started
    return {"floor_s": floor, "seconds": seconds, "timings": report["timings"], "peak_rss_mb": peak}


def brainscore_seconds(net: torch.nn.Module, layer: str) -> float:
    """A first offline ``eval=v1`` of ``net`` through Brain-Score: fresh result caches, stimulus PNGs rendered."""
    for name in STIMULUS_SETS:  # rendered before the clock starts (once per cache folder)
        generate_marques_stimuli(name, default_cache_dir(), progress=False)
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["RESULTCACHING_HOME"] = str(Path(scratch) / "result_caching")
        started = time.perf_counter()
        scoring = contract(layer, 64)
        identifier = model_identifier(net, layer, scoring.image_size, scoring.visual_degrees)
        model = brain_model(net, layer, identifier, scoring)
        score_layer(model, OFFLINE, str(default_cache_dir()))
        return time.perf_counter() - started


def render_seconds(image_size: int) -> float:
    """Time of a first rendering of the stimuli (into a scratch cache); makes sure the default cache holds them."""
    probe_stimuli(image_size, VISUAL_DEGREES)  # the default cache file, read by the probe's child processes
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        probe_stimuli(image_size, VISUAL_DEGREES, scratch)
        return time.perf_counter() - started


def probe_rows(large: bool) -> dict:
    """One row per model (and, with ``large``, ResNet-50's layer1 at 224 px and layer2 at 64 px)."""
    cases = [(name, "layer1", 64) for name in PROBE_MODELS]
    if large:
        cases += [("ResNet-50", "layer1", 224), ("ResNet-50", "layer2", 64)]
    rendering = {size: render_seconds(size) for size in sorted({size for _, _, size in cases})}
    rows = []
    for name, layer, image_size in cases:
        command = [sys.executable, "-m", "neurov1.bench", "--probe-child", f"{name}|{layer}|{image_size}"]
        child = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
        row = {"model": name, "layer": layer, "image_size": image_size, **child}
        row["overhead"] = child["seconds"] / child["floor_s"] - 1
        if name == BRAINSCORE_MODEL and layer == "layer1" and image_size == 64:
            row["brainscore_s"] = brainscore_seconds(network(name), layer)
            row["speedup"] = row["brainscore_s"] / child["seconds"]
        rows.append(row)
    return {"first_rendering_s": rendering, "rows": rows}


def markdown(result: dict) -> str:
    lines = [
        "V1 probe, CPU (2 threads), one run; stimuli already rendered (first rendering: "
        + ", ".join(f"{size} px {seconds:.1f} s" for size, seconds in result["first_rendering_s"].items())
        + ")",
        "| model | layer | input | floor: forward passes (s) | probe (s) | overhead | Brain-Score eval=v1 (s) | "
        "probe speed-up | peak RSS (MB) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        brainscore = f"{row['brainscore_s']:.1f}" if "brainscore_s" in row else "-"
        speedup = f"{row['speedup']:.1f}x" if "speedup" in row else "-"
        lines.append(
            f"| {row['model']} | {row['layer']} | {row['image_size']} px | {row['floor_s']:.1f} | "
            f"{row['seconds']:.1f} | {row['overhead']:+.0%} | {brainscore} | {speedup} | {row['peak_rss_mb']:.0f} |"
        )
    return "\n".join(lines) + "\n"
