"""`codesign report DIR`: a sweep's results as CSV, plots and a Markdown summary.

Reads the store of a sweep directory (:mod:`codesign.experiments.sweeps.store`) and writes the
report of each config run there: the directory's first config into the directory itself
(or ``--out``), any other config ``NAME`` sharing the store into its subfolder ``NAME/``,
so that a config's report shows its own points and title only. A report holds:

- ``results.csv``: one row per point of the last sweep run in sweep order — ``index``,
  ``key`` (the store key), ``status`` (done | failed | pending), the point's
  parameters flattened (``workload`` label, ``workload.*``, ``format``, ``spec.*``,
  ``sparsity``, ``quantize``, ``arch.*``, stage fields, ``stages``; a parameter that is
  empty for every point is left out), the metrics, the derived columns the config
  declares (``columns``, :mod:`codesign.experiments.reports.results_table`), then ``seconds``,
  ``finished`` (UTC, ISO 8601), ``worker``, ``attempts``, ``error_type`` and
  ``error_message``;
- ``plots/plotN-Y-vs-X.png`` and ``.svg`` for each plot the config declares
  (:mod:`codesign.experiments.reports.figures`), or one default plot;
- ``summary.md``: counts and compute time, the comparison tables, the derived columns'
  definitions, the best points per objective, the figures (with each Pareto front's
  points), the failures.

A comparison (config key ``comparisons``) is a Markdown table of selected points::

    - title: Viterbi pruning against the paper
      where: {format: viterbi}             # rows: the done points matching where and
      filter: "accuracy_finetuned > 0.9"   #   filter (an expression), in sweep order,
      best: {metric: pruning_ratio, goal: max, per: method}  # or the best one per group
      columns:                             # a column name, or {column, label, format}
        - sparsity                         #   (format: a Python format spec, "+.1%")
        - {column: index_vs_csr, label: index vs CSR, format: "+.1%"}
      reference: {paper index vs CSR: "-85.2 %"}   # constant columns appended
      note: LeNet-300-100 on MNIST in the paper    # a line under the table

An objective (``objectives``: ``{metric, goal: min | max, top?, where?, filter?}``)
lists the ``top`` best done points.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from codesign.experiments.reports.figures import (
    caption,
    default_plot,
    draw_plot,
    pareto_rows,
    plot_precision,
)
from codesign.experiments.reports.labels import axis_label
from codesign.experiments.reports.results_table import (
    PENDING,
    VALUE_PRECISION,
    ReportError,
    Table,
    add_columns,
    build_table,
    check_columns,
    is_number,
    lossy,
    names,
    select_rows,
    workload_label,
    write_csv,
)
from codesign.experiments.sweeps.config import swept_keys
from codesign.experiments.sweeps.store import DONE, FAILED, Row, Store, code_version
from codesign.files import write_text

__all__ = [
    "CSV_FILE",
    "PENDING",
    "PLOT_DIR",
    "SUMMARY_FILE",
    "ReportError",
    "ReportFiles",
    "axis_label",
    "best_by_precision",
    "best_points",
    "comparison_table",
    "workload_label",
    "report_dir",
    "write_report",
    "write_reports",
]

CSV_FILE = "results.csv"
SUMMARY_FILE = "summary.md"
PLOT_DIR = "plots"
#: What a best-point table says of a point whose storage approximates the weights.
LOSSY_NOTE = "LOSSY: approximates the weights"


@dataclasses.dataclass(frozen=True)
class ReportFiles:
    """What :func:`write_report` wrote: the CSV, each figure's (PNG, SVG), the summary."""

    csv: Path
    figures: list[tuple[Path, Path]]
    summary: Path


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else str(value)
    return str(value).replace("|", "\\|").replace("\n", " ")


def _markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines


def _point_label(table: Table, row: dict[str, Any]) -> str:
    shown = table.swept or ["format"]
    return " ".join(f"{p}={_cell(row.get(p))}" for p in shown)


