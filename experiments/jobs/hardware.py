"""`codesign verilog` and `codesign synth`: generate and synthesize a decoder block.

:func:`block_spec` reads the ``--spec`` items; :func:`check_block` is the pre-flight: a
block whose estimated cells (:data:`CELL_ESTIMATES`) would need more memory than the
limit is refused before it is elaborated, and a synthesis estimated to run longer than
:data:`LONG_SYNTH_SECONDS` gets a warning.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Mapping
from typing import Any

from codesign.hw import viterbi_decompressor, viterbi_search
from codesign.hw.blocks import Block, get_block
from codesign.limits import Need, check_memory, human
from codesign.models.specs import Spec, SpecError, parse_spec, spec_class, spec_items


def block_spec(block_name: str, items: list[str] | None) -> tuple[Block, Spec, dict[str, Any]]:
    """Split ``key=value`` items into the block's spec fields and its other parameters
    (integers); an unknown key names both lists of allowed keys. A block taking several
    formats (:attr:`~codesign.hw.blocks.Block.formats`) reads ``format=NAME`` first
    (default: its ``spec_type``'s)."""
    block = get_block(block_name)
    pairs = spec_items(items)
    format_name = block.spec_type.format_name
    if block.formats:
        chosen = dict(pairs).get("format", format_name)
        if chosen not in block.formats:
            raise SpecError(
                f"block {block_name} format must be one of {', '.join(block.formats)}, "
                f"got {chosen!r}"
            )
        format_name = chosen
        pairs = [(key, raw) for key, raw in pairs if key != "format"]
    spec_fields = {f.name for f in dataclasses.fields(spec_class(format_name))}
    fields, params = [], {}
    for key, raw in pairs:
        if key in spec_fields:
            fields.append(f"{key}={raw}")
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
    return block, parse_spec(format_name, fields), params


def _viterbi_search_cells(spec: Any, params: Mapping[str, Any]) -> int:
    cells = viterbi_search.expected_cells(spec, params["score_bits"], params["max_segment"])
    return cells["gates"] + cells["dff"]


def _viterbi_cells(spec: Any, params: Mapping[str, Any]) -> int:
    cells = viterbi_decompressor.expected_cells(spec)
    return cells["comb"] + cells["dff"]


#: Estimated generic cells of a block from its spec and parameters, and the parameters
#: that shrink it. The Viterbi blocks count their parts (``expected_cells``); the others
#: are linear fits of measured syntheses, rounded up (xor: 846 cells at n_out = 64,
#: 1,341 at 128; lbi: 1,549 at tile_cols = 64, 3,085 at 128; relative: 143).
CELL_ESTIMATES: dict[str, tuple[Callable[[Any, Mapping[str, Any]], int], str]] = {
    "viterbi_search": (_viterbi_search_cells, "max_segment, n_ff or n_in"),
    "viterbi": (_viterbi_cells, "n_in + n_ff or n_out"),
    "xor": (
        lambda spec, params: (
            400
            + spec.n_out * (spec.n_s * spec.n_in // 2 + 4)
            + (spec.n_s - 1) * spec.n_in
            + 4 * params["block_bits"]
        ),
        "n_out, n_s or n_in",
    ),
    "lbi": (lambda spec, params: 3 * spec.rank * spec.tile_cols + 64, "tile_cols or rank"),
    "relative": (
        lambda spec, params: (
            10 * (params["n_cols"].bit_length() + params["value_bits"] + params["row_bits"])
        ),
        "n_cols",
    ),
}
#: Peak bytes per estimated cell of elaborating a block and writing its Verilog, and of
#: its generic synthesis (viterbi_search at threshold 3: 380,000 cells, 190 MB in all
#: to write the Verilog, 1.3 GB and 681 s to synthesize; at max_segment 16: 139,000
#: cells, 660 MB to synthesize; at max_segment 65,536: 66 million cells, 2.3 GB and
#: 235 s to write the Verilog); rounded up.
VERILOG_BYTES_PER_CELL = 64
SYNTH_BYTES_PER_CELL = 5 * 1024
#: Seconds of synthesis per estimated cell (1.8 ms measured on an idle core, 7 ms on
#: a loaded one) and the estimated time above which `synth` warns before it starts.
SYNTH_SECONDS_PER_CELL = 0.003
LONG_SYNTH_SECONDS = 60.0


@dataclasses.dataclass(frozen=True)
class BlockEstimate:
    """What building a block is expected to take: ``cells`` (generic cells), ``nbytes``
    (peak memory) and ``seconds`` (synthesis time; 0 for Verilog only)."""

    cells: int
    nbytes: int
    seconds: float

    def warning(self, block: str, target: str | None = None) -> str | None:
        """The line `synth` prints before a synthesis estimated to take longer than
        :data:`LONG_SYNTH_SECONDS` (None otherwise); with an FPGA ``target``, place and
        route come on top and print nothing until they end."""
        if self.seconds <= LONG_SYNTH_SECONDS:
            return None
        minutes, memory = math.ceil(self.seconds / 60), human(self.nbytes)
        head = f"note: block {block} is an estimated {self.cells:,} cells; its synthesis may "
        if target is None:
            return (
                f"{head}take about {minutes} min and {memory} (progress follows every few seconds)"
            )
        return (
            f"{head}take more than {minutes} min and {memory} for {target}, place and route "
            f"included; nothing is printed until they end (a smaller spec is much faster)"
        )


def check_block(block: Block, spec: Spec, params: Mapping[str, Any], synth: bool) -> BlockEstimate:
    """The pre-flight of generating (``synth`` False) or synthesizing a block with
    ``spec`` and its complete ``params``: refused (:class:`~codesign.limits.ResourceError`)
    when its estimated cells need more memory than the limit. A block without an
    estimate in :data:`CELL_ESTIMATES` passes with zeros."""
    if block.name not in CELL_ESTIMATES:
        return BlockEstimate(0, 0, 0.0)
    estimate, lower = CELL_ESTIMATES[block.name]
    cells = int(estimate(spec, params))
    per_cell = SYNTH_BYTES_PER_CELL if synth else VERILOG_BYTES_PER_CELL
    what = "synthesizing" if synth else "generating the Verilog of"
    need = Need(cells * per_cell, f"an estimated {cells:,} cells", lower)
    nbytes = check_memory(f"{what} block {block.name}", [need])
    return BlockEstimate(cells, nbytes, cells * SYNTH_SECONDS_PER_CELL if synth else 0.0)


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
    notes = ["LUTs: 4-input LUT cells after synthesis (a carry cell counts as its 2 LUTs)"]
    notes += [
        f"{bel} used: {BEL_MEANINGS[bel]}" for bel in stats.utilization if bel in BEL_MEANINGS
    ]
    text = "\n".join(
        [
            block_line(block_name, stats.spec, stats.params),
            f"target {stats.device} (yosys {stats.target} synthesis, nextpnr place and route)",
            render(["figure", "value"], rows),
            *notes,
        ]
    )
    return text, stats.to_dict()


#: What nextpnr's utilization of a site type counts, where it differs from the cells
#: counted after synthesis.
BEL_MEANINGS = {
    "TRELLIS_COMB": "the LUT sites nextpnr placed: the LUTs plus the pass-through LUTs "
    "its packer adds",
    "ICESTORM_LC": "the logic cells nextpnr placed, each a LUT, a flip-flop or both",
}


def block_line(block: str, spec: Mapping[str, Any], params: Mapping[str, Any]) -> str:
    """The line naming a built block: its complete spec and parameters, keys sorted."""
    return (
        f"block {block}  spec {json.dumps(spec, sort_keys=True)}  "
        f"params {json.dumps(params, sort_keys=True)}"
    )
