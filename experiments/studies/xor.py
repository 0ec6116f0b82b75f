"""Encoding efficiency of XOR-gate fixed-to-fixed encoding against the entropy bound.

Run: ``python -m codesign.experiments.studies.xor [--json OUT]`` (options: ``--n-in``,
``--value-bits``, ``--seed``).

Workload: a gaussian 256×512 layer (seed 0) magnitude-pruned to S = 0.9, quantized by
binary coding to ``--value-bits`` planes (default 2; sign planes, so the data bits are
close to fair coins), mask in CSR. Decoder: n_in = 6 by default (n_s = 3 then has
2^12 states), n_out = ratio·n_in for n_out/n_in ∈ {4, 6, 8, 10}, n_s ∈ {1, 2, 3},
segment 1024 blocks, M from seed 0.

Tables:

1. E = care bits / (input + patch bits) per n_s × n_out/n_in; the entropy bound
   1/(1 − S) = 10 caps n_out/n_in, and E = (n_out/n_in achieved after patches) / 10.
2. Per configuration: patches per block, the fraction of blocks with no patch, and
   input and patch bits per weight (over all planes).
3. n_s = 1 blocks with no patch, measured on the layer above against the exact
   probability (:func:`codesign.models.bounds.no_patch_probability`, Bernoulli care masks at
   the layer's care fraction), plus the reference points of REFERENCES §2
   (100/10 and 100/16 at S = 0.9) measured on random planes with Bernoulli masks,
   ``SEEDS`` matrices × ``BLOCKS`` blocks, ± the standard error between matrices.
"""

from __future__ import annotations

import argparse

import numpy as np

from codesign.experiments.jobs.tables import render
from codesign.files import write_json
from codesign.models.bounds import entropy_bound, no_patch_probability
from codesign.models.encoded_cache import compress_layer
from codesign.models.specs import XorSpec
from codesign.models.workloads import gaussian
from codesign.models.xor import XorFormat, encode_planes

SPARSITY = 0.9
RATIOS = (4, 6, 8, 10)
STEPS = (1, 2, 3)
SHAPE = (256, 512)
REFERENCE_POINTS = ((100, 10), (100, 16))
SEEDS, BLOCKS = 20, 1000


def efficiency_rows(w: np.ndarray, n_in: int, value_bits: int) -> list[dict[str, float]]:
    """One row per (n_s, ratio): the layer's XOR encoding figures."""
    fmt = XorFormat()
    rows = []
    for n_s in STEPS:
        for ratio in RATIOS:
            spec = XorSpec(
                n_in=n_in, n_out=ratio * n_in, n_s=n_s, quant="binary", value_bits=value_bits
            )
            _, enc = compress_layer(w, fmt.name, spec, SPARSITY)
            x = enc.extras
            blocks = enc.streams["inputs"].data.size
            rows.append(
                {
                    "n_s": n_s,
                    "ratio": ratio,
                    "n_in": n_in,
                    "n_out": ratio * n_in,
                    "efficiency": x["efficiency"],
                    "patches_per_block": enc.streams["patch_bit"].data.size / blocks,
                    "no_patch_block_fraction": x["no_patch_block_fraction"],
                    "input_bits_per_weight": x["input_bits"] / w.size,
                    "patch_bits_per_weight": x["patch_bits"] / w.size,
                    "care_fraction": x["care_bits"] / (w.size * value_bits),
                    "entropy_bound": x["entropy_bound"],
                }
            )
    return rows


def reference_point(n_out: int, n_in: int) -> dict[str, float]:
    """No-patch fraction of n_s = 1 blocks on random planes with Bernoulli care masks,
    one XOR matrix per seed; mean and standard error between seeds."""
    fractions = []
    for seed in range(SEEDS):
        rng = np.random.default_rng(seed)
        bits = rng.integers(0, 2, (1, BLOCKS * n_out), dtype=np.uint8)
        care = rng.random(BLOCKS * n_out) >= SPARSITY
        spec = XorSpec(n_in=n_in, n_out=n_out, n_s=1, seed=seed)
        fractions.append(float(encode_planes(bits, care, spec).no_patch_blocks().mean()))
    return {
        "n_out": n_out,
        "n_in": n_in,
        "measured": float(np.mean(fractions)),
        "stderr": float(np.std(fractions, ddof=1) / np.sqrt(SEEDS)),
        "exact": no_patch_probability(n_out, n_in, SPARSITY),
    }


