"""The stages a sweep point can run, by name.

A stage is a function ``point -> {metric: number | str | bool}`` plus what the sweep
needs to check a point before running it (:class:`Stage`). A point is a small JSON
dict (see :mod:`.config`): ``workload``, ``format``, ``spec`` (every field of
the format's spec), ``sparsity``, ``quantize``, ``overrides`` (per-layer settings by
name pattern, :mod:`codesign.models.overrides`), ``arch`` and ``stages``, plus the extra
fields its stages declare (``method``, ``finetune_epochs``, ``seed`` for ``prune``;
``layer``, ``synth``, ``energy_table``, ``quality``, ``finetune_epochs``, ``seed`` for
``simulate``).

Registered here: ``compress`` (storage of a workload's layers in a format), ``prune``
(prune + masked fine-tuning of the digits MLP, accuracy and storage), ``synth``
(generic gate-level synthesis of a decoder block) and ``simulate`` (the workload on the
simulated accelerator: cycles, throughput, energy, decoder area; optionally the
quality of what the compression keeps). A further stage is added with one line,
``register(Stage(name, run, check, ...))``; the sweep's config schema, point
validation and report read the stage names, fields and ``arch`` keys from
:data:`STAGES`; its new metrics get their names and units in
:data:`codesign.experiments.reports.labels.COLUMNS`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable, Collection, Mapping
from typing import Any

from codesign.experiments.jobs.compress import (
    Comparison,
    Layer,
    Workload,
    compare,
    load_workload,
)
from codesign.experiments.jobs.decode_metrics import (
    DECODE_COST_FORMATS,
    DEFAULT_LANES,
    check_lanes,
    decode_metrics,
)
from codesign.models.report import LayerReport, total_report
from codesign.models.specs import Spec

#: A point of a sweep: a JSON-serialisable dict.
Point = dict[str, Any]
#: What a stage returns: metric name -> value.
Metrics = dict[str, Any]


def _no_check(point: Point) -> None:
    return None


def _no_arch(point: Point) -> Collection[str]:
    return ()


def _no_derive(point: Point) -> dict[str, Any]:
    return {}


@dataclasses.dataclass(frozen=True)
class Stage:
    """One stage of a sweep point.

    ``run(point) -> metrics`` computes it (in a worker process). ``check(point)`` raises
    ``ValueError`` for a point the stage cannot run, before the sweep starts.
    ``fields``: point fields the stage reads beyond the common ones, each a JSON schema
    whose ``default`` is the value a point gets when the config does not give it.
    ``arch_keys(point)``: the ``arch`` keys the stage reads for that point (a key no
    stage of a point reads is an error). ``derive(point)``: values for point fields the
    config left unset (None), derived from the others. The names and units of the
    metrics are in :mod:`codesign.experiments.reports.labels`.
    """

    name: str
    run: Callable[[Point], Metrics]
    check: Callable[[Point], None] = _no_check
    fields: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    arch_keys: Callable[[Point], Collection[str]] = _no_arch
    derive: Callable[[Point], dict[str, Any]] = _no_derive


#: The registered stages, by name, in registration order.
STAGES: dict[str, Stage] = {}


def register(stage: Stage) -> Stage:
    """Make ``stage`` runnable by its name (replacing a stage of the same name)."""
    STAGES[stage.name] = stage
    return stage


def get_stage(name: str) -> Stage:
    """The registered stage called ``name`` (``ValueError`` naming the known ones)."""
    try:
        return STAGES[name]
    except KeyError:
        raise ValueError(f"unknown stage {name!r}; known stages: {', '.join(STAGES)}") from None


def point_spec(point: Point) -> Spec:
    """The spec object of a point (``format`` + ``spec`` fields)."""
    return Spec.from_dict({"format": point["format"], **point["spec"]})


# ---------------------------------------------------------------- compress


@functools.lru_cache(maxsize=8)
def _workload(workload_json: str) -> Workload:
    workload = json.loads(workload_json)
    return load_workload(
        weights_file=workload.get("weights"),
        synthetic_shape=workload.get("synthetic"),
        model=workload.get("model"),
        distribution=workload.get("distribution", "gaussian"),
        seed=workload.get("seed", 0),
        layers=workload.get("layers"),
    )


def point_workload(workload: Mapping[str, Any]) -> Workload:
    """A point's workload: its layers, side and skipped tensors (cached per process; do
    not modify them)."""
    return _workload(json.dumps(workload, sort_keys=True))


def workload_layers(workload: Mapping[str, Any]) -> list[Layer]:
    """The layers of a point's workload (cached per process; do not modify them)."""
    return list(point_workload(workload).layers)


