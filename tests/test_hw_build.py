"""hw: block registry, Verilog + sidecar generation, synthesis statistics, and an
amaranth.sim check of the relative-index decoder against a slow reference."""

from __future__ import annotations

import json
import random
import re

import pytest
from stream_sim import run_stream

from codesign.hw.blocks import BLOCKS, get_block
from codesign.hw.build import verilog, write
from codesign.hw.relative_decoder import MAX_COLS, MAX_ROW_WRAPS, RelativeDecoder, check_params
from codesign.hw.synth import normalise_cell, synthesize
from codesign.models.specs import CsrSpec, RelativeSpec


def declared_ports(text: str) -> dict[str, tuple[str, int]]:
    """name -> (direction, width) from the module header's declarations, read
    line by line (independent of codesign.hw.build's parser)."""
    ports = {}
    for line in text.splitlines():
        words = line.replace(";", " ").split()
        if words and words[0] in ("input", "output"):
            width = 1
            if words[1].startswith("["):
                msb, lsb = words[1][1:-1].split(":")
                width = int(msb) - int(lsb) + 1
            ports[words[-1]] = (words[0], width)
    return ports


def col_bits(n_cols: int) -> int:
    bits = 1
    while (1 << bits) < n_cols:
        bits += 1
    return bits


# ---------------------------------------------------------------- registry


def test_registry_lists_relative():
    block = get_block("relative")
    assert "relative" in BLOCKS
    assert block.spec_type is RelativeSpec
    assert set(block.defaults) == {"n_cols", "value_bits", "row_bits"}


#: Blocks whose synthesis at the defaults takes too long for the suite: viterbi_search
#: (2^9 add-compare-select candidates per step and 256-step survivor banks) runs for
#: more than 20 minutes in yosys; the tile (50,000 cells, its banks and lane memories as
#: flip-flops) 1.5 min. Marked ``slow``: `make test-all` runs them.
SLOW_SYNTHESIS = ("viterbi_search", "tile")


@pytest.mark.parametrize("name", list(BLOCKS))
def test_every_block_generates_with_its_defaults(tmp_path, name):
    """No spec and no parameters: each block's defaults build (the Viterbi blocks take
    the threshold of the default sparsity, the tile its CSR widths from its columns); the
    sidecar records what was built."""
    block = get_block(name)
    v_path, json_path = write(name, None, tmp_path)
    sidecar = json.loads(json_path.read_text())
    built = block.complete(block.spec_type())
    assert sidecar["spec"] == block.finish(built, block.defaults).to_dict()
    assert sidecar["params"] == block.defaults
    assert sidecar["top"] in v_path.read_text()


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=[pytest.mark.slow] if n in SLOW_SYNTHESIS else []) for n in BLOCKS],
)
def test_every_block_synthesizes_with_its_defaults(name):
    stats = synthesize(name)
    block = get_block(name)
    built = block.complete(block.spec_type())
    assert stats.spec == block.finish(built, block.defaults).to_dict()
    assert stats.params == block.defaults
    assert stats.total > stats.cells.get("DFF", 0) > 0 and stats.depth > 0


def test_unknown_block_names_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown block 'viterbo'; known blocks: relative"):
        get_block("viterbo")


# ---------------------------------------------------------------- Verilog + sidecar


@pytest.mark.parametrize(
    ("r", "params"),
    [
        (4, {"n_cols": 37}),
        (1, {"n_cols": 300, "value_bits": 16, "row_bits": 10}),
        (6, {"n_cols": 1, "value_bits": 3}),
    ],
)
def test_sidecar_and_port_map(tmp_path, r, params):
    spec = RelativeSpec(r=r)
    v_path, json_path = write("relative", spec, tmp_path / "out", **params)
    assert (v_path.name, json_path.name) == ("relative_decoder.v", "relative_decoder.json")
    text = v_path.read_text()
    sidecar = json.loads(json_path.read_text())
    assert re.search(r"^module relative_decoder\(", text, re.MULTILINE)

    full = {"n_cols": 64, "value_bits": 8, "row_bits": 16, **params}
    assert (sidecar["block"], sidecar["top"]) == ("relative", "relative_decoder")
    assert sidecar["spec"] == {"format": "relative", "r": r}
    assert sidecar["params"] == full
    assert sidecar["matrices"] == {}
    assert sidecar["latency"] == 1

    widths = {
        "in.payload.gap": r,
        "in.payload.value": full["value_bits"],
        "in.payload.first": 1,
        "out.payload.row": full["row_bits"],
        "out.payload.col": col_bits(full["n_cols"]),
        "out.payload.value": full["value_bits"],
        "out.payload.valid_weight": 1,
    }
    singles = ["clk", "rst", "in.valid", "in.ready", "out.valid", "out.ready"]
    ports = sidecar["ports"]
    assert set(ports) == set(widths) | set(singles) | {"in.payload", "out.payload"}
    assert {k: ports[k]["width"] for k in widths} == widths

    declared = declared_ports(text)
    for key, entry in ports.items():
        assert declared[entry["port"]] == (entry["dir"], entry["port_width"]), key
    for key in singles:
        assert ports[key]["width"] == ports[key]["port_width"] == 1
    directions = {"in.ready": "output", "out.valid": "output", "out.payload": "output"}
    for key in ("in.valid", "in.ready", "in.payload", "out.valid", "out.ready", "out.payload"):
        assert ports[key]["dir"] == directions.get(key, "input"), key
    for stream in ("in", "out"):
        whole = ports[f"{stream}.payload"]
        assert (whole["lsb"], whole["width"]) == (0, whole["port_width"])
        bits = sorted(
            bit
            for key, e in ports.items()
            if key.startswith(f"{stream}.payload.")
            for bit in range(e["lsb"], e["lsb"] + e["width"])
        )
        assert bits == list(range(whole["port_width"])), f"{stream} fields must tile the port"


