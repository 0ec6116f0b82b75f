"""`codesign demo`: the end-to-end tour on the digits MLP and a real CNN, written to
results/demo/.

1. **compress**: every layer in every format at 90 % sparsity, accuracy before and
   after masked fine-tuning (``compress.json``, ``storage.png``);
2. **hardware**: the Viterbi decompressor of the calibrated fc1 spec as Verilog with
   its JSON sidecar, and its synthesis statistics (``hw/``);
3. **simulate**: the accelerator running the MLP with CSR, Viterbi and Viterbi masks
   with XOR-coded values (``simulate.json``);
4. **sweep**: a few points of a sweep (storage and simulation across sparsity) and its
   report (``sweep/``);
5. **a real network**: the stem and first stage of the example ResNet-18 model file
   (:mod:`codesign.models.examples`; every tensor with its role: kernels, BatchNorm
   vectors, skipped counters) in every format at 90 % sparsity and int8 values
   (``network/compress.json``), then simulated as convolutions — each kernel row reused
   over the output pixels — in CSR and Viterbi (``network/simulate.json``).

Formats whose structure cannot meet 90 % on every layer run at their nearest point:
N:M as 1:10, BMWM at b = 16 (sparsity 1 − 1/16), LBI on 10×10 tiles (fc3 has 10 rows),
lowrank at the parameter budget of 85 % (fc3 cannot hold one rank at 90 %; no masked
fine-tuning, which does not preserve a rank).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from codesign.experiments.cli import sweep
from codesign.experiments.cli.command import Subparsers, add_command
from codesign.experiments.jobs.compress import describe_workload, load_workload
from codesign.experiments.jobs.tables import STORAGE_HEADER, relative_error, render, storage_row
from codesign.files import replacing, write_json
from codesign.models.encoded_cache import compress_layer
from codesign.models.registry import FORMATS
from codesign.models.report import LayerReport, report_encoded, total_report
from codesign.models.specs import DEFAULT_SPARSITY, BmwmSpec, LbiSpec, NmSpec, Spec, XorSpec
from codesign.models.workloads import load_digits_mlp

DEMO_SPARSITY = DEFAULT_SPARSITY
FINETUNE_EPOCHS = 10
#: format -> (spec, sparsity) where the defaults cannot run at DEMO_SPARSITY.
DEMO_OVERRIDES: dict[str, tuple[Spec | None, float]] = {
    "nm": (NmSpec(n=1, m=10), DEMO_SPARSITY),
    "bmwm": (BmwmSpec(b=16), 1.0 - 1.0 / 16),
    "lbi": (LbiSpec(rank=2, tile_rows=10, tile_cols=10, semiring="gf2"), DEMO_SPARSITY),
    "lowrank": (None, 0.85),
}
#: Formats whose mask is not a sparsity pattern, so masked fine-tuning does not apply.
NO_FINETUNE = ("lowrank",)


def value_precision(spec: Spec, dtype: np.dtype) -> str:
    """How a format stores its values: an :class:`XorSpec` as XOR-coded bit-planes of
    ``value_bits``-bit integers, any other as the weights' own type (``float32``)."""
    if isinstance(spec, XorSpec):
        return f"int{spec.value_bits}, XOR-coded"
    return str(np.dtype(dtype))