def point_base(point: Point) -> dict[str, Any]:
    """The layer settings a point gives every layer before its ``overrides``."""
    return {
        "format": point["format"],
        "spec": {k: v for k, v in point["spec"].items() if k != "format"},
        "sparsity": point["sparsity"],
        "quantize": point["quantize"],
    }


def pruning_metrics(kept_fraction: float) -> Metrics:
    """``pruned_fraction`` (1 − kept) and ``pruning_ratio`` (weights / kept weights;
    left out when nothing is kept) of a kept fraction."""
    out: Metrics = {"pruned_fraction": 1.0 - kept_fraction}
    if kept_fraction > 0:
        out["pruning_ratio"] = 1.0 / kept_fraction
    return out


def storage_metrics(reports: list[LayerReport], side_bits: int = 0) -> Metrics:
    """Totals over a workload's layer reports plus ``side_bits`` of dense side tensors
    (the model total): sizes in bits and bits per weight, ratios (left out where either
    size is 0 bits), kept fraction (nnz /
    weights) and :func:`pruning_metrics`, lossless, ``precision_bits`` and
    ``side_bits``; then the format's extras, where a ``*_bits`` figure is summed over
    the layers and any other figure is the mean weighted by layer size (m·n), both
    named as the format names them (so xor's ``efficiency`` is the size-weighted mean
    of the layers' ratios; the ratio of the totals is ``care_bits / (input_bits +
    patch_bits)``)."""
    total = total_report(reports, side_bits=side_bits)
    metrics: Metrics = {
        "index_bits_per_weight": total.index_bits_per_weight,
        "value_bits_per_weight": total.value_bits_per_weight,
        "total_bits": total.total_bits,
        "index_bits": total.index_bits,
        "value_bits": total.value_bits,
        "ratio_vs_dense": total.ratio_vs_dense,
        "ratio_vs_csr": total.ratio_vs_csr,
        "kept_fraction": total.nnz / total.weights,
        "nnz": total.nnz,
        "weights": total.weights,
        "lossless": total.lossless,
        "precision_bits": total.precision_bits,
        "side_bits": total.side_bits,
        **pruning_metrics(total.nnz / total.weights),
    }
    for key in ("ratio_vs_dense", "ratio_vs_csr"):  # left out where either size is 0 bits
        if metrics[key] is None:
            del metrics[key]
    keys = dict.fromkeys(k for r in reports for k in r.extras)
    for key in keys:
        if key in metrics:
            continue
        pairs = [(r.extras[key], r.weights) for r in reports if key in r.extras]
        if key.endswith("_bits"):
            metrics[key] = float(sum(v for v, _ in pairs))
        else:
            metrics[key] = float(sum(v * w for v, w in pairs) / sum(w for _, w in pairs))
    return metrics


def run_compress(point: Point) -> Metrics:
    """Compress every layer of the point's workload in its format and spec (pruned to
    ``sparsity`` with the format's structure when given, after quantizing to
    ``quantize`` bits when given), each changed by the matching ``overrides``;
    :func:`storage_metrics` of the layers and the workload's side tensors, and for the
    layers stored in BMWM, DARB or CSR their decode cost with ``arch.index_units``
    index units (:func:`codesign.experiments.jobs.decode_metrics.decode_metrics`)."""
    result: Comparison = compare(
        point_workload(point["workload"]), point_base(point), point["overrides"], cache=True
    )
    units = point["arch"].get("index_units", DEFAULT_LANES)
    cost = decode_metrics(result.workload.layers, result.plans, units)
    return {**storage_metrics(list(result.reports), result.side_bits), **cost}


def check_compress(point: Point) -> None:
    if point["workload"] is None:
        raise ValueError(
            "needs a workload: give workload as {synthetic: MxN}, {model: NAME} or {weights: FILE}"
        )
    if "index_units" in point["arch"]:
        check_lanes(point["arch"]["index_units"])


