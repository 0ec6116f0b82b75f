"""The figures of a sweep report: one PNG + SVG per plot a config declares.

A plot (config key ``plots``)::

    - x: sparsity                       # a column (numeric, or categorical: one tick each)
      y: index_bits_per_weight          # a column, or a list: one row of panels each
      group: format                     # optional: one series per value (or value tuple)
      facet: workload                   # optional: one panel per value (a single y wraps
      wrap: 3                           #   at `wrap` panels a row; several y: a column each)
      kind: line                        # line (means joined per x) | scatter
      color: spec.rank                  # scatter only: marker colour from a numeric column
      pareto: {x: min, y: max}          # optional: mark the non-dominated points per panel
      logx: true                        # and logy
      where: {workload: digits}         # optional row selection (and filter: expression)
      title: ..., xlabel: ..., ylabel: ...
      reference:                        # optional lines and curves, drawn in black
        - {y: 1.0, label: bound}                    # horizontal line
        - {x: 10, label: 1/(1-S)}                   # vertical line
        - {points: [[0.9, 0.2]], label: paper}      # fixed points (style: line | markers)
        - {expr: "min(1, (1 - sparsity) * x)"}      # a function of x (and of the facet
                                                    #   column, which has the panel's value)
        - {column: entropy_bound}                   # a column's mean per x, per panel
        # any reference may carry for_y: Y to be drawn only in the panels of y column Y

Axes, legend titles, panel titles and the colour bar name their columns in words with
units (:mod:`codesign.experiments.reports.labels`). The legend names every parameter
that varies among the plotted points (:class:`_Plot`): a swept parameter not on an
axis, facet or colour joins the legend as ``name=value`` when each series has one value
of it (``arch.decoders`` beside ``arch.lanes``); when it separates points of one series
at the same x, a line plot says which parameters its means are taken over; in a scatter
plot any other such parameter becomes a series of its own (up to :data:`MAX_SERIES`
series; beyond that the legend title lists it under "also varies"). A group value that
is a number is shown with its name (``lanes=8``). The title states the value precision
of the points (:data:`~codesign.experiments.reports.results_table.VALUE_PRECISION`);
points at several precisions are never one series (the precision joins the group
columns), and storage that approximates the weights is marked ``LOSSY``. With several group
columns and no ``color`` column, the first sets the colour and the others the marker.
Markers that would sit on one another are set side by side (a few points apart,
:data:`DODGE_POINTS`). The legend sits outside the panels. SVG text stays text
(``svg.fonttype: none``), so labels can be searched and edited.
"""

from __future__ import annotations

import json
import math
import re
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter
from matplotlib.transforms import ScaledTranslation

from codesign.experiments.reports.labels import axis_label, column_name
from codesign.experiments.reports.results_table import (
    VALUE_PRECISION,
    ReportError,
    Table,
    check_columns,
    evaluate,
    expression,
    is_number,
    lossy,
    names,
    select_rows,
)
from codesign.experiments.sweeps.config import REFERENCE_KINDS
from codesign.experiments.sweeps.store import DONE
from codesign.files import replacing

#: y metrics a default plot prefers, in order.
PREFERRED_Y = ("index_bits_per_weight", "accuracy_finetuned", "cells", "total_bits")
#: Categorical parameters a default plot groups by, in order.
PREFERRED_GROUP = ("format", "workload", "method", "arch.block")
MARKERS = "osD^vPX*<>ph"
_REFERENCE_STYLES = ("--", ":", "-.", (0, (5, 2, 1, 2)))
#: Points on a reference curve given by an expression.
CURVE_POINTS = 200
#: A log axis with at most this many distinct data values has a tick at each.
MAX_VALUE_TICKS = 8
#: Panels per row when a single-y plot is faceted and the plot gives no ``wrap``.
DEFAULT_WRAP = 3
#: Markers closer than this fraction of the axis span (either axis) count as one place.
SAME_PLACE = 0.012
#: Horizontal distance, in points, between markers set side by side.
DODGE_POINTS = 5.0
#: Series a scatter plot may reach by making hidden parameters group columns.
MAX_SERIES = 16
#: Longest line of a legend title, in characters.
LEGEND_TITLE_CHARS = 44
#: Width of a character of a legend entry (font size "small"), in inches.
LEGEND_INCHES_PER_CHAR = 0.062


