"""The layers a configuration names, loaded, quantized, pruned and encoded."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from codesign.models.format import Encoded
from codesign.models.registry import get_format
from codesign.models.workloads import (
    load_digits_mlp,
    load_weights,
    parse_shape,
    quantize_symmetric,
    synthetic,
)
from codesign.sim.arch import ConfigError
from codesign.sim.config import LayerConfig


def source_weights(source: dict) -> list[tuple[str, np.ndarray]]:
    """(name, weights (out, in)) of every matrix a layer entry's source names."""
    if "digits" in source:
        mlp = load_digits_mlp()
        wanted = source["digits"]
        if wanted == "all":
            return list(zip(mlp.layer_names, mlp.weights, strict=True))
        if wanted not in mlp.layer_names:
            raise ConfigError(
                f"layers.digits = {wanted!r}; allowed: all, {', '.join(mlp.layer_names)}"
            )
        return [(wanted, mlp.weights[mlp.layer_names.index(wanted)])]
    if "synthetic" in source:
        shape = parse_shape(source["synthetic"])
        kind = source.get("distribution", "gaussian")
        return [(f"{kind}{shape[0]}x{shape[1]}", synthetic(kind, shape, source.get("seed", 0)))]
    arrays = load_weights(Path(source["weights"]))
    key = source.get("key")
    if key is None:
        return list(arrays.items())
    if key not in arrays:
        raise ConfigError(f"layers.key = {key!r}; allowed: {', '.join(arrays)}")
    return [(key, arrays[key])]


def encode_layer(weights: np.ndarray, cfg: LayerConfig) -> tuple[np.ndarray, Encoded]:
    """``(reference, encoded)``: the layer quantized to ``cfg.quantize`` bits (when
    set), pruned to ``cfg.sparsity`` with the structure of ``cfg.format`` and encoded;
    ``reference`` is the matrix the encoding stands for."""
    if cfg.quantize is not None:
        weights = quantize_symmetric(weights, cfg.quantize)[0]
    fmt = get_format(cfg.format)
    return fmt.compress(weights, cfg.sparsity, fmt.spec_type(**cfg.spec))
