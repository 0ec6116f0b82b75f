"""Every format on the simulated accelerator: the digits MLP and a 4096×4096 layer.

``python -m codesign.experiments.studies.sim [--size 4096] [--out results/sim]`` runs the example
configurations (``experiments/configs/sim_<name>.yaml``, one per format plus viterbi
masks with XOR-coded values: spec,
sparsity, quantization, the default accelerator) on the digits MLP and on one Gaussian
``size``×``size`` layer (LBI on 64×64 tiles at rank 8 there), with synthesized
decoders. Prints cycles, throughput, energy by component, pJ per dense-equivalent MAC,
the closed-form agreement and the product check; writes ``study.json`` and
``energy.png`` / ``energy.svg`` (energy per component and throughput per format).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from codesign.experiments import CONFIGS  # noqa: E402
from codesign.experiments.jobs.simulate import run_config, totals_table  # noqa: E402
from codesign.experiments.reports.labels import axis_label, column_name  # noqa: E402
from codesign.files import replacing, write_json  # noqa: E402
from codesign.models.registry import FORMATS  # noqa: E402
from codesign.sim.config import load_config  # noqa: E402
from codesign.sim.energy import COMPONENTS  # noqa: E402

#: Spec replacements on the large layer (the digits tiles are sized for fc3's 10 rows).
LARGE_SPECS = {"lbi": {"rank": 8, "tile_rows": 64, "tile_cols": 64, "semiring": "gf2"}}


def workloads(size: int) -> dict[str, list[dict]]:
    """Layer sources of the two workloads."""
    return {"digits MLP": [{"digits": "all"}], f"{size}x{size}": [{"synthetic": f"{size}x{size}"}]}


def config_names() -> list[str]:
    """Names of the example configurations: ``sim_<name>.yaml``, registry order first."""
    names = [p.stem[4:] for p in sorted(CONFIGS.glob("sim_*.yaml"))]
    return sorted(names, key=lambda n: list(FORMATS).index(n) if n in FORMATS else len(FORMATS))


def run_study(size: int, names: list[str]) -> list[dict]:
    """One row per (workload, configuration): the ``total`` figures of `codesign
    simulate`."""
    rows = []
    for workload, sources in workloads(size).items():
        for fmt in names:
            cfg = load_config(CONFIGS / f"sim_{fmt}.yaml")
            large = "digits" not in sources[0]
            layers = [
                dataclasses.replace(
                    layer, source=s, spec=LARGE_SPECS.get(fmt, layer.spec) if large else layer.spec
                )
                for layer in cfg.layers
                for s in sources
            ]
            doc = run_config(dataclasses.replace(cfg, layers=tuple(layers)))
            row = doc["total"]
            row.update(workload=workload, energy_table=doc["energy_table"])
            row["encode_s"] = sum(r["encode_s"] for r in doc["layers"])
            rows.append(row)
            print(f"{workload:>12} {row['format']:12} {row['cycles']:>9} cycles", flush=True)
    return rows


def plot(rows: list[dict], out: Path) -> list[Path]:
    """Energy per component (stacked, pJ per dense MAC) and throughput per format, one
    panel pair per workload; returns the files written."""
    names = list(dict.fromkeys(r["workload"] for r in rows))
    fig, axes = plt.subplots(2, len(names), figsize=(6 * len(names), 7), squeeze=False)
    for col, workload in enumerate(names):
        sel = [r for r in rows if r["workload"] == workload]
        labels = [r["format"] for r in sel]
        bottom = [0.0] * len(sel)
        ax = axes[0][col]
        for comp in COMPONENTS:
            values = [r[f"energy_{comp}_pj"] / (r["energy_pj"] / r["pj_per_mac"]) for r in sel]
            ax.bar(labels, values, bottom=bottom, label=column_name(f"energy_{comp}_pj"))
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
        ax.set_title(f"{workload}: energy per dense-equivalent MAC")
        ax.set_ylabel(axis_label("pj_per_mac"))
        ax.tick_params(axis="x", rotation=60)
        ax.legend()
        ax = axes[1][col]
        ax.bar(labels, [r["gops"] for r in sel], color="tab:gray")
        ax.set_ylabel(axis_label("gops"))
        ax.set_xlabel(axis_label("format"))
        ax.tick_params(axis="x", rotation=60)
    fig.tight_layout()
    files = [out / "energy.png", out / "energy.svg"]
    for path in files:
        with replacing(path) as tmp:
            fig.savefig(tmp)
    plt.close(fig)
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument(
        "--configs", default=",".join(config_names()), help="names of sim_<name>.yaml to run"
    )
    parser.add_argument("--out", default="results/sim")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = run_study(args.size, args.configs.split(","))
    print(f"energy table: {rows[0]['energy_table']}")
    print(totals_table(rows))
    write_json(out / "study.json", rows, default=str)
    for path in plot(rows, out):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
