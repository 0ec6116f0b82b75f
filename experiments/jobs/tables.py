"""Plain-text tables for the command line."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from codesign.models.report import LayerReport

STORAGE_HEADER = (
    "layer",
    "shape",
    "nnz",
    "sparsity",
    "idx b/w",
    "val b/w",
    "total bits",
    "x dense",
    "x CSR",
    "lossless",
)


#: The figure an approximating format (lowrank) reports of each layer: ||W − Ŵ|| / ||W||
#: (Frobenius norms).
RELATIVE_ERROR = "relative_error"


def relative_error(reports: Sequence[LayerReport]) -> float | None:
    """The mean of the layers' :data:`RELATIVE_ERROR` weighted by layer size (m·n), over
    the layers that report one (an approximating format's); None when none does."""
    weighed = [(r.extras[RELATIVE_ERROR], r.weights) for r in reports if RELATIVE_ERROR in r.extras]
    if not weighed:
        return None
    return sum(e * w for e, w in weighed) / sum(w for _, w in weighed)


def render(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Left-aligned first column, right-aligned others, columns sized to fit."""
    cells = [list(map(str, header))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: list[str]) -> str:
        first = row[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest])

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


def ratio_text(ratio: float | None) -> str:
    """A size ratio with two decimals; ``-`` where it has no meaning (None)."""
    return "-" if ratio is None else f"{ratio:.2f}"


def storage_row(
    report: LayerReport, label: str | None = None, kernel: Sequence[int] = ()
) -> list[object]:
    """One row of :data:`STORAGE_HEADER` for a layer report (``kernel``: a convolution's
    kernel dimensions, shown after its matrix shape); ``sparsity`` is the reached one."""
    shape = "x".join(map(str, report.shape)) if report.layers == 1 else f"{report.layers} layers"
    if kernel:
        shape += f" ({'x'.join(map(str, kernel))})"
    return [
        label or report.name,
        shape,
        report.nnz,
        f"{report.sparsity:.4f}",
        f"{report.index_bits_per_weight:.3f}",
        f"{report.value_bits_per_weight:.3f}",
        report.total_bits,
        ratio_text(report.ratio_vs_dense),
        ratio_text(report.ratio_vs_csr),
        "yes" if report.lossless else "no",
    ]


def clipped_lines(layer_specs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """One line per layer whose spec was clipped to it (layer name -> the changed
    fields, e.g. an LBI tile larger than the layer): ``layer fc3: tile_rows=10 (the
    spec's tiles clipped to the layer)``."""
    return [
        f"layer {name}: {', '.join(f'{k}={v}' for k, v in fields.items())} (the spec's "
        f"tiles clipped to the layer)"
        for name, fields in layer_specs.items()
    ]


#: Names printed of the tensors a ``--layers`` selection leaves out (the JSON has all).
UNSELECTED_SHOWN = 3


def skipped_lines(tensors: Sequence[Mapping[str, Any]]) -> list[str]:
    """Skipped tensors (``Tensor.to_dict`` of :mod:`codesign.models.weight_files`) by
    reason, one line per reason, each tensor named with its dtype and shape; of the
    tensors a ``--layers`` selection leaves out, the count and the first few names."""
    by_reason: dict[str, list[str]] = {}
    for t in tensors:
        shape = "x".join(map(str, t["shape"])) or "scalar"
        by_reason.setdefault(t["reason"], []).append(f"{t['name']} ({t['dtype']} {shape})")
    lines = []
    for reason, names in by_reason.items():
        if reason.startswith("not selected") and len(names) > UNSELECTED_SHOWN:
            shown = ", ".join(names[:UNSELECTED_SHOWN])
            lines.append(f"skipped, {reason}: {len(names)} tensors ({shown}, ...)")
        else:
            lines.append(f"skipped, {reason}: {', '.join(names)}")
    return lines


def extras_table(reports: Sequence[LayerReport]) -> str | None:
    """The format's own figures (``extras``) per layer, or None when it has none."""
    keys = sorted({key for r in reports for key in r.extras})
    if not keys:
        return None
    rows = [[r.name, *(_number(r.extras.get(key)) for key in keys)] for r in reports]
    return render(["layer", *keys], rows)


def _number(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.4g}"
    return str(int(value)) if isinstance(value, float) else str(value)