def plot_storage(totals: dict[str, LayerReport], precision: dict[str, str], path: Path) -> None:
    """Stacked bars of index and value bits per weight, one bar per format, each bar
    labelled with its value precision, any sparsity other than the demo's and, for a
    format that approximates the weights (lowrank), LOSSY with its relative error
    (``precision``: format -> text)."""
    from matplotlib.figure import Figure

    from codesign.experiments.reports.labels import axis_label

    names = list(totals)
    index = [totals[n].index_bits_per_weight for n in names]
    value = [totals[n].value_bits_per_weight for n in names]
    fig = Figure(figsize=(9, 4.8))
    ax = fig.subplots()
    ax.bar(names, value, label="values")
    bars = ax.bar(names, index, bottom=value, label="index")
    ax.bar_label(bars, [precision[n] for n in names], padding=3, fontsize="small", rotation=90)
    ax.set_ylim(0, 1.25 * max(v + i for v, i in zip(value, index, strict=True)))
    ax.set_ylabel(axis_label("bits_per_weight"))
    ax.set_xlabel(axis_label("format"))
    ax.tick_params(axis="x", labelrotation=30)
    ax.set_title(
        f"digits MLP at {DEMO_SPARSITY:.0%} sparsity; value precision (any other "
        "sparsity, LOSSY) above each bar"
    )
    ax.legend(loc="upper right")
    fig.tight_layout()
    with replacing(path) as tmp:
        fig.savefig(tmp, dpi=120)


def run_demo(out: Path) -> None:
    """The four steps of the tour (module docstring), each printing its table."""
    _section("1. compress: the digits MLP in every format")
    viterbi_spec = demo_compress(out)
    _section("2. hardware: the Viterbi decompressor of fc1 as Verilog, synthesized")
    demo_hardware(out / "hw", viterbi_spec)
    _section("3. simulate: the MLP on the sparse accelerator")
    demo_simulate(out)
    _section("4. sweep: formats x sparsity x machines, stored and reported")
    demo_sweep(out / "sweep")
    _section("5. a real network: ResNet-18's stem and first stage, every format, simulated")
    demo_network(out / "network")


def _section(title: str) -> None:
    print(f"\n== {title}\n", flush=True)
    _LAST[0] = time.perf_counter()


_LAST = [time.perf_counter()]


def step(what: str) -> None:
    """One progress line: what was just done and the seconds it took (since the last
    step line or section title)."""
    now = time.perf_counter()
    print(f"  {what} ({now - _LAST[0]:.1f} s)", flush=True)
    _LAST[0] = now


def demo_hardware(out: Path, spec: Spec) -> None:
    """Write the ``viterbi`` block of ``spec`` (Verilog + sidecar) to ``out`` and print
    its synthesis statistics."""
    from codesign.hw.build import write
    from codesign.hw.synth import synthesize

    v_path, json_path = write("viterbi", spec, out)
    stats = synthesize("viterbi", spec)
    print(f"wrote {v_path} and {json_path} (spec {spec.to_json()})")
    rows = [[cell, count] for cell, count in sorted(stats.cells.items())]
    print(render(["cell", "count"], [*rows, ["total", stats.total], ["depth", stats.depth]]))
    write_json(out / "synth.json", stats.to_dict())


#: Example simulator configurations the demo runs (experiments/configs/sim_<name>.yaml).
DEMO_SIMULATIONS = ("csr", "viterbi", "viterbi_xor")


def demo_simulate(out: Path) -> None:
    """Simulate the MLP under :data:`DEMO_SIMULATIONS`; print one line per
    configuration, write ``out``/simulate.json."""
    from codesign.experiments import CONFIGS
    from codesign.experiments.jobs.simulate import run_config, totals_table
    from codesign.sim.config import load_config

    docs, rows = [], []
    for name in DEMO_SIMULATIONS:
        doc = run_config(load_config(CONFIGS / f"sim_{name}.yaml"))
        docs.append(doc)
        rows.append({**doc["total"], "workload": "digits MLP"})
    arch = ", ".join(f"{k}={v}" for k, v in docs[0]["arch"].items())
    print(f"energy table: {docs[0]['energy_table']}\narch: {arch}")
    print(totals_table(rows))
    write_json(out / "simulate.json", docs, default=str)
    print(f"wrote {out / 'simulate.json'}")


