"""Dense storage: every weight, row-major, no index."""

from __future__ import annotations

import numpy as np

from codesign.models.format import Decoded, Encoded, Format, Stream, value_width
from codesign.models.specs import DenseSpec


class DenseFormat(Format):
    """m·n values of b bits; index bits 0."""

    name = "dense"
    summary = "every weight stored, no index"

    def _encode(self, weights: np.ndarray, spec: DenseSpec) -> Encoded:
        b = value_width(weights.dtype)
        values = np.ascontiguousarray(weights).ravel().copy()
        streams = {"values": Stream(values, b, "value")}
        return self._bundle(weights, spec, streams, index_bits=0, value_bits=weights.size * b)

    def decode(self, enc: Encoded) -> Decoded:
        weights = enc.streams["values"].data.reshape(enc.shape).copy()
        return Decoded(weights, np.ones(enc.shape, dtype=bool))
