"""Selecting one of several equally wide values by an index, as a tree of two-way
multiplexers: the Verilog has one width per wire (no wide shift truncated to the
result, which Verilator's lint reports as WIDTHTRUNC)."""

from __future__ import annotations

from collections.abc import Sequence

from amaranth.hdl import Const, Mux, Value


def select(items: Sequence[Value], index: Value) -> Value:
    """``items[index]`` (items of one width): a balanced tree of two-way multiplexers,
    bit k of ``index`` choosing at level k; the list is padded with zeros to a power of
    two, so an index beyond it gives 0."""
    width = len(Value.cast(items[0]))
    level = list(items)
    size = 1 << (len(level) - 1).bit_length()
    level += [Const(0, width)] * (size - len(level))
    for k in range(size.bit_length() - 1):
        level = [Mux(index[k], level[j + 1], level[j]) for j in range(0, len(level), 2)]
    return level[0]


def word(value: Value, index: Value, width: int) -> Value:
    """Bits ``index·width`` … ``index·width + width − 1`` of ``value`` (as
    ``value.word_select(index, width)``, for a whole number of words)."""
    return select([value[k : k + width] for k in range(0, len(value), width)], index)
