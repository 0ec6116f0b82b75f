"""N:M structured sparsity: n (position, value) slots in every group of m weights."""

from __future__ import annotations

import numpy as np

from codesign.models.format import (
    Decoded,
    Encoded,
    Format,
    FormatError,
    Stream,
    ceil_log2,
    value_width,
)
from codesign.models.specs import NmSpec, Spec
from codesign.models.workloads import check_sparsity, magnitude_prune


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

    def prune(self, weights: np.ndarray, sparsity: float, spec: Spec | None = None) -> np.ndarray:
        """N:M magnitude pruning, then global magnitude pruning up to ``sparsity``
        when it asks for more than 1 − n/m (fewer than n per group stays N:M)."""
        spec = spec if isinstance(spec, NmSpec) else NmSpec()
        pruned = nm_prune(weights, spec)
        zeros = pruned.size - np.count_nonzero(pruned)
        if check_sparsity(sparsity) * pruned.size > zeros:
            pruned = magnitude_prune(pruned, sparsity)
        return pruned

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