def demo_sweep(out: Path) -> None:
    """Run ``experiments/configs/sweep_demo.yaml`` into ``out`` and write its report
    there (as `codesign sweep CONFIG --out DIR --report`)."""
    from codesign.experiments import CONFIGS

    parser = argparse.ArgumentParser(prog="codesign")
    sweep.register(parser.add_subparsers(dest="command", required=True))
    config = CONFIGS / "sweep_demo.yaml"
    args = parser.parse_args(["sweep", str(config), "--out", str(out), "--report"])
    args.func(args)


def format_doc(
    spec: Spec,
    sparsity: float,
    reports: list[LayerReport],
    total: LayerReport,
    accuracy_pruned: float,
    accuracy_finetuned: float | None,
) -> dict[str, Any]:
    """One format of the demo's ``compress.json`` (docs/json.md, "Demo format"): its
    spec and sparsity, the layer reports and their ``total``, the held-out accuracy of
    the decoded layers and after masked fine-tuning (None: not fine-tuned)."""
    return {
        "format": spec.format_name,
        "spec": spec.to_dict(),
        "sparsity": sparsity,
        "layers": [r.to_dict() for r in reports],
        "total": total.to_dict(),
        "accuracy_pruned": accuracy_pruned,
        "accuracy_finetuned": accuracy_finetuned,
    }


def demo_compress(out: Path) -> Spec:
    """Compress every layer of the digits MLP in every format (pruned with the format's
    structure; accuracy before and after masked fine-tuning), print one table, write
    ``out``/compress.json and ``out``/storage.png; return the Viterbi spec calibrated
    for fc1."""
    out.mkdir(parents=True, exist_ok=True)
    mlp = load_digits_mlp()
    layers = load_workload(model="digits").layers
    print(
        f"digits MLP {' -> '.join(str(w.shape[1]) for w in mlp.weights)} -> 10, "
        f"dense accuracy {mlp.dense_accuracy:.4f}"
    )
    totals: dict[str, LayerReport] = {}
    precision: dict[str, str] = {}
    docs = []
    rows = []
    for name, fmt in FORMATS.items():
        spec, sparsity = DEMO_OVERRIDES.get(name, (None, DEMO_SPARSITY))
        spec = spec or fmt.spec_type()
        compressed = [compress_layer(layer.weights, name, spec, sparsity) for layer in layers]
        if name == "viterbi":
            viterbi_spec = compressed[0][1].spec
        pruned = [ref for ref, _ in compressed]
        reports = [
            report_encoded(layer.name, ref, enc, fmt, layer.weights, sparsity)
            for layer, (ref, enc) in zip(layers, compressed, strict=True)
        ]
        totals[name] = total_report(reports, name)
        error = relative_error(reports)
        precision[name] = (
            value_precision(spec, layers[0].weights.dtype)
            + (f", sparsity {sparsity:g}" if sparsity != DEMO_SPARSITY else "")
            + (f", LOSSY (rel. error {error:.2f})" if error is not None else "")
        )
        tuned = None
        if name not in NO_FINETUNE:
            masks = [fmt.decode(enc).mask for _, enc in compressed]
            tuned = mlp.finetune(pruned, masks, FINETUNE_EPOCHS)
        doc = format_doc(
            spec,
            sparsity,
            reports,
            totals[name],
            mlp.evaluate(pruned),
            None if tuned is None else mlp.evaluate(tuned),
        )
        docs.append(doc)
        tuned_text = (
            "-" if doc["accuracy_finetuned"] is None else f"{doc['accuracy_finetuned']:.4f}"
        )
        rows.append(
            [
                *storage_row(totals[name]),
                value_precision(spec, layers[0].weights.dtype),
                sparsity,
                f"{doc['accuracy_pruned']:.4f}",
                tuned_text,
            ]
        )
        step(f"{name}: compressed{'' if name in NO_FINETUNE else ', fine-tuned'}")
    print(
        "x dense and x CSR: against dense and CSR storage of the same pruned matrices at the\n"
        "row's own value precision (float32, but int8 for xor's XOR-coded values);\n"
        "lossless: decode equals that reference; target: the sparsity asked for"
    )
    print(
        render(
            [*STORAGE_HEADER, "values", "target", "acc", f"acc ft{FINETUNE_EPOCHS}"],
            rows,
        )
    )
    write_json(out / "compress.json", docs)
    plot_storage(totals, precision, out / "storage.png")
    print(f"wrote {out / 'compress.json'} and {out / 'storage.png'}")
    return viterbi_spec


