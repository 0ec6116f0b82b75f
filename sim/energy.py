"""Energy and area: action counts of a simulated pass × an energy table.

The default table is the 45 nm one of Horowitz (ISSCC 2014): integer and floating-point
add / multiply, 64-bit SRAM reads by array size, DRAM per 64 bits (the midpoint of the
quoted 1.3–2.6 nJ). A YAML file may replace any entry (keys as in
:data:`DEFAULT_TABLE`; nested tables merge entry by entry) and its ``name`` is what
every report prints. Decoder energy is the synthesized block's generic cell count ×
``decoder_activity`` (fraction of cells toggling per active cycle) ×
``cell_toggle_pj`` per active cycle, and its area proxy the same cells ×
``cell_area_um2``; a decoder without an RTL block is charged ``estimated_decoder_pj``
per active cycle and has no area figure. On the RTL tile with its synthesis
(:class:`TileCells`) a decoder unit's cells — its decoder, bank, record and row logic,
as synthesized inside the tile — replace the per-decoder counts: a unit is charged
its cells × ``decoder_activity`` × ``cell_toggle_pj`` per cycle any of its decoders is
busy, the decoder area is the D units' cells × ``cell_area_um2``, and the whole tile's
logic cells (units, lanes, X memory, dispatcher, output arbiter) × ``cell_area_um2`` plus
its memory bits × ``sram_bit_area_um2`` (a 45 nm 6T SRAM bit cell, 0.346 µm², Intel
IEDM 2007; no array periphery) is the machine's area proxy. The lanes'
multiply-accumulates and the memories stay priced by the actions below.

Actions per pass (columns = columns of X: the batch B times the reuse of
:mod:`codesign.sim.geometry`; operands = stored values the lanes multiply):

* DRAM: every compressed bit, once.
* SRAM: each compressed bit written into and read out of the weight buffer (array size
  ``buffer_bytes``); one activation read per multiply-accumulate and one output write
  per row and column (``activation_bits`` each; array size = the layer's input and
  output activations, at least the smallest table entry).
* MAC: one multiply at max(value bits, activation bits) and one add at
  ``accumulator_bits`` per operand and column (floating point when the values
  are floats); an entry is taken at the smallest tabulated width ≥ the width needed
  (the largest when none is).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np

from codesign.config_files import load_yaml
from codesign.sim.arch import Arch, ConfigError
from codesign.sim.work import Pass

#: Energy components of a report, in order.
COMPONENTS = ("dram", "sram", "mac", "decoder")

DEFAULT_TABLE: dict[str, Any] = {
    "name": "Horowitz ISSCC 2014, 45 nm",
    "int_add_pj": {8: 0.03, 32: 0.1},
    "int_mult_pj": {8: 0.2, 32: 3.1},
    "fp_add_pj": {16: 0.4, 32: 0.9},
    "fp_mult_pj": {16: 1.1, 32: 3.7},
    "sram_read_64b_pj": {8192: 10.0, 32768: 20.0, 1048576: 100.0},
    "sram_write_factor": 1.0,
    "dram_64b_pj": 1950.0,
    "cell_toggle_pj": 0.002,
    "decoder_activity": 0.25,
    "cell_area_um2": 1.5,
    "sram_bit_area_um2": 0.346,
    "estimated_decoder_pj": 0.1,
}

_SIZED = ("int_add_pj", "int_mult_pj", "fp_add_pj", "fp_mult_pj", "sram_read_64b_pj")


def load_table(source: str | Path | None) -> dict[str, Any]:
    """The default table (``None`` or ``"default"``) or the default updated with a YAML
    file's entries; unknown keys and non-positive energies raise :class:`ConfigError`."""
    table = copy.deepcopy(DEFAULT_TABLE)
    if source is None or source == "default":
        return table
    path = Path(source)
    try:
        loaded = load_yaml(path, ConfigError)
    except ConfigError as exc:
        raise ConfigError(f"energy_table: {exc}") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"energy_table: {path} must hold a mapping of table entries")
    for key, value in loaded.items():
        if key not in table:
            raise ConfigError(
                f"energy_table: unknown key {key!r} in {path}; allowed: {', '.join(table)}"
            )
        if key in _SIZED:
            if not isinstance(value, dict) or not value:
                raise ConfigError(f"energy_table.{key} in {path}: expected a mapping width -> pJ")
            table[key] = {
                _width(path, key, k): _positive(f"{key}.{k}", v) for k, v in value.items()
            }
        elif key == "name":
            table[key] = str(value)
        else:
            table[key] = _positive(key, value)
    if "name" not in loaded:
        table["name"] = f"{path.name} (over {DEFAULT_TABLE['name']})"
    return table


def _positive(key: str, value: Any) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or not value >= 0:
        raise ConfigError(f"energy_table.{key} must be a finite number >= 0, got {value!r}")
    return float(value)


def _width(path: Path, key: str, width: Any) -> int:
    """A width (bits) or array size (bytes) key of a sized entry: an integer >= 1."""
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        what = "array size in bytes" if key.startswith("sram") else "width in bits"
        raise ConfigError(
            f"energy_table.{key} in {path}: key {width!r} is not a {what}; allowed: "
            f"integers >= 1 mapping to pJ, e.g. {{8: 0.03, 32: 0.1}}"
        )
    return width


def sized(table: dict[str, Any], key: str, width: int) -> float:
    """The entry of ``table[key]`` at the smallest tabulated width (or size) ≥ ``width``,
    else the largest."""
    entries = table[key]
    fitting = [w for w in entries if w >= width]
    return float(entries[min(fitting)] if fitting else entries[max(entries)])


