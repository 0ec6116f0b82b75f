"""Report features for named experiments: expressions, derived columns with baselines,
comparison tables, Pareto fronts, faceted / multi-y / coloured plots with reference
lines, per-point stages and zipped grid keys."""

from __future__ import annotations

import csv
import itertools
import math
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codesign.experiments.reports.figures import pareto_front
from codesign.experiments.reports.sweep_report import ReportError, write_report
from codesign.experiments.sweeps.config import (
    SweepConfigError,
    expand,
    plan,
    swept_keys,
    validate_config,
)
from codesign.experiments.sweeps.expressions import ExpressionError, parse
from codesign.experiments.sweeps.runner import run_sweep
from codesign.experiments.sweeps.store import Store
from codesign.models.workloads import magnitude_mask, synthetic

CODE = "report-features-test"
SHAPE = (12, 40)
SPARSITIES = [0.5, 0.75, 0.9]


# ---------------------------------------------------------------- expressions

NAMES = ("a", "b", "spec.n_out")
FORMS = [
    "a + b * 2",
    "(a - b) / 4",
    "a ** 2 - b",
    "-a + abs(b)",
    "min(a, b, 3) + max(a, 1)",
    "a if a > b else b - 1",
    "a >= 1 and b < 3 or a == b",
    "not a < b",
    "1 < a <= 5",
    "a // 3 + a % 3",
]


@given(
    a=st.integers(-20, 20),
    b=st.integers(-20, 20),
    form=st.sampled_from(FORMS),
)
@settings(max_examples=200, deadline=None)
def test_expressions_agree_with_python(a, b, form):
    # Python's evaluator on the same text is the independent reference
    expected = eval(form, {"abs": abs, "min": min, "max": max}, {"a": a, "b": b})
    got = parse(form).evaluate({"a": a, "b": b})
    assert got == expected


def test_expression_names_functions_and_undefined_values():
    expr = parse("spec.n_out / spec.n_in - baseline.index_bits + log2(x)")
    assert expr.names == ("spec.n_out", "spec.n_in", "baseline.index_bits", "x")
    values = {"spec.n_out": 64, "spec.n_in": 8, "baseline.index_bits": 3, "x": 16}
    assert expr.evaluate(values) == 64 / 8 - 3 + 4
    assert expr.evaluate({**values, "spec.n_in": None}) is None  # missing value
    assert expr.evaluate({**values, "spec.n_in": 0}) is None  # division by zero
    assert expr.evaluate({**values, "x": 0}) is None  # log2(0)
    assert parse("sqrt(a)").evaluate({"a": -1}) is None
    assert parse("exp(a)").evaluate({"a": 1e6}) is None  # overflow
    assert math.isclose(parse("log(a) + log10(100) + exp(0)").evaluate({"a": math.e}), 4.0)
    assert parse("format == 'csr'").evaluate({"format": "csr"}) is True


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a +", "not valid syntax"),
        ("", "non-empty string"),
        ("__import__('os')", "the call"),
        ("a.b()", "the call"),
        ("a[0]", "Subscript"),
        ("lambda: 1", "Lambda"),
        ("min", "min is a function; call it"),
        ("[1, 2]", "List"),
        ("min(a, key=b)", "positional arguments only"),
        ("None", "the constant None"),
    ],
)
def test_bad_expressions_are_rejected_when_parsed(text, message):
    with pytest.raises(ExpressionError, match=re.escape(message)):
        parse(text)


def test_string_arithmetic_and_unknown_names_are_errors():
    with pytest.raises(ExpressionError, match="arithmetic on the string 'csr'"):
        parse("format + 1").evaluate({"format": "csr"})
    with pytest.raises(ExpressionError, match="unknown name 'b'"):
        parse("a + b").evaluate({"a": 1})


# ---------------------------------------------------------------- Pareto front


def front_reference(points, goals):
    """Non-dominated indices by the definition, with the goals applied by sorting."""
    keep = []
    for i, p in enumerate(points):
        dominated = False
        for q in points:
            better = [(q[k] < p[k]) if goals[k] == "min" else (q[k] > p[k]) for k in range(2)]
            no_worse = [(q[k] <= p[k]) if goals[k] == "min" else (q[k] >= p[k]) for k in range(2)]
            if all(no_worse) and any(better):
                dominated = True
        if not dominated:
            keep.append(i)
    return keep


@given(
    points=st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), min_size=1, max_size=25),
    goals=st.tuples(st.sampled_from(["min", "max"]), st.sampled_from(["min", "max"])),
)
@settings(max_examples=200, deadline=None)
def test_pareto_front_is_the_set_of_non_dominated_points(points, goals):
    assert pareto_front(points, goals) == front_reference(points, goals)


