"""Low-rank binary indexing (LBI): each tile's mask is the binary product Ip·Iz.

The matrix is cut into ``tile_rows``×``tile_cols`` tiles (row-major; bottom and right
edge tiles clipped to the matrix); tile (ti, tj) of size a'×b' stores Ip (a'×rank) and
Iz (rank×b'), and its mask is Ip·Iz in the spec's semiring (``bool``: OR of ANDs,
``gf2``: XOR of ANDs). Factors are stored at the clipped size, so

    index bits = Σ_tiles rank·(a' + b') = rank·(⌈n/tile_cols⌉·m + ⌈m/tile_rows⌉·n),

which is tiles·rank·(tile_rows + tile_cols) when the tiles divide the matrix, and does
not depend on the pruning rate. Values: the weights at the mask's positions in
row-major scan order (a kept position whose weight is zero stores a zero).

Streams: ``ip`` (index, ``rank`` bits each) the row codes of Ip — bit r of a code is
Ip[i, r] — tile by tile in row-major tile order, a' codes per tile; ``iz`` (index,
``rank`` bits each) the column codes of Iz — bit r is Iz[r, j] — in the same tile
order, b' codes per tile; ``values`` (value). :meth:`LbiFormat.decode` rebuilds the mask
from ``ip`` and ``iz`` alone.

Pruning (:meth:`LbiFormat.compress`, :meth:`LbiFormat.prune`) chooses the mask by the
factorization of :mod:`codesign.models.lbi_factorize` on importance scores r − θ (r: the
magnitudes with ties broken by row and column |w| mass), with θ calibrated until the
mask keeps the target count of weights (:mod:`codesign.models.lbi_calibrate`).
:meth:`LbiFormat.encode` of an already pruned matrix takes its non-zeros as the target
(:func:`codesign.models.lbi_calibrate.target_scores`); the mask found may miss some of
them, so that encoding is lossy unless the non-zero pattern is reachable. The method is Lee,
Kwon, Kim, Kapoor and Wei (2019); scores, initialisation and calibration are this
project's reconstruction (REFERENCES §3).
"""

from __future__ import annotations

import numba
import numpy as np

from codesign.limits import Need
from codesign.models.format import Decoded, Encoded, Format, FormatError, Stream, value_width
from codesign.models.lbi_calibrate import Calibration, calibrate, target_scores
from codesign.models.lbi_factorize import (
    INITS,
    MAX_ITERS,
    UPDATE_CHUNK,
    Factorization,
    code_dtype,
    factorize,
    mask_from_codes,
    tile_counts,
)
from codesign.models.quality import kept_fraction, kept_mass_ratio
from codesign.models.specs import LbiSpec, Spec
from codesign.models.workloads import check_sparsity, check_weights


def check_fit(shape: tuple[int, int], spec: LbiSpec) -> None:
    """Raise :class:`FormatError` when a tile of ``spec`` is larger than the (m, n) matrix."""
    for field, size, what in (("tile_rows", shape[0], "rows"), ("tile_cols", shape[1], "columns")):
        tile = getattr(spec, field)
        if tile > size:
            fix = (
                f"use {field} in {spec.rank}..{size} (at least rank={spec.rank})"
                if spec.rank <= size
                else f"use {field} in 1..{size} and rank in 1..{field} "
                f"(rank={spec.rank} does not fit {size} {what})"
            )
            raise FormatError(
                f"LbiSpec.{field}={tile} is larger than the matrix's {size} {what}; {fix}"
            )


def index_bits(shape: tuple[int, int], spec: LbiSpec) -> int:
    """Closed-form index storage in bits: rank·(tiles across·m + tiles down·n)."""
    down, across = tile_counts(shape, spec.tile_rows, spec.tile_cols)
    return spec.rank * (across * shape[0] + down * shape[1])


def _cause(cal: Calibration) -> str:
    """Why the calibration missed, from its narrowest bracket (a probe keeping too many
    next to one keeping too few): the kept count jumps over the target between two
    neighbouring magnitudes — the limit of masks of this rank on these tiles; ties of |w|
    are broken, so they are never the cause — or the probes ran out first."""
    over = [p for p in cal.probes if p.kept > cal.target]
    under = [p for p in cal.probes if p.kept < cal.target]
    if not over or not under:
        side = "fewer" if not over else "more"
        return f"every mask found keeps {side} weights than the target ({len(cal.probes)} probes)"
    a, b = min(
        ((a, b) for a in over for b in under), key=lambda ab: abs(ab[0].position - ab[1].position)
    )
    gap = abs(a.position - b.position)
    if gap <= 1.0:
        return (
            f"between two neighbouring magnitudes (thresholds {a.threshold:.6g} and "
            f"{b.threshold:.6g}; ties of |w| are broken by row and column |w| mass) the "
            f"factorization's kept count jumps from {a.kept} to {b.kept}: masks of this rank "
            f"on these tiles keep no count in between"
        )
    return (
        f"the calibration stopped after {len(cal.probes)} probes with the kept count still "
        f"jumping from {a.kept} to {b.kept} between thresholds {a.threshold:.6g} and "
        f"{b.threshold:.6g} ({gap:.3g} weights apart; each probe is a new local optimum)"
    )