def default_plot(table: Table) -> dict[str, Any] | None:
    """The plot made when the config declares none: x = ``sparsity`` if it varies,
    else the first swept numeric (then any swept) parameter, else ``format``;
    y = the first of :data:`PREFERRED_Y` measured, else the first numeric metric;
    grouped by the first swept one of :data:`PREFERRED_GROUP`. None without metrics."""
    done = [r for r in table.rows if r["status"] == DONE]
    numeric = [m for m in table.metrics if any(is_number(r.get(m)) for r in done)]
    if not numeric:
        return None
    params = table.swept
    numeric_params = [
        p for p in params if all(is_number(r[p]) for r in table.rows if r.get(p) is not None)
    ]
    x = next(
        iter([p for p in ("sparsity",) if p in numeric_params] + numeric_params + params), None
    )
    y = next((m for m in PREFERRED_Y if m in numeric), numeric[0])
    plot: dict[str, Any] = {"x": x or "format", "y": y}
    group = next((g for g in PREFERRED_GROUP if g in params and g != plot["x"]), None)
    if group:
        plot["group"] = group
    return plot


def pareto_front(points: Sequence[tuple[float, float]], goals: tuple[str, str]) -> list[int]:
    """Indices (in input order) of the points no other point dominates; goals
    (``min`` | ``max``) for x and y. A point dominates another when it is at least
    as good on both and better on one (equal points do not dominate each other)."""
    sx, sy = (1.0 if g == "min" else -1.0 for g in goals)
    keyed = [(sx * x, sy * y) for x, y in points]
    return [
        i
        for i, (a, b) in enumerate(keyed)
        if not any(c <= a and d <= b and (c < a or d < b) for c, d in keyed)
    ]


def caption(plot: Mapping[str, Any]) -> str:
    """``y vs x, by group, per facet``: what a plot shows, in words."""
    text = f"{', '.join(column_name(y) for y in names(plot['y']))} vs {column_name(plot['x'])}"
    if plot.get("group"):
        text += f", by {', '.join(column_name(g) for g in names(plot['group']))}"
    return text + (f", per {column_name(plot['facet'])}" if plot.get("facet") else "")


def _named(column: str, value: Any) -> str:
    """A legend's group value: a name (``csr``, ``int8``) as it is, a number or flag with
    its column's short name (``lanes=8``, ``n_out=3``)."""
    return value if isinstance(value, str) else f"{column.rpartition('.')[2]}={value}"


def plot_precision(table: Table, plot: Mapping[str, Any], number: int) -> str | None:
    """The value precision of a plot's points in words (:meth:`_Plot.precision_text`)."""
    return _Plot(table, plot, number).precision_text()


def _key(row: Mapping[str, Any], columns: Sequence[str | None]) -> str:
    return json.dumps([row.get(c) if c else None for c in columns], default=str)


def function_of(rows: Sequence[Mapping[str, Any]], column: str, keys: Sequence[str | None]) -> bool:
    """Whether ``column`` takes one value for each value of the ``keys`` columns."""
    seen: dict[str, str] = {}
    for row in rows:
        value = json.dumps(row.get(column), default=str)
        if seen.setdefault(_key(row, keys), value) != value:
            return False
    return True


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.]+", "_", text).strip("_")


def _sorted_values(values: Sequence[Any]) -> list[Any]:
    unique = list(dict.fromkeys(values))
    return sorted(unique) if all(is_number(v) for v in unique) else unique


