"""`codesign compress`: store a workload's layers in one format, compared at one precision.

**Workloads** (:func:`load_workload`): a weights file (``.npz`` / ``.safetensors``), an
example model (``encoder``, ``resnet18``: :mod:`codesign.models.examples`), the digits
MLP or one synthetic matrix. A file's tensors each get one role
(:mod:`codesign.models.weight_files`): *layers* are compressed; *side* tensors (biases,
norms) are stored dense at the comparison's value precision and counted in the model
total; *skipped* tensors are listed by name with the reason. ``layers`` patterns select
tensors by name (``--layers GLOB``).

**One precision rule** (:mod:`codesign.models.report`): a comparison states its value
precision once — float32 (floating weights of any width are compared as float32), or
the ``--quantize`` integers, or the bit-planes of a format that quantizes itself
(``xor`` on floating weights, which then reports against its own quantized reference
and says so) — and every ratio is against dense and CSR storage of the same pruned
matrix at that precision. ``lossless`` means decoding reproduces the reference exactly,
and the report names it. A workload whose layers end up at different precisions (per-
layer overrides mixing ``xor`` and float32) is refused: it is not one comparison.

**One rule for reaching a sparsity**: every format reaches the requested sparsity — to
within its structure's resolution, printed per row as the reached sparsity (1 − stored
value slots / weights) — or refuses, naming the nearest sparsity it reaches and the spec
that reaches the request (nm 1 − n/m and bmwm 1 − 1/b within 0.005, darb's largest
block, lowrank's one rank, viterbi's and lbi's searches).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from codesign.experiments.jobs.tables import (
    RELATIVE_ERROR,
    STORAGE_HEADER,
    clipped_lines,
    relative_error,
    render,
    skipped_lines,
    storage_row,
)
from codesign.models.encoded_cache import compress_layer
from codesign.models.examples import EXAMPLES, example_path
from codesign.models.format import Encoded, Format, check_layer
from codesign.models.overrides import resolve, unused_patterns
from codesign.models.registry import get_format
from codesign.models.report import LayerReport, report_encoded, total_report
from codesign.models.specs import LbiSpec, Spec
from codesign.models.weight_files import ModelFile, Tensor, open_model, select_names
from codesign.models.workloads import (
    check_sparsity,
    check_weights,
    load_digits_mlp,
    lost_weights_error,
    parse_shape,
    quantize_kept,
    quantize_symmetric,
    synthetic,
    too_many_lost,
)

MODELS = ("digits", *EXAMPLES)
"""Built-in models: the trained digits MLP and the example model files."""


@dataclasses.dataclass(frozen=True)
class Layer:
    """A named weight matrix (out_features, in_features·∏kernel); ``kernel``: the kernel
    dimensions of a convolution (``()`` for a matrix)."""

    name: str
    weights: np.ndarray
    kernel: tuple[int, ...] = ()


@dataclasses.dataclass(frozen=True)
class Workload:
    """What a run reads: ``label`` (where it came from), its ``layers`` and, for a
    model file, ``tensors``: every tensor of the file with its role, and
    ``side_arrays``: the values of its side tensors by name (float32, as stored)."""

    label: str
    layers: tuple[Layer, ...]
    tensors: tuple[Tensor, ...] = ()
    side_arrays: tuple[tuple[str, np.ndarray], ...] = ()

    @property
    def side(self) -> list[Tensor]:
        """The side tensors (biases, norms), in file order."""
        return [t for t in self.tensors if t.role == "side"]

    @property
    def skipped(self) -> list[Tensor]:
        """The skipped tensors, in file order."""
        return [t for t in self.tensors if t.role == "skipped"]

    @property
    def side_values(self) -> int:
        """Values of all side tensors."""
        return sum(t.size for t in self.side)


def _from_file(model: ModelFile, label: str) -> Workload:
    layers = tuple(Layer(t.name, model.matrix(t.name), t.kernel) for t in model.by_role("layer"))
    side = tuple((t.name, model.arrays[t.name]) for t in model.by_role("side"))
    return Workload(label, layers, model.tensors, side)


def _selected(label: str, layers: list[Layer], patterns: Sequence[str] | None) -> Workload:
    chosen = select_names([x.name for x in layers], patterns, label)
    return Workload(label, tuple(x for x in layers if chosen is None or x.name in chosen))


def load_workload(
    weights_file: str | None = None,
    synthetic_shape: str | None = None,
    model: str | None = None,
    distribution: str = "gaussian",
    seed: int = 0,
    layers: Sequence[str] | None = None,
    check: Callable[[str, tuple[int, int]], object] | None = None,
) -> Workload:
    """The workload of exactly one source: a weights file, a synthetic MxN shape, or a
    named model (:data:`MODELS`); ``layers``: name patterns selecting its tensors;
    ``check(name, shape)``: the pre-flight of the work to come, called with a synthetic
    layer's name and shape before its weights are drawn (e.g. :func:`check_layer`)."""
    given = [x for x in (weights_file, synthetic_shape, model) if x is not None]
    if len(given) != 1:
        raise ValueError("give exactly one of --weights FILE, --synthetic MxN, --model NAME")
    if weights_file is not None:
        return _from_file(open_model(Path(weights_file), layers), str(weights_file))
    if synthetic_shape is not None:
        shape = parse_shape(synthetic_shape)
        name = f"{distribution}{shape[0]}x{shape[1]}"
        if check is not None:
            check(name, shape)
        label = f"synthetic {distribution} {shape[0]}x{shape[1]}, seed {seed}"
        return _selected(label, [Layer(name, synthetic(distribution, shape, seed))], layers)
    if model not in MODELS:
        raise ValueError(f"unknown --model {model!r}; known models: {', '.join(MODELS)}")
    if model in EXAMPLES:
        return _from_file(open_model(example_path(model), layers), f"example model {model}")
    mlp = load_digits_mlp()
    pairs = zip(mlp.layer_names, mlp.weights, strict=True)
    return _selected("digits MLP", [Layer(n, w) for n, w in pairs], layers)


