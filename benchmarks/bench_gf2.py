"""Speed of codesign.models.gf2 on large random systems, against a plain NumPy uint8 baseline.

Usage: python benchmarks/bench_gf2.py [--repeats N] [--json OUT]
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from timing import measure

from codesign.files import write_json
from codesign.models import gf2

BASELINE_SIZE = 256


@dataclass(frozen=True)
class Timing:
    name: str
    shape: str
    median_s: float
    min_s: float
    target_s: float | None = None


def numpy_rank(a: np.ndarray) -> int:
    """Rank mod 2 by row elimination on an unpacked uint8 array, vectorized over rows."""
    r = a.astype(np.uint8, copy=True)
    row = 0
    for col in range(r.shape[1]):
        if row == r.shape[0]:
            break
        hits = np.flatnonzero(r[row:, col])
        if hits.size == 0:
            continue
        p = row + hits[0]
        r[[row, p]] = r[[p, row]]
        below = row + 1 + np.flatnonzero(r[row + 1 :, col])
        r[below] ^= r[row]
        row += 1
    return row


def warm_up() -> None:
    a = np.eye(70, dtype=np.uint8)
    gf2.rank(a)
    gf2.solve(a, a[0])
    gf2.matmul(a, a)


def run(repeats: int, seed: int) -> list[Timing]:
    rng = np.random.default_rng(seed)
    a1024 = rng.integers(0, 2, (1024, 1024), dtype=np.uint8)
    b1024 = rng.integers(0, 2, (1024, 1024), dtype=np.uint8)
    a2048 = rng.integers(0, 2, (2048, 2048), dtype=np.uint8)
    rhs2048 = rng.integers(0, 2, 2048, dtype=np.uint8)
    small = rng.integers(0, 2, (BASELINE_SIZE, BASELINE_SIZE), dtype=np.uint8)
    if numpy_rank(small) != gf2.rank(small):
        raise RuntimeError("NumPy baseline and gf2.rank disagree")
    cases = [
        ("gf2.rank", "1024x1024", lambda: gf2.rank(a1024), 0.05),
        ("gf2.solve", "2048x2048", lambda: gf2.solve(a2048, rhs2048), 0.5),
        ("gf2.matmul", "1024x1024 @ 1024x1024", lambda: gf2.matmul(a1024, b1024), None),
        ("gf2.rank", f"{BASELINE_SIZE}x{BASELINE_SIZE}", lambda: gf2.rank(small), None),
        ("numpy uint8 rank", f"{BASELINE_SIZE}x{BASELINE_SIZE}", lambda: numpy_rank(small), None),
    ]
    return [Timing(name, shape, *measure(fn, repeats), target) for name, shape, fn, target in cases]


def format_table(timings: list[Timing], speedup: float) -> str:
    lines = [f"{'benchmark':<18} {'shape':<22} {'median ms':>10} {'min ms':>9} {'target ms':>10}"]
    for t in timings:
        target = f"{t.target_s * 1e3:.0f}" if t.target_s is not None else "-"
        lines.append(
            f"{t.name:<18} {t.shape:<22} {t.median_s * 1e3:>10.2f} {t.min_s * 1e3:>9.2f} "
            f"{target:>10}"
        )
    lines.append(f"numpy / gf2 rank at {BASELINE_SIZE}x{BASELINE_SIZE} (median): {speedup:.0f}x")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per case")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random systems")
    parser.add_argument("--json", type=Path, metavar="OUT", help="write the figures as JSON")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    warm_up()
    timings = run(args.repeats, args.seed)
    by_name = {(t.name, t.shape): t.median_s for t in timings}
    size = f"{BASELINE_SIZE}x{BASELINE_SIZE}"
    speedup = by_name[("numpy uint8 rank", size)] / by_name[("gf2.rank", size)]
    print(format_table(timings, speedup))
    if args.json is not None:
        payload = {
            "repeats": args.repeats,
            "seed": args.seed,
            "timings": [asdict(t) for t in timings],
            "numpy_over_gf2_rank_speedup": speedup,
        }
        write_json(args.json, payload)


if __name__ == "__main__":
    main()
