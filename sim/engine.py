"""The event-driven accelerator model: one pass of a layer through DRAM, buffer,
decoder units and MAC lanes, at transaction (row) granularity with exact cycles.

Processes (SimPy; time unit = one clock cycle, every timestamp an integer):

* **DRAM**: one channel streams the rows in order. Row r's transfer starts when the
  channel is free, the row's gate is open (on the tile: the band buffer an LBI band
  record overwrites is free, ``latency`` cycles after the rows using it are decoded) and
  the weight buffer has room for its bits, lasts bits_r / (8·bandwidth) cycles
  (fractional; kept exactly as integer ticks, :func:`codesign.sim.timeline.dram_ticks`,
  so a stream of rows costs ⌈Σ bits / (8·bandwidth)⌉ cycles; the bits of a band record
  sent before the row count here but never occupy the buffer) and the row is usable
  ``dram_latency_cycles`` after its end rounded up to a cycle. Requests are pipelined.
  On the tile (:attr:`~codesign.sim.work.Pass.reads`) the buffer is a bank per unit
  instead (:class:`~codesign.sim.timeline.Banks`): the row's words go in one a cycle,
  each when its bank has a slot, free the cycle after the unit read the word that held
  it (the channel waits for that row's start when it has not started).
* **Decoder unit** d (rows r ≡ d mod D, in order): waits for the row's data, for a free
  slot in its lane's FIFO and for a buffer bank, then is busy
  max(decode_cycles[r] (+ head_cycles on its first row), ⌈row bytes / bank width⌉)
  cycles, frees the row's buffer space and queues the row for its lane; the row's
  last output is there ``latency`` cycles later.
* **Lane** l (rows r ≡ l mod P): takes its next row once the row's last output is
  there (``latency`` cycles after its unit is done), freeing the FIFO slot, multiplies
  its operands with every column of X (one multiply-accumulate per cycle: operands ×
  columns cycles, at least one: a lane takes one row a cycle; the columns are the
  batch, times the tokens or output pixels a row is reused over,
  :mod:`codesign.sim.geometry`) and accumulates the row's outputs. On the tile the
  results then leave through its output port
  (:func:`codesign.sim.timeline.output_times`).

No process ticks while it waits, and a process yields only when it must wait for
another one or for its own work to take time: the channel is the only process that
fills the buffer and the buffer only empties until it fills it again, so it schedules
each row as soon as the row fits (a row that does not fit waits for the decoder units
to free space); a unit waits for the data, the FIFO slot (only this unit takes that
lane's slots) and its work in one timeout when no bank can be short; a lane waits for
its row and multiplies in one timeout. So a row costs a few events whatever its cycles.

Same-cycle requests for a buffer bank (D > banks) are served in the order SimPy
processes them. When no bank can be short (banks >= D), the pass is also computed by
the row-order recurrence of :mod:`codesign.sim.recurrence`, which gives the same
timeline, cycle for cycle; :func:`simulate_pass` uses it by default then
(``engine="auto"``) and keeps these processes as the reference (``engine="event"``).

The lanes' product (the pass's operands times X) does not depend on timing: it is
computed once per pass (:meth:`codesign.sim.work.Pass.apply`). A lane's cycles are
accounted without gaps from the timeline (:func:`codesign.sim.timeline.pass_result`):
``busy`` + ``fill`` (waiting for its first row) + the waits attributed to what its
decoder unit was doing meanwhile — ``bandwidth`` (waiting for DRAM data), ``decoder``
(decoding, or the output latency), ``bank`` (waiting for a buffer bank), ``imbalance``
(blocked by another lane's full FIFO) — + ``imbalance`` again for the tail after its
last row while other lanes still work.
"""

from __future__ import annotations

import time

import numpy as np
import simpy

from codesign.sim.arch import Arch
from codesign.sim.recurrence import pass_timeline, recurrence_refusal
from codesign.sim.timeline import (
    LANE_STATES,
    Banks,
    PassResult,
    Timeline,
    check_fits,
    dram_ticks,
    lane_time,
    pass_result,
    row_busy,
)
from codesign.sim.work import Pass

__all__ = ["ENGINES", "LANE_STATES", "PassResult", "event_timeline", "simulate_pass"]

ENGINES = ("auto", "event", "recurrence")
"""How :func:`simulate_pass` times a pass: ``event`` (the SimPy processes, the
reference), ``recurrence`` (:mod:`codesign.sim.recurrence`; only where no buffer bank
can be short) or ``auto`` (the recurrence where it applies, else the processes)."""


