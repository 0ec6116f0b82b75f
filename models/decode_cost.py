"""Cost of producing a layer's column indices: DARB / BMWM against CSR.

A decoder turns a row's index data into the column of every stored value. This model
counts, per row, the **operations** it does and the **sequential steps** it needs when
``lanes`` P index units work side by side (one operation per lane per step). It is the
decoder timing rule the simulator reads; the paper's hardware could not be read, so the
model is this project's reconstruction (REFERENCES §4), stated exactly here:

* **BMWM / DARB**, row r with block size b_r = 2^k_r and B_r = ⌈n/b_r⌉ slots: one
  shift-and-or per slot, column = (j << k_r) | offset_j. The block number j is the
  slot's position and the offsets are fixed-width fields, so the B_r slots are
  independent: ``produced`` = B_r, ``steps`` = ⌈B_r / P⌉ (one step when P ≥ B_r). DARB
  also reads the row's code (``meta`` = 1 op); it sits at the fixed address r·c bits,
  so it is fetched while the previous row decodes and costs ``code_latency`` steps
  (default 0). BMWM's b is a decoder constant (``meta`` = 0).
* **CSR**, row r with nnz_r stored values: one row-pointer read (``meta`` = 1; row_ptr[0]
  is read once for the layer, counted in ``header_ops``), then nnz_r column-index
  reads, P per step. The row's extent is only known when its pointer has been read, so
  the pointer costs ``pointer_latency`` steps (default 1) before the index reads:
  ``steps`` = pointer_latency + ⌈nnz_r / P⌉ (an empty row still pays the pointer).
  ``pointer_latency`` = 0 models a pointer prefetched like DARB's row code.

``ops`` = produced + meta per row. ``index_bits`` per row are the bits the decoder reads
for that row (offsets + code; column indices + one pointer); ``header_bits`` are the
layer's bits that belong to no row (CSR's row_ptr[0]), so
``index_bits.sum() + header_bits`` equals the encoding's index bits.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from codesign.models.darb import blocks_per_row
from codesign.models.format import Encoded, FormatError


@dataclasses.dataclass(frozen=True)
class DecodeCost:
    """Per-row decode cost of a layer (arrays of shape (m,), int64) with ``lanes`` P.

    ``produced``: column indices produced (stored slots); ``ops``: operations
    (produced + metadata reads); ``steps``: sequential steps; ``index_bits``: index
    bits read; ``header_ops``/``header_bits``: work and bits of the layer outside any
    row.
    """

    format: str
    lanes: int
    produced: np.ndarray
    ops: np.ndarray
    steps: np.ndarray
    index_bits: np.ndarray
    header_ops: int = 0
    header_bits: int = 0

    @property
    def total_ops(self) -> int:
        """All operations of the layer."""
        return int(self.ops.sum()) + self.header_ops

    @property
    def total_steps(self) -> int:
        """Steps to decode the rows one after another."""
        return int(self.steps.sum())

    @property
    def max_steps(self) -> int:
        """Steps of the slowest row (the bound when rows decode in parallel)."""
        return int(self.steps.max(initial=0))

    @property
    def total_index_bits(self) -> int:
        """Index bits read for the whole layer."""
        return int(self.index_bits.sum()) + self.header_bits

    @property
    def lane_utilization(self) -> float:
        """Produced indices / (lanes × total steps): the busy fraction of the lanes."""
        return float(self.produced.sum()) / max(self.lanes * self.total_steps, 1)

    def summary(self) -> dict[str, float]:
        """Totals as plain numbers (for reports)."""
        m = max(self.produced.size, 1)
        return {
            "lanes": self.lanes,
            "total_ops": self.total_ops,
            "total_steps": self.total_steps,
            "max_steps": self.max_steps,
            "steps_per_row": self.total_steps / m,
            "lane_utilization": self.lane_utilization,
            "index_bits": self.total_index_bits,
        }


def _check_lanes(lanes: int) -> int:
    if isinstance(lanes, bool) or not isinstance(lanes, (int, np.integer)) or lanes < 1:
        raise ValueError(f"lanes must be an integer >= 1, got {lanes!r}")
    return int(lanes)


def _check_latency(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


def block_decode_cost(
    n: int,
    log_block: np.ndarray,
    lanes: int,
    code_bits: int | None = None,
    code_latency: int = 0,
) -> DecodeCost:
    """Cost of one-per-block rows of ``n`` columns with block sizes 2^log_block (m,).

    ``code_bits`` None: BMWM (no per-row code); an integer: DARB with a code of that
    many bits per row (a 0-bit code, max_block = 1, is not read).
    """
    lanes = _check_lanes(lanes)
    code_latency = _check_latency("code_latency", code_latency)
    log_block = np.asarray(log_block, dtype=np.int64)
    produced = blocks_per_row(n, log_block)
    meta = 1 if code_bits else 0
    steps = -(-produced // lanes) + (code_latency if meta else 0)
    bits = produced * log_block + (code_bits or 0)
    fmt = "bmwm" if code_bits is None else "darb"
    return DecodeCost(fmt, lanes, produced, produced + meta, steps, bits.astype(np.int64))


def csr_decode_cost(
    row_nnz: np.ndarray, col_bits: int, ptr_bits: int, lanes: int, pointer_latency: int = 1
) -> DecodeCost:
    """Cost of CSR rows holding ``row_nnz`` (m,) values, with ``col_bits``-bit column
    indices and ``ptr_bits``-bit row pointers."""
    lanes = _check_lanes(lanes)
    pointer_latency = _check_latency("pointer_latency", pointer_latency)
    produced = np.asarray(row_nnz, dtype=np.int64)
    steps = pointer_latency + -(-produced // lanes)
    bits = produced * col_bits + ptr_bits
    return DecodeCost("csr", lanes, produced, produced + 1, steps, bits, 1, ptr_bits)


def decode_cost(
    enc: Encoded, lanes: int, pointer_latency: int = 1, code_latency: int = 0
) -> DecodeCost:
    """Decode cost of an encoded layer in ``bmwm``, ``darb`` or ``csr`` with ``lanes``
    index units, read from its streams (see the module docstring for the model)."""
    m, n = enc.shape
    if enc.format == "bmwm":
        k = enc.spec.b.bit_length() - 1
        return block_decode_cost(n, np.full(m, k), lanes)
    if enc.format == "darb":
        code = enc.streams["row_code"]
        return block_decode_cost(n, code.data, lanes, code.width, code_latency)
    if enc.format == "csr":
        ptr = enc.streams["row_ptr"]
        col_bits = enc.streams["col_idx"].width
        return csr_decode_cost(np.diff(ptr.data), col_bits, ptr.width, lanes, pointer_latency)
    raise FormatError(
        f"decode_cost models the formats bmwm, darb and csr; got {enc.format!r} "
        f"(encode the layer in one of those)"
    )