def test_verilog_returns_what_write_writes(tmp_path):
    text, sidecar = verilog("relative", RelativeSpec(r=3), n_cols=10)
    v_path, json_path = write("relative", RelativeSpec(r=3), tmp_path, n_cols=10)
    assert v_path.read_text() == text
    assert json.loads(json_path.read_text()) == sidecar


def test_default_spec_and_params():
    _, sidecar = verilog("relative")
    assert sidecar["spec"] == RelativeSpec().to_dict()
    assert sidecar["params"] == {"n_cols": 64, "value_bits": 8, "row_bits": 16}


@pytest.mark.parametrize(
    ("block", "spec", "params", "message"),
    [
        ("lbi2", None, {}, r"unknown block 'lbi2'"),
        ("relative", CsrSpec(), {}, r"needs a RelativeSpec, got CsrSpec"),
        ("relative", None, {"cols": 8}, r"no parameter\(s\) cols; parameters are n_cols, row_"),
        ("relative", None, {"n_cols": 0}, r"n_cols must be an integer in 1\.\.65536, got 0"),
        ("relative", None, {"n_cols": MAX_COLS + 1}, r"n_cols must be an integer in 1\.\.65536"),
        ("relative", None, {"n_cols": 8.0}, r"n_cols must be an integer"),
        ("relative", None, {"n_cols": True}, r"n_cols must be an integer"),
        ("relative", None, {"value_bits": 0}, r"value_bits must be an integer in 1\.\.64, got 0"),
        ("relative", None, {"value_bits": 65}, r"value_bits must be an integer in 1\.\.64"),
        ("relative", None, {"row_bits": 0}, r"row_bits must be an integer in 1\.\.32, got 0"),
        ("relative", RelativeSpec(r=16), {"n_cols": 37}, r"advance 1772 rows; at most 64"),
    ],
)
def test_bad_input_raises_before_writing(tmp_path, block, spec, params, message):
    out = tmp_path / "never"
    with pytest.raises(ValueError, match=message):
        write(block, spec, out, **params)
    assert not out.exists()


def test_row_wrap_limit_is_inclusive():
    n_cols = 1 << 10
    spec = RelativeSpec(r=16)
    assert (n_cols - 1 + (1 << 16)) // n_cols == MAX_ROW_WRAPS
    check_params(spec, n_cols, 8, 16)
    with pytest.raises(ValueError, match="at most 64"):
        check_params(spec, n_cols - 1, 8, 16)


# ---------------------------------------------------------------- synthesis


def test_normalise_cell():
    cases = {
        "$_XOR_": "XOR",
        "$_ANDNOT_": "ANDNOT",
        "$_MUX_": "MUX",
        "$_NOT_": "NOT",
        "$_DFF_P_": "DFF",
        "$_SDFFE_PP0P_": "DFF",
        "$_DFFSR_PNN_": "DFF",
        "$_ALDFFE_PPP_": "DFF",
        "$_DLATCH_P_": "LATCH",
        "$mem_v2": "$mem_v2",
    }
    assert {c: normalise_cell(c) for c in cases} == cases


def test_synth_stats_relative():
    small = synthesize("relative", RelativeSpec(r=4), n_cols=37)
    large = synthesize("relative", RelativeSpec(r=8), n_cols=37)
    for stats in (small, large):
        assert stats.total == sum(stats.cells.values()) == sum(stats.raw_cells.values())
        assert all(count > 0 for count in stats.cells.values())
        assert stats.depth > 0
        assert set(stats.cells) >= {"DFF", "XOR"}
        # registered output: row 16 + col 6 + value 8 + valid_weight + out.valid,
        # plus the start-of-matrix flag
        assert stats.cells["DFF"] == 16 + 6 + 8 + 1 + 1 + 1
        assert json.loads(json.dumps(stats.to_dict()))["cells"] == stats.cells
    # r = 8 over 37 columns needs 7 row-wrap comparators, r = 4 one
    assert large.total > small.total
    assert large.depth > small.depth


# ---------------------------------------------------------------- amaranth.sim


def reference_decode(entries, n_cols):
    """(row, col, value, valid_weight) of each (gap, value, first) entry, walking the
    flattened positions one entry at a time."""
    out, pos = [], -1
    for gap, value, first in entries:
        if first:
            pos = -1
        pos += gap + 1
        out.append((pos // n_cols, pos % n_cols, value, int(value != 0)))
    return out


@pytest.mark.parametrize(("r", "n_cols"), [(3, 5), (2, 7), (4, 1)])
def test_decoder_amaranth_sim(r, n_cols):
    rng = random.Random(r * 100 + n_cols)
    entries = [
        (rng.randrange(1 << r), rng.choice([0, rng.randrange(1, 16)]), int(i in (0, 23, 24, 40)))
        for i in range(60)
    ]
    expected = reference_decode(entries, n_cols)
    dut = RelativeDecoder(RelativeSpec(r=r), n_cols, value_bits=4, row_bits=12)
    got, in_cycles, out_cycles = run_stream(
        dut,
        entries,
        lambda e: {"gap": e[0], "value": e[1], "first": e[2]},
        lambda p: (p.row, p.col, p.value, p.valid_weight),
        rng,
    )
    assert got == [(row % 4096, col, v, vw) for row, col, v, vw in expected]
    # full rate: one entry per cycle, each output one cycle after its input
    assert in_cycles[:10] == list(range(10))
    assert out_cycles[:10] == list(range(1, 11))
    assert all(o - i >= 1 for i, o in zip(in_cycles, out_cycles, strict=True))
