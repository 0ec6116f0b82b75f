"""Simulator configuration files: YAML validated against a JSON schema.

A configuration names the architecture, the energy table and the layers::

    name: digits-csr                 # optional label
    energy_table: default            # or a YAML file overriding entries of the default
    seed: 0                          # activations X are drawn from it
    engine: auto                     # auto | event | recurrence (codesign.sim.engine)
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
      tile: {n_cols: 0}              # > 0: the machine is the RTL tile with that many
                                     #   columns (codesign.sim.arch.tile_arch)
    defaults: {format: csr, spec: {}, sparsity: 0.9, quantize: 8}
    layers:
      - digits: all                  # fc1, fc2, fc3 of the digits MLP (or one name)
      - synthetic: 4096x4096         # + distribution (gaussian|laplacian), seed
        format: viterbi
        spec: {n_out: 5}
      - weights: layers.npz          # every layer of the file (or key: NAME)
        select: ["encoder.layer.0.*"] # optional: name patterns selecting its tensors
        tokens: 128                  # transformer matmuls: tokens per input
      - example: resnet18            # an example model file (models/examples.py), with
                                     #   its layers' own geometry
      - synthetic: 64x576
        conv: {kernel: [3, 3], stride: 1, padding: 1, input: [56, 56]}
    overrides:                       # per layer by name pattern, in order (last wins)
      - match: "conv1.*"             # one pattern or a list
        format: csr
        sparsity: 0.5
      - match: ["*.downsample.*", "fc.*"]
        quantize: 16

Each layer takes ``format``, ``spec``, ``sparsity`` (``null``: no pruning),
``quantize`` (value bits; ``null``: keep float32) and its geometry from ``defaults``
unless its entry sets them, and every matching override changes them further. The
geometry (:mod:`codesign.sim.geometry`): ``tokens: T`` (a matmul over T tokens per
input), ``conv`` (``input`` size required; ``stride``, ``padding`` default 1 and 0; one
integer or one per kernel dimension; ``kernel`` only for a 2-D matrix source — a file's
kernel tensor brings its own), or neither (fully connected). A file's kernel tensor
(3-D or more) needs a ``conv`` geometry. A file's side tensors (biases, norms) are read
once from DRAM at the entry's value precision (its ``quantize`` width, else 32 bits);
its skipped tensors are listed. ``engine`` chooses how passes are timed: the SimPy
processes (``event``, the reference), the row-order recurrence that gives the same
cycles where no buffer bank can be short (``recurrence``), or the recurrence where it
applies and the processes elsewhere (``auto``, the default).
Errors name the key path and the allowed values.

The file is read by :func:`codesign.config_files.load_yaml` (UTF-8, no Python tags,
bounded nesting and alias expansion, no repeated key, one-line syntax errors naming the
line and column) and checked with its one rule for numbers: an integer key takes an
integer literal (``lanes: 16.0`` is refused) and no number is NaN or infinite.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import jsonschema

from codesign.config_files import Validator, check_finite, integer_hint, load_yaml
from codesign.models.examples import EXAMPLES
from codesign.models.registry import FORMATS
from codesign.models.specs import SpecError, spec_class
from codesign.sim.arch import NESTED_KEYS, Arch, ConfigError
from codesign.sim.engine import ENGINES

_POS_INT = {"type": "integer", "minimum": 1}
_DIMS = {
    "description": "an integer >= 1, or a list of them (one per kernel dimension)",
    "oneOf": [_POS_INT, {"type": "array", "minItems": 1, "items": _POS_INT}],
}
_CONV = {
    "type": ["object", "null"],
    "additionalProperties": False,
    "required": ["input"],
    "properties": {
        "kernel": _DIMS,
        "stride": _DIMS,
        "padding": {
            "description": "an integer >= 0, or a list of them (one per kernel dimension)",
            "oneOf": [
                {"type": "integer", "minimum": 0},
                {"type": "array", "minItems": 1, "items": {"type": "integer", "minimum": 0}},
            ],
        },
        "input": _DIMS,
    },
}
#: Geometry keys of a layer (:mod:`codesign.sim.geometry`).
GEOMETRY_KEYS = {"tokens": {"type": ["integer", "null"], "minimum": 1}, "conv": _CONV}
_LAYER_KEYS = {
    "format": {"enum": sorted(FORMATS)},
    "spec": {"type": "object"},
    "sparsity": {"type": ["number", "null"], "minimum": 0, "exclusiveMaximum": 1},
    "quantize": {"type": ["integer", "null"], "minimum": 2, "maximum": 16},
    **GEOMETRY_KEYS,
}
_SOURCE_KINDS = ("digits", "synthetic", "weights", "example")
_SOURCES = {
    "digits": {"type": "string"},
    "synthetic": {"type": "string", "pattern": r"^[0-9]+x[0-9]+$"},
    "distribution": {"enum": ["gaussian", "laplacian"]},
    "seed": {"type": "integer", "minimum": 0},
    "weights": {"type": "string"},
    "example": {"enum": list(EXAMPLES)},
    "key": {"type": "string"},
    "select": {"type": "array", "minItems": 1, "items": {"type": "string"}},
}
_MATCH = {
    "description": "a name pattern (fnmatch), or a list of them",
    "oneOf": [
        {"type": "string", "minLength": 1},
        {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
    ],
}

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["layers"],
    "properties": {
        "name": {"type": "string"},
        "energy_table": {"type": "string"},
        "seed": {"type": "integer", "minimum": 0},
        "engine": {"enum": list(ENGINES)},
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
                "tile": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "n_cols": {"type": "integer", "minimum": 0, "maximum": 4096},
                        "row_bits": {"type": "integer", "minimum": 1, "maximum": 32},
                    },
                },
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
                "oneOf": [{"required": [kind]} for kind in _SOURCE_KINDS],
            },
        },
        "overrides": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["match"],
                "properties": {"match": _MATCH, **_LAYER_KEYS},
            },
        },
    },
}

_ARCH_KEYS = {key: field for field, key in NESTED_KEYS.items()}


@dataclasses.dataclass(frozen=True)
class LayerConfig:
    """One layer entry: its ``source`` (``digits``/``synthetic``/``weights``/``example``
    keys), storage ``format``, ``spec`` fields, ``sparsity``, ``quantize`` bits and its
    geometry (``tokens``, ``conv``: module docstring)."""

    source: dict[str, Any]
    format: str
    spec: dict[str, Any]
    sparsity: float | None
    quantize: int | None
    tokens: int | None = None
    conv: dict[str, Any] | None = None

    def settings(self) -> dict[str, Any]:
        """The layer keys (format, spec, sparsity, quantize, tokens, conv) as a dict."""
        return {k: getattr(self, k) for k in _LAYER_KEYS}

    def with_settings(self, settings: dict[str, Any], where: str) -> LayerConfig:
        """This entry with ``settings`` (layer keys) replaced, checked: the spec must
        fit the format (errors start with ``where``)."""
        merged = {**self.settings(), **settings}
        _check_spec(f"{where}.spec", merged["format"], merged["spec"])
        return dataclasses.replace(self, **merged)


@dataclasses.dataclass(frozen=True)
class SimConfig:
    """A validated configuration: ``arch``, energy table source, activation ``seed``,
    the layer entries, the per-layer ``overrides`` (:mod:`codesign.models.overrides`) and
    the ``engine`` that times the passes (:data:`codesign.sim.engine.ENGINES`)."""

    name: str
    arch: Arch
    energy_table: str
    seed: int
    layers: tuple[LayerConfig, ...]
    overrides: tuple[dict[str, Any], ...] = ()
    engine: str = "auto"


def _path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "(top level)"


def _explain(error: jsonschema.ValidationError) -> str:
    where, schema = _path(error), error.schema
    if error.validator == "additionalProperties":
        allowed = ", ".join(sorted(schema.get("properties", {})))
        return f"{where}: {error.message}; allowed keys: {allowed}"
    if error.validator == "required":
        return f"{where}: {error.message}"
    if error.validator == "oneOf" and "description" in schema:
        return f"{where} = {error.instance!r}; expected {schema['description']}"
    if error.validator == "oneOf":
        return f"{where}: a layer needs exactly one of the keys {', '.join(_SOURCE_KINDS)}"
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
        hint = integer_hint(error.instance)
        return f"{where} = {error.instance!r}; expected {schema['type']}{hint}"
    return f"{where}: {error.message}"


def parse_config(doc: Any) -> SimConfig:
    """Validate a loaded YAML document and build the :class:`SimConfig`."""
    check_finite(doc, ConfigError)
    validator = Validator(SCHEMA)
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
        source = {k: v for k, v in entry.items() if k in _SOURCES}
        layers.append(LayerConfig(source=source, **{k: merged.get(k) for k in _LAYER_KEYS}))
    overrides = tuple(dict(o) for o in doc.get("overrides", []))
    for i, o in enumerate(overrides):
        if "format" in o:
            _check_spec(f"overrides.{i}.spec", o["format"], o.get("spec", {}))
    return SimConfig(
        name=str(doc.get("name", "simulation")),
        arch=arch,
        energy_table=str(doc.get("energy_table", "default")),
        seed=int(doc.get("seed", 0)),
        layers=tuple(layers),
        overrides=overrides,
        engine=str(doc.get("engine", "auto")),
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
    """Read (:func:`codesign.config_files.load_yaml`) and validate a YAML configuration
    file; errors name the file."""
    try:
        return parse_config(load_yaml(path, ConfigError))
    except ConfigError as exc:
        if str(exc).startswith(str(path)):
            raise
        raise ConfigError(f"{path}: {exc}") from None
