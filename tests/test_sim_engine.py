"""The event simulation against closed forms and an independent recurrence; the
row-order recurrence of codesign.sim.recurrence against the event simulation."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codesign.sim.analytical import estimate_pass
from codesign.sim.arch import Arch, ConfigError
from codesign.sim.engine import LANE_STATES, event_timeline, simulate_pass
from codesign.sim.recurrence import pass_timeline
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


def row_lists(operands: int, bits: tuple[int, int], decode: int, most: int):
    """Lists of 1 to ``most`` rows (operands, bits, decode cycles) with operands in
    0..``operands``, bits in ``bits`` and decode cycles in 0..``decode``."""
    row = st.tuples(st.integers(0, operands), st.integers(*bits), st.integers(0, decode))
    return st.lists(row, min_size=1, max_size=most)


def uniform(m, nnz, bits, decode, **kw) -> Pass:
    return make_pass([nnz] * m, [bits] * m, [decode] * m, **kw)


def arch_of(**kw) -> Arch:
    base = dict(buffer_bytes=1 << 24, buffer_banks=16, dram_latency_cycles=20)
    base.update(kw)
    return Arch(**base)


def assert_same(a, b) -> None:
    """Two pass results agree on every figure (not on the engine, its events or time)."""
    for field in dataclasses.fields(a):
        if field.name not in ("engine", "events", "engine_s"):
            np.testing.assert_array_equal(getattr(a, field.name), getattr(b, field.name))


def run(p: Pass, arch: Arch):
    """The SimPy result of ``p`` on ``arch`` (random X of the batch's columns), held
    equal to the recurrence's wherever the recurrence applies (no bank can be short)."""
    x = np.random.default_rng(1).integers(-4, 4, size=(p.shape[1], arch.batch)).astype(float)
    result = simulate_pass(p, arch, x, engine="event")
    assert result.engine == "event"
    if arch.buffer_banks >= arch.decoders:
        fast = simulate_pass(p, arch, x, engine="recurrence")
        assert (fast.engine, fast.events) == ("recurrence", 0)
        assert_same(result, fast)
    return result, x


def recurrence_cycles(p: Pass, arch: Arch) -> int:
    """Completion time by direct recurrence over rows (unbounded buffer and banks):
    DRAM arrival, decoder-unit start/finish with the lane-FIFO slot constraint, lane
    pop (once the row's last output is there, ``latency`` after its finish) and finish
    (at least one cycle per row)."""
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
        pop[r] = max(finish[r] + p.latency, lane_free[lane])
        done[r] = pop[r] + max(1, int(p.macs[r]) * arch.batch)
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
    rows=row_lists(operands=30, bits=(1, 2000), decode=50, most=80),
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
    assert result.lane_cycles["busy"] == int(np.maximum(p.macs * arch.batch, 1).sum())


def test_dense_and_bitmap_style_layers_equal_the_closed_form():
    # dense int8 64x64: 512 bits/row, no decoder; bitmap: mask 64 + 16 values x 8 bits,
    # one 64-bit slice per cycle.
    for p in (uniform(64, 64, 512, 0, latency=0), uniform(64, 16, 64 + 128, 1)):
        for arch in (arch_of(lanes=4, decoders=2), arch_of(lanes=16, decoders=4, batch=4)):
            result, _ = run(p, arch)
            assert result.cycles == estimate_pass(p, arch).cycles


def test_a_one_row_lane_fifo_starves_the_lane():
    # the decoder may start row r + P only when the lane has taken row r (one latency
    # cycle after the unit is done with it), so with a one-row FIFO the lane waits for
    # every row's decode and handoff: FIFO backpressure the closed form does not see
    p = uniform(3, 1, 1, 0)
    arch = arch_of(lanes=1, decoders=1, dram_bytes_per_cycle=0.5, dram_latency_cycles=0)
    deep, _ = run(p, arch)
    shallow, _ = run(p, dataclasses.replace(arch, lane_fifo_rows=1))
    assert deep.cycles == estimate_pass(p, arch).cycles == 6
    assert shallow.cycles == 8 == recurrence_cycles(p, dataclasses.replace(arch, lane_fifo_rows=1))


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
    # the same rows with 1000 times the operands: the cycles grow 700-fold, the events
    # stay a few per row (a process yields only to wait for another or for its work)
    short, _ = run(uniform(64, 4, 64, 1), arch_of(lanes=4, decoders=2))
    long, _ = run(uniform(64, 4000, 64, 1, n=4096), arch_of(lanes=4, decoders=2))
    assert long.cycles > 500 * short.cycles / 10
    assert max(long.events, short.events) <= 3 * 64
    mixed = make_pass([5, 40, 0, 12] * 64, [900, 300, 64, 2000] * 64, [3, 0, 9, 1] * 64)
    result, _ = run(mixed, arch_of(lanes=16, decoders=4, dram_bytes_per_cycle=4.0))
    assert result.events <= 5 * mixed.rows


def test_lane_states_are_reported_in_order():
    result, _ = run(uniform(8, 2, 64, 1), arch_of(lanes=2, decoders=1))
    assert tuple(result.lane_cycles) == LANE_STATES


def test_activations_must_match_the_pass():
    p = uniform(4, 2, 64, 1)
    with pytest.raises(ValueError, match=r"x must have shape \(64, columns >= 1\)"):
        simulate_pass(p, arch_of(), np.zeros((3, 1)))


@settings(max_examples=300, deadline=None)
@given(
    rows=row_lists(operands=12, bits=(0, 900), decode=30, most=60),
    lanes_log=st.integers(0, 3),
    units_log=st.integers(0, 3),
    bw=st.sampled_from([0.3, 1.0, 3.5, 7.7, 12.5, 64.0]),
    latency=st.integers(0, 40),
    fifo=st.integers(1, 3),
    head=st.integers(0, 3),
    out_latency=st.integers(0, 2),
    buffer_rows=st.sampled_from([1.0, 1.5, 3.0, 100.0]),
    bank_width=st.sampled_from([1, 4, 16]),
    columns=st.integers(1, 3),
)
def test_the_recurrence_gives_the_event_timeline(
    rows,
    lanes_log,
    units_log,
    bw,
    latency,
    fifo,
    head,
    out_latency,
    buffer_rows,
    bank_width,
    columns,
):
    # small buffers (the channel waits for space), one-row FIFOs, fractional
    # bandwidths, rows without bits, decode cycles or operands
    nnz, bits, decode = zip(*rows, strict=True)
    lanes = 1 << lanes_log
    units = 1 << min(units_log, lanes_log)
    p = make_pass(nnz, bits, decode, n=16, head=head, latency=out_latency)
    largest = max(1, -(-max(bits) // 8))
    arch = Arch(
        lanes=lanes,
        decoders=units,
        buffer_banks=units,
        buffer_bytes=int(largest * buffer_rows),
        bank_bytes_per_cycle=bank_width,
        dram_bytes_per_cycle=bw,
        dram_latency_cycles=latency,
        lane_fifo_rows=fifo,
    )
    assert_engines_agree(p, arch, columns)


def assert_engines_agree(p: Pass, arch: Arch, columns: int) -> None:
    """The recurrence gives the SimPy processes' timeline, field for field."""
    timeline, _ = event_timeline(p, arch, columns)
    fast = pass_timeline(p, arch, columns)
    for field in dataclasses.fields(timeline):
        np.testing.assert_array_equal(getattr(fast, field.name), getattr(timeline, field.name))


def test_dram_time_is_exact_for_fractional_bandwidths():
    # 7 rows of 100 bits at 0.3 bytes/cycle: 700 / (8 · 3/10) = 291.666… cycles; the
    # last row is there at 292, read in 1 cycle, out 1 cycle later, 1 multiply
    p = uniform(7, 1, 100, 0)
    result, _ = run(p, arch_of(dram_bytes_per_cycle=0.3, dram_latency_cycles=0))
    assert result.dram_cycles == 7000 / 24
    assert result.cycles == 292 + 3


def test_the_recurrence_refuses_a_machine_where_banks_can_be_short():
    p = uniform(8, 2, 64, 1)
    arch = arch_of(lanes=8, decoders=8, buffer_banks=4)
    x = np.ones((p.shape[1], 1))
    with pytest.raises(ValueError, match=r"buffer.banks = 4 < arch.decoders = 8"):
        simulate_pass(p, arch, x, engine="recurrence")
    assert simulate_pass(p, arch, x).engine == "event"
    assert simulate_pass(p, arch_of(lanes=8, decoders=4), x).engine == "recurrence"
    with pytest.raises(ValueError, match=r"engine = 'fast'; allowed: auto, event, recurrence"):
        simulate_pass(p, arch, x, engine="fast")


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.integers(0, 6),  # operands
            st.integers(1, 6),  # record words
            st.integers(0, 12),  # decode cycles
            st.lists(st.integers(1, 4), min_size=5, max_size=5),  # gaps between reads
            st.integers(0, 3),  # band words before the row
        ),
        min_size=1,
        max_size=40,
    ),
    lanes_log=st.integers(0, 2),
    units_log=st.integers(0, 2),
    fifo=st.integers(1, 3),
    spare=st.integers(0, 4),
    width=st.sampled_from([1, 4, 8]),
    columns=st.integers(1, 2),
)
def test_the_tile_banks_time_alike_in_both_engines(
    rows, lanes_log, units_log, fifo, spare, width, columns
):
    # the tile's banks (Pass.reads): word by word, a slot free after its word's read;
    # banks from the longest record to 4 words more (the stream waits on them)
    nnz, words, decode, gaps, bands = zip(*rows, strict=True)
    lanes = 1 << lanes_log
    units = 1 << min(units_log, lanes_log)
    word = 8 * width
    p = make_pass(nnz, [w * word for w in words], decode, n=16, latency=2)
    reads = np.concatenate(
        [np.concatenate([[0], np.cumsum(g[: w - 1])]) for w, g in zip(words, gaps, strict=True)]
    )
    band = np.array(bands, dtype=np.int64) * word
    p = dataclasses.replace(p, reads=reads.astype(np.int64), band_bits=band)
    arch = Arch(
        lanes=lanes,
        decoders=units,
        buffer_banks=units,
        buffer_bytes=units * (max(words) + spare) * width,
        bank_bytes_per_cycle=width,
        dram_bytes_per_cycle=width,
        dram_latency_cycles=0,
        lane_fifo_rows=fifo,
    )
    assert_engines_agree(p, arch, columns)


