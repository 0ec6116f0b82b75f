"""`codesign simulate`: run layers through the SimPy model of the sparse accelerator."""

from __future__ import annotations

import argparse

from codesign.experiments.cli.command import Subparsers, add_command, add_json_option, write_json


def run(args: argparse.Namespace) -> int:
    from codesign.experiments.jobs.simulate import render_report, run_config
    from codesign.sim.config import load_config

    doc = run_config(load_config(args.config), synth=not args.no_synth)
    print(render_report(doc))
    if args.json:
        write_json(args.json, doc)
    return 0


def register(subparsers: Subparsers) -> None:
    p = add_command(
        subparsers,
        "simulate",
        "simulate layers on the sparse accelerator (SimPy)",
        "Run a YAML configuration (architecture, energy table, layers with their format "
        "and spec)\nthrough the SimPy model of the accelerator — DRAM, weight buffer, "
        "decoder units with each\nformat's timing rule, MAC lanes — and print per layer "
        "and in total: cycles, time, GOPS,\nutilizations, stalls, energy by component, pJ "
        "per MAC, decoder cells, and the closed-form\nestimate with the named effect "
        "behind any gap. Configuration keys: docs/simulator.md.",
        ["codesign simulate experiments/configs/sim_viterbi.yaml"],
        run,
    )
    p.add_argument("config", help="YAML configuration (examples: experiments/configs/sim_*.yaml)")
    add_json_option(p, "every figure")
    p.add_argument(
        "--no-synth",
        action="store_true",
        help="skip synthesis: charge decoders per active cycle instead of per cell",
    )
