"""The two example networks in every format, and the CNN on the simulated accelerator.

``python -m codesign.experiments.studies.networks [--sparsity 0.9] [--quantize 8]
[--formats csr,viterbi,bitmap] [--out results/networks]``

1. **compress**: the whole example transformer encoder (37 matrices, 10.76 M weights)
   and ResNet-18-shaped CNN (21 kernels and matrices, 11.68 M weights) in every format
   at the target sparsity and int8 values, each at the point of its structure nearest
   the target (:func:`codesign.experiments.jobs.networks.format_point`): index and value
   bits per weight, × dense and × CSR of the same pruned matrices at the same precision,
   side tensors counted, skipped tensors listed; a format that refuses keeps its reason.
2. **simulate**: the CNN at batch 1 (a 224×224 image, every layer a convolution lowered
   by im2col) in the ``--formats`` (default CSR, Viterbi, bitmap), one row per layer:
   geometry, cycles, pJ per dense-equivalent MAC, the product check. Decoders are
   charged per active cycle (no synthesis).

Writes ``study.json`` into ``--out``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from codesign.experiments.jobs.compress import describe_workload, load_workload, side_line
from codesign.experiments.jobs.networks import compare_formats, network_config, render_formats
from codesign.experiments.jobs.simulate import run_config
from codesign.experiments.jobs.tables import render, skipped_lines
from codesign.files import write_json
from codesign.models.examples import EXAMPLES

SIMULATED = ("csr", "viterbi", "bitmap")


def compress_study(model: str, sparsity: float, quantize: int) -> tuple[str, list[dict]]:
    """The compress table of ``model`` in every format, and its JSON rows."""
    workload = load_workload(model=model)
    rows = compare_formats(workload, sparsity, quantize)
    first = next(r.result for r in rows if r.result is not None)
    text = "\n".join(
        [
            describe_workload(workload),
            f"values: {first.precision_label()} in every format; x dense and x CSR: the same "
            f"pruned matrices stored dense and in CSR at {first.precision_bits} bits per value, "
            f"side tensors included",
            render_formats(rows),
            side_line(workload, first.precision_bits) or "",
            *skipped_lines([t.to_dict() for t in workload.skipped]),
        ]
    )
    return text, [r.to_json() for r in rows]


def simulate_study(
    model: str, formats: list[str], sparsity: float, quantize: int
) -> tuple[str, list[dict[str, Any]]]:
    """One row per layer of ``model`` with each format's cycles and pJ/MAC."""
    docs = [run_config(network_config(model, f, sparsity, quantize), synth=False) for f in formats]
    header = ["layer", "geometry", "columns"]
    header += [f"{f} cycles" for f in formats] + [f"{f} pJ/MAC" for f in formats] + ["W.X ok"]
    table = []
    rows_by_format = [[*d["layers"], *([d["side"]] if d["side"] else []), d["total"]] for d in docs]
    for rows in zip(*rows_by_format, strict=True):
        first = rows[0]
        table.append(
            [
                first["layer"],
                first.get("geometry", ""),
                first.get("columns", ""),
                *(r["cycles"] for r in rows),
                *(f"{r['pj_per_mac']:.3f}" for r in rows),
                "yes" if all(r["product_ok"] for r in rows) else "NO",
            ]
        )
    head = (
        f"{model} at batch {docs[0]['arch']['batch']}, {docs[0]['arch']['lanes']} lanes, "
        f"{docs[0]['arch']['decoders']} decoder units; energy table {docs[0]['energy_table']}; "
        "decoders charged per active cycle"
    )
    return f"{head}\n{render(header, table)}", docs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sparsity", type=float, default=0.9)
    parser.add_argument("--quantize", type=int, default=8)
    parser.add_argument("--formats", default=",".join(SIMULATED))
    parser.add_argument("--out", default="results/networks")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {"compress": {}, "simulate": {}}
    for model in EXAMPLES:
        text, rows = compress_study(model, args.sparsity, args.quantize)
        print(f"\n== compress: {model}\n\n{text}", flush=True)
        doc["compress"][model] = rows
    text, docs = simulate_study("resnet18", args.formats.split(","), args.sparsity, args.quantize)
    print(f"\n== simulate: resnet18\n\n{text}", flush=True)
    doc["simulate"]["resnet18"] = docs
    write_json(out / "study.json", doc, default=str)
    print(f"\nwrote {out / 'study.json'}")


if __name__ == "__main__":
    main()
