"""DARB study: accuracy vs pruning ratio on the digits MLP, index cost and decode cost.

Usage: python -m codesign.experiments.studies.darb [--epochs 10] [--lanes 8] [--json OUT]

Every method prunes all three layers of the digits MLP, the masks are held fixed for
``--epochs`` epochs of fine-tuning (:meth:`DigitsMLP.finetune`), and the held-out
accuracy is measured. Methods: magnitude (irregular, stored in CSR), coarse block
pruning (4×4 blocks, :func:`codesign.models.block.block_prune`), BMWM (b = 2..32, sparsity
1 − 1/b) and DARB (max_block 64) at several target rates. For each method the study
reports the highest pruning ratio (weights / kept weights) whose fine-tuned accuracy
is within ``--tolerance`` (absolute, default 0.01) of the dense accuracy, with the
index bits per weight and the decode cost (:mod:`codesign.models.decode_cost`, ``--lanes`` P)
beside those of CSR storing the same pruned matrices.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from codesign.experiments.jobs.tables import render
from codesign.files import write_json
from codesign.models.block import BlockFormat
from codesign.models.csr import CsrFormat
from codesign.models.darb import BmwmFormat, DarbFormat
from codesign.models.decode_cost import decode_cost
from codesign.models.encoded_cache import compress_layer
from codesign.models.format import Encoded, Format
from codesign.models.specs import BlockSpec, BmwmSpec, CsrSpec, DarbSpec, Spec
from codesign.models.workloads import DigitsMLP, load_digits_mlp

RATES = (0.5, 0.75, 0.8, 0.85, 0.875, 0.9, 0.9375, 0.95, 0.96875, 0.98)
BMWM_BLOCKS = (2, 4, 8, 16, 32)
_CSR = CsrFormat()


def study_points() -> list[tuple[str, Format, Spec, float]]:
    """(method, format, spec, target sparsity) of every point of the study."""
    points: list[tuple[str, Format, Spec, float]] = []
    points += [("magnitude", _CSR, CsrSpec(), s) for s in RATES]
    points += [("block4", BlockFormat(), BlockSpec(b=4), s) for s in RATES]
    points += [("bmwm", BmwmFormat(), BmwmSpec(b=b), 1.0 - 1.0 / b) for b in BMWM_BLOCKS]
    points += [("darb", DarbFormat(), DarbSpec(max_block=64), s) for s in RATES]
    return points


def _cost(encs: list[Encoded], lanes: int) -> dict[str, float] | None:
    if encs[0].format not in ("bmwm", "darb", "csr"):
        return None
    costs = [decode_cost(e, lanes) for e in encs]
    rows = sum(c.produced.size for c in costs)
    steps = sum(c.total_steps for c in costs)
    return {
        "total_ops": sum(c.total_ops for c in costs),
        "total_steps": steps,
        "steps_per_row": steps / rows,
        "max_steps": max(c.max_steps for c in costs),
        "lane_utilization": sum(int(c.produced.sum()) for c in costs) / (lanes * steps),
    }


def run_point(
    mlp: DigitsMLP, fmt: Format, spec: Spec, sparsity: float, epochs: int, lanes: int
) -> dict[str, Any]:
    """Prune, fine-tune and measure one point (storage and decode cost summed over the
    layers; ``csr_*``: CSR storing the same pruned matrices)."""
    refs, masks, encs = [], [], []
    for w in mlp.weights:
        ref, enc = compress_layer(w, fmt.name, spec, sparsity)
        refs.append(ref)
        masks.append(fmt.decode(enc).mask)
        encs.append(enc)
    csr = [_CSR.encode(r) for r in refs]
    total = sum(w.size for w in mlp.weights)
    kept = sum(int(m.sum()) for m in masks)
    tuned = mlp.finetune(refs, masks, epochs) if epochs else refs
    return {
        "target_sparsity": sparsity,
        "sparsity": 1.0 - kept / total,
        "pruning_ratio": total / kept,
        "accuracy_pruned": mlp.evaluate(refs),
        "accuracy": mlp.evaluate(tuned),
        "index_bits_per_weight": sum(e.index_bits for e in encs) / total,
        "csr_index_bits_per_weight": sum(e.index_bits for e in csr) / total,
        "decode": _cost(encs, lanes),
        "csr_decode": _cost(csr, lanes),
    }


def best_points(results: list[dict[str, Any]], dense: float, tol: float) -> dict[str, Any]:
    """Per method, the point of highest pruning ratio with accuracy ≥ dense − tol."""
    best: dict[str, Any] = {}
    for r in results:
        ok = r["accuracy"] >= dense - tol - 1e-12
        if ok and r["pruning_ratio"] > best.get(r["method"], {}).get("pruning_ratio", 0.0):
            best[r["method"]] = r
    return best


def run_study(
    epochs: int = 10,
    lanes: int = 8,
    tolerance: float = 0.01,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """All points of :func:`study_points` and the best point per method."""
    mlp = load_digits_mlp()
    results = []
    with threadpool_limits(limits=1, user_api="blas"):
        for method, fmt, spec, sparsity in study_points():
            point = {"method": method, "spec": spec.to_dict()}
            point.update(run_point(mlp, fmt, spec, sparsity, epochs, lanes))
            results.append(point)
            if progress:
                progress(f"{method:10s} {sparsity:.4f}: accuracy {point['accuracy']:.4f}")
    return {
        "dense_accuracy": mlp.dense_accuracy,
        "epochs": epochs,
        "lanes": lanes,
        "tolerance": tolerance,
        "results": results,
        "best": best_points(results, mlp.dense_accuracy, tolerance),
    }


def _label(r: dict[str, Any]) -> str:
    spec = {k: v for k, v in r["spec"].items() if k != "format" and v is not None}
    return f"{r['method']} {' '.join(f'{k}={v}' for k, v in spec.items())}".strip()


def _steps(cost: dict[str, float] | None) -> str:
    return "-" if cost is None else f"{cost['steps_per_row']:.2f}"


def render_study(study: dict[str, Any]) -> str:
    """The study's tables as text."""
    header = ("method", "target", "sparsity", "ratio", "acc pruned", "acc tuned", "idx b/w")
    rows = [
        [
            _label(r),
            f"{r['target_sparsity']:.4f}",
            f"{r['sparsity']:.4f}",
            f"{r['pruning_ratio']:.2f}x",
            f"{r['accuracy_pruned']:.4f}",
            f"{r['accuracy']:.4f}",
            f"{r['index_bits_per_weight']:.3f}",
        ]
        for r in study["results"]
    ]
    lanes = study["lanes"]
    best_header = (
        "method",
        "best ratio",
        "acc",
        "idx b/w",
        "CSR idx b/w",
        f"steps/row P={lanes}",
        "CSR steps/row",
        "max steps",
        "CSR max",
        "lane util",
    )
    best_rows = []
    for r in study["best"].values():
        d, c = r["decode"], r["csr_decode"]
        best_rows.append(
            [
                _label(r),
                f"{r['pruning_ratio']:.2f}x",
                f"{r['accuracy']:.4f}",
                f"{r['index_bits_per_weight']:.3f}",
                f"{r['csr_index_bits_per_weight']:.3f}",
                _steps(d),
                _steps(c),
                "-" if d is None else d["max_steps"],
                c["max_steps"],
                "-" if d is None else f"{d['lane_utilization']:.2f}",
            ]
        )
    dense = study["dense_accuracy"]
    return "\n".join(
        [
            f"digits MLP, dense accuracy {dense:.4f}, {study['epochs']} epochs of masked "
            f"fine-tuning",
            render(header, rows),
            "",
            f"highest pruning ratio with accuracy >= dense - {study['tolerance']} "
            f"(decode cost: {lanes} lanes; CSR columns: CSR storing the same pruned layers)",
            render(best_header, best_rows),
        ]
    )


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10, help="fine-tuning epochs")
    parser.add_argument("--lanes", type=int, default=8, help="index lanes of the decoder")
    parser.add_argument("--tolerance", type=float, default=0.01, help="accuracy tolerance")
    parser.add_argument("--json", metavar="OUT", help="write the results as JSON")
    args = parser.parse_args(argv)
    study = run_study(args.epochs, args.lanes, args.tolerance, progress=print)
    print(render_study(study))
    if args.json:
        write_json(args.json, _plain(study))


if __name__ == "__main__":
    main()
