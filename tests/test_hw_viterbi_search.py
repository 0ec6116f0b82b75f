"""codesign.hw.viterbi_search: registry entry, sidecar and ports, parameter checks, amaranth.sim
runs against the golden fixed-point search (alone and driving the VD block), and the
synthesised cell counts against :func:`codesign.hw.viterbi_search.expected_cells`."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from codesign.hw.blocks import get_block
from codesign.hw.build import write
from codesign.hw.synth import synthesize
from codesign.hw.viterbi_decompressor import ViterbiDecompressor
from codesign.hw.viterbi_decompressor import input_layout as vd_input_layout
from codesign.hw.viterbi_search import (
    DEFAULT_MAX_SEGMENT,
    MAX_SEGMENT,
    ViterbiSearch,
    check_params,
    expected_cells,
    latency,
    output_layout,
    patterns,
    segment_cycles,
    state_classes,
    sum_patterns,
)
from codesign.models.specs import RelativeSpec, ViterbiSpec
from codesign.models.viterbi_decompressor import expand, keep_table, pack_inputs
from codesign.models.viterbi_search import metric_bits, viterbi_search_fixed

SPEC = ViterbiSpec(n_ff=4, n_in=1, n_out=3, n_c=2, threshold=1, segment=16)
#: Relative tolerance of the synthesised gate count against ``expected_cells``'s
#: estimate (measured within 8 % over n_ff = 2 … 6, n_in = 1 … 3); flip-flops are exact.
GATE_TOLERANCE = 0.15


# ---------------------------------------------------------------- registry, sidecar


def test_registry_entry():
    block = get_block("viterbi_search")
    assert block.spec_type is ViterbiSpec
    assert dict(block.defaults) == {"score_bits": 8, "max_segment": DEFAULT_MAX_SEGMENT}


@pytest.mark.parametrize(
    ("spec", "params"),
    [
        (SPEC, {"max_segment": 16}),
        (ViterbiSpec(n_ff=3, n_in=2, n_out=4, n_c=2, threshold=2, segment=12), {"score_bits": 5}),
    ],
)
def test_sidecar_and_ports(tmp_path, spec, params):
    _, json_path = write("viterbi_search", spec, tmp_path, **params)
    sidecar = json.loads(json_path.read_text())
    full = {"score_bits": 8, "max_segment": 256, **params}
    b = full["score_bits"]
    assert sidecar["params"] == full
    assert sidecar["latency"] == spec.segment + 1 == latency(spec.segment)
    assert sidecar["matrices"] == {"keep_table": keep_table(spec).astype(int).tolist()}
    ports = sidecar["ports"]
    fields = {k: (v["port"], v["lsb"], v["width"]) for k, v in ports.items()}
    for j in range(spec.n_out):
        assert fields[f"in.payload.scores.{j}"] == ("in__payload", j * b, b)
    assert fields["in.payload.first"] == ("in__payload", spec.n_out * b, 1)
    assert fields["in.payload.last"] == ("in__payload", spec.n_out * b + 1, 1)
    assert fields["out.payload.u"] == ("out__payload", 0, spec.n_in)
    assert fields["out.payload.first"] == ("out__payload", spec.n_in, 1)
    assert ports["out.payload"]["port_width"] == spec.n_in + 1


def test_output_is_the_vd_input():
    spec = ViterbiSpec(n_ff=5, n_in=3, n_out=7, n_c=3, threshold=2)
    assert output_layout(spec) == vd_input_layout(spec)


def test_timing_figures():
    assert [latency(n) for n in (1, 16)] == [2, 17]
    assert [segment_cycles(n) for n in (1, 16)] == [1, 16]


@pytest.mark.parametrize(
    ("spec", "params", "message"),
    [
        (RelativeSpec(), {}, r"needs a ViterbiSpec, got RelativeSpec"),
        (
            ViterbiSpec(n_ff=11, n_in=2, threshold=3),
            {},
            r"n_ff \+ n_in must be at most 12 .*got 11 \+ 2",
        ),
        (SPEC, {"score_bits": 1}, r"score_bits must be an integer in 2\.\.16, got 1"),
        (SPEC, {"score_bits": 17}, r"score_bits must be an integer in 2\.\.16, got 17"),
        (SPEC, {"score_bits": 8.0}, r"score_bits must be an integer"),
        (SPEC, {"max_segment": True}, r"max_segment must be an integer in 1\.\.65536"),
        (SPEC, {"max_segment": 0}, r"max_segment must be an integer in 1\.\.65536, got 0"),
        (SPEC, {"max_segment": MAX_SEGMENT + 1}, r"max_segment must be an integer in 1\.\.65536"),
        (SPEC, {"max_segment": 15}, r"max_segment must be at least spec\.segment = 16 .*got 15"),
        (SPEC, {"segment": 4}, r"no parameter\(s\) segment; parameters are max_segment, score_"),
    ],
)
def test_bad_input_raises_before_writing(tmp_path, spec, params, message):
    out = tmp_path / "never"
    with pytest.raises(ValueError, match=message):
        write("viterbi_search", spec, out, **params)
    assert not out.exists()


def test_check_params_needs_the_threshold():
    with pytest.raises(ValueError, match=r"threshold is unset.*0\.\.2\^n_c=4"):
        check_params(ViterbiSpec(n_ff=4, n_c=2), 8, 256)


def test_max_segment_bounds_are_inclusive():
    check_params(SPEC, 8, SPEC.segment)
    check_params(SPEC, 16, MAX_SEGMENT)
    check_params(ViterbiSpec(n_ff=11, n_in=1, threshold=3), 2, 256)


# ---------------------------------------------------------------- branch patterns


def test_sum_patterns_cover_the_keep_table():
    spec = ViterbiSpec(n_ff=6, n_in=1, n_out=5, n_c=4, threshold=3)
    needed = set(sum_patterns(spec))
    table = keep_table(spec)
    pats = patterns(spec)
    assert pats.tolist() == [int(sum(int(b) << j for j, b in enumerate(row))) for row in table]
    for p in set(pats.tolist()):
        while p & (p - 1):
            assert p in needed
            p &= p - 1
    assert all(p.bit_count() >= 2 for p in needed)


def test_state_classes_share_inputs():
    spec = SPEC
    classes = state_classes(spec)
    pats = patterns(spec)
    k, n = spec.n_ff, spec.n_in
    for s in range(1 << k):
        for r in range(1 << k):
            if classes[s] == classes[r]:
                for h in range(1 << n):
                    xs, xr = s + (h << k), r + (h << k)
                    assert pats[xs] == pats[xr]
                    assert classes[xs >> n] == classes[xr >> n]
                    assert (xs >> n == 0) == (xr >> n == 0)


# ---------------------------------------------------------------- amaranth.sim


def segment_steps(spec: ViterbiSpec, q: np.ndarray) -> list[dict]:
    """Input payloads of flat integer scores ``q``: steps of n_out, segments of
    ``spec.segment`` steps."""
    cycles = -(-q.size // spec.n_out)
    padded = np.zeros(cycles * spec.n_out, dtype=np.int64)
    padded[: q.size] = q
    seg = spec.segment
    return [
        {
            "scores": padded[t * spec.n_out : (t + 1) * spec.n_out].tolist(),
            "first": int(t % seg == 0),
            "last": int(t % seg == seg - 1 or t == cycles - 1),
        }
        for t in range(cycles)
    ]


def run_sim(dut, inp, out, steps, fields, rng, stall=0.0, limit=40):
    """Drive ``steps`` into stream ``inp`` and collect ``fields`` of every ``out`` beat,
    with valid/ready low with probability ``stall``; returns (items, in cycles, out
    cycles)."""
    got, in_cycles, out_cycles = [], [], []

    async def bench(ctx):
        pending, cycle = list(steps), 0
        while len(got) < len(steps):
            ctx.set(out.ready, int(rng.random() >= stall))
            offer = bool(pending) and rng.random() >= stall
            ctx.set(inp.valid, int(offer))
            if offer:
                ctx.set(inp.payload, pending[0])
            took = offer and ctx.get(inp.ready)
            gave = ctx.get(out.valid) and ctx.get(out.ready)
            payload = ctx.get(out.payload)
            await ctx.tick()
            if took:
                pending.pop(0)
                in_cycles.append(cycle)
            if gave:
                got.append(tuple(int(getattr(payload, f)) for f in fields))
                out_cycles.append(cycle)
            cycle += 1
            assert cycle < limit * len(steps) + 100, "stream stuck"

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return got, in_cycles, out_cycles


def score_arrays(spec: ViterbiSpec, score_bits: int, seed: int) -> list[np.ndarray]:
    """Uniform, {-1, 0, 1} and ±largest scores, 2.5 segments each (last step padded)."""
    rng = np.random.default_rng(seed)
    top = 2 ** (score_bits - 1) - 1
    size = int(2.5 * spec.segment) * spec.n_out - 1
    return [
        rng.integers(-top, top + 1, size=size),
        rng.integers(-1, 2, size=size),
        rng.choice([-top, top], size=size),
    ]


@pytest.mark.parametrize(
    ("spec", "score_bits", "max_segment", "stall"),
    [
        (SPEC, 8, 16, 0.0),
        (ViterbiSpec(n_ff=3, n_in=2, n_out=4, n_c=2, threshold=2, segment=6), 5, 7, 0.3),
        (ViterbiSpec(n_ff=2, n_in=3, n_out=2, n_c=3, threshold=5, segment=5), 3, 8, 0.5),
        (ViterbiSpec(n_ff=1, n_in=1, n_out=1, n_c=1, threshold=1, segment=1), 2, 1, 0.2),
    ],
)
def test_search_amaranth_sim(spec, score_bits, max_segment, stall):
    rng = random.Random(spec.n_ff)
    for q in score_arrays(spec, score_bits, spec.n_ff):
        golden = viterbi_search_fixed(spec, q, score_bits)
        steps = segment_steps(spec, q)
        dut = ViterbiSearch(spec, score_bits, max_segment)
        got, ins, outs = run_sim(
            dut, getattr(dut, "in"), dut.out, steps, ("u", "first"), rng, stall
        )
        seg = spec.segment
        words = pack_inputs(spec, golden.inputs)
        assert got == [(int(u), int(t % seg == 0)) for t, u in enumerate(words)]
        if stall == 0.0:
            # two segments of L steps on consecutive cycles, the first one's first output
            # L + 1 after its last step, its outputs on consecutive cycles
            assert ins[: 2 * seg] == list(range(2 * seg))
            assert outs[0] - ins[seg - 1] == latency(seg)
            assert ins[seg] - ins[0] == segment_cycles(seg)
            assert outs[:seg] == list(range(outs[0], outs[0] + seg))


def test_search_drives_the_vd():
    """ViterbiSearch.out connected to ViterbiDecompressor.in: the masks are the golden
    VD's expansion of the golden search's inputs."""
    spec = ViterbiSpec(n_ff=4, n_in=2, n_out=5, n_c=3, threshold=3, segment=8)
    q = score_arrays(spec, 8, 7)[0]
    golden = viterbi_search_fixed(spec, q, 8)
    seg = spec.segment
    masks = np.concatenate(
        [expand(spec, golden.inputs[k : k + seg]) for k in range(0, golden.inputs.shape[0], seg)]
    )
    m = Module()
    m.submodules.search = search = ViterbiSearch(spec, 8, seg)
    m.submodules.vd = vd = ViterbiDecompressor(spec)
    wiring.connect(m, search.out, getattr(vd, "in"))
    steps = segment_steps(spec, q)
    got, _, _ = run_sim(m, getattr(search, "in"), vd.out, steps, ("mask",), random.Random(3), 0.3)
    weights = 1 << np.arange(spec.n_out)
    assert [g[0] for g in got] == (masks.astype(np.int64) @ weights).tolist()


# ---------------------------------------------------------------- synthesis


@pytest.mark.parametrize(
    "spec",
    [
        ViterbiSpec(n_ff=4, n_in=1, n_out=3, n_c=2, threshold=1, segment=16),
        ViterbiSpec(n_ff=5, n_in=1, n_out=5, n_c=4, threshold=3, segment=4),
    ],
)
def test_synth_matches_expected_cells(spec):
    stats = synthesize("viterbi_search", spec, score_bits=8, max_segment=spec.segment)
    expected = expected_cells(spec, 8, spec.segment)
    assert expected["metric_bits"] == metric_bits(spec, 8)
    assert stats.cells["DFF"] == expected["dff"]
    comb = stats.total - stats.cells["DFF"]
    assert abs(comb / expected["gates"] - 1) <= GATE_TOLERANCE, (comb, expected)
