"""What the rows of a pass did and when, and the figures read from it.

Both ways of running the machine of :mod:`codesign.sim.engine` — the SimPy processes
(the reference) and the row-order recurrence of :mod:`codesign.sim.recurrence` — produce
the same :class:`Timeline`: a handful of cycle timestamps per row. Every figure of a
:class:`PassResult` (lane cycles by cause, decoder-unit states, work per lane and unit,
DRAM figures) is then computed from the timeline by :func:`pass_result`, the same code
for both, so the two can only differ where their timestamps differ.

Units: cycles (int64). DRAM transfers are fractional (bits / (8·bandwidth) cycles); they
are kept exactly as integer *ticks* of 1 / (8·p) cycle for a bandwidth of p / q bytes per
cycle in lowest terms (:func:`dram_ticks`): a row of b bits transfers in b·q ticks.
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import numpy as np

from codesign.sim.arch import Arch, ConfigError
from codesign.sim.work import Pass

#: Lane cycle categories, in report order (they sum to the pass's cycles per lane).
LANE_STATES = ("busy", "fill", "bandwidth", "decoder", "bank", "imbalance", "output")
#: Decoder-unit states, in the order a unit goes through them for each row.
UNIT_STATES = ("data", "slot", "bank", "work")
#: The lane stall a decoder-unit state causes (after its last row a unit is ``done``:
#: a lane still waiting then waits for other lanes, ``imbalance``).
CAUSE = {"data": "bandwidth", "slot": "imbalance", "bank": "bank", "work": "decoder"}


@dataclasses.dataclass(frozen=True)
class PassResult:
    """Outcome of one simulated pass.

    ``cycles``: clock cycles from the first DRAM request to the last lane's last
    multiply-accumulate (on the tile: to its result's output handshake).
    ``lane_cycles``: cycles per category of :data:`LANE_STATES`, summed over the P lanes
    (so they add up to P·cycles); ``busy`` counts a lane's multiply-accumulates and the
    take of each empty row, ``output`` the cycles after the last multiply-accumulate
    until the last result has left (the tile's output port). ``lane_work`` (P,) and
    ``decoder_work`` (D,): busy cycles of each lane and decoder unit. ``dram_cycles``:
    cycles the channel spent transferring; ``dram_blocked``: cycles it waited for
    buffer space; ``gate_blocked``: cycles it waited for a band buffer (a gate);
    ``port_blocked``: cycles the tile's output port added at the end of the pass (the
    last result's wait behind others, beyond ``arch.output_cycles``).
    ``decoder_states``: cycles per decoder-unit state (data, slot, bank, work), summed
    over the D units. ``output``: (m, B) float64, the rows the lanes computed.
    ``engine``: ``"event"`` (SimPy) or ``"recurrence"``; ``events``: SimPy events
    processed (0 for the recurrence); ``engine_s``: wall seconds the engine took to time
    the pass (the lanes' product not included).
    """

    cycles: int
    lane_cycles: dict[str, int]
    lane_work: np.ndarray
    decoder_work: np.ndarray
    dram_cycles: float
    dram_blocked: int
    gate_blocked: int
    port_blocked: int
    decoder_states: dict[str, int]
    output: np.ndarray
    events: int
    engine: str
    engine_s: float


@dataclasses.dataclass(frozen=True)
class Timeline:
    """Per-row timestamps of a pass, (m,) int64 cycles each, for row r on decoder unit
    r mod D and lane r mod P:

    ``ready``: the row's data is usable in the buffer (its DRAM transfer ended, plus the
    latency); ``slot``: its unit, having the data, holds a slot of the lane's FIFO;
    ``start``: the unit holds a buffer bank and starts decoding; ``decoded``: the unit
    is done (the row's buffer space is freed and the row queued for its lane);
    ``taken``: the lane takes the row from its FIFO (no sooner than ``decoded`` + the
    pass's latency: the row's last output is there); ``done``: the end of the lane's
    work on the row, max(1, operands × columns) cycles after ``taken`` (a lane takes at
    most one row a cycle).

    ``dram_ticks``: transfer time of all rows in ticks (module docstring);
    ``dram_blocked``: cycles the channel waited for buffer space; ``gate_blocked``:
    cycles it waited for a gate (:class:`~codesign.sim.work.Pass`).
    """

    ready: np.ndarray
    slot: np.ndarray
    start: np.ndarray
    decoded: np.ndarray
    taken: np.ndarray
    done: np.ndarray
    dram_ticks: int
    dram_blocked: int
    gate_blocked: int = 0


def lane_time(p: Pass, columns: int) -> np.ndarray:
    """(m,) int64: cycles a lane spends on each row: max(1, operands × columns)."""
    return np.maximum(p.macs * columns, 1)


def output_times(done: np.ndarray, arch: Arch) -> np.ndarray:
    """(m,) int64: when each row's result has left the machine. Without an output port
    (the abstract machine) that is ``done``; on the tile, results leave through one port
    a row per cycle, ``arch.output_cycles`` after ``done`` at the soonest, in the order
    they are ready: the k-th ready leaves at max(ready_k, leave_(k−1) + 1)."""
    latency = arch.output_cycles
    if latency is None or not done.size:
        return done.copy()
    order = np.argsort(done, kind="stable")
    ready = done[order] + latency
    steps = np.arange(done.size, dtype=np.int64)
    left = np.empty_like(done)
    left[order] = np.maximum.accumulate(ready - steps) + steps
    return left


def read_cycles(p: Pass, arch: Arch) -> np.ndarray:
    """(m,) int64: cycles a decoder unit needs to read each row from one bank."""
    return -(-p.row_bits // (8 * arch.bank_bytes_per_cycle))


def unit_cycles(p: Pass, arch: Arch) -> np.ndarray:
    """(m,) int64: busy cycles of a decoder unit per row (decode or read, the slower;
    the head cycles of a unit's first row are added by :func:`row_busy`)."""
    return np.maximum(p.decode_cycles, read_cycles(p, arch))


def row_busy(p: Pass, arch: Arch) -> np.ndarray:
    """(m,) int64: cycles a decoder unit is busy with each row: :func:`unit_cycles`, the
    first row of every unit (rows 0 … D−1) max(decode + head cycles, read) instead."""
    busy = unit_cycles(p, arch)
    first = slice(0, arch.decoders)
    busy[first] = np.maximum(p.decode_cycles[first] + p.head_cycles, read_cycles(p, arch)[first])
    return busy


def dram_ticks(arch: Arch) -> tuple[int, int]:
    """(ticks per bit, ticks per cycle) of the DRAM channel: for a bandwidth of p / q
    bytes per cycle (the decimal value of ``dram_bytes_per_cycle``, in lowest terms), a
    bit takes q ticks and a cycle is 8·p ticks."""
    rate = Fraction(str(arch.dram_bytes_per_cycle))
    return rate.denominator, 8 * rate.numerator


@dataclasses.dataclass(frozen=True)
class Banks:
    """The tile's buffer (a pass with :attr:`~codesign.sim.work.Pass.reads`): a bank of
    ``capacity`` words of ``word_bits`` bits per decoder unit, filled word by word in
    stream order; ``words`` (m,): words of each row's record; ``reads`` and ``read_ptr``
    (m + 1,): row r's words are read ``reads[read_ptr[r]:read_ptr[r + 1]]`` cycles after
    its start."""

    capacity: int
    word_bits: int
    words: np.ndarray
    reads: np.ndarray
    read_ptr: np.ndarray

    @classmethod
    def of(cls, p: Pass, arch: Arch) -> Banks | None:
        """The banks of ``p`` on ``arch`` (None: the abstract machine's pooled buffer)."""
        if p.reads is None:
            return None
        word_bits = 8 * arch.bank_bytes_per_cycle
        words = (p.row_bits // word_bits).astype(np.int64)
        ptr = np.zeros(p.rows + 1, dtype=np.int64)
        np.cumsum(words, out=ptr[1:])
        capacity = arch.buffer_bytes // (arch.decoders * arch.bank_bytes_per_cycle)
        return cls(capacity, word_bits, words, np.asarray(p.reads, dtype=np.int64), ptr)


def check_fits(p: Pass, arch: Arch) -> None:
    """Raise :class:`ConfigError` when one row's compressed data exceeds the buffer (on
    the tile: its unit's bank, :class:`Banks`)."""
    banks = Banks.of(p, arch)
    if banks is not None and banks.words.max(initial=0) > banks.capacity:
        r = int(banks.words.argmax())
        raise ConfigError(
            f"row {r} of {p.name} is {int(banks.words[r])} words, more than a bank of "
            f"{banks.capacity} words (arch.buffer.bytes / arch.decoders); its unit would "
            f"never start it"
        )
    largest = int(p.row_bits.max(initial=0))
    need = -(-largest // 8)
    if need > arch.buffer_bytes:
        raise ConfigError(
            f"arch.buffer.bytes = {arch.buffer_bytes} is smaller than one row of "
            f"{p.name} ({need} bytes compressed, row {int(p.row_bits.argmax())}); allowed: "
            f">= {need}"
        )


def _per(values: np.ndarray, groups: int) -> np.ndarray:
    """(groups,) int64 sums of ``values`` (m,) over rows r ≡ g mod ``groups``."""
    padded = np.zeros(-(-values.size // groups) * groups, dtype=np.int64)
    padded[: values.size] = values
    return padded.reshape(-1, groups).sum(axis=0)


def _previous(values: np.ndarray, step: int) -> np.ndarray:
    """(m,) ``values[r - step]``, 0 for r < step."""
    out = np.zeros_like(values)
    if step < values.size:
        out[step:] = values[:-step]
    return out


#: The lane stalls a decoder unit's state causes.
_STALL_CAUSES = ("bandwidth", "decoder", "bank", "imbalance")
#: (5 states, 4 stall causes) bool: the cause of each state of :data:`UNIT_STATES` and of
#: a unit done with its rows (``imbalance``).
_STATE_CAUSE = np.array(
    [[CAUSE.get(s, "imbalance") == c for c in _STALL_CAUSES] for s in (*UNIT_STATES, "done")]
)


def _unit_causes(t: Timeline, unit: np.ndarray, asked: np.ndarray, data: np.ndarray):
    """Boundaries (4k + 1,) of one decoder unit's k rows ``unit`` — asked, data, slot
    and start of each row, then the last row's end (segment j is in state
    ``UNIT_STATES[j % 4]``) — and (causes, 4k + 1) the cycles spent in each cause of
    :data:`_STALL_CAUSES` before each boundary."""
    bounds = np.stack([asked[unit], data[unit], t.slot[unit], t.start[unit]], axis=1).ravel()
    bounds = np.append(bounds, t.decoded[unit[-1]])
    own = np.tile(_STATE_CAUSE[:4], (unit.size, 1))  # (4k, causes)
    cum = np.zeros((len(_STALL_CAUSES), bounds.size), dtype=np.int64)
    cum[:, 1:] = np.cumsum(np.diff(bounds)[:, None] * own, axis=0).T
    return bounds, cum


def _overlap(bounds: np.ndarray, cum: np.ndarray, t0: np.ndarray, t1: np.ndarray) -> np.ndarray:
    """(causes,) cycles of the intervals [t0, t1) a unit spent in each cause (its
    :func:`_unit_causes`); time after the last boundary is ``imbalance`` (the unit is
    done)."""

    def at(times: np.ndarray) -> np.ndarray:
        j = np.searchsorted(bounds, times, side="right") - 1
        state = np.where(j == bounds.size - 1, 4, j % 4)
        return cum[:, j] + (times - bounds[j]) * _STATE_CAUSE[state].T

    return (at(t1) - at(t0)).sum(axis=1)


def pass_result(
    p: Pass,
    arch: Arch,
    columns: int,
    t: Timeline,
    output: np.ndarray,
    engine: str,
    events: int,
    seconds: float,
) -> PassResult:
    """The figures of a pass from its timeline (``columns``: columns of X)."""
    m, lanes, units = p.rows, arch.lanes, arch.decoders
    rows = np.arange(m)
    asked = _previous(t.decoded, units)
    data = np.maximum(asked, t.ready)
    states = {
        "data": int((data - asked).sum()),
        "slot": int((t.slot - data).sum()),
        "bank": int((t.start - t.slot).sum()),
        "work": int((t.decoded - t.start).sum()),
    }
    lane_work = _per(lane_time(p, columns), lanes)
    last_done = int(t.done.max(initial=0))
    cycles = int(output_times(t.done, arch).max(initial=0))
    lane_cycles = dict.fromkeys(LANE_STATES, 0)
    lane_cycles["busy"] = int(lane_work.sum())
    lane_cycles["fill"] = int(t.taken[:lanes].sum())
    # a lane waiting between rows: for what the unit did before the row was decoded,
    # then for the handoff (the pass's latency)
    waiting = _previous(t.done, lanes)
    handoff = t.taken[lanes:] - np.maximum(waiting[lanes:], t.decoded[lanes:])
    lane_cycles["decoder"] = int(np.maximum(handoff, 0).sum())
    until = np.minimum(t.taken, t.decoded)
    for u in range(min(units, m)):
        unit = rows[u::units]
        bounds, cum = _unit_causes(t, unit, asked, data)
        later = rows[lanes + u :: units]
        later = later[until[later] > waiting[later]]
        spent = _overlap(bounds, cum, waiting[later], until[later])
        for cause, cycles_in in zip(_STALL_CAUSES, spent, strict=True):
            lane_cycles[cause] += int(cycles_in)
    finish = np.zeros(lanes, dtype=np.int64)
    last = rows[-lanes:]
    finish[last % lanes] = t.done[last]
    lane_cycles["imbalance"] += int((last_done - finish).sum())
    lane_cycles["output"] = lanes * (cycles - last_done)
    return PassResult(
        cycles=cycles,
        lane_cycles=lane_cycles,
        lane_work=lane_work,
        decoder_work=_per(t.decoded - t.start, units),
        dram_cycles=t.dram_ticks / dram_ticks(arch)[1],
        dram_blocked=t.dram_blocked,
        gate_blocked=t.gate_blocked,
        port_blocked=cycles - last_done - (arch.output_cycles or 0) if m else 0,
        decoder_states=states,
        output=output,
        events=events,
        engine=engine,
        engine_s=seconds,
    )
