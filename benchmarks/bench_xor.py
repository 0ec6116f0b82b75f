"""Speed of XOR-gate plane encoding (codesign.models.xor.encode_planes) against plain NumPy.

Usage: python benchmarks/bench_xor.py [--repeats N] [--seed S] [--json OUT]

One bit-plane of random data bits with a Bernoulli(1 − S) care mask, S = 0.9,
n_in = 8, n_out = 64. Rates are plane positions (weights) encoded per second, medians
of ``--repeats`` runs after a JIT warm-up. Targets: n_s = 1 ≥ 2 M weights/s,
n_s = 2 ≥ 200 k weights/s.

Timed, all on the same random planes:

* ``encode_planes``: the whole plane encoder (packing, search, patch lists) — the
  figure the targets apply to;
* ``search``: the numba search alone on packed block words, and for n_s = 2 also
  ``direct search`` with the direct trellis step only (``max_care=-1``);
* ``numpy search``: the same search written with NumPy arrays on the same packed
  words. n_s = 1: the fewest mismatched care bits per block over all 2^n_in inputs
  (table of M·x for every x, XOR with the block, popcount of the care bits, minimum),
  vectorized over blocks; the numba search reaches the same minimum by GF(2)
  elimination, searching all inputs only for inconsistent blocks. n_s = 2: the
  trellis, one block at a time, every (previous input, input) transition as a
  2^n_in × 2^n_in cost array, then traceback — the algorithm of ``direct search``;
  the numba ``search`` replaces that step by a distance transform on blocks with
  few care bits.

The n_s = 2 NumPy and direct searches run on the first ``--numpy-weights`` positions
(the work per block does not depend on the plane length, so rates compare). Before
timing, every numba search must find the NumPy search's number of patches on those
positions, or the script stops.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
from pathlib import Path

import numba
import numpy as np
from timing import measure

from codesign.files import write_json
from codesign.models.gf2 import pack
from codesign.models.specs import XorSpec
from codesign.models.xor import encode_planes, xor_matrix
from codesign.models.xor_encode import encode_blocks, input_tables, pack_columns

SPARSITY = 0.9
N_IN = 8
N_OUT = 64
TARGETS = {1: 2e6, 2: 2e5}


@dataclass(frozen=True)
class Rate:
    name: str
    weights: int
    median_s: float
    min_s: float
    target_weights_per_s: float | None = None

    @property
    def weights_per_s(self) -> float:
        return self.weights / self.median_s


def plane(length: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One plane of random bits (1, length) and its Bernoulli care mask (length,)."""
    bits = rng.integers(0, 2, (1, length), dtype=np.uint8)
    return bits, rng.random(length) >= SPARSITY


