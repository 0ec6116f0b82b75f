"""Numba encoders and decoder of XOR-gate fixed-to-fixed encoding (REFERENCES §2).

Layout shared by every function here. A bit-plane of L positions is cut into
B = ⌈L / n_out⌉ blocks; block t holds positions t·n_out … t·n_out + n_out − 1 and is
packed into W = ⌈n_out / 64⌉ little-endian ``uint64`` words (bit i of the block is bit
i % 64 of word i // 64, as :func:`codesign.models.gf2.pack`). An input x_t is an n_in-bit
integer (bit k = input line k). The XOR matrix M (n_out × n_s·n_in, 0/1) maps
[x_t; x_{t−1}; …; x_{t−n_s+1}] to the block: column j·n_in + k of M is the
contribution of bit k of x_{t−j}, so block t decodes as

    y_t = ⊕_{j < n_s} ⊕_{k : bit k of x_{t−j} set} M[:, j·n_in + k].

Blocks are grouped into segments of ``segment`` blocks; inputs before a segment's first
block are zero (the shift register is cleared), so segments are independent and the
kernels run them in parallel (``prange`` over planes × segments).

Encoders return, per plane and block, the input x_t and the residual
``care & (y_t ^ data)``: the care bits the decoder gets wrong, i.e. the patches.

* n_s = 1 (:func:`encode_blocks` → ``_encode_single``): GF(2) elimination on the care
  rows of the block (rows of M as n_in-bit integers, data bit as right-hand side).
  A consistent block gets the solution with every free variable 0. An inconsistent
  block gets the x with the fewest mismatched care bits: exact, by a Gray-code walk
  over all 2^n_in inputs, when n_in ≤ :data:`ENUM_MAX_N_IN`; otherwise a heuristic —
  eliminate the care rows in scan order skipping each row that contradicts the rows
  already kept, solve, then flip single input bits while a flip lowers the mismatch
  count (steepest descent).
* n_s ≥ 2 (``_encode_trellis``): Viterbi-style dynamic programming. The state is the
  last n_s − 1 inputs (state bits j·n_in … j·n_in + n_in − 1 hold x_{t−1−j}),
  2^((n_s−1)·n_in) states; the branch cost of a block is its number of mismatched
  care bits; the path metric is the sum (minimised); traceback from the cheapest final
  state (ties: the lowest state). Each block's step is computed one of two ways, both
  exact: the *direct* step visits all 2^(n_s·n_in) transitions (a popcount of the
  care words each, M_j·x from per-slot tables of all 2^n_in inputs); the *distance
  transform* step, taken when the block has few care bits k (:func:`transform_max_care`),
  works on the k care bits only: for each shared part of old and new state it
  scatters the previous costs into a 2^k table indexed by the care bits still to be
  matched, spreads them with a Hamming distance transform (k passes of
  min(D(v), D(v ^ bit) + 1)), and reads the new states' costs from it. The search's
  cost is the minimum number of patches over all input sequences of the segment.
* n_s ≥ 2, elimination (``_encode_eliminate``): online GF(2) elimination of the care
  rows of a segment in scan order, unknowns = the segment's input bits (bit k of
  x_t is unknown t·n_in + k). A care bit of block t reads inputs of blocks
  t − n_s + 1 … t only; its row is reduced by the kept rows whose pivot (lowest
  unknown) it contains, and pivots are lowest unknowns, so every kept row stays inside
  a window of n_s blocks (one ``uint64``) and a row costs at most n_s·n_in reductions.
  A row that reduces to 0 = 1 contradicts the rows kept before it: it is not kept
  and becomes a patch. Back-substitution from the last unknown down (free unknowns 0)
  gives inputs that match every kept row, so the patches are exactly the
  contradicting care bits. Work O(care bits · n_s·n_in) per segment instead of the
  trellis's 2^(n_s·n_in) per block; the patch count is an upper bound of the exact
  search's — equal on random planes at S = 0.9, n_in = 8, n_out = 64, up to 2–3×
  above it when the care bits per block approach n_in (measured:
  ``tests/test_xor.py``, ``benchmarks/bench_scale.py``).
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.extending import intrinsic

from codesign.models.gf2 import pack

__all__ = [
    "ENUM_MAX_N_IN",
    "TRANSFORM_MAX_CARE",
    "decode_blocks",
    "encode_blocks",
    "input_tables",
    "pack_columns",
    "row_words",
    "traceback_bytes",
    "transform_max_care",
    "window_rows",
]

ENUM_MAX_N_IN = 16
"""Largest n_in for which an inconsistent n_s = 1 block is solved by exhaustive search."""

TRANSFORM_MAX_CARE = 20
"""Most care bits of a block for the n_s ≥ 2 distance-transform step (2^k table)."""

_ONE = np.uint64(1)
_BIG = np.int64(1) << np.int64(62)


@intrinsic
def _popcount(typingctx, x):
    """Number of set bits of a ``uint64`` as ``int64`` (LLVM ctpop)."""
    if x != types.uint64:
        return None

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return types.int64(types.uint64), codegen


@intrinsic
def _lowest_bit(typingctx, x):
    """Index of the lowest set bit of a non-zero ``uint64`` as ``int64`` (LLVM cttz)."""
    if x != types.uint64:
        return None

    def codegen(context, builder, signature, args):
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 0))

    return types.int64(types.uint64), codegen


@intrinsic
def _highest_bit(typingctx, x):
    """Index of the highest set bit of a non-zero ``uint64`` as ``int64`` (63 − ctlz)."""
    if x != types.uint64:
        return None

    def codegen(context, builder, signature, args):
        lz = builder.ctlz(args[0], ir.Constant(ir.IntType(1), 0))
        return builder.sub(ir.Constant(ir.IntType(64), 63), lz)

    return types.int64(types.uint64), codegen


def pack_columns(matrix: np.ndarray) -> np.ndarray:
    """Columns of M (n_out × n_s·n_in, 0/1) packed as block words: ``uint64``
    (n_s·n_in, W); row c is column c of M."""
    return pack(np.ascontiguousarray(matrix.T))


def row_words(matrix: np.ndarray, n_in: int) -> np.ndarray:
    """Rows of the first n_in columns of M (the x_t part) as n_in-bit integers:
    ``uint64`` (n_out,), bit k = M[i, k]."""
    weights = np.left_shift(np.uint64(1), np.arange(n_in, dtype=np.uint64))
    return (matrix[:, :n_in].astype(np.uint64) * weights).sum(axis=1, dtype=np.uint64)


@numba.njit(cache=True)
def _xor_inputs(x, cols, first, out):
    """XOR into ``out`` (W words) the columns ``first + k`` of ``cols`` for each set
    bit k of ``x``."""
    while x:
        c = first + _lowest_bit(x)
        for w in range(out.size):
            out[w] ^= cols[c, w]
        x &= x - _ONE


@numba.njit(cache=True)
def _block_output(inputs, p, t, start, cols, n_in, n_s, out):
    """Decoded words of block ``t`` of plane ``p`` from ``inputs`` (planes, B), inputs
    before ``start`` (the segment start) being zero."""
    out[:] = 0
    for j in range(n_s):
        if t - j < start:
            break
        _xor_inputs(inputs[p, t - j], cols, j * n_in, out)


@numba.njit(cache=True)
def _segment_residual(inputs, residual, data, care, cols, p, start, end, n_in, n_s):
    """The wrong care bits of blocks ``start`` … ``end`` − 1 of plane ``p`` (a segment)
    under the chosen ``inputs``, into ``residual``."""
    y = np.empty(care.shape[1], dtype=np.uint64)
    for t in range(start, end):
        _block_output(inputs, p, t, start, cols, n_in, n_s, y)
        for w in range(y.size):
            residual[p, t, w] = care[t, w] & (y[w] ^ data[p, t, w])


@numba.njit(cache=True)
def _mismatches(care, data, y):
    """Care bits where ``y`` differs from ``data`` (all W-word rows)."""
    count = 0
    for w in range(care.size):
        count += _popcount(care[w] & (y[w] ^ data[w]))
    return count


@numba.njit(cache=True)
def _eliminate_care(data, care, rows, n_in, basis, rhs, stop_at_conflict):
    """Row-reduce the care rows of one block in scan order.

    ``basis[h]`` holds the kept row whose highest set bit is h (0 = none), ``rhs[h]``
    its data bit. A row that reduces to zero with data bit 1 contradicts the kept rows:
    with ``stop_at_conflict`` the search stops there, otherwise the row is skipped.
    Returns (x, conflicts): x solves the kept rows with every free variable 0.
    """
    basis[:] = 0
    conflicts = 0
    for w in range(care.size):
        word = care[w]
        while word:
            k = _lowest_bit(word)
            word &= word - _ONE
            r = rows[w * 64 + k]
            b = (data[w] >> np.uint64(k)) & _ONE
            while r:
                h = _highest_bit(r)
                if basis[h] == 0:
                    basis[h] = r
                    rhs[h] = b
                    break
                r ^= basis[h]
                b ^= rhs[h]
            if r == 0 and b:
                conflicts += 1
                if stop_at_conflict:
                    return np.uint64(0), conflicts
    x = np.uint64(0)
    for h in range(n_in):
        if basis[h]:
            bit = rhs[h] ^ np.uint64(_popcount(basis[h] & x) & 1)
            x |= bit << np.uint64(h)
    return x, conflicts


@numba.njit(cache=True)
def _fewest_mismatches(data, care, cols, n_in, y):
    """The x with the fewest mismatched care bits, by a Gray-code walk over all
    2^n_in inputs (first minimum in walk order); stops early at 1 mismatch, the
    minimum of an inconsistent block."""
    y[:] = 0
    best = _mismatches(care, data, y)
    best_x = np.uint64(0)
    x = np.uint64(0)
    for i in range(1, 1 << n_in):
        k = _lowest_bit(np.uint64(i))
        x ^= _ONE << np.uint64(k)
        for w in range(y.size):
            y[w] ^= cols[k, w]
        count = _mismatches(care, data, y)
        if count < best:
            best = count
            best_x = x
            if best <= 1:
                break
    return best_x


@numba.njit(cache=True)
def _descend(x, data, care, cols, n_in, y, trial):
    """Steepest descent from ``x``: apply the single-bit flip that lowers the
    mismatch count most, until none does."""
    y[:] = 0
    _xor_inputs(x, cols, 0, y)
    count = _mismatches(care, data, y)
    while count:
        best, best_k = count, -1
        for k in range(n_in):
            for w in range(y.size):
                trial[w] = y[w] ^ cols[k, w]
            c = _mismatches(care, data, trial)
            if c < best:
                best, best_k = c, k
        if best_k < 0:
            break
        x ^= _ONE << np.uint64(best_k)
        for w in range(y.size):
            y[w] ^= cols[best_k, w]
        count = best
    return x


@numba.njit(cache=True, parallel=True)
def _encode_single(data, care, cols, rows, n_in, segment):
    planes, blocks, words = data.shape
    n_seg = (blocks + segment - 1) // segment
    inputs = np.zeros((planes, blocks), dtype=np.uint64)
    residual = np.zeros((planes, blocks, words), dtype=np.uint64)
    exhaustive = n_in <= ENUM_MAX_N_IN
    for task in prange(planes * n_seg):
        p = task // n_seg
        start = (task % n_seg) * segment
        end = min(start + segment, blocks)
        basis = np.zeros(n_in, dtype=np.uint64)
        rhs = np.zeros(n_in, dtype=np.uint64)
        y = np.zeros(words, dtype=np.uint64)
        trial = np.zeros(words, dtype=np.uint64)
        d = np.empty(words, dtype=np.uint64)
        c = np.empty(words, dtype=np.uint64)
        for t in range(start, end):
            for w in range(words):
                d[w] = data[p, t, w]
                c[w] = care[t, w]
            x, conflicts = _eliminate_care(d, c, rows, n_in, basis, rhs, exhaustive)
            if conflicts and exhaustive:
                x = _fewest_mismatches(d, c, cols, n_in, y)
            elif conflicts:
                x = _descend(x, d, c, cols, n_in, y, trial)
            inputs[p, t] = x
            _block_output(inputs, p, t, start, cols, n_in, 1, y)
            for w in range(words):
                residual[p, t, w] = c[w] & (y[w] ^ d[w])
    return inputs, residual


@numba.njit(cache=True)
def _step_direct(prev, new, arg, d, c, tables, current, base, n_in, n_s):
    """One trellis step by visiting every (previous state, input) transition:
    2^(n_s·n_in) popcounts over the care words. ``base`` (states, W) receives the care
    bits left to match by each previous state, ``current`` (2^n_in, W) those of M_0·x."""
    n_x = 1 << n_in
    top = (n_s - 2) * n_in
    words = c.size
    for x in range(n_x):
        for w in range(words):
            current[x, w] = tables[0, x, w] & c[w]
    for s in range(prev.size):
        for w in range(words):
            base[s, w] = d[w]
        rest = s
        for j in range(1, n_s):
            xj = rest & (n_x - 1)
            rest >>= n_in
            for w in range(words):
                base[s, w] ^= tables[j, xj, w]
        for w in range(words):
            base[s, w] &= c[w]
    for sigma in range(1 << top):
        for x in range(n_x):
            best, who = _BIG, 0
            for z in range(n_x):
                s = sigma | (z << top)
                cost = prev[s]
                for w in range(words):
                    cost += _popcount(base[s, w] ^ current[x, w])
                if cost < best:
                    best, who = cost, z
            new[(sigma << n_in) | x] = best
            arg[(sigma << n_in) | x] = who


@numba.njit(cache=True)
def _care_tables(cols, care, n_in, n_s, positions, out):
    """Compress the block to its k care bits: ``out[j, x]`` = the care bits of M_j·x
    as a k-bit integer (care bit q = the q-th care position in scan order), for every
    slot j and input x. Returns k."""
    k = 0
    for w in range(care.size):
        word = care[w]
        while word:
            positions[k] = w * 64 + _lowest_bit(word)
            word &= word - _ONE
            k += 1
    for j in range(n_s):
        out[j, 0] = 0
        for b in range(n_in):
            col = j * n_in + b
            packed = 0
            for q in range(k):
                pos = positions[q]
                packed |= np.int64((cols[col, pos >> 6] >> np.uint64(pos & 63)) & _ONE) << q
            half = 1 << b
            for x in range(half):
                out[j, half + x] = out[j, x] ^ packed
    return k


@numba.njit(cache=True)
def _compress_word(data, positions, k):
    """The bits of ``data`` (W words) at the first ``k`` ``positions`` as an integer."""
    packed = 0
    for q in range(k):
        pos = positions[q]
        packed |= np.int64((data[pos >> 6] >> np.uint64(pos & 63)) & _ONE) << q
    return packed


@numba.njit(cache=True)
def _step_transform(prev, new, arg, d_care, ctab, n_in, n_s, k, best, who):
    """One trellis step through a Hamming distance transform on the k care bits.

    For each shared part σ = (x_{t−1} … x_{t−n_s+2}) of old and new state, the
    previous costs are scattered by the care bits u their dropped input z leaves to
    be matched (min per u, remembering z), then D(v) = min_u cost(u) + popcount(u ^ v)
    is computed one bit dimension at a time; the new state (x_t, σ) costs D at the
    care bits of M_0·x_t. Work 2^((n_s−2)·n_in)·(2^(n_in+1) + (k + 1)·2^k)."""
    n_x = 1 << n_in
    n_v = 1 << k
    top = (n_s - 2) * n_in
    for sigma in range(1 << top):
        offset = d_care
        rest = sigma
        for j in range(1, n_s - 1):
            offset ^= ctab[j, rest & (n_x - 1)]
            rest >>= n_in
        best[:n_v] = _BIG
        for z in range(n_x):
            s = sigma | (z << top)
            cost = prev[s]
            u = offset ^ ctab[n_s - 1, z]
            if cost < best[u]:
                best[u] = cost
                who[u] = z
        for b in range(k):
            bit = 1 << b
            for v in range(n_v):
                if v & bit:
                    continue
                w = v | bit
                if best[w] + 1 < best[v]:
                    best[v] = best[w] + 1
                    who[v] = who[w]
                elif best[v] + 1 < best[w]:
                    best[w] = best[v] + 1
                    who[w] = who[v]
        shifted = sigma << n_in
        for x in range(n_x):
            v = ctab[0, x]
            new[shifted | x] = best[v]
            arg[shifted | x] = who[v]


@numba.njit(cache=True, parallel=True)
def _encode_trellis(data, care, cols, tables, n_in, n_s, segment, max_care, arg_proto):
    planes, blocks, words = data.shape
    n_seg = (blocks + segment - 1) // segment
    n_x = 1 << n_in
    n_states = 1 << ((n_s - 1) * n_in)
    top = (n_s - 2) * n_in
    inputs = np.zeros((planes, blocks), dtype=np.uint64)
    residual = np.zeros((planes, blocks, words), dtype=np.uint64)
    n_v = 1 << max(max_care, 0)
    for task in prange(planes * n_seg):
        p = task // n_seg
        start = (task % n_seg) * segment
        end = min(start + segment, blocks)
        arg = np.empty((end - start, n_states), dtype=arg_proto.dtype)
        prev = np.full(n_states, _BIG, dtype=np.int64)
        prev[0] = 0
        new = np.empty(n_states, dtype=np.int64)
        current = np.empty((n_x, words), dtype=np.uint64)
        base = np.empty((n_states, words), dtype=np.uint64)
        positions = np.empty(words * 64, dtype=np.int64)
        ctab = np.empty((n_s, n_x), dtype=np.int64)
        best = np.empty(n_v, dtype=np.int64)
        who = np.empty(n_v, dtype=np.int64)
        for t in range(start, end):
            d, c = data[p, t], care[t]
            k = 0
            for w in range(words):
                k += _popcount(c[w])
            if k <= max_care:
                _care_tables(cols, c, n_in, n_s, positions, ctab)
                d_care = _compress_word(d, positions, k)
                _step_transform(prev, new, arg[t - start], d_care, ctab, n_in, n_s, k, best, who)
            else:
                _step_direct(prev, new, arg[t - start], d, c, tables, current, base, n_in, n_s)
            prev, new = new, prev
        s = np.argmin(prev)
        for t in range(end - 1, start - 1, -1):
            inputs[p, t] = s & (n_x - 1)
            s = (s >> n_in) | (np.int64(arg[t - start, s]) << top)
        _segment_residual(inputs, residual, data, care, cols, p, start, end, n_in, n_s)
    return inputs, residual


@numba.njit(cache=True, parallel=True)
def _encode_eliminate(data, care, cols, rows, n_in, n_s, segment):
    """The n_s ≥ 2 elimination search (module docstring); returns (inputs, residual)
    like ``_encode_trellis``. ``rows``: (n_out,) the rows of M in window order (bit
    (n_s − 1 − j)·n_in + k = M[i, j·n_in + k], so bit 0 is the oldest input's bit 0)."""
    planes, blocks, words = data.shape
    n_seg = (blocks + segment - 1) // segment
    inputs = np.zeros((planes, blocks), dtype=np.uint64)
    residual = np.zeros((planes, blocks, words), dtype=np.uint64)
    for task in prange(planes * n_seg):
        p = task // n_seg
        start = (task % n_seg) * segment
        end = min(start + segment, blocks)
        n_vars = (end - start) * n_in
        pivot = np.zeros(n_vars, dtype=np.uint64)
        rhs = np.zeros(n_vars, dtype=np.uint64)
        for t in range(start, end):
            first = (t - start - n_s + 1) * n_in
            clip = np.uint64(max(0, -first))
            for w in range(words):
                word = care[t, w]
                while word:
                    k = _lowest_bit(word)
                    word &= word - _ONE
                    r = (rows[w * 64 + k] >> clip) << clip
                    b = (data[p, t, w] >> np.uint64(k)) & _ONE
                    while r:
                        q = _lowest_bit(r)
                        v = first + q
                        if pivot[v] == 0:
                            pivot[v] = r >> np.uint64(q)
                            rhs[v] = b
                            break
                        r ^= pivot[v] << np.uint64(q)
                        b ^= rhs[v]
        solved = np.uint64(0)
        for v in range(n_vars - 1, -1, -1):
            bit = np.uint64(0)
            if pivot[v]:
                bit = rhs[v] ^ np.uint64(_popcount((pivot[v] >> _ONE) & solved) & 1)
            solved = (solved << _ONE) | bit
            inputs[p, start + v // n_in] |= bit << np.uint64(v % n_in)
        _segment_residual(inputs, residual, data, care, cols, p, start, end, n_in, n_s)
    return inputs, residual


def window_rows(matrix: np.ndarray, n_in: int) -> np.ndarray:
    """Rows of M (n_out × n_s·n_in) as ``uint64`` in window order: bit
    (n_s − 1 − j)·n_in + k is M[i, j·n_in + k] (x_{t−j} bit k), so the oldest input's
    bits come first."""
    n_s = matrix.shape[1] // n_in
    order = np.concatenate([np.arange(j * n_in, (j + 1) * n_in) for j in reversed(range(n_s))])
    weights = np.left_shift(np.uint64(1), np.arange(n_s * n_in, dtype=np.uint64))
    return (matrix[:, order].astype(np.uint64) * weights).sum(axis=1, dtype=np.uint64)


@numba.njit(cache=True, parallel=True)
def _decode(inputs, cols, n_in, n_s, segment, words):
    planes, blocks = inputs.shape
    n_seg = (blocks + segment - 1) // segment
    out = np.zeros((planes, blocks, words), dtype=np.uint64)
    for task in prange(planes * n_seg):
        p = task // n_seg
        start = (task % n_seg) * segment
        y = np.empty(words, dtype=np.uint64)
        for t in range(start, min(start + segment, blocks)):
            _block_output(inputs, p, t, start, cols, n_in, n_s, y)
            for w in range(words):
                out[p, t, w] = y[w]
    return out


def input_tables(cols: np.ndarray, n_in: int, n_s: int) -> np.ndarray:
    """M_j·x for every slot j < n_s and input x < 2^n_in: ``uint64`` (n_s, 2^n_in, W).

    Built by doubling: the table of bits 0..k is the table of bits 0..k−1 followed by
    the same entries XOR column k.
    """
    words = cols.shape[1]
    tables = np.zeros((n_s, 1 << n_in, words), dtype=np.uint64)
    for j in range(n_s):
        for k in range(n_in):
            half = 1 << k
            tables[j, half : 2 * half] = tables[j, :half] ^ cols[j * n_in + k]
    return tables


def traceback_bytes(n_in: int, n_s: int, segment_blocks: int) -> int:
    """Bytes of the n_s ≥ 2 search's traceback for one segment of ``segment_blocks``
    blocks: one dropped input (1, 2 or 4 bytes) per state and block."""
    return segment_blocks * (1 << ((n_s - 1) * n_in)) * _arg_dtype(n_in).itemsize


def _arg_dtype(n_in: int) -> np.dtype:
    return np.dtype(np.uint8 if n_in <= 8 else np.uint16 if n_in <= 16 else np.uint32)


def transform_max_care(n_in: int) -> int:
    """Largest care-bit count k for which an n_s ≥ 2 step uses the distance transform:
    the largest k ≤ :data:`TRANSFORM_MAX_CARE` whose transform work
    2^(n_in+1) + (k + 1)·2^k per shared part is below the direct step's 2^(2·n_in)
    (−1 when none is)."""
    best = -1
    for k in range(TRANSFORM_MAX_CARE + 1):
        if (1 << (n_in + 1)) + (k + 1) * (1 << k) < 1 << (2 * n_in):
            best = k
    return best


def encode_blocks(
    data: np.ndarray,
    care: np.ndarray,
    matrix: np.ndarray,
    n_in: int,
    n_s: int,
    segment: int,
    max_care: int | None = None,
    exact: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Choose the inputs of every block of every plane.

    Args:
        data: ``uint64`` (planes, B, W), the packed bit-planes.
        care: ``uint64`` (B, W), the packed care mask (shared by the planes).
        matrix: M, 0/1 of shape (n_out, n_s·n_in).
        n_in, n_s: input bits per block and shift-register depth (n_in ≤ 64; for
            n_s ≥ 2, (n_s − 1)·n_in ≤ 20).
        segment: blocks per segment (≥ 1).
        max_care: n_s ≥ 2 exact search only: blocks with at most this many care bits
            take the distance-transform step, the others the direct step (both
            exact); ``None`` = :func:`transform_max_care`, −1 = always direct. At
            most :data:`TRANSFORM_MAX_CARE`.
        exact: n_s ≥ 2 only: the exact trellis search (True) or the elimination
            search (False).

    Returns:
        ``(inputs, residual)``: ``uint64`` (planes, B) inputs and ``uint64``
        (planes, B, W) words whose set bits are the mismatched care bits (patches).
    """
    cols = pack_columns(matrix)
    if n_s == 1:
        return _encode_single(data, care, cols, row_words(matrix, n_in), n_in, segment)
    if not exact:
        return _encode_eliminate(data, care, cols, window_rows(matrix, n_in), n_in, n_s, segment)
    if max_care is None:
        max_care = transform_max_care(n_in)
    if max_care > TRANSFORM_MAX_CARE:
        raise ValueError(f"max_care must be <= {TRANSFORM_MAX_CARE}, got {max_care}")
    max_care = min(max_care, matrix.shape[0])
    tables = input_tables(cols, n_in, n_s)
    proto = np.empty(0, dtype=_arg_dtype(n_in))
    return _encode_trellis(data, care, cols, tables, n_in, n_s, segment, max_care, proto)


def decode_blocks(
    inputs: np.ndarray, matrix: np.ndarray, n_in: int, n_s: int, segment: int
) -> np.ndarray:
    """Decoded block words ``uint64`` (planes, B, W) of ``inputs`` (planes, B) under M
    (``matrix``, n_out × n_s·n_in), the register cleared at each segment start."""
    cols = pack_columns(matrix)
    return _decode(
        np.ascontiguousarray(inputs, dtype=np.uint64), cols, n_in, n_s, segment, cols.shape[1]
    )
