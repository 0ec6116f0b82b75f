"""EIE-style relative indexing over the row-major flattened matrix."""

from __future__ import annotations

import numpy as np

from codesign.models.format import Decoded, Encoded, Format, Stream, value_width
from codesign.models.specs import RelativeSpec


def relative_entries(weights: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray]:
    """(gaps, values) of the relative encoding, padding included.

    Each entry's gap is the number of zeros skipped since the previous entry (the
    first counts from before position 0); a gap g ≥ 2^r is split into g >> r padding
    entries (gap 2^r − 1, value 0) and a final entry with gap g mod 2^r.
    Shapes: both (entries,), entries = nnz + padding.
    """
    flat = np.ascontiguousarray(weights).ravel()
    pos = np.flatnonzero(flat)
    gaps = np.diff(pos, prepend=-1) - 1
    pads = gaps >> r
    per_nz = pads + 1
    total = int(per_nz.sum())
    last = np.cumsum(per_nz) - 1
    out_gaps = np.full(total, (1 << r) - 1, dtype=np.int64)
    out_gaps[last] = gaps & ((1 << r) - 1)
    out_values = np.zeros(total, dtype=weights.dtype)
    out_values[last] = flat[pos]
    return out_gaps, out_values


class RelativeFormat(Format):
    """Index bits nnz'·r, values nnz'·b, nnz' = nnz + padding zeros."""

    name = "relative"
    summary = "r-bit gap per stored value, padding zeros for long gaps (EIE)"

    def _encode(self, weights: np.ndarray, spec: RelativeSpec) -> Encoded:
        b = value_width(weights.dtype)
        gaps, values = relative_entries(weights, spec.r)
        streams = {"gaps": Stream(gaps, spec.r, "index"), "values": Stream(values, b, "value")}
        return self._bundle(weights, spec, streams, gaps.size * spec.r, values.size * b)

    def decode(self, enc: Encoded) -> Decoded:
        pos = np.cumsum(enc.streams["gaps"].data + 1) - 1
        weights = np.zeros(enc.shape, dtype=enc.dtype)
        mask = np.zeros(enc.shape, dtype=bool)
        weights.ravel()[pos] = enc.streams["values"].data
        mask.ravel()[pos] = True
        return Decoded(weights, mask)
