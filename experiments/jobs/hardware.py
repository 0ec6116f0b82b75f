"""`codesign verilog` and `codesign synth`: generate and synthesize a decoder block."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from codesign.hw.blocks import Block, get_block
from codesign.models.specs import Spec, SpecError, parse_spec


def block_spec(block_name: str, items: list[str] | None) -> tuple[Block, Spec, dict[str, Any]]:
    """Split ``key=value`` items into the block's spec fields and its other parameters
    (integers); an unknown key names both lists of allowed keys."""
    block = get_block(block_name)
    spec_fields = {f.name for f in dataclasses.fields(block.spec_type)}
    spec_items, params = [], {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise SpecError(f"--spec expects key=value, got {item!r}")
        if key in spec_fields:
            spec_items.append(item)
        elif key in block.defaults:
            try:
                params[key] = int(raw)
            except ValueError:
                raise SpecError(
                    f"block {block_name} parameter {key} must be an integer, got {raw!r}"
                ) from None
        else:
            raise SpecError(
                f"block {block_name} has no spec field or parameter {key!r}; spec fields: "
                f"{', '.join(sorted(spec_fields))}; parameters: "
                f"{', '.join(sorted(block.defaults)) or '(none)'}"
            )
    return block, parse_spec(block.spec_type.format_name, spec_items), params


def fpga_report(
    block_name: str, spec: Spec, params: dict[str, Any], target: str
) -> tuple[str, dict[str, Any]]:
    """``codesign synth BLOCK --target T``: place and route the block
    (:func:`codesign.hw.fpga.place_and_route`); the printed table and the JSON
    document."""
    from codesign.experiments.jobs.tables import render
    from codesign.hw.fpga import place_and_route

    stats = place_and_route(block_name, target, spec, **params)
    rows = [
        ["LUTs", stats.luts],
        ["flip-flops", stats.ffs],
        ["RAM cells", stats.memories],
        ["Fmax (MHz)", stats.fmax_mhz],
        *([f"{bel} used", f"{n} of {total}"] for bel, (n, total) in stats.utilization.items()),
    ]
    text = (
        f"block {block_name}  spec {spec.to_json()}  params {json.dumps(params)}\n"
        f"target {stats.device} (yosys {stats.target} synthesis, nextpnr place and route)\n"
        + render(["figure", "value"], rows)
    )
    return text, stats.to_dict()
