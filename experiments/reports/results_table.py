"""A sweep's results as one flat table: a row per point, a column per parameter and
metric, selections of its rows and derived columns.

:func:`build_table` flattens the sweep's points and their stored rows;
:func:`select_rows` picks the done rows a report item asks for (``where`` and
``filter``); :func:`add_columns` computes the derived columns a config declares (their units in
:attr:`Table.units`; every other column's name and unit are in
:mod:`codesign.experiments.reports.labels`).

A derived column (config key ``columns``, computed in order, so a later one may read an
earlier one)::

    - name: index_vs_csr                         # a new column name
      expr: index_bits / baseline.index_bits - 1 # an expression (sweeps.expressions)
      unit: fraction                             # optional, for axis labels
      baseline:                                  # optional: baseline.C is column C of
        where: {format: csr, stages: compress}   #   the one done row matching where
        filter: "kept_fraction > 0"              #   and filter, and equal to this row
        match: [workload, sparsity]              #   on the match columns

It is computed for done rows (others get an empty cell); a missing value or undefined
arithmetic gives an empty cell; more than one baseline row for a row is an error
(narrow ``where`` or add ``match`` columns).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from codesign.experiments.sweeps.config import COMMON_FIELDS
from codesign.experiments.sweeps.expressions import Expression, ExpressionError, parse
from codesign.experiments.sweeps.store import DONE, Row
from codesign.files import replacing

PENDING = "pending"
BASELINE = "baseline."
_BOOKKEEPING = ("seconds", "finished", "worker", "attempts", "error_type", "error_message")


class ReportError(ValueError):
    """A report cannot be made as asked (unknown column, non-numeric axis, ...)."""


@dataclasses.dataclass(frozen=True)
class Table:
    """The flattened results: ``rows`` (dicts) over ``params`` + ``metrics`` +
    bookkeeping columns; ``swept``: the parameters the config sweeps (grid and random
    keys, a whole ``spec``/``arch`` as its fields) taking two values or more;
    ``units``: units of derived columns."""

    rows: list[dict[str, Any]]
    params: list[str]
    metrics: list[str]
    swept: list[str]
    units: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        return ["index", "key", "status", *self.params, *self.metrics, *_BOOKKEEPING]


def workload_label(workload: dict[str, Any] | None) -> str:
    """Short name of a workload: ``digits``, ``64x64`` (plus a non-gaussian
    distribution and a non-zero seed), or the weights file name."""
    if workload is None:
        return ""
    if "synthetic" in workload:
        label = workload["synthetic"]
        if workload.get("distribution", "gaussian") != "gaussian":
            label += f" {workload['distribution']}"
        return label + (f" seed {workload['seed']}" if workload.get("seed") else "")
    return workload.get("model") or Path(workload["weights"]).name


def _flatten(point: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"workload": workload_label(point["workload"])}
    for key, value in point.items():
        if isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in value.items()})
        elif isinstance(value, list):
            out[key] = "+".join(map(str, value))
        elif key != "workload":
            out[key] = value
    return out


def _bookkeeping(row: Row) -> dict[str, Any]:
    finished = datetime.datetime.fromtimestamp(row.finished, datetime.timezone.utc)
    return {
        "seconds": round(row.seconds, 4),
        "finished": finished.isoformat(timespec="seconds"),
        "worker": row.worker,
        "attempts": row.attempts,
        "error_type": row.error_type,
        "error_message": row.error_message,
    }


def build_table(
    points: Sequence[tuple[str, dict]], rows: dict[str, Row], swept: Sequence[str] = ()
) -> Table:
    """Flatten the sweep's points and their stored rows (a point without a row is
    pending); ``swept``: the config keys that vary
    (:func:`codesign.experiments.sweeps.config.swept_keys`)."""
    out, params, metrics = [], {}, {}
    for index, (key, point) in enumerate(points):
        flat = _flatten(point)
        params.update(dict.fromkeys(flat))
        row = rows.get(key)
        record = {"index": index, "key": key, "status": PENDING, **flat}
        if row is not None:
            metrics.update(dict.fromkeys(k for k in row.metrics if k not in flat))
            record.update({"status": row.status, **row.metrics, **_bookkeeping(row)})
        out.append(record)
    for record in out:
        if record["status"] == DONE and value_precision(record) is not None:
            record[VALUE_PRECISION] = value_precision(record)
            metrics[VALUE_PRECISION] = None
    heads = list(dict.fromkeys([*COMMON_FIELDS, *(c.split(".")[0] for c in params)]))
    heads = [h for h in heads if h != "stages"] + ["stages"]
    ordered = sorted(params, key=lambda c: heads.index(c.split(".")[0]))
    kept = [p for p in ordered if any(r.get(p) not in (None, "") for r in out)]
    columns = [c for k in swept for c in ([k] if k in kept else _fields_of(k, kept))]
    varying = [c for c in columns if len({json.dumps(r.get(c)) for r in out} - {"null"}) > 1]
    return Table(out, kept, list(metrics), list(dict.fromkeys(varying)))


VALUE_PRECISION = "value_precision"
"""The column every done row with stored or simulated values gets: the precision of
its values (``float32``, ``int8``, ``int16``, ...), :func:`value_precision`."""


def value_precision(row: Mapping[str, Any]) -> str | None:
    """The value precision a row's sizes, ratios and energies are at: ``float32`` or
    ``intB`` from its ``precision_bits`` (the compress stage; any ``STAGE.`` copy);
    for a point without it, ``intB`` of its ``quantize`` (slots of 8 bits up to 8-bit
    integers, else 16) or of xor's ``value_bits`` when it simulates, ``float32`` for a
    simulated or pruned point otherwise (pruning never quantizes); None for a point
    storing no values (synthesis)."""
    bits = next(
        (
            v
            for k, v in row.items()
            if (k == "precision_bits" or k.endswith(".precision_bits")) and is_number(v)
        ),
        None,
    )
    if bits is not None:
        return "float32" if bits == 32 else f"int{int(bits)}"
    stages = str(row.get("stages") or "").split("+")
    if "simulate" in stages:
        if row.get("quantize") is not None:
            return f"int{8 if row['quantize'] <= 8 else 16}"
        if row.get("format") == "xor":
            return f"int{row.get('spec.value_bits') or 8}"
    return "float32" if {"simulate", "prune"} & set(stages) else None


def lossy(row: Mapping[str, Any]) -> bool:
    """Whether a row's storage approximates the weights instead of reproducing them:
    its format approximates (``lowrank``), or it reports ``lossless`` false."""
    from codesign.models.registry import FORMATS

    fmt = FORMATS.get(str(row.get("format")))
    return row.get("lossless") is False or bool(fmt is not None and fmt.approximates)


def _fields_of(key: str, columns: Sequence[str]) -> list[str]:
    return [c for c in columns if c.startswith(f"{key}.")]


def write_csv(table: Table, path: Path) -> Path:
    """``table`` as CSV (empty cells for missing values)."""
    with replacing(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, table.columns, restval="", extrasaction="ignore")
        writer.writeheader()
        for row in table.rows:
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return path


def is_number(value: Any) -> bool:
    """An int or float, not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def names(value: str | Sequence[str] | None) -> list[str]:
    """A config value that is one column name or a list of them, as a list."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def matches(row: Mapping[str, Any], where: Mapping[str, Any] | None) -> bool:
    """Whether ``row`` has, for every column of ``where``, the value (or one of the
    list of values) given."""
    for column, wanted in (where or {}).items():
        allowed = wanted if isinstance(wanted, list) else [wanted]
        if row.get(column) not in allowed:
            return False
    return True


def check_columns(table: Table, what: str, columns: Iterable[str]) -> None:
    """:class:`ReportError` for the first of ``columns`` the table does not have."""
    known = table.columns
    for name in columns:
        if name not in known:
            raise ReportError(
                f"{what}: {name!r} is not a column of the results; columns: {', '.join(known)}"
            )


def expression(text: str, what: str) -> Expression:
    """``text`` parsed, or :class:`ReportError` prefixed with ``what``."""
    try:
        return parse(text)
    except ExpressionError as exc:
        raise ReportError(f"{what}: {exc}") from None


def evaluate(expr: Expression, values: Mapping[str, Any], what: str) -> Any:
    """``expr`` on ``values``, or :class:`ReportError` prefixed with ``what``."""
    try:
        return expr.evaluate(values)
    except ExpressionError as exc:
        raise ReportError(f"{what}: {exc}") from None


def select_rows(table: Table, item: Mapping[str, Any], what: str) -> list[dict[str, Any]]:
    """The done rows matching ``item``'s ``where`` (column -> value | [values]) and
    ``filter`` (an expression; a row where it is empty or false is left out)."""
    check_columns(table, what, item.get("where") or {})
    rows = [r for r in table.rows if r["status"] == DONE and matches(r, item.get("where"))]
    if not item.get("filter"):
        return rows
    expr = expression(item["filter"], f"{what} filter")
    check_columns(table, f"{what} filter", expr.names)
    return [r for r in rows if evaluate(expr, {n: r.get(n) for n in expr.names}, what)]


def _match_key(row: Mapping[str, Any], columns: Sequence[str]) -> str:
    return json.dumps([row.get(c) for c in columns])


def add_columns(table: Table, columns: Sequence[Mapping[str, Any]]) -> Table:
    """``table`` with the derived ``columns`` (see the module docstring) appended to
    its metrics; :class:`ReportError` names the column for an unknown column, a
    name that exists already, or an ambiguous baseline."""
    rows = [dict(r) for r in table.rows]
    current = Table(rows, table.params, list(table.metrics), table.swept, dict(table.units))
    for i, column in enumerate(columns):
        name = column["name"]
        what = f"columns[{i}] ({name})"
        if name in current.columns:
            raise ReportError(f"{what}: {name!r} is already a column; choose another name")
        expr = expression(column["expr"], what)
        own = [n for n in expr.names if not n.startswith(BASELINE)]
        theirs = [n[len(BASELINE) :] for n in expr.names if n.startswith(BASELINE)]
        baseline = column.get("baseline")
        match = list(baseline.get("match", [])) if baseline else []
        check_columns(current, what, [*own, *theirs, *match])
        found: dict[str, list[dict[str, Any]]] = {}
        for row in select_rows(current, baseline, f"{what} baseline") if baseline else []:
            found.setdefault(_match_key(row, match), []).append(row)
        for row in rows:
            if row["status"] != DONE:
                row[name] = None
                continue
            values = {n: row.get(n) for n in own}
            if baseline:
                candidates = found.get(_match_key(row, match), [])
                if len(candidates) > 1:
                    raise ReportError(
                        f"{what}: {len(candidates)} baseline rows (indices "
                        f"{', '.join(str(r['index']) for r in candidates)}) match row "
                        f"{row['index']}; narrow baseline.where or add baseline.match columns"
                    )
                other = candidates[0] if candidates else {}
                values.update({BASELINE + n: other.get(n) for n in theirs})
            row[name] = evaluate(expr, values, what)
        current.metrics.append(name)
        if column.get("unit"):
            current.units[name] = column["unit"]
    return current
