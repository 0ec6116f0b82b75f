"""`codesign report`: CSV, PNG/SVG figures and the Markdown summary of a sweep."""

from __future__ import annotations

import csv
import itertools
import math
from pathlib import Path

import pytest

from codesign.experiments.cli.main import main
from codesign.experiments.reports.labels import axis_label
from codesign.experiments.reports.sweep_report import ReportError, write_report
from codesign.experiments.sweeps.config import plan, validate_config
from codesign.experiments.sweeps.runner import run_sweep
from codesign.experiments.sweeps.store import DONE, FAILED, Store

CODE = "report-test"
GRID = [
    {"format": ["csr", "relative", "bitmap"], "sparsity": [0.5, 0.75, 0.9]},
    {"format": ["lowrank"], "sparsity": [0.9]},
]
PENDING_INDEX = 4


def make_sweep(directory: Path, **extra) -> list[tuple[str, dict]]:
    """A compress sweep on a 16x16 layer: 9 points done or pending (index 4 is never
    run), one lowrank point that fails (0.9 sparsity leaves less than one rank)."""
    config = validate_config(
        {"stages": ["compress"], "base": {"workload": {"synthetic": "16x16"}}, "grid": GRID}
        | extra,
        name="report-test",
    )
    points = plan(config, CODE)
    with Store(directory) as store:
        store.set_sweep(config, points, CODE)
        ran = points[:PENDING_INDEX] + points[PENDING_INDEX + 1 :]
        run_sweep(ran, store, CODE, workers=1, progress=False)
    return points


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    directory = tmp_path_factory.mktemp("report")
    points = make_sweep(
        directory,
        objectives=[
            {"metric": "total_bits", "goal": "min", "top": 4},
            {"metric": "ratio_vs_csr", "goal": "max", "top": 2, "where": {"format": "relative"}},
        ],
        plots=[
            {"x": "sparsity", "y": "index_bits_per_weight", "group": "format"},
            {"x": "format", "y": "total_bits", "kind": "scatter", "logy": True},
        ],
    )
    with Store(directory) as store:
        rows = store.rows()
    return directory, points, rows, write_report(directory)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_csv_has_one_row_per_point_with_parameters_metrics_and_status(sweep):
    directory, points, rows, files = sweep
    table = read_csv(files.csv)
    assert files.csv == directory / "results.csv"
    assert len(table) == len(points)
    header = list(table[0])
    assert header[:3] == ["index", "key", "status"]
    for column in ("workload", "format", "sparsity", "stages", "total_bits", "error_type"):
        assert column in header
    for column in ("index_bits_per_weight", "ratio_vs_csr", "lossless", "seconds"):
        assert column in header
    assert "quantize" not in header  # empty for every point
    for i, ((key, point), line) in enumerate(zip(points, table, strict=True)):
        assert (line["index"], line["key"]) == (str(i), key)
        assert line["format"] == point["format"]
        assert float(line["sparsity"]) == point["sparsity"]
        assert line["workload"] == "16x16"
        row = rows.get(key)
        if i == PENDING_INDEX:
            assert row is None and line["status"] == "pending" and line["total_bits"] == ""
            continue
        assert line["status"] == row.status
        for name, value in row.metrics.items():
            assert line[name] == str(value)
    statuses = [line["status"] for line in table]
    assert statuses.count(DONE) == 8 and statuses.count(FAILED) == 1
    failed = next(line for line in table if line["status"] == FAILED)
    assert failed["format"] == "lowrank" and "rank" in failed["error_message"]


def test_figures_are_png_and_svg_and_the_summary_lists_them(sweep):
    directory, _, _, files = sweep
    assert len(files.figures) == 2
    summary = files.summary.read_text()
    for png, svg in files.figures:
        assert png.parent == directory / "plots"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
        assert "<svg" in svg.read_text()[:2000] and svg.stat().st_size > 5000
        assert f"](plots/{png.name})" in summary and f"](plots/{svg.name})" in summary
    assert "points: 10 — done 8, failed 1, pending 1" in summary
    assert "## Failures" in summary and "### point 9: format=lowrank sparsity=0.9" in summary
    assert "<details><summary>traceback</summary>" in summary


def markdown_table(summary: str, heading: str) -> list[list[str]]:
    """The body rows of the Markdown table under ``heading``, as cell lists."""
    lines = summary.split(heading, 1)[1].strip().splitlines()
    section = itertools.takewhile(lambda line: not line.startswith("#"), lines)
    rows = [line for line in section if line.startswith("|")]
    return [[c.strip() for c in row.strip("|").split("|")] for row in rows[2:]]


def test_best_points_tables_follow_the_objectives(sweep):
    _, _, _, files = sweep
    table = read_csv(files.csv)
    summary = files.summary.read_text()
    done = [r for r in table if r["status"] == DONE]
    expected = sorted(done, key=lambda r: int(r["total_bits"]))[:4]
    got = markdown_table(summary, "### total_bits (min)")
    assert [int(r[3]) for r in got] == [int(r["total_bits"]) for r in expected]
    assert [r[1:3] for r in got] == [[r["format"], r["sparsity"]] for r in expected]
    relative = [r for r in done if r["format"] == "relative"]
    best = max(relative, key=lambda r: float(r["ratio_vs_csr"]))
    got = markdown_table(summary, "### ratio_vs_csr (max)")
    assert len(got) == 2 and got[0][1] == "relative"
    assert math.isclose(float(got[0][3]), float(best["ratio_vs_csr"]), rel_tol=1e-5)


