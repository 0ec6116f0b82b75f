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
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from codesign.models.format import Decoded, Encoded, Format, FormatError, Stream, value_width
from codesign.models.specs import LowrankSpec, Spec
from codesign.models.workloads import check_sparsity, check_weights, quantize_symmetric

SCALE_BITS = 32
"""Width of a factor's scale (float32) when integer weights quantize the factors."""


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
        u, s, vt = np.linalg.svd(wf, full_matrices=False)
        if spec.rank is not None and spec.rank > full:
            raise FormatError(
                f"LowrankSpec.rank={spec.rank} exceeds min(m, n) = {full} for a {m}x{n} "
                f"layer; use rank in 1..{full}"
            )
        rank = energy_rank(s, spec.energy) if spec.rank is None else spec.rank
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
        approx = _product(left, right, scales)
        norm = float(np.linalg.norm(wf))
        extras = {
            "rank": float(rank),
            "energy_kept": float((s[:rank] ** 2).sum() / max((s**2).sum(), 1e-300)),
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
        weights = _product(left, right, factor_scales(enc)).astype(dtype)
        return Decoded(weights, np.ones(enc.shape, dtype=bool))


def factor_scales(enc: Encoded) -> tuple[float, float]:
    """The scales of U and V of a ``lowrank`` encoding (1.0 for floating factors)."""
    if "scales" not in enc.streams:
        return 1.0, 1.0
    su, sv = enc.streams["scales"].data
    return float(su), float(sv)


def _product(left: np.ndarray, right: np.ndarray, scales: Sequence[float]) -> np.ndarray:
    """scale_u·scale_v·U·V in float64."""
    product = left.astype(np.float64) @ right.astype(np.float64)
    return product * (float(scales[0]) * float(scales[1]))
