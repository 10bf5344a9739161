"""Model cost on CPU at 64x64: each component beside the 3x3 convolution on the same input, and ResNet-50 steps.

(1) forward+backward of each component and of a 3x3 convolution on the same input (medians), the locally connected
layer at batch 32 and 128; (2) the train step (forward, backward, SGD step) and peak memory of ResNet-50: the
baseline, each single-component model and the composite ``all``, eager, and ``all`` compiled with
``torch.compile``. Every model runs in a fresh subprocess so that its peak RSS is its own, in round-robin passes
(the fastest pass counts); ratios are to the baseline measured in the same run.
"""

import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import torch
from torch import nn

from neurov1.components import (
    CenterSurround,
    DivisiveNormalization,
    LearnedFixation,
    LocallyConnected2d,
    PolarTransform,
    SaliencyFixation,
    TunedNormalization,
)
from neurov1.models import build_network
from neurov1.models.sites import preset_components
from neurov1.utils.config import load_option

BATCH = 32
IMAGE_SIZE = 64
ALL = dict.fromkeys(preset_components("all"))  # +model/components=all
POLAR_NODE = {"_target_": "neurov1.components.PolarTransform", "_partial_": True, "site": "stem_pool"}
# conf/fixation/learned_heatmap.yaml: the learned head that met the demo study's bar
LEARNED_HEATMAP = dict(load_option("fixation", "learned_heatmap")["fixation"])
MODELS: dict[str, dict[str, dict]] = {
    "baseline": {},
    "center_surround": {"center_surround": {}},
    "local_rf": {"local_rf": {}},
    "divisive_norm": {"divisive_norm": {}},
    "tuned_norm": {"tuned_norm": {}},
    "cortical_mag": {"cortical_mag": {}},
    "all": ALL,
    "all (compiled)": ALL,
    # where to look: the fixation policies of the cortical magnification (fixation=<policy>) on the composite model
    **{
        f"all, fixation={policy}": {
            **ALL,
            "cortical_mag": {
                **POLAR_NODE,
                "fixation": {
                    "_target_": f"neurov1.components.fixation.{policy.capitalize()}Fixation",
                    "_partial_": True,
                },
            },
        }
        for policy in ("learned", "saliency", "given")
    },
    "all, fixation=learned_heatmap": {**ALL, "cortical_mag": {**POLAR_NODE, "fixation": LEARNED_HEATMAP}},
}
COMPILED = {"all (compiled)"}


def median_seconds(step: Callable[[], None], repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def forward_backward(module: nn.Module, shape: tuple[int, ...]) -> Callable[[], None]:
    inputs = torch.randn(shape).abs().requires_grad_(True)

    def step() -> None:
        module.zero_grad(set_to_none=True)
        inputs.grad = None
        module(inputs).sum().backward()

    return step


def component_rows(repeats: int) -> list[dict]:
    """Each component's forward+backward beside a 3x3 conv (C->C, padding 1) on the same input (paper's sizes)."""
    cases = [
        ("center-surround (DoG on 16 of 64 ch)", CenterSurround(64), (BATCH, 64, 16, 16)),
        ("locally connected 3x3, 64->64", LocallyConnected2d(64, 64, 16), (BATCH, 64, 16, 16)),
        ("locally connected 3x3, 64->64", LocallyConnected2d(64, 64, 16), (4 * BATCH, 64, 16, 16)),
        ("divisive normalization, 256 ch", DivisiveNormalization(256), (BATCH, 256, 16, 16)),
        ("tuned normalization, 256 ch", TunedNormalization(256), (BATCH, 256, 16, 16)),
        ("polar transform 32->16", PolarTransform(32, 16), (BATCH, 64, 32, 32)),
        (
            "polar transform 32->16, learned fixation",
            PolarTransform(32, 16, fixation=LearnedFixation, channels=64),
            (BATCH, 64, 32, 32),
        ),
        (
            "polar transform 32->16, saliency fixation",
            PolarTransform(32, 16, fixation=SaliencyFixation),
            (BATCH, 64, 32, 32),
        ),
    ]
    rows = []
    for name, module, shape in cases:
        conv = nn.Conv2d(shape[1], shape[1], 3, padding=1, bias=False)
        component_s = median_seconds(forward_backward(module, shape), repeats)
        conv_s = median_seconds(forward_backward(conv, shape), repeats)
        rows.append(
            {
                "component": name,
                "input": "x".join(map(str, shape)),
                "ms": component_s * 1e3,
                "conv3x3_ms": conv_s * 1e3,
                "ratio": component_s / conv_s,
            }
        )
    return rows


def peak_rss_mb() -> float:
    """This process's peak resident memory (Linux: VmHWM, which exec resets, unlike getrusage's maxrss)."""
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def train_step_child(name: str, steps: int) -> dict:
    """Run in a subprocess: median train-step time and peak RSS of one ResNet-50 variant (compile time apart)."""
    torch.manual_seed(0)
    model = build_network("resnet50", num_classes=1000, input_size=IMAGE_SIZE, components=MODELS[name]).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-5)
    images, labels = torch.randn(BATCH, 3, IMAGE_SIZE, IMAGE_SIZE), torch.randint(0, 1000, (BATCH,))
    loss_fn = nn.CrossEntropyLoss()
    if name in COMPILED:
        model.compile()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(images), labels).backward()
        optimizer.step()

    started = time.perf_counter()
    step()
    first_s = time.perf_counter() - started
    seconds = median_seconds(step, steps, warmup=1)
    return {"model": name, "step_s": seconds, "first_step_s": first_s, "peak_rss_mb": peak_rss_mb()}


