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

With ``tile_n_cols`` set the machine is the RTL tile of :mod:`codesign.hw.tile`
(:class:`~codesign.models.tile.TileSpec`, :func:`tile_arch`): the channel carries the
tile's row records (whole words of ``dram_bytes_per_cycle`` bytes, the stream's width),
each decoder unit has its bank (``buffer_banks`` = ``decoders``, ``buffer_bytes`` split
evenly), a row reaches its lane :data:`~codesign.models.tile.HANDOFF_CYCLES` after its
unit is done, and results leave through one output port, a row per cycle,
:data:`~codesign.models.tile.OUTPUT_CYCLES` after their last multiply-accumulate.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from codesign.config_files import integer_hint
from codesign.limits import Need
from codesign.models.specs import Spec
from codesign.models.tile import OUTPUT_CYCLES, TileError, TileSpec


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
    per cycle); ``tile_n_cols``: 0 for the abstract machine, else the machine is the RTL
    tile with that many columns (module docstring; :meth:`tile_spec`), and
    ``tile_row_bits`` the bits of its row index (layers of up to 2^row_bits rows).
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
    tile_n_cols: int = 0
    tile_row_bits: int = 16

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
        if self.tile_n_cols:
            self._check_tile()

    @property
    def is_tile(self) -> bool:
        """The machine is the RTL tile (``tile_n_cols`` set)."""
        return self.tile_n_cols > 0

    def _check_tile(self) -> None:
        width = self.dram_bytes_per_cycle
        rules = [
            (
                width == int(width) and int(width) == self.bank_bytes_per_cycle,
                f"arch.dram.bytes_per_cycle = {width} and arch.buffer.bank_bytes_per_cycle = "
                f"{self.bank_bytes_per_cycle} must both be the tile's stream width (one "
                f"word per cycle in and out of a bank)",
            ),
            (
                self.buffer_banks == self.decoders,
                f"arch.buffer.banks = {self.buffer_banks} must equal arch.decoders = "
                f"{self.decoders} (a bank per decoder unit)",
            ),
            (
                self.buffer_bytes % (self.decoders * self.bank_bytes_per_cycle) == 0,
                f"arch.buffer.bytes = {self.buffer_bytes} must be a whole number of words "
                f"per bank ({self.decoders} banks of {self.bank_bytes_per_cycle}-byte words)",
            ),
            (self.index_units == 1, "arch.index_units must be 1 (the tile's CSR decoder)"),
        ]
        for ok, message in rules:
            if not ok:
                raise ConfigError(f"arch.tile: {message}")
        try:
            self.tile_spec()
        except TileError as exc:
            raise ConfigError(f"arch.tile: {exc}") from None

    def tile_spec(self, format_spec: Spec | None = None) -> TileSpec:
        """The :class:`~codesign.models.tile.TileSpec` this machine mirrors, with
        ``format_spec`` (default: CSR); only when :attr:`is_tile`."""
        if not self.is_tile:
            raise ConfigError("arch.tile is not set: the machine is not the RTL tile")
        extra = {} if format_spec is None else {"format_spec": format_spec}
        return TileSpec(
            **{own: getattr(self, field) for own, field in TILE_FIELDS.items()},
            bank_words=self.buffer_bytes // (self.decoders * self.bank_bytes_per_cycle),
            **extra,
        )

    @property
    def output_cycles(self) -> int | None:
        """Cycles from a row's last multiply-accumulate to its result leaving through the
        tile's output port (one row a cycle); None: no port (the abstract machine)."""
        return OUTPUT_CYCLES if self.is_tile else None

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
    "tile_n_cols": (0, 4096),
    "tile_row_bits": (1, 32),
}
#: The configuration key of each field kept in a group of the YAML ``arch`` mapping.
NESTED_KEYS = {
    "dram_bytes_per_cycle": ("dram", "bytes_per_cycle"),
    "dram_latency_cycles": ("dram", "latency_cycles"),
    "buffer_bytes": ("buffer", "bytes"),
    "buffer_banks": ("buffer", "banks"),
    "bank_bytes_per_cycle": ("buffer", "bank_bytes_per_cycle"),
    "tile_n_cols": ("tile", "n_cols"),
    "tile_row_bits": ("tile", "row_bits"),
}


#: :class:`~codesign.models.tile.TileSpec` fields -> the :class:`Arch` fields that mirror
#: them (the stream width is also the DRAM bandwidth; the banks are the buffer).
TILE_FIELDS = {
    "lanes": "lanes",
    "decoders": "decoders",
    "fifo_rows": "lane_fifo_rows",
    "stream_bytes": "bank_bytes_per_cycle",
    "n_cols": "tile_n_cols",
    "row_bits": "tile_row_bits",
    "batch": "batch",
    "activation_bits": "activation_bits",
    "accumulator_bits": "accumulator_bits",
}


def tile_arch(tile: TileSpec, clock_ghz: float = 1.0) -> Arch:
    """The machine that mirrors ``tile``: its lanes, units, FIFO rows, stream width (DRAM
    bytes per cycle, bank width; no DRAM latency: the stream is the tile's input), banks
    of ``bank_words`` words, batch, widths and columns."""
    return Arch(
        clock_ghz=clock_ghz,
        **{field: getattr(tile, own) for own, field in TILE_FIELDS.items()},
        dram_bytes_per_cycle=float(tile.stream_bytes),
        dram_latency_cycles=0,
        buffer_bytes=tile.decoders * tile.bank_words * tile.stream_bytes,
        buffer_banks=tile.decoders,
    )


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