class _Plot:
    """One plot being drawn: its rows per y column, its panels and x positions."""

    def __init__(self, table: Table, plot: Mapping[str, Any], number: int):
        self.what = f"plot {number}"
        self.plot = plot
        self.x, self.ys = plot["x"], names(plot["y"])
        self.groups, self.facet = names(plot.get("group")), plot.get("facet")
        self.color = plot.get("color")
        refs = [r["column"] for r in plot.get("reference", []) if "column" in r]
        extra = [c for c in (self.facet, self.color) if c]
        check_columns(table, self.what, [self.x, *self.ys, *self.groups, *extra, *refs])
        rows = select_rows(table, plot, self.what)
        self.data = {
            y: [r for r in rows if r.get(self.x) is not None and r.get(y) is not None]
            for y in self.ys
        }
        self.rows = [r for y in self.ys for r in self.data[y]]
        for y in self.ys:
            bad = [r[y] for r in self.data[y] if not is_number(r[y]) and not isinstance(r[y], bool)]
            if bad:
                raise ReportError(
                    f"{self.what}: y {y!r} is not numeric (values such as {bad[0]!r})"
                )
        if self.color:
            bad = [r.get(self.color) for r in self.rows if not is_number(r.get(self.color))]
            if bad:
                raise ReportError(
                    f"{self.what}: color {self.color!r} is not numeric (values such as {bad[0]!r})"
                )
        self.categorical = any(not is_number(r[self.x]) for r in self.rows)
        self.categories = list(dict.fromkeys(str(r[self.x]) for r in self.rows))
        self.facets = (
            _sorted_values([r.get(self.facet) for r in self.rows]) if self.facet else [None]
        )
        self.alongside: list[str] = []
        self.averaged: list[str] = []
        self.unnamed: list[str] = []
        self.precisions = list(
            dict.fromkeys(r[VALUE_PRECISION] for r in self.rows if r.get(VALUE_PRECISION))
        )
        shown = (self.x, self.facet, self.color, *self.groups)
        if len(self.precisions) > 1 and VALUE_PRECISION not in shown:
            self.groups.append(VALUE_PRECISION)  # never one series across precisions
        self._name_hidden(table)
        self.labels = list(dict.fromkeys(self.label(r) for r in self.rows))
        self.styles = self._styles()

    def _name_hidden(self, table: Table) -> None:
        """Sort the swept parameters that take two values or more among the plotted
        rows (a row without the parameter does not count) but are on no axis, facet,
        colour or group: ``alongside`` when each series has one value of it; in a line
        plot, nothing when each line has one value of it per x (its points trace it),
        else ``averaged``; in a scatter plot, a group column of its own while the series
        stay at most :data:`MAX_SERIES`, else ``unnamed`` (listed in the legend title)."""
        shown = {self.x, self.facet, self.color, *self.groups}
        for column in table.swept:
            values = {json.dumps(r.get(column), default=str) for r in self.rows} - {"null"}
            if column in shown or len(values) < 2:
                continue
            if self.groups and function_of(self.rows, column, self.groups):
                self.alongside.append(column)
            elif self.plot.get("kind", "line") != "scatter":
                if not function_of(self.rows, column, [self.facet, *self.groups, self.x]):
                    self.averaged.append(column)
            elif len({_key(r, [*self.groups, column]) for r in self.rows}) <= MAX_SERIES:
                self.groups.append(column)
            else:
                self.unnamed.append(column)

    def label(self, row: Mapping[str, Any]) -> str:
        """The row's group values (a number as ``name=value``: ``lanes=8``; a name as
        itself: ``csr``), then ``name=value`` of each column named alongside (left out
        where the row has none, or where it repeats a group value: format ``xor`` beside
        block ``xor``), then ``LOSSY`` for storage that approximates the weights."""
        values = [_named(g, row[g]) for g in self.groups if row.get(g) is not None]
        values += [
            f"{c.rpartition('.')[2]}={row[c]}"
            for c in self.alongside
            if row.get(c) is not None and not (isinstance(row[c], str) and row[c] in values)
        ]
        values += ["LOSSY"] if lossy(row) else []
        return ", ".join(values) or (column_name(self.ys[0]) if len(self.ys) == 1 else "value")

    def precision_text(self) -> str | None:
        """The value precision of the plotted points, stated once (``values int8``), or
        of each series when they differ; None when no point stores values."""
        if not self.precisions:
            return None
        if len(self.precisions) == 1:
            return f"values {self.precisions[0]}"
        return f"values {', '.join(self.precisions)}: a series per value precision"

    def _styles(self) -> dict[str, tuple[str, str]]:
        """Series label -> (colour, marker): by series order with at most one group
        column or a ``color`` column (which sets the colour), else colour by the first
        group column's value and marker by the rest."""
        if len(self.groups) <= 1 or self.color:
            return {
                label: (f"C{k % 10}", MARKERS[k % len(MARKERS)])
                for k, label in enumerate(self.labels)
            }
        first = list(dict.fromkeys(_key(r, self.groups[:1]) for r in self.rows))
        rest = list(dict.fromkeys(_key(r, self.groups[1:]) for r in self.rows))
        styles = {}
        for row in self.rows:
            colour = first.index(_key(row, self.groups[:1])) % 10
            marker = rest.index(_key(row, self.groups[1:])) % len(MARKERS)
            styles.setdefault(self.label(row), (f"C{colour}", MARKERS[marker]))
        return styles

    def legend_title(self) -> str | None:
        """The group columns in words, then ``with`` the columns named beside them,
        ``mean over`` the averaged ones and ``also varies`` the unnamed ones, each part
        on lines of at most :data:`LEGEND_TITLE_CHARS` characters."""
        parts = [", ".join(column_name(g) for g in self.groups)] if self.groups else []
        if self.alongside:
            parts.append("with " + ", ".join(column_name(c) for c in self.alongside))
        if self.averaged:
            parts.append("mean over " + ", ".join(column_name(c) for c in self.averaged))
        if self.unnamed:
            parts.append("also varies: " + ", ".join(column_name(c) for c in self.unnamed))
        lines = [line for part in parts for line in textwrap.wrap(part, LEGEND_TITLE_CHARS)]
        return "\n".join(lines) or None

    def xpos(self, row: Mapping[str, Any]) -> float:
        value = row[self.x]
        return float(self.categories.index(str(value))) if self.categorical else float(value)

    def panel(self, y: str, facet_value: Any) -> list[dict[str, Any]]:
        return [r for r in self.data[y] if self.facet is None or r.get(self.facet) == facet_value]

    def x_range(self) -> tuple[float, float]:
        xs = [self.xpos(r) for r in self.rows]
        return min(xs), max(xs)


