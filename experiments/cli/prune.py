"""`codesign prune`: prune the digits MLP with one method, fine-tune, report accuracy."""

from __future__ import annotations

import argparse
import json

from codesign.experiments.cli.command import (
    Subparsers,
    add_command,
    add_json_option,
    add_spec_option,
    add_workers_option,
    set_workers,
    write_json,
)
from codesign.experiments.jobs.prune import METHOD_FORMATS, METHODS, prune_command
from codesign.experiments.jobs.tables import clipped_lines, render

#: Masked fine-tuning epochs when --finetune-epochs is not given.
DEFAULT_EPOCHS = 10


def run(args: argparse.Namespace) -> int:
    set_workers(args.workers)
    doc = prune_command(args.method, args.sparsity, args.spec, args.finetune_epochs, args.seed)
    print(
        f"method {doc['method']} ({doc['format']})  spec {json.dumps(doc['spec'])}  "
        f"sparsity {'none' if doc['sparsity'] is None else doc['sparsity']}  "
        f"kept {doc['kept_fraction']:.4f}"
    )
    changed = {
        layer: {k: v for k, v in spec.items() if doc["spec"].get(k) != v}
        for layer, spec in doc.get("layer_specs", {}).items()
    }
    for line in clipped_lines(changed):
        print(line)
    tuned = doc["accuracy_finetuned"]
    rows = [
        [
            f"{doc['dense_accuracy']:.4f}",
            f"{doc['accuracy_pruned']:.4f}",
            "-" if tuned is None else f"{tuned:.4f}",
            doc["finetune_epochs"],
            f"{doc['index_bits_per_weight']:.3f}",
            doc["total_bits"],
        ]
    ]
    header = ["acc dense", "acc pruned", "acc tuned", "epochs", "idx b/w", "total bits"]
    print(render(header, rows))
    if "ranks" in doc:
        print(
            f"ranks {doc['ranks']}  params x{doc['param_reduction']:.2f} fewer, "
            f"MACs x{doc['mac_reduction']:.2f} fewer"
        )
    if args.json:
        write_json(args.json, doc)
    return 0


def _methods_help() -> str:
    stored = ", ".join(
        method if method == fmt else f"{method} ({fmt})" for method, fmt in METHOD_FORMATS.items()
    )
    return (
        f"pruning method, stored in the format of its name or in parentheses: {stored}; "
        "trp (trained rank pruning, stored as lowrank factors: --spec energy=E, no --sparsity)"
    )


def register(subparsers: Subparsers) -> None:
    p = add_command(
        subparsers,
        "prune",
        "prune the digits MLP, fine-tune, report accuracy",
        "Prune every layer of the digits MLP (64-300-100-10, trained on scikit-learn's "
        "digits) with one\nmethod, fine-tune with the masks fixed, and print the accuracy "
        "on the held-out split dense,\npruned and fine-tuned, with the index bits per "
        "weight and the total storage (float32 values).\nAn LBI tile larger than a layer "
        "is clipped to it (the 10-row output layer takes 10-row tiles).",
        [
            "codesign prune --method lbi --sparsity 0.9 --finetune-epochs 10",
            "codesign prune --method trp --spec energy=0.95",
        ],
        run,
    )
    p.add_argument("--model", choices=["digits"], default="digits", help="the model to prune")
    p.add_argument("--method", required=True, choices=list(METHODS), help=_methods_help())
    p.add_argument(
        "--sparsity",
        type=float,
        help="fraction of weights pruned, in [0, 1) (every method but trp needs it)",
    )
    add_spec_option(p, "spec field of the method's format (codesign formats lists them)")
    p.add_argument(
        "--finetune-epochs",
        type=int,
        default=DEFAULT_EPOCHS,
        metavar="N",
        help="epochs of masked fine-tuning (trp: of training); 0 skips it",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the fine-tuning's minibatch order (trp: of its training)",
    )
    add_workers_option(p)
    add_json_option(p, "the result")
