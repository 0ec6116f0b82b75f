"""`codesign demo`: the digits MLP at 90 % sparsity in every format, with a plot.

Formats whose structure cannot meet 90 % on every layer run at their nearest point:
BMWM at b = 16 (sparsity 1 − 1/16), LBI on 10×10 tiles (fc3 has 10 rows), lowrank at
the parameter budget of 85 % (fc3 cannot hold one rank at 90 %; no masked fine-tuning,
which does not preserve a rank).
"""

from __future__ import annotations

import json
from pathlib import Path

from matplotlib.figure import Figure

from experiments.compress import compress_json, load_layers
from experiments.tables import STORAGE_HEADER, render, storage_row
from models.registry import FORMATS
from models.report import LayerReport, report_encoded, total_report
from models.specs import BmwmSpec, LbiSpec, Spec
from models.workloads import load_digits_mlp

DEMO_SPARSITY = 0.9
FINETUNE_EPOCHS = 10
#: format -> (spec, sparsity) where the defaults cannot run at DEMO_SPARSITY.
DEMO_OVERRIDES: dict[str, tuple[Spec | None, float]] = {
    "bmwm": (BmwmSpec(b=16), 1.0 - 1.0 / 16),
    "lbi": (LbiSpec(rank=2, tile_rows=10, tile_cols=10, semiring="gf2"), DEMO_SPARSITY),
    "lowrank": (None, 0.85),
}
#: Formats whose mask is not a sparsity pattern, so masked fine-tuning does not apply.
NO_FINETUNE = ("lowrank",)


def plot_storage(totals: dict[str, LayerReport], path: Path) -> None:
    """Stacked bars of index and value bits per weight, one bar per format."""
    names = list(totals)
    index = [totals[n].index_bits_per_weight for n in names]
    value = [totals[n].value_bits_per_weight for n in names]
    fig = Figure(figsize=(9, 4.5))
    ax = fig.subplots()
    ax.bar(names, value, label="values")
    ax.bar(names, index, bottom=value, label="index")
    ax.set_ylabel("storage (bits per weight)")
    ax.set_xlabel("format")
    ax.tick_params(axis="x", labelrotation=30)
    ax.set_title(f"digits MLP at about {DEMO_SPARSITY:.0%} sparsity, float32 values")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def run_demo(out: Path) -> dict[str, LayerReport]:
    """Compress every layer of the digits MLP in every format (pruned with the format's
    structure; accuracy before and after masked fine-tuning), print one table, write
    ``out``/compress.json and ``out``/storage.png; return the per-format totals."""
    out.mkdir(parents=True, exist_ok=True)
    mlp = load_digits_mlp()
    layers = load_layers(model="digits")
    print(
        f"digits MLP {' -> '.join(str(w.shape[1]) for w in mlp.weights)} -> 10, "
        f"dense accuracy {mlp.dense_accuracy:.4f}"
    )
    totals: dict[str, LayerReport] = {}
    docs = []
    rows = []
    for name, fmt in FORMATS.items():
        spec, sparsity = DEMO_OVERRIDES.get(name, (None, DEMO_SPARSITY))
        spec = spec or fmt.spec_type()
        compressed = [fmt.compress(layer.weights, sparsity, spec) for layer in layers]
        pruned = [ref for ref, _ in compressed]
        reports = [
            report_encoded(layer.name, ref, enc, fmt)
            for layer, (ref, enc) in zip(layers, compressed, strict=True)
        ]
        totals[name] = total_report(reports, name)
        doc = compress_json(name, spec, reports, sparsity)
        doc["accuracy_pruned"] = mlp.evaluate(pruned)
        doc["accuracy_finetuned"] = None
        if name not in NO_FINETUNE:
            masks = [fmt.decode(enc).mask for _, enc in compressed]
            tuned = mlp.finetune(pruned, masks, FINETUNE_EPOCHS)
            doc["accuracy_finetuned"] = mlp.evaluate(tuned)
        docs.append(doc)
        tuned_text = (
            "-" if doc["accuracy_finetuned"] is None else f"{doc['accuracy_finetuned']:.4f}"
        )
        rows.append(
            [*storage_row(totals[name]), sparsity, f"{doc['accuracy_pruned']:.4f}", tuned_text]
        )
    print(render([*STORAGE_HEADER, "sparsity", "acc", f"acc ft{FINETUNE_EPOCHS}"], rows))
    (out / "compress.json").write_text(json.dumps(docs, indent=2) + "\n")
    plot_storage(totals, out / "storage.png")
    print(f"wrote {out / 'compress.json'} and {out / 'storage.png'}")
    return totals
