"""A layer's work, row by row, read from its encoded streams: the decoder timing rules.

:func:`layer_work` turns an :class:`~codesign.models.format.Encoded` layer of any registered
format into a :class:`~codesign.sim.work.LayerWork`. Per row of a pass it gives the compressed
bits, the cycles one decoder unit needs to emit the row, and the operands (read from
the golden decode of the streams, so the simulated product is the stored product).

**Attribution.** Every stored bit and every decoder cycle belongs to exactly one row:
the row holding the **last** output position of the stream element or decoder step
(a Viterbi step or XOR block spanning two rows belongs to the second; a block-bitmap
word or an LBI Iz tile to the last row of its band). Layer headers read once before
the first row (CSR's row_ptr[0], XOR's patch counts and scales) belong to row 0. So
per pass Σ index_bits and Σ value_bits equal the encoding's, and one decoder streaming
the whole layer takes ``head_cycles + Σ decode_cycles + latency`` cycles.

**Rules** (one slice per cycle; stream-level functions, so the RTL tests apply them to
the very streams they send; head and latency per kind in :data:`HEAD_CYCLES` and
:data:`LATENCY`; the kinds with RTL — relative, viterbi, lbi, xor — are checked
cycle-exact against the cocotb measurements of their hw/ blocks):

* ``dense``, ``lowrank``: no decoder (0 cycles). ``lowrank`` is two passes, V (r, n)
  then U (m, r), both dense.
* ``bitmap``: ⌈n / slice_bits⌉ per row (:func:`slice_cycles`).
* ``csr``, ``bmwm``, ``darb``: the steps of :func:`codesign.models.decode_cost.decode_cost` with
  ``index_units`` lanes (CSR pays its pointer latency per row).
* ``relative``: one entry per cycle, padding entries included (:func:`relative_cycles`);
  operands are the entries, padding zero slots included (the EIE MAC processes them).
* ``nm``: one group of m per cycle, ⌈n / m⌉ per row (:func:`slice_cycles`).
* ``block``: one kept block of the row's block-row per cycle, at least one cycle to
  read the block-bitmap word (:func:`kept_block_cycles`); operands: whole kept blocks.
* ``viterbi``: one VD step of n_out mask bits per cycle, ⌈m·n / n_out⌉ steps
  (:func:`viterbi_cycles`; segment restarts cost nothing).
* ``lbi``: one tile row (tile_cols mask bits) per cycle, ⌈n / tile_cols⌉ per row
  (:func:`lbi_cycles`); the first Iz load is the head, later loads are hidden.
* ``xor``: a unit of the mask format's decoder (its rule on the ``mask_*`` streams,
  :func:`codesign.models.xor.mask_encoding`; any mask format, ``viterbi`` and ``lbi`` included;
  a ``relative`` mask decoder carries a 1-bit value) and ``value_bits`` XOR decoders,
  one per bit-plane, in parallel (one :class:`~codesign.sim.work.DecoderUse` with
  ``copies`` = value_bits). Per plane a block with k patches takes max(1, k) cycles,
  the plane's first block k + 1 when k ≥ 1 (:func:`xor_cycles`); a row takes the max
  over planes of the cycles attributed to it — the planes move in lockstep row by row,
  so that max is also every copy's ``active_cycles`` — and the unit the max of that and
  the mask rule.

Rules without RTL (bitmap, csr, bmwm, darb, nm, block) are this project's
reconstruction: ``block`` of their :class:`~codesign.sim.work.DecoderUse` is ``None`` and they
model no output register (latency 0).

**On the tile** (``layer_work(..., tile=TileSpec)``, :mod:`codesign.models.tile`; relative,
csr, viterbi and lbi) the rules are the same, checked against the tile's RTL, but a
row's bits are its record as the tile's stream carries it (whole words: the relative
count, the CSR row count, padding), an LBI band record travels before the band's first
row into the shared band buffer (``band_bits``) and waits for the buffer two bands back
(the gate), the LBI head is hidden (the first Iz tile is read from that buffer in the
row's start cycle) and the latency is :data:`~codesign.models.tile.HANDOFF_CYCLES`
(the decoder's output register and the unit's commit).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from codesign.models.decode_cost import decode_cost
from codesign.models.format import Encoded, ceil_log2
from codesign.models.lowrank import factor_scales
from codesign.models.registry import get_format
from codesign.models.tile import HANDOFF_CYCLES, VALUE_BITS, TileSpec, tile_stream
from codesign.models.xor import mask_encoding
from codesign.sim.work import DecoderUse, LayerWork, Pass

__all__ = [
    "HEAD_CYCLES",
    "LATENCY",
    "kept_block_cycles",
    "layer_work",
    "lbi_cycles",
    "relative_cycles",
    "slice_cycles",
    "step_rows",
    "stream_cycles",
    "viterbi_cycles",
    "xor_cycles",
]

HEAD_CYCLES: dict[str, int] = {"lbi": 1}
"""Cycles a decoder of a kind spends once per stream before its first row (LBI: the
first Iz load); kinds not listed: 0."""

LATENCY: dict[str, int] = {"relative": 1, "viterbi": 1, "lbi": 1, "xor": 1}
"""Cycles from a decoder's last input of a row to the row's last output (the output
register of the RTL block); kinds not listed: 0."""


# ---------------------------------------------------------------- stream-level rules


def _rows(shape: tuple[int, int]) -> tuple[int, int]:
    m, n = (int(s) for s in shape)
    if m < 1 or n < 1:
        raise ValueError(f"shape must be (m, n) with m, n >= 1, got {tuple(shape)}")
    return m, n


def slice_cycles(shape: tuple[int, int], width: int) -> np.ndarray:
    """(m,) int64 cycles of a decoder emitting ``width`` columns of a row per cycle:
    ⌈n / width⌉ each (bitmap: width = slice bits; N:M: width = the group size m)."""
    m, n = _rows(shape)
    if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or width < 1:
        raise ValueError(f"width must be an integer >= 1 (columns per cycle), got {width!r}")
    return np.full(m, -(-n // int(width)), dtype=np.int64)


def relative_cycles(gaps: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(m,) int64 entries of a relative stream per row, one cycle each.

    ``gaps`` (entries,): the stream's gaps, padding entries included; entry e sits at
    position cumsum(gaps + 1)[e] − 1 of the row-major (m, n) matrix and belongs to its
    row. Raises ``ValueError`` when an entry lies past the matrix.
    """
    m, n = _rows(shape)
    pos = np.cumsum(np.asarray(gaps, dtype=np.int64) + 1) - 1
    if pos.size and pos[-1] >= m * n:
        raise ValueError(
            f"the relative stream reaches position {int(pos[-1])}, past the {m}x{n} matrix "
            f"({m * n} positions); give the shape the stream was encoded for"
        )
    return np.bincount(pos // n, minlength=m).astype(np.int64)


def kept_block_cycles(block_mask: np.ndarray, shape: tuple[int, int], b: int) -> np.ndarray:
    """(m,) int64 cycles of the ``block`` format's rows: one per kept b×b block of the
    row's block-row (b values of the row each), at least one (the block-bitmap word).

    ``block_mask`` (⌈m/b⌉·⌈n/b⌉,) 0/1, the block bitmap in row-major block order.
    """
    m, n = _rows(shape)
    mb, nb = -(-m // b), -(-n // b)
    kept = np.asarray(block_mask, dtype=np.int64).reshape(mb, nb).sum(axis=1)
    return np.maximum(1, kept)[np.arange(m) // b]


def step_rows(n_out: int, shape: tuple[int, int]) -> np.ndarray:
    """(⌈m·n / n_out⌉,) int64: the row of the last in-matrix position of every step
    that emits ``n_out`` consecutive positions of the row-major (m, n) matrix (Viterbi
    steps, XOR blocks)."""
    m, n = _rows(shape)
    size = m * n
    steps = -(-size // n_out)
    last = np.minimum((np.arange(steps, dtype=np.int64) + 1) * n_out, size) - 1
    return last // n


def viterbi_cycles(n_out: int, shape: tuple[int, int]) -> np.ndarray:
    """(m,) int64 VD steps per row: the ⌈m·n / n_out⌉ steps of the matrix, one cycle
    each, each attributed by :func:`step_rows`."""
    return np.bincount(step_rows(n_out, shape), minlength=shape[0]).astype(np.int64)


def lbi_cycles(tile_cols: int, shape: tuple[int, int]) -> np.ndarray:
    """(m,) int64 cycles of the LBI decoder per row: one tile row of ``tile_cols`` mask
    bits per cycle, ⌈n / tile_cols⌉ tiles across (the stream's ``ip`` codes)."""
    return slice_cycles(shape, tile_cols)


def xor_cycles(
    patch_plane: np.ndarray,
    patch_block: np.ndarray,
    planes: int,
    n_out: int,
    shape: tuple[int, int],
) -> np.ndarray:
    """(planes, m) int64 cycles of one XOR decoder per plane and row.

    A plane of the row-major (m, n) matrix is ⌈m·n / n_out⌉ blocks; a block with k
    patches takes max(1, k) cycles, block 0 of a plane k + 1 when k ≥ 1; each block's
    cycles go to its row (:func:`step_rows`). ``patch_plane``, ``patch_block``
    (patches,): plane and block of every patch.
    """
    rows = step_rows(n_out, shape)
    patches = np.zeros((planes, rows.size), dtype=np.int64)
    np.add.at(patches, (np.asarray(patch_plane), np.asarray(patch_block)), 1)
    cycles = np.maximum(1, patches)
    cycles[:, 0] += patches[:, 0] > 0
    out = np.zeros((planes, shape[0]), dtype=np.int64)
    np.add.at(out, (np.arange(planes)[:, None], rows[None, :]), cycles)
    return out


def stream_cycles(kind: str, rows: Iterable[np.ndarray]) -> int:
    """Cycles one decoder of ``kind`` takes, with no stall, for streams sent back to
    back whose per-row cycles are ``rows``: from its first input to its last output,
    both counted, :data:`HEAD_CYCLES` + Σ + :data:`LATENCY` (the head is paid once:
    later heads hide behind the rows before them)."""
    total = sum(int(np.sum(r)) for r in rows)
    return HEAD_CYCLES.get(kind, 0) + total + LATENCY.get(kind, 0)


# ---------------------------------------------------------------- per-format index work


@dataclasses.dataclass(frozen=True)
class _Options:
    bitmap_slice_bits: int
    index_units: int


@dataclasses.dataclass(frozen=True)
class _Decoding:
    """A format's index side per row: bits (m,), cycles (m,), head, latency, decoders."""

    index_bits: np.ndarray
    cycles: np.ndarray
    head: int
    latency: int
    decoders: tuple[DecoderUse, ...]


def _single(
    kind: str,
    block: str | None,
    enc: Encoded,
    params: dict[str, Any],
    bits: np.ndarray,
    cycles: np.ndarray,
) -> _Decoding:
    use = DecoderUse(kind, block, enc.spec, params, 1, cycles)
    return _Decoding(
        bits.astype(np.int64), cycles, HEAD_CYCLES.get(kind, 0), LATENCY.get(kind, 0), (use,)
    )


def _no_index(enc: Encoded, opts: _Options) -> _Decoding:
    zeros = np.zeros(enc.shape[0], dtype=np.int64)
    return _Decoding(zeros, zeros, 0, 0, ())


def _bitmap(enc: Encoded, opts: _Options) -> _Decoding:
    m, n = enc.shape
    cycles = slice_cycles(enc.shape, opts.bitmap_slice_bits)
    params = {"slice_bits": opts.bitmap_slice_bits}
    return _single("bitmap", None, enc, params, np.full(m, n), cycles)


def _decode_cost(enc: Encoded, opts: _Options) -> _Decoding:
    cost = decode_cost(enc, lanes=opts.index_units)
    bits = cost.index_bits.copy()
    bits[0] += cost.header_bits
    return _single(enc.format, None, enc, {"lanes": opts.index_units}, bits, cost.steps)


def _relative(enc: Encoded, opts: _Options) -> _Decoding:
    m, n = enc.shape
    gaps = enc.streams["gaps"]
    cycles = relative_cycles(gaps.data, enc.shape)
    params = {
        "n_cols": n,
        "value_bits": enc.streams["values"].width,
        "row_bits": max(1, ceil_log2(m)),
    }
    return _single("relative", "relative", enc, params, cycles * gaps.width, cycles)


def _nm(enc: Encoded, opts: _Options) -> _Decoding:
    m = enc.shape[0]
    positions = enc.streams["positions"]
    bits = np.full(m, positions.data.size // m * positions.width)
    return _single("nm", None, enc, {}, bits, slice_cycles(enc.shape, enc.spec.m))


def _band_last_rows(m: int, band: int) -> np.ndarray:
    """Last row of every band of ``band`` rows (the last band clipped)."""
    return np.minimum(np.arange(1, -(-m // band) + 1) * band, m) - 1


def _block(enc: Encoded, opts: _Options) -> _Decoding:
    m, n = enc.shape
    b = enc.spec.b
    bits = np.zeros(m, dtype=np.int64)
    bits[_band_last_rows(m, b)] = -(-n // b)
    cycles = kept_block_cycles(enc.streams["block_mask"].data, enc.shape, b)
    return _single("block", None, enc, {}, bits, cycles)


def _viterbi(enc: Encoded, opts: _Options) -> _Decoding:
    cycles = viterbi_cycles(enc.spec.n_out, enc.shape)
    bits = cycles * enc.streams["inputs"].width
    return _single("viterbi", "viterbi", enc, {}, bits, cycles)


def _lbi(enc: Encoded, opts: _Options) -> _Decoding:
    spec = enc.spec
    m, n = enc.shape
    cycles = lbi_cycles(spec.tile_cols, enc.shape)
    bits = cycles * enc.streams["ip"].width
    bits[_band_last_rows(m, spec.tile_rows)] += n * enc.streams["iz"].width
    return _single("lbi", "lbi", enc, {}, bits, cycles)


def _patches(enc: Encoded) -> tuple[np.ndarray, np.ndarray]:
    """(plane, position in the plane) of every patch of an ``xor`` encoding."""
    spec = enc.spec
    counts = enc.streams["patch_count"].data.astype(np.int64)
    plane = np.repeat(np.arange(spec.value_bits), counts)
    block = enc.streams["patch_block"].data.astype(np.int64)
    return plane, block * spec.n_out + enc.streams["patch_bit"].data.astype(np.int64)


def _xor(enc: Encoded, opts: _Options) -> _Decoding:
    spec = enc.spec
    mask = mask_encoding(enc)
    unit = _INDEX[mask.format](mask, opts)
    plane, position = _patches(enc)
    per_plane = xor_cycles(plane, position // spec.n_out, spec.value_bits, spec.n_out, enc.shape)
    busy = per_plane.max(axis=0)
    blocks = enc.streams["inputs"].data.size // spec.value_bits
    params = {"block_bits": max(1, ceil_log2(blocks))}
    use = DecoderUse("xor", "xor", spec, params, spec.value_bits, busy)
    return _Decoding(
        unit.index_bits,
        np.maximum(unit.cycles, busy),
        unit.head,
        max(unit.latency, LATENCY["xor"]),
        (*unit.decoders, use),
    )


_INDEX: dict[str, Callable[[Encoded, _Options], _Decoding]] = {
    "dense": _no_index,
    "bitmap": _bitmap,
    "csr": _decode_cost,
    "relative": _relative,
    "nm": _nm,
    "block": _block,
    "xor": _xor,
    "viterbi": _viterbi,
    "lbi": _lbi,
    "bmwm": _decode_cost,
    "darb": _decode_cost,
}


# ---------------------------------------------------------------- value bits and operands


def _xor_value_bits(enc: Encoded) -> np.ndarray:
    """(m,) value bits of an ``xor`` encoding: each block's inputs (all planes) to the
    block's row, each patch to its bit's row, patch counts and scales to row 0."""
    spec = enc.spec
    m, n = enc.shape
    inputs = enc.streams["inputs"]
    bits = np.bincount(step_rows(spec.n_out, enc.shape), minlength=m).astype(np.int64)
    bits *= spec.value_bits * inputs.width
    _, position = _patches(enc)
    patch_width = enc.streams["patch_block"].width + enc.streams["patch_bit"].width
    bits += np.bincount(position // n, minlength=m) * patch_width
    bits[0] += enc.streams["patch_count"].bits + enc.streams["scales"].bits
    return bits


def _operands(weights: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indptr (m + 1,), cols, vals) of the True positions of ``mask`` (m, n) in CSR
    order: one scan of the mask for the flat positions, O(nnz) work after it."""
    m, n = mask.shape
    flat = np.flatnonzero(mask)
    indptr = np.searchsorted(flat, np.arange(m + 1, dtype=np.int64) * n)
    return indptr.astype(np.int64), flat % n, weights.reshape(-1)[flat]


def _all_operands(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The :func:`_operands` of a matrix stored dense: every row's n values in column
    order (no mask to scan)."""
    m, n = matrix.shape
    indptr = np.arange(m + 1, dtype=np.int64) * n
    return indptr, np.tile(np.arange(n, dtype=np.int64), m), matrix.reshape(-1)


def _dense_pass(name: str, matrix: np.ndarray, width: int) -> Pass:
    """A matrix stored dense with ``width``-bit values and read with no decoder."""
    m, n = matrix.shape
    zeros = np.zeros(m, dtype=np.int64)
    indptr, cols, vals = _all_operands(matrix)
    return Pass(
        name, (m, n), zeros, np.full(m, n * width, np.int64), zeros, 0, 0, indptr, cols, vals, ()
    )


def _lowrank_passes(name: str, enc: Encoded) -> tuple[Pass, ...]:
    """V then U, dense. Quantized factors multiply as stored; the product of their two
    scales is applied to U's operands, so the lanes' result is the decoded U·V·X (the
    scales' DRAM bits go to the first row of V)."""
    m, n = enc.shape
    u, v = enc.streams["u"], enc.streams["v"]
    su, sv = factor_scales(enc)
    left = u.data.reshape(m, -1)
    right = v.data.reshape(left.shape[1], n)
    if (su, sv) != (1.0, 1.0):
        left = left * (su * sv)
    first = _dense_pass(f"{name}.V", right, v.width)
    if "scales" in enc.streams:
        first.value_bits[0] += enc.streams["scales"].bits
    return first, _dense_pass(f"{name}.U", left, u.width)


def _tile_pass(name: str, enc: Encoded, opts: _Options, tile: TileSpec) -> Pass:
    """The pass of ``enc`` on the tile: its records' bits, band records and gates."""
    stream = tile_stream(enc, tile)
    index = _INDEX[enc.format](enc, opts)
    indptr, cols, vals = _operands(stream.weights, stream.mask)
    value_bits = np.diff(indptr) * VALUE_BITS
    m = enc.shape[0]
    gate_lo = np.zeros(m, dtype=np.int64)
    gate_hi = np.zeros(m, dtype=np.int64)
    if enc.format == "lbi":
        band = enc.spec.tile_rows
        firsts = np.arange(2 * band, m, band)
        gate_lo[firsts], gate_hi[firsts] = firsts - 2 * band, firsts - band
    return Pass(
        name=name,
        shape=enc.shape,
        index_bits=stream.row_words * tile.word_bits - value_bits,
        value_bits=value_bits,
        decode_cycles=index.cycles,
        head_cycles=0,
        latency=HANDOFF_CYCLES,
        indptr=indptr,
        cols=cols,
        vals=vals,
        decoders=index.decoders,
        band_bits=stream.band_words * tile.word_bits,
        gate_lo=gate_lo,
        gate_hi=gate_hi,
        reads=stream.reads,
    )


def _format_pass(name: str, enc: Encoded, opts: _Options) -> Pass:
    decoded = get_format(enc.format).decode(enc)
    if enc.format == "dense":
        indptr, cols, vals = _all_operands(decoded.weights)
    else:
        indptr, cols, vals = _operands(decoded.weights, decoded.mask)
    index = _INDEX[enc.format](enc, opts)
    if enc.format == "xor":
        value_bits = _xor_value_bits(enc)
    else:
        value_bits = np.diff(indptr) * enc.streams["values"].width
    return Pass(
        name=name,
        shape=enc.shape,
        index_bits=index.index_bits,
        value_bits=value_bits,
        decode_cycles=index.cycles,
        head_cycles=index.head,
        latency=index.latency,
        indptr=indptr,
        cols=cols,
        vals=vals,
        decoders=index.decoders,
    )


def _check_count(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def layer_work(
    name: str,
    encoded: Encoded,
    *,
    bitmap_slice_bits: int = 64,
    index_units: int = 1,
    tile: TileSpec | None = None,
) -> LayerWork:
    """The work of one encoded layer for the simulator.

    Args:
        name: the layer's name (pass names: ``name``; lowrank ``name.V``, ``name.U``).
        encoded: the layer in any registered format (shape (m, n)).
        bitmap_slice_bits: mask bits a bitmap decoder reads per cycle.
        index_units: lanes P of the csr / bmwm / darb index decoders
            (:func:`codesign.models.decode_cost.decode_cost`).
        tile: the RTL tile the layer runs on (module docstring; its format spec is the
            layer's), or None for the abstract machine.

    Returns:
        The layer's passes (one, two for ``lowrank``) with per-row bits, decode cycles
        and operands (module docstring for the rules), its total bits and dense shape.
    """
    opts = _Options(
        _check_count("bitmap_slice_bits", bitmap_slice_bits),
        _check_count("index_units", index_units),
    )
    get_format(encoded.format)
    if tile is not None:
        passes = (_tile_pass(name, encoded, opts, tile),)
    elif encoded.format == "lowrank":
        passes = _lowrank_passes(name, encoded)
    else:
        passes = (_format_pass(name, encoded, opts),)
    return LayerWork(
        name=name,
        format=encoded.format,
        spec=encoded.spec,
        passes=passes,
        total_bits=encoded.total_bits,
        dense_shape=encoded.shape,
    )
