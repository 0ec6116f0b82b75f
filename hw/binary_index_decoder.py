"""Binary index decompressor of low-rank binary indexing (LBI): one tile mask row per cycle.

Golden model: :mod:`codesign.models.lbi` (:class:`~codesign.models.lbi.LbiFormat`, streams
``ip`` and ``iz``) and :func:`codesign.models.lbi_factorize.mask_from_codes`. A tile's mask
is Ip·Iz: row i, column j is ``OR_k Ip[i, k]·Iz[k, j]`` (semiring ``bool``) or
``XOR_k Ip[i, k]·Iz[k, j]`` (semiring ``gf2``). The golden streams hold rank-bit codes,
bit k of a row code being Ip[i, k] and bit k of a column code Iz[k, j], tile by tile in
row-major tile order (:func:`tile_beats` splits them).

**Network.** Output bit j of a row is the inner product of the row code with the stored
column code j: ``rank`` two-input ANDs and a tree of ``rank − 1`` two-input ORs
(``bool``) or XORs (``gf2``), for each of the ``tile_cols`` columns
(:func:`expected_gates`). The Iz tile is held in ``rank·tile_cols`` flip-flops; nothing
is hard-wired, so the sidecar lists no matrices.

**Streams** (Verilog ports ``iz__valid``, ``iz__ready``, ``iz__payload``, ``ip__…``,
``out__…``; fields from bit 0 up in the order listed):

* ``iz`` (:func:`iz_layout`): ``codes``, ``tile_cols`` column codes of ``rank`` bits, code
  j at bits ``j·rank … j·rank + rank − 1`` (the tile's b' golden ``iz`` codes in stream
  order, LSB first). The whole Iz tile is one beat. **Zero-padding rule**: a tile clipped
  to b' < tile_cols columns sends codes b' … tile_cols − 1 as 0; a zero column code
  decodes to 0 in both semirings, so the out-of-matrix bits of every output row are 0.
* ``ip`` (:func:`ip_layout`): ``code`` (``rank`` bits, one golden ``ip`` code = one row
  of the tile), ``last`` (1 on the tile's last row; a clipped tile has a' < tile_rows
  rows). Row codes of a tile follow its Iz beat.
* ``out`` (:func:`output_layout`): ``mask`` (``tile_cols`` bits, bit j = the mask at
  column c0 + j of the tile's row), ``last`` (copied from the row's ``ip`` beat).

``tile_rows`` bounds a tile's rows in the golden model only: the decoder takes as many
rows per tile as ``last`` says.

**Timing.** Output registered: a row accepted at a clock edge is on ``out`` from that
edge on (:data:`LATENCY` = 1 cycle from the ``ip`` handshake). ``ip.ready = loaded &
(~out.valid | out.ready)``, where ``loaded`` means the Iz register holds the current
tile; ``iz.ready = ~loaded | (ip.valid & ip.ready & ip.payload.last)``, so the next tile's Iz
beat is taken at the same edge as the current tile's last row (combinationally on
``ip.valid``, ``ip.payload.last`` and ``out.ready``) and its first row follows in the
next cycle; neither source may make its ``valid`` wait for the other stream's ``ready``.
Tile throughput: a tile of a' rows occupies a' cycles when its Iz beat is already valid
as the previous tile's last row is taken (the load is hidden: one output per cycle
across tile boundaries); otherwise, and for the first tile after reset, the Iz beat is
taken on an idle decoder and the first row follows :data:`IZ_LOAD_CYCLES` = 1 cycle
later, so such a tile takes a' + 1 cycles from its Iz handshake. Back to back with no
stream stalled, tiles of ``R`` rows in all span ``IZ_LOAD_CYCLES + R`` cycles from the
first ``iz`` handshake to the last ``ip`` handshake, both counted (:func:`stream_cycles`),
and the last row is on ``out`` one cycle later. A stalled ``out`` holds its payload.

**Registers** (:func:`flip_flops`): Iz ``rank·tile_cols``, output ``tile_cols`` + last +
valid, ``loaded``. After a synchronous reset the output is empty and the decoder waits
for an Iz beat.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from codesign.hw import protocol
from codesign.models.lbi_factorize import tile_counts
from codesign.models.specs import LbiSpec

#: Clock cycles from an ``ip`` handshake to its output row being valid.
LATENCY = 1
#: Cycles from an ``iz`` handshake on an idle decoder to the first ``ip`` handshake.
IZ_LOAD_CYCLES = 1
#: Largest Iz beat (``rank·tile_cols`` bits, the Iz register).
MAX_IZ_BITS = 16384


def check_params(spec: LbiSpec) -> None:
    """Raise ``ValueError`` (naming the parameter and its range) for a decoder the
    hardware cannot build: ``rank·tile_cols`` ≤ :data:`MAX_IZ_BITS`."""
    if not isinstance(spec, LbiSpec):
        raise ValueError(f"BinaryIndexDecoder needs a LbiSpec, got {type(spec).__name__}")
    limit = MAX_IZ_BITS // spec.rank
    if spec.tile_cols > limit:
        raise ValueError(
            f"BinaryIndexDecoder: tile_cols must be in 1..{limit} for rank={spec.rank} "
            f"(the Iz beat rank·tile_cols is at most {MAX_IZ_BITS} bits), got {spec.tile_cols}"
        )


def iz_layout(spec: LbiSpec) -> data.StructLayout:
    """Iz payload: ``codes``, an array of ``tile_cols`` codes of ``rank`` bits."""
    return data.StructLayout({"codes": data.ArrayLayout(spec.rank, spec.tile_cols)})


def ip_layout(spec: LbiSpec) -> data.StructLayout:
    """Ip payload: ``code`` (``rank`` bits), ``last`` (1)."""
    return data.StructLayout({"code": spec.rank, "last": 1})


def output_layout(spec: LbiSpec) -> data.StructLayout:
    """Output payload: ``mask`` (``tile_cols`` bits), ``last`` (1)."""
    return data.StructLayout({"mask": spec.tile_cols, "last": 1})


def expected_gates(spec: LbiSpec) -> dict[str, int]:
    """Two-input gates of the network: ``AND`` tile_cols·rank and ``XOR`` (gf2) or ``OR``
    (bool) tile_cols·(rank − 1)."""
    reduce = "XOR" if spec.semiring == "gf2" else "OR"
    return {"AND": spec.tile_cols * spec.rank, reduce: spec.tile_cols * (spec.rank - 1)}


def flip_flops(spec: LbiSpec) -> int:
    """Flip-flops: Iz rank·tile_cols + output mask tile_cols + out.last + out.valid +
    loaded."""
    return spec.rank * spec.tile_cols + spec.tile_cols + 3


def stream_cycles(tile_rows: list[int]) -> int:
    """Cycles from the first ``iz`` handshake to the last ``ip`` handshake, both counted,
    for tiles of ``tile_rows`` rows sent back to back with no stream stalled:
    :data:`IZ_LOAD_CYCLES` + Σ a'."""
    return IZ_LOAD_CYCLES + sum(tile_rows)


