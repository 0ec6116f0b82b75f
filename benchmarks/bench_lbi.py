"""Speed of the LBI factorization (codesign.models.lbi_factorize) against plain NumPy updates.

Usage: python benchmarks/bench_lbi.py [--repeats N] [--small N] [--json OUT]

Cases, each the median (and min) of ``--repeats`` runs after a JIT warm-up:

* ``factorize``: one factorization of a 1024×1024 gaussian matrix, 64×64 tiles,
  rank 8, on the scores |w| − θ with θ the magnitude threshold of 90 % sparsity, per
  semiring, with the default initialisation (``best``: two starts per tile) and with
  ``svd`` alone. Target: ≤ 10 s.
* ``compress``: :meth:`codesign.models.lbi.LbiFormat.compress` of the same matrix to 90 %
  sparsity (threshold calibration = several factorizations).
* ``updates``: the alternating updates alone (row pass, column pass, until nothing
  changes), on a ``--small``² matrix, from the same ``svd`` initialisation of every
  tile (``init_codes``, not timed): the numba kernel ``update_codes`` (one thread; the
  matrix products of the NumPy version may use every core of the BLAS) and
  the same updates written in NumPy — per tile and half step, the value of all 2^rank
  codes of every row as one matrix product scores @ cover.T, cover (2^rank, b) the mask
  row of each code. The objectives must agree; the ratio is NumPy time / numba time.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from codesign.files import write_json
from codesign.models.lbi import LbiFormat
from codesign.models.lbi_calibrate import importance_scores, threshold_at
from codesign.models.lbi_factorize import factorize, init_codes, tile_counts, update_codes
from codesign.models.specs import LbiSpec
from codesign.models.workloads import gaussian

SIZE, TILE, RANK, SPARSITY = 1024, 64, 8, 0.9
TARGET_S = 10.0


@dataclass(frozen=True)
class Timing:
    case: str
    semiring: str
    shape: str
    median_s: float
    min_s: float
    objective: float
    target_s: float | None = None


def measure(fn: Callable[[], float], repeats: int) -> tuple[float, float, float]:
    """(median s, min s, last value) of ``repeats`` timed calls of ``fn`` after a warm-up."""
    value = fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times), value


def scores_at(w: np.ndarray, sparsity: float) -> np.ndarray:
    """|w| − θ, θ the magnitude threshold of ``sparsity``."""
    mags = np.sort(np.abs(w, dtype=np.float64), axis=None)
    return importance_scores(w, threshold_at(mags, round(sparsity * w.size)))


def cover_table(col_codes: np.ndarray, rank: int, gf2: bool) -> np.ndarray:
    """(2^rank, b) float64: 1 where code c covers column j (column codes ``col_codes``)."""
    both = np.arange(2**rank)[:, None] & col_codes[None, :]
    if not gf2:
        return (both != 0).astype(np.float64)
    parity = np.zeros_like(both)
    for r in range(rank):
        parity ^= (both >> r) & 1
    return parity.astype(np.float64)


def numpy_update(scores: np.ndarray, other: np.ndarray, codes: np.ndarray, rank: int, gf2: bool):
    """The exact row update, vectorised over rows and the 2^rank codes (same rule as the
    numba kernel: the first best code replaces the current one if it beats it by more than
    1e-12·Σ|row|). Returns (new codes, changed, objective)."""
    values = scores @ cover_table(other, rank, gf2).T
    rows = np.arange(len(codes))
    best = values.argmax(axis=1)
    current = values[rows, codes]
    better = values[rows, best] > current + 1e-12 * np.abs(scores).sum(axis=1)
    new = np.where(better, best, codes)
    return new, bool(better.any()), float(values[rows, new].sum())


def initial_tiles(scores: np.ndarray, rank: int, tile: int, gf2: bool) -> list[tuple]:
    """(tile scores, row codes, column codes) of every tile after the ``svd``
    initialisation (``init_codes``)."""
    down, across = tile_counts(scores.shape, tile, tile)
    tiles = []
    for ti in range(down):
        for tj in range(across):
            s = np.ascontiguousarray(
                scores[ti * tile : (ti + 1) * tile, tj * tile : (tj + 1) * tile]
            )
            p = np.zeros(s.shape[0], np.int64)
            z = np.zeros(s.shape[1], np.int64)
            init_codes(s, rank, gf2, False, p, z)
            tiles.append((s, p, z))
    return tiles


def refine_numba(tiles: list[tuple], rank: int, gf2: bool, max_iters: int = 50) -> float:
    """Σ over tiles of the final objective of the numba updates (one thread)."""
    total = 0.0
    for s, p0, z0 in tiles:
        st = np.ascontiguousarray(s.T)
        p, z = p0.copy(), z0.copy()
        objective = 0.0
        for _ in range(max_iters):
            rows_changed, objective = update_codes(st, z, p, rank, gf2)
            cols_changed, objective = update_codes(s, p, z, rank, gf2)
            if not (rows_changed or cols_changed):
                break
        total += objective
    return total


def refine_numpy(tiles: list[tuple], rank: int, gf2: bool, max_iters: int = 50) -> float:
    """Σ over tiles of the final objective of the NumPy updates."""
    total = 0.0
    for s, p, z in tiles:
        objective = 0.0
        for _ in range(max_iters):
            p, rows_changed, objective = numpy_update(s, z, p, rank, gf2)
            z, cols_changed, objective = numpy_update(s.T, p, z, rank, gf2)
            if not (rows_changed or cols_changed):
                break
        total += objective
    return total


def run(repeats: int, small: int) -> tuple[list[Timing], dict[str, float]]:
    w = gaussian((SIZE, SIZE), 0)
    scores = scores_at(w, SPARSITY)
    w_small = gaussian((small, small), 1)
    scores_small = scores_at(w_small, SPARSITY)
    fmt = LbiFormat()
    timings, ratios = [], {}
    big = f"{SIZE}x{SIZE}"
    for semiring in ("bool", "gf2"):
        gf2 = semiring == "gf2"
        for init in ("best", "svd"):
            med, low, obj = measure(
                lambda init=init, semiring=semiring: (
                    factorize(scores, RANK, TILE, TILE, semiring, init=init).objective
                ),
                repeats,
            )
            timings.append(Timing(f"factorize ({init})", semiring, big, med, low, obj, TARGET_S))
        spec = LbiSpec(rank=RANK, tile_rows=TILE, tile_cols=TILE, semiring=semiring)
        med, low, obj = measure(
            lambda spec=spec: fmt.compress(w, SPARSITY, spec)[1].extras["objective"], repeats
        )
        timings.append(Timing("compress (calibrated)", semiring, big, med, low, obj))
        shape = f"{small}x{small}"
        tiles = initial_tiles(scores_small, RANK, TILE, gf2)
        nb = measure(lambda tiles=tiles, gf2=gf2: refine_numba(tiles, RANK, gf2), repeats)
        npy = measure(lambda tiles=tiles, gf2=gf2: refine_numpy(tiles, RANK, gf2), repeats)
        if not np.isclose(nb[2], npy[2], rtol=1e-9):
            raise RuntimeError(f"numba and NumPy objectives differ: {nb[2]} vs {npy[2]}")
        timings.append(Timing("numba updates", semiring, shape, *nb))
        timings.append(Timing("numpy updates", semiring, shape, *npy))
        ratios[semiring] = npy[0] / nb[0]
    return timings, ratios


def format_table(timings: list[Timing], ratios: dict[str, float], small: int) -> str:
    lines = [
        f"{'case':<22} {'semiring':<8} {'shape':<10} {'median s':>9} {'min s':>8} "
        f"{'objective':>11} {'target s':>9}"
    ]
    for t in timings:
        target = f"{t.target_s:.0f}" if t.target_s is not None else "-"
        lines.append(
            f"{t.case:<22} {t.semiring:<8} {t.shape:<10} {t.median_s:>9.3f} {t.min_s:>8.3f} "
            f"{t.objective:>11.3f} {target:>9}"
        )
    for semiring, ratio in ratios.items():
        lines.append(f"numpy / numba updates at {small}x{small}, {semiring} (median): {ratio:.1f}x")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per case")
    parser.add_argument("--small", type=int, default=512, help="side of the NumPy comparison")
    parser.add_argument("--json", type=Path, metavar="OUT", help="write the figures as JSON")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    if args.small < TILE:
        parser.error(f"--small must be >= the tile size {TILE}")
    timings, ratios = run(args.repeats, args.small)
    print(
        f"LBI factorization: gaussian, {TILE}x{TILE} tiles, rank {RANK}, sparsity {SPARSITY}; "
        f"median of {args.repeats} runs after warm-up"
    )
    print(format_table(timings, ratios, args.small))
    if args.json is not None:
        payload = {
            "repeats": args.repeats,
            "tile": TILE,
            "rank": RANK,
            "sparsity": SPARSITY,
            "timings": [asdict(t) for t in timings],
            "numpy_over_numba": ratios,
        }
        write_json(args.json, payload)


if __name__ == "__main__":
    main()
