"""Sweep configurations: read a YAML config, validate it, expand it into points.

A config (YAML mapping)::

    name: small                       # optional, default: the file name
    stages: [compress]                # names from codesign.experiments.sweeps.stages.STAGES
    base:                             # values every point starts from
      workload: {synthetic: 64x64}
    grid:                             # every combination of the lists; a list of such
      - format: [csr, relative]       #   mappings is the union of their grids
        sparsity: [0.5, 0.75, 0.9]
      - format: [xor]
        sparsity: [0.9]
        spec.n_out: [32, 64]          # a dotted key sets one field of spec/arch/workload
    random:                           # `samples` draws, each combined with every grid
      samples: 4                      #   point (the same draws for all of them)
      seed: 0
      space:
        workload.seed: [0, 1, 2]                  # a choice
        quantize: {low: 4, high: 8, int: true}    # uniform (log: true: log-uniform)
    objectives: [{metric: total_bits, goal: min, top: 3}]
    plots: [{x: sparsity, y: index_bits_per_weight, group: format}]
    columns: [{name: index_vs_csr, expr: index_bits / baseline.index_bits - 1,
               baseline: {where: {format: csr}, match: [workload, sparsity]}}]
    comparisons: [{title: Claim, where: {format: viterbi}, columns: [sparsity, index_vs_csr],
                   reference: {paper: -0.852}}]

A grid mapping may hold ``zip``: a list of mappings, each setting several keys together
(``zip: [{spec.b: 2, sparsity: 0.5}, {spec.b: 4, sparsity: 0.75}]``), crossed with the
mapping's other keys. ``stages`` may also be set in ``base``, a grid or ``random``
(a list of stage-name lists): the points it reaches run those stages instead of the
config's ``stages``, so one config can mix, say, compress points and prune points.
``objectives``, ``plots``, ``columns`` (derived columns) and ``comparisons`` are read by
:mod:`codesign.experiments.reports.sweep_report`, which documents them; their expressions
(:mod:`.expressions`) are parsed here, so a typo fails before the sweep runs.

A point is a JSON dict: ``workload`` ({synthetic: MxN, distribution, seed} | {model:
digits | encoder | resnet18} | {weights: FILE}, each with an optional ``layers`` list of
name patterns selecting tensors, or None), ``format``, ``spec`` (every field of the
format's spec, defaults filled in), ``sparsity``, ``quantize``, ``overrides`` (per-layer
settings by name pattern: a list of mappings with ``match`` and any of ``format``,
``spec``, ``sparsity``, ``quantize`` — and ``tokens``/``conv`` for the simulate stage —
as in a simulator config, :mod:`codesign.models.overrides`), ``arch`` (hardware parameters),
``stages`` and the fields its stages add (``method``, ``finetune_epochs``, ``seed`` for
``prune``). Later values replace earlier ones (base, then grid, then random), whole
dicts before dotted keys. A ``weights`` path is read relative to the working directory
and its key covers the path, not the file's contents. Bad input raises
:class:`SweepConfigError` naming the key as a path (``grid.spec.n_out[1]``) and what is
allowed.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import math
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np

from codesign.config_files import Validator, check_finite, integer_hint, load_yaml
from codesign.experiments.jobs.compress import MODELS
from codesign.experiments.sweeps.expressions import ExpressionError, parse
from codesign.experiments.sweeps.stages import STAGES, Point, Stage
from codesign.experiments.sweeps.store import point_key
from codesign.models.registry import FORMATS
from codesign.models.specs import SpecError, spec_class
from codesign.sim.config import SCHEMA as SIM_SCHEMA


class SweepConfigError(ValueError):
    """A sweep config is malformed; the message names the key and what is allowed."""


_SCALAR = {"type": ["integer", "number", "string", "boolean", "null"]}
_WORKLOAD_FIELDS = {
    "synthetic": {"type": "string", "pattern": "^[0-9]+[xX][0-9]+$"},
    "distribution": {"enum": ["gaussian", "laplacian"]},
    "seed": {"type": "integer", "minimum": 0},
    "model": {"enum": list(MODELS)},
    "weights": {"type": "string", "minLength": 1},
    "layers": {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
}
_WORKLOAD_SOURCES = ("synthetic", "model", "weights")
_OVERRIDES = copy.deepcopy(SIM_SCHEMA["properties"]["overrides"])
_OVERRIDES["items"]["properties"]["format"] = {"enum": list(FORMATS)}
#: Fields of every point: JSON schema of the value, ``default`` when not given.
COMMON_FIELDS: dict[str, dict[str, Any]] = {
    "workload": {
        "type": ["object", "null"],
        "properties": _WORKLOAD_FIELDS,
        "additionalProperties": False,
        "default": None,
    },
    "format": {"enum": list(FORMATS), "default": None},
    "spec": {"type": "object", "additionalProperties": _SCALAR, "default": {}},
    "sparsity": {
        "type": ["number", "null"],
        "minimum": 0,
        "exclusiveMaximum": 1,
        "default": None,
    },
    "quantize": {"type": ["integer", "null"], "minimum": 2, "maximum": 16, "default": None},
    "overrides": {**_OVERRIDES, "default": []},
    "arch": {"type": "object", "additionalProperties": _SCALAR, "default": {}},
}
_DOTTED = {
    r"^spec\.[A-Za-z_][A-Za-z0-9_]*$": ("spec.<field>", _SCALAR),
    r"^arch\.[A-Za-z_][A-Za-z0-9_]*$": ("arch.<name>", _SCALAR),
}
_RANGE = {
    "type": "object",
    "required": ["low", "high"],
    "properties": {
        "low": {"type": "number"},
        "high": {"type": "number"},
        "log": {"type": "boolean"},
        "int": {"type": "boolean"},
    },
    "additionalProperties": False,
}
_WHERE = {"type": "object"}
#: The kinds of a plot's reference line or curve (exactly one per reference).
REFERENCE_KINDS = ("x", "y", "points", "expr", "column")


def _strip_default(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k != "default"}


def point_fields(stages: Iterable[Stage]) -> dict[str, dict[str, Any]]:
    """The fields of a point running ``stages``: the common ones and the stages' own."""
    fields = dict(COMMON_FIELDS)
    for stage in stages:
        fields.update(stage.fields)
    return fields


