"""`codesign sweep` and `codesign report`: their arguments and handlers."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from codesign.experiments.reports.sweep_report import ReportFiles

from codesign.experiments.cli.command import Subparsers, add_command

#: Exit code of a sweep stopped by Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run (or resume) the sweep of ``args.config`` into ``args.out``; with
    ``args.report``, then write its report there."""
    from codesign.experiments.sweeps.config import load_config, plan
    from codesign.experiments.sweeps.runner import run_sweep
    from codesign.experiments.sweeps.store import Store, code_version

    if args.scheduler is not None and args.workers is not None:
        raise ValueError(
            "--workers sets the local processes; with --scheduler the cluster's workers "
            "run the points: give one of them"
        )
    config = load_config(args.config)
    out = Path(args.out or Path("results") / "sweeps" / config["name"])
    code = code_version()
    points = plan(config, code)
    with Store(out) as store, store.lock(config["name"], args.wait, _waiting):
        store.set_sweep(config, points, code)
        where = args.scheduler or f"{args.workers or 'all'} local worker(s)"
        stages = dict.fromkeys(stage for _, point in points for stage in point["stages"])
        print(
            f"sweep {config['name']}: {len(points)} points, stages "
            f"{', '.join(stages or config['stages'])}, on {where}; store {store.path}",
            flush=True,
        )
        summary = run_sweep(
            points,
            store,
            code,
            workers=args.workers,
            scheduler=args.scheduler,
            retry_failed=args.retry_failed,
            progress=not args.no_progress,
        )
    print(
        f"done {summary.reused + summary.done} of {summary.points} "
        f"({summary.done} now, {summary.reused} from earlier runs), "
        f"failed {summary.failed + summary.skipped_failed}"
        + (f" ({summary.skipped_failed} not retried)" if summary.skipped_failed else "")
        + f", pending {summary.pending}"
    )
    if summary.skipped_failed:
        print("failed points are kept as recorded; rerun with --retry-failed to run them again")
    if summary.interrupted:
        print(
            f"interrupted: committed rows are kept; rerun the same command to resume "
            f"({summary.pending} points left)",
            file=sys.stderr,
        )
        return 128 + summary.interrupted
    if args.report:
        from codesign.experiments.reports.sweep_report import write_report

        _print_report(write_report(out, None, config["name"]))
    else:
        print(f"next: codesign report {out}")
    return 0


def _waiting(holder: str) -> None:
    print(f"waiting: the store is in use by {holder}", file=sys.stderr, flush=True)


def _print_report(files: ReportFiles) -> None:
    print(f"wrote {files.csv}")
    for png, svg in files.figures:
        print(f"wrote {png} and {svg}")
    print(f"wrote {files.summary}")


def cmd_report(args: argparse.Namespace) -> int:
    """Write the CSV, plots and Markdown summary of each config run in ``args.dir``."""
    from codesign.experiments.reports.sweep_report import write_reports

    for files in write_reports(args.dir, args.out):
        _print_report(files)
    return 0


def register(subparsers: Subparsers) -> None:
    """Register ``sweep`` and ``report`` on ``subparsers`` (from ``add_subparsers``)."""
    p = add_command(
        subparsers,
        "sweep",
        "run a grid / random sweep of points into a resumable results store",
        "Expand a sweep config (grid and random samples over spec fields, workloads and "
        "architecture\nparameters) into points, run each point's stages (compress, prune, "
        "synth, simulate) on a\nprocess pool or a dask.distributed cluster, and keep one "
        "row per point in an SQLite store\nkeyed by the point and the code version: an "
        "interrupted sweep resumes where it stopped.\nConfig keys: docs/sweeps.md.",
        ["codesign sweep experiments/configs/sweep_small.yaml --report"],
        cmd_sweep,
        "on a dask.distributed cluster: codesign sweep CONFIG --scheduler tcp://HOST:8786",
    )
    p.add_argument("config", help="YAML sweep config (examples: experiments/configs/sweep_*.yaml)")
    p.add_argument(
        "--workers",
        type=int,
        help="local worker processes (default: all cores; 1 runs in this process)",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on a dask.distributed cluster instead, e.g. tcp://HOST:8786",
    )
    p.add_argument("--out", metavar="DIR", help="sweep directory (default: results/sweeps/NAME)")
    p.add_argument(
        "--retry-failed", action="store_true", help="run again the points recorded as failed"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--wait",
        action="store_true",
        help="when another sweep is writing the same store, wait for it to end "
        "(default: refuse, naming it)",
    )
    p.add_argument(
        "--report",
        action="store_true",
        help="then write the report (CSV, figures, summary.md) into the sweep directory "
        "(DIR/NAME when the directory's first config is another), as `codesign report "
        "DIR` does (not after an interrupted sweep)",
    )

    p = add_command(
        subparsers,
        "report",
        "CSV, plots and a Markdown summary of a sweep",
        "Write a sweep directory's results.csv (one row per point), the figures its config "
        "declares\n(plots/*.png and .svg) and summary.md (counts, comparisons, best points "
        "per objective,\nfigures, failures). Report keys: docs/sweeps.md.",
        ["codesign report results/sweeps/small"],
        cmd_report,
    )
    p.add_argument("dir", help="sweep directory (the --out of codesign sweep)")
    p.add_argument(
        "--out",
        metavar="DIR",
        help="write the report here (default: DIR; another config sharing the store: "
        "its subfolder NAME)",
    )
