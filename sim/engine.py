"""The event-driven accelerator model: one pass of a layer through DRAM, buffer,
decoder units and MAC lanes, at transaction (row) granularity with exact cycles.

Processes (SimPy; time unit = one clock cycle, every timestamp an integer):

* **DRAM**: one channel streams the rows in order. Row r's transfer starts when the
  channel is free and the weight buffer has room for its bits, lasts
  bits_r / (8·bandwidth) cycles (fractional; kept exactly with :class:`~fractions.Fraction`
  so a stream of rows costs ⌈Σ bits / (8·bandwidth)⌉ cycles) and the row is usable
  ``dram_latency_cycles`` after its end rounded up to a cycle. Requests are pipelined.
* **Decoder unit** d (rows r ≡ d mod D, in order): waits for the row's data, for a free
  slot in its lane's FIFO and for a buffer bank, then is busy
  max(decode_cycles[r] (+ head_cycles on its first row), ⌈row bytes / bank width⌉)
  cycles, frees the row's buffer space and queues the row for its lane; the row's
  last output is there ``latency`` cycles later.
* **Lane** l (rows r ≡ l mod P): takes its next decoded row (freeing the FIFO slot),
  multiplies its operands with every column of X (one multiply-accumulate per cycle:
  operands × columns cycles; the columns are the batch, times the tokens or output
  pixels a row is reused over, :mod:`codesign.sim.geometry`) and accumulates the row's
  outputs.

No process ticks while it waits: every wait is a SimPy event. A lane's cycles are
accounted without gaps: ``busy`` + ``fill`` (waiting for its first row) + the waits
attributed to what its decoder unit was doing meanwhile — ``bandwidth`` (waiting for
DRAM data), ``decoder`` (decoding, or the output latency), ``bank`` (waiting for a
buffer bank), ``imbalance`` (blocked by another lane's full FIFO) — + ``imbalance``
again for the tail after its last row while other lanes still work.
"""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

import numpy as np
import simpy

from codesign.sim.arch import Arch, ConfigError
from codesign.sim.work import Pass

#: Lane cycle categories, in report order (they sum to the pass's cycles per lane).
LANE_STATES = ("busy", "fill", "bandwidth", "decoder", "bank", "imbalance")
#: What a decoder unit waits on or does; maps to the lane stall it causes.
_CAUSE = {"data": "bandwidth", "work": "decoder", "bank": "bank", "slot": "imbalance"}


@dataclasses.dataclass(frozen=True)
class PassResult:
    """Outcome of one simulated pass.

    ``cycles``: clock cycles from the first DRAM request to the last lane's last
    multiply-accumulate. ``lane_cycles``: cycles per category of :data:`LANE_STATES`,
    summed over the P lanes (so they add up to P·cycles). ``lane_work`` (P,) and
    ``decoder_work`` (D,): busy cycles of each lane and decoder unit. ``dram_cycles``:
    cycles the channel spent transferring; ``dram_blocked``: cycles it waited for
    buffer space. ``decoder_states``: cycles per decoder-unit state (data, slot, bank,
    work), summed over the D units. ``output``: (m, B) float64, the rows the lanes
    computed. ``events``: SimPy events processed.
    """

    cycles: int
    lane_cycles: dict[str, int]
    lane_work: np.ndarray
    decoder_work: np.ndarray
    dram_cycles: float
    dram_blocked: int
    decoder_states: dict[str, int]
    output: np.ndarray
    events: int


