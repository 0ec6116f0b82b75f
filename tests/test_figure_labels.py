"""Figures a reader understands without the code: axis labels in words with units, a
legend naming every parameter that varies, markers that do not hide one another.

The labels are read from the SVG files (their text stays text)."""

from __future__ import annotations

import re

import pytest

from codesign.experiments.reports.figures import DODGE_POINTS, dodge, function_of
from codesign.experiments.reports.sweep_report import write_report
from codesign.experiments.sweeps.config import plan, validate_config
from codesign.experiments.sweeps.runner import run_sweep
from codesign.experiments.sweeps.store import Store

CODE = "figure-labels"
#: csr at two index-unit counts (the compress stage's decode cost reads them; the index
#: bits do not change, so their points coincide); each format at its own value precision
#: (``quantize`` varies with the format).
GRID = [
    {
        "format": ["csr"],
        "quantize": [8],
        "sparsity": [0.5, 0.75],
        "arch": [{"index_units": 2}, {"index_units": 4}],
    },
    {"format": ["relative"], "quantize": [4], "sparsity": [0.5, 0.75]},
]
PLOT = {"x": "sparsity", "y": "index_bits_per_weight", "group": "format"}


@pytest.fixture(scope="module")
def svgs(tmp_path_factory) -> dict[str, str]:
    directory = tmp_path_factory.mktemp("labels")
    config = validate_config(
        {
            "stages": ["compress"],
            "base": {"workload": {"synthetic": "16x16"}},
            "grid": GRID,
            "plots": [{**PLOT, "kind": "scatter"}, {**PLOT, "kind": "line"}],
        },
        name="labels",
    )
    points = plan(config, CODE)
    with Store(directory) as store:
        store.set_sweep(config, points, CODE)
        run_sweep(points, store, CODE, workers=1, progress=False)
    files = write_report(directory)
    scatter, line = (svg.read_text() for _, svg in files.figures)
    return {"scatter": scatter, "line": line}


def texts(svg: str) -> list[str]:
    """The text of every <text> element, entities decoded."""
    found = re.findall(r"<text[^>]*>(.*?)</text>", svg, re.DOTALL)
    return [t.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&") for t in found]


def marker_places(svg: str) -> list[tuple[float, float]]:
    """(x, y) of every scatter marker drawn in the panels (the legend's come after
    ``legend_1``; tick marks are not scatter collections)."""
    panels = svg.split('id="legend_1"')[0]
    places = []
    for group in re.findall(r'<g id="PathCollection_\d+">(.*?)</g>', panels, re.DOTALL):
        uses = re.findall(r'<use xlink:href="#[^"]+" x="([\d.]+)" y="([\d.]+)"', group)
        places += [(float(x), float(y)) for x, y in uses]
    return places


@pytest.mark.parametrize("kind", ["scatter", "line"])
def test_axes_are_named_in_words_with_units(svgs, kind):
    shown = texts(svgs[kind])
    assert "index storage (bits/weight)" in shown
    assert "sparsity (fraction of weights pruned)" in shown
    assert "index storage vs sparsity, by storage format" in shown  # the title
    assert not any("index_bits_per_weight" in t for t in shown)


def test_scatter_legend_names_every_varying_parameter(svgs):
    shown = texts(svgs["scatter"])
    assert {"storage format, index units", "with quantization"} <= set(shown)
    assert {
        "csr, index_units=2, quantize=8",
        "csr, index_units=4, quantize=8",
        "relative, quantize=4",
    } <= set(shown)


def test_line_legend_says_what_it_averages(svgs):
    shown = texts(svgs["line"])
    assert {"storage format", "with quantization", "mean over index units"} <= set(shown)
    assert {"csr, quantize=8", "relative, quantize=4"} <= set(shown)


def test_coinciding_markers_are_set_side_by_side(svgs):
    """6 points: csr's two index-unit counts coincide at each sparsity; all 6 show."""
    places = marker_places(svgs["scatter"])
    assert len(places) == 6
    assert len({(round(x, 1), round(y, 1)) for x, y in places}) == 6
    by_height: dict[float, list[float]] = {}
    for x, y in places:
        by_height.setdefault(round(y, 1), []).append(x)
    pairs = [sorted(xs) for xs in by_height.values() if len(xs) == 2]
    assert len(pairs) == 2  # csr at 0.5 and at 0.75, one marker per index-unit count
    assert all(b - a == pytest.approx(DODGE_POINTS) for a, b in pairs)  # SVG unit: 1 pt


def test_dodge_spreads_one_place_and_leaves_others():
    spans = (1.0, 10.0)
    assert dodge([(0.0, 0.0), (0.5, 5.0)], spans) == [0.0, 0.0]
    assert dodge([(0.0, 0.0), (0.001, 0.01), (0.0, 0.0)], spans) == [-5.0, 0.0, 5.0]
    assert dodge([(0.0, 0.0), (0.0, 1.0)], spans) == [0.0, 0.0]  # apart on y


def test_function_of():
    rows = [{"a": 1, "b": "x"}, {"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    assert function_of(rows, "b", ["a"])
    assert not function_of([*rows, {"a": 2, "b": "z"}], "b", ["a"])
    assert function_of(rows, "a", ["b"])


def test_a_log_axis_of_under_two_decades_labels_a_tick_above_2():
    """exp1's index storage spans 0.2 to 4.5 bits/weight: 3 is labelled, not only 0.2 to 2."""
    from matplotlib.figure import Figure

    from codesign.experiments.reports.figures import _log_axis

    fig = Figure()
    ax = fig.subplots()
    ax.plot([0.5, 0.95], [4.5, 0.2])
    _log_axis(ax.yaxis, ax.set_yscale, ax.get_ylim, set())
    fig.canvas.draw()
    low, high = ax.get_ylim()
    labels = [
        (t.get_position()[1], t.get_text())
        for t in [*ax.yaxis.get_ticklabels(), *ax.yaxis.get_ticklabels(minor=True)]
        if t.get_text() and low <= t.get_position()[1] <= high
    ]
    assert {"0.2", "0.3", "0.5", "1", "2", "3"} <= {text for _, text in labels}
    assert max(at for at, _ in labels) > 2