@dataclasses.dataclass(frozen=True)
class TileBeats:
    """One tile as the decoder takes it: matrix rows ``r0:r1`` and columns ``c0:c1``,
    ``iz`` (the Iz beat's ``codes`` word, zero-padded) and ``ip`` (a' row codes)."""

    r0: int
    r1: int
    c0: int
    c1: int
    iz: int
    ip: tuple[int, ...]


def tile_beats(
    spec: LbiSpec, shape: tuple[int, int], ip: np.ndarray, iz: np.ndarray
) -> list[TileBeats]:
    """Split the golden ``ip`` and ``iz`` stream data of an (m, n) matrix into the
    decoder's beats, tile by tile in row-major tile order (:class:`codesign.models.lbi.LbiFormat`:
    a' row codes and b' column codes per tile)."""
    m, n = shape
    down, across = tile_counts(shape, spec.tile_rows, spec.tile_cols)
    ip_codes, iz_codes = [int(c) for c in ip], [int(c) for c in iz]
    if len(ip_codes) != across * m or len(iz_codes) != down * n:
        raise ValueError(
            f"LBI streams of a {m}x{n} matrix hold {across * m} ip and {down * n} iz codes, "
            f"got {len(ip_codes)} and {len(iz_codes)}"
        )
    tiles, ip_at, iz_at = [], 0, 0
    for r0 in range(0, m, spec.tile_rows):
        r1 = min(r0 + spec.tile_rows, m)
        for c0 in range(0, n, spec.tile_cols):
            c1 = min(c0 + spec.tile_cols, n)
            word = sum(
                code << (j * spec.rank) for j, code in enumerate(iz_codes[iz_at : iz_at + c1 - c0])
            )
            tiles.append(TileBeats(r0, r1, c0, c1, word, tuple(ip_codes[ip_at : ip_at + r1 - r0])))
            ip_at += r1 - r0
            iz_at += c1 - c0
    return tiles