def prepare(layer: Layer, quantize: int | None, sparsity: float | None = None) -> np.ndarray:
    """The checked matrix to compress, quantized to ``quantize``-bit integers if given
    (symmetric, one scale per layer; refused when that zeroes weights the pruning to
    ``sparsity`` keeps: :func:`~codesign.models.workloads.quantize_kept`)."""
    w = check_weights(layer.weights, layer.name)
    return w if quantize is None else quantize_kept(w, quantize, sparsity, layer.name)


def report_plan(layer: Layer, plan: LayerPlan, cache: bool = False) -> LayerReport:
    """The report of one layer stored by its plan, after the pre-flight
    (:func:`~codesign.models.format.check_layer`: refused before any work when it would
    need more memory than the limit); a value the layer's precision would lose is
    refused naming the layer. ``cache``: read and keep the encoding in the encoded-layer
    cache (:mod:`codesign.models.encoded_cache`)."""
    fmt = get_format(plan.format)
    check_layer(layer.name, layer.weights.shape, fmt, plan.spec, plan.quantize)
    try:
        reference, enc = encode(layer, plan, cache)
        # the quantized input again: what lowrank approximates, and (cached or not) the
        # note on the kept weights a quantization rounds to 0
        weights = prepare(layer, plan.quantize, plan.sparsity)
        return report_encoded(
            layer.name, reference, enc, fmt, weights if fmt.approximates else None, plan.sparsity
        )
    except ValueError as exc:
        raise named(exc, f"layer {layer.name}") from None


def named(exc: ValueError, what: str) -> ValueError:
    """``exc`` (same type) with its message starting ``what: `` (``layer fc2``), unless
    it already does."""
    text = str(exc)
    if text.startswith(f"{what}:") or text.startswith(f"{what} "):
        return exc
    try:
        return type(exc)(f"{what}: {text}")
    except TypeError:  # a type whose constructor takes more than one message
        return ValueError(f"{what}: {text}")


def compress_layers(
    layers: Sequence[Layer],
    fmt: Format,
    spec: Spec,
    sparsity: float | None = None,
    quantize: int | None = None,
) -> list[LayerReport]:
    """One :class:`LayerReport` per layer, each pruned to ``sparsity`` (when given)
    with the structure the format stores."""
    if sparsity is not None:
        check_sparsity(sparsity)
    plan = LayerPlan(fmt.name, spec, sparsity, quantize)
    return [report_plan(layer, plan) for layer in layers]