def _formats(point: Point) -> set[str]:
    """The point's format and the formats its overrides set."""
    return {point["format"], *(o["format"] for o in point["overrides"] if "format" in o)}


def compress_arch_keys(point: Point) -> Collection[str]:
    return {"index_units"} if _formats(point) & set(DECODE_COST_FORMATS) else set()


register(
    Stage(
        "compress",
        run_compress,
        check_compress,
        arch_keys=compress_arch_keys,
    )
)


# ---------------------------------------------------------------- prune


@functools.lru_cache(maxsize=1)
def _digits_mlp() -> Any:
    from codesign.models.workloads import load_digits_mlp

    return load_digits_mlp()


def run_prune(point: Point) -> Metrics:
    """Prune the digits MLP with ``method`` at ``sparsity`` (the method's format and the
    point's spec), fine-tune ``finetune_epochs`` epochs with the masks fixed (``trp``:
    train that many epochs at the spec's energy); accuracy (fraction correct on the
    held-out split) dense, pruned and fine-tuned, kept fraction and storage."""
    from codesign.experiments.jobs.prune import prune_mlp, trp_mlp

    mlp = _digits_mlp()
    spec, epochs, seed = point_spec(point), point["finetune_epochs"], point["seed"]
    if point["method"] == "trp":
        doc = trp_mlp(mlp, spec, epochs, seed)
    else:
        doc = prune_mlp(mlp, point["method"], point["sparsity"], spec, epochs, seed)
    keys = ("dense_accuracy", "accuracy_pruned", "accuracy_finetuned", "kept_fraction")
    keys += ("index_bits_per_weight", "total_bits", "param_reduction", "mac_reduction")
    metrics = {k: doc[k] for k in keys if doc.get(k) is not None}
    return {**metrics, **pruning_metrics(doc["kept_fraction"])}


def prune_format(method: str) -> str:
    """The format a pruning method's result is stored in (``trp``: lowrank)."""
    from codesign.experiments.jobs.prune import method_format

    return "lowrank" if method == "trp" else method_format(method)


def derive_prune(point: Point) -> dict[str, Any]:
    if point["format"] is None and point["method"] is not None:
        return {"format": prune_format(point["method"])}
    return {}


def check_prune(point: Point) -> None:
    from codesign.experiments.jobs.prune import METHODS

    method = point["method"]
    if method is None:
        raise ValueError(f"needs method, one of: {', '.join(METHODS)}")
    if point["workload"] not in (None, {"model": "digits"}):
        raise ValueError(
            f"stage prune runs on the digits MLP; workload must be {{model: digits}} or "
            f"absent, got {point['workload']}"
        )
    expected = prune_format(method)
    if point["format"] != expected:
        raise ValueError(
            f"method {method} stores its result in format {expected}, but format is "
            f"{point['format']}; drop format or set it to {expected}"
        )
    if method == "trp" and point["sparsity"] is not None:
        raise ValueError("method trp reaches its size through spec.energy; drop sparsity")
    if method == "trp" and point["spec"].get("rank") is not None:
        raise ValueError("method trp sets each layer's rank by spec.energy; drop spec.rank")
    if method != "trp" and point["sparsity"] is None:
        raise ValueError(f"method {method} needs sparsity in [0, 1)")


def _prune_fields() -> dict[str, dict[str, Any]]:
    from codesign.experiments.jobs.prune import METHODS

    return {
        "method": {"enum": list(METHODS), "default": None},
        "finetune_epochs": {"type": "integer", "minimum": 0, "default": 10},
        "seed": {"type": "integer", "minimum": 0, "default": 0},
    }


register(
    Stage(
        "prune",
        run_prune,
        check_prune,
        fields=_prune_fields(),
        derive=derive_prune,
    )
)


# ---------------------------------------------------------------- synth


def _block_of(point: Point) -> Any:
    from codesign.hw.blocks import BLOCKS, get_block

    name = point["arch"].get("block", point["format"])
    if "block" not in point["arch"] and name not in BLOCKS:
        raise ValueError(
            f"format {name} has no hardware block named after it; give arch.block, one of: "
            f"{', '.join(BLOCKS)}"
        )
    return get_block(name)


