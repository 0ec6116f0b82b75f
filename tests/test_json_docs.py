"""docs/json.md against the documents the command writes.

Each test generates one kind of document on small inputs and checks, in both directions,
that the reference cannot drift: every key written (recursively, list items included)
is a field of its section of docs/json.md with the type and nullability it gives, and
every field of the section, and of the shared sections the test owns (the layer report,
the format figures, ...), is written by at least one of the generated documents. The
place-and-route figures (nextpnr, seconds per block) are checked by the slow test.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tile_machine import TILE_CONFIG

from codesign.experiments.cli.demo import format_doc
from codesign.experiments.cli.main import main
from codesign.experiments.jobs.compress import load_workload
from codesign.experiments.jobs.networks import compare_formats
from codesign.experiments.jobs.prune import prune_command
from codesign.experiments.jobs.simulate import run_config
from codesign.models.registry import get_format
from codesign.models.report import report_encoded, total_report
from codesign.sim.config import parse_config

DOC = Path(__file__).resolve().parents[1] / "docs" / "json.md"

#: JSON types by the word docs/json.md uses.
TYPES: dict[str, tuple[type, ...]] = {
    "integer": (int,),
    "number": (int, float),
    "string": (str,),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}
_LINK = re.compile(r"\[[^\]]*\]\(#([\w-]+)\)")
_CELL = re.compile(r"(?<!\\)\|")


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


@functools.cache
def sections() -> dict[str, list[list[str]]]:
    """Heading anchor -> the rows of the field table under it (cells stripped)."""
    out: dict[str, list[list[str]]] = {}
    current = None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            current = slug(line.lstrip("#"))
            out[current] = []
        elif line.startswith("|") and current is not None:
            cells = [c.strip() for c in _CELL.split(line.strip())[1:-1]]
            if cells[0] not in ("field", "column") and not set(cells[0]) <= {"-"}:
                out[current].append(cells)
    return out


@dataclasses.dataclass(frozen=True)
class Field:
    """A documented field: its ``path`` (``<name>`` a key named by data), the Python
    types its JSON value may take (None: any), whether it may be null, and its
    ``origin``: the section and the row that document it."""

    path: str
    types: tuple[type, ...] | None
    nullable: bool
    origin: tuple[str, str]

    @property
    def regex(self) -> re.Pattern[str]:
        parts = re.split(r"(<[^>]+>)", self.path)
        return re.compile(
            "".join(r"[^.\[\]]+" if p.startswith("<") else re.escape(p) for p in parts)
        )


def _types(cell: str) -> tuple[type, ...] | None:
    text = _LINK.sub("SECTION", cell)
    if text.startswith("array"):
        return (list,)
    if "SECTION" in text:
        return (dict,)
    words = re.findall(r"[a-z]+", text)
    found = tuple(t for w in words if w in TYPES for t in TYPES[w])
    return found or None


def fields(section: str, prefix: str = "") -> list[Field]:
    """The fields of ``section`` with ``prefix`` before their paths; a type linking to a
    section adds that section's fields under the field (under ``field[]`` for an
    array), a row that is only a link adds them at the row's level."""
    rows = sections()[section]
    assert rows, f"docs/json.md has no field table under #{section}"
    out = []
    for name, kind, _unit, _meaning, null in rows:
        if name.startswith("["):
            (target,) = _LINK.findall(name)
            out += fields(target, prefix)
            continue
        path = prefix + name.strip("`")
        out.append(Field(path, _types(kind), null != "never", (section, name)))
        for target in _LINK.findall(kind):
            out += fields(target, path + ("[]." if kind.startswith("array") else "."))
    return out


