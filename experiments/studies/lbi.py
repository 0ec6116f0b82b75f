"""LBI study: low-rank binary indexing of the digits MLP against magnitude pruning.

Usage: python -m codesign.experiments.studies.lbi [--epochs 10] [--json OUT]

Every point prunes all three layers of the digits MLP ((300, 64), (100, 300), (10, 100))
to a target sparsity — LBI (:class:`codesign.models.lbi.LbiFormat`, calibrated to the rate) for
each (rank, tile) of :data:`CONFIGS` and each semiring, or magnitude pruning (per layer,
stored in CSR) — holds the masks fixed for ``--epochs`` epochs of fine-tuning
(:meth:`DigitsMLP.finetune`) and measures the held-out accuracy before and after.
Reported per point: the kept fraction, the kept |w| mass against magnitude pruning at
the same kept fraction (per layer, and over all layers), and the index bits per weight
(beside CSR storing the same pruned layers). The tiles fit all three layers: at most
10 rows (fc3 has 10 outputs) and 64 columns (fc1 has 64 inputs); edge tiles are
clipped.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import numpy as np

from codesign.experiments.jobs.tables import render
from codesign.files import write_json
from codesign.models.csr import csr_bits
from codesign.models.encoded_cache import compress_layer
from codesign.models.lbi import LbiFormat
from codesign.models.quality import kept_fraction, kept_mass_ratio
from codesign.models.specs import LbiSpec
from codesign.models.workloads import DigitsMLP, load_digits_mlp, magnitude_mask

SPARSITIES = (0.8, 0.9, 0.95)
CONFIGS = ((2, 10, 10), (4, 10, 64), (8, 10, 64))
"""(rank, tile_rows, tile_cols) of the LBI points."""
SEMIRINGS = ("bool", "gf2")


def _mass_over_layers(weights: list[np.ndarray], masks: list[np.ndarray]) -> float:
    """Σ|w| kept over all layers / Σ|w| kept by per-layer magnitude pruning at the same
    per-layer kept fractions."""
    kept = sum(float(np.abs(w[m]).sum()) for w, m in zip(weights, masks, strict=True))
    best = sum(
        float(np.abs(w[magnitude_mask(w, 1.0 - kept_fraction(m))]).sum())
        for w, m in zip(weights, masks, strict=True)
    )
    return kept / best


def measure_point(
    mlp: DigitsMLP,
    references: list[np.ndarray],
    masks: list[np.ndarray],
    index_bits: list[int],
    epochs: int,
) -> dict[str, Any]:
    """Kept fraction, kept mass, index bits and accuracy (pruned, fine-tuned) of pruned
    layers ``references`` with ``masks`` and ``index_bits`` per layer."""
    total = sum(w.size for w in mlp.weights)
    tuned = mlp.finetune(references, masks, epochs) if epochs else references
    return {
        "kept_fraction": sum(int(m.sum()) for m in masks) / total,
        "layer_kept_fraction": [kept_fraction(m) for m in masks],
        "layer_kept_mass_ratio": [
            kept_mass_ratio(w, m) for w, m in zip(mlp.weights, masks, strict=True)
        ],
        "kept_mass_ratio": _mass_over_layers(mlp.weights, masks),
        "index_bits_per_weight": sum(index_bits) / total,
        "csr_index_bits_per_weight": sum(csr_bits(m.shape, int(m.sum())) for m in masks) / total,
        "accuracy_pruned": mlp.evaluate(references),
        "accuracy_finetuned": mlp.evaluate(tuned),
    }


def lbi_point(mlp: DigitsMLP, spec: LbiSpec, sparsity: float, epochs: int) -> dict[str, Any]:
    """One LBI point: calibrated compression of every layer, then :func:`measure_point`."""
    fmt = LbiFormat()
    references, masks, bits, probes = [], [], [], []
    for w in mlp.weights:
        reference, enc = compress_layer(w, fmt.name, spec, sparsity)
        references.append(reference)
        masks.append(fmt.decode(enc).mask)
        bits.append(enc.index_bits)
        probes.append(int(enc.extras["calibration_probes"]))
    point = {"method": "lbi", "spec": spec.to_dict(), "target_sparsity": sparsity}
    point.update(measure_point(mlp, references, masks, bits, epochs))
    point["calibration_probes"] = probes
    return point


def magnitude_point(mlp: DigitsMLP, sparsity: float, epochs: int) -> dict[str, Any]:
    """Per-layer magnitude pruning stored in CSR, then :func:`measure_point`."""
    masks = [magnitude_mask(w, sparsity) for w in mlp.weights]
    references = [
        np.where(m, w, 0).astype(w.dtype) for w, m in zip(mlp.weights, masks, strict=True)
    ]
    bits = [csr_bits(m.shape, int(m.sum())) for m in masks]
    point = {"method": "magnitude", "spec": None, "target_sparsity": sparsity}
    point.update(measure_point(mlp, references, masks, bits, epochs))
    return point


def run_study(epochs: int = 10, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Every point: magnitude pruning and LBI per config and semiring, per sparsity."""
    mlp = load_digits_mlp()
    results = []
    for sparsity in SPARSITIES:
        results.append(magnitude_point(mlp, sparsity, epochs))
        for rank, tile_rows, tile_cols in CONFIGS:
            for semiring in SEMIRINGS:
                spec = LbiSpec(
                    rank=rank, tile_rows=tile_rows, tile_cols=tile_cols, semiring=semiring
                )
                results.append(lbi_point(mlp, spec, sparsity, epochs))
                if progress:
                    progress(f"{_label(results[-1])} {sparsity}: done")
    return {"dense_accuracy": mlp.dense_accuracy, "epochs": epochs, "results": results}


def _label(r: dict[str, Any]) -> str:
    if r["spec"] is None:
        return "magnitude (CSR)"
    s = r["spec"]
    return f"lbi k={s['rank']} {s['tile_rows']}x{s['tile_cols']} {s['semiring']}"


def render_study(study: dict[str, Any]) -> str:
    """The study's table as text."""
    header = (
        "method",
        "target",
        "kept",
        "mass fc1/fc2/fc3",
        "mass all",
        "idx b/w",
        "CSR idx b/w",
        "acc pruned",
        "acc tuned",
    )
    rows = [
        [
            _label(r),
            f"{r['target_sparsity']:.2f}",
            f"{r['kept_fraction']:.4f}",
            "/".join(f"{x:.3f}" for x in r["layer_kept_mass_ratio"]),
            f"{r['kept_mass_ratio']:.3f}",
            f"{r['index_bits_per_weight']:.3f}",
            f"{r['csr_index_bits_per_weight']:.3f}",
            f"{r['accuracy_pruned']:.4f}",
            f"{r['accuracy_finetuned']:.4f}",
        ]
        for r in study["results"]
    ]
    return "\n".join(
        [
            f"digits MLP, dense accuracy {study['dense_accuracy']:.4f}; "
            f"{study['epochs']} epochs of masked fine-tuning; mass = kept |w| / kept |w| of "
            f"magnitude pruning at the same kept fraction",
            render(header, rows),
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10, help="fine-tuning epochs")
    parser.add_argument("--json", metavar="OUT", help="write the results as JSON")
    args = parser.parse_args(argv)
    if args.epochs < 0:
        parser.error("--epochs must be >= 0")
    study = run_study(args.epochs, progress=print)
    print(render_study(study))
    if args.json:
        write_json(args.json, study)


if __name__ == "__main__":
    main()