def _block_params(point: Point, block: Any) -> dict[str, Any]:
    return {k: v for k, v in point["arch"].items() if k in block.defaults}


def run_synth(point: Point) -> Metrics:
    """Generic gate-level synthesis (:func:`codesign.hw.synth.synthesize`) of the point's block
    (``arch.block``, default: the block named like the format) elaborated from its
    spec and the block parameters among its ``arch`` keys: total cells, flip-flops,
    logic cells (the others) and logic depth; with ``arch.target`` (``ice40``/``ecp5``)
    also LUTs, FPGA flip-flops and Fmax after place and route
    (:func:`codesign.hw.fpga.place_and_route`)."""
    from codesign.experiments.jobs.hardware import check_block
    from codesign.hw.synth import synthesize

    block = _block_of(point)
    spec, params = point_spec(point), _block_params(point, block)
    check_block(block, *block.resolve(spec, params), synth=True)
    stats = synthesize(block.name, spec, **params)
    dff = stats.cells.get("DFF", 0)
    metrics = {
        "cells": stats.total,
        "dff": dff,
        "logic_cells": stats.total - dff,
        "depth": stats.depth,
    }
    if point["arch"].get("target"):
        from codesign.hw.fpga import place_and_route

        fpga = place_and_route(block.name, point["arch"]["target"], spec, **params)
        metrics.update(luts=fpga.luts, ffs=fpga.ffs, fmax_mhz=fpga.fmax_mhz)
    return metrics


def check_synth(point: Point) -> None:
    block = _block_of(point)
    if block.spec_type.format_name != point["format"]:
        raise ValueError(
            f"block {block.name} is elaborated from a {block.spec_type.format_name} spec, "
            f"but format is {point['format']}; set format to {block.spec_type.format_name}"
        )
    params = _block_params(point, block)
    for key, value in params.items():
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"arch.{key} (block {block.name} parameter) must be an integer")
    block.resolve(point_spec(point), params)
    if "target" in point["arch"]:
        from codesign.hw.fpga import get_target

        get_target(point["arch"]["target"])


def synth_arch_keys(point: Point) -> Collection[str]:
    return {"block", "target", *_block_of(point).defaults}


register(
    Stage(
        "synth",
        run_synth,
        check_synth,
        arch_keys=synth_arch_keys,
    )
)


# ---------------------------------------------------------------- simulate


def _sim_arch_fields() -> list[str]:
    from codesign.sim.arch import Arch

    return [f.name for f in dataclasses.fields(Arch)]


def simulate_arch_keys(point: Point) -> Collection[str]:
    """The ``arch`` keys of the simulate stage: the field names of
    :class:`codesign.sim.arch.Arch` (flat: ``dram_bytes_per_cycle``, ``buffer_bytes``, … for the
    simulator YAML's nested ``dram``/``buffer`` keys)."""
    return _sim_arch_fields()


def _arch_doc(arch: Mapping[str, Any]) -> dict[str, Any]:
    """The simulator YAML's ``arch`` mapping of a point's flat ``arch`` keys: a top-level
    key of the YAML stays; ``GROUP_SUB`` or ``SUB`` of a nested group (``dram``,
    ``buffer``) goes under that group; keys that are no Arch field (another stage's)
    are left out."""
    from codesign.sim.config import SCHEMA

    props = SCHEMA["properties"]["arch"]["properties"]
    doc: dict[str, Any] = {}
    nested = {
        name: (group, sub)
        for group, schema in props.items()
        for sub in schema.get("properties", {})
        for name in (sub, f"{group}_{sub}")
    }
    for key in _sim_arch_fields():
        if key not in arch:
            continue
        if key in props:
            doc[key] = arch[key]
        else:
            group, sub = nested[key]
            doc.setdefault(group, {})[sub] = arch[key]
    return doc


def _sim_source(point: Point) -> dict[str, Any]:
    workload, layer = point["workload"], point["layer"]
    if workload.get("model") == "digits":
        return {"digits": layer or "all"}
    if "synthetic" in workload:
        return {
            "synthetic": workload["synthetic"].lower(),
            "distribution": workload["distribution"],
            "seed": workload["seed"],
        }
    source = (
        {"example": workload["model"]} if "model" in workload else {"weights": workload["weights"]}
    )
    if layer:
        return {**source, "key": layer}
    return {**source, **({"select": workload["layers"]} if workload.get("layers") else {})}


