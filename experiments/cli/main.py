"""The `codesign` command: the parser assembled from one module per subcommand."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from codesign.experiments.cli.command import HelpFormatter, Parser
from codesign.experiments.sweeps.stopping import Stopped, stop_on_signals
from codesign.files import check_output
from codesign.limits import set_memory_limit

#: The subcommand modules of :mod:`codesign.experiments.cli`, in the order `codesign
#: --help` lists them, with the commands each registers (``register(subparsers)``).
COMMANDS = {
    "formats": ("formats",),
    "compress": ("compress",),
    "weights": ("weights",),
    "prune": ("prune",),
    "hardware": ("verilog", "synth"),
    "simulate": ("simulate",),
    "sweep": ("sweep", "report"),
    "demo": ("demo",),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser of `codesign` and its subcommands; with ``command`` (a
    subcommand's name) only that subcommand's, so that running one command imports
    what it needs and nothing the others need (numba, Amaranth, jsonschema, ...)."""
    parser = Parser(
        prog="codesign",
        description="Co-design of compressed sparse weight formats and their decoders: "
        "golden models of the\nformats, Verilog decoders, an accelerator simulator and "
        "sweeps. `codesign COMMAND --help`\ndescribes a command, with an example.",
        epilog="start with: codesign formats; codesign demo runs the whole tour",
        formatter_class=HelpFormatter,
    )
    if command is None:
        from codesign import __version__

        parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module, names in COMMANDS.items():
        if command is None or command in names:
            importlib.import_module(f"codesign.experiments.cli.{module}").register(sub)
    for p, dest in (
        (parser, "max_memory"),
        *((c, "command_max_memory") for c in sub.choices.values()),
    ):
        p.add_argument(
            "--max-memory",
            dest=dest,
            metavar="SIZE",
            help="refuse work estimated to need more memory than SIZE (e.g. 4G, 512M, 50%%; "
            "unset: 75%% of this machine's memory)",
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: bad input, work that would need more memory than ``--max-memory``
    (:mod:`codesign.limits`), and an output that cannot be written (checked before the
    work for ``--json``), print one line on stderr and exit with code 2; SIGINT and
    SIGTERM stop the command with one line and code 130 or 143."""
    argv = sys.argv[1:] if argv is None else list(argv)
    named = {name for names in COMMANDS.values() for name in names}
    args = build_parser(argv[0] if argv and argv[0] in named else None).parse_args(argv)
    try:
        limit = args.command_max_memory  # given after the command, else before it
        limit = args.max_memory if limit is None else limit
        if limit is not None:
            set_memory_limit(limit)
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