def keys(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(path, value) of every key of a JSON value, nested objects and list items
    included (``a.b``, ``a[].b``)."""
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else key
            yield here, item
            yield from keys(item, here)
    elif isinstance(value, list):
        for item in value:
            yield from keys(item, f"{path}[]")


def _type_ok(value: Any, field: Field) -> bool:
    if value is None:
        return field.nullable
    if field.types is None:
        return True
    if isinstance(value, bool):
        return bool in field.types
    return isinstance(value, field.types)


def problems(
    section: str, written: Iterable[tuple[str, Any]], owns: Iterable[str] = (), typed: bool = True
) -> list[str]:
    """What breaks the rule: a written (path, value) that is not a field of ``section``
    (an exact path before a ``<name>`` one) with its type and nullability (when
    ``typed``); a row of ``section`` or of the sections it ``owns`` (sections it links
    to whose every row its documents write) written nowhere. One line each, sorted."""
    documented = fields(section)
    seen, errors = set(), []
    for path, value in written:
        matches = [f for f in documented if f.regex.fullmatch(path)]
        matches = [f for f in matches if "<" not in f.path] or matches
        if not matches:
            errors.append(f"{path}: written, not in docs/json.md#{section}")
            continue
        seen.update(f.origin for f in matches)
        if typed and not any(_type_ok(value, f) for f in matches):
            errors.append(f"{path}: {value!r} is not the type docs/json.md#{section} gives")
    errors += [
        f"{name.strip('`')}: in docs/json.md#{where}, never written"
        for where, name in {f.origin for f in documented} - seen
        if where == section or where in owns
    ]
    return sorted(set(errors))


def check(section: str, written: Iterable[tuple[str, Any]], owns: Iterable[str] = ()) -> None:
    """No :func:`problems`."""
    errors = problems(section, written, owns)
    assert not errors, "\n".join(errors)


def _not_json(name: str) -> None:
    raise ValueError(f"{name} is not JSON (RFC 8259)")


def _json(path: Path) -> Any:
    """The document at ``path``, read as strict JSON (no NaN or Infinity)."""
    return json.loads(path.read_text(), parse_constant=_not_json)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    """A small model file: a 3x3 conv kernel with its bias and a BatchNorm counter, a
    matrix with its bias."""
    path = tmp_path_factory.mktemp("model") / "small.npz"
    rng = np.random.default_rng(0)
    np.savez(
        path,
        **{
            "conv.weight": rng.standard_normal((8, 4, 3, 3)).astype(np.float32),
            "conv.bias": rng.standard_normal(8).astype(np.float32),
            "bn.num_batches_tracked": np.array(3, dtype=np.int64),
            "fc.weight": rng.standard_normal((16, 32)).astype(np.float32),
            "fc.bias": rng.standard_normal(16).astype(np.float32),
            "head.weight": rng.standard_normal((4, 16)).astype(np.float32),
        },
    )
    return path


#: (format, extra arguments) of the compress documents: every format and the format
#: figures each gives (xor's over a viterbi and an LBI mask; LBI calibrated and not).
COMPRESS_RUNS = [
    ("dense", []),
    ("bitmap", []),
    ("csr", ["--quantize", "8"]),
    ("relative", []),
    ("nm", ["--spec", "n=1", "--spec", "m=8"]),
    ("block", ["--spec", "b=2"]),
    ("bmwm", []),
    ("darb", []),
    ("viterbi", []),
    ("lbi", []),
    ("lowrank", []),
    ("xor", ["--spec", "mask_format=viterbi"]),
    ("xor", ["--spec", "mask_format=lbi", "--quantize", "8"]),
]


def test_compress_documents(tmp_path, capsys, model_file):
    written = []
    for i, (fmt, extra) in enumerate(COMPRESS_RUNS):
        out = tmp_path / f"{i}.json"
        argv = ["compress", "--format", fmt, *extra, "--synthetic", "32x48"]
        assert main([*argv, "--sparsity", "0.875", "--json", str(out)]) == 0
        written += keys(_json(out))
    out = tmp_path / "unpruned.json"  # LBI without a sparsity; no --sparsity at all
    assert main(["compress", "--format", "lbi", "--synthetic", "32x48", "--json", str(out)]) == 0
    written += keys(_json(out))
    out = tmp_path / "file.json"
    argv = ["compress", "--format", "csr", "--weights", str(model_file), "--sparsity", "0.5"]
    assert main([*argv, "--layers", "conv.*", "--layers", "fc.*", "--json", str(out)]) == 0
    doc = _json(out)
    assert doc["side"]["tensors"] == 2 and [t["name"] for t in doc["skipped"]] == [
        "bn.num_batches_tracked",
        "head.weight",
    ]
    written += keys(doc)
    zeros = tmp_path / "zeros.npz"  # a layer xor keeps nothing of: no finite entropy bound
    np.savez(zeros, w=np.zeros((8, 64), dtype=np.float32))
    out = tmp_path / "zeros.json"
    assert main(["compress", "--format", "xor", "--weights", str(zeros), "--json", str(out)]) == 0
    doc = _json(out)
    assert doc["layers"][0]["entropy_bound"] is None
    written += keys(doc)
    capsys.readouterr()
    shared = ("compressed-layer", "layer-report", "format-figures", "spec", "tensor")
    check("compress-document", written, shared)


def test_simulate_documents(model_file):
    cfg = {
        "name": "docs",
        "arch": {"lanes": 4, "decoders": 2, "batch": 2},
        "defaults": {"format": "csr", "spec": {}, "sparsity": 0.75, "quantize": 8},
        "layers": [
            {"weights": str(model_file), "select": ["conv.*", "fc.*"]},
            {"synthetic": "16x24", "format": "xor", "spec": {"n_out": 16}, "tokens": 3},
            {"synthetic": "16x24", "format": "lowrank", "sparsity": None},
        ],
        "overrides": [{"match": "conv.weight", "conv": {"input": [6, 6], "padding": 1}}],
    }
    with_side = run_config(parse_config(cfg), synth=False)
    assert with_side["side"] is not None and with_side["skipped"]
    del cfg["overrides"]
    cfg["layers"] = [{"synthetic": "16x24", "format": "relative", "spec": {"r": 3}}]
    with_cells = run_config(parse_config(cfg), synth=True)
    assert with_cells["side"] is None and with_cells["total"]["decoder_cells"] > 0
    cfg["arch"] = TILE_CONFIG["arch"]
    on_tile = run_config(parse_config(cfg), synth=True)
    assert on_tile["total"]["tile_cells"]["total"] > on_tile["total"]["decoder_cells"]
    shared = ("simulated-layer", "simulated-total")
    check("simulate-document", [*keys(with_side), *keys(with_cells), *keys(on_tile)], shared)


def test_prune_documents():
    lbi = prune_command("lbi", 0.9, None, 0, 0)  # not fine-tuned
    assert lbi["layer_specs"] and lbi["accuracy_finetuned"] is None  # 10-row tiles on fc3
    trp = prune_command("trp", None, ["energy=0.9"], 1, 0)
    check("prune-document", [*keys(lbi), *keys(trp)], ["trp-layer"])


def test_synth_document(tmp_path, capsys):
    out = tmp_path / "synth.json"
    assert main(["synth", "relative", "--json", str(out)]) == 0
    flat = _json(out)
    tile = ["--spec", "lanes=2", "--spec", "decoders=1", "--spec", "n_cols=8"]
    assert main(["synth", "tile", *tile, "--json", str(out)]) == 0
    capsys.readouterr()
    check("synth-document", [*keys(flat), *keys(_json(out))])


def test_demo_documents():
    """The demo's own shapes: a format of ``compress.json`` (on a small layer) and of
    ``network/compress.json`` (one format that refuses, the others with their figures);
    its other files are documents checked above."""
    layer = load_workload(synthetic_shape="16x24").layers[0]
    written = []
    for name in ("csr", "lowrank"):
        fmt = get_format(name)
        spec = fmt.spec_type()
        reference, enc = fmt.compress(layer.weights, 0.75, spec)
        report = report_encoded(layer.name, reference, enc, fmt, layer.weights, 0.75)
        tuned = None if name == "lowrank" else 0.9
        written += keys(format_doc(spec, 0.75, [report], total_report([report]), 0.8, tuned))
    check("demo-format", written)
    workload = load_workload(synthetic_shape="16x40")
    rows = compare_formats(workload, 0.9, 8, ["dense", "nm", "csr"])
    rows += compare_formats(workload, 0.99, 8, ["darb"])  # refused: out of its reach
    assert [r.error is not None for r in rows] == [False, False, False, True]
    check("network-format", [kv for r in rows for kv in keys(r.to_json())])


#: Columns of the synth stage's place and route (``arch.target``): the slow test
#: writes them; every other column is written by the fast sweep.
PLACE_AND_ROUTE = ("luts", "ffs", "fmax_mhz")
CSV_SECTION = "resultscsv-columns"


def _sweep_columns(tmp_path: Path, points: list[dict[str, Any]]) -> list[tuple[str, None]]:
    """The columns of the results.csv of a compress sweep over ``points`` (grids)."""
    config = tmp_path / "docs.yaml"
    config.write_text(json.dumps({"name": "docs", "stages": ["compress"], "grid": points}))
    out = tmp_path / "sweep"
    argv = ["sweep", str(config), "--out", str(out), "--workers", "1", "--no-progress"]
    main([*argv, "--report"])
    with (out / "results.csv").open(newline="") as f:
        return [(column, None) for column in next(csv.reader(f))]


def test_results_csv_columns(tmp_path, capsys):
    small = {"workload": [{"synthetic": "16x24"}], "sparsity": [0.75]}
    points = [
        {**small, "format": ["csr", "darb", "xor"]},
        {**small, "format": ["lowrank"], "sparsity": [0.9], "quantize": [8]},
        {**small, "format": ["nm"]},  # refused: 2:4 cannot reach 0.75 (a failed row)
        {
            "stages": [["compress", "simulate"]],
            "workload": [{"model": "digits"}],
            "format": ["relative"],
            "sparsity": [0.9],
            "quantize": [8],
            "layer": ["fc3"],
            "overrides": [[{"match": "fc3", "sparsity": 0.8}]],
            "quality": [True],
            "finetune_epochs": [0],
        },
        {
            "stages": [["compress", "prune"]],
            "method": ["trp"],
            "workload": [{"model": "digits"}],
            "spec.energy": [0.5],
            "finetune_epochs": [1],
        },
        {"stages": [["synth"]], "format": ["relative"], "arch.n_cols": [16]},
    ]
    written = _sweep_columns(tmp_path, points)
    capsys.readouterr()
    never = [f"{c}: in docs/json.md#{CSV_SECTION}, never written" for c in PLACE_AND_ROUTE]
    assert problems(CSV_SECTION, written, typed=False) == sorted(never)


@pytest.mark.slow
def test_place_and_route_documents(tmp_path, capsys):
    out = tmp_path / "fpga.json"
    assert main(["synth", "relative", "--target", "ice40", "--json", str(out)]) == 0
    check("fpga-document", keys(_json(out)))
    point = {"stages": [["synth"]], "format": ["relative"], "arch.target": ["ice40"]}
    written = _sweep_columns(tmp_path, [point])
    capsys.readouterr()
    assert not [e for e in problems(CSV_SECTION, written, typed=False) if "never" not in e]
    assert set(PLACE_AND_ROUTE) <= {c for c, _ in written}
