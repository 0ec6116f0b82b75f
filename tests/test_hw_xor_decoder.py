"""codesign.hw.xor_decoder: registry entry, Verilog + sidecar, parameter checks, synthesis against
the expected gate counts, and an amaranth.sim run against the golden model."""

from __future__ import annotations

import dataclasses
import json
import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from codesign.hw import xor_decoder as xd
from codesign.hw.blocks import get_block
from codesign.hw.build import write
from codesign.hw.synth import synthesize
from codesign.models.specs import CsrSpec, SpecError, XorSpec
from codesign.models.xor import decode_planes, xor_matrix

SPECS = [
    XorSpec(n_in=8, n_out=64, n_s=1),
    XorSpec(n_in=4, n_out=24, n_s=2, segment=5),
    XorSpec(n_in=6, n_out=60, n_s=3, segment=4),
    XorSpec(n_in=1, n_out=4, n_s=2, segment=3),
    XorSpec(n_in=3, n_out=1, n_s=4, segment=2),
]


# ---------------------------------------------------------------- registry, sidecar


def test_registry_entry():
    block = get_block("xor")
    assert block.spec_type is XorSpec
    assert dict(block.defaults) == {"block_bits": 16}


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.n_in}-{s.n_out}-{s.n_s}")
def test_sidecar(tmp_path, spec):
    v_path, json_path = write("xor", spec, tmp_path, block_bits=10)
    sidecar = json.loads(json_path.read_text())
    assert sidecar["spec"] == spec.to_dict()
    assert sidecar["params"] == {"block_bits": 10}
    assert sidecar["latency"] == xd.LATENCY == 1
    assert np.array_equal(np.array(sidecar["matrices"]["M"]), xor_matrix(spec))
    assert np.array(sidecar["matrices"]["M"]).shape == (spec.n_out, spec.n_s * spec.n_in)
    widths = {
        "in.payload.x": spec.n_in,
        "in.payload.first": 1,
        "in.payload.plane": 1,
        "count.payload.count": xd.count_width(spec.n_out, 10),
        "patch.payload.block": 10,
        "patch.payload.bit": xd.bit_width(spec.n_out),
        "out.payload.bits": spec.n_out,
        "out.payload.plane": 1,
    }
    ports = sidecar["ports"]
    assert {k: ports[k]["width"] for k in widths} == widths
    for stream in ("in", "count", "patch"):
        assert ports[f"{stream}.valid"]["dir"] == ports[f"{stream}.payload"]["dir"] == "input"
        assert ports[f"{stream}.ready"]["dir"] == "output"
    assert ports["out.valid"]["dir"] == ports["out.payload"]["dir"] == "output"
    assert ports["out.ready"]["dir"] == "input"
    # "xor" is a Verilog keyword: the top module is xor_decoder, a plain identifier
    assert v_path.name == "xor_decoder.v" and sidecar["top"] == "xor_decoder"
    assert "module xor_decoder(" in v_path.read_text()


def test_widths():
    assert [xd.bit_width(n) for n in (1, 2, 4, 5, 60, 64, 1024)] == [1, 1, 2, 3, 6, 6, 10]
    # most patches of a plane: 2^block_bits blocks of n_out bits
    assert xd.count_width(64, 16) == 23 and (1 << 22) == 64 << 16
    assert xd.count_width(60, 16) == (60 << 16).bit_length() == 22


@pytest.mark.parametrize(
    ("spec", "params", "message"),
    [
        (CsrSpec(), {}, r"needs a XorSpec, got CsrSpec"),
        (None, {"block_bits": 0}, r"block_bits must be an integer in 1\.\.32, got 0"),
        (None, {"block_bits": 33}, r"block_bits must be an integer in 1\.\.32, got 33"),
        (None, {"block_bits": 8.0}, r"block_bits must be an integer in 1\.\.32"),
        (None, {"block_bits": True}, r"block_bits must be an integer in 1\.\.32"),
        (None, {"blocks": 8}, r"no parameter\(s\) blocks; parameters are block_bits"),
    ],
)
def test_bad_params_raise_before_writing(tmp_path, spec, params, message):
    out = tmp_path / "never"
    with pytest.raises(ValueError, match=message):
        write("xor", spec, out, **params)
    assert not out.exists()