@dataclasses.dataclass(frozen=True)
class TileCells:
    """Generic cells of the synthesized RTL tile (:mod:`codesign.hw.tile`, hierarchy
    kept): ``units`` per decoder unit (its decoder, bank, record and row logic),
    ``lanes`` per MAC lane (slots, value memory, multiplier, accumulators, output
    queue) and ``top`` the tile's own (X memory, dispatcher, output arbiter): logic
    cells (gates and flip-flops); ``memory_bits``: the bits of its memories (banks,
    value slots, output queues, X), kept as arrays."""

    units: tuple[int, ...]
    lanes: tuple[int, ...]
    top: int
    memory_bits: int

    def area_um2(self, table: dict[str, Any]) -> float:
        """Logic cells × ``cell_area_um2`` + memory bits × ``sram_bit_area_um2``."""
        return self.total * table["cell_area_um2"] + self.memory_bits * table["sram_bit_area_um2"]

    @property
    def total(self) -> int:
        """Logic cells of the whole tile."""
        return sum(self.units) + sum(self.lanes) + self.top

    def to_dict(self) -> dict[str, Any]:
        """The counts as a JSON-ready dict, with the ``total``."""
        return {
            "units": list(self.units),
            "lanes": list(self.lanes),
            "top": self.top,
            "total": self.total,
            "memory_bits": self.memory_bits,
        }


@dataclasses.dataclass(frozen=True)
class Energy:
    """Energy of a pass in pJ per component of :data:`COMPONENTS`, the actions counted,
    and the decoder area proxy (generic cells and µm²; ``None`` without RTL), and on the
    synthesized tile its cells (:class:`TileCells`)."""

    pj: dict[str, float]
    actions: dict[str, float]
    decoder_cells: int | None
    area_um2: float | None
    tile: TileCells | None = None

    @property
    def total_pj(self) -> float:
        """Sum of the components in pJ."""
        return float(sum(self.pj.values()))


def pass_energy(
    p: Pass,
    arch: Arch,
    table: dict[str, Any],
    value_dtype: np.dtype,
    cells: dict[str, int],
    columns: int | None = None,
    activation_values: int | None = None,
    tile: TileCells | None = None,
) -> Energy:
    """Energy of pass ``p``. ``value_dtype``: dtype of the stored values (float →
    floating-point MACs); ``cells``: generic cell count per decoder block name (a block
    missing here is charged as a decoder without RTL); ``columns``: columns of X
    (default: the batch); ``activation_values``: input plus output activations of the
    layer (default: (n + m)·columns); ``tile``: the synthesized tile's cells, which
    replace ``cells`` (module docstring)."""
    columns = arch.batch if columns is None else columns
    if activation_values is None:
        activation_values = (p.shape[1] + p.shape[0]) * columns
    bits = float(p.row_bits.sum())
    macs = float(p.macs.sum()) * columns
    outputs = float(p.rows * columns)
    value_bits = np.dtype(value_dtype).itemsize * 8
    is_float = np.issubdtype(value_dtype, np.floating)
    mult_key, add_key = ("fp_mult_pj", "fp_add_pj") if is_float else ("int_mult_pj", "int_add_pj")
    mac_pj = sized(table, mult_key, max(value_bits, arch.activation_bits)) + sized(
        table, add_key, arch.accumulator_bits
    )
    act_bytes = activation_values * arch.activation_bits // 8
    weight_sram = sized(table, "sram_read_64b_pj", arch.buffer_bytes) / 64
    act_sram = sized(table, "sram_read_64b_pj", act_bytes) / 64
    write = table["sram_write_factor"]
    act_bits = (macs + outputs * write) * arch.activation_bits
    actions = {
        "dram_bits": bits,
        "weight_sram_bits": bits * 2,
        "activation_sram_bits": act_bits,
        "macs": macs,
    }
    pj = {
        "dram": bits / 64 * table["dram_64b_pj"],
        "sram": bits * (1 + write) * weight_sram + act_bits * act_sram,
        "mac": macs * mac_pj,
    }
    if tile is not None:
        busy = [use.active_cycles for use in p.decoders]
        unit_cycles = float(np.maximum.reduce(busy).sum()) if busy else 0.0
        per_cycle = table["decoder_activity"] * table["cell_toggle_pj"]
        unit_cells = sum(tile.units)
        return Energy(
            pj={**pj, "decoder": unit_cycles * unit_cells / len(tile.units) * per_cycle},
            actions={**actions, "decoder_active_cycles": unit_cycles},
            decoder_cells=unit_cells,
            area_um2=unit_cells * table["cell_area_um2"],
            tile=tile,
        )
    decoder_pj, total_cells, active = 0.0, 0, 0.0
    for use in p.decoders:
        cycles = float(use.active_cycles.sum()) * use.copies
        active += cycles
        if use.block in cells:
            total_cells += cells[use.block] * use.copies
            decoder_pj += (
                cells[use.block] * cycles * table["decoder_activity"] * table["cell_toggle_pj"]
            )
        else:
            decoder_pj += cycles * table["estimated_decoder_pj"]
    has_rtl = any(use.block in cells for use in p.decoders)
    return Energy(
        pj={**pj, "decoder": decoder_pj},
        actions={**actions, "decoder_active_cycles": active},
        decoder_cells=total_cells * arch.decoders if has_rtl else None,
        area_um2=total_cells * arch.decoders * table["cell_area_um2"] if has_rtl else None,
    )
