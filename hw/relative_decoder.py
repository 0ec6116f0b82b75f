"""EIE-style relative index decoder: one (gap, value) entry in, one (row, col, value) out.

Golden model: :mod:`codesign.models.relative`.
A matrix of ``n_cols`` columns is flattened row-major;
each stored entry carries an ``r``-bit gap, the number of zeros skipped since the previous
entry (the first entry of a matrix counts from position −1). Padding entries (gap
2^r − 1, value 0) only bridge runs of 2^r or more zeros.

Per entry the decoder computes the next column ``s = col_prev + 1 + gap`` (or ``gap`` on
the first entry of a matrix), the number of row wraps ``k`` = the largest ``j`` with
``s ≥ j·n_cols`` (one constant comparator and one constant subtractor per possible
wrap), and emits ``row = row_prev + k``, ``col = s − k·n_cols``. That keeps one entry
per cycle for any gap without a divider; the comparators needed are
``⌊(n_cols − 1 + 2^r) / n_cols⌋`` (at most :data:`MAX_ROW_WRAPS`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from codesign.hw import protocol
from codesign.models.specs import RelativeSpec

#: Latency in clock cycles from an input handshake to its output being valid.
LATENCY = 1
#: Largest number of rows one entry may advance (constant comparators built).
MAX_ROW_WRAPS = 64
#: Largest column count (column index at most 16 bits).
MAX_COLS = 1 << 16
#: Largest value width in bits.
MAX_VALUE_BITS = 64
#: Largest row index width in bits (a matrix has at most 2^row_bits rows).
MAX_ROW_BITS = 32


def row_wraps(r: int, n_cols: int) -> int:
    """Largest number of rows one entry can advance: ⌊(n_cols − 1 + 2^r) / n_cols⌋."""
    return (n_cols - 1 + (1 << r)) // n_cols


def check_params(spec: RelativeSpec, n_cols: int, value_bits: int, row_bits: int) -> None:
    """Raise ``ValueError`` (naming the parameter and what would work) for a decoder the
    hardware cannot build."""
    if not isinstance(spec, RelativeSpec):
        raise ValueError(f"RelativeDecoder needs a RelativeSpec, got {type(spec).__name__}")
    for name, value, hi in (
        ("n_cols", n_cols, MAX_COLS),
        ("value_bits", value_bits, MAX_VALUE_BITS),
        ("row_bits", row_bits, MAX_ROW_BITS),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= hi:
            raise ValueError(f"RelativeDecoder.{name} must be an integer in 1..{hi}, got {value!r}")
    wraps = row_wraps(spec.r, n_cols)
    if wraps > MAX_ROW_WRAPS:
        raise ValueError(
            f"RelativeDecoder: r = {spec.r} with n_cols = {n_cols} lets one entry advance "
            f"{wraps} rows; at most {MAX_ROW_WRAPS} are built (need 2^r <= "
            f"{MAX_ROW_WRAPS}·n_cols: lower r or raise n_cols)"
        )


def input_layout(spec: RelativeSpec, value_bits: int) -> data.StructLayout:
    """Input payload: ``gap`` (r bits), ``value`` (value_bits, raw bit pattern), ``first``
    (1 on the first entry of a matrix)."""
    return data.StructLayout({"gap": spec.r, "value": value_bits, "first": 1})


def output_layout(n_cols: int, value_bits: int, row_bits: int) -> data.StructLayout:
    """Output payload: ``row`` (row_bits), ``col`` (⌈log2 n_cols⌉ bits, at least 1),
    ``value`` (as received), ``valid_weight`` (value != 0)."""
    col_bits = max(1, (n_cols - 1).bit_length())
    return data.StructLayout(
        {"row": row_bits, "col": col_bits, "value": value_bits, "valid_weight": 1}
    )


class RelativeDecoder(wiring.Component):
    """Relative-index decoder with a registered output (latency :data:`LATENCY` cycle).

    Parameters: ``spec`` (gap width ``spec.r``), ``n_cols`` (1..:data:`MAX_COLS`),
    ``value_bits`` (1..:data:`MAX_VALUE_BITS`), ``row_bits`` (1..:data:`MAX_ROW_BITS`;
    rows count modulo 2^row_bits).

    Streams: ``in`` (:func:`input_layout`; a Python keyword, so ``getattr(dec, "in")``)
    → ``out`` (:func:`output_layout`), Verilog ports ``in__valid``, ``in__ready``,
    ``in__payload``, ``out__…``. One output per accepted input, in order;
    ``in.ready = ~out.valid | out.ready``, so with ``out.ready`` held high one entry
    passes per cycle, and a stalled output holds its payload without losing or
    duplicating entries (``in.ready`` follows ``out.ready`` combinationally; there is
    no skid buffer). An entry accepted at a clock edge is on ``out`` from that edge on.

    ``valid_weight`` is ``value != 0``: a padding entry is a zero value at a padding
    position, and the decoder cannot tell it from a stored zero, so a stored zero is
    also flagged invalid (a zero weight contributes nothing to a product either way).

    After reset (synchronous ``rst``) the output is empty and the position is −1 of a
    new matrix, as if the next entry had ``first`` set.
    """

    def __init__(
        self, spec: RelativeSpec, n_cols: int, value_bits: int, row_bits: int = 16
    ) -> None:
        check_params(spec, n_cols, value_bits, row_bits)
        self.spec = spec
        self.n_cols = n_cols
        self.value_bits = value_bits
        self.row_bits = row_bits
        super().__init__(
            {
                "in": In(stream.Signature(input_layout(spec, value_bits))),
                "out": Out(stream.Signature(output_layout(n_cols, value_bits, row_bits))),
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        i, o = getattr(self, "in"), self.out
        n = self.n_cols
        wraps = row_wraps(self.spec.r, n)

        at_start = Signal(init=1)
        restart = i.p.first | at_start
        base = Mux(restart, 0, o.p.col + 1)
        row_base = Mux(restart, 0, o.p.row)
        s = Signal(range(n + (1 << self.spec.r)))
        m.d.comb += s.eq(base + i.p.gap)
        k = Signal(range(wraps + 1))
        col = Signal.like(o.p.col)
        m.d.comb += [k.eq(0), col.eq(s)]
        for j in range(1, wraps + 1):
            with m.If(s >= j * n):
                m.d.comb += [k.eq(j), col.eq(s - j * n)]

        m.d.comb += i.ready.eq(~o.valid | o.ready)
        with m.If(i.valid & i.ready):
            m.d.sync += [
                o.valid.eq(1),
                o.p.row.eq(row_base + k),
                o.p.col.eq(col),
                o.p.value.eq(i.p.value),
                o.p.valid_weight.eq(i.p.value != 0),
                at_start.eq(0),
            ]
        with m.Elif(o.ready):
            m.d.sync += o.valid.eq(0)
        return m


def describe(spec: RelativeSpec, params: Mapping[str, Any]) -> dict[str, Any]:
    """The block's part of the sidecar's ``protocol`` (:func:`codesign.hw.protocol.build`)."""
    n_cols, row_bits = params["n_cols"], params["row_bits"]
    return {
        "streams": {
            "in": protocol.stream(
                "input",
                "one stored entry per beat: its gap, its value and the matrix-start flag",
                "in.ready = ~out.valid | out.ready (combinational on out.ready; no skid buffer)",
                {
                    "gap": protocol.field(
                        "zeros skipped since the previous entry in row-major order", "unsigned"
                    ),
                    "value": protocol.field("the entry's value, raw bits, passed through", "bits"),
                    "first": protocol.field(
                        "1 on the first entry of a matrix: positions count from -1", "flag"
                    ),
                },
                "entries of a matrix in row-major order; padding entries (gap 2^r - 1, "
                "value 0) bridge runs of 2^r or more zeros",
            ),
            "out": protocol.stream(
                "output",
                "the decoded position and value of every accepted entry",
                "driven by the sink; a low ready holds the entry and stalls the input",
                {
                    "row": protocol.field(
                        f"row index modulo 2^row_bits = {1 << row_bits} (the counter wraps)",
                        "unsigned",
                    ),
                    "col": protocol.field(
                        f"column index, 0 .. n_cols-1 = {n_cols - 1}", "unsigned"
                    ),
                    "value": protocol.field("the entry's value as received", "bits"),
                    "valid_weight": protocol.field(
                        "value != 0: 0 for a padding entry, and for a stored zero, which the "
                        "decoder cannot tell apart",
                        "flag",
                    ),
                },
                "exactly one beat per accepted entry, in order",
            ),
        },
        "latency": {
            "cycles": LATENCY,
            "from": "in handshake",
            "to": "out.valid",
            "rule": "an entry accepted at a clock edge is on out from that edge on",
        },
        "cycles": {
            "rule": "one entry in and one out per cycle while no stream stalls, whatever the "
            "gap (no divider: one constant comparator per possible row wrap)",
            "cycles_per_item": 1,
            "item": "entry",
        },
        "after_reset": "out is empty and the position is -1 of a new matrix, as if the next "
        "entry had first set",
        "function": {
            "kind": "relative_decoder",
            "rule": "p = p_prev + 1 + gap (p_prev = -1 at first and after reset); row = "
            "floor(p / n_cols) mod 2^row_bits; col = p mod n_cols; valid_weight = (value != 0)",
            "n_cols": n_cols,
            "row_modulus": 1 << row_bits,
            "max_rows_per_entry": row_wraps(spec.r, n_cols),
            "copies": {"out.payload.value": "in.payload.value"},
        },
    }