_STAGE_LIST = {"type": "array", "minItems": 1, "uniqueItems": True, "items": {"enum": list(STAGES)}}


def _value_schemas() -> dict[str, dict[str, Any]]:
    values = {k: _strip_default(s) for k, s in point_fields(STAGES.values()).items()}
    values.update({f"workload.{k}": s for k, s in _WORKLOAD_FIELDS.items()})
    values["stages"] = _STAGE_LIST
    return values


def _keyed(wrap: Callable[[dict], dict], min_properties: int = 0) -> dict[str, Any]:
    values = _value_schemas()
    return {
        "type": "object",
        "minProperties": min_properties,
        "properties": {k: wrap(s) for k, s in values.items()},
        "patternProperties": {p: wrap(s) for p, (_, s) in _DOTTED.items()},
        "additionalProperties": False,
    }


def _list_of(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "minItems": 1, "items": schema}


def _list_or(other: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    return {"if": {"type": "array"}, "then": _list_of(item), "else": other}


_NAMES = {"type": ["string", "array"], "items": {"type": "string"}}
_GOAL = {"enum": ["min", "max"]}
_COLUMN_NAME = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"


def _object(props: dict[str, Any], required: Iterable[str] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "required": list(required),
        "properties": props,
        "additionalProperties": False,
    }


def _report_schemas() -> dict[str, dict[str, Any]]:
    """Schemas of the keys :mod:`codesign.experiments.reports.sweep_report` reads."""
    reference = _object(
        {
            "label": {"type": "string"},
            "x": {"type": "number"},
            "y": {"type": "number"},
            "points": _list_of(
                {"type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "number"}}
            ),
            "expr": {"type": "string"},
            "column": {"type": "string"},
            "for_y": {"type": "string"},
            "style": {"enum": ["line", "markers"]},
        }
    )
    plot = _object(
        {
            "x": {"type": "string"},
            "y": {**_NAMES, "minItems": 1},
            "group": _NAMES,
            "facet": {"type": "string"},
            "wrap": {"type": "integer", "minimum": 1},
            "color": {"type": "string"},
            "kind": {"enum": ["line", "scatter"]},
            "logx": {"type": "boolean"},
            "logy": {"type": "boolean"},
            "title": {"type": "string"},
            "xlabel": {"type": "string"},
            "ylabel": _NAMES,
            "where": _WHERE,
            "filter": {"type": "string"},
            "pareto": _object({"x": _GOAL, "y": _GOAL}, ["x", "y"]),
            "reference": {"type": "array", "items": reference},
        },
        ["x", "y"],
    )
    objective = _object(
        {
            "metric": {"type": "string"},
            "goal": _GOAL,
            "top": {"type": "integer", "minimum": 1},
            "where": _WHERE,
            "filter": {"type": "string"},
        },
        ["metric", "goal"],
    )
    column = _object(
        {
            "name": {"type": "string", "pattern": _COLUMN_NAME},
            "expr": {"type": "string"},
            "unit": {"type": "string"},
            "baseline": _object(
                {
                    "where": _WHERE,
                    "filter": {"type": "string"},
                    "match": {"type": "array", "items": {"type": "string"}},
                }
            ),
        },
        ["name", "expr"],
    )
    cell = {
        "if": {"type": "object"},
        "then": _object(
            {
                "column": {"type": "string"},
                "label": {"type": "string"},
                "format": {"type": "string"},
            },
            ["column"],
        ),
        "else": {"type": "string"},
    }
    comparison = _object(
        {
            "title": {"type": "string"},
            "where": _WHERE,
            "filter": {"type": "string"},
            "best": _object(
                {"metric": {"type": "string"}, "goal": _GOAL, "per": _NAMES}, ["metric", "goal"]
            ),
            "columns": _list_of(cell),
            "reference": {"type": "object", "additionalProperties": _SCALAR},
            "note": {"type": "string"},
        },
        ["title", "columns"],
    )
    return {
        "objectives": {"type": "array", "items": objective},
        "plots": {"type": "array", "items": plot},
        "columns": {"type": "array", "items": column},
        "comparisons": {"type": "array", "items": comparison},
    }


def config_schema() -> dict[str, Any]:
    """JSON schema of a sweep config (stage names and fields from the stage registry,
    formats from the format registry)."""
    grid = _keyed(_list_of, min_properties=1)
    grid["properties"]["zip"] = _list_of(_keyed(lambda s: s, min_properties=1))
    return {
        "type": "object",
        "required": ["stages"],
        "properties": {
            "name": {"type": "string", "minLength": 1},
            "description": {"type": "string"},
            "stages": _STAGE_LIST,
            "base": _keyed(lambda s: s),
            "grid": _list_or(grid, grid),
            "random": {
                "type": "object",
                "required": ["samples", "space"],
                "properties": {
                    "samples": {"type": "integer", "minimum": 1},
                    "seed": {"type": "integer", "minimum": 0},
                    "space": _keyed(lambda s: _list_or(_RANGE, s), min_properties=1),
                },
                "additionalProperties": False,
            },
            **_report_schemas(),
        },
        "additionalProperties": False,
    }


def _path(parts: Iterable[Any]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _message(error: jsonschema.ValidationError, root: str = "") -> str:
    path = _path([root, *error.absolute_path] if root else error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        props = error.schema.get("properties", {})
        patterns = error.schema.get("patternProperties", {})
        unknown = [
            k
            for k in error.instance
            if k not in props and not any(re.search(p, k) for p in patterns)
        ]
        allowed = [*props, *(_DOTTED[p][0] for p in patterns if p in _DOTTED)]
        where = f"{path}.{unknown[0]}" if path else unknown[0]
        return f"{where}: unknown key; allowed keys: {', '.join(allowed) or '(none)'}"
    hint = integer_hint(error.instance) if error.validator == "type" else ""
    return f"{path or 'config'}: {error.message}{hint}"


def _check_schema(value: Any, schema: dict[str, Any], root: str = "") -> None:
    validator = Validator(schema)
    errors = sorted(validator.iter_errors(value), key=lambda e: [str(p) for p in e.path])
    if errors:
        lines = list(dict.fromkeys(_message(e, root) for e in errors))
        raise SweepConfigError("; ".join(lines))


def validate_config(config: Any, name: str = "sweep") -> dict[str, Any]:
    """Check ``config`` against :func:`config_schema` and the rules the schema cannot
    state; return it with ``name`` filled in."""
    if not isinstance(config, dict):
        raise SweepConfigError(f"a sweep config is a mapping, got {type(config).__name__}")
    check_finite(config, SweepConfigError)
    _check_schema(config, config_schema())
    if "grid" not in config and "random" not in config:
        raise SweepConfigError("config: give grid, random or both (nothing to sweep)")
    for i, grid in enumerate(_grids(config)):
        prefix = f"grid[{i}]" if isinstance(config["grid"], list) else "grid"
        for j, item in enumerate(grid.get("zip", [])):
            for key in item:
                if key in grid:
                    raise SweepConfigError(
                        f"{prefix}.zip[{j}].{key}: also a key of the grid mapping; set it "
                        f"either in zip or beside it"
                    )
    swept = set(swept_keys({**config, "random": {}}))
    for key in config.get("random", {}).get("space", {}):
        if key in swept:
            raise SweepConfigError(
                f"random.space.{key}: also a grid key; a key is either swept or sampled"
            )
    for key, dist in config.get("random", {}).get("space", {}).items():
        if isinstance(dist, dict):
            _check_range(f"random.space.{key}", dist)
    _check_report_keys(config)
    _check_name(config.get("name", name), "name" in config)
    return {"name": name, **config}


#: A sweep name: one folder name of letters, digits, ``.``, ``_``, ``+`` and ``-``,
#: starting with a letter or a digit (no ``/``, no ``..``), at most 100 characters.
NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._+-]{0,99}"


def _check_name(name: str, given: bool) -> None:
    """The sweep's name must be one safe folder name: it names the default sweep
    directory ``results/sweeps/NAME`` and the report folder of a config sharing a
    directory, and must never lead out of them."""
    if re.fullmatch(NAME_PATTERN, name):
        return
    where = "name" if given else "name (from the file name; set name: to choose one)"
    raise SweepConfigError(
        f"{where}: {name!r} is not a folder name: use 1 to 100 letters, digits, '.', '_', "
        f"'+' or '-', starting with a letter or digit (no '/' or '..'); choose another "
        f"folder with --out"
    )


def _expression(origin: str, text: str) -> None:
    try:
        parse(text)
    except ExpressionError as exc:
        raise SweepConfigError(f"{origin}: {exc}") from None


def _check_report_keys(config: dict[str, Any]) -> None:
    """The rules of the report keys the schema cannot state; every expression parses."""
    for i, column in enumerate(config.get("columns", [])):
        _expression(f"columns[{i}].expr", column["expr"])
        if "filter" in column.get("baseline", {}):
            _expression(f"columns[{i}].baseline.filter", column["baseline"]["filter"])
        if "baseline" not in column and any(
            n.startswith("baseline.") for n in parse(column["expr"]).names
        ):
            raise SweepConfigError(
                f"columns[{i}].expr: reads baseline.* but the column declares no baseline "
                f"(add baseline: {{where: ..., match: [...]}})"
            )
    for key in ("plots", "objectives", "comparisons"):
        for i, item in enumerate(config.get(key, [])):
            if "filter" in item:
                _expression(f"{key}[{i}].filter", item["filter"])
    for i, plot in enumerate(config.get("plots", [])):
        if "color" in plot and plot.get("kind") != "scatter":
            raise SweepConfigError(f"plots[{i}].color: colouring by a column needs kind: scatter")
        for j, ref in enumerate(plot.get("reference", [])):
            given = [k for k in REFERENCE_KINDS if k in ref]
            if len(given) != 1:
                raise SweepConfigError(
                    f"plots[{i}].reference[{j}]: give exactly one of "
                    f"{', '.join(REFERENCE_KINDS)}, got {', '.join(given) or 'none'}"
                )
            if "expr" in ref:
                _expression(f"plots[{i}].reference[{j}].expr", ref["expr"])


def load_config(path: str | Path) -> dict[str, Any]:
    """Read (:func:`codesign.config_files.load_yaml`) and validate a YAML sweep config
    (``name`` defaults to the file's stem); errors name the file."""
    path = Path(path)
    config = load_yaml(path, SweepConfigError)
    try:
        return validate_config(config, path.stem)
    except SweepConfigError as exc:
        raise SweepConfigError(f"{path}: {exc}") from None


def _grids(config: dict[str, Any]) -> list[dict[str, list]]:
    grid = config.get("grid")
    if grid is None:
        return []
    return grid if isinstance(grid, list) else [grid]


def swept_keys(config: dict[str, Any]) -> list[str]:
    """The keys a config varies: its grid keys, then its random space keys."""
    keys = [
        key
        for grid in _grids(config)
        for k in grid
        for key in ([k] if k != "zip" else [z for item in grid["zip"] for z in item])
    ]
    return list(dict.fromkeys([*keys, *config.get("random", {}).get("space", {})]))


def _check_range(origin: str, dist: dict[str, Any]) -> None:
    if dist["low"] > dist["high"]:
        raise SweepConfigError(f"{origin}: low {dist['low']} must be <= high {dist['high']}")
    if dist.get("log") and dist["low"] <= 0:
        raise SweepConfigError(f"{origin}: log sampling needs low > 0, got {dist['low']}")
    if dist.get("int") and math.floor(dist["high"]) < math.ceil(dist["low"]):
        raise SweepConfigError(f"{origin}: no integer in [{dist['low']}, {dist['high']}]")


def _draw(rng: np.random.Generator, dist: dict[str, Any]) -> int | float:
    lo, hi = float(dist["low"]), float(dist["high"])
    if dist.get("log"):
        x = math.exp(rng.uniform(math.log(lo), math.log(hi)))
    else:
        x = rng.uniform(lo, hi)
    if dist.get("int"):
        return int(min(max(round(x), math.ceil(lo)), math.floor(hi)))
    return float(f"{x:.6g}")


#: An assignment of one config key: (dotted key, value, config path it came from).
Item = tuple[str, Any, str]


def _samples(random: dict[str, Any] | None) -> list[list[Item]]:
    if random is None:
        return [[]]
    rng = np.random.default_rng(random.get("seed", 0))
    draws = []
    for _ in range(random["samples"]):
        items = []
        for key, dist in random["space"].items():
            if isinstance(dist, list):
                value = copy.deepcopy(dist[int(rng.integers(len(dist)))])
            else:
                value = _draw(rng, dist)
            items.append((key, value, f"random.space.{key}"))
        draws.append(items)
    return draws


def _combinations(config: dict[str, Any]) -> list[list[Item]]:
    grids = _grids(config)
    many = isinstance(config.get("grid"), list)
    combos: list[list[Item]] = [] if grids else [[]]
    for i, grid in enumerate(grids):
        prefix = f"grid[{i}]" if many else "grid"
        choices = [
            [[(k, v, f"{prefix}.{k}")] for v in values] if k != "zip" else _zipped(prefix, values)
            for k, values in grid.items()
        ]
        for picked in itertools.product(*choices):
            combos.append([item for items in picked for item in items])
    return combos


def _zipped(prefix: str, items: list[dict[str, Any]]) -> list[list[Item]]:
    return [
        [(k, v, f"{prefix}.zip[{j}].{k}") for k, v in item.items()] for j, item in enumerate(items)
    ]


@dataclasses.dataclass
class _Draft:
    """A point being built: its values and where each key came from."""

    values: dict[str, Any]
    origins: dict[str, str]
    label: str

    def origin(self, key: str) -> str:
        head = key.split(".", 1)[0]
        return self.origins.get(key) or self.origins.get(head) or key

    def error(self, key: str, message: str) -> SweepConfigError:
        where = self.origin(key)
        return SweepConfigError(f"{where}: {message} (point {self.label})")


def _draft(items: list[Item]) -> _Draft:
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for key, value, origin in sorted(items, key=lambda item: "." in item[0]):
        if "." in key:
            head, field = key.split(".", 1)
            current = values.get(head)
            values[head] = {**(current if isinstance(current, dict) else {}), field: value}
        else:
            values[key] = copy.deepcopy(value)
        origins[key] = origin
    swept = [f"{k}={json.dumps(v)}" for k, v, origin in items if not origin.startswith("base")]
    return _Draft(values, origins, " ".join(swept) or "(base)")


def _normalize(draft: _Draft, default_stages: list[str]) -> Point:
    names = list(draft.values.pop("stages", default_stages))
    stages = [STAGES[name] for name in names]
    fields = point_fields(stages)
    for key in draft.values:
        if key not in fields:
            owners = [s.name for s in STAGES.values() if key in s.fields]
            raise draft.error(
                key,
                f"{key} is read by stage {', '.join(owners)}, which this sweep does not run "
                f"(stages: {', '.join(names)})",
            )
    point = {k: copy.deepcopy(s.get("default")) for k, s in fields.items()}
    point.update(draft.values)
    for stage in stages:
        for key, value in stage.derive(point).items():
            if point[key] is None:
                point[key] = value
    if point["format"] is None:
        raise draft.error("format", f"format is missing; formats: {', '.join(FORMATS)}")
    for key, schema in fields.items():
        _check_value(draft, key, point[key], _strip_default(schema))
    point["workload"] = _normalize_workload(draft, point["workload"])
    point["spec"] = _normalize_spec(draft, point["format"], point["spec"])
    for i, override in enumerate(point["overrides"]):
        fmt = override.get("format", point["format"])
        _normalize_spec(draft, fmt, override.get("spec", {}), f"overrides[{i}].spec")
    point["stages"] = names
    for stage in stages:
        try:
            stage.check(point)
        except ValueError as exc:
            raise SweepConfigError(f"stage {stage.name}: {exc} (point {draft.label})") from None
    readers = {key for stage in stages for key in stage.arch_keys(point)}
    for key in point["arch"]:
        if key not in readers:
            raise draft.error(
                f"arch.{key}",
                f"arch.{key} is read by no stage of this point; arch keys it reads: "
                f"{', '.join(sorted(readers)) or '(none)'}",
            )
    return point


def _check_value(draft: _Draft, key: str, value: Any, schema: dict[str, Any]) -> None:
    validator = Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(value))
    if error is not None:
        sub = ".".join(str(p) for p in error.absolute_path)
        hint = integer_hint(error.instance) if error.validator == "type" else ""
        raise draft.error(f"{key}.{sub}" if sub else key, error.message + hint)


def _normalize_workload(draft: _Draft, workload: dict[str, Any] | None) -> dict | None:
    if workload is None:
        return None
    sources = [k for k in _WORKLOAD_SOURCES if k in workload]
    if len(sources) != 1:
        raise draft.error(
            "workload",
            f"workload needs exactly one of {', '.join(_WORKLOAD_SOURCES)}, got "
            f"{', '.join(sources) or 'none'}",
        )
    if sources[0] == "synthetic":
        return {"distribution": "gaussian", "seed": 0, **workload}
    extra = sorted(set(workload) - {sources[0], "layers"})
    if extra:
        raise draft.error(
            f"workload.{extra[0]}",
            f"workload.{extra[0]} applies to synthetic workloads only, not {sources[0]}",
        )
    return workload


def _normalize_spec(
    draft: _Draft, fmt: str, spec: dict[str, Any], where: str = "spec"
) -> dict[str, Any]:
    cls = spec_class(fmt)
    known = [f.name for f in dataclasses.fields(cls)]
    for field in spec:
        if field not in known:
            raise draft.error(
                f"{where}.{field}",
                f"spec field {field!r} does not apply to format {fmt}; {fmt}'s spec fields: "
                f"{', '.join(known) or '(none)'}",
            )
    try:
        full = cls(**spec).to_dict()
    except SpecError as exc:
        named = [f for f in spec if f"{cls.__name__}.{f}" in str(exc)]
        raise draft.error(f"{where}.{named[0]}" if named else "format", str(exc)) from None
    del full["format"]
    return full


def expand(config: dict[str, Any]) -> list[Point]:
    """Every point of a validated config, in order (grid order, each with every random
    draw), normalised and checked by its stages (the config's ``stages``, or the
    ``stages`` the point sets); duplicates are kept."""
    base = [(k, v, f"base.{k}") for k, v in config.get("base", {}).items()]
    samples = _samples(config.get("random"))
    return [
        _normalize(_draft(base + combo + sample), config["stages"])
        for combo in _combinations(config)
        for sample in samples
    ]


def plan(config: dict[str, Any], code: str) -> list[tuple[str, Point]]:
    """The distinct ``(key, point)`` pairs of a config under code version ``code``, in
    sweep order (a repeated point keeps its first position)."""
    out: dict[str, Point] = {}
    for point in expand(config):
        out.setdefault(point_key(point, code), point)
    return list(out.items())
