"""The sparse tile's RTL against the simulator: measured cycles, predicted cycles, closed form.

Run: ``python -m codesign.experiments.studies.tile [--results DIR] [--json OUT]``.

Reads ``DIR/tile_<format>.json`` (default ``results/rtl``), written by the tile's cocotb
suite (``pytest rtl_tests/test_tile.py``): for every format variant, tile parameter set
and layer (the digits MLP's layers and a 256×256 Gaussian, pruned, int8) the cycles the
generated Verilog took under Icarus from the first weight handshake to the last Y
handshake, the cycles `codesign simulate` predicts on the arch that mirrors the tile
(:func:`codesign.sim.arch.tile_arch`) and its closed form
(:mod:`codesign.sim.analytical`). One row per run: RTL cycles, simulated cycles, their
difference, the closed form, its gap to the simulation ((sim − closed) / closed) and the
effect the simulator names behind a gap above 2 % ("agrees" below it).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from codesign.experiments.jobs.tables import render
from codesign.files import write_json

#: Where the tile suite writes its records.
DEFAULT_RESULTS = Path("results") / "rtl"
#: Columns of the table.
HEADER = (
    "format",
    "variant",
    "tile",
    "layer",
    "sparsity",
    "RTL cycles",
    "sim cycles",
    "sim - RTL",
    "closed form",
    "gap",
    "named effect",
)


def load_rows(results: Path) -> list[dict[str, Any]]:
    """One row per (variant, tile parameter set, layer) of every ``tile_*.json`` in
    ``results``, sorted by format, variant, tile and layer; FileNotFoundError naming the
    command that writes them when there is none."""
    files = sorted(results.glob("tile_*.json"))
    if not files:
        raise FileNotFoundError(
            f"no tile_*.json in {results}: run `pytest rtl_tests/test_tile.py` first"
        )
    rows = []
    for file in files:
        record = json.loads(file.read_text())
        for run, body in record["runs"].items():
            variant, tile = run.split("/", 1)
            for name, figures in body["layers"].items():
                layer, sparsity = name.rsplit("@", 1)
                rows.append(
                    {
                        "format": record["format"],
                        "variant": variant,
                        "tile": tile,
                        "layer": layer,
                        "sparsity": float(sparsity),
                        "rtl_cycles": figures["rtl_cycles"],
                        "sim_cycles": figures["sim_cycles"],
                        "closed_form": figures["closed_form"],
                        "gap": figures["gap"],
                        "named_effect": figures["named_effect"],
                        "bits_compared": sum(body["bits_compared"].values()),
                    }
                )
    return sorted(rows, key=lambda r: (r["format"], r["variant"], r["tile"], r["layer"]))


def render_rows(rows: list[dict[str, Any]]) -> str:
    """The agreement table and a line of totals (runs, exact agreements, Y bits
    compared by the suite)."""
    table = render(
        HEADER,
        [
            [
                r["format"],
                r["variant"],
                r["tile"],
                r["layer"],
                f"{r['sparsity']:.0%}",
                r["rtl_cycles"],
                r["sim_cycles"],
                r["sim_cycles"] - r["rtl_cycles"],
                r["closed_form"],
                f"{r['gap']:+.1%}",
                r["named_effect"],
            ]
            for r in rows
        ],
    )
    exact = sum(r["sim_cycles"] == r["rtl_cycles"] for r in rows)
    runs = {(r["variant"], r["tile"]): r["bits_compared"] for r in rows}
    return (
        f"{table}\n{len(rows)} layer runs, simulator exact on {exact}; "
        f"Y bits compared against numpy (full rate, random stalls, resets): "
        f"{sum(runs.values()):,}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--results", type=Path, default=DEFAULT_RESULTS, help="directory of tile_*.json"
    )
    parser.add_argument("--json", metavar="OUT", help="write the rows as JSON")
    args = parser.parse_args(argv)
    try:
        rows = load_rows(args.results)
    except FileNotFoundError as exc:
        parser.error(str(exc))
    print(render_rows(rows))
    if args.json:
        write_json(args.json, rows)


if __name__ == "__main__":
    main()