def study(n_in: int, value_bits: int, seed: int) -> dict[str, object]:
    """Run the study, print its tables, return everything as a JSON-ready dict."""
    w = gaussian(SHAPE, seed=seed)
    rows = efficiency_rows(w, n_in, value_bits)
    by_key = {(r["n_s"], r["ratio"]): r for r in rows}
    care = rows[0]["care_fraction"]
    no_patch = [
        {
            "n_out": r["n_out"],
            "n_in": n_in,
            "measured": r["no_patch_block_fraction"],
            "exact": no_patch_probability(r["n_out"], n_in, 1.0 - care),
        }
        for r in rows
        if r["n_s"] == 1
    ]
    references = [reference_point(n_out, k) for n_out, k in REFERENCE_POINTS]

    print(
        f"gaussian {SHAPE[0]}x{SHAPE[1]} (seed {seed}), magnitude-pruned to S = {SPARSITY}, "
        f"binary coding {value_bits} plane(s), n_in = {n_in}, mask csr; "
        f"entropy bound 1/(1-S) = {entropy_bound(SPARSITY):.0f}"
    )
    print("\nE = care bits / (input + patch bits)")
    header = ("n_s", *[f"n_out/n_in={r}" for r in RATIOS])
    print(
        render(
            header,
            [[n_s, *[f"{by_key[n_s, r]['efficiency']:.3f}" for r in RATIOS]] for n_s in STEPS],
        )
    )
    print()
    print(
        render(
            ("n_s", "n_out/n_in", "n_out", "E", "patches/blk", "no-patch", "in b/w", "patch b/w"),
            [
                [
                    r["n_s"],
                    r["ratio"],
                    r["n_out"],
                    f"{r['efficiency']:.3f}",
                    f"{r['patches_per_block']:.3f}",
                    f"{r['no_patch_block_fraction']:.3f}",
                    f"{r['input_bits_per_weight']:.4f}",
                    f"{r['patch_bits_per_weight']:.4f}",
                ]
                for r in rows
            ],
        )
    )
    print(f"\nn_s = 1 blocks needing no patch (care fraction {care:.4f}): measured vs exact")
    table = [
        [f"{p['n_out']}/{p['n_in']}", "layer", f"{p['measured']:.4f}", "-", f"{p['exact']:.4f}"]
        for p in no_patch
    ] + [
        [
            f"{p['n_out']}/{p['n_in']}",
            f"random, {SEEDS}x{BLOCKS} blocks",
            f"{p['measured']:.4f}",
            f"{p['stderr']:.4f}",
            f"{p['exact']:.4f}",
        ]
        for p in references
    ]
    print(render(("n_out/n_in", "planes", "measured", "stderr", "exact"), table))
    return {
        "shape": list(SHAPE),
        "seed": seed,
        "sparsity": SPARSITY,
        "n_in": n_in,
        "value_bits": value_bits,
        "quant": "binary",
        "entropy_bound": entropy_bound(SPARSITY),
        "rows": rows,
        "no_patch_layer": no_patch,
        "no_patch_reference": references,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-in", type=int, default=6, help="input bits per block (1..8)")
    parser.add_argument("--value-bits", type=int, default=2, help="binary-coding planes")
    parser.add_argument("--seed", type=int, default=0, help="seed of the gaussian layer")
    parser.add_argument("--json", metavar="OUT", help="write the results as JSON to OUT")
    args = parser.parse_args(argv)
    if not 1 <= args.n_in <= 8:
        parser.error("--n-in must be in 1..8 (n_s = 3 visits 2^(3·n_in) transitions per block)")
    doc = study(args.n_in, args.value_bits, args.seed)
    if args.json:
        write_json(args.json, doc)


if __name__ == "__main__":
    main()