def pareto_rows(table: Table, plot: Mapping[str, Any], number: int) -> list[tuple[Any, list]]:
    """Per panel of a plot with ``pareto``: (facet value or None, its front rows sorted
    by x); one entry per (y column, facet value)."""
    if not plot.get("pareto"):
        return []
    p = _Plot(table, plot, number)
    goals = (plot["pareto"]["x"], plot["pareto"]["y"])
    out = []
    for y in p.ys:
        for value in p.facets:
            rows = p.panel(y, value)
            front = pareto_front([(p.xpos(r), float(r[y])) for r in rows], goals)
            out.append((value, sorted((rows[i] for i in front), key=p.xpos)))
    return out


def dodge(points: Sequence[tuple[float, float]], spans: tuple[float, float]) -> list[float]:
    """Horizontal offsets (in points) that set markers at one place side by side:
    points within :data:`SAME_PLACE` of the axis ``spans`` (x, y) of each other form a
    place; its k-th of n points moves (k − (n − 1)/2)·:data:`DODGE_POINTS`."""
    places: list[list[int]] = []
    for i, (x, y) in enumerate(points):
        for place in places:
            x0, y0 = points[place[0]]
            if abs(x - x0) <= SAME_PLACE * spans[0] and abs(y - y0) <= SAME_PLACE * spans[1]:
                place.append(i)
                break
        else:
            places.append([i])
    offsets = [0.0] * len(points)
    for place in places:
        for k, i in enumerate(place):
            offsets[i] = (k - (len(place) - 1) / 2) * DODGE_POINTS
    return offsets


def _spans(p: _Plot, y: str) -> tuple[float, float]:
    """The data spans of the x and y axes (in log10 on a log axis), never zero."""

    def span(values: list[float], log: bool) -> float:
        values = [math.log10(v) for v in values if v > 0] if log else values
        return (max(values) - min(values)) or 1.0 if values else 1.0

    xs = [p.xpos(r) for r in p.rows]
    ys = [float(r[y]) for r in p.data[y]]
    return span(xs, bool(p.plot.get("logx"))), span(ys, bool(p.plot.get("logy")))


def _shifted(ax: Axes, points: float) -> Any:
    return ax.transData + ScaledTranslation(points / 72, 0, ax.figure.dpi_scale_trans)