def test_bad_spec_names_the_field():
    with pytest.raises(SpecError, match=r"XorSpec.n_out must be in 1\.\.1024, got 0"):
        XorSpec(n_out=0)
    with pytest.raises(SpecError, match=r"\(n_s - 1\)·n_in = 24 state bits"):
        XorSpec(n_in=8, n_s=4)


def test_check_params_direct():
    xd.check_params(XorSpec(), 1)
    xd.check_params(XorSpec(), xd.MAX_BLOCK_BITS)
    with pytest.raises(ValueError, match=r"XorDecoder.block_bits must be .* got -1"):
        xd.check_params(XorSpec(), -1)
    with pytest.raises(ValueError, match="XorDecoder needs an XorSpec, got CsrSpec"):
        xd.check_params(CsrSpec(), 16)


# ---------------------------------------------------------------- synthesis

#: Synthesis sizes: (spec, block_bits).
SYNTH_SIZES = [(XorSpec(n_in=8, n_out=64, n_s=1), 16), (XorSpec(n_in=6, n_out=60, n_s=3), 12)]
#: Relative tolerance of the upper bounds (unshared gate counts).
XOR_TOLERANCE = 0.05


def control_xors(spec: XorSpec, block_bits: int) -> int:
    """XOR-type gates of the control without sharing: n_out patch flips, two block-index
    comparators and the next-index incrementer (block_bits each), the patches-left
    decrementer (count_width)."""
    return spec.n_out + 3 * block_bits + xd.count_width(spec.n_out, block_bits)


def xor_gates(stats) -> int:
    return stats.cells.get("XOR", 0) + stats.cells.get("XNOR", 0)


@pytest.mark.parametrize(("spec", "block_bits"), SYNTH_SIZES, ids=["8-64-1", "6-60-3"])
def test_synth_against_expected_formula(spec, block_bits):
    """Flip-flops exactly (n_s − 1)·n_in plus the stated output/patch registers; network
    XORs (the block's XOR/XNOR gates minus those of a control-only twin, n_in = 1 and
    n_s = 1, whose M has no row with two taps) between one gate per distinct row of M
    with two or more taps (each such linear form is some gate's output) and the formula
    n_out·(n_s·n_in/2 − 1) + 5 % (no sharing); Yosys/ABC shares sub-sums common to
    several rows, so the measured count sits well below the formula."""
    twin = dataclasses.replace(spec, n_in=1, n_s=1)
    stats = synthesize("xor", spec, block_bits=block_bits)
    control = synthesize("xor", twin, block_bits=block_bits)
    assert stats.cells["DFF"] == xd.flip_flops(spec, block_bits)
    assert control.cells["DFF"] == xd.flip_flops(twin, block_bits)
    assert stats.cells["DFF"] - control.cells["DFF"] == (spec.n_s - 1) * spec.n_in
    assert (
        xd.flip_flops(twin, block_bits)
        == (spec.n_out + 3 * block_bits + xd.count_width(spec.n_out, block_bits))
        + xd.bit_width(spec.n_out)
        + 6
    )

    formula = xd.expected_network_xors(spec)
    assert abs(xd.network_xors(spec) - formula) <= XOR_TOLERANCE * formula
    assert xd.network_xors(twin) == 0
    network = xor_gates(stats) - xor_gates(control)
    distinct = len({row.tobytes() for row in xor_matrix(spec) if row.sum() >= 2})
    assert distinct <= network <= (1 + XOR_TOLERANCE) * formula
    assert xor_gates(control) <= (1 + XOR_TOLERANCE) * control_xors(spec, block_bits)
    assert stats.depth > 0


# ---------------------------------------------------------------- amaranth.sim


