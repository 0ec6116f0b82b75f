"""One simulated layer: event simulation, closed form, energy and the product check.

:func:`simulate_layer` runs every pass of a :class:`~codesign.sim.work.LayerWork` through
:func:`codesign.sim.engine.simulate_pass` (passes run back to back, each from an empty
pipeline), compares with :func:`codesign.sim.analytical.estimate_pass`, prices the actions with
:func:`codesign.sim.energy.pass_energy` and checks the lanes' product against numpy's —
``reference @ X``, or for a convolution the layer computed from its input without im2col
(:meth:`codesign.sim.geometry.Geometry.reference`). The layer's geometry sets the columns
of X (batch × tokens or output pixels). :func:`summarize` turns results into the report's
flat figures; :func:`side_row` prices a model's side tensors (read once from DRAM).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np

from codesign.sim.analytical import estimate_pass
from codesign.sim.arch import Arch
from codesign.sim.energy import COMPONENTS, TileCells, pass_energy, sized
from codesign.sim.engine import simulate_pass
from codesign.sim.geometry import Geometry
from codesign.sim.timeline import LANE_STATES, PassResult, dram_ticks
from codesign.sim.work import LayerWork

#: Relative gap between simulation and closed form below which they "agree".
AGREEMENT = 0.02
#: Lane stall categories (:data:`codesign.sim.timeline.LANE_STATES` without ``busy``).
STALLS = LANE_STATES[1:]


@dataclasses.dataclass(frozen=True)
class LayerResult:
    """A simulated layer. ``geometry``: how it meets its input; ``columns``: columns of
    X (batch × reuse); ``passes``: per-pass results; ``estimate``: closed-form
    cycles (sum over passes) and the bound of the longest pass; ``energy_pj`` per
    component; ``decoder_cells`` / ``area_um2``: decoder area proxy (``None``: no RTL
    block); ``product_error``: max |Y_sim − reference·X| (0 for exact integer
    products); ``product_ok``: the lanes' product equals numpy's (exactly for a one-pass
    integer layer, else within max(1e-9, 4 machine epsilons of the reference's dtype) ×
    max |Y| × n); ``wall_s``: seconds
    the simulation took; ``tile_cells`` / ``tile_area_um2``: the synthesized tile's
    cells and their area, when the machine is the RTL tile and was synthesized."""

    work: LayerWork
    arch: Arch
    geometry: Geometry
    columns: int
    passes: tuple[PassResult, ...]
    estimate_cycles: int
    estimate_bound: str
    energy_pj: dict[str, float]
    actions: dict[str, float]
    decoder_cells: int | None
    area_um2: float | None
    product_error: float
    product_ok: bool
    wall_s: float
    tile_cells: TileCells | None = None
    tile_area_um2: float | None = None

    @property
    def cycles(self) -> int:
        """Simulated cycles of all passes."""
        return sum(r.cycles for r in self.passes)

    @property
    def events(self) -> int:
        """SimPy events processed."""
        return sum(r.events for r in self.passes)


def activations(shape: tuple[int, ...], arch: Arch, seed: int) -> np.ndarray:
    """An input of ``shape``: signed ``activation_bits``-bit integers drawn from
    ``seed``, float64."""
    half = 1 << (arch.activation_bits - 1)
    rng = np.random.default_rng(seed)
    return rng.integers(-half, half, size=shape).astype(np.float64)


def simulate_layer(
    work: LayerWork,
    reference: np.ndarray,
    arch: Arch,
    table: dict[str, Any],
    cells: dict[str, int],
    value_dtype: np.dtype,
    seed: int = 0,
    geometry: Geometry | None = None,
    engine: str = "auto",
    tile_cells: TileCells | None = None,
) -> LayerResult:
    """Simulate ``work`` on ``arch``; ``reference`` (m, n) is the matrix its encoding
    stands for (the product check compares with its product computed by numpy);
    ``geometry``: how the layer meets its input (default: fully connected); ``engine``:
    how the passes are timed (:data:`codesign.sim.engine.ENGINES`); ``tile_cells``: the
    synthesized tile's cells, priced instead of ``cells``
    (:func:`codesign.sim.energy.pass_energy`)."""
    geometry = Geometry() if geometry is None else geometry
    n = work.dense_shape[1]
    inputs = activations(geometry.input_shape(n, arch.batch), arch, seed)
    x = geometry.lower(inputs)
    columns = x.shape[1]
    start = time.perf_counter()
    results, y = [], x
    for p in work.passes:
        result = simulate_pass(p, arch, y, engine)
        results.append(result)
        y = result.output
    wall = time.perf_counter() - start
    estimates = [estimate_pass(p, arch, columns) for p in work.passes]
    energies = []
    for i, p in enumerate(work.passes):
        fed = inputs.size if i == 0 else p.shape[1] * columns
        acts = fed + p.shape[0] * columns
        energies.append(pass_energy(p, arch, table, value_dtype, cells, columns, acts, tile_cells))
    expect = geometry.reference(reference, inputs, _exact_dtype(reference, inputs))
    error = float(np.max(np.abs(y - expect), initial=0.0))
    scale = float(np.max(np.abs(expect), initial=0.0))
    exact = np.issubdtype(value_dtype, np.integer) and len(work.passes) == 1
    ref_dtype = np.asarray(reference).dtype
    eps = np.finfo(ref_dtype).eps if np.issubdtype(ref_dtype, np.floating) else 0.0
    tolerance = max(1e-9, 4 * eps) * max(scale, 1.0) * work.dense_shape[1]
    ok = error == 0.0 if exact else error <= tolerance
    cells_total = [e.decoder_cells for e in energies if e.decoder_cells is not None]
    areas = [e.area_um2 for e in energies if e.area_um2 is not None]
    return LayerResult(
        work=work,
        arch=arch,
        geometry=geometry,
        columns=columns,
        passes=tuple(results),
        estimate_cycles=sum(e.cycles for e in estimates),
        estimate_bound=max(estimates, key=lambda e: e.cycles).bound,
        energy_pj={c: sum(e.pj[c] for e in energies) for c in COMPONENTS},
        actions={k: sum(e.actions[k] for e in energies) for k in energies[0].actions},
        decoder_cells=max(cells_total) if cells_total else None,
        area_um2=max(areas) if areas else None,
        product_error=error,
        product_ok=bool(ok),
        wall_s=wall,
        tile_cells=tile_cells,
        tile_area_um2=None if tile_cells is None else tile_cells.area_um2(table),
    )


def _exact_dtype(reference: np.ndarray, x: np.ndarray) -> np.dtype:
    """float32 when ``reference`` is integer and every product sum of ``reference`` with
    ``x`` is below 2^24 (exact in float32, and twice as fast), else float64."""
    reference = np.asarray(reference)
    if not np.issubdtype(reference.dtype, np.integer):
        return np.dtype(np.float64)
    peak = float(np.abs(reference).max(initial=0)) * float(np.abs(x).max(initial=0))
    return np.dtype(np.float32 if peak * reference.shape[1] < 2**24 else np.float64)


def storage_label(work: LayerWork) -> str:
    """Mask format + value format of a layer: the format's name, or ``MASK+xor`` for
    XOR-coded values over another format's mask."""
    mask = getattr(work.spec, "mask_format", None)
    return f"{mask}+{work.format}" if mask else work.format


def _effects(r: LayerResult) -> dict[str, float]:
    """Cycles each named effect adds over the closed form's mean-row machine."""
    arch = r.arch
    out = {"lane imbalance": 0.0, "decoder imbalance": 0.0, "bank conflict": 0.0}
    out.update({"buffer backpressure": 0.0, "output port": 0.0, "band barrier": 0.0})
    for p in r.passes:
        out["lane imbalance"] += float(p.lane_work.max() - p.lane_work.mean())
        out["decoder imbalance"] += float(p.decoder_work.max() - p.decoder_work.mean())
        out["bank conflict"] += p.decoder_states["bank"] / arch.decoders
        out["buffer backpressure"] += float(p.dram_blocked)
        out["output port"] += float(p.port_blocked)
        out["band barrier"] += float(p.gate_blocked)
    return out


def summarize(r: LayerResult) -> dict[str, Any]:
    """Flat figures of a layer result: cycles, time, throughput, utilizations, stall
    fractions, energy by component, pJ per dense-equivalent MAC, area, the closed-form
    agreement and the named effect behind a gap, the SimPy events and the engine that
    timed the passes (``events`` is 0 for the recurrence)."""
    arch, work = r.arch, r.work
    cycles = r.cycles
    seconds = arch.cycles_to_seconds(cycles)
    dense_macs = work.dense_macs * r.columns
    lane_total = {k: sum(p.lane_cycles[k] for p in r.passes) for k in LANE_STATES}
    lane_span = max(arch.lanes * cycles, 1)
    gap = (cycles - r.estimate_cycles) / r.estimate_cycles if r.estimate_cycles else 0.0
    effects = _effects(r)
    named = max(effects, key=effects.__getitem__)
    total_pj = sum(r.energy_pj.values())
    return {
        "layer": work.name,
        "format": storage_label(work),
        "shape": list(work.dense_shape),
        "geometry": r.geometry.describe(),
        "columns": r.columns,
        "dense_macs": dense_macs,
        "total_bits": work.total_bits,
        "cycles": cycles,
        "time_us": seconds * 1e6,
        "gops": 2 * dense_macs / seconds / 1e9 if seconds else 0.0,
        "weights_per_s": work.dense_macs / seconds if seconds else 0.0,
        "util_dram": sum(p.dram_cycles for p in r.passes) / max(cycles, 1),
        "util_decoder": sum(int(p.decoder_work.sum()) for p in r.passes)
        / max(arch.decoders * cycles, 1),
        "util_lanes": lane_total["busy"] / lane_span,
        **{f"stall_{k}": lane_total[k] / lane_span for k in STALLS},
        **{f"energy_{k}_pj": v for k, v in r.energy_pj.items()},
        "energy_pj": total_pj,
        "pj_per_mac": total_pj / dense_macs if dense_macs else 0.0,
        "decoder_cells": r.decoder_cells,
        "area_um2": r.area_um2,
        "tile_cells": None if r.tile_cells is None else r.tile_cells.to_dict(),
        "tile_area_um2": r.tile_area_um2,
        "analytic_cycles": r.estimate_cycles,
        "analytic_bound": r.estimate_bound,
        "gap": gap,
        "gap_effect": "agrees" if abs(gap) <= AGREEMENT else named,
        "effects_cycles": effects,
        "product_ok": r.product_ok,
        "product_error": r.product_error,
        "events": r.events,
        "engine": ",".join(sorted({p.engine for p in r.passes})),
        "sim_wall_s": r.wall_s,
    }


def total(rows: list[dict[str, Any]], arch: Arch) -> dict[str, Any]:
    """The ``summarize`` figures of a whole workload (layers run one after another):
    sums of cycles, time and energy; utilizations and stall fractions weighted by each
    layer's cycles; the largest decoder area (and synthesized tile) of any layer."""
    cycles = sum(r["cycles"] for r in rows)
    seconds = arch.cycles_to_seconds(cycles)
    dense = sum(r["shape"][0] * r["shape"][1] for r in rows)
    macs = sum(r["dense_macs"] for r in rows)
    weight = [r["cycles"] / cycles if cycles else 1 / len(rows) for r in rows]
    out: dict[str, Any] = {
        "layer": "total",
        "format": ",".join(sorted({r["format"] for r in rows if r["dense_macs"]})),
        "total_bits": sum(r["total_bits"] for r in rows),
        "dense_macs": macs,
        "cycles": cycles,
        "time_us": seconds * 1e6,
        "gops": 2 * macs / seconds / 1e9 if seconds else 0.0,
        "weights_per_s": dense / seconds if seconds else 0.0,
        "analytic_cycles": sum(r["analytic_cycles"] for r in rows),
        "product_ok": all(r["product_ok"] for r in rows),
        "events": sum(r["events"] for r in rows),
        "sim_wall_s": sum(r["sim_wall_s"] for r in rows),
    }
    for key in ("util_dram", "util_decoder", "util_lanes", *(f"stall_{k}" for k in STALLS)):
        out[key] = sum(w * r[key] for w, r in zip(weight, rows, strict=True))
    for key in (*(f"energy_{k}_pj" for k in COMPONENTS), "energy_pj"):
        out[key] = sum(r[key] for r in rows)
    out["pj_per_mac"] = out["energy_pj"] / macs if macs else 0.0
    cells = [r["decoder_cells"] for r in rows if r["decoder_cells"] is not None]
    out["decoder_cells"] = max(cells) if cells else None
    areas = [r["area_um2"] for r in rows if r["area_um2"] is not None]
    out["area_um2"] = max(areas) if areas else None
    tiles = [r for r in rows if r.get("tile_cells") is not None]
    largest = max(tiles, key=lambda r: r["tile_cells"]["total"], default=None)
    out["tile_cells"] = None if largest is None else largest["tile_cells"]
    out["tile_area_um2"] = None if largest is None else largest["tile_area_um2"]
    gap = (
        (cycles - out["analytic_cycles"]) / out["analytic_cycles"] if out["analytic_cycles"] else 0
    )
    out["gap"] = gap
    return out


def side_row(label: str, bits: int, arch: Arch, table: dict[str, Any]) -> dict[str, Any]:
    """The :func:`summarize` figures of a model's side tensors (biases, norms): ``bits``
    read once from DRAM, dense, before the first layer — ⌈bits / (8·bandwidth)⌉ cycles
    plus the DRAM latency, while the lanes wait (``fill``); DRAM energy and one write and
    read of the weight buffer per bit, as for weights; no MAC and no decoder."""
    per_bit, per_cycle = dram_ticks(arch)
    transfer = -(-bits * per_bit // per_cycle)
    cycles = transfer + arch.dram_latency_cycles if bits else 0
    weight_sram = sized(table, "sram_read_64b_pj", arch.buffer_bytes) / 64
    energy = {
        "dram": bits / 64 * table["dram_64b_pj"],
        "sram": bits * (1 + table["sram_write_factor"]) * weight_sram,
        "mac": 0.0,
        "decoder": 0.0,
    }
    return {
        "layer": label,
        "format": "dense",
        "shape": [0, 0],
        "geometry": "-",
        "columns": 0,
        "dense_macs": 0,
        "total_bits": bits,
        "cycles": cycles,
        "time_us": arch.cycles_to_seconds(cycles) * 1e6,
        "gops": 0.0,
        "weights_per_s": 0.0,
        "util_dram": transfer / cycles if cycles else 0.0,
        "util_decoder": 0.0,
        "util_lanes": 0.0,
        **{f"stall_{k}": float(k == "fill" and cycles > 0) for k in STALLS},
        **{f"energy_{k}_pj": v for k, v in energy.items()},
        "energy_pj": sum(energy.values()),
        "pj_per_mac": 0.0,
        "decoder_cells": None,
        "area_um2": None,
        "tile_cells": None,
        "tile_area_um2": None,
        "analytic_cycles": cycles,
        "analytic_bound": "dram",
        "gap": 0.0,
        "gap_effect": "agrees",
        "effects_cycles": {},
        "product_ok": True,
        "product_error": 0.0,
        "events": 0,
        "sim_wall_s": 0.0,
    }
