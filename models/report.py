"""Per-layer storage report of a format: sizes, ratios and the lossless check.

**One precision rule.** Every figure of a report is at one value precision b, the
width of one stored value (:meth:`~codesign.models.format.Format.value_precision`: the
stored dtype's width, or the width a format quantizes to itself, as ``xor``'s
``value_bits``). The dense baseline is m·n·b bits; the CSR baseline is CSR storage of
**the same pruned matrix** (its non-zeros at b bits each plus CSR's index). ``lossless``
means decoding reproduces the **reference** exactly: the pruned matrix the encoding
stands for (for ``xor``, with its own quantization). A format that approximates its
input (``lowrank``) is compared with the input itself — never lossless unless exact —
and its CSR baseline is the input's magnitude pruning at the requested sparsity (the
matrix a sparse format would store at the same budget), or the input when no sparsity
is given.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from codesign.models.csr import csr_bits
from codesign.models.format import Encoded, Format
from codesign.models.specs import Spec
from codesign.models.workloads import magnitude_prune


def _ratio(baseline: int, bits: int) -> float | None:
    """``baseline / bits``, or None when either is 0 (no meaningful ratio)."""
    return baseline / bits if baseline > 0 and bits > 0 else None


@dataclasses.dataclass(frozen=True)
class LayerReport:
    """Storage of one layer in one format. Sizes in bits; ``*_per_weight`` divide by
    the layer's m·n weights (a total over ``layers`` > 1 layers has shape (1, weights));
    ratios are baseline bits / this format's bits (> 1 means smaller than the baseline),
    both at ``precision_bits`` bits per value (module docstring), None where either size is
    0 bits. ``lossless``: decode
    reproduced the reference exactly. ``side_bits``: dense storage of a model's side
    tensors (biases, norms), counted in a model total's sizes and both baselines (0 for
    a layer). ``extras``: the format's own figures (see :attr:`Encoded.extras`)."""

    name: str
    shape: tuple[int, int]
    nnz: int
    stored_values: int
    index_bits: int
    value_bits: int
    dense_bits: int
    csr_total_bits: int
    lossless: bool
    precision_bits: int
    layers: int = 1
    side_bits: int = 0
    extras: dict[str, float] = dataclasses.field(default_factory=dict)

    @property
    def total_bits(self) -> int:
        return self.index_bits + self.value_bits + self.side_bits

    @property
    def sparsity(self) -> float:
        """The sparsity the storage reached: 1 − stored value slots / weights (padding
        slots and stored zeros count as stored; lowrank: its factors' values)."""
        return 1.0 - self.stored_values / self.weights

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
    def ratio_vs_dense(self) -> float | None:
        """Dense bits / this format's bits; None where the ratio has no meaning (either
        size is 0 bits: a layer of zeros that the format stores in nothing)."""
        return _ratio(self.dense_bits, self.total_bits)

    @property
    def ratio_vs_csr(self) -> float | None:
        """CSR bits / this format's bits; None where either is 0 bits (CSR stores a
        matrix of zeros in 0 bits when its widths come out 0)."""
        return _ratio(self.csr_total_bits, self.total_bits)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form, derived figures included; a format figure that is not finite
        (xor's ``entropy_bound`` of a layer keeping nothing) is None, so the document is
        strict JSON (no ``Infinity``)."""
        out = dataclasses.asdict(self)
        out["shape"] = list(self.shape)
        out.update({k: v if math.isfinite(v) else None for k, v in out.pop("extras").items()})
        for key in (
            "total_bits",
            "index_bits_per_weight",
            "value_bits_per_weight",
            "ratio_vs_dense",
            "ratio_vs_csr",
            "sparsity",
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
    decode, and report sizes and whether decode reproduced the reference."""
    reference, enc = fmt.compress(weights, sparsity, spec)
    return report_encoded(name, reference, enc, fmt, weights, sparsity)


def report_encoded(
    name: str,
    reference: np.ndarray,
    enc: Encoded,
    fmt: Format,
    weights: np.ndarray | None = None,
    sparsity: float | None = None,
) -> LayerReport:
    """Report an encoding of ``reference`` (m, n), the matrix ``fmt.compress`` returned
    for it (module docstring for the baselines and the lossless check). ``weights`` and
    ``sparsity``: what ``compress`` was given — needed for a format that approximates
    its input (``lowrank``), whose reference is ``weights`` itself."""
    b = fmt.value_precision(enc)
    baseline_nnz = enc.nnz
    if fmt.approximates:
        if weights is None:
            raise ValueError(f"a {fmt.name} report needs the weights given to compress")
        reference = weights
        pruned = weights if sparsity is None else magnitude_prune(weights, sparsity)
        baseline_nnz = int(np.count_nonzero(pruned))
    dec = fmt.decode(enc)
    return LayerReport(
        name=name,
        shape=enc.shape,
        nnz=enc.nnz,
        stored_values=enc.stored_values,
        index_bits=enc.index_bits,
        value_bits=enc.value_bits,
        dense_bits=reference.size * b,
        csr_total_bits=csr_bits(enc.shape, baseline_nnz) + baseline_nnz * b,
        lossless=bool(np.array_equal(dec.weights, reference)),
        precision_bits=b,
        extras=dict(enc.extras),
    )


def total_report(layers: list[LayerReport], name: str = "total", side_bits: int = 0) -> LayerReport:
    """The sum of several layer reports (shape (1, total weights), or the one layer's),
    plus ``side_bits`` of dense side tensors (a model total)."""
    precisions = {r.precision_bits for r in layers}
    if len(precisions) != 1:
        raise ValueError(
            f"layer reports at different value precisions {sorted(precisions)} bits cannot "
            f"be summed into one comparison"
        )
    return LayerReport(
        name=name,
        shape=layers[0].shape if len(layers) == 1 else (1, sum(r.weights for r in layers)),
        nnz=sum(r.nnz for r in layers),
        stored_values=sum(r.stored_values for r in layers),
        index_bits=sum(r.index_bits for r in layers),
        value_bits=sum(r.value_bits for r in layers),
        dense_bits=sum(r.dense_bits for r in layers) + side_bits,
        csr_total_bits=sum(r.csr_total_bits for r in layers) + side_bits,
        lossless=all(r.lossless for r in layers),
        precision_bits=precisions.pop(),
        layers=sum(r.layers for r in layers),
        side_bits=sum(r.side_bits for r in layers) + side_bits,
    )
