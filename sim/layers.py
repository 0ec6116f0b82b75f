"""The layers a configuration names: loaded, resolved per layer, quantized, pruned and
encoded.

:func:`expand` turns every layer entry of a :class:`~codesign.sim.config.SimConfig` into
its tensors: the digits MLP's matrices, one synthetic matrix, or every *layer* tensor of
a model file (``weights``) or example model (``example``, with the example's own
geometry), selected by ``key`` or ``select`` patterns. Each layer gets its settings —
the entry's, changed by every matching override — and its geometry
(:mod:`codesign.sim.geometry`). A file's side tensors (biases, norms) are counted at
the entry's value precision and its skipped tensors are listed.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from codesign.models.encoded_cache import compress_layer
from codesign.models.examples import example_geometry, example_path
from codesign.models.format import Encoded
from codesign.models.overrides import resolve, unused_patterns
from codesign.models.registry import get_format
from codesign.models.weight_files import Tensor, open_model
from codesign.models.workloads import (
    load_digits_mlp,
    parse_shape,
    synthetic,
)
from codesign.sim.arch import ConfigError
from codesign.sim.config import LayerConfig, SimConfig
from codesign.sim.geometry import Geometry, conv_geometry, tokens_geometry

FLOAT_BITS = 32
"""Width of a side tensor's values when its entry does not quantize."""


@dataclasses.dataclass(frozen=True)
class Source:
    """The tensors of one layer entry: ``layers`` as (name, weight matrix (m, n),
    kernel dims), ``tensors`` (a model file's tensors with their roles, else empty) and
    ``geometry`` (an example's per-layer geometry, by name)."""

    layers: list[tuple[str, np.ndarray, tuple[int, ...]]]
    tensors: tuple[Tensor, ...] = ()
    geometry: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)


def _digits(wanted: str) -> Source:
    mlp = load_digits_mlp()
    pairs = list(zip(mlp.layer_names, mlp.weights, strict=True))
    if wanted == "all":
        return Source([(n, w, ()) for n, w in pairs])
    if wanted not in mlp.layer_names:
        raise ConfigError(f"layers.digits = {wanted!r}; allowed: all, {', '.join(mlp.layer_names)}")
    return Source([(n, w, ()) for n, w in pairs if n == wanted])


def _model_file(path: Path, source: dict[str, Any]) -> Source:
    key = source.get("key")
    patterns = source.get("select") if key is None else [key]
    model = open_model(path, patterns)
    layers = [(t.name, model.matrix(t.name), t.kernel) for t in model.by_role("layer")]
    if key is not None and [name for name, _, _ in layers] != [key]:
        names = [t.name for t in model.tensors if t.role == "layer" or t.name == key]
        raise ConfigError(f"layers.key = {key!r} is not a weight layer; layers: {', '.join(names)}")
    return Source(layers, model.tensors)


def load_source(source: dict[str, Any]) -> Source:
    """The tensors a layer entry's source names (module docstring)."""
    if "digits" in source:
        return _digits(source["digits"])
    if "synthetic" in source:
        shape = parse_shape(source["synthetic"])
        kind = source.get("distribution", "gaussian")
        weights = synthetic(kind, shape, source.get("seed", 0))
        return Source([(f"{kind}{shape[0]}x{shape[1]}", weights, ())])
    if "example" in source:
        name = source["example"]
        found = _model_file(example_path(name), source)
        return dataclasses.replace(found, geometry=example_geometry(name))
    return _model_file(Path(source["weights"]), source)


def source_weights(source: dict[str, Any]) -> list[tuple[str, np.ndarray]]:
    """(name, weight matrix (m, n)) of every layer a layer entry's source names."""
    return [(name, w) for name, w, _ in load_source(source).layers]