def sim_config(point: Point) -> Any:
    """The :class:`codesign.sim.config.SimConfig` of a point: its workload (one ``layer`` of it
    when set), format, spec, sparsity, quantize, ``arch`` keys (:func:`_arch_doc`),
    ``energy_table`` and ``seed`` (activations), validated like a `codesign simulate`
    YAML file (:class:`codesign.sim.arch.ConfigError` naming the key and what is allowed)."""
    from codesign.sim.config import parse_config

    spec = {k: v for k, v in point["spec"].items() if k != "format"}
    return parse_config(
        {
            "name": point["format"],
            "energy_table": point["energy_table"],
            "seed": point["seed"],
            "arch": _arch_doc(point["arch"]),
            "defaults": {
                "format": point["format"],
                "spec": spec,
                "sparsity": point["sparsity"],
                "quantize": point["quantize"],
            },
            "layers": [_sim_source(point)],
            "overrides": point["overrides"],
        }
    )


def simulation_metrics(doc: Mapping[str, Any]) -> Metrics:
    """The figures of a :func:`codesign.experiments.jobs.simulate.run_config` result's ``total`` row
    (the ``summarize`` figures of the workload; a figure that is None — decoder area
    without an RTL block or without synthesis — is left out), plus ``storage`` (mask +
    value format label), ``weights`` (dense m·n over the layers), ``bits_per_weight``
    (total bits / weights), ``layers`` and ``encode_s`` (seconds spent encoding)."""
    total = doc["total"]
    metrics: Metrics = {
        k: v for k, v in total.items() if k not in ("layer", "format") and v is not None
    }
    weights = sum(r["shape"][0] * r["shape"][1] for r in doc["layers"])
    metrics.update(
        storage=total["format"],
        weights=weights,
        bits_per_weight=total["total_bits"] / weights,
        layers=len(doc["layers"]),
        encode_s=sum(r["encode_s"] for r in doc["layers"]),
    )
    return metrics


def quality_metrics(point: Point, cfg: Any) -> Metrics:
    """How much of the layers the point's compression keeps, each layer encoded as the
    simulation encodes it (:func:`codesign.sim.layers.encode_layer`). The kept weights are the
    non-zeros of the matrix the encoding stands for (padding slots and slots holding a
    zero keep nothing): ``kept_fraction`` (of all weights) and ``kept_mass_ratio``
    (:func:`codesign.models.quality.kept_mass_ratio` of the original weights, the mean over the
    layers weighted by layer size). On the digits MLP also the held-out accuracy with
    the simulated layers compressed and the others dense: ``accuracy_pruned`` (as
    encoded, dequantized), ``accuracy_finetuned`` (after ``finetune_epochs`` epochs of
    masked fine-tuning, :meth:`~codesign.models.workloads.DigitsMLP.finetune`, with the
    compressed layers' decoded masks fixed and the dense layers free, then the
    compressed layers quantized again to ``quantize`` bits), ``dense_accuracy`` and
    ``accuracy_loss`` (dense minus the last of the two). The encodings are the ones
    ``run_config`` made: read back from the encoded-layer cache
    (:mod:`codesign.models.encoded_cache`), not encoded a second time."""
    import numpy as np

    from codesign.models.quality import kept_mass_ratio
    from codesign.models.registry import get_format
    from codesign.models.workloads import quantize_symmetric
    from codesign.sim.layers import encode_layer, expand

    digits = "digits" in cfg.layers[0].source
    kept, sizes, ratios, compressed = 0, [], [], {}
    for layer in expand(cfg).layers:
        name, weights = layer.name, layer.weights
        reference, enc = encode_layer(weights, layer.config)
        stored = np.asarray(reference) != 0
        kept += int(stored.sum())
        sizes.append(weights.size)
        ratios.append(kept_mass_ratio(weights, stored))
        if digits:
            bits = layer.config.quantize
            scale = quantize_symmetric(weights, bits)[1] if bits is not None else 1.0
            mask = get_format(enc.format).decode(enc).mask
            compressed[name] = ((np.asarray(reference) * scale).astype(np.float32), mask, bits)
    metrics: Metrics = {
        "kept_fraction": kept / sum(sizes),
        "kept_mass_ratio": float(np.average(ratios, weights=sizes)),
    }
    if digits:
        epochs, seed = point["finetune_epochs"], point["seed"]
        metrics.update(_digits_accuracy(compressed, epochs, seed))
    return metrics


