"""The `codesign` command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from experiments.compress import compress_json, compress_layers, load_layers
from experiments.tables import STORAGE_HEADER, render, storage_row
from models.registry import FORMATS, get_format
from models.report import total_report
from models.specs import parse_spec


def _cmd_formats(args: argparse.Namespace) -> int:
    for fmt in FORMATS.values():
        print(f"{fmt.name}: {fmt.summary}")
        rows = fmt.spec_type.field_help()
        if not rows:
            print("    (no spec fields)")
        for field, default, allowed in rows:
            print(f"    {field} = {default}    allowed: {allowed}")
    return 0


def _cmd_compress(args: argparse.Namespace) -> int:
    fmt = get_format(args.format)
    spec = parse_spec(args.format, args.spec)
    layers = load_layers(args.weights, args.synthetic, args.model, args.distribution, args.seed)
    reports = compress_layers(layers, fmt, spec, args.sparsity, args.quantize)
    rows = [storage_row(r) for r in reports] + [storage_row(total_report(reports))]
    print(f"format {fmt.name}  spec {spec.to_json()}  sparsity {args.sparsity}")
    print(render(STORAGE_HEADER, rows))
    if args.json:
        doc = compress_json(fmt.name, spec, reports, args.sparsity)
        _write_json(args.json, doc)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from experiments.demo import run_demo

    run_demo(Path(args.out))
    return 0


def _write_json(path: str, doc: dict) -> None:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {out}")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `codesign` and its subcommands."""
    parser = argparse.ArgumentParser(
        prog="codesign",
        description="Co-design of compressed sparse weight formats and their decoders.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("formats", help="list the storage formats and their spec fields")
    p.set_defaults(func=_cmd_formats)

    p = sub.add_parser("compress", help="store layers in one format and report sizes")
    p.add_argument("--format", required=True, choices=list(FORMATS), help="storage format")
    p.add_argument("--spec", action="append", metavar="KEY=VALUE", help="spec field (repeatable)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--weights", metavar="FILE", help=".npz or .safetensors weights file")
    src.add_argument("--synthetic", metavar="MxN", help="one synthetic layer of this shape")
    src.add_argument("--model", choices=["digits"], help="a built-in trained model")
    p.add_argument(
        "--distribution",
        default="gaussian",
        choices=["gaussian", "laplacian"],
        help="distribution of --synthetic weights",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of --synthetic weights")
    p.add_argument(
        "--sparsity", type=float, help="prune to this fraction of zeros, in [0, 1) first"
    )
    p.add_argument(
        "--quantize",
        type=int,
        metavar="BITS",
        help="quantize to signed BITS-bit integers (2..16) before pruning",
    )
    p.add_argument("--json", metavar="OUT", help="also write the report as JSON")
    p.set_defaults(func=_cmd_compress)

    p = sub.add_parser("demo", help="the end-to-end tour on the digits MLP")
    p.add_argument("--out", default="results/demo", help="output directory")
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: bad input prints one line on stderr and exits with code 2."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError) as exc:
        print(f"codesign: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
