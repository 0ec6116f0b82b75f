"""Tile-wise binary factorization of an importance-score matrix (low-rank binary indexing).

The matrix (m, n) is cut into ``tile_rows``×``tile_cols`` tiles in row-major order; tiles
at the bottom and right edges are clipped to the matrix (a'×b' with a' ≤ tile_rows,
b' ≤ tile_cols). Each tile's mask is ``Ip·Iz`` (Ip: a'×rank, Iz: rank×b', binary) in one
of two semirings: ``bool`` (OR of ANDs) or ``gf2`` (XOR of ANDs).

Factors are held as bit codes: bit r of a row code is ``Ip[i, r]``, bit r of a column
code is ``Iz[r, j]``, so mask[i, j] = (row_code & col_code) ≠ 0 in ``bool`` and
popcount(row_code & col_code) odd in ``gf2``. For the whole matrix:
``ip[tj, i]`` is the row code of matrix row i in tile column tj (shape (tiles across, m))
and ``iz[ti, j]`` the column code of matrix column j in tile row ti (shape
(tiles down, n)).

The objective of a mask is Σ mask·score (units of the scores). Each tile is
factorized on its own (numba, ``prange`` over tiles):

1. initialisation [ours] from a real low-rank factorization of the tile's importance
   P = max(score, 0) (the scores of the weights above the threshold), thresholded into
   binary factors. A real singular pair (u, v) becomes column r of Ip and row r of Iz:
   Ip[:, r] = (±u > τ), Iz[r, :] = (±v > τ'), the sign and the levels τ, τ' chosen so
   the rectangle Ip[:, r]×Iz[r, :] has the largest *marginal* score sum given the
   factors 0..r−1 (a search over the prefixes of the rows sorted by ±u and the columns
   sorted by ±v; the marginal score of an entry already covered is 0 in ``bool`` and
   −score in ``gf2``, where covering it again uncovers it); a pair whose best rectangle
   gains ≤ 0 is left empty (its bits stay 0). Zero thresholds fail at high sparsity:
   {u > 0}×{v > 0} covers about a quarter of the tile, mostly negative scores.
   ``init="svd"``: the k leading singular pairs of P (a truncated SVD, rank k, computed
   by :func:`top_singular`).
   ``init="deflation"``: pair r is the leading singular pair of the positive part of the
   marginal scores left after factors 0..r−1 (a greedy, deflated SVD; recovers
   separate blocks that ``svd`` merges when their singular values are close).
   ``init="best"`` (default): both, each refined, the tile keeps the higher objective;
2. refinement: alternate exact updates — every row code of Ip becomes the best of its
   2^rank choices given Iz, then every column code of Iz the best of its 2^rank choices
   given Ip. A code changes only when another choice beats the current one by more than
   ``1e-12`` × Σ|score| of that row (so rounding cannot make it cycle); an iteration (row
   pass + column pass) that changes nothing ends the tile, as does ``max_iters``.

Every update step is exact, so the objective never decreases. The 2^rank values of a row
come from one transform of a histogram of the row's scores over the other factor's
codes (the rows of Iz read as one k-bit code per column): a subset-sum (zeta) transform
for ``bool``, a Walsh–Hadamard transform for ``gf2``; cost O(b + rank·2^rank) per row,
all rows of a tile transformed together (SIMD over rows).

The importance scores and the calibration of the kept fraction to a target sparsity
(:mod:`codesign.models.lbi_calibrate`) are this project's reconstruction [ours] of the
method of Lee, Kwon, Kim, Kapoor and Wei (2019), see REFERENCES §3.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from numba import njit, prange

SEMIRINGS = ("bool", "gf2")
INITS = {
    "svd": np.array([False]),
    "deflation": np.array([True]),
    "best": np.array([False, True]),
}
"""Initialisations by name: the ``deflate`` flags of the runs made per tile."""
MAX_ITERS = 50
"""Default cap on refinement iterations (row pass + column pass) per tile."""
SVD_SWEEPS = 24
"""Most subspace-iteration sweeps of the initialisation's truncated SVD."""
SVD_TOL = 1e-6
"""The subspace iteration stops early once no direction moves by more than this
(1 − |cos| between successive iterates)."""

UPDATE_CHUNK = 64
"""Codes updated together by one transform (the SIMD width of the updates)."""

_IMPROVE_RTOL = 1e-12