def _digits_accuracy(
    compressed: Mapping[str, tuple[Any, Any, int | None]], epochs: int, seed: int
) -> Metrics:
    """Accuracy metrics of :func:`quality_metrics`; ``compressed``: layer name ->
    (dequantized weights, decoded mask, quantize bits or None). Fine-tuning
    (:meth:`~codesign.models.workloads.DigitsMLP.finetune`) runs on one BLAS thread in any
    process and is cached on disk with its inputs as the key."""
    import numpy as np

    from codesign.models.workloads import quantize_symmetric

    mlp = _digits_mlp()
    weights = list(mlp.weights)
    masks = [np.ones(w.shape, dtype=bool) for w in weights]
    for name, (w, mask, _) in compressed.items():
        i = mlp.layer_names.index(name)
        weights[i], masks[i] = w, mask
    metrics: Metrics = {"dense_accuracy": mlp.dense_accuracy}
    metrics["accuracy_pruned"] = accuracy = mlp.evaluate(weights)
    if epochs:
        tuned = mlp.finetune(weights, masks, epochs, seed)
        for name, (_, _, quantize) in compressed.items():
            if quantize is not None:
                i = mlp.layer_names.index(name)
                q, scale = quantize_symmetric(tuned[i], quantize)
                tuned[i] = (q * scale).astype(np.float32)
        metrics["accuracy_finetuned"] = accuracy = mlp.evaluate(tuned)
    metrics["accuracy_loss"] = mlp.dense_accuracy - accuracy
    return metrics


def run_simulate(point: Point) -> Metrics:
    """Simulate the point's workload on the accelerator
    (:func:`codesign.experiments.jobs.simulate.run_config` of :func:`sim_config`):
    :func:`simulation_metrics`, and with ``quality`` also :func:`quality_metrics`.

    Point fields: ``layer`` (one layer of the workload by name, e.g. ``fc2``; null: all
    of them), ``synth`` (synthesize the decoder blocks for their area and energy, cached
    on disk; false: decoders are charged as estimated and report no area),
    ``energy_table`` (``default`` or a YAML file, as in `codesign simulate`),
    ``quality`` (also measure what the compression keeps), ``finetune_epochs`` and
    ``seed`` (the fine-tuning of ``quality`` on the digits MLP, as in ``prune``; the seed
    also draws the activations)."""
    from codesign.experiments.jobs.simulate import run_config

    cfg = sim_config(point)
    metrics = simulation_metrics(run_config(cfg, synth=point["synth"]))
    if point["quality"]:
        metrics.update(quality_metrics(point, cfg))
    return metrics


def check_simulate(point: Point) -> None:
    from codesign.sim.energy import load_table

    if point["workload"] is None:
        raise ValueError(
            "needs a workload: give workload as {synthetic: MxN}, {model: digits} or "
            "{weights: FILE}"
        )
    layer = point["layer"]
    if layer is not None:
        names = [entry.name for entry in workload_layers(point["workload"])]
        if layer not in names:
            raise ValueError(
                f"layer {layer!r} is not a layer of the workload; its layers: {', '.join(names)}"
            )
    if point["quality"] and point["format"] == "lowrank":
        raise ValueError(
            "quality measures the weights a mask keeps; format lowrank stores dense "
            "factors (no mask): set quality to false for lowrank"
        )
    load_table(sim_config(point).energy_table)


register(
    Stage(
        "simulate",
        run_simulate,
        check_simulate,
        fields={
            "layer": {"type": ["string", "null"], "minLength": 1, "default": None},
            "synth": {"type": "boolean", "default": True},
            "energy_table": {"type": "string", "minLength": 1, "default": "default"},
            "quality": {"type": "boolean", "default": False},
            "finetune_epochs": {"type": "integer", "minimum": 0, "default": 10},
            "seed": {"type": "integer", "minimum": 0, "default": 0},
        },
        arch_keys=simulate_arch_keys,
    )
)
