"""`codesign prune`: prune the digits MLP with one method, fine-tune, report accuracy and
storage."""

from __future__ import annotations

from typing import Any

from codesign.models.format import check_layer
from codesign.models.registry import get_format
from codesign.models.report import report_encoded, total_report
from codesign.models.specs import LbiSpec, LowrankSpec, Spec, parse_spec
from codesign.models.trp import TrpConfig, train_trp
from codesign.models.workloads import DigitsMLP, check_sparsity, load_digits_mlp

METHOD_FORMATS = {
    "magnitude": "csr",
    "viterbi": "viterbi",
    "lbi": "lbi",
    "bmwm": "bmwm",
    "darb": "darb",
    "block": "block",
    "nm": "nm",
}
METHODS = (*METHOD_FORMATS, "trp")


def method_format(method: str) -> str:
    """The storage format a pruning method's result is stored in."""
    if method not in METHOD_FORMATS:
        raise ValueError(f"unknown --method {method!r}; known methods: {', '.join(METHODS)}")
    return METHOD_FORMATS[method]


def prune_mlp(
    mlp: DigitsMLP,
    method: str,
    sparsity: float,
    spec: Spec,
    finetune_epochs: int = 10,
    seed: int = 0,
) -> dict[str, Any]:
    """Prune every layer of ``mlp`` with ``method`` at ``sparsity``, fine-tune with the
    masks fixed for ``finetune_epochs`` epochs; accuracy before/after and storage.

    An LBI tile larger than a layer is clipped to it (:meth:`~codesign.models.specs.LbiSpec.fitted`:
    the default 64×64 tiles become 10×64 on the 10-row output layer); ``layer_specs``
    names the layers whose spec differs from ``spec`` and their spec."""
    fmt = get_format(method_format(method))
    check_sparsity(sparsity)
    if finetune_epochs < 0:
        raise ValueError(f"--finetune-epochs must be >= 0, got {finetune_epochs}")
    fitted_specs = [
        spec.fitted(w.shape) if isinstance(spec, LbiSpec) else spec for w in mlp.weights
    ]
    for name, w, fitted in zip(mlp.layer_names, mlp.weights, fitted_specs, strict=True):
        check_layer(name, w.shape, fmt, fitted)
    references, masks, reports, layer_specs = [], [], [], {}
    for name, w, fitted in zip(mlp.layer_names, mlp.weights, fitted_specs, strict=True):
        if fitted != spec:
            layer_specs[name] = fitted.to_dict()
        reference, enc = fmt.compress(w, sparsity, fitted)
        references.append(reference)
        masks.append(fmt.decode(enc).mask)
        reports.append(report_encoded(name, reference, enc, fmt))
    tuned = mlp.finetune(references, masks, finetune_epochs, seed) if finetune_epochs else None
    total = total_report(reports)
    kept = sum(int(m.sum()) for m in masks) / sum(m.size for m in masks)
    return {
        "method": method,
        "format": fmt.name,
        "spec": spec.to_dict(),
        "layer_specs": layer_specs,
        "sparsity": sparsity,
        "kept_fraction": kept,
        "dense_accuracy": mlp.dense_accuracy,
        "accuracy_pruned": mlp.evaluate(references),
        "accuracy_finetuned": mlp.evaluate(tuned) if tuned is not None else None,
        "finetune_epochs": finetune_epochs,
        "index_bits_per_weight": total.index_bits_per_weight,
        "total_bits": total.total_bits,
        "layers": [r.to_dict() for r in reports],
    }


def trp_mlp(mlp: DigitsMLP, spec: LowrankSpec, epochs: int, seed: int) -> dict[str, Any]:
    """Trained rank pruning of ``mlp`` at ``spec.energy`` for ``epochs`` epochs; the
    deployed factors are stored dense (lowrank format, float32, no index)."""
    if spec.rank is not None:
        raise ValueError(
            "--method trp sets each layer's rank by energy; give --spec energy=E "
            "in (0, 1] instead of rank"
        )
    result = train_trp(mlp, TrpConfig(energy=spec.energy, epochs=epochs, seed=seed))
    doc = result.to_dict()
    value_bits = 32 * result.params
    return {
        "method": "trp",
        "format": "lowrank",
        "spec": spec.to_dict(),
        "sparsity": None,
        "kept_fraction": result.params / result.dense_params,
        "dense_accuracy": mlp.dense_accuracy,
        "accuracy_pruned": result.svd_only_accuracy,
        "accuracy_finetuned": result.deployed_accuracy,
        "finetune_epochs": epochs,
        "index_bits_per_weight": 0.0,
        "total_bits": value_bits,
        "ranks": result.ranks,
        "param_reduction": result.param_reduction,
        "mac_reduction": result.mac_reduction,
        "layers": doc["layers"],
    }


def prune_command(
    method: str,
    sparsity: float | None,
    spec_items: list[str] | None,
    finetune_epochs: int,
    seed: int,
) -> dict[str, Any]:
    """What `codesign prune --model digits` computes. For ``trp`` "before" is the dense
    weights cut at TRP's final ranks without training and "after" the TRP-trained
    deployed model; ``finetune_epochs`` are its training epochs."""
    if method == "trp":
        if sparsity is not None:
            raise ValueError(
                "--method trp reaches its size through the SVD energy; drop "
                "--sparsity and give --spec energy=E in (0, 1]"
            )
        spec = parse_spec("lowrank", spec_items)
        return trp_mlp(load_digits_mlp(), spec, finetune_epochs, seed)
    if sparsity is None:
        raise ValueError(f"--method {method} needs --sparsity S in [0, 1)")
    spec = parse_spec(method_format(method), spec_items)
    return prune_mlp(load_digits_mlp(), method, sparsity, spec, finetune_epochs, seed)