def test_pareto_front_small_example():
    pts = [(1, 0.5), (2, 0.9), (3, 0.8), (0.5, 0.1), (2, 0.9)]
    assert pareto_front(pts, ("min", "max")) == [0, 1, 3, 4]
    assert pareto_front(pts, ("max", "min")) == [0, 2, 3]


# ---------------------------------------------------------------- config keys


def cfg(**kw):
    return validate_config({"stages": ["compress"], **kw})


def test_zip_sets_keys_together_and_crosses_the_other_keys():
    config = cfg(
        base={"workload": {"synthetic": "8x8"}},
        grid={
            "format": ["bmwm"],
            "workload.seed": [0, 1],
            "zip": [{"spec.b": 2, "sparsity": 0.5}, {"spec.b": 4, "sparsity": 0.75}],
        },
    )
    points = expand(config)
    got = [(p["workload"]["seed"], p["spec"]["b"], p["sparsity"]) for p in points]
    assert got == [(0, 2, 0.5), (0, 4, 0.75), (1, 2, 0.5), (1, 4, 0.75)]
    assert swept_keys(config) == ["format", "workload.seed", "spec.b", "sparsity"]


def test_points_may_run_their_own_stages():
    config = validate_config(
        {
            "stages": ["compress"],
            "base": {"workload": {"model": "digits"}},
            "grid": [
                {"format": ["csr"], "sparsity": [0.9]},
                {"stages": [["prune"]], "method": ["viterbi"], "sparsity": [0.9]},
                {"stages": [["compress", "prune"]], "method": ["darb"], "sparsity": [0.8]},
            ],
        }
    )
    points = expand(config)
    assert [p["stages"] for p in points] == [["compress"], ["prune"], ["compress", "prune"]]
    assert [p["format"] for p in points] == ["csr", "viterbi", "darb"]
    assert "method" not in points[0] and points[1]["finetune_epochs"] == 10


BAD = [
    (
        {"grid": {"format": ["csr"], "stages": [["compres"]]}},
        "grid.stages[0][0]: 'compres' is not one of",
    ),
    (
        {"grid": {"format": ["csr"], "stages": [["compress"]], "method": ["magnitude"]}},
        "grid.method: method is read by stage prune",
    ),
    (
        {"grid": {"format": ["nm"], "sparsity": [0.5], "zip": [{"sparsity": 0.5}]}},
        "grid.zip[0].sparsity: also a key of the grid mapping",
    ),
    (
        {"grid": {"format": ["nm"], "zip": [{"spec.q": 1}]}},
        "spec field 'q' does not apply to format nm",
    ),
    (
        {"grid": {"format": ["csr"]}, "columns": [{"name": "r", "expr": "a +"}]},
        "columns[0].expr: expression 'a +': not valid syntax",
    ),
    (
        {"grid": {"format": ["csr"]}, "columns": [{"name": "r", "expr": "baseline.a"}]},
        "columns[0].expr: reads baseline.* but the column declares no baseline",
    ),
    (
        {"grid": {"format": ["csr"]}, "columns": [{"name": "2x", "expr": "1"}]},
        "columns[0].name: '2x' does not match",
    ),
    (
        {"grid": {"format": ["csr"]}, "plots": [{"x": "a", "y": "b", "color": "c"}]},
        "plots[0].color: colouring by a column needs kind: scatter",
    ),
    (
        {"grid": {"format": ["csr"]}, "plots": [{"x": "a", "y": "b", "reference": [{}]}]},
        "plots[0].reference[0]: give exactly one of x, y, points, expr, column, got none",
    ),
    (
        {
            "grid": {"format": ["csr"]},
            "plots": [{"x": "a", "y": "b", "reference": [{"x": 1, "y": 2}]}],
        },
        "got x, y",
    ),
    (
        {"grid": {"format": ["csr"]}, "plots": [{"x": "a", "y": "b", "filter": "a ="}]},
        "plots[0].filter: expression 'a =': not valid syntax",
    ),
    (
        {"grid": {"format": ["csr"]}, "comparisons": [{"title": "t", "columns": []}]},
        "comparisons[0].columns: [] should be non-empty",
    ),
    (
        {"grid": {"format": ["csr"]}, "comparisons": [{"columns": ["a"]}]},
        "'title' is a required property",
    ),
]


@pytest.mark.parametrize(("doc", "message"), BAD)
def test_bad_report_and_grid_keys_name_the_key(doc, message):
    with pytest.raises(SweepConfigError) as info:
        expand(validate_config({"stages": ["compress"], **doc}))
    assert message in str(info.value)


# ---------------------------------------------------------------- a small sweep

