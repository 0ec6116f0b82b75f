"""N:M structured sparsity: n (position, value) slots in every group of m weights.

Its sparsity is fixed at 1 − n/m: pruning to another sparsity (beyond
:data:`~codesign.models.format.SPARSITY_TOLERANCE`) is refused, naming the n:m that
reaches it, rather than storing padded slots silently.
"""

from __future__ import annotations

import numpy as np

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
from codesign.models.specs import NmSpec, Spec
from codesign.models.workloads import check_sparsity


def _groups(weights: np.ndarray, m: int) -> np.ndarray:
    """(rows, groups, m) view of the rows cut into groups of m, the last zero-padded."""
    rows, cols = weights.shape
    n_groups = -(-cols // m)
    padded = np.zeros((rows, n_groups * m), dtype=weights.dtype)
    padded[:, :cols] = weights
    return padded.reshape(rows, n_groups, m)


def _slot_valid(cols: int, spec: NmSpec) -> np.ndarray:
    """(groups, n) bool: which slots exist (a short last group of length L has min(n, L))."""
    n_groups = -(-cols // spec.m)
    lengths = np.full(n_groups, spec.m)
    lengths[-1] = cols - (n_groups - 1) * spec.m
    return np.arange(spec.n)[None, :] < np.minimum(spec.n, lengths)[:, None]


def nearest_nm(sparsity: float) -> tuple[int, int]:
    """The n:m (m ≤ 64) whose sparsity 1 − n/m is nearest ``sparsity`` (to 4 decimals;
    the smallest m among equally near ones)."""
    lo, hi = NmSpec._ranges["m"]
    best = min(
        ((n, m) for m in range(lo, hi + 1) for n in range(1, m + 1)),
        key=lambda nm: (
            round(abs(1 - nm[0] / nm[1] - sparsity), 4),
            nm[1],
        ),
    )
    return best


def nm_prune(weights: np.ndarray, spec: NmSpec) -> np.ndarray:
    """Keep the ``spec.n`` largest |w| of every group of ``spec.m`` in each row."""
    groups = _groups(weights, spec.m)
    order = np.argsort(-np.abs(groups), axis=-1, kind="stable")
    keep = np.zeros(groups.shape, dtype=bool)
    np.put_along_axis(keep, order[..., : spec.n], True, axis=-1)
    pruned = np.where(keep, groups, 0).reshape(weights.shape[0], -1)
    return pruned[:, : weights.shape[1]].astype(weights.dtype)


class NmFormat(Format):
    """Index bits = slots·⌈log2 m⌉, slots = n per group (the kept weights of N:M
    pruning); a group with fewer non-zeros pads with zero values."""

    name = "nm"
    summary = "n of every m weights: ⌈log2 m⌉-bit position per slot"
    memory_per_weight = 28

    def prune(self, weights: np.ndarray, sparsity: float, spec: Spec | None = None) -> np.ndarray:
        """N:M magnitude pruning. ``sparsity`` must be the one N:M reaches, 1 − n/m,
        within :data:`~codesign.models.format.SPARSITY_TOLERANCE`: otherwise
        :class:`FormatError` names that sparsity and an n:m reaching the request."""
        spec = spec if isinstance(spec, NmSpec) else NmSpec()
        reached = 1.0 - spec.n / spec.m
        if abs(reached - check_sparsity(sparsity)) > SPARSITY_TOLERANCE:
            n, m = nearest_nm(sparsity)
            raise FormatError(
                f"nm keeps n={spec.n} of every m={spec.m} weights, so its sparsity is fixed "
                f"at {reached:.6g}, out of reach of the requested sparsity {sparsity:.6g}; "
                f"ask for sparsity {reached:.6g}, or use n={n}, m={m} (sparsity "
                f"{1 - n / m:.6g})"
            )
        return nm_prune(weights, spec)

    def _encode(self, weights: np.ndarray, spec: NmSpec) -> Encoded:
        rows, cols = weights.shape
        groups = _groups(weights, spec.m)
        nz = groups != 0
        counts = nz.sum(axis=-1)
        if counts.max(initial=0) > spec.n:
            r, g = np.argwhere(counts > spec.n)[0]
            raise FormatError(
                f"row {r}, group {g} (columns {g * spec.m}..{min(cols, (g + 1) * spec.m) - 1}) "
                f"has {counts[r, g]} non-zeros; NmSpec n={spec.n} allows at most {spec.n} "
                f"per m={spec.m} (prune with the nm format's prune first)"
            )
        order = np.argsort(~nz, axis=-1, kind="stable")[..., : spec.n]
        order.sort(axis=-1)
        values = np.take_along_axis(groups, order, axis=-1)
        valid = np.broadcast_to(_slot_valid(cols, spec), values.shape)
        pos_bits = ceil_log2(spec.m)
        b = value_width(weights.dtype)
        slots = int(valid.sum())
        streams = {
            "positions": Stream(order[valid].astype(np.int64), pos_bits, "index"),
            "values": Stream(values[valid], b, "value"),
        }
        return self._bundle(weights, spec, streams, slots * pos_bits, slots * b)

    def decode(self, enc: Encoded) -> Decoded:
        rows, cols = enc.shape
        spec: NmSpec = enc.spec
        slot_valid = _slot_valid(cols, spec)
        valid = np.broadcast_to(slot_valid, (rows, *slot_valid.shape))
        row_idx, group_idx, _ = np.nonzero(valid)
        col_idx = group_idx * spec.m + enc.streams["positions"].data
        weights = np.zeros(enc.shape, dtype=enc.dtype)
        mask = np.zeros(enc.shape, dtype=bool)
        weights[row_idx, col_idx] = enc.streams["values"].data
        mask[row_idx, col_idx] = True
        return Decoded(weights, mask)
