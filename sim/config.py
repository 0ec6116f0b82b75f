"""Simulator configuration files: YAML validated against a JSON schema.

A configuration names the architecture, the energy table and the layers::

    name: digits-csr                 # optional label
    energy_table: default            # or a YAML file overriding entries of the default
    seed: 0                          # activations X are drawn from it
    arch:                            # every key optional (defaults of codesign.sim.arch.Arch)
      clock_ghz: 1.0
      lanes: 16
      decoders: 4
      batch: 1
      dram: {bytes_per_cycle: 16, latency_cycles: 100}
      buffer: {bytes: 65536, banks: 4, bank_bytes_per_cycle: 16}
      lane_fifo_rows: 2
      activation_bits: 8
      accumulator_bits: 32
      bitmap_slice_bits: 64
      index_units: 1
    defaults: {format: csr, spec: {}, sparsity: 0.9, quantize: 8}
    layers:
      - digits: all                  # fc1, fc2, fc3 of the digits MLP (or one name)
      - synthetic: 4096x4096         # + distribution (gaussian|laplacian), seed
        format: viterbi
        spec: {n_out: 5}
      - weights: layers.npz          # every matrix of the file (or key: NAME)

Each layer takes ``format``, ``spec``, ``sparsity`` (``null``: no pruning) and
``quantize`` (value bits; ``null``: keep float32) from ``defaults`` unless it sets
them. Errors name the key path and the allowed values.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from codesign.models.registry import FORMATS
from codesign.models.specs import SpecError, spec_class
from codesign.sim.arch import Arch, ConfigError

#: Formats that store floating-point values only (``quantize`` must be null).
FLOAT_ONLY = ("lowrank",)
_POS_INT = {"type": "integer", "minimum": 1}
_LAYER_KEYS = {
    "format": {"enum": sorted(FORMATS)},
    "spec": {"type": "object"},
    "sparsity": {"type": ["number", "null"], "minimum": 0, "exclusiveMaximum": 1},
    "quantize": {"type": ["integer", "null"], "minimum": 2, "maximum": 16},
}
_SOURCES = {
    "digits": {"type": "string"},
    "synthetic": {"type": "string", "pattern": r"^[0-9]+x[0-9]+$"},
    "distribution": {"enum": ["gaussian", "laplacian"]},
    "seed": {"type": "integer", "minimum": 0},
    "weights": {"type": "string"},
    "key": {"type": "string"},
}

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["layers"],
    "properties": {
        "name": {"type": "string"},
        "energy_table": {"type": "string"},
        "seed": {"type": "integer", "minimum": 0},
        "arch": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "clock_ghz": {"type": "number", "exclusiveMinimum": 0},
                "lanes": _POS_INT,
                "decoders": _POS_INT,
                "batch": _POS_INT,
                "dram": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "bytes_per_cycle": {"type": "number", "exclusiveMinimum": 0},
                        "latency_cycles": {"type": "integer", "minimum": 0},
                    },
                },
                "buffer": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "bytes": _POS_INT,
                        "banks": _POS_INT,
                        "bank_bytes_per_cycle": _POS_INT,
                    },
                },
                "lane_fifo_rows": _POS_INT,
                "activation_bits": {"type": "integer", "minimum": 1, "maximum": 64},
                "accumulator_bits": {"type": "integer", "minimum": 1, "maximum": 64},
                "bitmap_slice_bits": _POS_INT,
                "index_units": _POS_INT,
            },
        },
        "defaults": {"type": "object", "additionalProperties": False, "properties": _LAYER_KEYS},
        "layers": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "properties": {**_SOURCES, **_LAYER_KEYS},
                "oneOf": [
                    {"required": ["digits"]},
                    {"required": ["synthetic"]},
                    {"required": ["weights"]},
                ],
            },
        },
    },
}

_ARCH_KEYS = {
    ("dram", "bytes_per_cycle"): "dram_bytes_per_cycle",
    ("dram", "latency_cycles"): "dram_latency_cycles",
    ("buffer", "bytes"): "buffer_bytes",
    ("buffer", "banks"): "buffer_banks",
    ("buffer", "bank_bytes_per_cycle"): "bank_bytes_per_cycle",
}


@dataclasses.dataclass(frozen=True)
class LayerConfig:
    """One layer entry: its ``source`` (``digits``/``synthetic``/``weights`` keys),
    storage ``format``, ``spec`` fields, ``sparsity`` and ``quantize`` bits."""

    source: dict[str, Any]
    format: str
    spec: dict[str, Any]
    sparsity: float | None
    quantize: int | None


@dataclasses.dataclass(frozen=True)
class SimConfig:
    """A validated configuration: ``arch``, energy table source, activation ``seed``
    and the layer entries."""

    name: str
    arch: Arch
    energy_table: str
    seed: int
    layers: tuple[LayerConfig, ...]


def _path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "(top level)"


def _explain(error: jsonschema.ValidationError) -> str:
    where, schema = _path(error), error.schema
    if error.validator == "additionalProperties":
        allowed = ", ".join(sorted(schema.get("properties", {})))
        return f"{where}: {error.message}; allowed keys: {allowed}"
    if error.validator == "required":
        return f"{where}: {error.message}"
    if error.validator == "oneOf":
        return f"{where}: a layer needs exactly one of the keys digits, synthetic, weights"
    if error.validator in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        bounds = [
            f"{op} {schema[k]}"
            for k, op in (
                ("minimum", ">="),
                ("exclusiveMinimum", ">"),
                ("maximum", "<="),
                ("exclusiveMaximum", "<"),
            )
            if k in schema
        ]
        return f"{where} = {error.instance!r} is out of range; allowed: {' and '.join(bounds)}"
    if error.validator == "enum":
        return f"{where} = {error.instance!r}; allowed: {', '.join(map(str, schema['enum']))}"
    if error.validator == "type":
        return f"{where} = {error.instance!r}; expected {schema['type']}"
    return f"{where}: {error.message}"


def parse_config(doc: Any) -> SimConfig:
    """Validate a loaded YAML document and build the :class:`SimConfig`."""
    validator = jsonschema.Draft202012Validator(SCHEMA)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        raise ConfigError("; ".join(_explain(e) for e in errors[:3]))
    arch_doc = doc.get("arch", {})
    fields: dict[str, Any] = {}
    for key, value in arch_doc.items():
        if isinstance(value, dict):
            fields.update({_ARCH_KEYS[(key, sub)]: v for sub, v in value.items()})
        else:
            fields[key] = value
    arch = Arch(**fields)
    defaults = {"format": "csr", "spec": {}, "sparsity": 0.9, "quantize": 8}
    defaults.update(doc.get("defaults", {}))
    layers = []
    for i, entry in enumerate(doc["layers"]):
        merged = {**defaults, **{k: v for k, v in entry.items() if k in _LAYER_KEYS}}
        _check_spec(f"layers.{i}.spec", merged["format"], merged["spec"])
        if merged["format"] in FLOAT_ONLY and merged["quantize"] is not None:
            raise ConfigError(
                f"layers.{i}.quantize = {merged['quantize']}: format {merged['format']} "
                f"stores floating-point factors; allowed: null"
            )
        layers.append(
            LayerConfig(
                source={k: v for k, v in entry.items() if k in _SOURCES},
                format=merged["format"],
                spec=dict(merged["spec"]),
                sparsity=merged["sparsity"],
                quantize=merged["quantize"],
            )
        )
    return SimConfig(
        name=str(doc.get("name", "simulation")),
        arch=arch,
        energy_table=str(doc.get("energy_table", "default")),
        seed=int(doc.get("seed", 0)),
        layers=tuple(layers),
    )


def _check_spec(where: str, fmt: str, spec: dict[str, Any]) -> None:
    cls = spec_class(fmt)
    allowed = {f.name for f in dataclasses.fields(cls)}
    for key in spec:
        if key not in allowed:
            raise ConfigError(
                f"{where}.{key}: not a field of format {fmt}; allowed: "
                f"{', '.join(sorted(allowed)) or '(none)'}"
            )
    try:
        cls(**spec)
    except (SpecError, TypeError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def load_config(path: str | Path) -> SimConfig:
    """Read and validate a YAML configuration file."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from None
    return parse_config(doc)
