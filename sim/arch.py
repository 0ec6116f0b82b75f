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
        if self.lanes % self.decoders:
            divisors = [d for d in range(1, self.lanes + 1) if self.lanes % d == 0]
            raise ConfigError(
                f"arch.decoders = {self.decoders} must divide arch.lanes = {self.lanes} "
                f"(each decoder unit feeds a fixed group of lanes); allowed: "
                f"{', '.join(map(str, divisors))}"
            )

    @property
    def lanes_per_decoder(self) -> int:
        """Lanes one decoder unit feeds (P / D)."""
        return self.lanes // self.decoders

    def cycles_to_seconds(self, cycles: float) -> float:
        """Wall time in seconds of ``cycles`` clock cycles."""
        return cycles / (self.clock_ghz * 1e9)
