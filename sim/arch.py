"""The accelerator's architecture parameters.

A weight-stationary sparse matrix engine computing Y = W·X (X: n × B) layer by layer:
one DRAM channel streams each layer's compressed rows, in row order, into an on-chip
weight buffer of ``buffer_bytes`` split into ``buffer_banks`` banks; ``decoders``
decoder units (one per buffer read port) each read a whole row from a bank at
``bank_bytes_per_cycle`` and decode it (the format's timing rule); a decoded row
waits in its MAC lane's FIFO (``lane_fifo_rows`` deep); ``lanes`` MAC lanes do one
multiply-accumulate per cycle each, ``batch`` per stored operand. Row r goes to lane
r mod P and decoder unit r mod D (D divides P, so a decoder unit feeds a fixed group of
P/D lanes). Activations and outputs stay on chip between layers (activation SRAM
reads and writes are counted as energy, not as DRAM traffic).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from codesign.config_files import integer_hint
from codesign.limits import Need


class ConfigError(ValueError):
    """A simulator configuration names an unknown key, misses one, or asks for an
    impossible machine; the message names the key and the allowed values."""


@dataclasses.dataclass(frozen=True)
class Arch:
    """Architecture of the simulated accelerator (units in the field names).

    ``clock_ghz``: clock frequency (GHz); ``lanes``: P MAC lanes; ``decoders``: D
    decoder units (must divide P); ``batch``: B columns of X; ``dram_bytes_per_cycle``
    and ``dram_latency_cycles``: the DRAM channel (a row is usable ``latency`` cycles
    after its last byte leaves the channel; requests are pipelined);
    ``buffer_bytes``, ``buffer_banks``, ``bank_bytes_per_cycle``: the compressed-weight
    buffer; ``lane_fifo_rows``: decoded rows queued per lane; ``activation_bits`` and
    ``accumulator_bits``: widths of X/Y elements and of the accumulators;
    ``bitmap_slice_bits``: mask bits a bitmap decoder emits per cycle;
    ``index_units``: index units of the CSR/BMWM/DARB decoders (column indices formed
    per cycle).
    """

    clock_ghz: float = 1.0
    lanes: int = 16
    decoders: int = 4
    batch: int = 1
    dram_bytes_per_cycle: float = 16.0
    dram_latency_cycles: int = 100
    buffer_bytes: int = 64 * 1024
    buffer_banks: int = 4
    bank_bytes_per_cycle: int = 16
    lane_fifo_rows: int = 2
    activation_bits: int = 8
    accumulator_bits: int = 32
    bitmap_slice_bits: int = 64
    index_units: int = 1

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            lo, hi = _RANGES[f.name]
            _check(f.name, getattr(self, f.name), f.type == "float", lo, hi)
        if self.lanes % self.decoders:
            top = min(self.lanes, LISTED_DIVISORS)
            listed = [d for d in range(1, top + 1) if self.lanes % d == 0]
            more = f" (divisors up to {top} listed)" if self.lanes > top else ""
            raise ConfigError(
                f"arch.decoders = {self.decoders} must divide arch.lanes = {self.lanes} "
                f"(each decoder unit feeds a fixed group of lanes); allowed: "
                f"{', '.join(map(str, listed))}{more}"
            )

    @property
    def lanes_per_decoder(self) -> int:
        """Lanes one decoder unit feeds (P / D)."""
        return self.lanes // self.decoders

    def cycles_to_seconds(self, cycles: float) -> float:
        """Wall time in seconds of ``cycles`` clock cycles."""
        return cycles / (self.clock_ghz * 1e9)

    def memory_needs(self, rows: int, cols: int, columns: int) -> list[Need]:
        """Peak memory of simulating one pass of an (rows, cols) matrix on this machine
        with ``columns`` columns of X (batch × reuse): the SimPy processes and queues of
        every lane, decoder unit and row, and the activations, outputs and reference
        product (float64; measured per object, see :data:`LANE_BYTES`)."""
        return [
            Need(self.lanes * LANE_BYTES, f"{self.lanes:,} simulated MAC lanes", "arch.lanes"),
            Need(
                self.decoders * DECODER_BYTES,
                f"{self.decoders:,} simulated decoder units",
                "arch.decoders",
            ),
            Need(rows * ROW_BYTES, f"the events of {rows:,} rows", "the layer's rows"),
            Need(
                (rows + cols) * columns * ACTIVATION_BYTES,
                f"activations and outputs of {columns:,} columns of X",
                "arch.batch (or the layer's tokens / output pixels)",
            ),
        ]


#: Most divisors of ``lanes`` an error lists (those up to this number).
LISTED_DIVISORS = 64
#: Peak bytes per simulated MAC lane, decoder unit and matrix row (SimPy containers,
#: stores, processes and their logs; measured on 200,000 of each: 2.0, 1.0 and 0.9 KiB,
#: rounded up), and per activation or output value and column (X, Y, the reference
#: product and their temporaries: 2.3 × 8 bytes measured, rounded up).
LANE_BYTES = 2560
DECODER_BYTES = 1536
ROW_BYTES = 1280
ACTIVATION_BYTES = 24

#: Allowed range of every field: (lowest, highest or None), inclusive; a float field
#: must also be finite and its lowest bound is exclusive when it is 0.
_RANGES: dict[str, tuple[float, float | None]] = {
    "clock_ghz": (0, None),
    "lanes": (1, None),
    "decoders": (1, None),
    "batch": (1, None),
    "dram_bytes_per_cycle": (0, None),
    "dram_latency_cycles": (0, None),
    "buffer_bytes": (1, None),
    "buffer_banks": (1, None),
    "bank_bytes_per_cycle": (1, None),
    "lane_fifo_rows": (1, None),
    "activation_bits": (1, 64),
    "accumulator_bits": (1, 64),
    "bitmap_slice_bits": (1, None),
    "index_units": (1, None),
}
#: The configuration key of each field kept in a group of the YAML ``arch`` mapping.
NESTED_KEYS = {
    "dram_bytes_per_cycle": ("dram", "bytes_per_cycle"),
    "dram_latency_cycles": ("dram", "latency_cycles"),
    "buffer_bytes": ("buffer", "bytes"),
    "buffer_banks": ("buffer", "banks"),
    "bank_bytes_per_cycle": ("buffer", "bank_bytes_per_cycle"),
}


def _check(field: str, value: Any, real: bool, lo: float, hi: float | None) -> None:
    key = "arch." + ".".join(NESTED_KEYS.get(field, (field,)))
    if real:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok or not math.isfinite(value) or not value > lo:
            raise ConfigError(f"{key} = {value!r}; allowed: a finite number > {lo}")
        return
    allowed = f"an integer in {lo}..{hi}" if hi is not None else f"an integer >= {lo}"
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{key} = {value!r}; allowed: {allowed}{integer_hint(value)}")
    if value < lo or (hi is not None and value > hi):
        raise ConfigError(f"{key} = {value}; allowed: {allowed}")
