"""TRP study: trained rank pruning of the digits MLP at several energy thresholds.

Usage: python -m codesign.experiments.studies.trp [--energies 0.9 0.95 0.97 0.99] [--epochs 20]
       [--period 20] [--lam 3e-4] [--json OUT]

For each energy e, :func:`codesign.models.trp.train_trp` trains the MLP with a rank-pruning step
every ``--period`` minibatches and deploys it as two thin layers per layer. Reported:
the rank of each layer (of its full rank), parameter and MAC reduction vs dense, and
held-out accuracy of the deployed factored model beside the dense baseline and beside
plain truncated SVD of the dense weights at the same ranks (no training).
"""

from __future__ import annotations

import argparse
from typing import Any

from codesign.experiments.jobs.tables import render
from codesign.files import write_json
from codesign.models.trp import TrpConfig, TrpResult, train_trp
from codesign.models.workloads import load_digits_mlp


def run_study(
    energies: list[float], epochs: int = 20, period: int = 20, lam: float = 3e-4
) -> list[TrpResult]:
    """One TRP run per energy threshold."""
    mlp = load_digits_mlp()
    return [
        train_trp(mlp, TrpConfig(energy=e, epochs=epochs, period=period, lam=lam)) for e in energies
    ]


def render_study(results: list[TrpResult]) -> str:
    """The study as a text table."""
    header = (
        "energy",
        "ranks (of full)",
        "factored",
        "params",
        "x params",
        "x MACs",
        "acc dense",
        "acc TRP",
        "acc SVD only",
        "acc drop",
    )
    rows = []
    for r in results:
        ranks = ", ".join(f"{lay.name} {lay.rank}/{min(lay.shape)}" for lay in r.layers)
        rows.append(
            [
                f"{r.config.energy:g}",
                ranks,
                ",".join(lay.name for lay in r.layers if lay.factored) or "-",
                f"{r.params}/{r.dense_params}",
                f"{r.param_reduction:.2f}",
                f"{r.mac_reduction:.2f}",
                f"{r.dense_accuracy:.4f}",
                f"{r.deployed_accuracy:.4f}",
                f"{r.svd_only_accuracy:.4f}",
                f"{r.dense_accuracy - r.deployed_accuracy:+.4f}",
            ]
        )
    c = results[0].config if results else TrpConfig()
    return "\n".join(
        [
            f"TRP on the digits MLP: {c.epochs} epochs, rank pruning every {c.period} steps, "
            f"lambda {c.lam:g}",
            render(header, rows),
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--energies", type=float, nargs="+", default=[0.9, 0.95, 0.97, 0.99])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--period", type=int, default=20, help="steps between TSVD steps")
    parser.add_argument("--lam", type=float, default=3e-4, help="nuclear-norm weight")
    parser.add_argument("--json", metavar="OUT", help="write the results as JSON")
    args = parser.parse_args(argv)
    results = run_study(args.energies, args.epochs, args.period, args.lam)
    print(render_study(results))
    if args.json:
        out: list[dict[str, Any]] = [r.to_dict() for r in results]
        write_json(args.json, out)


if __name__ == "__main__":
    main()
