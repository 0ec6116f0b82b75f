"""Bitmap storage: one mask bit per weight plus the kept values in row-major order."""

from __future__ import annotations

import numpy as np

from codesign.models.format import Decoded, Encoded, Format, Stream, value_width
from codesign.models.specs import BitmapSpec


class BitmapFormat(Format):
    """Index bits m·n (one per weight); values nnz·b."""

    name = "bitmap"
    summary = "one mask bit per weight"

    def _encode(self, weights: np.ndarray, spec: BitmapSpec) -> Encoded:
        b = value_width(weights.dtype)
        mask = weights != 0
        values = weights[mask]
        streams = {
            "mask": Stream(mask.ravel().astype(np.uint8), 1, "index"),
            "values": Stream(values, b, "value"),
        }
        return self._bundle(
            weights, spec, streams, index_bits=weights.size, value_bits=values.size * b
        )

    def decode(self, enc: Encoded) -> Decoded:
        mask = enc.streams["mask"].data.astype(bool).reshape(enc.shape)
        weights = np.zeros(enc.shape, dtype=enc.dtype)
        weights[mask] = enc.streams["values"].data
        return Decoded(weights, mask)
