"""The machine of :mod:`codesign.sim.engine` as a recurrence over the rows, in order.

When no buffer bank can be short (``buffer_banks >= decoders``), nothing a row waits for
depends on a later row: the channel's request for row r waits only for buffer space
freed by rows before r; its unit waits for its data, for its previous row and for the
FIFO slot freed when the lane took row r − F·P (F = ``lane_fifo_rows``); its lane waits
for the row and for the lane's previous row. So one pass over the rows computes every
timestamp of the :class:`~codesign.sim.timeline.Timeline` the SimPy processes record:

* channel: asked_r = max(asked_{r−1}', ⌊free / tick⌋, the row's gate: max decoded_k
  over its gate rows + latency) (cycles; ``free``: end of the last transfer, in ticks of
  :func:`~codesign.sim.timeline.dram_ticks`); the request is granted at the first time
  t >= asked_r at which the bits of the rows not yet freed (a row is freed when its
  unit is done with it) plus bits_r fit in the buffer; free = max(t·tick, free) +
  dram_bits_r·q; ready_r = ⌈free / tick⌉ + DRAM latency;
* unit: slot_r = max(decoded_{r−D}, ready_r, taken_{r−F·P}); start_r = slot_r;
  decoded_r = start_r + busy_r (:func:`~codesign.sim.timeline.row_busy`);
* lane: taken_r = max(done_{r−P}, decoded_r + latency); done_r = taken_r +
  max(1, operands_r · columns).

The rows a unit frees come in its own row order, so the channel finds the next row to
be freed among the D units' oldest rows. On the tile
(:class:`~codesign.sim.timeline.Banks`) the request is granted word by word instead:
word k of unit u's bank at the first cycle after the read of word k − capacity, known
once that (earlier) row started: start + its read offset. The SimPy processes stay the
reference; the tests hold the two equal, timestamp for timestamp, on random passes and
machines (the tile's banks too) and on every example configuration. numba compiles the
loop once (cached on disk).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from codesign.sim.arch import Arch
from codesign.sim.timeline import Banks, Timeline, dram_ticks, lane_time, row_busy
from codesign.sim.work import Pass

_INT64_SAFE = 2**62
"""Tick counts the recurrence may reach (int64, with room for one addition)."""


def recurrence_refusal(p: Pass, arch: Arch, columns: int) -> str | None:
    """Why the recurrence cannot time pass ``p`` on ``arch`` (None: it can): a buffer
    bank can be short (D > banks: the order of same-cycle requests decides), or the
    pass's ticks could overflow 64-bit integers (an unusual bandwidth fraction)."""
    if arch.buffer_banks < arch.decoders:
        return (
            f"arch.buffer.banks = {arch.buffer_banks} < arch.decoders = {arch.decoders} "
            f"(units may wait for a bank)"
        )
    per_bit, per_cycle = dram_ticks(arch)
    bits = int(p.dram_bits.sum())
    # no timestamp exceeds the sum of every duration of the pass
    bound = (
        -(-bits * per_bit // per_cycle)
        + int(row_busy(p, arch).sum())
        + int(lane_time(p, columns).sum())
        + p.rows * (p.latency + arch.dram_latency_cycles + 1)
    )
    if bits * per_bit + bound * per_cycle >= _INT64_SAFE:
        return f"arch.dram.bytes_per_cycle = {arch.dram_bytes_per_cycle} needs ticks beyond int64"
    return None


def pass_timeline(p: Pass, arch: Arch, columns: int) -> Timeline:
    """The :class:`~codesign.sim.timeline.Timeline` of pass ``p`` on ``arch`` with
    ``columns`` columns of X. Only where :func:`recurrence_refusal` is None."""
    per_bit, per_cycle = dram_ticks(arch)
    gate_lo, gate_hi = p.gates
    banks = Banks.of(p, arch)
    empty = np.zeros(0, dtype=np.int64)
    *times, ticks, blocked, gated = _timeline(
        np.ascontiguousarray(p.row_bits, dtype=np.int64),
        np.ascontiguousarray(p.dram_bits, dtype=np.int64),
        np.ascontiguousarray(gate_lo, dtype=np.int64),
        np.ascontiguousarray(gate_hi, dtype=np.int64),
        row_busy(p, arch).astype(np.int64),
        lane_time(p, columns).astype(np.int64),
        p.latency,
        arch.decoders,
        arch.lanes,
        arch.lane_fifo_rows,
        8 * arch.buffer_bytes,
        per_bit,
        per_cycle,
        arch.dram_latency_cycles,
        0 if banks is None else banks.capacity,
        0 if banks is None else banks.word_bits * per_bit,
        empty if banks is None else banks.words,
        empty if banks is None else banks.reads,
        empty if banks is None else banks.read_ptr,
    )
    return Timeline(*times, int(ticks), int(blocked), int(gated))


@njit(cache=True)
def _timeline(
    bits,
    dram,
    gate_lo,
    gate_hi,
    busy,
    macs,
    latency,
    units,
    lanes,
    fifo,
    capacity,
    per_bit,
    per_cycle,
    lag,
    bank_cap,
    word_ticks,
    words,
    reads,
    read_ptr,
):
    m = bits.size
    ready = np.empty(m, np.int64)
    slot = np.empty(m, np.int64)
    decoded = np.empty(m, np.int64)
    taken = np.empty(m, np.int64)
    done = np.empty(m, np.int64)
    unit_free = np.zeros(units, np.int64)
    lane_free = np.zeros(lanes, np.int64)
    oldest = np.arange(units)  # per unit: its oldest row still in the buffer
    # the tile's banks (bank_cap > 0): per unit, the read cycle of every word written
    base = np.zeros(units + 1, np.int64)
    if bank_cap > 0:
        for r in range(m):
            base[r % units + 1] += words[r]
        for u in range(units):
            base[u + 1] += base[u]
    bank_read = np.zeros(base[units], np.int64)
    written = np.zeros(units, np.int64)
    free = 0
    clock = 0
    level = 0
    ticks = 0
    blocked = 0
    gated = 0
    for r in range(m):
        asked = max(clock, free // per_cycle)
        if gate_hi[r] > gate_lo[r]:
            opens = latency + decoded[gate_lo[r] : gate_hi[r]].max()
            if opens > asked:
                gated += max(0, opens - max(asked, -(-free // per_cycle)))
                asked = opens
        clock = asked
        u = r % units
        first = written[u]
        if bank_cap > 0:  # word by word into unit u's bank, after the band record
            at = max(clock * per_cycle, free) + (dram[r] - bits[r]) * per_bit
            for _ in range(words[r]):
                k = written[u]
                if k >= bank_cap:
                    room = (bank_read[base[u] + k - bank_cap] + 1) * per_cycle
                    if room > at:
                        blocked += (room - at) // per_cycle
                        at = room
                at += word_ticks
                written[u] += 1
            free = at
            ticks += dram[r] * per_bit
            ready[r] = -(-free // per_cycle) + lag
        elif bits[r] > 0:
            while True:
                for u in range(units):  # free every row decoded by `clock`
                    while oldest[u] < r and decoded[oldest[u]] <= clock:
                        level -= bits[oldest[u]]
                        oldest[u] += units
                if level + bits[r] <= capacity:
                    break
                nxt = -1
                for u in range(units):
                    if oldest[u] < r and (nxt < 0 or decoded[oldest[u]] < nxt):
                        nxt = decoded[oldest[u]]
                clock = nxt
            level += bits[r]
        if bank_cap == 0:
            if clock > asked and clock * per_cycle > free:
                blocked += clock - max(asked, -(-free // per_cycle))
            free = max(clock * per_cycle, free) + dram[r] * per_bit
            ticks += dram[r] * per_bit
            ready[r] = -(-free // per_cycle) + lag
        u = r % units
        lane = r % lanes
        s = max(unit_free[u], ready[r])
        if r >= fifo * lanes:
            s = max(s, taken[r - fifo * lanes])
        slot[r] = s
        for j in range(words[r] if bank_cap > 0 else 0):
            bank_read[base[u] + first + j] = s + reads[read_ptr[r] + j]
        decoded[r] = s + busy[r]
        unit_free[u] = decoded[r]
        taken[r] = max(lane_free[lane], decoded[r] + latency)
        done[r] = taken[r] + macs[r]
        lane_free[lane] = done[r]
    return ready, slot, slot.copy(), decoded, taken, done, ticks, blocked, gated