def _series(ax: Axes, p: _Plot, y: str, rows: list[dict], norm: Normalize | None) -> None:
    kind = p.plot.get("kind", "line")
    series = {label: [r for r in rows if p.label(r) == label] for label in p.labels}
    series = {label: members for label, members in series.items() if members}
    drawn = [(label, r) for label, members in series.items() for r in members]
    if kind == "line":  # one place per series mean, so a line moves as a whole
        means = {
            (label, x): float(np.mean([float(r[y]) for r in members if p.xpos(r) == x]))
            for label, members in series.items()
            for x in {p.xpos(r) for r in members}
        }
        places = list(means)
        shifts = dodge([(x, means[(label, x)]) for label, x in places], _spans(p, y))
        offset = {label: 0.0 for label in series}
        for (label, _), shift in zip(places, shifts, strict=True):
            offset[label] = shift if abs(shift) > abs(offset[label]) else offset[label]
    else:
        shifts = dodge([(p.xpos(r), float(r[y])) for _, r in drawn], _spans(p, y))
    for label, members in series.items():
        colour, marker = p.styles[label]
        xs = [p.xpos(r) for r in members]
        values = [float(r[y]) for r in members]
        ax.update_datalim(list(zip(xs, values, strict=True)))  # shifted artists do not
        if kind == "line":
            at = sorted(set(xs))
            line = [means[(label, x)] for x in at]
            moved = _shifted(ax, offset[label])
            ax.plot(at, line, marker=marker, color=colour, label=label, transform=moved)
            if len(members) > len(at):
                ax.scatter(xs, values, color=colour, alpha=0.35, s=14, transform=moved)
            continue
        mine = [
            (row, shift) for (own, row), shift in zip(drawn, shifts, strict=True) if own == label
        ]
        for shift in sorted({shift for _, shift in mine}):
            at = [row for row, moved in mine if moved == shift]
            style: dict[str, Any] = {"color": colour}
            if norm is not None:
                style = {"c": [float(r[p.color]) for r in at], "cmap": "viridis", "norm": norm}
            ax.scatter(
                [p.xpos(r) for r in at],
                [float(r[y]) for r in at],
                marker=marker,
                edgecolors="black" if norm is not None else "face",
                linewidths=0.4,
                s=30,
                transform=_shifted(ax, shift),
                **style,
            )
        if norm is not None:
            ax.scatter([], [], color="0.6", edgecolors="black", marker=marker, label=label)
        else:
            ax.scatter([], [], color=colour, marker=marker, s=30, label=label)
    ax.autoscale_view()


def _pareto(ax: Axes, p: _Plot, y: str, rows: list[dict]) -> None:
    goals = (p.plot["pareto"]["x"], p.plot["pareto"]["y"])
    pts = [(p.xpos(r), float(r[y])) for r in rows]
    front = sorted(pts[i] for i in pareto_front(pts, goals))
    if front:
        xs, ys = zip(*front, strict=True)
        ax.plot(xs, ys, color="red", linewidth=1.0, zorder=1)
        ax.scatter(
            xs,
            ys,
            s=110,
            facecolors="none",
            edgecolors="red",
            linewidths=1.5,
            zorder=3,
            label=f"Pareto front ({goals[0]} x, {goals[1]} y)",
        )


def _curve_x(p: _Plot, logx: bool) -> np.ndarray:
    lo, hi = p.x_range()
    if logx and lo > 0:
        return np.geomspace(lo, hi, CURVE_POINTS)
    return np.linspace(lo, hi, CURVE_POINTS)


