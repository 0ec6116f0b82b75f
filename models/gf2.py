"""Bit-packed linear algebra over GF(2).

Public functions take ordinary 0/1 numpy arrays (any integer or bool dtype) and
return ``uint8`` 0/1 arrays; internally rows are packed into ``uint64`` words and
reduced by numba kernels that XOR whole word rows.

Packing is little-endian: bit ``j`` of a row lives in word ``j // 64`` at bit
position ``j % 64``; the unused high bits of the last word are zero.
"""

from __future__ import annotations

import dataclasses

import numba
import numpy as np

__all__ = [
    "GF2Solution",
    "is_consistent",
    "matmul",
    "matvec",
    "nullspace",
    "pack",
    "rank",
    "solve",
    "unpack",
]

WORD_BITS = 64


@dataclasses.dataclass(frozen=True, eq=False)
class GF2Solution:
    """Solution set of a consistent system ``a @ x = b`` over GF(2), ``a`` of shape (m, n).

    Attributes:
        x: ``uint8`` 0/1, shape (n,); the particular solution with every free variable 0.
        pivots: ``int64``, shape (rank,); pivot column indices, increasing.
        free: ``int64``, shape (n - rank,); free-variable column indices, increasing.
        nullspace: ``uint8`` 0/1, shape (n - rank, n); row ``i`` sets free variable
            ``free[i]`` to 1 and the other free variables to 0. Every solution is ``x``
            XOR any XOR-combination of these rows.

    The arrays are read-only.
    """

    x: np.ndarray
    pivots: np.ndarray
    free: np.ndarray
    nullspace: np.ndarray

    @property
    def rank(self) -> int:
        """Rank of ``a`` (the number of pivot columns)."""
        return len(self.pivots)