@dataclasses.dataclass(frozen=True)
class LayerPlan:
    """How one layer is stored: ``format``, ``spec``, ``sparsity``, ``quantize``."""

    format: str
    spec: Spec
    sparsity: float | None
    quantize: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "spec": self.spec.to_dict(),
            "sparsity": self.sparsity,
            "quantize": self.quantize,
        }


def layer_plans(
    names: Sequence[str], base: Mapping[str, Any], overrides: Sequence[Mapping[str, Any]] = ()
) -> list[LayerPlan]:
    """Each layer's plan: ``base`` (``format``, ``spec`` fields, ``sparsity``,
    ``quantize``) with the matching ``overrides`` applied (:mod:`codesign.models.overrides`);
    an override matching no layer is an error."""
    unused = unused_patterns(names, overrides)
    if unused:
        sample = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
        raise ValueError(
            f"overrides: match {unused[0]!r} matches no layer; layers are named like {sample}"
        )
    plans = []
    for name in names:
        s = resolve(name, base, overrides)
        spec = Spec.from_dict({"format": s["format"], **dict(s.get("spec") or {})})
        if s.get("sparsity") is not None:
            check_sparsity(s["sparsity"])
        plans.append(LayerPlan(s["format"], spec, s.get("sparsity"), s.get("quantize")))
    return plans


def fitted(plan: LayerPlan, shape: tuple[int, int]) -> LayerPlan:
    """``plan`` for a layer of ``shape``: an LBI tile larger than the layer clipped to it
    (:meth:`~codesign.models.specs.LbiSpec.fitted`, as `codesign prune` does), any other plan
    as it is."""
    if not isinstance(plan.spec, LbiSpec):
        return plan
    return dataclasses.replace(plan, spec=plan.spec.fitted(shape))


def check_side(workload: Workload, plans: Sequence[LayerPlan]) -> None:
    """Refuse (:class:`PrecisionError` naming the tensor) a side tensor whose values the
    comparison's integer precision would turn mostly into 0 — the rule of the layers
    (:func:`~codesign.models.workloads.too_many_lost`), each tensor with its own scale:
    with ``quantize``, at the widest width the plans give; with xor quantizing floating
    weights itself, at its ``value_bits``."""
    quantize = [p.quantize for p in plans if p.quantize is not None]
    xor = [p.spec.value_bits for p in plans if p.quantize is None and p.format == "xor"]
    if not (quantize or xor):
        return
    bits, option = (max(quantize), "--quantize ") if quantize else (max(xor), "value_bits=")
    for name, values in workload.side_arrays:
        if not values.size:
            continue
        kept = int(np.count_nonzero(values))

        def lost_at(b: int, values: np.ndarray = values, kept: int = kept) -> int:
            return kept - int(np.count_nonzero(quantize_symmetric(values.reshape(1, -1), b)[0]))

        lost = lost_at(bits)
        if too_many_lost(lost, kept):
            scale = quantize_symmetric(values.reshape(1, -1), bits)[1]
            raise lost_weights_error(
                f"side tensor {name}: {option}{bits}",
                option,
                lost,
                kept,
                values,
                scale,
                bits,
                lost_at,
                noun="non-zero values",
                remedy="or remove the outliers",
            )


