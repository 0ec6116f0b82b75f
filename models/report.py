"""Per-layer storage report of a format: sizes, ratios and the lossless check."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from codesign.models.csr import csr_bits
from codesign.models.format import Encoded, Format, value_width
from codesign.models.specs import Spec


@dataclasses.dataclass(frozen=True)
class LayerReport:
    """Storage of one layer in one format. Sizes in bits; ``*_per_weight`` divide by
    the layer's m·n weights (a total over ``layers`` > 1 layers has shape (1, weights));
    ratios are baseline bits / this format's bits (> 1 means
    smaller than the baseline). ``lossless``: decode reproduced the layer exactly.
    ``extras``: the format's own figures (see :attr:`Encoded.extras`)."""

    name: str
    shape: tuple[int, int]
    nnz: int
    stored_values: int
    index_bits: int
    value_bits: int
    dense_bits: int
    csr_total_bits: int
    lossless: bool
    layers: int = 1
    extras: dict[str, float] = dataclasses.field(default_factory=dict)

    @property
    def total_bits(self) -> int:
        return self.index_bits + self.value_bits

    @property
    def weights(self) -> int:
        return self.shape[0] * self.shape[1]

    @property
    def index_bits_per_weight(self) -> float:
        return self.index_bits / self.weights

    @property
    def value_bits_per_weight(self) -> float:
        return self.value_bits / self.weights

    @property
    def ratio_vs_dense(self) -> float:
        return self.dense_bits / max(self.total_bits, 1)

    @property
    def ratio_vs_csr(self) -> float:
        return self.csr_total_bits / max(self.total_bits, 1)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form, derived figures included."""
        out = dataclasses.asdict(self)
        out["shape"] = list(self.shape)
        out.update(out.pop("extras"))
        for key in (
            "total_bits",
            "index_bits_per_weight",
            "value_bits_per_weight",
            "ratio_vs_dense",
            "ratio_vs_csr",
        ):
            out[key] = getattr(self, key)
        return out


def report_layer(
    name: str,
    weights: np.ndarray,
    fmt: Format,
    spec: Spec | None,
    sparsity: float | None = None,
) -> LayerReport:
    """Compress ``weights`` (m, n) in ``fmt`` (pruned to ``sparsity`` when given),
    decode, and report sizes and whether decode reproduced the compressed layer."""
    reference, enc = fmt.compress(weights, sparsity, spec)
    return report_encoded(name, reference, enc, fmt)


def report_encoded(name: str, reference: np.ndarray, enc: Encoded, fmt: Format) -> LayerReport:
    """Report an encoding of ``reference`` (m, n): sizes, and whether decoding it
    reproduces ``reference`` exactly."""
    dec = fmt.decode(enc)
    b = value_width(reference.dtype)
    return LayerReport(
        name=name,
        shape=enc.shape,
        nnz=enc.nnz,
        stored_values=enc.stored_values,
        index_bits=enc.index_bits,
        value_bits=enc.value_bits,
        dense_bits=reference.size * b,
        csr_total_bits=csr_bits(enc.shape, enc.nnz) + enc.nnz * b,
        lossless=bool(np.array_equal(dec.weights, reference)),
        extras=dict(enc.extras),
    )


def total_report(layers: list[LayerReport], name: str = "total") -> LayerReport:
    """The sum of several layer reports (shape (1, total weights), or the one layer's)."""
    return LayerReport(
        name=name,
        shape=layers[0].shape if len(layers) == 1 else (1, sum(r.weights for r in layers)),
        nnz=sum(r.nnz for r in layers),
        stored_values=sum(r.stored_values for r in layers),
        index_bits=sum(r.index_bits for r in layers),
        value_bits=sum(r.value_bits for r in layers),
        dense_bits=sum(r.dense_bits for r in layers),
        csr_total_bits=sum(r.csr_total_bits for r in layers),
        lossless=all(r.lossless for r in layers),
        layers=sum(r.layers for r in layers),
    )