GRID = [
    {"format": ["csr", "relative", "bitmap"], "sparsity": SPARSITIES},
    {"format": ["nm"], "zip": [{"spec.n": 1, "spec.m": 2, "sparsity": 0.5}]},
]
COLUMNS = [
    {
        "name": "index_vs_csr",
        "expr": "index_bits / baseline.index_bits - 1",
        "unit": "change vs CSR",
        "baseline": {"where": {"format": "csr"}, "match": ["sparsity"]},
    },
    {"name": "kept_check", "expr": "nnz / weights"},
    {"name": "big", "expr": "index_vs_csr > 0"},
]
COMPARISONS = [
    {
        "title": "Against CSR",
        "where": {"format": ["relative", "bitmap"]},
        "filter": "sparsity >= 0.75",
        "columns": [
            "format",
            "sparsity",
            {"column": "index_vs_csr", "label": "vs CSR", "format": "+.1%"},
        ],
        "reference": {"paper": "-52.7 %", "other": 3},
        "note": "A line under the table.",
    },
    {
        "title": "Smallest index per sparsity",
        "best": {"metric": "index_bits", "goal": "min", "per": "sparsity"},
        "columns": ["sparsity", "format", "index_bits"],
    },
]
PLOTS = [
    {
        "x": "sparsity",
        "y": ["index_bits_per_weight", "total_bits"],
        "group": "format",
        "logy": True,
        "reference": [
            {"expr": "-(x * log2(x) + (1 - x) * log2(1 - x))", "label": "mask entropy"},
            {"y": 1.0, "label": "one bit", "for_y": "index_bits_per_weight"},
            {"points": [[0.9, 0.2]], "label": "a paper point"},
        ],
    },
    {
        "x": "index_bits_per_weight",
        "y": "kept_fraction",
        "kind": "scatter",
        "color": "sparsity",
        "group": "format",
        "facet": "sparsity",
        "wrap": 2,
        "pareto": {"x": "min", "y": "max"},
        "reference": [
            {"column": "kept_check", "label": "kept from nnz"},
            {"expr": "1 - sparsity + 0 * x", "label": "1 - S"},
            {"x": 1.0, "label": "bitmap"},
        ],
    },
]


def csr_index_bits(mask: np.ndarray) -> int:
    """CSR index bits of a mask, from REFERENCES §6."""
    m, n = mask.shape
    nnz = int(mask.sum())
    return nnz * math.ceil(math.log2(n)) + (m + 1) * math.ceil(math.log2(nnz + 1))


def make(directory: Path, **extra) -> Path:
    config = validate_config(
        {
            "name": "features",
            "stages": ["compress"],
            "base": {"workload": {"synthetic": f"{SHAPE[0]}x{SHAPE[1]}"}},
            "grid": GRID,
            "columns": COLUMNS,
            "comparisons": COMPARISONS,
            "plots": PLOTS,
        }
        | extra
    )
    points = plan(config, CODE)
    with Store(directory) as store:
        store.set_sweep(config, points, CODE)
        run_sweep(points, store, CODE, workers=1, progress=False)
    return directory


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    directory = make(tmp_path_factory.mktemp("features"))
    return write_report(directory)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def table_under(summary: str, heading: str) -> list[list[str]]:
    """The first Markdown table after ``heading``: header, rule and body rows."""
    lines = summary.split(heading, 1)[1].strip().splitlines()
    rows = itertools.takewhile(lambda line: line.startswith("|"), lines)
    return [[c.strip() for c in row.strip("|").split("|")] for row in rows]


def test_derived_columns_follow_their_baseline(report):
    rows = read_csv(report.csv)
    w = synthetic("gaussian", SHAPE, 0)
    csr = {s: csr_index_bits(magnitude_mask(w, s)) for s in SPARSITIES}
    assert [r["format"] for r in rows] == ["csr"] * 3 + ["relative"] * 3 + ["bitmap"] * 3 + ["nm"]
    for r in rows:
        s = float(r["sparsity"])
        expected = int(r["index_bits"]) / csr[s] - 1
        assert math.isclose(float(r["index_vs_csr"]), expected, rel_tol=1e-12)
        assert float(r["kept_check"]) == int(r["nnz"]) / int(r["weights"])
        assert r["big"] == str(expected > 0)
    bitmap = [r for r in rows if r["format"] == "bitmap"]
    assert [int(r["index_bits"]) for r in bitmap] == [SHAPE[0] * SHAPE[1]] * 3


