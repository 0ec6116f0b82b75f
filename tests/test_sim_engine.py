"""The event simulation against closed forms and an independent recurrence."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codesign.sim.analytical import estimate_pass
from codesign.sim.arch import Arch, ConfigError
from codesign.sim.engine import LANE_STATES, simulate_pass
from codesign.sim.work import Pass


def make_pass(nnz, bits, decode, n=64, head=0, latency=1, seed=0) -> Pass:
    """A pass whose row r has nnz[r] operands, bits[r] compressed bits and takes
    decode[r] decoder cycles (random columns and values)."""
    nnz, bits, decode = (np.asarray(a, dtype=np.int64) for a in (nnz, bits, decode))
    rng = np.random.default_rng(seed)
    cols = np.concatenate([np.sort(rng.choice(n, size=k, replace=False)) for k in nnz])
    indptr = np.concatenate([[0], np.cumsum(nnz)])
    return Pass(
        name="test",
        shape=(nnz.size, n),
        index_bits=bits // 2,
        value_bits=bits - bits // 2,
        decode_cycles=decode,
        head_cycles=head,
        latency=latency,
        indptr=indptr,
        cols=cols.astype(np.int64),
        vals=rng.integers(-8, 8, size=int(nnz.sum())).astype(np.float64),
        decoders=(),
    )


def uniform(m, nnz, bits, decode, **kw) -> Pass:
    return make_pass([nnz] * m, [bits] * m, [decode] * m, **kw)


def arch_of(**kw) -> Arch:
    base = dict(buffer_bytes=1 << 24, buffer_banks=16, dram_latency_cycles=20)
    base.update(kw)
    return Arch(**base)


def run(p: Pass, arch: Arch):
    x = np.random.default_rng(1).integers(-4, 4, size=(p.shape[1], arch.batch)).astype(float)
    return simulate_pass(p, arch, x), x


def recurrence_cycles(p: Pass, arch: Arch) -> int:
    """Completion time by direct recurrence over rows (unbounded buffer and banks):
    DRAM arrival, decoder-unit start/finish with the lane-FIFO slot constraint, lane
    pop and finish."""
    m, lanes, units = p.rows, arch.lanes, arch.decoders
    bits = p.row_bits
    read = -(-bits // (8 * arch.bank_bytes_per_cycle))
    bw = arch.dram_bytes_per_cycle
    arrive = [0] * m
    free = 0.0
    for r in range(m):
        free += bits[r] / 8 / bw
        arrive[r] = math.ceil(free - 1e-9) + arch.dram_latency_cycles
    unit_free = [0] * units
    first = [True] * units
    finish, pop, done = [0] * m, [0] * m, [0] * m
    lane_free = [0] * lanes
    for r in range(m):
        d, lane = r % units, r % lanes
        start = max(arrive[r], unit_free[d])
        older = r - arch.lane_fifo_rows * lanes
        if older >= 0:
            start = max(start, pop[older])
        busy = max(int(p.decode_cycles[r]) + (p.head_cycles if first[d] else 0), int(read[r]))
        first[d] = False
        finish[r] = unit_free[d] = start + busy
        pop[r] = max(finish[r], lane_free[lane])
        done[r] = max(pop[r], finish[r] + p.latency) + int(p.macs[r]) * arch.batch
        lane_free[lane] = done[r]
    return max(done)


@settings(max_examples=60, deadline=None)
@given(
    m=st.integers(1, 120),
    lanes_log=st.integers(0, 4),
    units_log=st.integers(0, 4),
    nnz=st.integers(0, 24),
    bits=st.integers(1, 3000),
    decode=st.integers(0, 40),
    bw=st.sampled_from([0.5, 1.0, 2.0, 3.5, 8.0, 16.0]),
    latency=st.integers(0, 60),
    batch=st.integers(1, 3),
    fifo=st.integers(2, 4),
    head=st.integers(0, 2),
)
def test_balanced_rows_match_the_closed_form_exactly(
    m, lanes_log, units_log, nnz, bits, decode, bw, latency, batch, fifo, head
):
    lanes = 1 << lanes_log
    arch = arch_of(
        lanes=lanes,
        decoders=1 << min(units_log, lanes_log),
        batch=batch,
        dram_bytes_per_cycle=bw,
        dram_latency_cycles=latency,
        lane_fifo_rows=fifo,
    )
    p = uniform(m, nnz, bits, decode, head=head)
    result, _ = run(p, arch)
    assert result.cycles == estimate_pass(p, arch).cycles, "lane FIFOs of 2+ rows never starve"
    assert sum(result.lane_cycles.values()) == arch.lanes * result.cycles


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.integers(0, 30), st.integers(1, 2000), st.integers(0, 50)),
        min_size=1,
        max_size=80,
    ),
    lanes_log=st.integers(0, 3),
    units_log=st.integers(0, 3),
    bw=st.sampled_from([1.0, 4.0, 12.5]),
    fifo=st.integers(1, 3),
    head=st.integers(0, 3),
)
def test_irregular_rows_match_an_independent_recurrence(rows, lanes_log, units_log, bw, fifo, head):
    nnz, bits, decode = zip(*rows, strict=True)
    arch = arch_of(
        lanes=1 << lanes_log,
        decoders=1 << min(units_log, lanes_log),
        dram_bytes_per_cycle=bw,
        lane_fifo_rows=fifo,
    )
    p = make_pass(nnz, bits, decode, head=head)
    result, _ = run(p, arch)
    assert result.cycles == recurrence_cycles(p, arch)
    assert sum(result.lane_cycles.values()) == arch.lanes * result.cycles
    assert result.lane_cycles["busy"] == int(p.macs.sum()) * arch.batch


def test_dense_and_bitmap_style_layers_equal_the_closed_form():
    # dense int8 64x64: 512 bits/row, no decoder; bitmap: mask 64 + 16 values x 8 bits,
    # one 64-bit slice per cycle.
    for p in (uniform(64, 64, 512, 0, latency=0), uniform(64, 16, 64 + 128, 1)):
        for arch in (arch_of(lanes=4, decoders=2), arch_of(lanes=16, decoders=4, batch=4)):
            result, _ = run(p, arch)
            assert result.cycles == estimate_pass(p, arch).cycles


def test_a_one_row_lane_fifo_starves_the_lane():
    # the decoder may start row r + P only when the lane has taken row r, so with a
    # one-row FIFO the lane waits for every row's decode: FIFO backpressure the closed
    # form does not see
    p = uniform(3, 1, 1, 0)
    arch = arch_of(lanes=1, decoders=1, dram_bytes_per_cycle=0.5, dram_latency_cycles=0)
    deep, _ = run(p, arch)
    shallow, _ = run(p, dataclasses.replace(arch, lane_fifo_rows=1))
    assert deep.cycles == estimate_pass(p, arch).cycles == 6
    assert shallow.cycles == 7 == recurrence_cycles(p, dataclasses.replace(arch, lane_fifo_rows=1))


def test_the_lanes_compute_w_times_x():
    rng = np.random.default_rng(3)
    p = make_pass(rng.integers(0, 20, 50), rng.integers(10, 500, 50), rng.integers(0, 9, 50))
    arch = arch_of(lanes=8, decoders=2, batch=3)
    result, x = run(p, arch)
    w = np.zeros(p.shape)
    for r in range(p.rows):
        s, e = p.indptr[r], p.indptr[r + 1]
        w[r, p.cols[s:e]] = p.vals[s:e]
    np.testing.assert_array_equal(result.output, w @ x)


def stalls(result) -> dict[str, int]:
    return {k: v for k, v in result.lane_cycles.items() if k not in ("busy", "fill")}


@pytest.mark.parametrize(
    ("p", "arch", "stall", "bound"),
    [
        (
            uniform(256, 8, 4000, 2),
            arch_of(lanes=16, decoders=4, dram_bytes_per_cycle=2.0),
            "bandwidth",
            "dram",
        ),
        (
            uniform(256, 8, 200, 300),
            arch_of(lanes=16, decoders=1, dram_bytes_per_cycle=64.0),
            "decoder",
            "decoder",
        ),
    ],
    ids=["dram-bound", "decoder-bound"],
)
def test_the_bottleneck_is_named(p, arch, stall, bound):
    result, _ = run(p, arch)
    named = stalls(result)
    assert max(named, key=named.__getitem__) == stall
    assert estimate_pass(p, arch).bound == bound


def test_lane_imbalance_shows_as_a_gap_to_the_closed_form():
    nnz = [400 if r % 8 == 0 else 10 for r in range(256)]
    p = make_pass(nnz, [1000] * 256, [5] * 256, n=512)
    arch = arch_of(lanes=8, decoders=4, dram_bytes_per_cycle=64.0)
    result, _ = run(p, arch)
    est = estimate_pass(p, arch)
    assert result.cycles > 1.5 * est.cycles
    assert result.lane_cycles["imbalance"] > 0.5 * sum(stalls(result).values())


def test_bank_conflicts_are_named():
    p = uniform(128, 4, 2048, 0)
    arch = arch_of(lanes=8, decoders=8, buffer_banks=1, bank_bytes_per_cycle=4)
    result, _ = run(p, arch)
    assert result.decoder_states["bank"] > 0
    assert result.lane_cycles["bank"] > 0


def test_a_small_buffer_blocks_dram_and_keeps_every_row():
    p = uniform(64, 32, 800, 1)
    arch = arch_of(lanes=2, decoders=1, buffer_bytes=300, dram_bytes_per_cycle=64.0)
    result, x = run(p, arch)
    assert result.dram_blocked > 0
    assert result.cycles >= estimate_pass(p, arch).cycles
    assert np.count_nonzero(result.output) > 0


def test_a_row_larger_than_the_buffer_is_an_error():
    p = uniform(4, 4, 8 * 1000, 1)
    with pytest.raises(ConfigError, match=r"arch.buffer.bytes = 999 .*allowed: >= 1000"):
        run(p, arch_of(buffer_bytes=999))


def test_idle_cycles_cost_no_events():
    short, _ = run(uniform(64, 4, 64, 1), arch_of(lanes=4, decoders=2))
    long, _ = run(uniform(64, 4000, 64, 1, n=4096), arch_of(lanes=4, decoders=2))
    assert long.cycles > 500 * short.cycles / 10
    assert long.events == short.events


def test_lane_states_are_reported_in_order():
    result, _ = run(uniform(8, 2, 64, 1), arch_of(lanes=2, decoders=1))
    assert tuple(result.lane_cycles) == LANE_STATES


def test_activations_must_match_the_pass():
    p = uniform(4, 2, 64, 1)
    with pytest.raises(ValueError, match=r"x must have shape \(64, columns >= 1\)"):
        simulate_pass(p, arch_of(), np.zeros((3, 1)))
