"""`codesign sweep` and `codesign report`: their arguments and handlers.

:func:`add_commands` registers both on the `codesign` parser's subcommands
(:func:`codesign.experiments.cli.main.build_parser`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from codesign.experiments.reports.sweep_report import ReportFiles


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
        print(
            f"sweep {config['name']}: {len(points)} points, stages "
            f"{', '.join(config['stages'])}, on {where}; store {store.path}",
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


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``sweep`` and ``report`` on ``subparsers`` (from ``add_subparsers``)."""
    p = subparsers.add_parser(
        "sweep", help="run a grid / random sweep of points into a resumable results store"
    )
    p.add_argument("config", help="YAML sweep config (see experiments/configs/sweep_*.yaml)")
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
    p.set_defaults(func=cmd_sweep)

    p = subparsers.add_parser("report", help="CSV, plots and a Markdown summary of a sweep")
    p.add_argument("dir", help="sweep directory (the --out of codesign sweep)")
    p.add_argument(
        "--out",
        metavar="DIR",
        help="write the report here (default: DIR; another config sharing the store: "
        "its subfolder NAME)",
    )
    p.set_defaults(func=cmd_report)
