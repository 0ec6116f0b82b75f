"""BMWM and DARB: one kept weight per block of a row, located by a short offset.

Both cut every row of an (m, n) matrix into blocks of a power-of-two size b_r (the last
block of a row is short when b_r does not divide n) and keep the largest |w| of each
block (ties: the lowest column). Row r therefore keeps B_r = ⌈n / b_r⌉ weights and
stores one ⌈log2 b_r⌉-bit offset per kept weight; decoding is
column = (block << log2 b_r) | offset.

* **BMWM** (block-max weight masking, :class:`BmwmFormat`): one block size b for every
  row, so rows are perfectly balanced; sparsity is fixed at 1 − 1/b (a little less when
  the short last block is counted), and a requested sparsity farther than 0.005 from
  it is refused with the nearest block sizes named (the fixed-sparsity rule of
  :data:`~codesign.models.format.SPARSITY_TOLERANCE`).
* **DARB** (density-adaptive regular blocks, :class:`DarbFormat`, Ren et al., AAAI
  2020): each row its own b_r from the row's count nnz_r under global magnitude
  pruning at the target rate (rule: :func:`darb_log_blocks`), named by a per-row code
  of ⌈log2(log2(max_block) + 1)⌉ bits.

Index bits = Σ_r B_r·log2 b_r (+ m·code bits for DARB); a short last block stores a
full log2 b_r-bit offset (the decoder reads fixed-width offsets). The paper's text
could not be read: the rules here are this project's reconstruction (REFERENCES §4).

Stream layout: ``values`` holds the B_r kept values of every row in row order
(a block whose weights are all zero stores a zero value at offset 0);
``offsets_b{b}`` holds, in row order, the offsets of the rows whose block size is b
(width log2 b bits); DARB adds ``row_code`` (m codes k_r = log2 b_r).
"""

from __future__ import annotations

import abc
import dataclasses
from typing import ClassVar

import numpy as np
from numba import njit, prange

from codesign.models.format import (
    SPARSITY_TOLERANCE,
    Decoded,
    Encoded,
    Format,
    FormatError,
    Stream,
    ceil_log2,
    value_width,
)
from codesign.models.specs import BmwmSpec, DarbSpec, Spec
from codesign.models.workloads import check_sparsity, check_weights

_RATE_TOLERANCE = 1e-12
BMWM_MAX_BLOCK = BmwmSpec._ranges["b"][1]


# ---------------------------------------------------------------- numba kernels


@njit(cache=True, parallel=True)
def _block_argmax(mags, log_block, starts):  # pragma: no cover - compiled
    """Per block of every row: column of the largest magnitude (first on ties) and the
    number of non-zero magnitudes. ``mags`` (m, n) ≥ 0; ``log_block`` (m,) log2 b_r;
    ``starts`` (m + 1,) first slot of each row."""
    m, n = mags.shape
    cols = np.empty(starts[m], np.int64)
    nonzeros = np.empty(starts[m], np.int64)
    for r in prange(m):
        b = np.int64(1) << log_block[r]
        first = starts[r]
        for j in range(starts[r + 1] - first):
            lo = j * b
            hi = min(lo + b, n)
            best = lo
            top = mags[r, lo]
            count = 0
            for c in range(lo, hi):
                v = mags[r, c]
                if v != 0:
                    count += 1
                if v > top:
                    top = v
                    best = c
            cols[first + j] = best
            nonzeros[first + j] = count
    return cols, nonzeros


@njit(cache=True, parallel=True)
def _fitting_log_blocks(mags, cap):  # pragma: no cover - compiled
    """Per row, the largest k ≤ ``cap`` such that no two non-zeros share a block of
    2^k columns: two columns c < d share one iff c >> k == d >> k, i.e. iff k is above
    the highest set bit of c ^ d, so only consecutive non-zeros need checking."""
    m, n = mags.shape
    out = np.empty(m, np.int64)
    for r in prange(m):
        k = cap
        prev = -1
        for c in range(n):
            if k == 0:
                break
            if mags[r, c] != 0:
                if prev >= 0:
                    diff = prev ^ c
                    high = -1
                    while diff:
                        diff >>= 1
                        high += 1
                    k = min(k, high)
                prev = c
        out[r] = k
    return out


# ---------------------------------------------------------------- helpers


