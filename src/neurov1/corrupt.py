"""Write Tiny-ImageNet-C style corrupted copies of an image folder (python -m neurov1.corrupt <src> <dst>).

<src> holds <class>/*.(jpg|jpeg|png) images (or <class>/images/*, the Tiny-ImageNet train layout); --demo uses the
demo data's validation crops instead. Each image is converted to RGB and, unless it already is --size x --size,
resized (shorter side, bicubic) and centre-cropped. Every requested corruption and severity is written to
<dst>/<corruption>/<severity>/<class>/<stem>.JPEG at JPEG quality 85 (the Tiny-ImageNet-C convention), and with
--with-clean the clean image to <dst>/clean/<class>/<stem>.JPEG.

Each output's randomness is seeded from (--seed, corruption, severity, class, image position in its class), so the
files are identical for a seed whatever --workers is (and with or without --limit). Files are written atomically
and existing ones are skipped, so an interrupted run resumes where it stopped. Give <src> <dst> before the options
that take several values (--severities, --corruptions).

Frost deviates from Tiny-ImageNet-C: the original blends photographs of frost, which are not available; a seeded
procedural ice texture stands in for them, so frost results are not comparable with the released data.
"""

import argparse
import os
from pathlib import Path

from neurov1.data.corrupted_folder import (
    Settings,
    Summary,
    check_writable,
    demo_source,
    generate,
    list_source,
)
from neurov1.data.image_corruptions import CORRUPTION_GROUPS, CORRUPTIONS, SEVERITIES


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m neurov1.corrupt", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("src", nargs="?", type=Path, help="folder of <class>/ image folders (omit with --demo)")
    parser.add_argument("dst", type=Path, help="output folder")
    parser.add_argument("--demo", action="store_true", help="use the demo data's validation crops as the source")
    parser.add_argument(
        "--severities", nargs="+", type=int, choices=SEVERITIES, default=list(SEVERITIES), help="default: all"
    )
    parser.add_argument(
        "--corruptions",
        nargs="+",
        choices=[*CORRUPTIONS, *CORRUPTION_GROUPS],
        default=list(CORRUPTIONS),
        metavar="NAME",
        help=f"corruptions or groups ({', '.join(CORRUPTION_GROUPS)}); default: all 15: {', '.join(CORRUPTIONS)}",
    )
    parser.add_argument("--seed", type=non_negative_int, default=0, help="base random seed (default: 0)")
    parser.add_argument("--workers", type=positive_int, default=os.cpu_count() or 1, help="parallel processes")
    parser.add_argument("--size", type=positive_int, default=64, help="side of the square images written (px)")
    parser.add_argument("--limit", type=positive_int, help="use only the first N images (sorted) of each class")
    parser.add_argument("--with-clean", action="store_true", help="also write the clean images to <dst>/clean")
    args = parser.parse_args(argv)
    if args.demo and args.src is not None:
        parser.error("give either <src> or --demo, not both")
    if not args.demo and args.src is None:
        parser.error("the source folder <src> is required (or pass --demo)")
    return args


def selected_corruptions(names: list[str]) -> list[str]:
    """The named corruptions and the members of the named groups, in the canonical order."""
    chosen = {member for name in names for member in CORRUPTION_GROUPS.get(name, (name,))}
    return [name for name in CORRUPTIONS if name in chosen]


def main(argv: list[str] | None = None) -> Summary:
    """Command-line entry point; returns what was written."""
    args = parse_args(argv)
    if args.demo:
        check_writable(args.dst)
        images = demo_source(args.limit)
    else:
        images = list_source(args.src, args.dst, args.limit)
        check_writable(args.dst)
    severities = sorted(set(args.severities))
    conditions = tuple((name, severity) for name in selected_corruptions(args.corruptions) for severity in severities)
    settings = Settings(args.dst, conditions, args.seed, args.size, args.with_clean)
    workers = min(args.workers, len(images))
    summary = generate(images, settings, workers)
    print(
        f"Wrote {summary.written} images ({summary.skipped} already present) for {len(images)} source images to "
        f"{args.dst} in {summary.seconds:.1f} s: {summary.written / max(summary.seconds, 1e-9):.1f} images/s "
        f"with {workers} worker(s)."
    )
    return summary


if __name__ == "__main__":
    main()
