"""Paper tables from the results ledger: ``python -m neurov1.report [results_dir] [--out DIR] [--wandb]``.

Writes the tables and plots of :mod:`neurov1.results.paper_tables` (``report.md``, ``report.csv``, ``tables/``,
``report.png``, ``v1_groups_vs_baseline.png``) into ``<results_dir>/report`` and prints ``report.md``; ``--wandb``
logs the same tables and plots to W&B (offline when it must).
"""

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from neurov1.results.paper_tables import build_report, slug
from neurov1.utils.cli import errors_exit


def log_to_wandb(report: dict[str, Any], results_dir: Path, project: str, mode: str) -> str:
    """Log every table (as a W&B table) and plot to one W&B run of job type ``report``; returns its folder."""
    import wandb

    from neurov1.training.loggers import wandb_mode

    mode = wandb_mode(mode, results_dir, key="--wandb-mode")
    run = wandb.init(project=project, job_type="report", name=f"report-{results_dir.name}", dir=results_dir, mode=mode)
    for table in report["tables"]:
        run.log({slug(table.title): wandb.Table(columns=table.header, data=table.rows)})
    for key in ("plot", "heat_map"):
        if key in report["paths"]:
            run.log({key: wandb.Image(str(report["paths"][key]))})
    folder = run.dir
    run.finish()
    return folder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results_dir", nargs="?", type=Path, default=Path("outputs/results"))
    parser.add_argument("--out", type=Path, help="output folder (default: <results_dir>/report)")
    parser.add_argument("--wandb", action="store_true", help="also log the tables and plots to W&B")
    parser.add_argument("--wandb-project", default="neurov1")
    parser.add_argument("--wandb-mode", default="auto", help="auto (offline without key/network) | online | offline")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    with errors_exit():
        report = build_report(args.results_dir, args.out or args.results_dir / "report")
    print(report["paths"]["markdown"].read_text())
    files = [path for value in report["paths"].values() for path in (value if isinstance(value, list) else [value])]
    print(f"Written: {', '.join(map(str, files))}", file=sys.stderr)
    if args.wandb:
        folder = log_to_wandb(report, args.results_dir, args.wandb_project, args.wandb_mode)
        print(f"Logged to W&B: {folder}", file=sys.stderr)


if __name__ == "__main__":
    main()
