"""Quantization of a weight matrix into bit-planes, and back.

Two quantizers (``quant``), each giving ``value_bits`` planes of shape (m, n), 0/1:

* ``uniform``: symmetric uniform quantization (:func:`codesign.models.workloads.quantize_symmetric`,
  step ``scale`` = max|w| / (2^(b−1) − 1)) to b-bit integers q, stored as b-bit two's
  complement; plane i is bit i of q (plane 0 = least significant, plane b−1 = sign).
  Value = q·scale. Integer weights whose values fit b-bit two's complement
  (−2^(b−1) … 2^(b−1) − 1) are taken as q directly, with no scale; the values are
  then the integers themselves.
* ``binary``: greedy binary-coding quantization, w ≈ Σ_i α_i·b_i with b_i ∈ {−1, +1}
  and one α_i per layer and plane: starting from the residual r_0 = w, for
  i = 0 … b−1, b_i = sign(r_i) (+1 at r_i = 0), α_i = mean |r_i| over the non-zero
  weights, r_{i+1} = r_i − α_i·b_i. Plane i holds b_i as a bit: 0 for +1, 1 for −1.
  Only the non-zero weights are coded; the planes are 0 at zero weights. Value =
  Σ_i α_i·(1 − 2·bit_i), summed in float32 in plane order.

Scales (the uniform step, or the alphas) are stored as float32, :data:`SCALE_BITS`
bits each. Floating input dequantizes to float32; the dequantized values are computed
by :func:`planes_to_values` from the stored float32 scales, so encoder and decoder
agree bit for bit.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from codesign.models.format import FormatError
from codesign.models.workloads import quantize_symmetric

__all__ = ["QUANTS", "SCALE_BITS", "BitPlanes", "planes_to_values", "to_bitplanes"]

QUANTS = ("uniform", "binary")
SCALE_BITS = 32


@dataclasses.dataclass(frozen=True)
class BitPlanes:
    """A quantized matrix as bit-planes.

    ``planes``: ``uint8`` 0/1, shape (value_bits, m, n); ``scales``: float32 — (1,) the
    uniform step, (value_bits,) the binary-coding alphas, or (0,) for integer input;
    ``quant``: ``uniform`` or ``binary``; ``dtype``: dtype of the values (float32, or
    the integer input's dtype).
    """

    planes: np.ndarray
    scales: np.ndarray
    quant: str
    dtype: np.dtype

    def values(self) -> np.ndarray:
        """The quantized values (m, n) at every position (see :func:`planes_to_values`)."""
        return planes_to_values(self.planes, self.scales, self.quant, self.dtype)


def _check_quant(quant: str) -> None:
    if quant not in QUANTS:
        raise FormatError(f"quant must be one of {', '.join(QUANTS)}, got {quant!r}")


def to_bitplanes(weights: np.ndarray, value_bits: int, quant: str) -> BitPlanes:
    """Quantize ``weights`` (m, n) to ``value_bits`` planes with ``quant``.

    Raises :class:`FormatError` for integer weights with ``binary`` quantization or
    with values outside ``value_bits``-bit two's complement, and for floating weights
    with ``uniform`` quantization and ``value_bits`` = 1 (no symmetric level).
    """
    _check_quant(quant)
    integer = np.issubdtype(weights.dtype, np.integer)
    if quant == "binary":
        if integer:
            raise FormatError(
                "quant='binary' needs floating weights; integer weights are stored as-is "
                "with quant='uniform'"
            )
        return _binary_coding(weights, value_bits)
    if integer:
        return _integer_planes(weights, value_bits)
    if value_bits < 2:
        raise FormatError(
            f"quant='uniform' needs value_bits >= 2 for floating weights (one sign bit plus "
            f"at least one magnitude bit), got {value_bits}; use value_bits 2..16 or "
            f"quant='binary'"
        )
    q, scale = quantize_symmetric(weights, value_bits)
    scales = np.array([scale], dtype=np.float32)
    return BitPlanes(_twos_complement(q, value_bits), scales, "uniform", np.dtype(np.float32))


def _integer_planes(weights: np.ndarray, value_bits: int) -> BitPlanes:
    lo, hi = -(2 ** (value_bits - 1)), 2 ** (value_bits - 1) - 1
    wmin, wmax = int(weights.min()), int(weights.max())
    if wmin < lo or wmax > hi:
        need = max(value_bits, _signed_bits(wmin), _signed_bits(wmax))
        raise FormatError(
            f"integer weights span [{wmin}, {wmax}], outside {value_bits}-bit two's "
            f"complement [{lo}, {hi}]; use value_bits >= {need}"
        )
    planes = _twos_complement(weights, value_bits)
    return BitPlanes(planes, np.zeros(0, dtype=np.float32), "uniform", weights.dtype)


def _signed_bits(v: int) -> int:
    """Bits of the smallest two's complement holding ``v``."""
    return (v if v >= 0 else -v - 1).bit_length() + 1


def _twos_complement(q: np.ndarray, value_bits: int) -> np.ndarray:
    code = q.astype(np.int64) & ((1 << value_bits) - 1)
    shifts = np.arange(value_bits, dtype=np.int64)[:, None, None]
    return ((code[None] >> shifts) & 1).astype(np.uint8)


def _binary_coding(weights: np.ndarray, value_bits: int) -> BitPlanes:
    kept = weights != 0
    residual = weights[kept].astype(np.float64)
    planes = np.zeros((value_bits,) + weights.shape, dtype=np.uint8)
    alphas = np.zeros(value_bits, dtype=np.float32)
    for i in range(value_bits):
        negative = residual < 0
        alphas[i] = np.abs(residual).mean() if residual.size else 0.0
        planes[i][kept] = negative
        residual -= np.where(negative, -1.0, 1.0) * float(alphas[i])
    return BitPlanes(planes, alphas, "binary", np.dtype(np.float32))


def planes_to_values(
    planes: np.ndarray, scales: np.ndarray, quant: str, dtype: np.dtype
) -> np.ndarray:
    """Values (m, n) of ``planes`` (value_bits, m, n) 0/1 with the stored ``scales``.

    ``uniform``: q = the two's complement integer of the planes; the values are q as
    ``dtype`` when ``scales`` is empty (integer input), else float32 q·scales[0].
    ``binary``: float32 Σ_i scales[i]·(1 − 2·planes[i]).
    """
    _check_quant(quant)
    value_bits = planes.shape[0]
    if quant == "binary":
        values = np.zeros(planes.shape[1:], dtype=np.float32)
        for i in range(value_bits):
            values += np.where(planes[i] != 0, -scales[i], scales[i]).astype(np.float32)
        return values
    code = np.zeros(planes.shape[1:], dtype=np.int64)
    for i in range(value_bits):
        code |= planes[i].astype(np.int64) << i
    q = code - ((code >> (value_bits - 1)) << value_bits)
    if scales.size == 0:
        return q.astype(dtype)
    return q.astype(np.float32) * scales[0]
