"""The `codesign` command: the parser assembled from one module per subcommand."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from codesign import __version__
from codesign.experiments.cli import (
    compress,
    demo,
    formats,
    hardware,
    prune,
    simulate,
    sweep,
    weights,
)
from codesign.experiments.cli.command import HelpFormatter
from codesign.experiments.sweeps.stopping import Stopped, stop_on_signals
from codesign.files import check_output

#: The subcommand modules, in the order `codesign --help` lists them; each has
#: ``register(subparsers)``.
COMMANDS = (formats, compress, weights, prune, hardware, simulate, sweep, demo)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `codesign` and its subcommands."""
    parser = argparse.ArgumentParser(
        prog="codesign",
        description="Co-design of compressed sparse weight formats and their decoders: "
        "golden models of the\nformats, Verilog decoders, an accelerator simulator and "
        "sweeps. `codesign COMMAND --help`\ndescribes a command, with an example.",
        epilog="start with: codesign formats; codesign demo runs the whole tour",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: bad input, and an output that cannot be written (checked before the
    work for ``--json``), print one line on stderr and exit with code 2; SIGINT and
    SIGTERM stop the command with one line and code 130 or 143."""
    args = build_parser().parse_args(argv)
    try:
        with stop_on_signals():
            if getattr(args, "json", None):
                check_output(args.json)
            return args.func(args)
    except (ValueError, OSError) as exc:
        print(f"codesign: error: {exc}", file=sys.stderr)
        return 2
    except Stopped as exc:
        print(f"codesign: stopped by {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