#: The example model, its layers and the formats simulated in step 5 of the tour.
NETWORK = "resnet18"
NETWORK_LAYERS = ("conv1.*", "bn1.*", "layer1.*")
NETWORK_SIMULATIONS = ("csr", "viterbi")
NETWORK_QUANTIZE = 8


def demo_network(out: Path) -> None:
    """Every format on :data:`NETWORK_LAYERS` of the example :data:`NETWORK` at
    :data:`DEMO_SPARSITY` with int8 values, then :data:`NETWORK_SIMULATIONS` on the
    simulator with the layers' convolution geometry (decoders charged per active cycle,
    no synthesis); writes ``out``/compress.json and ``out``/simulate.json."""
    from codesign.experiments.jobs.networks import compare_formats, network_config, render_formats
    from codesign.experiments.jobs.simulate import render_report, run_config, totals_table

    out.mkdir(parents=True, exist_ok=True)
    workload = load_workload(model=NETWORK, layers=NETWORK_LAYERS)
    rows = compare_formats(workload, DEMO_SPARSITY, NETWORK_QUANTIZE, progress=step)
    print(describe_workload(workload))
    print(f"values int{NETWORK_QUANTIZE} for every format; x dense and x CSR: the same pruned")
    print("matrices stored dense and in CSR at 8 bits per value, side tensors included")
    print(render_formats(rows))
    write_json(out / "compress.json", [r.to_json() for r in rows])
    docs = []
    for fmt in NETWORK_SIMULATIONS:
        cfg = network_config(NETWORK, fmt, DEMO_SPARSITY, NETWORK_QUANTIZE, NETWORK_LAYERS)
        doc = run_config(cfg, synth=False)
        docs.append(doc)
        step(f"{fmt}: simulated")
        if fmt == NETWORK_SIMULATIONS[0]:
            print(render_report(doc))
    print(totals_table([{**d["total"], "workload": f"{NETWORK} stem"} for d in docs]))
    write_json(out / "simulate.json", docs, default=str)
    print(f"wrote {out / 'compress.json'} and {out / 'simulate.json'}")


def run(args: argparse.Namespace) -> int:
    run_demo(Path(args.out))
    return 0


def register(subparsers: Subparsers) -> None:
    p = add_command(
        subparsers,
        "demo",
        "the end-to-end tour: the digits MLP, then a real CNN (what `make demo` runs)",
        "Run the end-to-end tour on the digits MLP and on the stem and first stage of the "
        "example\nResNet-18-shaped CNN, and write its files into DIR:\n\n"
        f"1. every layer in every format at {DEMO_SPARSITY:.0%} sparsity, accuracy before "
        "and after\n   masked fine-tuning (compress.json, storage.png);\n"
        "2. the Viterbi decompressor of the calibrated fc1 spec as Verilog, JSON\n"
        "   sidecar and synthesis statistics (hw/);\n"
        "3. the MLP on the simulated accelerator with CSR, Viterbi, and Viterbi masks\n"
        "   with XOR-coded values (simulate.json);\n"
        "4. a 16-point sweep of formats x sparsity x machines and its report (sweep/);\n"
        "5. the stem and first stage of the example ResNet-18-shaped CNN in every format\n"
        "   at int8, then simulated as convolutions in CSR and Viterbi (network/).\n\n"
        "Formats whose structure cannot meet the sparsity run at their nearest point "
        "(bmwm, lbi, lowrank).",
        ["codesign demo"],
        run,
    )
    p.add_argument("--out", default="results/demo", metavar="DIR", help="output directory")