def packed(bits: np.ndarray, care: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Block words of one plane whose length is a multiple of n_out: (B,) each."""
    data = pack(bits.reshape(-1, N_OUT))[:, 0]
    return data, pack(care.reshape(-1, N_OUT))[:, 0]


def numpy_single(spec: XorSpec, data: np.ndarray, mask: np.ndarray) -> int:
    """Patches of the n_s = 1 search in NumPy: per block, the fewest mismatches over
    all inputs (chunks of blocks × 2^n_in)."""
    table = input_tables(pack_columns(xor_matrix(spec)), N_IN, 1)[0, :, 0]
    total = 0
    for lo in range(0, data.size, 2048):
        d, c = data[lo : lo + 2048, None], mask[lo : lo + 2048, None]
        wrong = np.bitwise_count((table[None, :] ^ d) & c)
        total += int(wrong.min(axis=1).sum())
    return total


def numpy_trellis(spec: XorSpec, data: np.ndarray, mask: np.ndarray) -> int:
    """Patches of the n_s = 2 trellis search in NumPy, segment by segment."""
    tables = input_tables(pack_columns(xor_matrix(spec)), N_IN, 2)[:, :, 0]
    return sum(
        numpy_trellis_segment(tables, data[lo : lo + spec.segment], mask[lo : lo + spec.segment])
        for lo in range(0, data.size, spec.segment)
    )


def numpy_trellis_segment(tables: np.ndarray, data: np.ndarray, mask: np.ndarray) -> int:
    """One segment: direct transitions block by block, traceback, re-decode."""
    n_x = 1 << N_IN
    prev = np.full(n_x, np.iinfo(np.int64).max // 2)
    prev[0] = 0
    back = np.empty((data.size, n_x), dtype=np.int64)
    for t in range(data.size):
        base = (tables[1] ^ data[t])[:, None]
        cost = prev[:, None] + np.bitwise_count((base ^ tables[0][None, :]) & mask[t])
        back[t] = cost.argmin(axis=0)
        prev = cost[back[t], np.arange(n_x)]
    inputs = np.empty(data.size, dtype=np.int64)
    s = int(prev.argmin())
    for t in range(data.size - 1, -1, -1):
        inputs[t] = s
        s = int(back[t, s])
    earlier = np.concatenate([[0], inputs[:-1]])
    y = tables[0][inputs] ^ tables[1][earlier]
    return int(np.bitwise_count((y ^ data) & mask).sum())


def numba_search(spec: XorSpec, data: np.ndarray, mask: np.ndarray, **kw: int) -> int:
    """Patches of the numba search on packed words (no packing, no patch lists)."""
    _, residual = encode_blocks(
        data[None, :, None], mask[:, None], xor_matrix(spec), N_IN, spec.n_s, spec.segment, **kw
    )
    return int(np.bitwise_count(residual).sum())


def run(repeats: int, seed: int, numpy_weights: int) -> list[Rate]:
    rng = np.random.default_rng(seed)
    rates = []
    for n_s, length in ((1, 1 << 22), (2, 1 << 20)):
        spec = XorSpec(n_in=N_IN, n_out=N_OUT, n_s=n_s)
        bits, care = plane(length, rng)
        data, mask = packed(bits, care)
        small = numpy_weights // N_OUT
        baseline, numpy_blocks = (numpy_single, data.size) if n_s == 1 else (numpy_trellis, small)
        variants = [("search", data.size, {})]
        if n_s == 2:
            variants.append(("direct search", small, {"max_care": -1}))
        expect = baseline(spec, data[:small], mask[:small])
        for label, _, kw in variants:
            if numba_search(spec, data[:small], mask[:small], **kw) != expect:
                raise RuntimeError(f"n_s={n_s}: numba {label} and NumPy disagree on patches")

        t = measure(lambda spec=spec, b=bits, c=care: encode_planes(b, c, spec), repeats)
        rates.append(Rate(f"numba n_s={n_s} encode_planes", length, *t, TARGETS[n_s]))
        for label, blocks, kw in variants:
            d, c = data[:blocks], mask[:blocks]
            t = measure(lambda s=spec, d=d, c=c, kw=kw: numba_search(s, d, c, **kw), repeats)
            rates.append(Rate(f"numba n_s={n_s} {label}", blocks * N_OUT, *t))
        d, c = data[:numpy_blocks], mask[:numpy_blocks]
        t = measure(lambda f=baseline, s=spec, d=d, c=c: f(s, d, c), max(1, repeats // 2))
        rates.append(Rate(f"numpy n_s={n_s} search", numpy_blocks * N_OUT, *t))
    return rates


def format_table(rates: list[Rate], ratios: dict[str, float]) -> str:
    lines = [
        f"S={SPARSITY} n_in={N_IN} n_out={N_OUT}, one plane, numba threads "
        f"{numba.get_num_threads()}",
        f"{'encoder':<30} {'weights':>9} {'median s':>9} {'min s':>9} {'Mweights/s':>11} "
        f"{'target':>8}",
    ]
    for r in rates:
        target = f"{r.target_weights_per_s / 1e6:.1f}" if r.target_weights_per_s else "-"
        lines.append(
            f"{r.name:<30} {r.weights:>9} {r.median_s:>9.4f} {r.min_s:>9.4f} "
            f"{r.weights_per_s / 1e6:>11.3f} {target:>8}"
        )
    lines += [f"{k}: {v:.1f}x" for k, v in ratios.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per case")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random planes")
    parser.add_argument(
        "--numpy-weights",
        type=int,
        default=1 << 16,
        help="plane length of the NumPy baselines (multiple of 64)",
    )
    parser.add_argument("--json", type=Path, metavar="OUT", help="write the figures as JSON")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    if args.numpy_weights < N_OUT or args.numpy_weights % N_OUT:
        parser.error(f"--numpy-weights must be a positive multiple of {N_OUT}")
    rates = run(args.repeats, args.seed, args.numpy_weights)
    rate = {r.name: r.weights_per_s for r in rates}
    ratios = {
        "numba / numpy search, n_s=1": rate["numba n_s=1 search"] / rate["numpy n_s=1 search"],
        "numba / numpy search, n_s=2": rate["numba n_s=2 search"] / rate["numpy n_s=2 search"],
        "numba direct / numpy search, n_s=2": rate["numba n_s=2 direct search"]
        / rate["numpy n_s=2 search"],
    }
    print(format_table(rates, ratios))
    if args.json is not None:
        payload = {
            "repeats": args.repeats,
            "seed": args.seed,
            "threads": numba.get_num_threads(),
            "rates": [asdict(r) | {"weights_per_s": r.weights_per_s} for r in rates],
            "ratios": ratios,
        }
        write_json(args.json, payload)


if __name__ == "__main__":
    main()
