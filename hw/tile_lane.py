"""A MAC lane of the sparse tile: a FIFO of decoded rows, one multiply-accumulate a cycle.

Lane l of a :class:`~codesign.models.tile.TileSpec` takes rows l, l + P, l + 2P, … from
its decoder unit. A decoded row is a **slot**: the row's mask (``n_cols`` bits, a 1 at
every stored position) and its values in column order (a value memory of
⌈n_cols / W⌉ words of W bytes per slot). The lane has ``fifo_rows`` + 1 slots: up to
``fifo_rows`` rows begun by the unit and not yet taken, plus the row it multiplies.

**Handshake with the unit** (plain signals): ``begin`` (the unit starts a row for this
lane; allowed while ``space``), value writes (``vwr_*``: a word of the row's values, with
byte enables) and ``commit`` (the row is complete: ``commit_mask`` goes to its slot).
``space = (begun and not taken < fifo_rows) | take``: a slot the lane frees by taking a
row serves a ``begin`` in the same cycle.

**Multiplying.** A row is taken in the cycle after the lane issued the previous row's
last multiply-accumulate (or at once when idle) if it is committed; that cycle issues
its first one: per stored value (columns in order, the lowest set bit of the mask) and
per column b of X, one MAC, ``max(1, operands · B)`` cycles per row (an empty row
takes one cycle: its take). Pipeline: issue (value and X read addresses) → read
(value byte × activation) → accumulate; a row's result enters the output queue
(depth :data:`OUTPUT_DEPTH`) two cycles after its last issue. The lane issues only
while the queue has room for every row result in flight. ``y`` streams the queue: row
index and the B accumulators.
"""

from __future__ import annotations

from amaranth.hdl import Array, Const, Module, Mux, Signal, Value, signed
from amaranth.lib import data, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from codesign.hw.select import word
from codesign.models.tile import VALUE_BITS, TileSpec

#: Row results a lane holds for the output port.
OUTPUT_DEPTH = 4
#: Cycles from a row's last issue to its result in the output queue.
PIPELINE_CYCLES = 2


def y_layout(tile: TileSpec) -> data.StructLayout:
    """A row result: ``row`` (row_bits) and ``y`` (B accumulators, signed)."""
    return data.StructLayout(
        {"row": tile.row_bits, "y": data.ArrayLayout(tile.accumulator_bits, tile.batch)}
    )


