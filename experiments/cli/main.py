"""The `codesign` command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from codesign.experiments.jobs.compress import (
    MODELS,
    compress,
    load_workload,
    render_comparison,
)
from codesign.experiments.jobs.tables import extras_table, render
from codesign.experiments.sweeps.stopping import Stopped, stop_on_signals
from codesign.files import check_output, write_json
from codesign.limits import set_memory_limit
from codesign.models.format import check_layer
from codesign.models.registry import FORMATS, get_format
from codesign.models.specs import parse_spec


def _cmd_formats(args: argparse.Namespace) -> int:
    for fmt in FORMATS.values():
        print(f"{fmt.name}: {fmt.summary}")
        rows = fmt.spec_type.field_help()
        if not rows:
            print("    (no spec fields)")
        for field, default, allowed in rows:
            print(f"    {field} = {default}    allowed: {allowed}")
    return 0


def set_workers(workers: int | None) -> None:
    """Threads the numba encoders use for independent segments, tiles and blocks."""
    import numba

    limit = numba.config.NUMBA_NUM_THREADS
    if workers is None:
        return
    if not 1 <= workers <= limit:
        raise ValueError(f"--workers must be in 1..{limit} (this machine's threads), got {workers}")
    numba.set_num_threads(workers)


def _cmd_compress(args: argparse.Namespace) -> int:
    fmt = get_format(args.format)
    spec = parse_spec(args.format, args.spec)
    workload = load_workload(
        args.weights,
        args.synthetic,
        args.model,
        args.distribution,
        args.seed,
        args.layers,
        check=lambda name, shape: check_layer(name, shape, fmt, spec, args.quantize),
    )
    set_workers(args.workers)
    result = compress(fmt.name, spec, workload, sparsity=args.sparsity, quantize=args.quantize)
    print(render_comparison(result))
    extras = extras_table(result.reports)
    if extras:
        print(extras)
    if args.json:
        _write_json(args.json, result.to_json())
    return 0


def _cmd_prune(args: argparse.Namespace) -> int:
    from codesign.experiments.jobs.prune import prune_command

    set_workers(args.workers)
    doc = prune_command(args.method, args.sparsity, args.spec, args.finetune_epochs, args.seed)
    print(
        f"method {doc['method']} ({doc['format']})  spec {json.dumps(doc['spec'])}  "
        f"sparsity {doc['sparsity']}  kept {doc['kept_fraction']:.4f}"
    )
    tuned = doc["accuracy_finetuned"]
    rows = [
        [
            f"{doc['dense_accuracy']:.4f}",
            f"{doc['accuracy_pruned']:.4f}",
            "-" if tuned is None else f"{tuned:.4f}",
            doc["finetune_epochs"],
            f"{doc['index_bits_per_weight']:.3f}",
            doc["total_bits"],
        ]
    ]
    header = ["acc dense", "acc pruned", "acc tuned", "epochs", "idx b/w", "total bits"]
    print(render(header, rows))
    if "ranks" in doc:
        print(
            f"ranks {doc['ranks']}  params x{doc['param_reduction']:.2f} fewer, "
            f"MACs x{doc['mac_reduction']:.2f} fewer"
        )
    if args.json:
        _write_json(args.json, doc)
    return 0


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _cmd_verilog(args: argparse.Namespace) -> int:
    from codesign.experiments.jobs.hardware import block_spec, check_block
    from codesign.hw.build import write

    block, spec, params = block_spec(args.block, args.spec)
    check_block(block, *block.resolve(spec, params), synth=False)
    v_path, json_path = write(block.name, spec, args.out, **params)
    print(f"wrote {v_path} and {json_path}")
    return 0


def _cmd_synth(args: argparse.Namespace) -> int:
    from codesign.experiments.jobs.hardware import block_spec, check_block
    from codesign.hw.synth import synthesize

    block, spec, params = block_spec(args.block, args.spec)
    spec, full = block.resolve(spec, params)
    warning = check_block(block, spec, full, synth=True).warning(block.name)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    stats = synthesize(block.name, spec, progress=_progress, **params)
    rows = [[cell, count] for cell, count in sorted(stats.cells.items())]
    rows += [["total", stats.total], ["depth (levels)", stats.depth]]
    print(f"block {block.name}  spec {spec.to_json()}  params {json.dumps(params)}")
    print(render(["cell", "count"], rows))
    if args.json:
        _write_json(
            args.json,
            {"block": block.name, "spec": spec.to_dict(), "params": params, **stats.to_dict()},
        )
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    from codesign.experiments.jobs.simulate import render_report, run_config
    from codesign.sim.config import load_config

    doc = run_config(load_config(args.config), synth=not args.no_synth)
    print(render_report(doc))
    if args.json:
        _write_json(args.json, doc)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from codesign.experiments.cli.demo import run_demo

    run_demo(Path(args.out))
    return 0


def _write_json(path: str, doc: dict) -> None:
    print(f"wrote {write_json(path, doc)}")


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
    src.add_argument(
        "--model",
        choices=list(MODELS),
        help="a built-in model: the trained digits MLP, or an example model file",
    )
    p.add_argument(
        "--layers",
        action="append",
        metavar="GLOB",
        help="select tensors by name pattern (repeatable); the others are skipped",
    )
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
    p.add_argument(
        "--workers", type=int, help="threads for the encoders' parallel segments (default: all)"
    )
    p.set_defaults(func=_cmd_compress)

    from codesign.experiments.jobs.prune import METHODS

    p = sub.add_parser("prune", help="prune the digits MLP, fine-tune, report accuracy")
    p.add_argument("--model", choices=["digits"], default="digits", help="the model to prune")
    p.add_argument("--method", required=True, choices=list(METHODS))
    p.add_argument("--sparsity", type=float, help="fraction of weights pruned, in [0, 1)")
    p.add_argument(
        "--spec",
        action="append",
        metavar="KEY=VALUE",
        help="spec field of the method's format (repeatable)",
    )
    p.add_argument(
        "--finetune-epochs",
        type=int,
        default=10,
        help="masked fine-tuning epochs (trp: training epochs)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, help="encoder threads (default: all)")
    p.add_argument("--json", metavar="OUT", help="also write the result as JSON")
    p.set_defaults(func=_cmd_prune)

    from codesign.hw.blocks import BLOCKS

    for command, func, text in (
        ("verilog", _cmd_verilog, "generate a decoder block's Verilog and JSON sidecar"),
        ("synth", _cmd_synth, "Yosys synthesis statistics of a decoder block"),
    ):
        p = sub.add_parser(command, help=text)
        p.add_argument("block", choices=list(BLOCKS))
        p.add_argument(
            "--spec",
            action="append",
            metavar="KEY=VALUE",
            help="spec field or block parameter (repeatable)",
        )
        if command == "verilog":
            p.add_argument("-o", "--out", required=True, metavar="DIR", help="output directory")
        else:
            p.add_argument("--json", metavar="OUT", help="also write the statistics as JSON")
        p.set_defaults(func=func)

    p = sub.add_parser("simulate", help="simulate layers on the sparse accelerator (SimPy)")
    p.add_argument("config", help="YAML configuration (see experiments/configs/sim_*.yaml)")
    p.add_argument("--json", metavar="OUT", help="also write every figure as JSON")
    p.add_argument(
        "--no-synth",
        action="store_true",
        help="skip synthesis: charge decoders per active cycle instead of per cell",
    )
    p.set_defaults(func=_cmd_simulate)

    from codesign.experiments.cli.sweep import add_commands

    add_commands(sub)

    p = sub.add_parser("demo", help="the end-to-end tour on the digits MLP")
    p.add_argument("--out", default="results/demo", help="output directory")
    p.set_defaults(func=_cmd_demo)
    for p in (parser, *sub.choices.values()):
        p.add_argument(
            "--max-memory",
            metavar="SIZE",
            default=argparse.SUPPRESS,
            help="refuse work estimated to need more memory than SIZE (e.g. 4G, 512M, 50%%; "
            "default: 75%% of this machine's memory)",
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: bad input, work that would need more memory than ``--max-memory``
    (:mod:`codesign.limits`), and an output that cannot be written (checked before the
    work for ``--json``), print one line on stderr and exit with code 2; SIGINT and
    SIGTERM stop the command with one line and code 130 or 143."""
    args = build_parser().parse_args(argv)
    try:
        if hasattr(args, "max_memory"):
            set_memory_limit(args.max_memory)
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