@dataclasses.dataclass(frozen=True)
class Comparison:
    """A workload compressed layer by layer, at one value precision (module docstring).

    ``plans`` and ``reports``: one per layer of ``workload``; ``precision_bits``: bits per
    stored value of every report; ``quantized_by_format``: the precision comes from a
    format quantizing floating weights itself (xor); ``requested``: the plans as asked,
    before an LBI tile larger than a layer was clipped to it (:func:`fitted`; empty:
    ``plans``)."""

    workload: Workload
    plans: tuple[LayerPlan, ...]
    reports: tuple[LayerReport, ...]
    precision_bits: int
    quantized_by_format: bool
    requested: tuple[LayerPlan, ...] = ()

    def clipped(self) -> dict[str, dict[str, Any]]:
        """Layer name -> the spec fields its plan changed from the request (the LBI
        tiles clipped to the layer), for the layers whose spec was changed."""
        out = {}
        for layer, asked, used in zip(
            self.workload.layers, self.requested or self.plans, self.plans, strict=True
        ):
            wanted, fields = asked.spec.to_dict(), used.spec.to_dict()
            changed = {k: v for k, v in fields.items() if wanted.get(k) != v}
            if changed:
                out[layer.name] = changed
        return out

    @property
    def side_bits(self) -> int:
        """Dense storage of the side tensors at the comparison's precision."""
        return self.workload.side_values * self.precision_bits

    def total(self) -> LayerReport:
        """The layers' total."""
        return total_report(list(self.reports), "layers total")

    def model_total(self) -> LayerReport:
        """The layers' total plus the side tensors."""
        return total_report(list(self.reports), "model total", self.side_bits)

    def precision_label(self) -> str:
        """The value precision, stated once (e.g. ``int8 (--quantize 8)``)."""
        b = self.precision_bits
        quantize = {p.quantize for p in self.plans}
        if self.quantized_by_format:
            return f"{b}-bit values, quantized by xor itself from the float32 weights"
        if quantize == {None}:
            return f"float{b}"
        bits = ", ".join(str(q) for q in sorted(q for q in quantize if q is not None))
        if bits == str(b):
            return f"int{b} (--quantize {b})"
        return f"int{b} slots holding {bits}-bit integers (--quantize {bits})"

    def reference_label(self) -> str:
        """What ``lossless`` compares with and what ``x CSR`` stores."""
        approximating = [get_format(p.format).approximates for p in self.plans]
        pruned = any(p.sparsity is not None for p in self.plans)
        what = "the pruned matrix" if pruned else "the matrix as given"
        if self.quantized_by_format:
            what += " as xor quantizes it"
        lowrank = (
            "the matrix before pruning, which lowrank approximates (x CSR: CSR of its "
            "magnitude pruning at the requested sparsity)"
        )
        if all(approximating):
            return f"{lowrank}, {self.precision_label()}"
        if any(approximating):
            return f"{what}, {self.precision_label()}; for lowrank layers {lowrank}"
        return f"{what}, {self.precision_label()}"

    def to_json(self) -> dict[str, Any]:
        """The JSON document `codesign compress --json` writes."""
        first = (self.requested or self.plans)[0]
        return {
            "workload": self.workload.label,
            "format": first.format,
            "spec": first.spec.to_dict(),
            "layer_specs": self.clipped(),
            "sparsity": first.sparsity,
            "quantize": first.quantize,
            "precision_bits": self.precision_bits,
            "precision_label": self.precision_label(),
            "reference": self.reference_label(),
            "layers": [
                {**r.to_dict(), "plan": p.to_dict()}
                for r, p in zip(self.reports, self.plans, strict=True)
            ],
            "side": {
                "tensors": len(self.workload.side),
                "values": self.workload.side_values,
                "bits": self.side_bits,
                "names": [t.name for t in self.workload.side],
            },
            "skipped": [t.to_dict() for t in self.workload.skipped],
            "tensors": [t.to_dict() for t in self.workload.tensors],
            "total": self.total().to_dict(),
            "model_total": self.model_total().to_dict(),
        }


def compare(
    workload: Workload,
    base: Mapping[str, Any],
    overrides: Sequence[Mapping[str, Any]] = (),
    cache: bool = False,
) -> Comparison:
    """Compress every layer of ``workload`` with its plan (:func:`layer_plans` of
    ``base`` and ``overrides``) and report it; raises ``ValueError`` when the layers
    end at different value precisions. ``cache``: read and keep the encodings in the
    encoded-layer cache (:mod:`codesign.models.encoded_cache`)."""
    requested = layer_plans([x.name for x in workload.layers], base, overrides)
    plans = [
        fitted(plan, layer.weights.shape)
        for plan, layer in zip(requested, workload.layers, strict=True)
    ]
    check_side(workload, plans)
    reports = [
        report_plan(layer, plan, cache) for layer, plan in zip(workload.layers, plans, strict=True)
    ]
    precisions = {r.precision_bits for r in reports}
    if len(precisions) > 1:
        pairs = zip(plans, reports, strict=True)
        mixed = sorted({f"{p.format} at {r.precision_bits} bits" for p, r in pairs})
        raise ValueError(
            f"the layers end at different value precisions ({', '.join(mixed)}): one "
            f"comparison needs one precision; give quantize to every layer or to none"
        )
    by_format = any(p.format == "xor" and p.quantize is None for p in plans)
    return Comparison(
        workload, tuple(plans), tuple(reports), precisions.pop(), by_format, tuple(requested)
    )


