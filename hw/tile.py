"""The sparse matrix-vector tile: Y = W·X from one encoded weight stream.

Parameters: a :class:`~codesign.models.tile.TileSpec` (lanes P, decoder units D, lane
FIFO rows, stream bytes W per beat, column and batch sizes, activation and accumulator
widths, the bank depth, the format and its spec); the simulator reads the same spec
(:func:`codesign.sim.arch.tile_arch`).

**Streams** (Verilog ports ``x__valid``, ``x__ready``, ``x__payload``, ``w__…``, ``y__…``):

* ``x`` (:func:`x_layout`): the activations, one row of X per beat (``data``: B signed
  activations, element b = column b of X; ``last`` on the layer's last row, which sets
  the layer's column count n ≤ n_cols). Taken after a reset, before any weight.
* ``w`` (:func:`~codesign.hw.tile_unit.word_layout`): the weight stream
  (:func:`codesign.models.tile.tile_stream`): ``data`` (8W bits), ``last`` on each
  record's last word. Taken once X is loaded: row records go to the bank of unit
  r mod D, LBI band records to the band buffer the band's rows read.
* ``y`` (:func:`~codesign.hw.tile_lane.y_layout`): one beat per row of W: ``row`` and the
  row's B accumulators (signed, two's complement, wrapping at accumulator_bits), in the
  order the lanes finish (rows of one lane in order).

**Inside** (docs/hardware.md has the diagram): the dispatcher writes each record into
its unit's bank (:class:`~codesign.hw.tile_unit.DecoderUnit`: bank, a decoder block of
hw/, the handoff to the lanes); the units fill the lanes' FIFOs
(:class:`~codesign.hw.tile_lane.MacLane`), each lane reads X from its own read port of
the activation memory and multiplies; a round-robin arbiter registers one lane's result
per cycle onto ``y``.

**Timing** (what :mod:`codesign.sim` models, every stream ready): a
row's record complete in its bank at cycle c may start at c + 1; it occupies its unit
max(decode cycles, record words) cycles (the format's rule of
:mod:`codesign.sim.decoders`); its lane may take it :data:`~codesign.models.tile.HANDOFF_CYCLES`
cycles after the unit is done and multiplies max(1, operands·B) cycles; its result is
on ``y`` by :data:`~codesign.models.tile.OUTPUT_CYCLES` cycles after the lane's last
multiply-accumulate of the row if the port is free (the port takes one row a cycle,
lanes finishing together queue for it). An LBI band record waits until every row of the band two
before has been committed (the band buffer it overwrites). The stream writes a record
into its unit's bank word by word while the bank has a free slot; a slot is free from
the cycle after the unit reads its word (the schedule of
:attr:`codesign.models.tile.TileStream.reads`), so a full bank holds the stream.

After a synchronous reset every bank, FIFO, lane and the output are empty, X is
unloaded and the next layer starts with its ``x`` beats; a layer is followed by a reset
before the next one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from codesign.hw import protocol
from codesign.hw.tile_lane import MacLane, lowest_set, y_layout
from codesign.hw.tile_unit import DecoderUnit, band_bits, word_layout
from codesign.models.specs import LbiSpec, Spec, ViterbiSpec
from codesign.models.tile import (
    HANDOFF_CYCLES,
    OUTPUT_CYCLES,
    RECORD_CYCLES,
    TILE_PARAMS,
    TileSpec,
)


def x_layout(tile: TileSpec) -> data.StructLayout:
    """An activation beat: ``data`` (B signed activations) and ``last``."""
    return data.StructLayout(
        {"data": data.ArrayLayout(tile.activation_bits, tile.batch), "last": 1}
    )


def tile_of(spec: Spec, params: Mapping[str, Any]) -> TileSpec:
    """The :class:`TileSpec` of a block spec (the format spec) and its parameters."""
    return TileSpec(format_spec=spec, **dict(params))


def check_params(spec: Spec, **params: Any) -> None:
    """Raise ``ValueError`` (naming the parameter and its range) for a tile the hardware
    cannot build."""
    tile_of(spec, params)


def _group(spec: Spec) -> tuple[int, int]:
    """(columns per decoder item, index bits per item) of a split format."""
    if isinstance(spec, ViterbiSpec):
        return spec.n_out, spec.n_in
    if isinstance(spec, LbiSpec):
        return spec.tile_cols, spec.rank
    return 1, 0


class SparseTile(wiring.Component):
    """The tile of ``tile`` (module docstring)."""

    def __init__(self, tile: TileSpec) -> None:
        self.tile = tile
        super().__init__(
            {
                "x": In(stream.Signature(x_layout(tile))),
                "w": In(stream.Signature(word_layout(tile))),
                "y": Out(stream.Signature(y_layout(tile))),
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        t = self.tile
        fmt = t.format
        units = [DecoderUnit(t, d) for d in range(t.decoders)]
        lanes = [MacLane(t, lane) for lane in range(t.lanes)]
        for d, unit in enumerate(units):
            m.submodules[f"unit{d}"] = unit
        for lane_index, lane in enumerate(lanes):
            m.submodules[f"lane{lane_index}"] = lane
            unit = units[lane_index % t.decoders]
            wiring.connect(m, unit.lanes[lane_index // t.decoders], lane.wr)

        # ---- activations: load, the layer's column count and its derived figures
        x = self.x
        m.submodules.xmem = xmem = memory.Memory(
            shape=t.batch * t.activation_bits, depth=t.n_cols, init=[]
        )
        xw = xmem.write_port()
        loaded = Signal()
        n = Signal(range(t.n_cols + 1))
        col_valid = Signal(t.n_cols)  # a 1 for every column c < n
        group, item_bits = _group(t.format_spec)
        phase = Signal(range(group))
        items = Signal(range(t.n_cols + 1))
        m.d.comb += [
            x.ready.eq(~loaded & (n < t.n_cols)),
            xw.addr.eq(n),
            xw.data.eq(x.p.data),
            xw.en.eq(x.valid & x.ready),
            col_valid.eq((Const(1, t.n_cols + 1) << n) - 1),
        ]
        with m.If(x.valid & x.ready):
            m.d.sync += [
                n.eq(n + 1),
                loaded.eq(x.p.last),
                phase.eq(Mux(phase == group - 1, 0, phase + 1)),
                items.eq(items + (phase == 0)),
            ]
        shift = (t.word_bits).bit_length() - 1
        index_words = (items * item_bits + t.word_bits - 1) >> shift
        for unit in units:
            m.d.comb += [
                unit.items.eq(items),
                unit.index_words.eq(index_words),
                unit.col_valid.eq(col_valid),
            ]
        for lane in lanes:
            port = xmem.read_port()
            m.d.comb += [port.addr.eq(lane.x_addr), lane.x_data.eq(port.data)]

        # ---- dispatcher: records to their unit's bank, band records to a band buffer
        w = self.w
        u = Signal(range(t.decoders))
        to_bank = Signal()
        ready = Array(unit.bank.ready for unit in units)
        for d, unit in enumerate(units):
            m.d.comb += [
                unit.bank.valid.eq(w.valid & to_bank & (u == d)),
                unit.bank.payload.eq(w.payload),
            ]
        taken = w.valid & w.ready
        if fmt == "lbi":
            band_ok, expect_band = self._bands(m, units, taken)
            m.d.comb += [
                to_bank.eq(loaded & ~expect_band),
                w.ready.eq(loaded & Mux(expect_band, band_ok, ready[u])),
            ]
        else:
            m.d.comb += [to_bank.eq(loaded), w.ready.eq(loaded & ready[u])]
        with m.If(taken & to_bank & w.p.last):
            m.d.sync += u.eq(Mux(u == t.decoders - 1, 0, u + 1))

        # ---- output: round-robin over the lanes' results, registered
        y = self.y
        requests = Signal(t.lanes)
        pointer = Signal(range(t.lanes))
        m.d.comb += requests.eq(Cat(lane.y.valid for lane in lanes))
        rotated = Signal(t.lanes)
        m.d.comb += rotated.eq(Cat(requests, requests) >> pointer)
        offset, anyone = lowest_set(m, rotated, "arb")
        chosen = Signal(range(t.lanes))
        m.d.comb += chosen.eq((pointer + offset) % t.lanes)
        free = ~y.valid | y.ready
        results = Array(lane.y.payload for lane in lanes)
        for index, lane in enumerate(lanes):
            m.d.comb += lane.y.ready.eq(free & anyone & (chosen == index))
        with m.If(free & anyone):
            m.d.sync += [
                y.valid.eq(1),
                y.payload.eq(results[chosen]),
                pointer.eq(Mux(chosen == t.lanes - 1, 0, chosen + 1)),
            ]
        with m.Elif(y.ready):
            m.d.sync += y.valid.eq(0)
        return m

    def _bands(self, m: Module, units: list[DecoderUnit], taken) -> tuple[Signal, Signal]:
        """LBI band buffers: which record comes next (a band record before every
        ``tile_rows`` rows), the two buffers, and whether the next band's buffer is free
        (every row of the band that used it committed). Returns (buffer free, a band
        record is expected)."""
        t = self.tile
        a = t.format_spec.tile_rows
        w = self.w
        width = -(-band_bits(t) // t.word_bits) * t.word_bits
        buffers = [Signal(width, name=f"band{i}") for i in range(2)]
        expect = Signal(init=1)
        band = Signal()
        word = Signal(range(width // t.word_bits + 1))
        in_band = Signal(range(a))
        busy = [Signal(name=f"band{i}_busy") for i in range(2)]
        done = [Signal(range(a + 1), name=f"band{i}_done") for i in range(2)]
        free = Signal()
        m.d.comb += free.eq(~Array(busy)[band])
        for unit in units:
            m.d.comb += unit.iz_bands.eq(
                Cat(buffers[0][: band_bits(t)], buffers[1][: band_bits(t)])
            )
        with m.If(taken & expect):
            for i in range(2):
                with m.If(band == i):
                    m.d.sync += buffers[i].word_select(word, t.word_bits).eq(w.p.data)
            m.d.sync += word.eq(word + 1)
            with m.If(w.p.last):
                m.d.sync += [expect.eq(0), word.eq(0)]
        with m.If(taken & ~expect & w.p.last):
            with m.If(in_band == a - 1):
                m.d.sync += [in_band.eq(0), expect.eq(1), band.eq(~band)]
            with m.Else():
                m.d.sync += in_band.eq(in_band + 1)
        for i in range(2):
            released = sum(unit.release & (unit.release_band == i) for unit in units)
            after = done[i] + released
            loading = taken & expect & w.p.last & (band == i)
            with m.If(loading):
                m.d.sync += [busy[i].eq(1), done[i].eq(0)]
            with m.Elif(busy[i]):
                m.d.sync += [done[i].eq(after), busy[i].eq(after < a)]
        return free, expect


def describe(spec: Spec, params: Mapping[str, Any]) -> dict[str, Any]:
    """The tile's part of the sidecar's ``protocol`` (:func:`codesign.hw.protocol.build`)."""
    tile = tile_of(spec, params)
    return {
        "streams": {
            "x": protocol.stream(
                "input",
                "one row of the activations X per beat",
                "x.ready = not loaded and fewer than n_cols rows taken",
                {
                    "data": protocol.field(
                        "element b = X[c, b] for the c-th beat (column b of X)",
                        "array",
                        element_width=tile.activation_bits,
                        elements=tile.batch,
                        element_encoding="signed",
                    ),
                    "last": protocol.field("1 on the layer's last row of X (n = beats)", "flag"),
                },
                "rows of X in order, after a reset and before any weight word",
            ),
            "w": protocol.stream(
                "input",
                "the weight stream: row records (and LBI band records) of the layer",
                "w.ready = X loaded and the target has room: the bank of unit r mod D for a "
                "row record, the free band buffer for a band record (its band two before "
                "committed)",
                {
                    "data": protocol.field(
                        f"{tile.word_bits} bits of a record, record bit 0 in the first word's "
                        "bit 0 (codesign.models.tile.tile_stream)",
                        "bits",
                    ),
                    "last": protocol.field("1 on a record's last word", "flag"),
                },
                "records in row order; an LBI band record before each band's first row",
            ),
            "y": protocol.stream(
                "output",
                "one result row of Y = W.X per beat",
                "driven by the sink; a low ready holds the beat and, once the lanes' "
                "queues fill, stalls the lanes",
                {
                    "row": protocol.field("the row r of W and Y", "unsigned"),
                    "y": protocol.field(
                        "element b = Y[r, b], two's complement, wrapping",
                        "array",
                        element_width=tile.accumulator_bits,
                        elements=tile.batch,
                        element_encoding="signed",
                    ),
                },
                "one beat per row of W, rows of a lane in order, lanes as they finish",
            ),
        },
        "latency": {
            "cycles": RECORD_CYCLES + HANDOFF_CYCLES + OUTPUT_CYCLES,
            "from": "the last w handshake of a row's record",
            "to": "its y handshake, beyond the unit's and the lane's cycles",
            "rule": f"the row's unit may start {RECORD_CYCLES} cycle after its record is in; "
            f"the lane may take it {HANDOFF_CYCLES} cycles after the unit's "
            f"max(decode, words) cycles; the result is on y {OUTPUT_CYCLES} cycles after "
            "the lane's last multiply-accumulate",
        },
        "cycles": {
            "rule": "a row occupies its unit max(decode cycles, record words) cycles and its "
            "lane max(1, operands * batch) cycles; one weight word per cycle",
            "cycles_per_item": 1,
            "item": "weight word",
            "handoff_cycles": HANDOFF_CYCLES,
            "output_cycles": OUTPUT_CYCLES,
            "record_cycles": RECORD_CYCLES,
        },
        "after_reset": "every bank, FIFO, lane and the output are empty and X is unloaded: "
        "the next layer starts with its x beats",
        "function": {
            "kind": "sparse_tile",
            "rule": "Y[r, b] = sum over the stored positions c of row r of W[r, c] * X[c, b], "
            "W decoded from the stream by the format's golden model",
            "format": tile.format_spec.to_dict(),
            "lanes": tile.lanes,
            "decoders": tile.decoders,
            "row_to_unit": "r mod decoders",
            "row_to_lane": "r mod lanes",
        },
    }


#: The tile's parameters for the block registry: name -> (default, lo, hi, meaning).
PARAMS = {
    name: (getattr(TileSpec(), name), lo, hi, meaning)
    for name, (lo, hi, meaning) in TILE_PARAMS.items()
}