class BinaryIndexDecoder(wiring.Component):
    """LBI binary index decompressor (module docstring: network, streams, zero-padding
    rule, timing; latency :data:`LATENCY`).

    Parameters: ``spec`` (``rank``, ``tile_cols``, ``semiring``; ``rank·tile_cols`` ≤
    :data:`MAX_IZ_BITS`).
    """

    def __init__(self, spec: LbiSpec) -> None:
        check_params(spec)
        self.spec = spec
        super().__init__(
            {
                "iz": In(stream.Signature(iz_layout(spec))),
                "ip": In(stream.Signature(ip_layout(spec))),
                "out": Out(stream.Signature(output_layout(spec))),
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        iz, ip, o = self.iz, self.ip, self.out
        spec = self.spec

        loaded = Signal()
        store = Signal(data.ArrayLayout(spec.rank, spec.tile_cols), reset_less=True)
        take_row = Signal()
        end_tile = Signal()
        m.d.comb += [
            ip.ready.eq(loaded & (~o.valid | o.ready)),
            take_row.eq(ip.valid & ip.ready),
            end_tile.eq(take_row & ip.p.last),
            iz.ready.eq(~loaded | end_tile),
        ]
        with m.If(iz.valid & iz.ready):
            m.d.sync += [store.eq(iz.p.codes), loaded.eq(1)]
        with m.Elif(end_tile):
            m.d.sync += loaded.eq(0)

        products = [ip.p.code & store[j] for j in range(spec.tile_cols)]
        if spec.semiring == "gf2":
            row = Cat(*(p.xor() for p in products))
        else:
            row = Cat(*(p.any() for p in products))
        with m.If(take_row):
            m.d.sync += [o.valid.eq(1), o.p.mask.eq(row), o.p.last.eq(ip.p.last)]
        with m.Elif(o.ready):
            m.d.sync += o.valid.eq(0)
        return m


def describe(spec: LbiSpec, params: Mapping[str, Any]) -> dict[str, Any]:
    """The block's part of the sidecar's ``protocol`` (:func:`codesign.hw.protocol.build`);
    nothing is hard-wired, the Iz tile arrives on ``iz``."""
    reduce = "xor" if spec.semiring == "gf2" else "or"
    return {
        "streams": {
            "iz": protocol.stream(
                "input",
                "one Iz tile per beat: the rank-bit column codes of the tile's columns",
                "iz.ready = ~loaded | (ip.valid & ip.ready & ip.payload.last), loaded = a "
                "tile is held: the next tile is taken at the edge of the current tile's "
                "last row (combinationally on ip.valid, ip.payload.last and out.ready)",
                {
                    "codes": protocol.field(
                        "element j = column code j of the tile: bit k = Iz[k, c0 + j]; a "
                        "tile clipped to b' < tile_cols columns sends codes b' .. "
                        "tile_cols-1 as 0 (those mask bits decode to 0)",
                        "array",
                        element_width=spec.rank,
                        elements=spec.tile_cols,
                        element_encoding="bits",
                    )
                },
                "one beat per tile, tiles in row-major tile order; a tile's rows follow its "
                "iz beat",
            ),
            "ip": protocol.stream(
                "input",
                "one row code per beat",
                "ip.ready = loaded & (~out.valid | out.ready)",
                {
                    "code": protocol.field("row code: bit k = Ip[i, k] of tile row i", "bits"),
                    "last": protocol.field(
                        "1 on the tile's last row (a clipped tile has fewer than tile_rows "
                        "rows; the decoder takes as many rows as last says)",
                        "flag",
                    ),
                },
                "the rows of a tile in order, after that tile's iz beat",
            ),
            "out": protocol.stream(
                "output",
                "one mask row per accepted ip beat",
                "driven by the sink; a low ready holds the row and stalls ip",
                {
                    "mask": protocol.field("bit j = the tile mask at row i, column c0 + j", "bits"),
                    "last": protocol.field("copy of the row's last", "flag"),
                },
                "exactly one beat per accepted ip beat, in order",
            ),
        },
        "latency": {
            "cycles": LATENCY,
            "from": "ip handshake",
            "to": "out.valid",
            "rule": "a row accepted at a clock edge is on out from that edge on",
        },
        "cycles": {
            "rule": "one row per cycle, across tile boundaries when the next iz beat is "
            "valid as the last row of a tile is taken; otherwise (and for the first tile "
            "after reset) the iz beat is taken on an idle decoder and the first row follows "
            f"{IZ_LOAD_CYCLES} cycle later",
            "cycles_per_item": 1,
            "item": "row",
            "iz_load_cycles": IZ_LOAD_CYCLES,
        },
        "after_reset": "out is empty and the decoder waits for an iz beat",
        "function": {
            "kind": "lbi_decoder",
            "rule": f"mask[j] = {reduce.upper()} over k of (ip.code[k] AND iz.codes[j][k]) "
            f"(semiring {spec.semiring}); the iz tile is held from its beat to the ip beat "
            "with last. There is no row counter: the source sends the tile's rows (tile_rows, "
            "fewer for an edge tile) and flags the last; every row it sends is decoded",
            "semiring": spec.semiring,
            "product": "and",
            "reduce": reduce,
            "output": "out.payload.mask",
            "copies": {"out.payload.last": "ip.payload.last"},
        },
    }