def read_cycles(p: Pass, arch: Arch) -> np.ndarray:
    """(m,) int64: cycles a decoder unit needs to read each row from one bank."""
    return -(-p.row_bits // (8 * arch.bank_bytes_per_cycle))


def unit_cycles(p: Pass, arch: Arch) -> np.ndarray:
    """(m,) int64: busy cycles of a decoder unit per row (decode or read, the slower;
    the head cycles of a unit's first row are added by the caller)."""
    return np.maximum(p.decode_cycles, read_cycles(p, arch))


def check_fits(p: Pass, arch: Arch) -> None:
    """Raise :class:`ConfigError` when one row's compressed data exceeds the buffer."""
    largest = int(p.row_bits.max(initial=0))
    need = -(-largest // 8)
    if need > arch.buffer_bytes:
        raise ConfigError(
            f"arch.buffer.bytes = {arch.buffer_bytes} is smaller than one row of "
            f"{p.name} ({need} bytes compressed, row {int(p.row_bits.argmax())}); allowed: "
            f">= {need}"
        )


class _Machine:
    """The SimPy processes of one pass and their bookkeeping."""

    def __init__(self, p: Pass, arch: Arch, x: np.ndarray) -> None:
        check_fits(p, arch)
        self.p, self.arch, self.x = p, arch, np.asarray(x, dtype=np.float64)
        self.env = simpy.Environment()
        m = p.rows
        self.bits = [int(b) for b in p.row_bits]
        self.work = [int(c) for c in unit_cycles(p, arch)]
        self.macs = [int(c) * self.x.shape[1] for c in p.macs]
        self.head = [
            int(c) for c in np.maximum(p.decode_cycles + p.head_cycles, read_cycles(p, arch))
        ]
        self.buffer = simpy.Container(self.env, capacity=8 * arch.buffer_bytes)
        self.banks = simpy.Resource(self.env, capacity=arch.buffer_banks)
        self.avail = [self.env.event() for _ in range(m)]
        self.slots = [
            simpy.Container(self.env, capacity=arch.lane_fifo_rows, init=arch.lane_fifo_rows)
            for _ in range(arch.lanes)
        ]
        self.queues = [simpy.Store(self.env) for _ in range(arch.lanes)]
        self.timeline: list[list[tuple[int, str]]] = [[] for _ in range(arch.decoders)]
        self.waits: list[list[tuple[int, int, str]]] = [[] for _ in range(arch.lanes)]
        self.finish = [0] * arch.lanes
        self.lane_work = np.zeros(arch.lanes, dtype=np.int64)
        self.decoder_work = np.zeros(arch.decoders, dtype=np.int64)
        self.output = np.zeros((m, self.x.shape[1]))
        self.dram_cycles = Fraction(0)
        self.dram_blocked = 0

    def dram(self):
        env, bw = self.env, Fraction(str(self.arch.dram_bytes_per_cycle))
        free_at = Fraction(0)
        for r, bits in enumerate(self.bits):
            wake = math.floor(free_at)
            if wake > env.now:
                yield env.timeout(wake - env.now)
            asked = env.now
            if bits:
                yield self.buffer.put(bits)
            start = max(Fraction(env.now), free_at)
            if env.now > asked and env.now > free_at:
                self.dram_blocked += env.now - max(asked, math.ceil(free_at))
            transfer = Fraction(bits, 8) / bw
            self.dram_cycles += transfer
            free_at = start + transfer
            ready = math.ceil(free_at) + self.arch.dram_latency_cycles
            env.timeout(ready - env.now).callbacks.append(self._arrived(r))

    def _arrived(self, r: int):
        return lambda _event: self.avail[r].succeed()

    def decoder(self, d: int):
        env, log, latency = self.env, self.timeline[d], self.p.latency
        first = True
        for r in range(d, self.p.rows, self.arch.decoders):
            lane = r % self.arch.lanes
            log.append((env.now, "data"))
            yield self.avail[r]
            log.append((env.now, "slot"))
            yield self.slots[lane].get(1)
            log.append((env.now, "bank"))
            with self.banks.request() as bank:
                yield bank
                busy = self.head[r] if first else self.work[r]
                log.append((env.now, "work"))
                if busy:
                    yield env.timeout(busy)
            self.decoder_work[d] += busy
            if self.bits[r]:
                yield self.buffer.get(self.bits[r])
            self.queues[lane].put((r, env.now + latency))
            first = False
        log.append((env.now, "done"))

    def lane(self, lane: int):
        env, p, waits = self.env, self.p, self.waits[lane]
        state = "fill"
        for r in range(lane, p.rows, self.arch.lanes):
            asked = env.now
            r_got, ready = yield self.queues[lane].get()
            assert r_got == r, f"lane {lane} got row {r_got}, expected {r}"
            waits.append((asked, env.now, state))
            self.slots[lane].put(1)
            if ready > env.now:
                waits.append((env.now, ready, "latency"))
                yield env.timeout(ready - env.now)
            if self.macs[r]:
                yield env.timeout(self.macs[r])
            self.lane_work[lane] += self.macs[r]
            s, e = p.indptr[r], p.indptr[r + 1]
            self.output[r] = p.vals[s:e].astype(np.float64) @ self.x[p.cols[s:e]]
            state = "wait"
        self.finish[lane] = env.now

    def run(self) -> PassResult:
        env = self.env
        env.process(self.dram())
        for d in range(self.arch.decoders):
            env.process(self.decoder(d))
        for lane in range(self.arch.lanes):
            env.process(self.lane(lane))
        events = 0
        while True:
            try:
                env.step()
            except simpy.core.EmptySchedule:
                break
            events += 1
        cycles = max(self.finish)
        return PassResult(
            cycles=int(cycles),
            lane_cycles=self._lane_cycles(cycles),
            lane_work=self.lane_work,
            decoder_work=self.decoder_work,
            dram_cycles=float(self.dram_cycles),
            dram_blocked=int(self.dram_blocked),
            decoder_states=self._decoder_states(),
            output=self.output,
            events=events,
        )

    def _decoder_states(self) -> dict[str, int]:
        out = dict.fromkeys(_CAUSE, 0)
        for log in self.timeline:
            for (t0, state), (t1, _) in zip(log, log[1:], strict=False):
                out[state] += t1 - t0
        return out

    def _lane_cycles(self, cycles: int) -> dict[str, int]:
        out = dict.fromkeys(LANE_STATES, 0)
        out["busy"] = int(self.lane_work.sum())
        for lane, waits in enumerate(self.waits):
            log = self.timeline[lane % self.arch.decoders]
            times = np.array([t for t, _ in log])
            for t0, t1, kind in waits:
                if t1 == t0:
                    continue
                if kind == "fill":
                    out["fill"] += t1 - t0
                elif kind == "latency":
                    out["decoder"] += t1 - t0
                else:
                    for state, span in _overlaps(times, log, t0, t1):
                        out[_CAUSE.get(state, "imbalance")] += span
            out["imbalance"] += cycles - self.finish[lane]
        return out


def _overlaps(times: np.ndarray, log: list[tuple[int, str]], t0: int, t1: int):
    """(state, cycles) of a decoder unit's ``log`` overlapping [t0, t1)."""
    i = max(int(np.searchsorted(times, t0, side="right")) - 1, 0)
    while i < len(log) and log[i][0] < t1:
        start = max(log[i][0], t0)
        end = min(log[i + 1][0] if i + 1 < len(log) else t1, t1)
        if end > start:
            yield log[i][1], end - start
        i += 1


def simulate_pass(p: Pass, arch: Arch, x: np.ndarray) -> PassResult:
    """Simulate pass ``p`` on ``arch`` with activations ``x`` (n, columns): the batch's
    columns (times the reuse of :mod:`codesign.sim.geometry`)."""
    if x.ndim != 2 or x.shape[0] != p.shape[1] or x.shape[1] < 1:
        raise ValueError(f"x must have shape ({p.shape[1]}, columns >= 1), got {x.shape}")
    return _Machine(p, arch, x).run()