def value_words(tile: TileSpec) -> int:
    """Words of W values a slot holds: ⌈n_cols / stream_bytes⌉."""
    return -(-tile.n_cols // tile.stream_bytes)


def lane_write_signature(tile: TileSpec) -> wiring.Signature:
    """What a decoder unit drives into one lane (and the lane's ``space`` back), from the
    unit's side."""
    return wiring.Signature(
        {
            "begin": Out(1),
            "commit": Out(1),
            "commit_mask": Out(tile.n_cols),
            "vwr_en": Out(1),
            "vwr_addr": Out(range(value_words(tile))),
            "vwr_data": Out(tile.word_bits),
            "vwr_be": Out(tile.stream_bytes),
            "space": In(1),
        }
    )


def lowest_set(m: Module, bits: Value, name: str = "ls") -> tuple[Value, Value]:
    """(index of the lowest set bit, any bit set) of ``bits``: a tree of multiplexers
    over halves (the high half's index when the low half is zero). Each node's two
    results are comb signals of ``m`` (named ``name`` + the node's path), so an
    expression is built once per node, not once per use."""
    width = len(bits)
    if width == 1:
        return Const(0, 1), bits[0]
    half = 1 << ((width - 1).bit_length() - 1)
    low_index, low_any = lowest_set(m, bits[:half], name + "l")
    high_index, high_any = lowest_set(m, bits[half:], name + "h")
    index = Signal((width - 1).bit_length(), name=f"{name}_index")
    anyone = Signal(name=f"{name}_any")
    m.d.comb += [
        index.eq(Mux(low_any, low_index, high_index + half)),
        anyone.eq(low_any | high_any),
    ]
    return index, anyone


class MacLane(wiring.Component):
    """One MAC lane (module docstring). ``index``: the lane's number l."""

    def __init__(self, tile: TileSpec, index: int) -> None:
        self.tile, self.index = tile, index
        self.slots = tile.fifo_rows + 1
        self.words = value_words(tile)
        super().__init__(
            {
                "wr": In(lane_write_signature(tile)),
                "x_addr": Out(range(tile.n_cols)),
                "x_data": In(tile.batch * tile.activation_bits),
                "y": Out(stream.Signature(y_layout(tile))),
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        t = self.tile
        fifo_rows, slots, words = t.fifo_rows, self.slots, self.words
        shift = t.stream_bytes.bit_length() - 1

        # ---- slots: masks, values, and the begun / committed / taken counts
        masks = Array(Signal(t.n_cols, name=f"slot_mask{i}") for i in range(slots))
        m.submodules.values = values = memory.Memory(
            shape=t.word_bits, depth=slots * words, init=[]
        )
        vwr = values.write_port(granularity=VALUE_BITS)
        vrd = values.read_port()
        pending = Signal(range(fifo_rows + 1))
        committed = Signal(range(fifo_rows + 1))
        wslot = Signal(range(slots))
        rslot = Signal(range(slots))
        take = Signal()
        m.d.comb += [
            self.wr.space.eq((pending < fifo_rows) | take),
            vwr.addr.eq(wslot * words + self.wr.vwr_addr),
            vwr.data.eq(self.wr.vwr_data),
            vwr.en.eq(Mux(self.wr.vwr_en, self.wr.vwr_be, 0)),
        ]
        m.d.sync += [
            pending.eq(pending + self.wr.begin - take),
            committed.eq(committed + self.wr.commit - take),
        ]
        with m.If(self.wr.commit):
            m.d.sync += [masks[wslot].eq(self.wr.commit_mask), wslot.eq(_next(wslot, slots))]
        with m.If(take):
            m.d.sync += rslot.eq(_next(rslot, slots))

        # ---- output queue and the room it has for results in flight
        y_shape = y_layout(t)
        m.submodules.queue = queue = fifo.SyncFIFO(width=y_shape.size, depth=OUTPUT_DEPTH)
        m.d.comb += [
            self.y.valid.eq(queue.r_rdy),
            self.y.payload.eq(queue.r_data),
            queue.r_en.eq(self.y.ready),
        ]
        s1_end = Signal()
        s2_end = Signal()
        go = Signal()
        m.d.comb += go.eq(queue.level + s1_end + s2_end < OUTPUT_DEPTH)

        # ---- issue: the current row's next operand, or a take
        active = Signal()
        work = Signal(t.n_cols)
        k = Signal(range(t.n_cols + 1))
        b = Signal(range(t.batch))
        cur_slot = Signal(range(slots))
        next_row = Signal(t.row_bits, init=self.index % (1 << t.row_bits))
        cur_row = Signal(t.row_bits)
        m.d.comb += take.eq(go & ~active & (committed != 0))
        issue = go & (active | take)
        mask_now = Signal(t.n_cols)
        rest = Signal(t.n_cols)
        m.d.comb += [
            mask_now.eq(Mux(active, work, masks[rslot])),
            rest.eq(mask_now & (mask_now - 1)),
        ]
        col, nonzero = lowest_set(m, mask_now, "col")
        k_now = Mux(take, 0, k)
        last_b = b == t.batch - 1
        end = Signal()
        m.d.comb += [
            end.eq(issue & (~nonzero | (last_b & (rest == 0)))),
            self.x_addr.eq(col),
            vrd.addr.eq(Mux(take, rslot, cur_slot) * words + (k_now >> shift)),
        ]
        with m.If(take):
            m.d.sync += [
                cur_slot.eq(rslot),
                cur_row.eq(next_row),
                next_row.eq(next_row + t.lanes),
            ]
        with m.If(issue & nonzero):
            with m.If(last_b):
                m.d.sync += [work.eq(rest), k.eq(k_now + 1), b.eq(0), active.eq(rest != 0)]
            with m.Else():
                m.d.sync += [work.eq(mask_now), k.eq(k_now), b.eq(b + 1), active.eq(1)]

        # ---- read stage: value byte and activation, their product
        s1 = _Stage(m, "s1", t, {"byte": max(shift, 1)})
        m.d.sync += [
            s1.valid.eq(issue),
            s1.b.eq(b),
            s1.first.eq(k_now == 0),
            s1.empty.eq(~nonzero),
            s1.row.eq(Mux(take, next_row, cur_row)),
            s1.extra["byte"].eq(k_now[:shift] if shift else 0),
            s1_end.eq(end),
        ]
        value = (word(vrd.data, s1.extra["byte"], VALUE_BITS) if shift else vrd.data).as_signed()
        activation = word(self.x_data, s1.b, t.activation_bits).as_signed()
        product_width = VALUE_BITS + t.activation_bits
        s2 = _Stage(m, "s2", t, {"product": signed(product_width)})
        m.d.sync += [
            s2.valid.eq(s1.valid),
            s2.b.eq(s1.b),
            s2.first.eq(s1.first),
            s2.empty.eq(s1.empty),
            s2.row.eq(s1.row),
            s2.extra["product"].eq(value * activation),
            s2_end.eq(s1_end),
        ]

        # ---- accumulate; a row's end pushes its result
        acc = Array(Signal(signed(t.accumulator_bits), name=f"acc{i}") for i in range(t.batch))
        total = Signal(signed(t.accumulator_bits))
        m.d.comb += total.eq(Mux(s2.first, 0, acc[s2.b]) + s2.extra["product"])
        with m.If(s2.valid & ~s2.empty):
            m.d.sync += acc[s2.b].eq(total)
        result = Signal(y_shape)
        m.d.comb += result.row.eq(s2.row)
        for i in range(t.batch):
            m.d.comb += result.y[i].eq(Mux(s2.empty, 0, Mux(s2.b == i, total, acc[i])))
        m.d.comb += [queue.w_en.eq(s2_end), queue.w_data.eq(result)]
        return m


def _next(index: Signal, modulus: int) -> Value:
    """``index`` + 1 modulo ``modulus``."""
    return Mux(index == modulus - 1, 0, index + 1)


class _Stage:
    """The registers of one pipeline stage: valid, batch column, first (the operand
    opens its accumulator), empty (an empty row's end), row index and ``extra`` ones."""

    def __init__(self, m: Module, name: str, tile: TileSpec, extra: dict) -> None:
        self.valid = Signal(name=f"{name}_valid")
        self.b = Signal(range(tile.batch), name=f"{name}_b")
        self.first = Signal(name=f"{name}_first")
        self.empty = Signal(name=f"{name}_empty")
        self.row = Signal(tile.row_bits, name=f"{name}_row")
        self.extra = {key: Signal(shape, name=f"{name}_{key}") for key, shape in extra.items()}