class _Machine:
    """The SimPy processes of one pass and the timestamps they record."""

    def __init__(self, p: Pass, arch: Arch, columns: int) -> None:
        m, self.p, self.arch = p.rows, p, arch
        self.env = simpy.Environment()
        self.bits = p.row_bits.tolist()
        self.dram_bits = p.dram_bits.tolist()
        self.gates = [g.tolist() for g in p.gates]
        self.busy = row_busy(p, arch).tolist()
        self.macs = lane_time(p, columns).tolist()
        self.capacity = 8 * arch.buffer_bytes
        self.level = 0  # bits in the buffer, counted from the channel's request
        self.space: simpy.Event | None = None  # the channel waits for room for `need` bits
        self.need = 0
        self.tile_banks = Banks.of(p, arch)
        self.bank_reads: list[list[int]] = [[] for _ in range(arch.decoders)]
        self.start_wait: list[simpy.Event | None] = [None] * arch.decoders
        self.banks = simpy.Resource(self.env, arch.buffer_banks)
        if arch.buffer_banks >= arch.decoders:
            self.banks = None  # a bank is always free
        self.slots = [arch.lane_fifo_rows] * arch.lanes
        # the event a unit (data, slot) or a lane (row) waits on, when it waits
        self.data_wait: list[simpy.Event | None] = [None] * arch.decoders
        self.slot_wait: list[simpy.Event | None] = [None] * arch.lanes
        self.row_wait: list[simpy.Event | None] = [None] * arch.lanes
        self.decode_wait: list[simpy.Event | None] = [None]  # the channel, for a gate
        self.ready: list[int | None] = [None] * m
        self.decoded: list[int | None] = [None] * m
        self.slot, self.start, self.taken, self.done = ([0] * m for _ in range(4))
        self.dram_ticks = 0
        self.written = [0] * arch.decoders  # words each unit's bank received (tile)
        self.dram_blocked = 0
        self.gate_blocked = 0

    def _gate(self, r: int):
        """Wait until every row of row r's gate is decoded; the time it opens."""
        lo, hi = self.gates[0][r], self.gates[1][r]
        while any(self.decoded[k] is None for k in range(lo, hi)):
            self.decode_wait[0] = event = self.env.event()
            yield event
        return max(self.decoded[k] for k in range(lo, hi)) + self.p.latency

    def dram(self):
        env, units = self.env, self.arch.decoders
        per_bit, per_cycle = dram_ticks(self.arch)
        latency = self.arch.dram_latency_cycles
        free = 0  # ticks: end of the channel's last transfer
        clock = 0  # cycles: when the channel asked for room for its last row
        for r, bits in enumerate(self.bits):
            clock = asked = max(clock, free // per_cycle)
            if self.gates[1][r] > self.gates[0][r]:
                opens = yield from self._gate(r)
                if opens > clock:
                    self.gate_blocked += max(0, opens - max(clock, -(-free // per_cycle)))
                    clock = asked = opens
            if self.tile_banks is not None:
                free = yield from self._to_bank(r, clock * per_cycle, free, per_bit, per_cycle)
                self.dram_ticks += self.dram_bits[r] * per_bit
                self.ready[r] = -(-free // per_cycle) + latency
                _wake(self.data_wait, r % units)
                continue
            if bits:
                if self.level + bits > self.capacity:
                    self.need, self.space = bits, env.event()
                    yield self.space
                    clock = max(asked, env.now)
                self.level += bits
            if clock > asked and clock * per_cycle > free:
                self.dram_blocked += clock - max(asked, -(-free // per_cycle))
            free = max(clock * per_cycle, free) + self.dram_bits[r] * per_bit
            self.dram_ticks += self.dram_bits[r] * per_bit
            self.ready[r] = -(-free // per_cycle) + latency
            _wake(self.data_wait, r % units)

    def _to_bank(self, r: int, asked: int, free: int, per_bit: int, per_cycle: int):
        """Row r's words into its unit's bank of the tile (:class:`Banks`), after its
        band record: each waits for a slot, free from the cycle after the unit read the
        word ``capacity`` earlier (waiting for that row's start when it has not started);
        the tick its transfer ends."""
        tile, u = self.tile_banks, r % self.arch.decoders
        at = max(asked, free) + (self.dram_bits[r] - self.bits[r]) * per_bit
        word = tile.word_bits * per_bit
        reads = self.bank_reads[u]
        for _ in range(int(tile.words[r])):
            k = self.written[u]
            if k >= tile.capacity:
                while len(reads) <= k - tile.capacity:
                    self.start_wait[u] = event = self.env.event()
                    yield event
                room = (reads[k - tile.capacity] + 1) * per_cycle
                if room > at:
                    self.dram_blocked += (room - at) // per_cycle
                    at = room
            at += word
            self.written[u] += 1
        return at

    def _started(self, r: int, d: int) -> None:
        """Row r started on unit d: its words' read cycles (on the tile)."""
        if self.tile_banks is not None:
            tile = self.tile_banks
            lo, hi = tile.read_ptr[r], tile.read_ptr[r + 1]
            self.bank_reads[d].extend(self.start[r] + int(o) for o in tile.reads[lo:hi])
            _wake(self.start_wait, d)

    def _free(self, bits: int) -> None:
        self.level -= bits
        if self.space is not None and self.level + self.need <= self.capacity:
            event, self.space = self.space, None
            event.succeed()

    def decoder(self, d: int):
        env, lanes = self.env, self.arch.lanes
        for r in range(d, self.p.rows, self.arch.decoders):
            lane = r % lanes
            if self.ready[r] is None:
                self.data_wait[d] = event = env.event()
                yield event
            ready, busy = self.ready[r], self.busy[r]
            if self.slots[lane] and self.banks is None:
                # data, slot (held: only this unit takes this lane's slots), work
                self.slots[lane] -= 1
                self.slot[r] = self.start[r] = start = max(env.now, ready)
                self._started(r, d)
                if start + busy > env.now:
                    yield env.timeout(start + busy - env.now)
            else:
                if ready > env.now:
                    yield env.timeout(ready - env.now)
                if not self.slots[lane]:
                    self.slot_wait[lane] = event = env.event()
                    yield event
                self.slots[lane] -= 1
                self.slot[r] = env.now
                request = None if self.banks is None else self.banks.request()
                if request is not None:
                    yield request
                self.start[r] = env.now
                self._started(r, d)
                if busy:
                    yield env.timeout(busy)
                if request is not None:
                    self.banks.release(request)
            if self.tile_banks is None:
                self._free(self.bits[r])
            self.decoded[r] = env.now
            _wake(self.row_wait, lane)
            _wake(self.decode_wait, 0)

    def lane(self, lane: int):
        env, latency = self.env, self.p.latency
        for r in range(lane, self.p.rows, self.arch.lanes):
            if self.decoded[r] is None:
                self.row_wait[lane] = event = env.event()
                yield event
            there = self.decoded[r] + latency
            if there > env.now:
                yield env.timeout(there - env.now)
            self.taken[r] = taken = env.now
            self.slots[lane] += 1
            _wake(self.slot_wait, lane)
            self.done[r] = done = taken + self.macs[r]
            yield env.timeout(done - taken)

    def run(self) -> tuple[Timeline, int]:
        env = self.env
        env.process(self.dram())
        for d in range(self.arch.decoders):
            env.process(self.decoder(d))
        for lane in range(self.arch.lanes):
            env.process(self.lane(lane))
        events = 0
        step = env.step
        try:
            while True:
                step()
                events += 1
        except simpy.core.EmptySchedule:
            pass
        times = (self.ready, self.slot, self.start, self.decoded, self.taken, self.done)
        arrays = [np.array(t, dtype=np.int64) for t in times]
        timeline = Timeline(*arrays, self.dram_ticks, self.dram_blocked, self.gate_blocked)
        return timeline, events


def _wake(waiting: list[simpy.Event | None], i: int) -> None:
    """Trigger ``waiting[i]`` (the event a process waits on), if any, and clear it."""
    event = waiting[i]
    if event is not None:
        waiting[i] = None
        event.succeed()


def event_timeline(p: Pass, arch: Arch, columns: int) -> tuple[Timeline, int]:
    """The timeline of pass ``p`` on ``arch`` with ``columns`` columns of X, timed by
    the SimPy processes, and the number of SimPy events they processed."""
    check_fits(p, arch)
    return _Machine(p, arch, columns).run()


def simulate_pass(p: Pass, arch: Arch, x: np.ndarray, engine: str = "auto") -> PassResult:
    """Simulate pass ``p`` on ``arch`` with activations ``x`` (n, columns): the batch's
    columns (times the reuse of :mod:`codesign.sim.geometry`). ``engine``: one of
    :data:`ENGINES`."""
    if x.ndim != 2 or x.shape[0] != p.shape[1] or x.shape[1] < 1:
        raise ValueError(f"x must have shape ({p.shape[1]}, columns >= 1), got {x.shape}")
    if engine not in ENGINES:
        raise ValueError(f"engine = {engine!r}; allowed: {', '.join(ENGINES)}")
    check_fits(p, arch)
    columns = x.shape[1]
    refusal = recurrence_refusal(p, arch, columns)
    if engine == "recurrence" and refusal:
        raise ValueError(f"engine = 'recurrence' cannot time this pass: {refusal}")
    start = time.perf_counter()
    if engine == "event" or refusal:
        timeline, events = event_timeline(p, arch, columns)
        chosen = "event"
    else:
        timeline, events, chosen = pass_timeline(p, arch, columns), 0, "recurrence"
    seconds = time.perf_counter() - start
    return pass_result(p, arch, columns, timeline, p.apply(x), chosen, events, seconds)