def tile_counts(shape: tuple[int, int], tile_rows: int, tile_cols: int) -> tuple[int, int]:
    """Tiles down and across an (m, n) matrix: (⌈m/tile_rows⌉, ⌈n/tile_cols⌉)."""
    return -(-shape[0] // tile_rows), -(-shape[1] // tile_cols)


def code_dtype(rank: int) -> np.dtype:
    """The smallest unsigned dtype holding a ``rank``-bit code."""
    for dtype in (np.uint8, np.uint16, np.uint32, np.uint64):
        if rank <= np.iinfo(dtype).bits:
            return np.dtype(dtype)
    raise ValueError(f"rank must be in 1..64, got {rank}")


# ---------------------------------------------------------------- numba kernels


@njit(cache=True)
def _parity(x: np.int64) -> np.int64:
    x ^= x >> 32
    x ^= x >> 16
    x ^= x >> 8
    x ^= x >> 4
    x ^= x >> 2
    x ^= x >> 1
    return x & 1


@njit(cache=True)
def _covered(p: np.int64, z: np.int64, gf2: bool) -> bool:
    if gf2:
        return _parity(p & z) == 1
    return (p & z) != 0


@njit(cache=True)
def tile_objective(scores: np.ndarray, rows: np.ndarray, cols: np.ndarray, gf2: bool) -> float:
    """Σ mask·score of one tile: ``scores`` (a, b) float64, ``rows`` (a,) and ``cols`` (b,)
    int64 codes."""
    total = 0.0
    for i in range(scores.shape[0]):
        for j in range(scores.shape[1]):
            if _covered(rows[i], cols[j], gf2):
                total += scores[i, j]
    return total


@njit(cache=True)
def _choice_values(h: np.ndarray, gf2: bool) -> None:
    """Transform ``h`` (2^k, w) in place, column by column (vectorised over the w codes
    being updated): from the histograms h[z, i] = Σ score of code i's entries whose
    other-factor code is z, to the subset sums F[x, i] = Σ_{z ⊆ x} h[z, i] (``bool``:
    value(c) = F[full] − F[full ^ c]) or the Walsh–Hadamard transform W[c, i]
    (``gf2``: value(c) = (W[0] − W[c]) / 2)."""
    size, width = h.shape
    step = 1
    while step < size:
        for base in range(0, size, 2 * step):
            for x in range(base, base + step):
                if gf2:
                    for i in range(width):
                        u = h[x, i]
                        v = h[x + step, i]
                        h[x, i] = u + v
                        h[x + step, i] = u - v
                else:
                    for i in range(width):
                        h[x + step, i] += h[x, i]
        step *= 2


@njit(cache=True)
def _code_value(h: np.ndarray, c: int, i: int, gf2: bool) -> float:
    """The value of code c for column i of a transformed ``h`` (see :func:`_choice_values`)."""
    if gf2:
        return 0.5 * (h[0, i] - h[c, i])
    full = h.shape[0] - 1
    return h[full, i] - h[full ^ c, i]


@njit(cache=True)
def update_codes(
    by_other: np.ndarray, other: np.ndarray, codes: np.ndarray, rank: int, gf2: bool
) -> tuple[bool, float]:
    """Exact update of the codes of one factor given the codes of the other.

    ``by_other`` (b, a) float64: entry [j, i] is the score of the tile entry at code i of
    the updated factor and code j of the fixed factor — the transposed tile scores
    (b×a) to update the row codes, the tile scores (a×b) to update the column codes;
    ``other`` (b,) int64 codes of the fixed factor; ``codes`` (a,) int64, updated in
    place: code i becomes the best of its 2^rank choices (the first best on exact ties)
    if that beats its current value by more than 1e-12·Σ_j|by_other[j, i]|. Returns
    (whether any code changed, tile objective after the update). Codes are processed in
    chunks of :data:`UPDATE_CHUNK` (memory: 2^rank × chunk floats).
    """
    count, width = by_other.shape
    size = 1 << rank
    full = size - 1
    h = np.empty((size, min(width, UPDATE_CHUNK)))
    best_value = np.empty(h.shape[1])
    best_code = np.empty(h.shape[1], np.int64)
    mass = np.empty(h.shape[1])
    changed = False
    objective = 0.0
    for start in range(0, width, h.shape[1]):
        stop = min(start + h.shape[1], width)
        h[:, :] = 0.0
        mass[:] = 0.0
        for j in range(count):
            z = other[j]
            for i in range(start, stop):
                h[z, i - start] += by_other[j, i]
                mass[i - start] += abs(by_other[j, i])
        _choice_values(h, gf2)
        best_value[:] = -np.inf
        for c in range(size):
            if gf2:
                for i in range(stop - start):
                    value = 0.5 * (h[0, i] - h[c, i])
                    if value > best_value[i]:
                        best_value[i] = value
                        best_code[i] = c
            else:
                for i in range(stop - start):
                    value = h[full, i] - h[full ^ c, i]
                    if value > best_value[i]:
                        best_value[i] = value
                        best_code[i] = c
        for i in range(stop - start):
            current = _code_value(h, codes[start + i], i, gf2)
            if best_value[i] > current + _IMPROVE_RTOL * mass[i]:
                codes[start + i] = best_code[i]
                changed = True
                objective += best_value[i]
            else:
                objective += current
    return changed, objective


@njit(cache=True)
def _dot(x: np.ndarray, y: np.ndarray) -> float:
    """Σ x[i]·y[i] of two contiguous 1-D float64 arrays, in index order."""
    acc = 0.0
    for i in range(x.size):
        acc += x[i] * y[i]
    return acc


@njit(cache=True)
def _orthonormalize(y: np.ndarray) -> None:
    """Modified Gram–Schmidt on the rows of ``y`` (k, d) in place; a row that vanishes
    (relative norm below 1e-12) becomes zero."""
    scale = 0.0
    for r in range(y.shape[0]):
        scale = max(scale, np.sqrt(_dot(y[r], y[r])))
    for r in range(y.shape[0]):
        for q in range(r):
            dot = _dot(y[r], y[q])
            for i in range(y.shape[1]):
                y[r, i] -= dot * y[q, i]
        norm = np.sqrt(_dot(y[r], y[r]))
        factor = 0.0 if norm <= 1e-12 * scale else 1.0 / norm
        for i in range(y.shape[1]):
            y[r, i] *= factor


@njit(cache=True)
def _gram(a: np.ndarray) -> np.ndarray:
    """a·aᵀ (m, m) of ``a`` (m, n), float64."""
    m, n = a.shape
    gram = np.zeros((m, m))
    for i in range(m):
        for j in range(i + 1):
            acc = 0.0
            for t in range(n):
                acc += a[i, t] * a[j, t]
            gram[i, j] = acc
            gram[j, i] = acc
    return gram


@njit(cache=True)
def top_singular(a: np.ndarray, k: int, sweeps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The k leading singular triplets of ``a`` (m, n), float64: (u (m, k), sigma (k,),
    v (n, k)), sigma descending.

    Orthogonal (subspace) iteration on the Gram matrix of the shorter side, at most
    ``sweeps`` multiplications from a fixed pseudo-random start (fewer once no direction
    moves by more than :data:`SVD_TOL`), modified Gram–Schmidt after each; plain loops
    over contiguous rows (no BLAS/LAPACK call, so it runs inside parallel tiles without
    oversubscribing threads). Directions past the rank of ``a`` come out as zero
    columns with sigma 0.
    """
    flip = a.shape[0] > a.shape[1]
    b = np.ascontiguousarray(a.T) if flip else a
    d, n = b.shape
    k = min(k, d)
    gram = _gram(b)
    x = np.empty((k, d))
    for r in range(k):
        for i in range(d):
            x[r, i] = ((i + 1) * (2 * r + 1) * 2654435761 % 4294967296) / 4294967296.0 - 0.5
    _orthonormalize(x)
    y = np.empty((k, d))
    for _ in range(sweeps):
        for r in range(k):
            for i in range(d):
                y[r, i] = _dot(gram[i], x[r])
        _orthonormalize(y)
        moved = 0.0
        for r in range(k):
            moved = max(moved, 1.0 - abs(_dot(x[r], y[r])))
        x, y = y, x
        if moved < SVD_TOL:
            break
    other = np.zeros((k, n))
    sigma = np.zeros(k)
    for r in range(k):
        for t in range(n):
            acc = 0.0
            for i in range(d):
                acc += b[i, t] * x[r, i]
            other[r, t] = acc
        sigma[r] = np.sqrt(_dot(other[r], other[r]))
        factor = 0.0 if sigma[r] == 0.0 else 1.0 / sigma[r]
        for t in range(n):
            other[r, t] *= factor
    left, right = np.ascontiguousarray(x.T), np.ascontiguousarray(other.T)
    return (right, sigma, left) if flip else (left, sigma, right)


@njit(cache=True)
def _positive_part(a: np.ndarray) -> np.ndarray:
    out = np.empty_like(a)
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            out[i, j] = max(a[i, j], 0.0)
    return out


@njit(cache=True)
def init_codes(
    scores: np.ndarray, rank: int, gf2: bool, deflate: bool, rows: np.ndarray, cols: np.ndarray
) -> None:
    """Initialisation of one tile (see the module docstring), written into ``rows`` (a,)
    and ``cols`` (b,) int64 codes. ``scores``: (a, b) float64, contiguous; ``deflate``:
    the ``deflation`` initialisation, else ``svd``."""
    rows[:] = 0
    cols[:] = 0
    pairs = 1 if deflate else rank
    u, sigma, v = top_singular(_positive_part(scores), pairs, SVD_SWEEPS)
    gain = scores.copy()
    acc = np.empty(scores.shape[1])
    for r in range(min(rank, scores.shape[0], scores.shape[1])):
        if deflate and r > 0:
            u, sigma, v = top_singular(_positive_part(gain), pairs, SVD_SWEEPS)
        pair = 0 if deflate else r
        if sigma[pair] <= 0.0:
            continue
        best = 0.0
        best_rows = np.empty(0, np.int64)
        best_cols = np.empty(0, np.int64)
        for side in range(2):
            sign = 1.0 - 2.0 * side
            order_rows = np.argsort(-sign * u[:, pair])
            order_cols = np.argsort(-sign * v[:, pair])
            acc[:] = 0.0
            for p in range(order_rows.size):
                line = 0.0
                for q in range(order_cols.size):
                    line += gain[order_rows[p], order_cols[q]]
                    acc[q] += line
                    if acc[q] > best:
                        best = acc[q]
                        best_rows = order_rows[: p + 1]
                        best_cols = order_cols[: q + 1]
        bit = np.int64(1) << r
        for i in best_rows:
            rows[i] |= bit
            for j in best_cols:
                gain[i, j] = -gain[i, j] if gf2 else 0.0
        for j in best_cols:
            cols[j] |= bit


@njit(cache=True)
def refine_tile(
    scores: np.ndarray,
    rank: int,
    gf2: bool,
    deflate: bool,
    max_iters: int,
    rows: np.ndarray,
    cols: np.ndarray,
    trace: np.ndarray,
) -> tuple[int, bool]:
    """Initialise and refine one tile: ``scores`` (a, b) float64 contiguous; the codes
    are written into ``rows`` (a,) and ``cols`` (b,) int64; ``trace`` (2·max_iters + 1,)
    receives the objective after the initialisation and after every half step (the
    final value repeated past the last step). Returns (iterations run, converged)."""
    transposed = np.ascontiguousarray(scores.T)
    init_codes(scores, rank, gf2, deflate, rows, cols)
    objective = tile_objective(scores, rows, cols, gf2)
    trace[0] = objective
    it = 0
    done = False
    while it < max_iters and not done:
        rows_changed, objective = update_codes(transposed, cols, rows, rank, gf2)
        trace[2 * it + 1] = objective
        cols_changed, objective = update_codes(scores, rows, cols, rank, gf2)
        trace[2 * it + 2] = objective
        it += 1
        done = not (rows_changed or cols_changed)
    trace[2 * it + 1 :] = objective
    return it, done


@njit(cache=True)
def _solve_tile(
    scores: np.ndarray,
    t: int,
    tile_rows: int,
    tile_cols: int,
    rank: int,
    gf2: bool,
    inits: np.ndarray,
    max_iters: int,
    ip: np.ndarray,
    iz: np.ndarray,
    trace: np.ndarray,
    iterations: np.ndarray,
    converged: np.ndarray,
) -> None:
    """Factorize tile ``t`` (row-major tile order) once per entry of ``inits`` and keep
    the run with the highest objective in the output arrays."""
    m, n = scores.shape
    across = -(-n // tile_cols)
    r0 = (t // across) * tile_rows
    c0 = (t % across) * tile_cols
    r1 = min(r0 + tile_rows, m)
    c1 = min(c0 + tile_cols, n)
    s = np.ascontiguousarray(scores[r0:r1, c0:c1])
    p = np.zeros(r1 - r0, np.int64)
    z = np.zeros(c1 - c0, np.int64)
    run = np.empty(trace.shape[1])
    for k in range(inits.size):
        it, done = refine_tile(s, rank, gf2, inits[k], max_iters, p, z, run)
        if k == 0 or run[-1] > trace[t, -1]:
            trace[t, :] = run
            iterations[t] = it
            converged[t] = done
            ip[t % across, r0:r1] = p
            iz[t // across, c0:c1] = z


@njit(cache=True, parallel=True)
def _factorize_tiles(
    scores: np.ndarray,
    tile_rows: int,
    tile_cols: int,
    rank: int,
    gf2: bool,
    inits: np.ndarray,
    max_iters: int,
    ip: np.ndarray,
    iz: np.ndarray,
    trace: np.ndarray,
    iterations: np.ndarray,
    converged: np.ndarray,
) -> None:
    for t in prange(trace.shape[0]):
        _solve_tile(
            scores,
            np.int64(t),
            tile_rows,
            tile_cols,
            rank,
            gf2,
            inits,
            max_iters,
            ip,
            iz,
            trace,
            iterations,
            converged,
        )


# ---------------------------------------------------------------- factorization


@dataclasses.dataclass(frozen=True, eq=False)
class Factorization:
    """The factors of every tile and how the refinement went.

    ``ip``: int64 (tiles across, m) row codes; ``iz``: int64 (tiles down, n) column codes
    (layout in the module docstring). ``trace``: float64 (2·iterations + 1,), the
    objective Σ mask·score summed over tiles after the initialisation and after every
    half step (row pass, column pass); a tile that has stopped keeps its final value.
    ``iterations``: the most refinement iterations any tile ran; ``converged``: every
    tile stopped because an iteration changed nothing (not at ``max_iters``).
    """

    shape: tuple[int, int]
    rank: int
    tile_rows: int
    tile_cols: int
    semiring: str
    ip: np.ndarray
    iz: np.ndarray
    trace: np.ndarray
    iterations: int
    converged: bool

    @property
    def objective(self) -> float:
        """Σ mask·score of the final mask."""
        return float(self.trace[-1])

    def mask(self) -> np.ndarray:
        """The (m, n) bool mask the factors decode to."""
        return mask_from_codes(self.ip, self.iz, self.tile_rows, self.tile_cols, self.semiring)


def check_semiring(semiring: str) -> bool:
    """True for ``gf2``, False for ``bool``; any other name is a ValueError."""
    if semiring not in SEMIRINGS:
        raise ValueError(f"semiring must be one of {', '.join(SEMIRINGS)}, got {semiring!r}")
    return semiring == "gf2"


def factorize(
    scores: np.ndarray,
    rank: int,
    tile_rows: int,
    tile_cols: int,
    semiring: str = "bool",
    max_iters: int = MAX_ITERS,
    init: str = "best",
) -> Factorization:
    """Factorize ``scores`` (m, n) tile by tile, maximising Σ mask·score.

    ``rank`` ≤ min(tile_rows, tile_cols) and the tiles ≤ the matrix are the caller's
    checks (see :mod:`codesign.models.lbi`); ``max_iters`` ≥ 1 caps the refinement iterations;
    ``init`` is one of :data:`INITS` (module docstring).
    """
    gf2 = check_semiring(semiring)
    if max_iters < 1:
        raise ValueError(f"max_iters must be >= 1, got {max_iters}")
    if init not in INITS:
        raise ValueError(f"init must be one of {', '.join(INITS)}, got {init!r}")
    s = np.ascontiguousarray(scores, dtype=np.float64)
    down, across = tile_counts(s.shape, tile_rows, tile_cols)
    ip = np.zeros((across, s.shape[0]), np.int64)
    iz = np.zeros((down, s.shape[1]), np.int64)
    trace = np.zeros((down * across, 2 * max_iters + 1))
    iterations = np.zeros(down * across, np.int64)
    converged = np.zeros(down * across, np.bool_)
    _factorize_tiles(
        s,
        tile_rows,
        tile_cols,
        rank,
        gf2,
        INITS[init],
        max_iters,
        ip,
        iz,
        trace,
        iterations,
        converged,
    )
    ran = int(iterations.max())
    return Factorization(
        shape=(int(s.shape[0]), int(s.shape[1])),
        rank=rank,
        tile_rows=tile_rows,
        tile_cols=tile_cols,
        semiring=semiring,
        ip=ip,
        iz=iz,
        trace=trace.sum(axis=0)[: 2 * ran + 1],
        iterations=ran,
        converged=bool(converged.all()),
    )


def mask_from_codes(
    ip: np.ndarray, iz: np.ndarray, tile_rows: int, tile_cols: int, semiring: str
) -> np.ndarray:
    """The (m, n) bool mask of row codes ``ip`` (tiles across, m) and column codes ``iz``
    (tiles down, n) in ``semiring``."""
    gf2 = check_semiring(semiring)
    m, n = ip.shape[1], iz.shape[1]
    rows = np.repeat(ip.T.astype(np.uint64), tile_cols, axis=1)[:, :n]
    cols = np.repeat(iz.astype(np.uint64), tile_rows, axis=0)[:m]
    both = rows & cols
    if not gf2:
        return both != 0
    for shift in (32, 16, 8, 4, 2, 1):
        both ^= both >> np.uint64(shift)
    return (both & np.uint64(1)).astype(bool)
