"""Benchmarks: ``python -m neurov1.bench [model] [data] [probe] [gpu]`` (``make bench``: model, data and probe;
``make bench-gpu``).

- ``model``: component and ResNet-50 train-step cost on CPU, eager and compiled (:mod:`neurov1.bench.model`);
- ``data``: images/s per worker core of the data paths (:mod:`neurov1.bench.data`);
- ``probe``: the V1 probe against its floor and against Brain-Score (:mod:`neurov1.bench.probe`);
- ``gpu``: the GPU check, data with all cores and end-to-end training (:mod:`neurov1.bench.gpu`).

Tables are printed as markdown and written to ``<out>/bench[-<what>].md`` and ``.json``.
"""

import argparse
import json
import sys
from pathlib import Path

from neurov1.bench import data, gpu, model, probe
from neurov1.utils.io import write_json_atomic, write_text_atomic
from neurov1.utils.runtime import keep_large_allocations_in_heap

WHAT = ("model", "data", "probe", "gpu")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="*", help=f"what to measure, of {', '.join(WHAT)} (default: model data probe)")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench"), help="folder for the tables and JSON")
    parser.add_argument("--repeats", type=int, default=20, help="model: timed repeats per component")
    parser.add_argument("--steps", type=int, default=6, help="model: timed train steps; gpu: timed steps")
    parser.add_argument("--rounds", type=int, default=3, help="model, data: round-robin passes")
    parser.add_argument("--root", type=Path, help="data: an ImageNet-style folder (default: a synthetic one)")
    parser.add_argument("--images", type=int, default=600, help="data, gpu: images per path")
    parser.add_argument("--device", default="cuda", help="gpu: the device (cpu for a dry run)")
    parser.add_argument("--batch", type=int, default=256, help="gpu: batch size")
    parser.add_argument("--warmup", type=int, default=20, help="gpu: untimed steps first (compilation, workers)")
    parser.add_argument("--no-compile", action="store_true", help="gpu: eager models only")
    parser.add_argument("--large", action="store_true", help="probe: also layer1 at 224 px and layer2 (minutes)")
    parser.add_argument("--models", nargs="+", choices=list(model.MODELS), help="model: only these train steps")
    parser.add_argument("--child", choices=list(model.MODELS), help=argparse.SUPPRESS)
    parser.add_argument("--probe-child", help=argparse.SUPPRESS)
    parser.add_argument(
        "--default-allocator",
        action="store_true",
        help="keep glibc's default mmap threshold (the entry points raise it: see neurov1.utils.runtime)",
    )
    args = parser.parse_args()
    tuned = not args.default_allocator and keep_large_allocations_in_heap()
    if args.child:
        print(json.dumps(model.train_step_child(args.child, args.steps)))
        return
    if args.probe_child:
        name, layer, size = args.probe_child.split("|")
        print(json.dumps(probe.probe_child(name, layer, int(size))))
        return
    unknown = sorted(set(args.what) - set(WHAT))
    if unknown:
        parser.error(f"unknown {unknown}; choose from {', '.join(WHAT)}")
    for what in args.what or ("model", "data", "probe"):
        print(f"Measuring {what} ...", file=sys.stderr, flush=True)
        if what == "model":
            component = model.component_rows(args.repeats)
            extra = ["--default-allocator"] if args.default_allocator else []
            train = model.train_step_rows(args.steps, args.rounds, extra, args.models)
            result = {"tuned_allocator": tuned, "components": component, "train_step": train}
            table = model.markdown(component, train, tuned)
        elif what == "data":
            result = data.data_rows(args.root, args.out / "data", args.images, args.rounds)
            table = data.markdown(result)
        elif what == "probe":
            result = probe.probe_rows(args.large)
            table = probe.markdown(result)
        else:
            result = gpu.gpu_rows(
                args.out / "data", args.device, args.batch, args.steps, args.warmup, not args.no_compile, args.images
            )
            table = gpu.markdown(result)
        print(table, flush=True)
        write_json_atomic(args.out / f"bench-{what}.json", result)
        write_text_atomic(args.out / f"bench-{what}.md", table)


if __name__ == "__main__":
    main()
