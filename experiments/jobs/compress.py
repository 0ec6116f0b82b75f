"""`codesign compress`: store layers in one format and report their sizes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from codesign.models.format import Format
from codesign.models.registry import get_format
from codesign.models.report import LayerReport, report_layer, total_report
from codesign.models.specs import Spec
from codesign.models.workloads import (
    check_sparsity,
    check_weights,
    load_digits_mlp,
    load_weights,
    parse_shape,
    quantize_symmetric,
    synthetic,
)

MODELS = ("digits",)


@dataclass(frozen=True)
class Layer:
    """A named weight matrix (out_features, in_features)."""

    name: str
    weights: np.ndarray


def load_layers(
    weights_file: str | None = None,
    synthetic_shape: str | None = None,
    model: str | None = None,
    distribution: str = "gaussian",
    seed: int = 0,
) -> list[Layer]:
    """The layers of exactly one source: a weights file, a synthetic MxN shape, or a
    named model (``digits``)."""
    given = [x for x in (weights_file, synthetic_shape, model) if x is not None]
    if len(given) != 1:
        raise ValueError("give exactly one of --weights FILE, --synthetic MxN, --model NAME")
    if weights_file is not None:
        return [Layer(k, v) for k, v in load_weights(Path(weights_file)).items()]
    if synthetic_shape is not None:
        shape = parse_shape(synthetic_shape)
        return [Layer(f"{distribution}{shape[0]}x{shape[1]}", synthetic(distribution, shape, seed))]
    if model not in MODELS:
        raise ValueError(f"unknown --model {model!r}; known models: {', '.join(MODELS)}")
    mlp = load_digits_mlp()
    return [Layer(n, w) for n, w in zip(mlp.layer_names, mlp.weights, strict=True)]


def prepare(layer: Layer, quantize: int | None) -> np.ndarray:
    """The checked matrix to compress, quantized to ``quantize``-bit integers if given."""
    w = check_weights(layer.weights, layer.name)
    return w if quantize is None else quantize_symmetric(w, quantize)[0]


def compress_layers(
    layers: list[Layer],
    fmt: Format,
    spec: Spec,
    sparsity: float | None = None,
    quantize: int | None = None,
) -> list[LayerReport]:
    """One :class:`LayerReport` per layer, each pruned to ``sparsity`` (when given)
    with the structure the format stores."""
    if sparsity is not None:
        check_sparsity(sparsity)
    return [
        report_layer(layer.name, prepare(layer, quantize), fmt, spec, sparsity) for layer in layers
    ]


def compress_json(
    fmt_name: str, spec: Spec, reports: list[LayerReport], sparsity: float | None
) -> dict[str, Any]:
    """The JSON document `codesign compress --json` writes."""
    return {
        "format": fmt_name,
        "spec": spec.to_dict(),
        "sparsity": sparsity,
        "layers": [r.to_dict() for r in reports],
        "total": total_report(reports).to_dict(),
    }


def compress(fmt_name: str, spec: Spec, layers: list[Layer], **kw: Any) -> dict[str, Any]:
    """Compress ``layers`` in format ``fmt_name`` and return the JSON document."""
    reports = compress_layers(layers, get_format(fmt_name), spec, **kw)
    return compress_json(fmt_name, spec, reports, kw.get("sparsity"))
