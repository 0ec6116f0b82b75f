"""Every pruning method on the digits MLP at 80 / 90 / 95 % sparsity, side by side.

Run: ``python -m codesign.experiments.studies.accuracy [--epochs 10] [--json OUT]``.

One row per (method, target sparsity) through :func:`codesign.experiments.jobs.prune.prune_command`
(the same path as ``codesign prune``): kept fraction, index bits per weight, total bits
(float32 values), held-out accuracy after pruning and after masked fine-tuning.
BMWM keeps one weight per block, so its rate is 1 − 1/b: it runs at the smallest b
reaching the target (``codesign.models.darb.bmwm_block_for``), at that b's sparsity 1 − 1/b
(the row's kept column shows it); LBI uses rank 2 on 10×10 GF(2)
tiles (:data:`LBI_SPEC`). TRP has no sparsity knob: it runs
at SVD energies 0.9 / 0.95 / 0.97 and its "kept" column is deployed/dense parameters.
"""

from __future__ import annotations

import argparse
from typing import Any

from codesign.experiments.jobs.prune import prune_command
from codesign.experiments.jobs.tables import render
from codesign.files import write_json
from codesign.models.darb import bmwm_block_for

SPARSITIES = (0.8, 0.9, 0.95)
SPARSE_METHODS = ("magnitude", "viterbi", "lbi", "bmwm", "darb", "block")
TRP_ENERGIES = (0.9, 0.95, 0.97)


#: LBI tiles that fit every layer of the digits MLP (fc3 is 10×100).
LBI_SPEC = ["rank=2", "tile_rows=10", "tile_cols=10", "semiring=gf2"]


def method_specs(method: str, sparsity: float) -> list[str]:
    """``--spec`` items a method needs at ``sparsity``."""
    if method == "bmwm":
        return [f"b={bmwm_block_for(sparsity)}"]
    return LBI_SPEC if method == "lbi" else []


def run_study(epochs: int) -> list[dict[str, Any]]:
    """All rows of the study (see the module docstring)."""
    rows = []
    for sparsity in SPARSITIES:
        for method in SPARSE_METHODS:
            run_at = 1.0 - 1.0 / bmwm_block_for(sparsity) if method == "bmwm" else sparsity
            doc = prune_command(method, run_at, method_specs(method, sparsity), epochs, 0)
            rows.append({"target": sparsity, **doc})
    for energy in TRP_ENERGIES:
        doc = prune_command("trp", None, [f"energy={energy}"], 2 * epochs, 0)
        rows.append({"target": None, **doc})
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    """The side-by-side table."""
    body = [
        [
            "-" if r["target"] is None else f"{r['target']:.0%}",
            r["method"] if r["method"] != "trp" else f"trp e={r['spec']['energy']}",
            f"{r['kept_fraction']:.4f}",
            f"{r['index_bits_per_weight']:.3f}",
            r["total_bits"],
            f"{r['accuracy_pruned']:.4f}",
            f"{r['accuracy_finetuned']:.4f}",
        ]
        for r in rows
    ]
    header = ["target", "method", "kept", "idx b/w", "total bits", "acc pruned", "acc tuned"]
    return render(header, body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10, help="fine-tuning epochs")
    parser.add_argument("--json", metavar="OUT")
    args = parser.parse_args()
    rows = run_study(args.epochs)
    print(
        f"dense accuracy {rows[0]['dense_accuracy']:.4f}; fine-tuning {args.epochs} epochs "
        f"(trp: {2 * args.epochs} training epochs)"
    )
    print(table(rows))
    if args.json:
        write_json(args.json, rows)


if __name__ == "__main__":
    main()
