"""A whole network in every format, and on the simulated accelerator.

:func:`compare_formats` compresses one workload in every registered format at one target
sparsity and one value precision, each format at the point of its structure nearest the
target (:func:`format_point`: N:M and BMWM reach only 1 − n/m and 1 − 1/b, so they run
at the n:m and b nearest the target and the row shows the sparsity run); a format that
refuses the workload (a sparsity out of its reach, a spec that does not fit) keeps its
one-line reason in the table instead of a row of figures. :func:`network_config` builds
the simulator configuration of an example model (its layers' own geometry: tokens or
convolutions) in one format.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from codesign.experiments.jobs.compress import Comparison, Workload, compare
from codesign.experiments.jobs.tables import ratio_text, render
from codesign.models.darb import bmwm_block_for
from codesign.models.nm import nearest_nm
from codesign.models.registry import FORMATS
from codesign.sim.config import SimConfig, parse_config

#: Simulator architecture of the network runs: the default accelerator at batch 1.
NETWORK_ARCH: dict[str, Any] = {"lanes": 16, "decoders": 4, "batch": 1}


def format_point(fmt: str, sparsity: float) -> tuple[dict[str, Any], float]:
    """(spec fields, sparsity) at which ``fmt`` runs for a target ``sparsity``: the
    nearest n:m for ``nm``, the smallest b reaching it for ``bmwm`` (their fixed
    sparsities 1 − n/m and 1 − 1/b), the format's default spec and the target
    otherwise."""
    if fmt == "nm":
        n, m = nearest_nm(sparsity)
        return {"n": n, "m": m}, 1.0 - n / m
    if fmt == "bmwm":
        b = bmwm_block_for(sparsity)
        return {"b": b}, 1.0 - 1.0 / b
    return {}, sparsity


@dataclasses.dataclass(frozen=True)
class FormatRow:
    """One format of :func:`compare_formats`: its ``spec`` fields and ``sparsity`` run,
    and its :class:`Comparison` or the one-line ``error`` it refused with."""

    format: str
    spec: dict[str, Any]
    sparsity: float | None
    result: Comparison | None
    error: str | None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": self.format, "spec": self.spec, "sparsity": self.sparsity}
        if self.result is None:
            return {**out, "error": self.error}
        doc = self.result.to_json()
        return {
            **out,
            **{
                k: doc[k]
                for k in ("precision_bits", "precision_label", "reference", "total", "model_total")
            },
        }


def compare_formats(
    workload: Workload,
    sparsity: float | None,
    quantize: int | None,
    formats: Sequence[str] = tuple(FORMATS),
    progress: Callable[[str], None] | None = None,
) -> list[FormatRow]:
    """Every format of ``formats`` on ``workload`` (module docstring), each layer through
    the encoded-layer cache; ``progress`` is called with one line per format done."""
    rows = []
    for fmt in formats:
        spec, target = (
            ({}, None) if sparsity is None or fmt == "dense" else format_point(fmt, sparsity)
        )
        base = {"format": fmt, "spec": spec, "sparsity": target, "quantize": quantize}
        try:
            result = compare(workload, base, cache=True)
            rows.append(FormatRow(fmt, spec, target, result, None))
        except ValueError as exc:
            rows.append(FormatRow(fmt, spec, target, None, str(exc)))
        if progress is not None:
            progress(f"{fmt}: {'refused' if rows[-1].error else 'compressed'}")
    return rows


FORMATS_HEADER = (
    "format",
    "spec",
    "sparsity",
    "reached",
    "idx b/w",
    "val b/w",
    "side bits",
    "x dense",
    "x CSR",
    "lossless",
)


def render_formats(rows: Sequence[FormatRow]) -> str:
    """The table of :func:`compare_formats`: one row per format with its model total
    (layers plus side tensors), then the refusals, one line each."""
    table, refused = [], []
    for row in rows:
        spec = " ".join(f"{k}={v}" for k, v in row.spec.items()) or "-"
        asked = "-" if row.sparsity is None else f"{row.sparsity:.4g}"
        if row.result is None:
            refused.append(f"{row.format} refused: {row.error}")
            continue
        total = row.result.model_total()
        table.append(
            [
                row.format,
                spec,
                asked,
                f"{total.sparsity:.4f}",
                f"{total.index_bits_per_weight:.3f}",
                f"{total.value_bits_per_weight:.3f}",
                total.side_bits,
                ratio_text(total.ratio_vs_dense),
                ratio_text(total.ratio_vs_csr),
                "yes" if total.lossless else "no",
            ]
        )
    return "\n".join([render(FORMATS_HEADER, table), *refused])


def network_config(
    model: str,
    fmt: str,
    sparsity: float,
    quantize: int | None,
    select: Sequence[str] | None = None,
    name: str | None = None,
) -> SimConfig:
    """The simulator configuration of example ``model`` (its layers selected by
    ``select`` patterns) stored in ``fmt`` at the point :func:`format_point` gives,
    on :data:`NETWORK_ARCH`."""
    spec, target = format_point(fmt, sparsity)
    source: dict[str, Any] = {"example": model}
    if select:
        source["select"] = list(select)
    return parse_config(
        {
            "name": name or f"{model}-{fmt}",
            "arch": NETWORK_ARCH,
            "defaults": {"format": fmt, "spec": spec, "sparsity": target, "quantize": quantize},
            "layers": [source],
        }
    )