def random_stream(spec: XorSpec, planes: int, blocks: int, seed: int):
    """Random inputs (planes, blocks) and sorted, distinct patches per plane, with a
    plane without patches and a plane whose first and last blocks have several."""
    rng = np.random.default_rng(seed)
    inputs = rng.integers(0, 1 << spec.n_in, size=(planes, blocks), dtype=np.uint64)
    patches = []
    for p in range(planes):
        if p == 1:
            patches.append([])
            continue
        n = int(rng.integers(1, blocks))
        pos = set(rng.choice(blocks * spec.n_out, size=n, replace=False).tolist())
        if p == 0:
            pos |= {0, spec.n_out - 1, (blocks - 1) * spec.n_out, blocks * spec.n_out - 1}
        patches.append(sorted((q // spec.n_out, q % spec.n_out) for q in pos))
    return inputs, patches


def expected_blocks(spec: XorSpec, inputs: np.ndarray, patches: list) -> np.ndarray:
    """Golden decode (all positions) with the patches flipped: (planes, blocks, n_out)."""
    planes, blocks = inputs.shape
    bits = decode_planes(inputs, spec, blocks * spec.n_out).reshape(planes, blocks, -1)
    for p, plane_patches in enumerate(patches):
        for block, bit in plane_patches:
            bits[p, block, bit] ^= 1
    return bits


def simulate(spec: XorSpec, inputs: np.ndarray, patches: list, stall: float, seed: int):
    """Run the decoder with random stalls on every stream (none while ``stall`` is 0);
    return the output blocks (bits as 0/1 arrays, plane flag) and handshake cycles."""
    dut = xd.XorDecoder(spec, block_bits=8)
    i, c, p, o = getattr(dut, "in"), dut.count, dut.patch, dut.out
    planes, blocks = inputs.shape
    items = [
        (int(inputs[q, t]), int(t % spec.segment == 0), int(t == 0))
        for q in range(planes)
        for t in range(blocks)
    ]
    counts = [len(pp) for pp in patches]
    flat = [patch for pp in patches for patch in pp]
    rng = random.Random(seed)
    got, in_cycles, out_cycles = [], [], []

    async def bench(ctx):
        queues = {"in": list(items), "count": list(counts), "patch": list(flat)}
        ports = {"in": i, "count": c, "patch": p}
        cycle = 0
        while len(got) < len(items):
            offers = {}
            for name, port in ports.items():
                offer = bool(queues[name]) and rng.random() >= stall
                ctx.set(port.valid, int(offer))
                if offer:
                    head = queues[name][0]
                    if name == "in":
                        ctx.set(port.payload, {"x": head[0], "first": head[1], "plane": head[2]})
                    elif name == "count":
                        ctx.set(port.payload, {"count": head})
                    else:
                        ctx.set(port.payload, {"block": head[0], "bit": head[1]})
                offers[name] = offer
            ctx.set(o.ready, int(rng.random() >= stall))
            took = {name: offers[name] and ctx.get(ports[name].ready) for name in ports}
            gave = ctx.get(o.valid) and ctx.get(o.ready)
            payload = ctx.get(o.payload)
            await ctx.tick()
            for name in ports:
                if took[name]:
                    queues[name].pop(0)
            if took["in"]:
                in_cycles.append(cycle)
            if gave:
                bits = np.array([(payload.bits >> b) & 1 for b in range(spec.n_out)], np.uint8)
                got.append((bits, payload.plane))
                out_cycles.append(cycle)
            cycle += 1
            assert cycle < 20 * len(items) + 100

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return got, in_cycles, out_cycles


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.n_in}-{s.n_out}-{s.n_s}")
@pytest.mark.parametrize("stall", [0.0, 0.3])
def test_decoder_amaranth_sim(spec, stall):
    inputs, patches = random_stream(spec, planes=3, blocks=9, seed=spec.n_in)
    expected = expected_blocks(spec, inputs, patches)
    got, in_cycles, out_cycles = simulate(spec, inputs, patches, stall, seed=7)
    planes, blocks = inputs.shape
    assert len(got) == planes * blocks
    for n, (bits, plane) in enumerate(got):
        q, t = divmod(n, blocks)
        assert np.array_equal(bits, expected[q, t]), f"plane {q} block {t}"
        assert plane == int(t == 0)
    assert all(out - inp >= xd.LATENCY for inp, out in zip(in_cycles, out_cycles, strict=True))
    if stall == 0.0:
        per_block = [
            xd.block_cycles(sum(1 for b, _ in patches[q] if b == t), t == 0)
            for q in range(planes)
            for t in range(blocks)
        ]
        assert np.diff(in_cycles).tolist() == per_block[:-1]
        assert [o - a for a, o in zip(in_cycles, out_cycles, strict=True)] == per_block