def test_comparison_tables_select_format_and_add_references(report):
    summary = report.summary.read_text()
    assert summary.index("## Comparisons") < summary.index("## Best points")
    got = table_under(summary, "### Against CSR")
    assert got[0] == ["format", "sparsity", "vs CSR", "paper", "other"]
    rows = {(r["format"], r["sparsity"]): r for r in read_csv(report.csv)}
    expected = [
        [f, str(s), f"{float(rows[f, str(s)]['index_vs_csr']):+.1%}", "-52.7 %", "3"]
        for f in ("relative", "bitmap")
        for s in (0.75, 0.9)
    ]
    assert got[2:] == expected
    assert "A line under the table." in summary
    smallest = table_under(summary, "### Smallest index per sparsity")[2:]
    for sparsity, fmt, bits in smallest:
        candidates = [r for (f, s), r in rows.items() if s == sparsity]
        assert int(bits) == min(int(r["index_bits"]) for r in candidates)
        assert rows[fmt, sparsity]["index_bits"] == bits
    assert [r[0] for r in smallest] == ["0.5", "0.75", "0.9"]
    assert "- `index_vs_csr` = `index_bits / baseline.index_bits - 1` (change vs CSR)" in summary


def test_plots_have_panels_units_references_colour_and_pareto(report):
    (png1, svg1), (png2, svg2) = report.figures
    assert png1.name == "plot1-index_bits_per_weight_total_bits-vs-sparsity.png"
    text1, text2 = svg1.read_text(), svg2.read_text()
    for label in (
        "index storage (bits/weight)",
        "total storage (bits)",
        "sparsity (fraction of weights pruned)",
        "mask entropy",
        "one bit",
        "a paper point",
    ):
        assert label in text1
    assert text1.count("one bit") == 1  # only in the index panel and the legend once
    for label in (
        "sparsity = 0.5",
        "sparsity = 0.75",
        "sparsity = 0.9",
        "kept from nnz",
        "1 - S",
        "Pareto front (min x, max y)",
        "kept weights (fraction of weights)",
        "index storage (bits/weight)",
    ):
        assert label in text2
    assert png2.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = report.summary.read_text()
    front = table_under(summary, "Pareto front of plot 2, sparsity = 0.5:")
    assert front[0][-2:] == ["index_bits_per_weight", "kept_fraction"]
    rows = [r for r in read_csv(report.csv) if r["sparsity"] == "0.5"]
    pts = [(float(r["index_bits_per_weight"]), float(r["kept_fraction"])) for r in rows]
    expected = sorted(
        (pts[i][0], int(rows[i]["index"])) for i in front_reference(pts, ("min", "max"))
    )
    assert [(float(r[-2]), int(r[0])) for r in front[2:]] == expected


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"columns": [{"name": "x", "expr": "bananas + 1"}]},
            "columns[0] (x): 'bananas' is not a column",
        ),
        (
            {"columns": [{"name": "nnz", "expr": "1"}]},
            "columns[0] (nnz): 'nnz' is already a column",
        ),
        (
            {
                "columns": [
                    {
                        "name": "r",
                        "expr": "baseline.nnz",
                        "baseline": {"where": {"format": "csr"}},
                    }
                ]
            },
            "columns[0] (r): 3 baseline rows (indices 0, 1, 2) match row 0",
        ),
        (
            {
                "comparisons": [
                    {"title": "t", "columns": ["format"], "best": {"metric": "x", "goal": "max"}}
                ]
            },
            "comparison 1 (t) best: 'x' is not a column",
        ),
        (
            {"comparisons": [{"title": "t", "columns": [{"column": "nnz", "format": "q"}]}]},
            "comparison 1 (t): format 'q'",
        ),
        (
            {"plots": [{"x": "format", "y": "nnz", "reference": [{"expr": "x"}]}]},
            "plot 1 reference[0]: a curve needs a numeric x, 'format' is categorical",
        ),
        (
            {"plots": [{"x": "sparsity", "y": "nnz", "reference": [{"expr": "nnz * x"}]}]},
            "plot 1 reference[0]: 'nnz' is unknown; a curve reads x",
        ),
        (
            {"plots": [{"x": "sparsity", "y": "nnz", "kind": "scatter", "color": "format"}]},
            "plot 1: color 'format' is not numeric",
        ),
        (
            {"plots": [{"x": "sparsity", "y": "nnz", "filter": "format + 1"}]},
            "plot 1: expression 'format + 1': arithmetic on the string 'csr'",
        ),
        (
            {"plots": [{"x": "sparsity", "y": ["nnz", "weights"], "ylabel": "one"}]},
            "plot 1: ylabel gives 1 labels for 2 y columns",
        ),
    ],
)
def test_report_errors_name_the_item(tmp_path, extra, message):
    base = {"columns": COLUMNS[:1], "comparisons": [], "plots": []}
    make(tmp_path, **(base | extra))
    with pytest.raises(ReportError) as info:
        write_report(tmp_path)
    assert message in str(info.value)