def train_step_rows(steps: int, rounds: int, extra_args: list[str], names: list[str] | None = None) -> list[dict]:
    """Each model (``names``: those of :data:`MODELS`, baseline always) in its own subprocess, ``rounds`` times
    round-robin; the fastest round counts (least noise)."""
    rows: dict[str, dict] = {}
    chosen = ["baseline", *[name for name in (names or MODELS) if name != "baseline"]]
    for round_index in range(rounds):
        for name in chosen:
            command = [sys.executable, "-m", "neurov1.bench", "--child", name, "--steps", str(steps), *extra_args]
            result = subprocess.run(command, check=True, capture_output=True, text=True)
            row = json.loads(result.stdout.strip().splitlines()[-1])
            print(f"  round {round_index + 1}/{rounds} {name}: {row['step_s']:.3f} s/step", file=sys.stderr, flush=True)
            best = rows.setdefault(name, row)
            best["step_s"] = min(best["step_s"], row["step_s"])
            best["first_step_s"] = min(best["first_step_s"], row["first_step_s"])
            best["peak_rss_mb"] = max(best["peak_rss_mb"], row["peak_rss_mb"])
    baseline = rows["baseline"]
    for row in rows.values():
        row["time_ratio"] = row["step_s"] / baseline["step_s"]
        row["memory_ratio"] = row["peak_rss_mb"] / baseline["peak_rss_mb"]
    return list(rows.values())


def markdown(component: list[dict], train: list[dict], tuned_allocator: bool) -> str:
    allocator = "large blocks kept in the heap" if tuned_allocator else "glibc default"
    lines = [
        f"Component forward+backward, CPU ({torch.get_num_threads()} threads, allocator: {allocator}), median",
        "",
        "| component | input | time (ms) | 3x3 conv, same input (ms) | ratio |",
        "|---|---|---|---|---|",
        *[
            f"| {r['component']} | {r['input']} | {r['ms']:.1f} | {r['conv3x3_ms']:.1f} | {r['ratio']:.2f}x |"
            for r in component
        ],
        "",
        f"ResNet-50 train step (forward, backward, SGD step), {IMAGE_SIZE}x{IMAGE_SIZE}, batch {BATCH}",
        "",
        "| model | step (s) | vs. baseline | first step (s) | peak RSS (MB) | vs. baseline |",
        "|---|---|---|---|---|---|",
        *[
            f"| {r['model']} | {r['step_s']:.3f} | {r['time_ratio']:.2f}x | {r['first_step_s']:.1f} | "
            f"{r['peak_rss_mb']:.0f} | {r['memory_ratio']:.2f}x |"
            for r in train
        ],
    ]
    return "\n".join(lines) + "\n"