def test_a_default_plot_when_the_config_declares_none(tmp_path):
    make_sweep(tmp_path)
    files = write_report(tmp_path, tmp_path / "report")
    ((png, svg),) = files.figures
    assert png.name == "plot1-index_bits_per_weight-vs-sparsity.png"
    assert png.parent == tmp_path / "report" / "plots" and svg.stat().st_size > 0
    summary = files.summary.read_text()
    assert "index storage vs sparsity, by storage format" in summary
    assert "No objectives declared" in summary


@pytest.mark.parametrize(
    ("plot", "message"),
    [
        ({"x": "sparsity", "y": "bits_per_banana"}, "plot 1: 'bits_per_banana' is not a column"),
        ({"x": "sparsity", "y": "format"}, "plot 1: y 'format' is not numeric"),
        (
            {"x": "sparsity", "y": "total_bits", "group": "colour"},
            "plot 1: 'colour' is not a column",
        ),
    ],
)
def test_plotting_what_does_not_exist_is_a_clear_error(tmp_path, capsys, plot, message):
    make_sweep(tmp_path, plots=[plot])
    with pytest.raises(ReportError, match=message) as info:
        write_report(tmp_path)
    assert "columns: index, key, status" in str(info.value) or "numeric" in message
    assert main(["report", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith(f"codesign: error: {message}")


def test_an_unknown_objective_metric_is_a_clear_error(tmp_path):
    make_sweep(tmp_path, objectives=[{"metric": "speed", "goal": "max"}])
    with pytest.raises(ReportError, match="objective speed: 'speed' is not a column"):
        write_report(tmp_path)


def test_report_without_a_store_exits_2(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "no sweep store" in capsys.readouterr().err


def test_axis_labels_carry_names_and_units():
    assert axis_label("index_bits_per_weight") == "index storage (bits/weight)"
    assert axis_label("pj_per_mac") == "energy per dense-equivalent MAC (pJ)"
    assert axis_label("energy_dram_pj") == "DRAM energy (pJ)"
    assert axis_label("energy_decoder_pj") == "decoder energy (pJ)"
    assert axis_label("sparsity") == "sparsity (fraction of weights pruned)"
    assert axis_label("simulate.total_bits") == "total storage (bits)"  # a stage clash
    assert axis_label("arch.block_bits") == "patch block number (bits)"
    assert axis_label("mask_bits") == "mask_bits (bits)"  # not in the table: its name
    assert axis_label("out_per_in", {"out_per_in": "×"}) == "out_per_in (×)"  # derived
    assert axis_label("spec.seed") == "spec.seed"


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """csr at float32 and at int8, and lowrank (lossy) at float32, on a 16x16 layer."""
    directory = tmp_path_factory.mktemp("mixed")
    config = validate_config(
        {
            "stages": ["compress"],
            "base": {"workload": {"synthetic": "16x16"}},
            "grid": [
                {"format": ["csr", "lowrank"], "sparsity": [0.5]},
                {"format": ["csr"], "quantize": [8], "sparsity": [0.5, 0.75]},
            ],
            "objectives": [{"metric": "total_bits", "goal": "min", "top": 5}],
            "plots": [{"x": "sparsity", "y": "total_bits", "group": "format"}],
        },
        name="mixed",
    )
    points = plan(config, CODE)
    with Store(directory) as store:
        store.set_sweep(config, points, CODE)
        run_sweep(points, store, CODE, workers=1, progress=False)
    return write_report(directory)


def test_rows_state_their_value_precision(mixed):
    table = read_csv(mixed.csv)
    assert {(r["format"], r["quantize"], r["value_precision"]) for r in table} == {
        ("csr", "", "float32"),
        ("lowrank", "", "float32"),
        ("csr", "8", "int8"),
    }


def test_best_points_are_ranked_within_each_value_precision(mixed):
    """int8 sizes are a quarter of float32 ones: one ranking would put every int8 point
    first; each precision is ranked on its own, and lowrank is marked lossy."""
    summary = mixed.summary.read_text()
    assert "Ranked within each value precision (float32, int8)" in summary
    table = read_csv(mixed.csv)
    for precision in ("float32", "int8"):
        got = markdown_table(summary, f"#### values {precision}")
        expected = sorted(
            (r for r in table if r["value_precision"] == precision),
            key=lambda r: int(r["total_bits"]),
        )
        assert [int(r[-3 if precision == "float32" else -2]) for r in got] == [
            int(r["total_bits"]) for r in expected
        ]
    float32 = markdown_table(summary, "#### values float32")
    lossy = [r for r in float32 if "lowrank" in r]
    assert len(lossy) == 1 and lossy[0][-1] == "LOSSY: approximates the weights"
    assert all(r[-1] == "" for r in float32 if "lowrank" not in r)


def test_a_figure_states_the_precision_and_never_joins_two(mixed):
    ((_, svg),) = mixed.figures
    text = svg.read_text()
    assert "values float32, int8: a series per value precision" in text
    for entry in ("csr, float32", "csr, int8", "lowrank, float32, LOSSY"):
        assert f">{entry}<" in text
    summary = mixed.summary.read_text()
    assert "(values float32, int8: a series per value precision)" in summary