def _nwords(ncols: int) -> int:
    return -(-ncols // WORD_BITS)


def _as_bits(name: str, arr: object, ndims: tuple[int, ...]) -> np.ndarray:
    """Validate a 0/1 array argument and return it as C-contiguous ``uint8``."""
    a = np.asarray(arr)
    if a.dtype != np.bool_ and not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{name} must have an integer or bool dtype, got {a.dtype}")
    if a.ndim not in ndims:
        allowed = " or ".join(f"{d}-D" for d in ndims)
        raise ValueError(f"{name} must be a {allowed} array, got shape {a.shape}")
    if a.dtype != np.bool_ and a.size and (a.min() < 0 or a.max() > 1):
        bad = a[(a < 0) | (a > 1)].flat[0]
        raise ValueError(f"{name} must contain only 0 and 1, found {bad}")
    return np.ascontiguousarray(a, dtype=np.uint8)


def _pack_rows(bits: np.ndarray) -> np.ndarray:
    """Pack validated ``uint8`` bits of shape (rows, cols) into (rows, nwords) ``uint64``."""
    rows, cols = bits.shape
    padded = np.zeros((rows, _nwords(cols) * WORD_BITS), dtype=np.uint8)
    padded[:, :cols] = bits
    packed = np.packbits(padded, axis=1, bitorder="little")
    return packed.view("<u8").astype(np.uint64)


def pack(bits: np.ndarray) -> np.ndarray:
    """Pack 0/1 bits into little-endian ``uint64`` words.

    Args:
        bits: shape (rows, cols) or (cols,), integer or bool dtype, values 0/1.

    Returns:
        ``uint64`` array of shape (rows, ceil(cols / 64)) or (ceil(cols / 64),).

    Raises:
        ValueError: if ``bits`` is not 1-D or 2-D, not integer/bool, or holds other values.
    """
    b = _as_bits("bits", bits, (1, 2))
    if b.ndim == 1:
        return _pack_rows(b[np.newaxis, :])[0]
    return _pack_rows(b)


def unpack(words: np.ndarray, ncols: int) -> np.ndarray:
    """Unpack little-endian ``uint64`` words into 0/1 bits; the inverse of :func:`pack`.

    Args:
        words: ``uint64`` array of shape (rows, nwords) or (nwords,),
            with ``nwords == ceil(ncols / 64)``.
        ncols: number of bits per row to keep; padding bits beyond it are ignored.

    Returns:
        ``uint8`` 0/1 array of shape (rows, ncols) or (ncols,).
    """
    w = np.asarray(words)
    if w.dtype != np.uint64:
        raise ValueError(f"words must have dtype uint64, got {w.dtype}")
    if w.ndim not in (1, 2):
        raise ValueError(f"words must be a 1-D or 2-D array, got shape {w.shape}")
    if isinstance(ncols, bool) or not isinstance(ncols, int | np.integer) or ncols < 0:
        raise ValueError(f"ncols must be a non-negative integer, got {ncols!r}")
    if w.shape[-1] != _nwords(ncols):
        raise ValueError(
            f"words has {w.shape[-1]} words per row, but ncols={ncols} needs {_nwords(ncols)}"
        )
    as_bytes = np.ascontiguousarray(w, dtype="<u8").view(np.uint8)
    return np.unpackbits(as_bytes, axis=-1, count=int(ncols), bitorder="little")


@numba.njit(cache=True)
def _eliminate(words, ncols, full):
    """Row-reduce packed ``words`` (m, nwords) in place over columns ``0 .. ncols-1``.

    With ``full`` the result is reduced row echelon form (Gauss-Jordan); otherwise only
    rows below each pivot are cleared. Returns the pivot columns (int64, length rank);
    pivot ``k`` sits in row ``k``.
    """
    m, nw = words.shape
    pivots = np.empty(min(m, ncols), dtype=np.int64)
    r = 0
    for c in range(ncols):
        if r == m:
            break
        w = c // 64
        mask = np.uint64(1) << np.uint64(c % 64)
        p = r
        while p < m and words[p, w] & mask == 0:
            p += 1
        if p == m:
            continue
        if p != r:
            for k in range(w, nw):
                tmp = words[p, k]
                words[p, k] = words[r, k]
                words[r, k] = tmp
        start = 0 if full else r + 1
        for i in range(start, m):
            if i != r and words[i, w] & mask != 0:
                for k in range(w, nw):
                    words[i, k] ^= words[r, k]
        pivots[r] = c
        r += 1
    return pivots[:r]


@numba.njit(cache=True)
def _parity(word):
    for shift in (32, 16, 8, 4, 2, 1):
        word ^= word >> np.uint64(shift)
    return np.uint8(word & np.uint64(1))


@numba.njit(cache=True)
def _matvec_packed(a, x):
    """Parity of ``a[i] & x`` for each packed row of ``a`` (m, nwords); returns (m,) uint8."""
    m, nw = a.shape
    out = np.empty(m, dtype=np.uint8)
    for i in range(m):
        acc = np.uint64(0)
        for k in range(nw):
            acc ^= a[i, k] & x[k]
        out[i] = _parity(acc)
    return out


@numba.njit(cache=True)
def _matmul_packed(a, b, inner):
    """XOR into row ``i`` the packed rows ``b[j]`` for every set bit ``j < inner`` of ``a[i]``."""
    m = a.shape[0]
    nw = b.shape[1]
    out = np.zeros((m, nw), dtype=np.uint64)
    for i in range(m):
        for j in range(inner):
            if (a[i, j // 64] >> np.uint64(j % 64)) & np.uint64(1):
                for k in range(nw):
                    out[i, k] ^= b[j, k]
    return out


def _check_rhs(b: np.ndarray, a: np.ndarray) -> None:
    if b.shape != (a.shape[0],):
        raise ValueError(
            f"b has shape {b.shape}, expected ({a.shape[0]},) to match a with shape {a.shape}"
        )


def _column(words: np.ndarray, col: int) -> np.ndarray:
    """Bit ``col`` of every packed row of ``words`` (rows, nwords), as ``uint8`` (rows,)."""
    word = words[:, col // WORD_BITS] >> np.uint64(col % WORD_BITS)
    return (word & np.uint64(1)).astype(np.uint8)


def _augmented(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return _pack_rows(np.hstack([a, b[:, np.newaxis]]))


def rank(a: np.ndarray) -> int:
    """Rank over GF(2) of ``a``, shape (m, n), 0/1 integer or bool."""
    bits = _as_bits("a", a, (2,))
    return len(_eliminate(_pack_rows(bits), bits.shape[1], False))


def is_consistent(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether ``a @ x = b`` has a solution over GF(2); ``a`` (m, n), ``b`` (m,), 0/1."""
    abits = _as_bits("a", a, (2,))
    bbits = _as_bits("b", b, (1,))
    _check_rhs(bbits, abits)
    n = abits.shape[1]
    words = _augmented(abits, bbits)
    r = len(_eliminate(words, n, False))
    return not _column(words[r:], n).any()


def _free_columns(pivots: np.ndarray, n: int) -> np.ndarray:
    return np.setdiff1d(np.arange(n, dtype=np.int64), pivots)


def _reduced_rows(words: np.ndarray, r: int) -> np.ndarray:
    """The first ``r`` packed rows as ``uint8`` bits, including word padding."""
    return unpack(words[:r], words.shape[1] * WORD_BITS)


def _nullspace_basis(rows: np.ndarray, pivots: np.ndarray, free: np.ndarray) -> np.ndarray:
    """Nullspace basis from the RREF pivot ``rows`` (rank, >= n); ``uint8`` (n - rank, n)."""
    n = len(pivots) + len(free)
    basis = np.zeros((len(free), n), dtype=np.uint8)
    basis[np.arange(len(free)), free] = 1
    basis[:, pivots] = rows[:, free].T
    return basis


def _readonly(arr: np.ndarray) -> np.ndarray:
    arr.flags.writeable = False
    return arr


def solve(a: np.ndarray, b: np.ndarray) -> GF2Solution | None:
    """Solve ``a @ x = b`` over GF(2).

    Args:
        a: shape (m, n), 0/1 integer or bool.
        b: shape (m,), 0/1 integer or bool.

    Returns:
        ``None`` if the system is inconsistent, else a :class:`GF2Solution`.
    """
    abits = _as_bits("a", a, (2,))
    bbits = _as_bits("b", b, (1,))
    _check_rhs(bbits, abits)
    n = abits.shape[1]
    words = _augmented(abits, bbits)
    pivots = _eliminate(words, n, True)
    r = len(pivots)
    if _column(words[r:], n).any():
        return None
    free = _free_columns(pivots, n)
    x = np.zeros(n, dtype=np.uint8)
    x[pivots] = _column(words[:r], n)
    return GF2Solution(
        x=_readonly(x),
        pivots=_readonly(pivots),
        free=_readonly(free),
        nullspace=_readonly(_nullspace_basis(_reduced_rows(words, r), pivots, free)),
    )


def nullspace(a: np.ndarray) -> np.ndarray:
    """Nullspace basis of ``a`` (m, n) over GF(2): ``uint8`` 0/1 of shape (n - rank, n).

    Row ``i`` has free variable ``free[i]`` set to 1 and the other free variables 0,
    where ``free`` are the non-pivot columns of the reduced row echelon form.
    """
    bits = _as_bits("a", a, (2,))
    n = bits.shape[1]
    words = _pack_rows(bits)
    pivots = _eliminate(words, n, True)
    return _nullspace_basis(_reduced_rows(words, len(pivots)), pivots, _free_columns(pivots, n))


def matvec(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Product ``a @ x`` over GF(2); ``a`` (m, n), ``x`` (n,), returns ``uint8`` (m,)."""
    abits = _as_bits("a", a, (2,))
    xbits = _as_bits("x", x, (1,))
    if xbits.shape != (abits.shape[1],):
        raise ValueError(
            f"x has shape {xbits.shape}, expected ({abits.shape[1]},) "
            f"to match a with shape {abits.shape}"
        )
    return _matvec_packed(_pack_rows(abits), _pack_rows(xbits[np.newaxis, :])[0])


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Product ``a @ b`` over GF(2); ``a`` (m, k), ``b`` (k, n), returns ``uint8`` (m, n)."""
    abits = _as_bits("a", a, (2,))
    bbits = _as_bits("b", b, (2,))
    if abits.shape[1] != bbits.shape[0]:
        raise ValueError(
            f"a has shape {abits.shape} and b has shape {bbits.shape}; "
            f"a.shape[1] must equal b.shape[0]"
        )
    n = bbits.shape[1]
    out = _matmul_packed(_pack_rows(abits), _pack_rows(bbits), abits.shape[1])
    return unpack(out, n)
