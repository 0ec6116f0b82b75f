"""codesign.hw.binary_index_decoder: registry entry, Verilog + sidecar, parameter checks, the beat
split against the golden decode, synthesis against the expected gate counts, and an
amaranth.sim run against the golden model."""

from __future__ import annotations

import dataclasses
import json
import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from codesign.hw import binary_index_decoder as bid
from codesign.hw.blocks import get_block
from codesign.hw.build import write
from codesign.hw.synth import synthesize
from codesign.models.lbi import LbiFormat
from codesign.models.lbi_factorize import mask_from_codes
from codesign.models.specs import CsrSpec, LbiSpec, SpecError
from codesign.models.workloads import gaussian

FORMAT = LbiFormat(max_miss=1.0)
SPECS = [
    LbiSpec(rank=1, tile_rows=8, tile_cols=8, semiring="bool"),
    LbiSpec(rank=4, tile_rows=16, tile_cols=24, semiring="gf2"),
    LbiSpec(rank=3, tile_rows=5, tile_cols=7, semiring="gf2"),
    LbiSpec(rank=2, tile_rows=4, tile_cols=6, semiring="bool"),
    LbiSpec(rank=1, tile_rows=3, tile_cols=1, semiring="gf2"),
]


def spec_id(spec: LbiSpec) -> str:
    return f"r{spec.rank}-{spec.tile_rows}x{spec.tile_cols}-{spec.semiring}"


def codes_of(word: int, rank: int, count: int) -> list[int]:
    """The first ``count`` rank-bit codes of an Iz beat word."""
    return [(word >> (j * rank)) & ((1 << rank) - 1) for j in range(count)]


def tile_mask(spec: LbiSpec, ip: list[int], iz: list[int]) -> np.ndarray:
    """Golden mask (a', b') of one tile from its codes (the tile as a matrix of its own)."""
    return mask_from_codes(
        np.array([ip]), np.array([iz]), spec.tile_rows, spec.tile_cols, spec.semiring
    )


# ---------------------------------------------------------------- registry, sidecar


def test_registry_entry():
    block = get_block("lbi")
    assert block.spec_type is LbiSpec
    assert dict(block.defaults) == {}
    assert block.component is bid.BinaryIndexDecoder


@pytest.mark.parametrize("spec", SPECS, ids=spec_id)
def test_sidecar(tmp_path, spec):
    v_path, json_path = write("lbi", spec, tmp_path)
    sidecar = json.loads(json_path.read_text())
    assert sidecar["spec"] == spec.to_dict()
    assert sidecar["params"] == {}
    assert sidecar["matrices"] == {}
    assert sidecar["latency"] == bid.LATENCY == 1
    ports = sidecar["ports"]
    rank, cols = spec.rank, spec.tile_cols
    fields = {
        "iz.payload.codes": (0, rank * cols),
        "ip.payload.code": (0, rank),
        "ip.payload.last": (rank, 1),
        "out.payload.mask": (0, cols),
        "out.payload.last": (cols, 1),
        **{f"iz.payload.codes.{j}": (j * rank, rank) for j in range(cols)},
    }
    assert {k: (ports[k]["lsb"], ports[k]["width"]) for k in fields} == fields
    widths = {"iz.payload": rank * cols, "ip.payload": rank + 1, "out.payload": cols + 1}
    assert {k: ports[k]["port_width"] for k in widths} == widths
    for stream in ("iz", "ip"):
        assert ports[f"{stream}.valid"]["dir"] == ports[f"{stream}.payload"]["dir"] == "input"
        assert ports[f"{stream}.ready"]["dir"] == "output"
    assert ports["out.valid"]["dir"] == ports["out.payload"]["dir"] == "output"
    assert ports["out.ready"]["dir"] == "input"
    assert "module lbi_decoder(" in v_path.read_text()


@pytest.mark.parametrize(
    ("spec", "params", "message"),
    [
        (CsrSpec(), {}, r"needs a LbiSpec, got CsrSpec"),
        (
            LbiSpec(rank=16, tile_rows=16, tile_cols=1025),
            {},
            r"tile_cols must be in 1\.\.1024 for rank=16 .* at most 16384 bits\), got 1025",
        ),
        (
            LbiSpec(rank=5, tile_rows=5, tile_cols=4096),
            {},
            r"tile_cols must be in 1\.\.3276 for rank=5",
        ),
        (None, {"cols": 8}, r"no parameter\(s\) cols; parameters are \(none\)"),
    ],
)
def test_bad_input_raises_before_writing(tmp_path, spec, params, message):
    out = tmp_path / "never"
    with pytest.raises(ValueError, match=message):
        write("lbi", spec, out, **params)
    assert not out.exists()