def _row_starts(m: int, tile_rows: int) -> list[tuple[int, int]]:
    return [(r0, min(r0 + tile_rows, m)) for r0 in range(0, m, tile_rows)]


def _factor_streams(fact: Factorization) -> dict[str, Stream]:
    dtype = code_dtype(fact.rank)
    ip = np.concatenate(
        [fact.ip[:, r0:r1].ravel() for r0, r1 in _row_starts(fact.shape[0], fact.tile_rows)]
    )
    return {
        "ip": Stream(ip.astype(dtype), fact.rank, "index"),
        "iz": Stream(fact.iz.ravel().astype(dtype), fact.rank, "index"),
    }


def factor_codes(enc: Encoded) -> tuple[np.ndarray, np.ndarray]:
    """(ip (tiles across, m), iz (tiles down, n)) int64 codes from the streams."""
    spec: LbiSpec = enc.spec
    m, n = enc.shape
    down, across = tile_counts(enc.shape, spec.tile_rows, spec.tile_cols)
    flat = enc.streams["ip"].data.astype(np.int64)
    ip = np.empty((across, m), np.int64)
    offset = 0
    for r0, r1 in _row_starts(m, spec.tile_rows):
        count = across * (r1 - r0)
        ip[:, r0:r1] = flat[offset : offset + count].reshape(across, r1 - r0)
        offset += count
    return ip, enc.streams["iz"].data.astype(np.int64).reshape(down, n)


