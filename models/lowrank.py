"""Low-rank storage: W ≈ U·V with two dense factors, the deployment of trained rank
pruning (REFERENCES §5).

A layer (m, n) of rank r is stored as U (m, r) and V (r, n) — two thin layers, r·(m+n)
values and MACs instead of m·n — with no index at all. The factors come from the
truncated SVD W = Σ σ_i u_i v_iᵀ, split evenly: U = U_r·diag(√σ), V = diag(√σ)·V_rᵀ.
"""

from __future__ import annotations

import numpy as np

from codesign.models.format import Decoded, Encoded, Format, FormatError, Stream, value_width
from codesign.models.specs import LowrankSpec, Spec
from codesign.models.workloads import check_sparsity, check_weights


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


def truncated_factors(weights: np.ndarray, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """U (m, rank) and V (rank, n), float64, with U·V the best rank-``rank``
    approximation of ``weights`` (m, n) in Frobenius norm (balanced √σ split)."""
    u, s, vt = np.linalg.svd(np.asarray(weights, dtype=np.float64), full_matrices=False)
    return _split(u, s, vt, rank)


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
    r·(m+n)·(value bits). ``encode`` = truncated SVD at ``spec.rank`` (or at the
    smallest rank keeping ``spec.energy`` of Σσ²), factors stored in the input's
    floating dtype; ``decode`` = U·V computed in float64, cast to that dtype (the mask
    is all True: every weight is produced). ``compress`` with a sparsity uses
    :func:`budget_rank` and returns (U·V, encoding), so ``lossless`` checks that the
    stored factors reproduce U·V."""

    name = "lowrank"
    summary = "W ≈ U·V, two dense factors from the truncated SVD, no index"

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
        if not np.issubdtype(weights.dtype, np.floating):
            raise FormatError(
                f"lowrank stores its factors in the weights' dtype and needs floating "
                f"weights, got {weights.dtype}; convert with weights.astype(np.float32)"
            )
        m, n = weights.shape
        full = min(m, n)
        wf = weights.astype(np.float64)
        u, s, vt = np.linalg.svd(wf, full_matrices=False)
        if spec.rank is not None and spec.rank > full:
            raise FormatError(
                f"LowrankSpec.rank={spec.rank} exceeds min(m, n) = {full} for a {m}x{n} "
                f"layer; use rank in 1..{full}"
            )
        rank = energy_rank(s, spec.energy) if spec.rank is None else spec.rank
        left, right = (f.astype(weights.dtype) for f in _split(u, s, vt, rank))
        vb = value_width(weights.dtype)
        streams = {
            "u": Stream(left.ravel(), vb, "value"),
            "v": Stream(right.ravel(), vb, "value"),
        }
        approx = left.astype(np.float64) @ right.astype(np.float64)
        norm = float(np.linalg.norm(wf))
        extras = {
            "rank": float(rank),
            "energy_kept": float((s[:rank] ** 2).sum() / max((s**2).sum(), 1e-300)),
            "relative_error": float(np.linalg.norm(wf - approx)) / norm if norm else 0.0,
            "param_fraction": rank * (m + n) / (m * n),
        }
        return self._bundle(weights, spec, streams, 0, (left.size + right.size) * vb, extras)

    def decode(self, enc: Encoded) -> Decoded:
        m, n = enc.shape
        left = enc.streams["u"].data.astype(np.float64).reshape(m, -1)
        right = enc.streams["v"].data.astype(np.float64).reshape(left.shape[1], n)
        weights = (left @ right).astype(enc.dtype)
        return Decoded(weights, np.ones(enc.shape, dtype=bool))