def best_points(table: Table, objective: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The ``top`` (default 5) done points best on ``objective`` ({metric, goal: min |
    max, top?, where?, filter?}); an unknown metric raises :class:`ReportError`."""
    metric = objective["metric"]
    what = f"objective {metric}"
    check_columns(table, what, [metric])
    rows = [r for r in select_rows(table, objective, what) if is_number(r.get(metric))]
    rows.sort(key=lambda r: r[metric], reverse=objective["goal"] == "max")
    return rows[: objective.get("top", 5)]


def _best_per_group(rows: list[dict], best: Mapping[str, Any]) -> list[dict[str, Any]]:
    metric, per = best["metric"], names(best.get("per"))
    chosen: dict[tuple, dict[str, Any]] = {}
    for row in rows:
        if not is_number(row.get(metric)):
            continue
        group = tuple(str(row.get(c)) for c in per)
        held = chosen.get(group)
        better = held is None or (
            row[metric] > held[metric] if best["goal"] == "max" else row[metric] < held[metric]
        )
        if better:
            chosen[group] = row
    return list(chosen.values())


def _formatted(value: Any, spec: str | None, what: str) -> Any:
    if spec is None or not is_number(value):
        return value
    try:
        return format(value, spec)
    except ValueError as exc:
        raise ReportError(f"{what}: format {spec!r}: {exc}") from None


def comparison_table(
    table: Table, comparison: Mapping[str, Any], number: int
) -> tuple[list[str], list[list[Any]]]:
    """(header, rows) of comparison ``number`` (see the module docstring)."""
    what = f"comparison {number} ({comparison['title']})"
    rows = select_rows(table, comparison, what)
    best = comparison.get("best")
    if best:
        check_columns(table, f"{what} best", [best["metric"], *names(best.get("per"))])
        rows = _best_per_group(rows, best)
    cells = [c if isinstance(c, dict) else {"column": c} for c in comparison["columns"]]
    check_columns(table, what, [c["column"] for c in cells])
    reference = comparison.get("reference") or {}
    header = [c.get("label") or c["column"] for c in cells] + list(reference)
    body = [
        [_formatted(r.get(c["column"]), c.get("format"), what) for c in cells]
        + list(reference.values())
        for r in rows
    ]
    return header, body


def _compute_time(table: Table, rows: Mapping[str, Row]) -> str:
    stored = [rows[r["key"]] for r in table.rows if r["key"] in rows]
    if not stored:
        return "- compute: nothing computed yet"
    total = sum(r.seconds for r in stored)
    span = max(r.finished for r in stored) - min(r.started for r in stored)
    return (
        f"- compute: {total:.1f} s summed over {len(stored)} points; {span:.1f} s from the "
        f"first start to the last finish (across runs when resumed)"
    )


def _comparisons(config: Mapping[str, Any], table: Table) -> list[str]:
    lines: list[str] = []
    for number, comparison in enumerate(config.get("comparisons") or [], start=1):
        header, body = comparison_table(table, comparison, number)
        lines += [f"### {comparison['title']}", ""]
        lines += [*_markdown_table(header, body), ""] if body else ["No done point matches.", ""]
        if comparison.get("note"):
            lines += [comparison["note"], ""]
    return ["## Comparisons", "", *lines] if lines else []


def _derived(config: Mapping[str, Any], table: Table) -> list[str]:
    lines = []
    for column in config.get("columns") or []:
        text = f"- `{column['name']}` = `{column['expr']}`"
        if column["name"] in table.units:
            text += f" ({table.units[column['name']]})"
        baseline = column.get("baseline")
        if baseline:
            parts = [f"{k} = {_cell(v)}" for k, v in (baseline.get("where") or {}).items()]
            parts += [f"filter `{baseline['filter']}`"] if baseline.get("filter") else []
            same = ", ".join(baseline.get("match", [])) or "nothing"
            text += f"; baseline: the row with {', '.join(parts) or 'any values'}, same {same}"
        lines.append(text)
    return ["## Derived columns", "", *lines, ""] if lines else []


def _by_precision(rows: list[dict[str, Any]]) -> dict[str | None, list[dict[str, Any]]]:
    """``rows`` split by their value precision (:data:`VALUE_PRECISION`), in order of
    first appearance; rows without one under None."""
    groups: dict[str | None, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row.get(VALUE_PRECISION), []).append(row)
    return groups


def best_by_precision(
    table: Table, objective: Mapping[str, Any]
) -> dict[str | None, list[dict[str, Any]]]:
    """The ``top`` best done points on ``objective`` (:func:`best_points`) ranked within
    each value precision: sizes and ratios at different precisions are not compared."""
    everyone = {**objective, "top": len(table.rows)}
    top = objective.get("top", 5)
    groups = _by_precision(best_points(table, everyone))
    order = list(dict.fromkeys(r.get(VALUE_PRECISION) for r in table.rows))  # sweep order
    return {p: groups[p][:top] for p in sorted(groups, key=order.index)}


def _objectives(config: Mapping[str, Any], table: Table) -> list[str]:
    lines = ["## Best points", ""]
    objectives = config.get("objectives") or []
    if not objectives:
        lines += ["No objectives declared (add `objectives: [{metric: M, goal: min}]`).", ""]
    shown = table.swept or ["format"]
    for objective in objectives:
        metric = objective["metric"]
        lines += [f"### {metric} ({objective['goal']})", ""]
        groups = best_by_precision(table, objective)
        if not groups:
            lines += ["No done point has this metric.", ""]
            continue
        known = [p for p in groups if p is not None]
        if len(groups) > 1:
            lines += [
                f"Ranked within each value precision ({', '.join(known)}): sizes and ratios "
                "at different precisions are not compared.",
                "",
            ]
        elif known:
            lines += [f"Values: {known[0]} at every point ranked.", ""]
        for precision, best in groups.items():
            if len(groups) > 1:
                lines += [f"#### values {precision or 'not stored'}", ""]
            header = ["rank", *shown, metric, "key"]
            body = [
                [i + 1, *(r.get(p) for p in shown), r[metric], r["key"][:12]]
                for i, r in enumerate(best)
            ]
            if any(lossy(r) for r in best):
                header.append("note")
                for row, r in zip(body, best, strict=True):
                    row.append(LOSSY_NOTE if lossy(r) else "")
            lines += [*_markdown_table(header, body), ""]
    return lines


def _figures(
    table: Table, figures: Sequence[tuple[Mapping[str, Any], tuple[Path, Path] | None]], out: Path
) -> list[str]:
    lines = ["## Figures", ""]
    for number, (plot, files) in enumerate(figures, start=1):
        text = caption(plot)
        if files is None:
            lines.append(f"- plot {number} ({text}): no done point to draw")
            continue
        png, svg = (p.relative_to(out).as_posix() for p in files)
        precision = plot_precision(table, plot, number)
        text += f" ({precision})" if precision else ""
        lines += [f"- plot {number}: {text} — [PNG]({png}), [SVG]({svg})", ""]
        lines += [f"![{text}]({png})", ""]
        for value, front in pareto_rows(table, plot, number):
            panel = f", {plot['facet']} = {value}" if plot.get("facet") else ""
            lines += [f"Pareto front of plot {number}{panel}:", ""]
            header = ["index", *(table.swept or ["format"]), plot["x"], *names(plot["y"])]
            body = [[r["index"], *(r.get(c) for c in header[1:])] for r in front]
            lines += [*_markdown_table(header, body), ""]
    if not figures:
        lines.append("No figure: no done point has a numeric metric.")
    return lines


def _failures(table: Table, rows: Mapping[str, Row]) -> list[str]:
    failed = [r for r in table.rows if r["status"] == FAILED]
    lines = ["", "## Failures", ""]
    if not failed:
        lines.append("None.")
    for r in failed:
        row = rows[r["key"]]
        lines += [
            f"### point {r['index']}: {_point_label(table, r)}",
            "",
            f"`{row.error_type}`: {_cell(row.error_message)}",
            "",
        ]
        if row.traceback:
            lines += ["<details><summary>traceback</summary>", "", "```", row.traceback.rstrip()]
            lines += ["```", "", "</details>", ""]
    return lines


def _stages_run(config: Mapping[str, Any], table: Table) -> list[str]:
    """The stages the points run (some may set their own), else the config's."""
    run = [s for r in table.rows for s in str(r.get("stages") or "").split("+") if s]
    return list(dict.fromkeys(run)) or list(config["stages"])


def _summary(
    config: dict[str, Any],
    table: Table,
    store: Store,
    rows: dict[str, Row],
    figures: list[tuple[dict[str, Any], tuple[Path, Path] | None]],
    out: Path,
) -> list[str]:
    counts = {s: sum(r["status"] == s for r in table.rows) for s in (DONE, FAILED, PENDING)}
    keys = {r["key"] for r in table.rows}
    other = sum(k not in keys for k in store.statuses())
    stored_code = store.meta("code_version", config["name"]) or ""
    lines = [f"# Sweep `{config['name']}`", ""]
    if config.get("description"):
        lines += [config["description"], ""]
    lines += [
        f"- stages: {', '.join(_stages_run(config, table))}",
        f"- points: {len(table.rows)} — done {counts[DONE]}, failed {counts[FAILED]}, "
        f"pending {counts[PENDING]}",
        _compute_time(table, rows),
        f"- store: `{store.path}` (code version `{stored_code[:12]}`"
        + (
            ""
            if stored_code == code_version()
            else "; the sources have changed since, a rerun would recompute every point"
        )
        + ")",
        f"- other rows in the store (other configs or code versions): {other}",
        *_other_sweeps(store, config["name"], out),
        f"- table: [{CSV_FILE}]({CSV_FILE})",
        "",
    ]
    lines += _comparisons(config, table)
    lines += _derived(config, table)
    lines += _objectives(config, table)
    lines += _figures(table, figures, out)
    lines += _failures(table, rows)
    return lines


def _other_sweeps(store: Store, name: str, out: Path) -> list[str]:
    """A line naming the other configs sharing the store, with their report folders
    relative to this report's folder ``out``."""
    names = store.sweeps()
    base = out if name == names[0] else out.parent
    links = [
        f"`{n}` ({Path(os.path.relpath(report_dir(base, names[0], n), out)).as_posix()}/)"
        for n in names
        if n != name
    ]
    return [f"- other configs in this store: {', '.join(links)}"] if links else []


def report_dir(base: Path, first: str, sweep: str) -> Path:
    """The report folder of the config ``sweep`` when the reports of a store whose
    first config is ``first`` are written under ``base``: ``base`` itself for the first
    config, ``base/NAME`` for another."""
    return base if sweep == first else base / sweep


def write_report(
    directory: str | Path, out: str | Path | None = None, sweep: str | None = None
) -> ReportFiles:
    """Write the CSV, the figures and the Markdown summary of the config ``sweep``
    (default: the directory's first) of the store in ``directory`` into ``out``
    (default: ``directory`` for the first config, ``directory/NAME`` for another).
    Derived columns, objectives and comparisons are checked (unknown columns, ambiguous
    baselines, ...) before any file is written; each file is replaced whole
    (:mod:`codesign.files`)."""
    directory = Path(directory)
    with Store(directory, create=False) as store:
        names = store.sweeps()
        if not names:
            raise ReportError(f"the store in {directory} holds no sweep yet")
        if sweep is not None and sweep not in names:
            raise ReportError(
                f"the store in {directory} holds no sweep {sweep!r}; it holds {', '.join(names)}"
            )
        sweep = sweep or names[0]
        config = store.meta("config", sweep)
        points = store.points(sweep)
        out = Path(out) if out is not None else report_dir(directory, names[0], sweep)
        rows = store.rows([k for k, _ in points])
        table = build_table(points, rows, swept_keys(config))
        table = add_columns(table, config.get("columns") or [])
        plots = config.get("plots") or [p for p in [default_plot(table)] if p is not None]
        for objective in config.get("objectives") or []:
            best_points(table, objective)
        for number, comparison in enumerate(config.get("comparisons") or [], start=1):
            comparison_table(table, comparison, number)
        csv_path = write_csv(table, out / CSV_FILE)
        figures = [
            (plot, draw_plot(table, plot, n, out / PLOT_DIR)) for n, plot in enumerate(plots, 1)
        ]
        summary = out / SUMMARY_FILE
        write_text(summary, "\n".join(_summary(config, table, store, rows, figures, out)) + "\n")
    return ReportFiles(csv_path, [f for _, f in figures if f is not None], summary)


def write_reports(directory: str | Path, out: str | Path | None = None) -> list[ReportFiles]:
    """The report of every config run in the store of ``directory``
    (:func:`write_report`), written under ``out`` (default: ``directory``): the first
    config's into ``out``, each other's into ``out/NAME``."""
    directory = Path(directory)
    with Store(directory, create=False) as store:
        names = store.sweeps()
    if not names:
        raise ReportError(f"the store in {directory} holds no sweep yet")
    base = Path(out) if out is not None else directory
    return [write_report(directory, report_dir(base, names[0], n), n) for n in names]