def magnitudes(weights: np.ndarray) -> np.ndarray:
    """|w| (m, n) in a dtype that orders exactly like |w| in float64 (float32/float64
    stay, float16 becomes float32, integers become float64)."""
    if weights.dtype in (np.float32, np.float64):
        return np.abs(weights)
    if weights.dtype == np.float16:
        return np.abs(weights.astype(np.float32))
    return np.abs(weights, dtype=np.float64)


def blocks_per_row(n: int, log_block: np.ndarray) -> np.ndarray:
    """B_r = ⌈n / 2^k_r⌉ for every row's ``log_block`` k_r (int64 array of its shape)."""
    log_block = np.asarray(log_block, dtype=np.int64)
    return (n + (np.int64(1) << log_block) - 1) >> log_block


def magnitude_row_counts(weights: np.ndarray, sparsity: float) -> np.ndarray:
    """Kept weights per row (m,) under global magnitude pruning at ``sparsity``.

    Equal to ``magnitude_mask(weights, sparsity).sum(axis=1)`` (same count
    round(sparsity·m·n) pruned, same tie rule: among equal |w| the earlier row-major
    position is pruned first), found with one partition instead of a full sort.
    """
    check_weights(weights)
    mags = magnitudes(weights)
    m, n = mags.shape
    pruned = round(check_sparsity(sparsity) * mags.size)
    if pruned == 0:
        return np.full(m, n, dtype=np.int64)
    if pruned == mags.size:
        return np.zeros(m, dtype=np.int64)
    flat = mags.ravel()
    threshold = np.partition(flat, pruned)[pruned]
    counts = np.count_nonzero(mags > threshold, axis=1).astype(np.int64)
    ties = np.flatnonzero(flat == threshold)
    kept_ties = (mags.size - pruned) - int(counts.sum())
    if kept_ties:
        counts += np.bincount(ties[ties.size - kept_ties :] // n, minlength=m)
    return counts


def _cap_log_block(n: int, max_block: int) -> int:
    """log2 of the largest useful block: max_block, or the power of two covering n."""
    return min(max_block.bit_length() - 1, ceil_log2(n))


def darb_log_blocks(row_counts: np.ndarray, n: int, spec: DarbSpec) -> np.ndarray:
    """DARB's block-size rule: log2 b_r (m,) for rows of ``n`` columns that keep
    ``row_counts`` (m,) weights under magnitude pruning.

    Candidates are b = 2^k for k = 0..K, K = min(log2 max_block, ⌈log2 n⌉) (a block
    wider than the row only costs offset bits); a candidate keeps ⌈n/b⌉ weights, a count
    that strictly falls with k. ``spec.rounding`` picks, for each row's nnz_r:

    * ``nearest``: the k whose ⌈n/b⌉ is closest to nnz_r; a tie goes to the larger k;
    * ``down``: the largest k with ⌈n/b⌉ ≥ nnz_r (b ≤ n/nnz_r: the row keeps at least
      its magnitude count), k = K when nnz_r = 0;
    * ``up``: the smallest k with ⌈n/b⌉ ≤ nnz_r (b ≥ n/nnz_r: at most its count), or K
      when no block size keeps that few (nnz_r = 0).
    """
    counts = np.asarray(row_counts, dtype=np.int64)[:, None]
    ks = np.arange(_cap_log_block(n, spec.max_block) + 1, dtype=np.int64)
    kept = blocks_per_row(n, ks)[None, :]
    last = ks.size - 1
    if spec.rounding == "nearest":
        dist = np.abs(kept - counts)
        return last - np.argmin(dist[:, ::-1], axis=1)
    if spec.rounding == "down":
        return np.maximum((kept >= counts).sum(axis=1) - 1, 0)
    fits = kept <= counts
    return np.where(fits.any(axis=1), np.argmax(fits, axis=1), last)


def bmwm_block_for(sparsity: float) -> int:
    """The block size b (a power of two) whose BMWM sparsity 1 − 1/b is the smallest
    one ≥ ``sparsity``: b = 2^⌈log2(1 / (1 − sparsity))⌉."""
    check_sparsity(sparsity)
    b = 1
    while 1.0 - 1.0 / b < sparsity - _RATE_TOLERANCE:
        b *= 2
    return b


@dataclasses.dataclass(frozen=True)
class BlockSelection:
    """The largest-|w| weight of every block of a matrix (m, n).

    ``log_block`` (m,): log2 b_r; ``starts`` (m + 1,): first slot of each row (row r
    owns slots starts[r]..starts[r+1]−1, one per block); ``rows``/``cols`` (slots,):
    position of each slot's kept weight; ``nonzeros`` (slots,): non-zeros of the
    input inside each block.
    """

    log_block: np.ndarray
    starts: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    nonzeros: np.ndarray

    @property
    def offsets(self) -> np.ndarray:
        """Offset of each kept weight in its block (slots,), col & (b_r − 1)."""
        return self.cols & ((np.int64(1) << self.log_block[self.rows]) - 1)


def select_blocks(
    weights: np.ndarray, log_block: np.ndarray, mags: np.ndarray | None = None
) -> BlockSelection:
    """Cut row r of ``weights`` (m, n) into blocks of 2^log_block[r] columns and pick
    the largest |w| of each (the lowest column on ties, offset 0 in an all-zero block).
    ``mags``: :func:`magnitudes` of ``weights`` when the caller has them."""
    log_block = np.ascontiguousarray(log_block, dtype=np.int64)
    m, n = weights.shape
    starts = np.zeros(m + 1, dtype=np.int64)
    np.cumsum(blocks_per_row(n, log_block), out=starts[1:])
    mags = np.ascontiguousarray(magnitudes(weights) if mags is None else mags)
    cols, nonzeros = _block_argmax(mags, log_block, starts)
    rows = np.repeat(np.arange(m, dtype=np.int64), np.diff(starts))
    return BlockSelection(log_block, starts, rows, cols, nonzeros)


def _keep(weights: np.ndarray, sel: BlockSelection) -> np.ndarray:
    pruned = np.zeros_like(weights)
    pruned[sel.rows, sel.cols] = weights[sel.rows, sel.cols]
    return pruned


def _bmwm_log_block(sparsity: float, spec: BmwmSpec) -> int:
    """log2 of ``spec.b``, or :class:`FormatError` when BMWM's fixed sparsity 1 − 1/b
    misses ``sparsity`` by more than :data:`~codesign.models.format.SPARSITY_TOLERANCE`
    (naming the nearest block sizes and the sparsities they reach)."""
    reached = 1.0 - 1.0 / spec.b
    if abs(reached - check_sparsity(sparsity)) > SPARSITY_TOLERANCE:
        upper = min(bmwm_block_for(sparsity), BMWM_MAX_BLOCK)
        near = sorted({max(upper // 2, 1), upper})
        points = ", ".join(f"b={b} gives {1 - 1 / b:.6g}" for b in near)
        raise FormatError(
            f"BMWM keeps one weight per block of b, so its sparsity is fixed at 1 - 1/b: "
            f"BmwmSpec b={spec.b} gives {reached:.6g}, out of reach of the requested "
            f"sparsity {sparsity:.6g}; nearest points: {points} (use b={upper} with "
            f"sparsity {1 - 1 / upper:.6g}, or ask for sparsity {reached:.6g})"
        )
    return spec.b.bit_length() - 1


def bmwm_prune(weights: np.ndarray, sparsity: float, spec: BmwmSpec) -> np.ndarray:
    """BMWM pruning: keep the largest |w| of every block of ``spec.b`` columns.

    ``sparsity`` must be the one BMWM reaches with ``spec.b``, 1 − 1/b, within
    :data:`~codesign.models.format.SPARSITY_TOLERANCE`, else :class:`FormatError`
    naming the nearest block sizes.
    """
    check_weights(weights)
    k = _bmwm_log_block(sparsity, spec)
    return _keep(weights, select_blocks(weights, np.full(weights.shape[0], k)))


def darb_log_blocks_for(weights: np.ndarray, sparsity: float, spec: DarbSpec) -> np.ndarray:
    """log2 b_r (m,) of DARB pruning ``weights`` (m, n) at ``sparsity``: the rule of
    :func:`darb_log_blocks` applied to :func:`magnitude_row_counts`.

    Raises :class:`FormatError` when even every row at the largest block
    (min(max_block, 2^⌈log2 n⌉)) keeps more than magnitude pruning's m·n −
    round(sparsity·m·n) weights, naming the max_block that would reach the rate. Below
    that limit the reached sparsity follows the rule (see the ``sparsity`` extra).
    """
    check_weights(weights)
    m, n = weights.shape
    budget = weights.size - round(check_sparsity(sparsity) * weights.size)
    cap = _cap_log_block(n, spec.max_block)
    if m * int(blocks_per_row(n, np.array(cap))) > budget:
        raise FormatError(_max_block_message(m, n, sparsity, budget, spec))
    return darb_log_blocks(magnitude_row_counts(weights, sparsity), n, spec)


def _max_block_message(m: int, n: int, sparsity: float, budget: int, spec: DarbSpec) -> str:
    reach = 1 - int(blocks_per_row(n, np.array(_cap_log_block(n, spec.max_block)))) / n
    head = (
        f"DarbSpec max_block={spec.max_block} keeps at least one weight per "
        f"{spec.max_block} columns (sparsity at most {reach:.6g} on n={n} columns), "
        f"too few zeros for sparsity {sparsity:.6g}"
    )
    for k in range(ceil_log2(n) + 1):
        if m * int(blocks_per_row(n, np.array(k))) <= budget:
            return f"{head}; use max_block >= {2**k}"
    return f"{head}; DARB keeps one weight per row at least, so sparsity <= {1 - 1 / n:.6g}"


def darb_prune(weights: np.ndarray, sparsity: float, spec: DarbSpec) -> np.ndarray:
    """DARB pruning at ``sparsity``: block sizes from :func:`darb_log_blocks_for`, then
    the largest |w| of every block kept."""
    return _keep(weights, select_blocks(weights, darb_log_blocks_for(weights, sparsity, spec)))


# ---------------------------------------------------------------- formats


class _OnePerBlockFormat(Format):
    """Shared storage of BMWM and DARB (see the module docstring for the streams)."""

    row_codes: ClassVar[bool] = False

    def _row_code_bits(self, spec: Spec) -> int:
        return 0

    @abc.abstractmethod
    def _log_blocks_of(self, enc: Encoded) -> np.ndarray:
        """log2 b_r (m,) of an encoding, from its spec or its streams."""

    def _store(self, weights: np.ndarray, spec: Spec, sel: BlockSelection) -> Encoded:
        m, n = weights.shape
        vb = value_width(weights.dtype)
        offsets = sel.offsets
        slot_k = sel.log_block[sel.rows]
        streams: dict[str, Stream] = {}
        code_bits = self._row_code_bits(spec)
        if self.row_codes:
            streams["row_code"] = Stream(sel.log_block.copy(), code_bits, "index")
        for k in np.unique(sel.log_block).tolist():
            streams[f"offsets_b{2**k}"] = Stream(offsets[slot_k == k], k, "index")
        values = weights[sel.rows, sel.cols]
        streams["values"] = Stream(values, vb, "value")
        blocks = np.diff(sel.starts)
        offset_bits = int((blocks * sel.log_block).sum())
        index_bits = offset_bits + m * code_bits
        extras = {
            "sparsity": 1.0 - values.size / weights.size,
            "mean_block": float(np.mean(np.int64(1) << sel.log_block)),
            "offset_bits": float(offset_bits),
            "row_code_bits": float(m * code_bits),
        }
        return self._bundle(weights, spec, streams, index_bits, values.size * vb, extras)

    def decode(self, enc: Encoded) -> Decoded:
        m, n = enc.shape
        log_block = self._log_blocks_of(enc)
        blocks = blocks_per_row(n, log_block)
        starts = np.zeros(m + 1, dtype=np.int64)
        np.cumsum(blocks, out=starts[1:])
        rows = np.repeat(np.arange(m, dtype=np.int64), blocks)
        slot_k = log_block[rows]
        block_index = np.arange(starts[m], dtype=np.int64) - starts[rows]
        cols = block_index << slot_k
        for k in np.unique(log_block).tolist():
            cols[slot_k == k] |= enc.streams[f"offsets_b{2**k}"].data.astype(np.int64)
        weights = np.zeros(enc.shape, dtype=enc.dtype)
        mask = np.zeros(enc.shape, dtype=bool)
        weights[rows, cols] = enc.streams["values"].data
        mask[rows, cols] = True
        return Decoded(weights, mask)


class BmwmFormat(_OnePerBlockFormat):
    """Block-max weight masking: one kept weight per block of b columns.

    Index bits m·⌈n/b⌉·log2 b; values m·⌈n/b⌉·(value bits). ``prune`` =
    :func:`bmwm_prune`; ``encode`` stores a matrix with at most one non-zero per block
    (else :class:`FormatError` naming the row and block).
    """

    name = "bmwm"
    summary = "largest |w| of every b-column block, log2(b)-bit offset each"

    def prune(self, weights: np.ndarray, sparsity: float, spec: Spec | None = None) -> np.ndarray:
        """BMWM pruning with the spec's b (which must match ``sparsity``)."""
        return bmwm_prune(weights, sparsity, spec if isinstance(spec, BmwmSpec) else BmwmSpec())

    def _encode(self, weights: np.ndarray, spec: BmwmSpec) -> Encoded:
        k = spec.b.bit_length() - 1
        sel = select_blocks(weights, np.full(weights.shape[0], k))
        crowded = np.flatnonzero(sel.nonzeros > 1)
        if crowded.size:
            raise FormatError(_crowded_message(weights, sel, int(crowded[0]), spec.b))
        return self._store(weights, spec, sel)

    def _log_blocks_of(self, enc: Encoded) -> np.ndarray:
        return np.full(enc.shape[0], enc.spec.b.bit_length() - 1, dtype=np.int64)


def _crowded_message(weights: np.ndarray, sel: BlockSelection, slot: int, b: int) -> str:
    r = int(sel.rows[slot])
    j = slot - int(sel.starts[r])
    lo, hi = j * b, min((j + 1) * b, weights.shape[1]) - 1
    fit = int(_fitting_log_blocks(magnitudes(weights), b.bit_length() - 1).min())
    return (
        f"row {r}, block {j} (columns {lo}..{hi}) has {int(sel.nonzeros[slot])} non-zeros; "
        f"BmwmSpec b={b} stores one per block (prune with the bmwm format's prune first, "
        f"or use b <= {2**fit}, which this matrix fits)"
    )


class DarbFormat(_OnePerBlockFormat):
    """Density-adaptive regular blocks: row r keeps one weight per block of b_r columns.

    Index bits Σ_r ⌈n/b_r⌉·log2 b_r + m·⌈log2(log2 max_block + 1)⌉; values
    Σ_r ⌈n/b_r⌉·(value bits). ``prune`` = :func:`darb_prune`; ``compress`` stores the
    pruning's own b_r. ``encode`` of a given matrix derives each b_r from the row
    itself: the largest power of two ≤ min(max_block, 2^⌈log2 n⌉) whose blocks hold at
    most one non-zero each (bounded by the row count: ⌈n/b_r⌉ ≥ nnz_r), so any matrix
    is stored exactly (b_r = 1 always fits) with the fewest slots the row allows.
    """

    name = "darb"
    row_codes = True
    summary = "per-row power-of-two blocks, one kept weight each, per-row size code"

    def prune(self, weights: np.ndarray, sparsity: float, spec: Spec | None = None) -> np.ndarray:
        """DARB pruning at ``sparsity`` with the spec's max_block and rounding."""
        return darb_prune(weights, sparsity, spec if isinstance(spec, DarbSpec) else DarbSpec())

    def compress(
        self, weights: np.ndarray, sparsity: float | None, spec: Spec | None = None
    ) -> tuple[np.ndarray, Encoded]:
        """DARB pruning and encoding with the same b_r (``sparsity`` None: encode as is)."""
        if sparsity is None:
            return super().compress(weights, sparsity, spec)
        spec = DarbSpec() if spec is None else spec
        if not isinstance(spec, DarbSpec):
            raise FormatError(f"format 'darb' needs a DarbSpec, got {type(spec).__name__}")
        sel = select_blocks(weights, darb_log_blocks_for(weights, sparsity, spec))
        pruned = _keep(weights, sel)
        return pruned, self._store(pruned, spec, sel)

    def _row_code_bits(self, spec: DarbSpec) -> int:
        return ceil_log2(spec.max_block.bit_length())

    def _encode(self, weights: np.ndarray, spec: DarbSpec) -> Encoded:
        mags = np.ascontiguousarray(magnitudes(weights))
        log_block = _fitting_log_blocks(mags, _cap_log_block(weights.shape[1], spec.max_block))
        return self._store(weights, spec, select_blocks(weights, log_block, mags))

    def _log_blocks_of(self, enc: Encoded) -> np.ndarray:
        return enc.streams["row_code"].data.astype(np.int64)
