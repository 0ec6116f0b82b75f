"""Encode speed of DARB and BMWM on a 4096×4096 layer at 90 % sparsity.

Usage: python benchmarks/bench_darb.py [--size 4096] [--small 256] [--repeats 5] [--json OUT]

Layers: Gaussian weights pruned by DARB at target 0.9 (max_block 64) and by BMWM with
b = 16 (sparsity 0.9375, the BMWM rate nearest above 0.9). Timed, median (and min) of
``--repeats`` runs after one warm-up run (JIT compile): ``encode`` of the pruned layer
(the format's numba kernels), ``compress`` (prune + encode from the dense layer) and
``decode``. Rates are dense weights m·n per second. Baselines in the same run: a
plain-numpy encode of the same algorithm (reshape / argmax per block size) on the same
layer, and a pure-Python loop on a ``--small``×``--small`` layer; ratio = numba rate /
baseline rate.
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
from timing import timings

from codesign.files import write_json
from codesign.models.darb import BmwmFormat, DarbFormat
from codesign.models.format import Format
from codesign.models.specs import BmwmSpec, DarbSpec, Spec
from codesign.models.workloads import gaussian


def numpy_encode(w: np.ndarray, cap: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Plain-numpy one-per-block encode: per row the largest block 2^k ≤ cap holding at
    most one non-zero per block (cap = the BMWM b for a fixed size), then per block
    size the reshape / argmax of |w|. Returns (log2 b_r, rows, columns, values) with
    the kept slots grouped by block size."""
    m, n = w.shape
    nz = w != 0
    log_block = np.zeros(m, dtype=np.int64)
    undecided = np.ones(m, dtype=bool)
    for k in range(cap.bit_length() - 1, 0, -1):
        b = 1 << k
        pad = np.zeros((m, -n % b), dtype=bool)
        fits = (np.hstack([nz, pad]).reshape(m, -1, b).sum(axis=2) <= 1).all(axis=1)
        log_block[undecided & fits] = k
        undecided &= ~fits
    kept_rows, cols, values = [], [], []
    for k in np.unique(log_block):
        rows = np.flatnonzero(log_block == k)
        b = 1 << int(k)
        mags = np.zeros((rows.size, -(-n // b) * b), dtype=w.dtype)
        mags[:, :n] = np.abs(w[rows])
        best = mags.reshape(rows.size, -1, b).argmax(axis=2)
        col = best + np.arange(best.shape[1]) * b
        kept_rows.append(np.repeat(rows, col.shape[1]))
        cols.append(col.ravel())
        values.append(w[rows[:, None], col].ravel())
    return log_block, *(np.concatenate(a) for a in (kept_rows, cols, values))


def python_encode(w: np.ndarray, cap: int) -> tuple[list[int], list[int], list[int], list[float]]:
    """The same encode with Python loops over rows, blocks and weights."""
    m, n = w.shape
    log_blocks, kept_rows, cols, values = [], [], [], []
    for r, row in enumerate(w.tolist()):
        b = cap
        while b > 1:
            counts = [0] * (-(-n // b))
            for c, v in enumerate(row):
                if v != 0:
                    counts[c // b] += 1
            if max(counts) <= 1:
                break
            b //= 2
        log_blocks.append(b.bit_length() - 1)
        for lo in range(0, n, b):
            best = lo
            for c in range(lo, min(lo + b, n)):
                if abs(row[c]) > abs(row[best]):
                    best = c
            kept_rows.append(r)
            cols.append(best)
            values.append(row[best])
    return log_blocks, kept_rows, cols, values


def check_baselines(
    fmt: Format, pruned: np.ndarray, small: np.ndarray, spec: Spec, cap: int
) -> None:
    """Both baselines store the same slots as the format (same block sizes, same kept
    positions)."""
    for w, encode in ((pruned, numpy_encode), (small, python_encode)):
        dec = fmt.decode(fmt.encode(w, spec))
        _, rows, cols, _ = encode(w, cap)
        mask = np.zeros(w.shape, dtype=bool)
        mask[rows, cols] = True
        if not np.array_equal(mask, dec.mask):
            raise AssertionError(f"{encode.__name__} disagrees with the {fmt.name} format")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--small", type=int, default=256)
    parser.add_argument("--sparsity", type=float, default=0.9)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", metavar="OUT")
    args = parser.parse_args()

    dense = gaussian((args.size, args.size), seed=0)
    small = gaussian((args.small, args.small), seed=1)
    cases = {
        "darb": (DarbFormat(), DarbSpec(max_block=64), args.sparsity, 64),
        "bmwm": (BmwmFormat(), BmwmSpec(b=16), 1.0 - 1.0 / 16, 16),
    }
    n_weights = dense.size
    rows: dict[str, dict[str, float]] = {}
    for name, (fmt, spec, sparsity, cap) in cases.items():
        pruned, enc = fmt.compress(dense, sparsity, spec)
        t_enc = timings(lambda fmt=fmt, p=pruned, s=spec: fmt.encode(p, s), args.repeats)
        t_cmp = timings(
            lambda fmt=fmt, s=spec, sp=sparsity: fmt.compress(dense, sp, s), args.repeats
        )
        t_dec = timings(lambda fmt=fmt, e=enc: fmt.decode(e), args.repeats)
        t_np = timings(lambda p=pruned, c=cap: numpy_encode(p, c), args.repeats)
        small_pruned = fmt.compress(small, sparsity, spec)[0]
        t_py = timings(lambda p=small_pruned, c=cap: python_encode(p, c), max(args.repeats // 2, 1))
        check_baselines(fmt, pruned, small_pruned, spec, cap)
        rate = n_weights / statistics.median(t_enc)
        rows[name] = {
            "sparsity": float(enc.extras["sparsity"]),
            "encode_s": statistics.median(t_enc),
            "encode_min_s": min(t_enc),
            "encode_weights_per_s": rate,
            "compress_s": statistics.median(t_cmp),
            "compress_weights_per_s": n_weights / statistics.median(t_cmp),
            "decode_s": statistics.median(t_dec),
            "decode_weights_per_s": n_weights / statistics.median(t_dec),
            "numpy_encode_s": statistics.median(t_np),
            "numpy_weights_per_s": n_weights / statistics.median(t_np),
            "python_encode_s": statistics.median(t_py),
            "python_weights_per_s": small.size / statistics.median(t_py),
        }
        rows[name]["vs_numpy"] = rate / rows[name]["numpy_weights_per_s"]
        rows[name]["vs_python"] = rate / rows[name]["python_weights_per_s"]
    print(
        f"{args.size}x{args.size} float32, target sparsity {args.sparsity} (BMWM b=16), "
        f"median of {args.repeats} runs; Python loop on {args.small}x{args.small}"
    )
    header = (
        "format",
        "sparsity",
        "enc Mw/s",
        "compress Mw/s",
        "dec Mw/s",
        "numpy Mw/s",
        "python Mw/s",
        "x numpy",
        "x python",
    )
    print(("{:8}" + "{:>14}" * 8).format(*header))
    for name, r in rows.items():
        print(
            ("{:8}" + "{:>14.4f}" + "{:>14.1f}" * 4 + "{:>14.3f}" + "{:>14.1f}" * 2).format(
                name,
                r["sparsity"],
                r["encode_weights_per_s"] / 1e6,
                r["compress_weights_per_s"] / 1e6,
                r["decode_weights_per_s"] / 1e6,
                r["numpy_weights_per_s"] / 1e6,
                r["python_weights_per_s"] / 1e6,
                r["vs_numpy"],
                r["vs_python"],
            )
        )
    if args.json:
        write_json(args.json, {"size": args.size, "small": args.small, "rows": rows})


if __name__ == "__main__":
    main()