class LbiFormat(Format):
    """Index bits rank·(a' + b') per (clipped) tile; values = weights at the mask.

    ``tolerance``: allowed miss of the kept count during calibration, a fraction of
    the target count (at least one weight); ``max_miss``: the largest miss (same units)
    still accepted as "the closest reached" — beyond it :meth:`compress` raises
    :class:`FormatError`; ``max_probes``: factorizations tried by the calibration;
    ``max_iters``: refinement iterations per tile; ``init``: the initialisation
    (:data:`codesign.models.lbi_factorize.INITS`).
    """

    name = "lbi"
    summary = "low-rank binary indexing: tile mask Ip·Iz, rank·(a+b) bits per tile"
    memory_per_weight = 75

    def memory_needs(self, shape: tuple[int, int], spec: LbiSpec | None = None) -> list[Need]:
        """The layer's storage, plus per factorization thread one tile's work: the
        2^rank choices of :data:`~codesign.models.lbi_factorize.UPDATE_CHUNK` codes
        (8 bytes each), the Gram matrix of the tile's shorter side and three tile-sized
        float64 arrays."""
        spec = LbiSpec() if spec is None else spec
        a, b = min(spec.tile_rows, shape[0]), min(spec.tile_cols, shape[1])
        per_thread = (1 << spec.rank) * UPDATE_CHUNK * 8 + 8 * min(a, b) ** 2 + 24 * a * b
        tiles = -(-shape[0] // a) * -(-shape[1] // b)
        threads = min(numba.get_num_threads(), tiles)
        return [
            *super().memory_needs(shape, spec),
            Need(
                threads * per_thread,
                f"the factorization of {a}x{b} tiles at rank {spec.rank} (2^{spec.rank} "
                f"choices per code), {threads} thread(s)",
                "rank or tile_rows / tile_cols (or --workers)",
            ),
        ]

    def __init__(
        self,
        tolerance: float = 0.01,
        max_miss: float = 0.1,
        max_probes: int = 16,
        max_iters: int = MAX_ITERS,
        init: str = "best",
    ) -> None:
        if not 0.0 <= tolerance <= max_miss:
            raise ValueError(f"tolerance must be in [0, max_miss={max_miss}], got {tolerance!r}")
        if max_probes < 1 or max_iters < 1:
            raise ValueError(
                f"max_probes and max_iters must be >= 1, got {max_probes} and {max_iters}"
            )
        self.tolerance = tolerance
        self.max_miss = max_miss
        self.max_probes = max_probes
        if init not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)}, got {init!r}")
        self.max_iters = max_iters
        self.init = init

    def calibrate(self, weights: np.ndarray, sparsity: float, spec: LbiSpec) -> Calibration:
        """Factorize ``weights`` (m, n) with the threshold calibrated to ``sparsity``;
        raises :class:`FormatError` when the closest mask misses the target kept count
        by more than ``max_miss``."""
        check_weights(weights)
        check_sparsity(sparsity)
        if not isinstance(spec, LbiSpec):
            raise FormatError(f"format 'lbi' needs a LbiSpec, got {type(spec).__name__}")
        check_fit(weights.shape, spec)
        cal = calibrate(
            weights,
            sparsity,
            spec.rank,
            spec.tile_rows,
            spec.tile_cols,
            spec.semiring,
            self.tolerance,
            self.max_probes,
            self.max_iters,
            self.init,
        )
        if abs(cal.best.kept - cal.target) > max(1, self.max_miss * cal.target):
            raise FormatError(self._unreachable(weights.size, sparsity, spec, cal))
        return cal

    def _unreachable(self, size: int, sparsity: float, spec: LbiSpec, cal: Calibration) -> str:
        whole = [p for p in cal.probes if not p.sampled] or list(cal.probes)
        below = max((p.kept for p in whole if p.kept < cal.target), default=None)
        above = min((p.kept for p in whole if p.kept > cal.target), default=None)
        found = " and ".join(
            f"{k} (sparsity {1 - k / size:.4f})" for k in (below, above) if k is not None
        )
        limit = min(spec.tile_rows, spec.tile_cols)
        return (
            f"sparsity={sparsity} is out of reach of LbiSpec(rank={spec.rank}, "
            f"tile_rows={spec.tile_rows}, tile_cols={spec.tile_cols}, semiring={spec.semiring}): "
            f"the target keeps {cal.target} of {size} weights, the closest masks found keep "
            f"{found}; {_cause(cal)}; ask for a sparsity near those, raise rank (up to "
            f"{min(limit, 16)}) or use smaller tiles"
        )

    def compress(
        self, weights: np.ndarray, sparsity: float | None, spec: Spec | None = None
    ) -> tuple[np.ndarray, Encoded]:
        """Calibrated factorization of ``weights`` at ``sparsity``; returns (W∘mask, its
        encoding). Without a sparsity, encodes ``weights`` as already pruned."""
        spec = self.spec_type() if spec is None else spec
        if sparsity is None:
            return weights, self.encode(weights, spec)
        cal = self.calibrate(weights, sparsity, spec)
        mask = cal.factorization.mask()
        reference = np.where(mask, weights, np.zeros((), dtype=weights.dtype))
        extras = {
            "kept_mass_ratio": kept_mass_ratio(weights, mask),
            "target_kept_fraction": cal.target / weights.size,
            "threshold": cal.best.threshold,
            "calibration_probes": float(len(cal.probes)),
            "calibration_reached": float(cal.reached),
        }
        return reference, self._store(reference, spec, cal.factorization, mask, extras)

    def prune(self, weights: np.ndarray, sparsity: float, spec: Spec | None = None) -> np.ndarray:
        """W∘mask of the calibrated factorization (same as ``compress(...)[0]``)."""
        return self.compress(weights, sparsity, spec)[0]

    def _encode(self, weights: np.ndarray, spec: LbiSpec) -> Encoded:
        check_fit(weights.shape, spec)
        fact = factorize(
            target_scores(weights),
            spec.rank,
            spec.tile_rows,
            spec.tile_cols,
            spec.semiring,
            self.max_iters,
            self.init,
        )
        mask = fact.mask()
        nonzero = weights != 0
        extras = {
            "kept_mass_ratio": kept_mass_ratio(weights, mask),
            "covered_fraction": float(np.count_nonzero(nonzero & mask))
            / max(1, int(np.count_nonzero(nonzero))),
        }
        return self._store(weights, spec, fact, mask, extras)

    def _store(
        self,
        weights: np.ndarray,
        spec: LbiSpec,
        fact: Factorization,
        mask: np.ndarray,
        extras: dict[str, float],
    ) -> Encoded:
        b = value_width(weights.dtype)
        streams = _factor_streams(fact)
        streams["values"] = Stream(weights[mask], b, "value")
        extras = {
            "kept_fraction": kept_fraction(mask),
            "objective": fact.objective,
            "iterations": float(fact.iterations),
            "converged": float(fact.converged),
            **extras,
        }
        bits = index_bits(weights.shape, spec)
        return self._bundle(weights, spec, streams, bits, int(mask.sum()) * b, extras)

    def decode(self, enc: Encoded) -> Decoded:
        spec: LbiSpec = enc.spec
        ip, iz = factor_codes(enc)
        mask = mask_from_codes(ip, iz, spec.tile_rows, spec.tile_cols, spec.semiring)
        weights = np.zeros(enc.shape, dtype=enc.dtype)
        weights[mask] = enc.streams["values"].data
        return Decoded(weights, mask)