def test_check_params_limit_is_inclusive():
    bid.check_params(LbiSpec(rank=16, tile_rows=16, tile_cols=bid.MAX_IZ_BITS // 16))
    bid.check_params(LbiSpec(rank=1, tile_rows=1, tile_cols=4096))
    with pytest.raises(ValueError, match=r"BinaryIndexDecoder: tile_cols must be in 1\.\.2048"):
        bid.check_params(LbiSpec(rank=8, tile_rows=8, tile_cols=2049))


def test_bad_spec_names_the_field():
    with pytest.raises(SpecError, match=r"LbiSpec.rank must be in 1\.\.min\(tile_rows, tile_c"):
        LbiSpec(rank=5, tile_rows=4, tile_cols=8)


def test_figures():
    spec = LbiSpec(rank=4, tile_rows=16, tile_cols=24, semiring="gf2")
    assert bid.expected_gates(spec) == {"AND": 96, "XOR": 72}
    assert bid.expected_gates(dataclasses.replace(spec, semiring="bool")) == {"AND": 96, "OR": 72}
    assert bid.flip_flops(spec) == 4 * 24 + 24 + 3
    assert bid.stream_cycles([16, 16, 8]) == 1 + 40


# ---------------------------------------------------------------- beats vs golden decode


@pytest.mark.parametrize("spec", SPECS[1:4], ids=spec_id)
def test_tile_beats_rebuild_the_golden_mask(spec):
    """Each tile's beats, decoded on their own by the golden mask_from_codes, give the
    golden decode's mask (clipped edge tiles included); padding codes are zero."""
    shape = (2 * spec.tile_rows + 1, 2 * spec.tile_cols + max(1, spec.tile_cols // 2))
    _, enc = FORMAT.compress(gaussian(shape, seed=spec.rank), 0.6, spec)
    golden = FORMAT.decode(enc).mask
    tiles = bid.tile_beats(spec, enc.shape, enc.streams["ip"].data, enc.streams["iz"].data)
    assert len(tiles) == 9
    rebuilt = np.zeros(shape, dtype=bool)
    for t in tiles:
        width = t.c1 - t.c0
        assert len(t.ip) == t.r1 - t.r0
        assert t.iz >> (width * spec.rank) == 0
        rebuilt[t.r0 : t.r1, t.c0 : t.c1] = tile_mask(
            spec, list(t.ip), codes_of(t.iz, spec.rank, width)
        )
    assert np.array_equal(rebuilt, golden)
    assert golden.any() and not golden.all()


def test_tile_beats_checks_the_stream_lengths():
    spec = LbiSpec(rank=2, tile_rows=4, tile_cols=6)
    with pytest.raises(ValueError, match=r"5x7 matrix hold 10 ip and 14 iz codes, got 9 and 14"):
        bid.tile_beats(spec, (5, 7), np.zeros(9), np.zeros(14))


# ---------------------------------------------------------------- synthesis

#: Synthesis sizes: (rank, tile_rows, tile_cols), each in both semirings.
SYNTH_SIZES = [(4, 16, 24), (8, 64, 64)]
#: Relative tolerance of the network's gate count against the formula.
NETWORK_TOLERANCE = 0.02


def combinational(stats) -> int:
    return stats.total - stats.cells["DFF"]


@pytest.mark.parametrize("semiring", ["gf2", "bool"])
@pytest.mark.parametrize("size", SYNTH_SIZES, ids=lambda s: f"r{s[0]}-{s[1]}x{s[2]}")
def test_synth_against_expected_formula(size, semiring):
    """Flip-flops exactly rank·tile_cols (Iz) + tile_cols + 3; network gates (the
    block's combinational cells minus those of a rank-1, 1-column twin, whose network is
    one AND) within NETWORK_TOLERANCE of tile_cols·rank ANDs + tile_cols·(rank − 1)
    XORs/ORs; in gf2 the XOR/XNOR cells within the same tolerance of
    tile_cols·(rank − 1), in bool none (ABC may write an OR tree as NAND/NOR)."""
    rank, rows, cols = size
    spec = LbiSpec(rank=rank, tile_rows=rows, tile_cols=cols, semiring=semiring)
    twin = LbiSpec(rank=1, tile_rows=1, tile_cols=1, semiring=semiring)
    stats, control = synthesize("lbi", spec), synthesize("lbi", twin)
    assert stats.cells["DFF"] == bid.flip_flops(spec) == rank * cols + cols + 3
    assert control.cells["DFF"] == bid.flip_flops(twin)
    formula = sum(bid.expected_gates(spec).values())
    assert formula == cols * (2 * rank - 1)
    network = combinational(stats) - (combinational(control) - 1)
    assert abs(network - formula) <= NETWORK_TOLERANCE * formula
    xors = stats.cells.get("XOR", 0) + stats.cells.get("XNOR", 0)
    if semiring == "gf2":
        expected = bid.expected_gates(spec)["XOR"]
        assert abs(xors - expected) <= NETWORK_TOLERANCE * expected
    else:
        assert xors == 0
    assert stats.depth > 0


# ---------------------------------------------------------------- amaranth.sim


def random_tiles(spec: LbiSpec, count: int, seed: int) -> list[tuple[list[int], list[int]]]:
    """``count`` tiles of random codes (ip a' codes, iz b' codes), every third one clipped
    to random a' ≤ tile_rows rows and b' ≤ tile_cols columns."""
    rng = np.random.default_rng(seed)
    tiles = []
    for k in range(count):
        rows, cols = spec.tile_rows, spec.tile_cols
        if k % 3 == 2:
            rows, cols = int(rng.integers(1, rows + 1)), int(rng.integers(1, cols + 1))
        ip = rng.integers(0, 1 << spec.rank, size=rows).tolist()
        iz = rng.integers(0, 1 << spec.rank, size=cols).tolist()
        tiles.append((ip, iz))
    return tiles


def simulate(spec: LbiSpec, tiles: list, stall: float, seed: int):
    """Run the decoder with random stalls on every stream (none while ``stall`` is 0);
    return the output rows (mask, last) and the handshake cycles of iz, ip and out."""
    dut = bid.BinaryIndexDecoder(spec)
    rng = random.Random(seed)
    queues = {
        "iz": [sum(c << (j * spec.rank) for j, c in enumerate(iz)) for _, iz in tiles],
        "ip": [(c, int(k == len(ip) - 1)) for ip, _ in tiles for k, c in enumerate(ip)],
    }
    rows = len(queues["ip"])
    got, cycles = [], {"iz": [], "ip": [], "out": []}

    async def bench(ctx):
        cycle = 0
        while len(got) < rows:
            offers = {}
            for name, port in (("iz", dut.iz), ("ip", dut.ip)):
                offer = bool(queues[name]) and rng.random() >= stall
                ctx.set(port.valid, int(offer))
                if offer and name == "iz":
                    ctx.set(port.payload.codes.as_value(), queues[name][0])
                elif offer:
                    code, last = queues[name][0]
                    ctx.set(port.payload, {"code": code, "last": last})
                offers[name] = offer
            ctx.set(dut.out.ready, int(rng.random() >= stall))
            took = {n: offers[n] and ctx.get(getattr(dut, n).ready) for n in offers}
            gave = ctx.get(dut.out.valid) and ctx.get(dut.out.ready)
            payload = ctx.get(dut.out.payload)
            await ctx.tick()
            for name, t in took.items():
                if t:
                    queues[name].pop(0)
                    cycles[name].append(cycle)
            if gave:
                got.append((payload.mask, payload.last))
                cycles["out"].append(cycle)
            cycle += 1
            assert cycle < 20 * rows + 100

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return got, cycles


@pytest.mark.parametrize("spec", SPECS[2:], ids=spec_id)
@pytest.mark.parametrize("stall", [0.0, 0.3])
def test_decoder_amaranth_sim(spec, stall):
    tiles = random_tiles(spec, count=7, seed=spec.rank + spec.tile_cols)
    expected = []
    for ip, iz in tiles:
        mask = tile_mask(spec, ip, iz)
        for r in range(len(ip)):
            word = sum(1 << j for j in np.flatnonzero(mask[r]).tolist())
            expected.append((word, int(r == len(ip) - 1)))
    got, cycles = simulate(spec, tiles, stall, seed=3)
    assert got == expected
    gaps = [o - i for i, o in zip(cycles["ip"], cycles["out"], strict=True)]
    assert min(gaps) >= bid.LATENCY
    if stall == 0.0:
        sizes = [len(ip) for ip, _ in tiles]
        first = cycles["iz"][0] + bid.IZ_LOAD_CYCLES
        assert cycles["ip"] == list(range(first, first + len(expected)))
        assert cycles["iz"][1:] == [cycles["ip"][e] for e in np.cumsum(sizes)[:-1] - 1]
        assert set(gaps) == {bid.LATENCY}
        assert cycles["ip"][-1] - cycles["iz"][0] + 1 == bid.stream_cycles(sizes)