def encode(layer: Layer, plan: LayerPlan, cache: bool = False) -> tuple[np.ndarray, Encoded]:
    """``(reference, encoded)`` of ``layer`` quantized, pruned and encoded as ``plan``
    says (:func:`codesign.models.encoded_cache.compress_layer`; ``cache``: through the
    encoded-layer cache)."""
    weights = check_weights(layer.weights, layer.name)
    return compress_layer(
        weights, plan.format, plan.spec, plan.sparsity, plan.quantize, cache=cache
    )


def compress(fmt_name: str, spec: Spec, workload: Workload, **kw: Any) -> Comparison:
    """Compress ``workload`` in format ``fmt_name`` with ``spec`` (keywords:
    ``sparsity``, ``quantize``)."""
    fields = {k: v for k, v in spec.to_dict().items() if k != "format"}
    base = {"format": fmt_name, "spec": fields, "sparsity": None, "quantize": None, **kw}
    return compare(workload, base)


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def describe_workload(workload: Workload) -> str:
    """One line: where the workload came from and its tensors by role."""
    parts = [_count(len(workload.layers), "layer")]
    if workload.tensors:
        parts += [
            _count(len(workload.side), "side tensor"),
            _count(len(workload.skipped), "skipped tensor"),
        ]
    return f"workload: {workload.label} ({', '.join(parts)})"


def side_line(workload: Workload, precision: int) -> str | None:
    """The one summary line of the side tensors (None without any)."""
    side = workload.side
    if not side:
        return None
    values = workload.side_values
    return (
        f"side: {_count(len(side), 'tensor')} (biases, norms; 0-D/1-D floats), "
        f"{values:,} values stored dense at {precision} bits = {values * precision:,} bits, "
        f"counted in the model total"
    )


def render_comparison(result: Comparison) -> str:
    """What `codesign compress` prints: the workload, the precision and reference, one
    row per layer, the layers' and the model's totals, the side and skipped tensors."""
    first = (result.requested or result.plans)[0]
    b = result.precision_bits
    lines = [
        describe_workload(result.workload),
        f"format {first.format}  spec {first.spec.to_json()}  sparsity requested "
        f"{'none' if first.sparsity is None else first.sparsity}",
        f"values: {result.precision_label()}; x dense and x CSR: dense and CSR storage of "
        f"the same matrices at {b} bits per value",
        f"reference: {result.reference_label()}; lossless = decode reproduces it exactly",
    ]
    kernels = {layer.name: layer.kernel for layer in result.workload.layers}
    rows = [storage_row(r, kernel=kernels.get(r.name, ())) for r in result.reports]
    rows.append(storage_row(result.total()))
    if result.workload.side:
        rows.append(storage_row(result.model_total()))
    header = list(STORAGE_HEADER)
    mean = relative_error(result.reports)
    if mean is not None:  # an approximating format: how far it is off
        header.append("rel error")
        errors = [r.extras.get(RELATIVE_ERROR) for r in result.reports]
        totals = [f"{mean:.4f}"] * (len(rows) - len(errors))
        cells = ["-" if e is None else f"{e:.4f}" for e in errors] + totals
        rows = [[*row, cell] for row, cell in zip(rows, cells, strict=True)]
        lines.append(
            "lossy: lowrank approximates the matrix; rel error = ||W - decoded|| / ||W|| per "
            "layer (Frobenius norms), the totals' the mean weighted by layer size"
        )
    lines.append(render(header, rows))
    lines += clipped_lines(result.clipped())
    line = side_line(result.workload, b)
    lines += [line] if line else []
    lines += skipped_lines([t.to_dict() for t in result.workload.skipped])
    return "\n".join(lines)
