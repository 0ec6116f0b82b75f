"""Viterbi-based pruning against magnitude pruning + CSR / relative indexing.

Run: ``python -m codesign.experiments.studies.viterbi [--json OUT]``.

For each sparsity (80 / 90 / 95 %) and two workloads — a synthetic gaussian 1024×1024
(seed 0) and the digits MLP (all three layers together) — one row per method:

* ``VD n_out=5``: Viterbi pruning with n_in = 1, n_out = 5 (0.2 index bits/weight at
  every rate), n_ff = 8, n_c = 4, segment 256, threshold calibrated to the rate;
* ``VD n_out=k``: the same VD with n_out grown with the sparsity so that the index
  stays ≈ 0.43 × the entropy H(1 − S) of the mask (n_out = 3 / 5 / 8), printed where it
  differs from 5;
* ``mag+CSR`` and ``mag+rel4``: global magnitude pruning of each layer at the rate,
  stored in CSR and in EIE relative indexing (r = 4); both keep the same mask.

Columns: kept fraction, index bits per weight, index size against CSR and relative at
the same rate (−x %: x % smaller), kept |w| mass against magnitude pruning at the same
kept fraction (1 = magnitude pruning), and for the digits MLP held-out accuracy of the
pruned model and after masked fine-tuning (10 epochs). The paper (Lee et al., ICLR
2018) reports −85.2 % index vs CSR and −52.7 % vs relative on LeNet-300-100 (MNIST).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field, replace

import numpy as np

from codesign.experiments.jobs.tables import render
from codesign.files import write_json
from codesign.models.encoded_cache import compress_layer
from codesign.models.format import Format
from codesign.models.registry import get_format
from codesign.models.report import LayerReport, report_encoded, report_layer, total_report
from codesign.models.specs import CsrSpec, RelativeSpec, Spec, ViterbiSpec
from codesign.models.viterbi import ViterbiFormat
from codesign.models.workloads import DigitsMLP, gaussian, load_digits_mlp, magnitude_prune

SPARSITIES = (0.8, 0.9, 0.95)
FINETUNE_EPOCHS = 10
BASE_SPEC = ViterbiSpec(n_in=1, n_out=5, n_ff=8, n_c=4, segment=256)
INDEX_PER_ENTROPY = 0.43
"""Index bits per bit of mask entropy of the scaled VD (the n_out = 5 VD at 90 %)."""


def scaled_n_out(sparsity: float, n_in: int = 1) -> int:
    """n_out whose index n_in / n_out is ≈ INDEX_PER_ENTROPY × H(1 − sparsity) bits."""
    keep = 1.0 - sparsity
    entropy = -keep * math.log2(keep) - sparsity * math.log2(sparsity)
    return max(1, round(n_in / (INDEX_PER_ENTROPY * entropy)))


@dataclass(frozen=True)
class Workload:
    """Named layers (out, in); ``model``: the digits MLP they come from, for accuracy."""

    name: str
    layers: list[tuple[str, np.ndarray]]
    model: DigitsMLP | None = None


@dataclass(frozen=True)
class Pruned:
    """A workload pruned by one method: per-layer pruned weights and masks, the total
    storage report and the kept |w| mass ratio over all layers."""

    weights: list[np.ndarray]
    masks: list[np.ndarray]
    report: LayerReport
    kept_mass: float
    thresholds: dict[str, float] = field(default_factory=dict)


def viterbi_pruned(work: Workload, sparsity: float, spec: ViterbiSpec) -> Pruned:
    """Every layer Viterbi-pruned (threshold calibrated per layer) and stored."""
    fmt = ViterbiFormat()
    weights, masks, reports, kept, best, thresholds = [], [], [], 0.0, 0.0, {}
    for name, w in work.layers:
        ref, enc = compress_layer(w, fmt.name, spec, sparsity)
        mask = fmt.decode(enc).mask
        weights.append(ref)
        masks.append(mask)
        reports.append(report_encoded(name, ref, enc, fmt))
        mass = float(np.abs(w, dtype=np.float64)[mask].sum())
        kept += mass
        best += mass / enc.extras["kept_mass_ratio"]
        thresholds[name] = enc.extras["threshold"]
    return Pruned(weights, masks, total_report(reports), kept / best, thresholds)


def magnitude_pruned(work: Workload, sparsity: float, fmt: Format, spec: Spec) -> Pruned:
    """Every layer magnitude-pruned to ``sparsity`` and stored in ``fmt``."""
    weights = [magnitude_prune(w, sparsity) for _, w in work.layers]
    reports = [report_layer(n, w, fmt, spec, sparsity) for n, w in work.layers]
    return Pruned(weights, [w != 0 for w in weights], total_report(reports), 1.0)


def accuracies(model: DigitsMLP | None, pruned: Pruned) -> tuple[float | None, float | None]:
    """Held-out accuracy of the pruned model and after masked fine-tuning (None, None
    without a model)."""
    if model is None:
        return None, None
    tuned = model.finetune(pruned.weights, pruned.masks, FINETUNE_EPOCHS)
    return model.evaluate(pruned.weights), model.evaluate(tuned)


def study(workloads: list[Workload]) -> list[dict[str, object]]:
    """All rows of the study as dicts (see the module docstring); prints one table."""
    rows = []
    for work in workloads:
        for sparsity in SPARSITIES:
            csr = magnitude_pruned(work, sparsity, get_format("csr"), CsrSpec())
            rel = magnitude_pruned(work, sparsity, get_format("relative"), RelativeSpec(r=4))
            methods = {
                f"VD n_out={n}": viterbi_pruned(work, sparsity, replace(BASE_SPEC, n_out=n))
                for n in sorted({BASE_SPEC.n_out, scaled_n_out(sparsity)})
            }
            magnitude_acc = accuracies(work.model, csr)
            for method, pruned in {**methods, "mag+CSR": csr, "mag+rel4": rel}.items():
                acc = magnitude_acc if method.startswith("mag") else accuracies(work.model, pruned)
                report = pruned.report
                rows.append(
                    {
                        "workload": work.name,
                        "sparsity": sparsity,
                        "method": method,
                        "kept_fraction": report.nnz / report.weights,
                        "index_bits_per_weight": report.index_bits_per_weight,
                        "index_vs_csr": report.index_bits / csr.report.index_bits - 1,
                        "index_vs_relative": report.index_bits / rel.report.index_bits - 1,
                        "kept_mass_ratio": pruned.kept_mass,
                        "accuracy_pruned": acc[0],
                        "accuracy_finetuned": acc[1],
                        "thresholds": pruned.thresholds,
                    }
                )
    print(render(HEADER, [table_row(r) for r in rows]))
    return rows


HEADER = (
    "workload",
    "sparsity",
    "method",
    "kept",
    "idx b/w",
    "vs CSR",
    "vs rel4",
    "kept |w|",
    "acc",
    f"acc ft{FINETUNE_EPOCHS}",
)


def table_row(doc: dict[str, object]) -> list[str]:
    def acc(key: str) -> str:
        return "-" if doc[key] is None else f"{doc[key]:.4f}"

    return [
        str(doc["workload"]),
        f"{doc['sparsity']:.0%}",
        str(doc["method"]),
        f"{doc['kept_fraction']:.4f}",
        f"{doc['index_bits_per_weight']:.3f}",
        f"{doc['index_vs_csr']:+.1%}",
        f"{doc['index_vs_relative']:+.1%}",
        f"{doc['kept_mass_ratio']:.3f}",
        acc("accuracy_pruned"),
        acc("accuracy_finetuned"),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="OUT", help="write the rows as JSON to OUT")
    args = parser.parse_args(argv)
    mlp = load_digits_mlp()
    workloads = [
        Workload("gaussian 1024x1024", [("gaussian", gaussian((1024, 1024), seed=0))]),
        Workload("digits MLP", list(zip(mlp.layer_names, mlp.weights, strict=True)), mlp),
    ]
    print(f"digits MLP dense accuracy {mlp.dense_accuracy:.4f}; VD spec {BASE_SPEC.to_json()}")
    rows = study(workloads)
    if args.json:
        doc = {"spec": BASE_SPEC.to_dict(), "dense_accuracy": mlp.dense_accuracy, "rows": rows}
        write_json(args.json, doc)


if __name__ == "__main__":
    main()
