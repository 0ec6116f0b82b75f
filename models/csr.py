"""Compressed sparse row storage with configurable index widths."""

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
from codesign.models.specs import CsrSpec


def csr_widths(shape: tuple[int, int], nnz: int, spec: CsrSpec) -> tuple[int, int]:
    """(column-index bits, row-pointer bits) for an m×n matrix with ``nnz`` non-zeros.

    Unset widths take the minimum, ⌈log2 n⌉ and ⌈log2(nnz+1)⌉; a set width below the
    minimum raises :class:`FormatError` naming the field and the range that works.
    """
    need_col = ceil_log2(shape[1])
    need_ptr = ceil_log2(nnz + 1)
    col = need_col if spec.col_bits is None else spec.col_bits
    ptr = need_ptr if spec.ptr_bits is None else spec.ptr_bits
    if col < need_col:
        raise FormatError(
            f"CsrSpec.col_bits={col} cannot address n={shape[1]} columns; "
            f"use col_bits in {need_col}..64"
        )
    if ptr < need_ptr:
        raise FormatError(
            f"CsrSpec.ptr_bits={ptr} cannot count nnz={nnz}; use ptr_bits in {need_ptr}..64"
        )
    return col, ptr


def csr_bits(shape: tuple[int, int], nnz: int, spec: CsrSpec | None = None) -> int:
    """Index bits of CSR: nnz·col_bits + (m+1)·ptr_bits."""
    col, ptr = csr_widths(shape, nnz, spec or CsrSpec())
    return nnz * col + (shape[0] + 1) * ptr


class CsrFormat(Format):
    """Index bits nnz·⌈log2 n⌉ + (m+1)·⌈log2(nnz+1)⌉ (or the spec's widths)."""

    name = "csr"
    summary = "column index per non-zero + row pointers"

    def _encode(self, weights: np.ndarray, spec: CsrSpec) -> Encoded:
        m, n = weights.shape
        flat = np.ascontiguousarray(weights).ravel()
        idx = np.flatnonzero(flat)
        col_bits, ptr_bits = csr_widths(weights.shape, idx.size, spec)
        row_ptr = np.searchsorted(idx, np.arange(m + 1, dtype=np.int64) * n).astype(np.int64)
        streams = {
            "col_idx": Stream((idx % n).astype(np.int64), col_bits, "index"),
            "row_ptr": Stream(row_ptr, ptr_bits, "index"),
            "values": Stream(flat[idx], value_width(weights.dtype), "value"),
        }
        index_bits = idx.size * col_bits + (m + 1) * ptr_bits
        value_bits = idx.size * value_width(weights.dtype)
        return self._bundle(weights, spec, streams, index_bits, value_bits)

    def decode(self, enc: Encoded) -> Decoded:
        m, n = enc.shape
        row_ptr = enc.streams["row_ptr"].data
        starts = np.repeat(np.arange(m, dtype=np.int64) * n, np.diff(row_ptr))
        positions = starts + enc.streams["col_idx"].data
        weights = np.zeros(m * n, dtype=enc.dtype)
        weights[positions] = enc.streams["values"].data
        mask = np.zeros(m * n, dtype=bool)
        mask[positions] = True
        return Decoded(weights.reshape(m, n), mask.reshape(m, n))