def _reference(ax: Axes, p: _Plot, k: int, ref: Mapping[str, Any], y: str, value: Any) -> None:
    what = f"{p.what} reference[{k}]"
    style = {"color": "black", "linestyle": _REFERENCE_STYLES[k % len(_REFERENCE_STYLES)]}
    kind = next(kind for kind in REFERENCE_KINDS if kind in ref)
    label = ref.get("label") or (f"{kind} = {ref[kind]}" if kind != "points" else "reference")
    if kind == "y":
        ax.axhline(ref["y"], label=label, linewidth=1.2, **style)
    elif kind == "x":
        if p.categorical:
            raise ReportError(f"{what}: an x reference needs a numeric x, {p.x!r} is categorical")
        ax.axvline(ref["x"], label=label, linewidth=1.2, **style)
    elif kind == "points":
        xs, ys = zip(*ref["points"], strict=True)
        line = "none" if ref.get("style", "markers") == "markers" else style["linestyle"]
        ax.plot(xs, ys, color="black", linestyle=line, marker="*", markersize=11, label=label)
    elif kind == "expr":
        if p.categorical:
            raise ReportError(f"{what}: a curve needs a numeric x, {p.x!r} is categorical")
        expr = expression(ref["expr"], what)
        known = {"x"} | ({p.facet} if p.facet else set())
        unknown = [n for n in expr.names if n not in known]
        if unknown:
            raise ReportError(
                f"{what}: {unknown[0]!r} is unknown; a curve reads x"
                + (f" and the facet column {p.facet}" if p.facet else "")
            )
        xs = _curve_x(p, bool(p.plot.get("logx")))
        facet = {p.facet: value} if p.facet else {}
        values = [evaluate(expr, {**facet, "x": float(v)}, what) for v in xs]
        pts = [(v, float(w)) for v, w in zip(xs, values, strict=True) if is_number(w)]
        if pts:
            ax.plot(*zip(*pts, strict=True), linewidth=1.2, label=label, **style)
    else:
        column = ref["column"]
        rows = [r for r in p.panel(y, value) if is_number(r.get(column))]
        xs = sorted({p.xpos(r) for r in rows})
        means = [float(np.mean([r[column] for r in rows if p.xpos(r) == v])) for v in xs]
        if xs:
            ax.plot(xs, means, linewidth=1.2, label=ref.get("label") or column, **style)


def _log_axis(axis: Any, set_scale: Any, get_lim: Any, values: set[float]) -> None:
    """A log scale with plain numbers as tick labels (1, 0.5, 20 rather than
    10^0, 5×10^-1): at the data ``values`` when there are at most
    :data:`MAX_VALUE_TICKS` of them, else at the powers of ten, with the minor ticks of
    :data:`LABELLED_MANTISSAS` labelled too when the axis spans two decades or less."""
    set_scale("log")
    plain = FuncFormatter(lambda v, _: _tick(v))
    axis.set_major_formatter(plain)
    ticks = sorted(v for v in values if v > 0)
    if 0 < len(ticks) <= MAX_VALUE_TICKS:
        axis.set_ticks(ticks)
        axis.set_minor_formatter(NullFormatter())
        return
    lo, hi = get_lim()
    if lo > 0 and hi / lo <= 100:
        axis.set_minor_formatter(FuncFormatter(_minor_label))
    else:
        axis.set_minor_formatter(NullFormatter())


def _tick(value: float) -> str:
    """A log-axis tick label: 0.05, 20, 5000; 2e5 and 1e-4 outside [0.001, 10^5)."""
    if 1e-3 <= abs(value) < 1e5 or value == 0:
        return f"{value:g}"
    mantissa, exponent = f"{value:.2e}".split("e")
    return f"{float(mantissa):g}e{int(exponent)}"


#: The minor ticks of a log axis spanning two decades or less that carry a label: 2, 3
#: and 5 × 10^k, so that an axis ending between 2 and 10 × 10^k has a label above 2.
LABELLED_MANTISSAS = (2.0, 3.0, 5.0)


def _minor_label(value: float, _: int) -> str:
    if value <= 0:
        return ""
    mantissa = value / 10 ** math.floor(math.log10(value))
    return _tick(value) if round(mantissa, 6) in LABELLED_MANTISSAS else ""


def _legend_width(p: _Plot) -> float:
    """Inches the legend needs: its longest entry or its title, at least 2.6."""
    entries = max((len(label) for label in p.labels), default=0) * LEGEND_INCHES_PER_CHAR
    lines = (p.legend_title() or "").splitlines() or [""]
    title = max(len(line) for line in lines) * LEGEND_INCHES_PER_CHAR * 1.2
    return max(2.6, 0.9 + max(entries, title))


