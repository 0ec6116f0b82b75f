"""What the columns of a results table are called on a figure: the one table of names.

:data:`COLUMNS` maps a column (a point parameter or a metric of a stage) to its human
name and unit: ``pj_per_mac`` -> "energy per dense-equivalent MAC" in "pJ", shown as
``energy per dense-equivalent MAC (pJ)`` by :func:`axis_label`. Figures, the summary
and the demo read names and units from here only; a column missing here is shown by
its own name (with "bits" when it ends in ``_bits``), and a derived column of a sweep
config by its name and the ``unit`` the config gives it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from codesign.experiments.sweeps.stages import STAGES
from codesign.sim.energy import COMPONENTS
from codesign.sim.run import STALLS


@dataclasses.dataclass(frozen=True)
class Column:
    """A column's ``name`` in words and its ``unit`` ("" for a count of nothing in
    particular or a label)."""

    name: str
    unit: str = ""


_ACCURACY = "fraction correct"
_ACRONYMS = {"dram": "DRAM", "sram": "SRAM", "mac": "MAC"}
_LANE_CYCLES = "fraction of lane cycles"

#: Column -> its name and unit. Parameters first, then metrics by stage.
COLUMNS: dict[str, Column] = {
    # point parameters
    "format": Column("storage format"),
    "workload": Column("workload"),
    "method": Column("pruning method"),
    "storage": Column("storage (mask + values)"),
    "layer": Column("layer"),
    "sparsity": Column("sparsity", "fraction of weights pruned"),
    "quantize": Column("quantization", "bits"),
    "value_precision": Column("value precision"),
    "finetune_epochs": Column("fine-tuning", "epochs"),
    "seconds": Column("compute time", "s"),
    "spec.n_in": Column("decoder inputs n_in", "bits/cycle"),
    "spec.n_out": Column("decoder outputs n_out", "bits/cycle"),
    "spec.n_ff": Column("VD state", "flip-flops"),
    "spec.n_c": Column("comparator width", "bits"),
    "spec.n_s": Column("XOR decoder depth", "blocks"),
    "spec.threshold": Column("comparator threshold", "of 2^n_c"),
    "spec.value_bits": Column("value precision", "bits"),
    "spec.r": Column("relative index", "bits"),
    "spec.n": Column("N:M kept per group", "weights"),
    "spec.m": Column("N:M group", "weights"),
    "spec.b": Column("block size", "weights"),
    "spec.max_block": Column("largest block", "weights"),
    "spec.rank": Column("LBI rank", "binary factors"),
    "spec.semiring": Column("LBI semiring"),
    "spec.mask_format": Column("mask format"),
    "spec.tile_rows": Column("tile height", "rows"),
    "spec.tile_cols": Column("tile width", "columns"),
    "spec.segment": Column("segment length", "steps"),
    "spec.energy": Column("kept SVD energy", "fraction of Σσ²"),
    "arch.block": Column("hardware block"),
    "arch.index_units": Column("index units", "count"),
    "arch.lanes": Column("MAC lanes", "count"),
    "arch.decoders": Column("decoder units", "count"),
    "arch.buffer_banks": Column("buffer banks", "count"),
    "arch.dram_bytes_per_cycle": Column("DRAM bandwidth", "bytes/cycle"),
    "arch.n_cols": Column("matrix columns", "columns"),
    "arch.max_segment": Column("longest segment", "steps"),
    "arch.block_bits": Column("patch block number", "bits"),
    # compress
    "index_bits_per_weight": Column("index storage", "bits/weight"),
    "value_bits_per_weight": Column("value storage", "bits/weight"),
    "bits_per_weight": Column("storage", "bits/weight"),
    "total_bits": Column("total storage", "bits"),
    "index_bits": Column("index storage", "bits"),
    "value_bits": Column("value storage", "bits"),
    "ratio_vs_dense": Column("compression vs dense", "×"),
    "ratio_vs_csr": Column("compression vs CSR", "×"),
    "kept_fraction": Column("kept weights", "fraction of weights"),
    "nnz": Column("non-zeros", "weights"),
    "weights": Column("weights", "weights"),
    "pruned_fraction": Column("pruned weights", "fraction of weights"),
    "pruning_ratio": Column("pruning ratio", "×"),
    "kept_mass_ratio": Column("kept |w| mass", "vs magnitude pruning"),
    "efficiency": Column("XOR encoding efficiency", "care bits/stored bit"),
    "entropy_bound": Column("entropy bound", "×"),
    "no_patch_block_fraction": Column("blocks without a patch", "fraction of blocks"),
    "decode_steps": Column("decode steps", "steps"),
    "decode_steps_per_row": Column("decode steps per row", "steps/row"),
    "decode_max_steps": Column("slowest row", "steps"),
    "decode_ops": Column("decode operations", "operations"),
    "decode_ops_per_kept": Column("decode operations per kept weight", "operations/weight"),
    "lane_utilization": Column("index-unit utilization", "fraction of lane-steps"),
    # prune
    "dense_accuracy": Column("dense accuracy", _ACCURACY),
    "accuracy_pruned": Column("accuracy pruned", _ACCURACY),
    "accuracy_finetuned": Column("accuracy fine-tuned", _ACCURACY),
    "accuracy_loss": Column("accuracy loss", "fraction correct, dense − compressed"),
    "param_reduction": Column("fewer parameters", "×"),
    "mac_reduction": Column("fewer MACs", "×"),
    # synth
    "cells": Column("decoder cells", "gates + flip-flops"),
    "dff": Column("flip-flops", "flip-flops"),
    "logic_cells": Column("logic cells", "gates"),
    "depth": Column("logic depth", "gate levels"),
    "luts": Column("FPGA LUTs", "4-input LUTs"),
    "ffs": Column("FPGA flip-flops", "flip-flops"),
    "fmax_mhz": Column("Fmax", "MHz"),
    # simulate
    "cycles": Column("cycles", "cycles"),
    "time_us": Column("time", "µs"),
    "gops": Column("throughput", "dense-equivalent GOPS"),
    "weights_per_s": Column("weights decoded", "weights/s"),
    "util_dram": Column("DRAM utilization", "fraction of cycles"),
    "util_decoder": Column("decoder utilization", "fraction of decoder-unit cycles"),
    "util_lanes": Column("MAC lane utilization", _LANE_CYCLES),
    **{
        f"stall_{k}": Column(f"lanes stalled on {k.replace('_', ' ')}", _LANE_CYCLES)
        for k in STALLS
    },
    **{f"energy_{k}_pj": Column(f"{_ACRONYMS.get(k, k)} energy", "pJ") for k in COMPONENTS},
    "energy_pj": Column("energy", "pJ"),
    "pj_per_mac": Column("energy per dense-equivalent MAC", "pJ"),
    "decoder_cells": Column("decoder cells", "generic cells"),
    "area_um2": Column("decoder area", "µm²"),
    "analytic_cycles": Column("closed-form cycles", "cycles"),
    "gap": Column("simulated vs closed form", "(simulated − closed form) / closed form"),
    "events": Column("simulation events", "events"),
    "sim_wall_s": Column("simulation time", "s"),
    "layers": Column("layers", "layers"),
    "encode_s": Column("encoding time", "s"),
}


def _entry(column: str) -> Column | None:
    """The table's entry of ``column``; a metric two stages give is stored under
    ``STAGE.metric`` and takes the metric's entry."""
    stage, dot, metric = column.partition(".")
    return COLUMNS.get(column) or (COLUMNS.get(metric) if dot and stage in STAGES else None)


def column_name(column: str) -> str:
    """The human name of ``column``, else ``column`` itself."""
    entry = _entry(column)
    return entry.name if entry else column


def unit_of(column: str, units: Mapping[str, str] | None = None) -> str:
    """The unit of ``column``: ``units`` (a sweep config's derived columns) first, then
    :data:`COLUMNS`, then "bits" for a name ending in ``_bits``; "" when none."""
    if units and column in units:
        return units[column]
    entry = _entry(column)
    if entry:
        return entry.unit
    return "bits" if column.endswith("_bits") else ""


def axis_label(column: str, units: Mapping[str, str] | None = None) -> str:
    """``name (unit)`` of ``column`` (:func:`column_name`, :func:`unit_of`); the name
    alone when it has no unit."""
    unit = unit_of(column, units)
    return f"{column_name(column)} ({unit})" if unit else column_name(column)
