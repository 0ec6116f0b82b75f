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
    Workload,
    compress,
    load_workload,
    render_comparison,
)
from codesign.experiments.jobs.tables import extras_table
from codesign.models.registry import FORMATS, get_format
from codesign.models.specs import parse_spec


def add_source_options(parser: argparse.ArgumentParser) -> None:
    """The layers to work on: exactly one of ``--weights``, ``--synthetic``, ``--model``,
    with the distribution and seed of synthetic weights."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--weights",
        metavar="FILE",
        help=".npz or .safetensors model file: every tensor gets a role (layer, side, skipped)",
    )
    source.add_argument("--synthetic", metavar="MxN", help="one synthetic layer of M rows, N cols")
    source.add_argument(
        "--model",
        choices=MODELS,
        help="a built-in model: the trained digits MLP (64-300-100-10), or an example model "
        "file (encoder: transformer encoder stack; resnet18: ResNet-18-shaped CNN)",
    )
    parser.add_argument(
        "--layers",
        action="append",
        metavar="GLOB",
        help="select tensors by name pattern (repeatable); the others are listed as skipped",
    )
    parser.add_argument(
        "--distribution",
        default="gaussian",
        choices=["gaussian", "laplacian"],
        help="distribution of --synthetic weights",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of --synthetic weights")


def load_source(args: argparse.Namespace) -> Workload:
    """The workload :func:`add_source_options` names."""
    return load_workload(
        args.weights, args.synthetic, args.model, args.distribution, args.seed, args.layers
    )


def run(args: argparse.Namespace) -> int:
    fmt = get_format(args.format)
    spec = parse_spec(args.format, args.spec)
    workload = load_source(args)
    set_workers(args.workers)
    result = compress(fmt.name, spec, workload, sparsity=args.sparsity, quantize=args.quantize)
    print(render_comparison(result))
    extras = extras_table(result.reports)
    if extras:
        print(extras)
    if args.json:
        write_json(args.json, result.to_json())
    return 0


def register(subparsers: Subparsers) -> None:
    p = add_command(
        subparsers,
        "compress",
        "store layers in one format and report sizes",
        "Store each layer in one format, decode it back, and print one row per layer and the "
        "totals:\nnon-zeros, the sparsity reached, index and value bits per weight, total "
        "bits, the ratio against\ndense and against CSR storage of the same pruned matrix at "
        "the same value precision\n(stated once in the header, with the reference `lossless` "
        "compares with), and whether decoding\nreproduced that reference exactly. Side "
        "tensors (biases, norms) are stored dense and counted\nin the totals; skipped "
        "tensors are listed with the reason. --sparsity prunes first with the\nstructure the "
        "format stores (magnitude; N:M groups for nm; b×b blocks for block; the Viterbi\nor "
        "LBI search for viterbi and lbi); a sparsity the structure cannot reach is refused "
        "with\nthe nearest one named.",
        [
            "codesign compress --format csr --model digits --sparsity 0.9",
            "codesign compress --format nm --spec n=2 --spec m=4 "
            "--weights examples/layer.safetensors --sparsity 0.5 --quantize 8",
            "codesign compress --format csr --model encoder --layers 'encoder.layer.0.*' "
            "--sparsity 0.9",
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