def layer_geometry(
    name: str, settings: dict[str, Any], shape: tuple[int, int], kernel: tuple[int, ...]
) -> Geometry:
    """The geometry of layer ``name`` from its resolved ``tokens`` / ``conv`` settings;
    a kernel tensor must have a ``conv`` geometry."""
    tokens, conv = settings.get("tokens"), settings.get("conv")
    where = f"layer {name}"
    if tokens is not None and conv is not None:
        raise ConfigError(f"{where}: both tokens and conv are set; a layer has one geometry")
    if conv is not None:
        return conv_geometry(f"{where}: conv", conv, shape, kernel)
    if kernel:
        raise ConfigError(
            f"{where} is a {'x'.join(map(str, kernel))} convolution kernel: give its conv "
            f"geometry (conv: {{input: [H, W], stride: S, padding: P}}) in its layer entry "
            f"or an override"
        )
    return Geometry() if tokens is None else tokens_geometry(tokens)


@dataclasses.dataclass(frozen=True)
class SimLayer:
    """One layer to simulate: ``name``, ``weights`` (m, n), its resolved ``config``
    (format, spec, sparsity, quantize) and ``geometry``."""

    name: str
    weights: np.ndarray
    config: LayerConfig
    geometry: Geometry


@dataclasses.dataclass(frozen=True)
class Expanded:
    """A configuration's layers, and its files' side tensors (``side_bits`` at their
    entries' value precision) and skipped tensors."""

    layers: list[SimLayer]
    side: list[Tensor]
    side_bits: int
    skipped: list[Tensor]


def side_precision(entry: LayerConfig) -> int:
    """Bits of a side value of ``entry``: its quantize width (8 or 16), else 32."""
    if entry.quantize is None:
        return FLOAT_BITS
    return 8 if entry.quantize <= 8 else 16


def expand(cfg: SimConfig) -> Expanded:
    """Every layer of ``cfg`` with its settings and geometry (module docstring)."""
    layers: list[SimLayer] = []
    side: list[Tensor] = []
    side_bits = 0
    skipped: list[Tensor] = []
    for entry in cfg.layers:
        found = load_source(entry.source)
        for name, weights, kernel in found.layers:
            base = entry.settings()
            if base["tokens"] is None and base["conv"] is None and name in found.geometry:
                base.update(_geometry_keys(found.geometry[name]))
            settings = resolve(name, base, cfg.overrides)
            layer_cfg = entry.with_settings(settings, f"layer {name} (after overrides)")
            geometry = layer_geometry(name, settings, weights.shape, kernel)
            layers.append(SimLayer(name, weights, layer_cfg, geometry))
        entry_side = [t for t in found.tensors if t.role == "side"]
        side += entry_side
        side_bits += sum(t.size for t in entry_side) * side_precision(entry)
        skipped += [t for t in found.tensors if t.role == "skipped"]
    names = [layer.name for layer in layers]
    unused = unused_patterns(names, cfg.overrides)
    if unused:
        sample = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
        raise ConfigError(
            f"overrides: match {unused[0]!r} matches no layer of this configuration; its "
            f"layers are named like {sample}"
        )
    return Expanded(layers, side, side_bits, skipped)


def _geometry_keys(geometry: dict[str, Any]) -> dict[str, Any]:
    """An example's geometry entry as layer keys: ``tokens`` or ``conv``."""
    if "tokens" in geometry:
        return {"tokens": geometry["tokens"]}
    return {"conv": dict(geometry)} if geometry else {}


def encode_layer(
    weights: np.ndarray, cfg: LayerConfig, cache: bool = True
) -> tuple[np.ndarray, Encoded]:
    """``(reference, encoded)``: the layer quantized to ``cfg.quantize`` bits (when
    set), pruned to ``cfg.sparsity`` with the structure of ``cfg.format`` and encoded;
    ``reference`` is the matrix the encoding stands for. ``cache``: through the
    encoded-layer cache (:mod:`codesign.models.encoded_cache`), so a layer met again
    (another run, another stage of a sweep point) is read back, not encoded again."""
    spec = get_format(cfg.format).spec_type(**cfg.spec)
    return compress_layer(weights, cfg.format, spec, cfg.sparsity, cfg.quantize, cache=cache)
