"""What one layer asks of the accelerator, row by row, read from its encoded streams.

The simulator works at transaction granularity: a transaction is one row of one pass
of a layer. :class:`Pass` holds, for every row of a weight matrix, the compressed bits
the row brings from DRAM, the cycles a decoder needs to emit it (the format's timing
rule applied to the row's part of the real streams), and the operands its MAC lane
multiplies (read from the decoded streams, so the simulated product is the product of
what was stored). Most layers are one pass; a factored (``lowrank``) layer is two
(V·X, then U·(V·X)).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from numba import njit


@dataclasses.dataclass(frozen=True)
class DecoderUse:
    """One decoder of a decoder unit and how busy each row keeps it.

    ``kind``: the timing rule's name (``"csr"``, ``"viterbi"``, ``"xor"``, …);
    ``block``: the hardware block in hw/ that implements it (``None`` when the project
    has no RTL for it: its energy is then estimated per active cycle); ``params``: the
    block's parameters beyond the spec (e.g. ``n_cols`` of ``relative``); ``spec``: the
    spec the block is elaborated from; ``copies``: identical blocks working in parallel
    inside one decoder unit (e.g. one XOR decoder per value bit-plane);
    ``active_cycles``: (m,) int64, cycles each row keeps one copy busy.
    """

    kind: str
    block: str | None
    spec: Any
    params: dict[str, Any]
    copies: int
    active_cycles: np.ndarray


@dataclasses.dataclass(frozen=True)
class Pass:
    """The rows of one weight matrix of a layer, as the accelerator streams them.

    ``shape``: (m, n) of the matrix; the pass computes Y (m, B) = W·X for X (n, B).
    ``index_bits`` / ``value_bits``: (m,) int64, compressed bits attributed to each
    row (every stored bit belongs to exactly one row, so the sums equal the encoding's
    ``index_bits`` and ``value_bits``). ``decode_cycles``: (m,) int64, cycles a decoder
    unit needs to emit the row (the slowest of its ``decoders``; 0 when the format needs
    no decoder). ``head_cycles``: cycles a decoder spends once per stream before its
    first row (e.g. LBI's first Iz load); ``latency``: cycles from a decoder's last
    input of a row to that row's last output (its output register; 0 without a
    decoder), so one decoder streaming every row takes
    ``head_cycles + decode_cycles.sum() + latency`` cycles, the count the RTL tests
    measure from the first input handshake to the last output. ``indptr`` (m + 1,),
    ``cols`` and ``vals`` (nnz,): the operands in CSR order — row r multiplies
    ``vals[indptr[r]:indptr[r+1]]`` with rows ``cols[…]`` of X, one multiply-accumulate
    per operand per batch column (stored zeros such as padding slots or dense storage
    are operands too).

    On a machine that is the RTL tile (:mod:`codesign.models.tile`) the bits are the
    row's record as the tile's stream carries it (whole words, padding included), and
    two more per-row figures apply: ``band_bits`` (m,): bits the stream carries just
    before the row that go to a shared buffer, not to its unit's bank (LBI band
    records); ``gate_lo``, ``gate_hi`` (m,): the row's transfer may start only
    ``latency`` cycles after every row in ``gate_lo[r]:gate_hi[r]`` is decoded (the band
    buffer it overwrites is free; an empty range: no gate). ``None``: zeros / no gates.
    And the buffer is a bank per decoder unit filled word by word: ``reads``
    (Σ row words,) int64, for every word of the rows' records, row by row, the cycle
    its unit reads it counted from the row's start (a word's bank slot is free from the
    cycle after; :attr:`codesign.models.tile.TileStream.reads`). ``None``: the abstract
    machine's buffer, one pool a row's bits occupy from its transfer until it is
    decoded.
    """

    name: str
    shape: tuple[int, int]
    index_bits: np.ndarray
    value_bits: np.ndarray
    decode_cycles: np.ndarray
    head_cycles: int
    latency: int
    indptr: np.ndarray
    cols: np.ndarray
    vals: np.ndarray
    decoders: tuple[DecoderUse, ...]
    band_bits: np.ndarray | None = None
    gate_lo: np.ndarray | None = None
    gate_hi: np.ndarray | None = None
    reads: np.ndarray | None = None

    @property
    def rows(self) -> int:
        """Rows m of the matrix."""
        return self.shape[0]

    @property
    def row_bits(self) -> np.ndarray:
        """(m,) int64: index plus value bits of each row."""
        return self.index_bits + self.value_bits

    @property
    def dram_bits(self) -> np.ndarray:
        """(m,) int64: bits the DRAM channel moves for each row: its own plus the band
        bits sent just before it."""
        if self.band_bits is None:
            return self.row_bits
        return self.row_bits + self.band_bits

    @property
    def gates(self) -> tuple[np.ndarray, np.ndarray]:
        """(gate_lo, gate_hi), (m,) int64 each (empty ranges when the pass has none)."""
        if self.gate_lo is None or self.gate_hi is None:
            zeros = np.zeros(self.rows, dtype=np.int64)
            return zeros, zeros
        return self.gate_lo, self.gate_hi

    @property
    def macs(self) -> np.ndarray:
        """(m,) int64: operands of each row (multiply-accumulates per batch column)."""
        return np.diff(self.indptr)

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Y (m, B) float64 = the pass's operands times ``x`` (n, B): each row the sum,
        in operand order, of its operands times their rows of ``x`` (as a lane
        accumulates them); O(operands·B) time and no memory beyond Y."""
        x = np.ascontiguousarray(x, dtype=np.float64)
        vals = np.ascontiguousarray(self.vals, dtype=np.float64)
        return _accumulate(self.indptr, self.cols, vals, x)


@dataclasses.dataclass(frozen=True)
class LayerWork:
    """A layer's passes, run one after the other (the output of a pass is the next
    pass's X), with the format, spec and storage they came from."""

    name: str
    format: str
    spec: Any
    passes: tuple[Pass, ...]
    total_bits: int
    dense_shape: tuple[int, int]

    @property
    def dense_macs(self) -> int:
        """Multiply-accumulates per batch column of the dense layer (m·n)."""
        return self.dense_shape[0] * self.dense_shape[1]


@njit(cache=True)
def _accumulate(indptr, cols, vals, x):
    """(m, B) float64: row r = Σ_k vals[k]·x[cols[k]] over k in indptr[r]:indptr[r+1]."""
    m = indptr.size - 1
    columns = x.shape[1]
    out = np.zeros((m, columns))
    for r in range(m):
        for k in range(indptr[r], indptr[r + 1]):
            v, c = vals[k], cols[k]
            for j in range(columns):
                out[r, j] += v * x[c, j]
    return out
