"""`codesign compress`: store layers in one format and report their sizes."""

from __future__ import annotations

import argparse

from codesign.experiments.cli.command import (
    Subparsers,
    add_command,
    add_json_option,
    add_spec_option,
    add_workers_option,
    set_workers,
    write_json,
)
from codesign.experiments.jobs.compress import (
    MODELS,
    compress_json,
    compress_layers,
    load_layers,
)
from codesign.experiments.jobs.tables import STORAGE_HEADER, extras_table, render, storage_row
from codesign.models.registry import FORMATS, get_format
from codesign.models.report import total_report
from codesign.models.specs import parse_spec


def add_source_options(parser: argparse.ArgumentParser) -> None:
    """The layers to work on: exactly one of ``--weights``, ``--synthetic``, ``--model``,
    with the distribution and seed of synthetic weights."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--weights", metavar="FILE", help=".npz or .safetensors file: every 2-D array is a layer"
    )
    source.add_argument("--synthetic", metavar="MxN", help="one synthetic layer of M rows, N cols")
    source.add_argument(
        "--model", choices=MODELS, help="a built-in trained model (digits: 64-300-100-10 MLP)"
    )
    parser.add_argument(
        "--distribution",
        default="gaussian",
        choices=["gaussian", "laplacian"],
        help="distribution of --synthetic weights",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of --synthetic weights")


def load_source(args: argparse.Namespace) -> list:
    """The layers :func:`add_source_options` names."""
    return load_layers(args.weights, args.synthetic, args.model, args.distribution, args.seed)


def run(args: argparse.Namespace) -> int:
    fmt = get_format(args.format)
    spec = parse_spec(args.format, args.spec)
    layers = load_source(args)
    set_workers(args.workers)
    reports = compress_layers(layers, fmt, spec, args.sparsity, args.quantize)
    rows = [storage_row(r) for r in reports] + [storage_row(total_report(reports))]
    print(f"format {fmt.name}  spec {spec.to_json()}  sparsity {args.sparsity}")
    print(render(STORAGE_HEADER, rows))
    extras = extras_table(reports)
    if extras:
        print(extras)
    if args.json:
        write_json(args.json, compress_json(fmt.name, spec, reports, args.sparsity))
    return 0


def register(subparsers: Subparsers) -> None:
    p = add_command(
        subparsers,
        "compress",
        "store layers in one format and report sizes",
        "Store each layer in one format, decode it back, and print one row per layer and a "
        "total:\nnon-zeros, index and value bits per weight, total bits, the ratio against "
        "dense and against\nCSR storage of the same non-zeros, and whether decoding "
        "reproduced the layer exactly.\n--sparsity prunes first with the structure the "
        "format stores (magnitude; N:M groups for nm;\nb×b blocks for block; the Viterbi "
        "or LBI search for viterbi and lbi).",
        [
            "codesign compress --format csr --model digits --sparsity 0.9",
            "codesign compress --format nm --spec n=2 --spec m=4 "
            "--weights examples/layer.safetensors --sparsity 0.5 --quantize 8",
        ],
        run,
    )
    p.add_argument("--format", required=True, choices=list(FORMATS), help="storage format")
    add_spec_option(p, "spec field of the format (codesign formats lists them)")
    add_source_options(p)
    p.add_argument(
        "--sparsity",
        type=float,
        help="prune to this fraction of zeros, in [0, 1), before storing "
        "(default: store the weights as they are)",
    )
    p.add_argument(
        "--quantize",
        type=int,
        metavar="BITS",
        help="quantize to signed BITS-bit integers (2..16) before pruning (default: float32)",
    )
    add_json_option(p, "the report")
    add_workers_option(p)
