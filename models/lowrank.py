"""Low-rank storage: W ≈ U·V with two dense factors, the deployment of trained rank
pruning (REFERENCES §5).

A layer (m, n) of rank r is stored as U (m, r) and V (r, n) — two thin layers, r·(m+n)
values and MACs instead of m·n — with no index at all. The factors come from the
truncated SVD W = Σ σ_i u_i v_iᵀ, split evenly: U = U_r·diag(√σ), V = diag(√σ)·V_rᵀ.

Floating weights keep their dtype in the factors. Integer weights (a quantized layer)
are stored at their own precision: each factor is quantized symmetrically to the
weights' bit width (:func:`~codesign.models.workloads.quantize_symmetric`) with one
float32 scale per factor (stream ``scales``); decode is scale_u·scale_v·U·V in float32.
Either way the format approximates its input: a report compares the decode with the
input, never with the reconstruction (:attr:`LowrankFormat.approximates`).

The truncated SVD (:func:`truncated_svd`) is LAPACK's full SVD, cut at r, unless the
rank is small — r ≤ min(m, n) / 8 with min(m, n) ≥ :data:`RANDOMIZED_MIN_SIDE` — where
a randomized range finder (Halko, Martinsson and Tropp, SIAM Review 2011) replaces it:
a seeded gaussian sketch of r + :data:`OVERSAMPLING` columns, :data:`POWER_ITERATIONS`
power iterations (each re-orthonormalized by QR), then the exact SVD of the small
projected matrix (the sketch in float32 for float32 weights, the projection and the small
SVD in float64). Work O(m·n·r) instead of O(m·n·min(m, n)). It reproduces the full
SVD's rank-r factors when the spectrum decays past r (trained layers; tested to 1e-8);
on a flat spectrum (i.i.d. gaussian weights, the worst case) its rank-r error is within
1 % of the optimum (measured 0.6 % at 4096², r = 204: relative error 0.916 instead of
0.910, energy kept 0.161 instead of 0.171). Threads, through threadpoolctl:
matrix products use at most numba's thread count (what ``--workers`` sets); the LAPACK
factorizations (QR, SVD) run on one thread — their level-2 panels make OpenBLAS threads
spin, measured 8–17× slower with two threads on the shared 2-core machine.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from codesign.models.format import Decoded, Encoded, Format, FormatError, Stream, value_width
from codesign.models.specs import LowrankSpec, Spec
from codesign.models.workloads import check_sparsity, check_weights, quantize_symmetric

SCALE_BITS = 32
"""Width of a factor's scale (float32) when integer weights quantize the factors."""

RANDOMIZED_MIN_SIDE = 1024
"""Matrices with a shorter side below this always take the full SVD (exact, and fast)."""
RANDOMIZED_MAX_FRACTION = 0.125
"""The randomized SVD is used up to rank ≤ this × min(m, n)."""
OVERSAMPLING = 16
"""Extra sketch columns of the randomized SVD."""
POWER_ITERATIONS = 4
"""Power iterations of the randomized SVD."""


def blas_threads(most: int | None = None) -> threadpool_limits:
    """A context limiting the BLAS / LAPACK pools to numba's thread count (set by
    ``--workers``) or ``most``, never above a limit already in force (e.g. one thread
    per sweep worker)."""
    pools = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
    limit = min([numba.get_num_threads(), *pools, *([most] if most else [])])
    return threadpool_limits(limits=limit, user_api="blas")


def _product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b with the BLAS threads of :func:`blas_threads`."""
    with blas_threads():
        return a @ b


def _svd(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The thin SVD of ``a`` on one LAPACK thread."""
    with blas_threads(1):
        return np.linalg.svd(a, full_matrices=False)


def _orthonormal(a: np.ndarray) -> np.ndarray:
    """An orthonormal basis (Q of the thin QR) of the columns of ``a``, on one thread."""
    with blas_threads(1):
        return np.linalg.qr(a)[0]


