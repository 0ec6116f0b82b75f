"""Encode + decode speed of the baseline formats on a 4096×4096 layer at 90 % sparsity.

Usage: python benchmarks/bench_formats.py [--size 4096] [--repeats 5] [--json OUT]

Reports, per format, the median and min wall time of encode and of decode over the
repeats (N:M at its own 2:4 point, the sparsity its structure reaches) and the encode
rate in weights/s (dense weights m·n per second). Baseline in the same run:
scipy.sparse.csr_matrix construction of the same matrix.
"""

from __future__ import annotations

import argparse
import statistics

import scipy.sparse
from timing import timings

from codesign.files import write_json
from codesign.models.nm import nm_prune
from codesign.models.registry import get_format
from codesign.models.specs import NmSpec
from codesign.models.workloads import gaussian, magnitude_prune

BASELINES = ("dense", "bitmap", "csr", "relative", "nm", "block")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--sparsity", type=float, default=0.9)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", metavar="OUT")
    args = parser.parse_args()

    dense = gaussian((args.size, args.size), seed=0)
    pruned = magnitude_prune(dense, args.sparsity)
    n_weights = pruned.size
    base = timings(lambda: scipy.sparse.csr_matrix(pruned), args.repeats)
    rows = {"scipy.csr_matrix": {"encode_s": statistics.median(base), "encode_min_s": min(base)}}
    for name in BASELINES:
        fmt = get_format(name)
        w = nm_prune(dense, NmSpec()) if name == "nm" else pruned  # N:M: its own 2:4 point
        enc = fmt.encode(w)
        t_enc = timings(lambda fmt=fmt, w=w: fmt.encode(w), args.repeats)
        t_dec = timings(lambda fmt=fmt, enc=enc: fmt.decode(enc), args.repeats)
        rows[name] = {
            "encode_s": statistics.median(t_enc),
            "encode_min_s": min(t_enc),
            "decode_s": statistics.median(t_dec),
            "decode_min_s": min(t_dec),
        }
    print(
        f"{args.size}x{args.size} float32 at sparsity {args.sparsity}, "
        f"median of {args.repeats} runs"
    )
    print(f"{'format':18}{'encode s':>10}{'decode s':>10}{'enc Mw/s':>10}{'vs scipy':>10}")
    for name, r in rows.items():
        r["encode_weights_per_s"] = n_weights / r["encode_s"]
        r["encode_vs_scipy"] = rows["scipy.csr_matrix"]["encode_s"] / r["encode_s"]
        dec = f"{r['decode_s']:10.4f}" if "decode_s" in r else f"{'-':>10}"
        print(
            f"{name:18}{r['encode_s']:10.4f}{dec}{r['encode_weights_per_s'] / 1e6:10.1f}"
            f"{r['encode_vs_scipy']:10.2f}"
        )
    if args.json:
        write_json(args.json, {"size": args.size, "sparsity": args.sparsity, "rows": rows})


if __name__ == "__main__":
    main()