def draw_plot(
    table: Table, plot: Mapping[str, Any], number: int, out_dir: Path
) -> tuple[Path, Path] | None:
    """Write plot ``number`` (see the module docstring) as PNG and SVG into
    ``out_dir``; None when no done point has both coordinates. A column that does not
    exist, or a non-numeric y or colour, raises :class:`ReportError`."""
    p = _Plot(table, plot, number)
    if not p.rows:
        return None
    units = table.units
    ylabels = names(plot.get("ylabel")) or [axis_label(y, units) for y in p.ys]
    if len(ylabels) != len(p.ys):
        raise ReportError(f"{p.what}: ylabel gives {len(ylabels)} labels for {len(p.ys)} y columns")
    if len(p.ys) == 1:
        ncols = min(len(p.facets), plot.get("wrap", DEFAULT_WRAP))
        nrows = -(-len(p.facets) // ncols)
        panels = [(p.ys[0], v, k // ncols, k % ncols) for k, v in enumerate(p.facets)]
    else:
        nrows, ncols = len(p.ys), len(p.facets)
        panels = [(y, v, i, j) for i, y in enumerate(p.ys) for j, v in enumerate(p.facets)]
    legend = bool(
        p.groups or p.averaged or p.unnamed or plot.get("reference") or plot.get("pareto")
    )
    width = 1.8 + 4.4 * ncols + (_legend_width(p) if legend else 0) + (1.2 if p.color else 0)
    fig = Figure(figsize=(max(width, 7.5), 0.9 + 3.5 * nrows), layout="constrained")
    axes = fig.subplots(
        nrows, ncols, squeeze=False, sharex=True, sharey=True if len(p.ys) == 1 else "row"
    )
    norm = None
    if p.color:
        shades = [float(r[p.color]) for r in p.rows]
        norm = Normalize(min(shades), max(shades) if max(shades) > min(shades) else min(shades) + 1)
    used = {(i, j) for _, _, i, j in panels}
    for ax in (axes[i][j] for i in range(nrows) for j in range(ncols) if (i, j) not in used):
        ax.set_visible(False)
    for y, value, i, j in panels:
        ax = axes[i][j]
        rows = p.panel(y, value)
        _series(ax, p, y, rows, norm)
        if plot.get("pareto") and rows:
            _pareto(ax, p, y, rows)
        for k, ref in enumerate(plot.get("reference", [])):
            if ref.get("for_y", y) == y:
                _reference(ax, p, k, ref, y, value)
        if plot.get("logx") and not p.categorical:
            _log_axis(ax.xaxis, ax.set_xscale, ax.get_xlim, {p.xpos(r) for r in p.rows})
        if plot.get("logy"):
            _log_axis(ax.yaxis, ax.set_yscale, ax.get_ylim, set())
        if p.categorical:
            ax.set_xticks(range(len(p.categories)), p.categories, rotation=30, ha="right")
        elif all(isinstance(r[p.x], int) for r in p.rows) and not plot.get("logx"):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if all(isinstance(r[y], int) for r in p.data[y]) and not plot.get("logy"):
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        if p.facet and (len(p.ys) == 1 or i == 0):
            ax.set_title(f"{column_name(p.facet)} = {value}", fontsize="medium")
        if j == 0:
            ax.set_ylabel(ylabels[p.ys.index(y)])
        if (i + 1, j) not in used:
            ax.xaxis.set_tick_params(labelbottom=True)
            ax.set_xlabel(plot.get("xlabel") or axis_label(p.x, units))
        ax.grid(alpha=0.3)
    if legend:
        handles: dict[str, Any] = {}
        for ax in axes.flat:
            for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
                handles.setdefault(label, handle)
        title = p.legend_title()
        fig.legend(
            handles.values(),
            handles.keys(),
            loc="outside right center",
            title=title,
            fontsize="small",
        )
    if norm is not None:
        mappable = ScalarMappable(norm=norm, cmap="viridis")
        fig.colorbar(mappable, ax=axes, label=axis_label(p.color, units), shrink=0.9)
    title = plot.get("title") or caption(plot)
    precision = p.precision_text()
    fig.suptitle(f"{title}\n{precision}" if precision else title)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"plot{number}-{_slug('+'.join(p.ys))}-vs-{_slug(p.x)}"
    png, svg = out_dir / f"{stem}.png", out_dir / f"{stem}.svg"
    with replacing(png) as tmp:
        fig.savefig(tmp, dpi=120)
    with rc_context({"svg.fonttype": "none"}), replacing(svg) as tmp:
        fig.savefig(tmp)
    return png, svg