def test_a_tile_bank_frees_a_word_the_cycle_after_it_is_read():
    # one unit decoding 10 cycles a row, 2-word records read at start and start + 1,
    # a 2-word bank: row 1's words go in at 3 and 4 (after row 0's reads at 2 and 3),
    # row 2's wait for row 1's reads at 12 and 13 (a pooled buffer would hold them
    # until the rows are decoded: ready 14 and 24)
    p = dataclasses.replace(make_pass([1] * 3, [128] * 3, [10] * 3), reads=np.array([0, 1] * 3))
    arch = Arch(
        lanes=1,
        decoders=1,
        buffer_banks=1,
        buffer_bytes=16,
        bank_bytes_per_cycle=8,
        dram_bytes_per_cycle=8,
        dram_latency_cycles=0,
        lane_fifo_rows=3,
    )
    for timeline in (event_timeline(p, arch, 1)[0], pass_timeline(p, arch, 1)):
        assert timeline.ready.tolist() == [2, 5, 15]
        assert timeline.start.tolist() == [2, 12, 22]
        assert timeline.dram_blocked == 1 + 8


def test_a_tile_record_longer_than_its_bank_is_an_error():
    p = dataclasses.replace(make_pass([1, 1], [64, 192], [1, 1]), reads=np.arange(4))
    arch = Arch(decoders=1, buffer_banks=1, buffer_bytes=16, bank_bytes_per_cycle=8)
    with pytest.raises(ConfigError, match=r"row 1 of test is 3 words, more than a bank of 2"):
        event_timeline(p, arch, 1)