def energy_rank(singular_values: np.ndarray, energy: float) -> int:
    """The smallest r whose r largest singular values keep ``energy`` (0..1] of Σσ².

    ``singular_values`` (k,) in descending order; at least 1 (also for an all-zero
    matrix), at most k.
    """
    if not 0.0 < energy <= 1.0:
        raise ValueError(f"energy must be in (0, 1], got {energy!r}")
    kept = np.cumsum(np.asarray(singular_values, dtype=np.float64) ** 2)
    if kept.size == 0 or kept[-1] == 0.0:
        return 1
    return min(int(np.searchsorted(kept, energy * kept[-1], side="left")) + 1, kept.size)


def truncated_svd(weights: np.ndarray, rank: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``rank`` leading singular triplets of ``weights`` (m, n): (u (m, rank),
    s (rank,) descending, vt (rank, n)), float64 — LAPACK's full SVD or, for a small
    rank of a large matrix, the randomized range finder (module docstring), whose
    sketch and power iterations run in float32 for float32 (or narrower) weights."""
    side = min(weights.shape)
    if side < RANDOMIZED_MIN_SIDE or rank > RANDOMIZED_MAX_FRACTION * side:
        u, s, vt = _svd(np.asarray(weights, dtype=np.float64))
        return u[:, :rank], s[:rank], vt[:rank]
    w = np.asarray(weights, dtype=np.result_type(weights.dtype, np.float32))
    rng = np.random.default_rng(0)
    sketch = rng.standard_normal((w.shape[1], rank + OVERSAMPLING)).astype(w.dtype)
    basis = _orthonormal(_product(w, sketch))
    for _ in range(POWER_ITERATIONS):
        basis = _orthonormal(_product(w, _orthonormal(_product(w.T, basis))))
    basis = basis.astype(np.float64)
    u, s, vt = _svd(_product(basis.T, np.asarray(weights, dtype=np.float64)))
    return _product(basis, u[:, :rank]), s[:rank], vt[:rank]


def truncated_factors(weights: np.ndarray, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """U (m, rank) and V (rank, n), float64, with U·V the best rank-``rank``
    approximation of ``weights`` (m, n) in Frobenius norm (balanced √σ split;
    :func:`truncated_svd`)."""
    return _split(*truncated_svd(weights, rank), rank)


def _split(
    u: np.ndarray, s: np.ndarray, vt: np.ndarray, rank: int
) -> tuple[np.ndarray, np.ndarray]:
    root = np.sqrt(s[:rank])
    return u[:, :rank] * root, root[:, None] * vt[:rank]


def budget_rank(shape: tuple[int, int], sparsity: float) -> int:
    """The largest r with r·(m + n) ≤ (1 − sparsity)·m·n: the rank whose two factors
    hold no more values than a layer pruned to ``sparsity`` keeps (equal parameter
    budget). Raises :class:`FormatError` when even r = 1 does not fit."""
    m, n = shape
    sparsity = check_sparsity(sparsity)
    r = int(np.floor((1.0 - sparsity) * m * n / (m + n) + 1e-9))
    if r < 1:
        most = 1.0 - (m + n) / (m * n)
        raise FormatError(
            f"sparsity {sparsity:.6g} leaves {(1 - sparsity) * m * n:.4g} values for a "
            f"{m}x{n} layer, fewer than one rank (m + n = {m + n}); lowrank reaches "
            f"sparsity <= {most:.6g} here"
        )
    return min(r, m, n)


class LowrankFormat(Format):
    """Two dense factors U (m, r), V (r, n) as value streams; index bits 0, value bits
    r·(m+n)·(value bits) (+ 2 scales for integer weights). ``encode`` = truncated SVD at
    ``spec.rank`` (or at the smallest rank keeping ``spec.energy`` of Σσ²), factors
    stored in the input's floating dtype or quantized to its integer width (module
    docstring); ``decode`` = U·V computed in float64, cast to the floating dtype (the
    mask is all True: every weight is produced). ``compress`` with a sparsity uses
    :func:`budget_rank` and returns (U·V, encoding): U·V is what the encoding stands
    for; a report compares it with the input (:attr:`approximates`)."""

    name = "lowrank"
    summary = "W ≈ U·V, two dense factors from the truncated SVD, no index"
    approximates = True
    memory_per_weight = 40

    def prune(self, weights: np.ndarray, sparsity: float, spec: Spec | None = None) -> np.ndarray:
        """The rank-r approximation U·V at the equal-parameter rank of ``sparsity``."""
        return self.compress(weights, sparsity, spec)[0]

    def compress(
        self, weights: np.ndarray, sparsity: float | None, spec: Spec | None = None
    ) -> tuple[np.ndarray, Encoded]:
        """Factor ``weights`` (at :func:`budget_rank` when ``sparsity`` is given, else
        at the spec's rank or energy); returns (U·V as decoded, encoding)."""
        spec = LowrankSpec() if spec is None else spec
        if sparsity is not None:
            if isinstance(spec, LowrankSpec) and spec.rank is not None:
                raise FormatError(
                    f"lowrank takes its rank from either the sparsity ({sparsity}) or "
                    f"LowrankSpec.rank ({spec.rank}), not both; unset one of them"
                )
            check_weights(weights)
            spec = LowrankSpec(rank=budget_rank(weights.shape, sparsity), energy=spec.energy)
        enc = self.encode(weights, spec)
        return self.decode(enc).weights, enc

    def _encode(self, weights: np.ndarray, spec: LowrankSpec) -> Encoded:
        m, n = weights.shape
        full = min(m, n)
        wf = weights.astype(np.float64)
        if spec.rank is not None and spec.rank > full:
            raise FormatError(
                f"LowrankSpec.rank={spec.rank} exceeds min(m, n) = {full} for a {m}x{n} "
                f"layer; use rank in 1..{full}"
            )
        if spec.rank is None:
            u, s, vt = _svd(wf)
            rank = energy_rank(s, spec.energy)
        else:
            rank = spec.rank
            u, s, vt = truncated_svd(weights, rank)
        vb = value_width(weights.dtype)
        factors = _split(u, s, vt, rank)
        if np.issubdtype(weights.dtype, np.floating):
            left, right = (f.astype(weights.dtype) for f in factors)
            scales = np.ones(2)
            streams = {}
        else:
            (left, su), (right, sv) = (quantize_symmetric(f, vb) for f in factors)
            scales = np.array([su, sv], dtype=np.float32)
            streams = {"scales": Stream(scales, SCALE_BITS, "value")}
        streams = {
            "u": Stream(left.ravel(), vb, "value"),
            "v": Stream(right.ravel(), vb, "value"),
            **streams,
        }
        approx = _scaled_product(left, right, scales)
        norm = float(np.linalg.norm(wf))
        extras = {
            "rank": float(rank),
            "energy_kept": float((s[:rank] ** 2).sum()) / max(norm**2, 1e-300),
            "relative_error": float(np.linalg.norm(wf - approx)) / norm if norm else 0.0,
            "param_fraction": rank * (m + n) / (m * n),
        }
        value_bits = sum(stream.bits for stream in streams.values())
        return self._bundle(weights, spec, streams, 0, value_bits, extras)

    def decode(self, enc: Encoded) -> Decoded:
        m, n = enc.shape
        left = enc.streams["u"].data.reshape(m, -1)
        right = enc.streams["v"].data.reshape(left.shape[1], n)
        dtype = enc.dtype if np.issubdtype(enc.dtype, np.floating) else np.float32
        weights = _scaled_product(left, right, factor_scales(enc)).astype(dtype)
        return Decoded(weights, np.ones(enc.shape, dtype=bool))


def factor_scales(enc: Encoded) -> tuple[float, float]:
    """The scales of U and V of a ``lowrank`` encoding (1.0 for floating factors)."""
    if "scales" not in enc.streams:
        return 1.0, 1.0
    su, sv = enc.streams["scales"].data
    return float(su), float(sv)


def _scaled_product(left: np.ndarray, right: np.ndarray, scales: Sequence[float]) -> np.ndarray:
    """scale_u·scale_v·U·V in float64 (BLAS threads as :func:`_product`)."""
    product = _product(left.astype(np.float64), right.astype(np.float64))
    return product * (float(scales[0]) * float(scales[1]))
