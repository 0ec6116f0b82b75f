"""CSR row decoder: a row's entry count, then its (column, value) entries, out as operands.

Golden model: :mod:`codesign.models.csr` (a row's entries are ``col_idx`` and ``values``
between two row pointers); the tile's stream gives each row its count in place of the
cumulative pointer (:mod:`codesign.models.tile`).

**Streams.** ``ptr`` (:func:`ptr_layout`): ``count`` (``ptr_bits``), the entries of the
next row; ``entry`` (:func:`entry_layout`): ``col`` (``col_bits``) and ``value``
(``value_bits``, raw bits); ``out`` (:func:`output_layout`): ``col``, ``value``, ``last``
(the row's last entry) and ``empty`` (a row without entries: one beat with ``last`` and
``empty`` set, ``col`` and ``value`` 0).

**Timing** (the rule of :func:`codesign.models.decode_cost.decode_cost` for CSR with
one index unit and a pointer latency of one step): a row takes 1 + count cycles, its
count in the first and one entry per cycle after it; the output is registered
(:data:`LATENCY` = 1 cycle from the handshake of a count or entry to its beat on
``out``). ``ptr.ready = (left = 0) & (~out.valid | out.ready)``, ``entry.ready = (left ≠
0) & (~out.valid | out.ready)``, ``left`` being the row's entries not yet taken. A stalled
``out`` holds its payload. After a synchronous reset the output is empty and the decoder
waits for a count.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

#: Clock cycles from a ``ptr`` or ``entry`` handshake to its ``out`` beat.
LATENCY = 1


def ptr_layout(ptr_bits: int) -> data.StructLayout:
    """Count payload: ``count`` (``ptr_bits``)."""
    return data.StructLayout({"count": ptr_bits})


def entry_layout(col_bits: int, value_bits: int) -> data.StructLayout:
    """Entry payload: ``col`` (``col_bits``), ``value`` (``value_bits``)."""
    return data.StructLayout({"col": col_bits, "value": value_bits})


def output_layout(col_bits: int, value_bits: int) -> data.StructLayout:
    """Output payload: ``col``, ``value``, ``last`` (1), ``empty`` (1)."""
    return data.StructLayout({"col": col_bits, "value": value_bits, "last": 1, "empty": 1})


def row_cycles(count: int) -> int:
    """Cycles a row of ``count`` entries takes with no stream stalled: 1 + count."""
    return 1 + count


class CsrDecoder(wiring.Component):
    """Decodes CSR rows into operands (module docstring: streams, timing; latency
    :data:`LATENCY`).

    Parameters: ``col_bits``, ``ptr_bits``, ``value_bits`` (each 1..64).
    """

    def __init__(self, col_bits: int, ptr_bits: int, value_bits: int = 8) -> None:
        for name, value in (
            ("col_bits", col_bits),
            ("ptr_bits", ptr_bits),
            ("value_bits", value_bits),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 64:
                raise ValueError(f"CsrDecoder.{name} must be an integer in 1..64, got {value!r}")
        self.ptr_bits = ptr_bits
        super().__init__(
            {
                "ptr": In(stream.Signature(ptr_layout(ptr_bits))),
                "entry": In(stream.Signature(entry_layout(col_bits, value_bits))),
                "out": Out(stream.Signature(output_layout(col_bits, value_bits))),
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        p, e, o = self.ptr, self.entry, self.out
        left = Signal(self.ptr_bits)
        advance = ~o.valid | o.ready
        m.d.comb += [p.ready.eq((left == 0) & advance), e.ready.eq((left != 0) & advance)]
        with m.If(p.valid & p.ready):
            m.d.sync += left.eq(p.p.count)
            with m.If(p.p.count == 0):
                m.d.sync += [
                    o.valid.eq(1),
                    o.p.col.eq(0),
                    o.p.value.eq(0),
                    o.p.last.eq(1),
                    o.p.empty.eq(1),
                ]
            with m.Elif(o.ready):
                m.d.sync += o.valid.eq(0)
        with m.Elif(e.valid & e.ready):
            m.d.sync += [
                left.eq(left - 1),
                o.valid.eq(1),
                o.p.col.eq(e.p.col),
                o.p.value.eq(e.p.value),
                o.p.last.eq(left == 1),
                o.p.empty.eq(0),
            ]
        with m.Elif(o.ready):
            m.d.sync += o.valid.eq(0)
        return m
