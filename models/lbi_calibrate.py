"""Importance scores of low-rank binary indexing and the calibration of their threshold.

A reconstruction [ours] of the method of Lee, Kwon, Kim, Kapoor and Wei (2019), see
REFERENCES §3; the factorization itself is :mod:`codesign.models.lbi_factorize`.

**Ranked magnitudes** (:func:`ranked_magnitudes`). A weight's importance score is
r − θ, with θ the threshold and r = |w| + ε·t its ranked magnitude: t ∈ (0, 1) orders
the weights by the |w| mass of their row, then of their column (t = (ρ·n + γ + ½) /
(m·n), ρ the rank of the row by Σ|w| ascending, γ the column's, ties by index), and ε
is half the smallest gap between two distinct |w| (½ for integer weights). So r keeps
the order of distinct magnitudes and breaks every tie: among equal |w| the weights of
heavier rows, then heavier columns, rank higher. Quantized weights tie massively — an
int8 layer with outliers can keep 4 % at |q| ≥ 2 and 45 % at |q| ≥ 1 — and a threshold
on |w| alone moves a whole level at once, so a target between two levels would be out
of reach. With the tie-break a threshold inside a level keeps that level's weights row
by row, which a binary factor covers with one rank per group of rows. For float
weights ε is below every difference of magnitudes: only exact ties are ordered.

**Threshold at a position** (:func:`threshold_at`): position q ∈ [0, m·n] of the
sorted ranked magnitudes puts the threshold between the q-th and the (q+1)-th, so
exactly the q smallest score below zero.

**Search** (:func:`calibrate`). The target is the kept count of magnitude pruning,
m·n − round(sparsity·m·n); the allowed miss max(1, tolerance·target). The first
probe is q = round(sparsity·m·n); the kept count falls as q rises, not strictly (each
probe is a new local optimum): the next q follows the secant through the last two
probes (a slope of −1 after the first), kept inside the bracket of the probes that kept
too many and too few (its midpoint when the secant lands on a probe; the position of
the midpoint threshold when the secant has not halved the bracket twice in a row — the
kept count jumps there, e.g. across the gap between two quantization levels, which is
one position wide but a large step of the threshold), until a probe is within the
allowed miss, ``max_probes`` probes, or the bracket is narrower than
:data:`CALIBRATION_RESOLUTION`. With ``init="best"`` the kept count can jump over the
target where tiles switch between the two starts; a search that misses is repeated
with ``svd`` and then with ``deflation`` alone, and the closest result is kept.

**Sample of tiles.** A matrix with at least 4·``sample`` full tiles (default
:data:`SAMPLE_TILES`) runs the search on ``sample`` full tiles (1/:data:`SAMPLE_SHARE`
of them when that is more), evenly spaced in row-major tile order and stacked into a
sample matrix: tiles are factorized
independently, so the sample's kept count times (m·n / sample weights) estimates the
matrix's, at the same threshold (positions refer to the whole matrix's sorted ranked
magnitudes). The sample is searched to a quarter of the allowed miss, then the whole
matrix is factorized at the best position. If that misses the allowed count, the
sample search continues toward target − (whole kept − sample estimate there) and the
whole matrix is factorized once more; the closer of the two is the result — at most
two factorizations of the whole matrix.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from codesign.models.lbi_factorize import MAX_ITERS, Factorization, factorize

CALIBRATION_RESOLUTION = 1e-3
"""The search stops once its bracket is narrower than this (threshold positions, units
of one weight of the sorted magnitudes)."""
SAMPLE_TILES = 64
"""Full tiles in the calibration sample of a large matrix (see the module docstring)."""
SAMPLE_SHARE = 16
"""A matrix of more than SAMPLE_SHARE × SAMPLE_TILES full tiles samples 1/SAMPLE_SHARE
of them (a smaller sample's kept count scatters by ~2 % and costs a second whole
factorization more often than its probes save)."""
_SAMPLE_TOLERANCE = 0.25
"""The sample is searched to this fraction of the allowed miss."""


def ranked_magnitudes(weights: np.ndarray) -> np.ndarray:
    """|w| + ε·t, float64 (m, n): the magnitudes with every tie broken by the row, then
    column, |w| mass (see the module docstring)."""
    mags = np.abs(weights, dtype=np.float64)
    m, n = mags.shape
    if np.issubdtype(weights.dtype, np.integer):
        gap = 1.0
    else:
        levels = np.unique(mags)
        gaps = np.diff(levels)
        gap = float(gaps.min()) if gaps.size else max(float(levels[-1]), 1.0)
    epsilon = 0.5 * gap
    rows = np.argsort(np.argsort(mags.sum(axis=1), kind="stable"), kind="stable")
    cols = np.argsort(np.argsort(mags.sum(axis=0), kind="stable"), kind="stable")
    order = rows[:, np.newaxis] * n + cols[np.newaxis, :]
    return mags + epsilon * ((order + 0.5) / (m * n))


def threshold_at(sorted_mags: np.ndarray, position: float) -> float:
    """The magnitude threshold at ``position`` q ∈ [0, size] of ``sorted_mags`` (ascending
    |w|, float64), units of the weights. An integer q puts it midway between the q-th and
    the (q+1)-th smallest magnitude, so exactly the q smallest are below it; between
    integers it is linear in q; q ≤ 0 (≥ size) is 1e-9·max(|w|max, 1) below the smallest
    (above the largest) magnitude."""
    size = sorted_mags.size
    margin = 1e-9 * max(float(sorted_mags[-1]), 1.0)
    low, high = float(sorted_mags[0]), float(sorted_mags[-1])
    if position <= 0.5:
        return low - margin * max(0.0, 1.0 - 2.0 * position)
    if position >= size - 0.5:
        return high + margin * max(0.0, 2.0 * position - 2.0 * size + 1.0)
    k = int(np.floor(position - 0.5))
    frac = position - 0.5 - k
    return float(sorted_mags[k] + frac * (sorted_mags[k + 1] - sorted_mags[k]))


def importance_scores(weights: np.ndarray, threshold: float) -> np.ndarray:
    """score = |w| − threshold, float64 (m, n), units of the weights: weights above the
    threshold add to the objective when kept, weights below subtract."""
    return np.abs(weights, dtype=np.float64) - threshold


def target_scores(weights: np.ndarray) -> np.ndarray:
    """Scores that make the non-zeros of ``weights`` (a pruned matrix) the target [ours]:
    |w| at a non-zero, −mean(|w| of the non-zeros) at a zero (−1 if all are zero), so
    keeping a pruned position costs what an average kept weight gains. float64 (m, n)."""
    mags = np.abs(weights, dtype=np.float64)
    nonzero = mags > 0
    penalty = float(mags[nonzero].mean()) if nonzero.any() else 1.0
    return np.where(nonzero, mags, -penalty)


@dataclasses.dataclass(frozen=True, eq=False)
class Probe:
    """One calibration probe: the threshold ``threshold`` (units of the weights) at
    ``position`` of the sorted ranked magnitudes (:func:`threshold_at`) gave a mask
    keeping ``kept`` weights — of the whole matrix, or estimated from the sample of
    tiles when ``sampled``."""

    position: float
    threshold: float
    kept: int
    sampled: bool = False


@dataclasses.dataclass(frozen=True, eq=False)
class Calibration:
    """The factorization closest to the target kept count, and every probe tried.

    ``target``: kept weights asked for; ``tolerance``: the allowed miss in weights;
    ``best``: the probe of ``factorization`` (of the whole matrix); ``scores``: the
    (m, n) scores it maximised; ``init``: the initialisation that produced it;
    ``probes``: every probe, in order.
    """

    factorization: Factorization
    scores: np.ndarray
    best: Probe
    target: int
    tolerance: int
    init: str
    probes: tuple[Probe, ...]

    @property
    def reached(self) -> bool:
        """The kept count is within the tolerance of the target."""
        return abs(self.best.kept - self.target) <= self.tolerance


_Run = tuple[Probe, Factorization, np.ndarray]


class _Measure:
    """The factorization at a position: of ``ranked`` (the whole matrix, or the
    stacked sample of tiles), its kept count scaled by ``scale`` to the whole matrix."""

    def __init__(
        self, ranked: np.ndarray, sorted_mags: np.ndarray, scale: float, init: str, args: tuple
    ) -> None:
        self.ranked, self.sorted_mags, self.scale = ranked, sorted_mags, scale
        self.init, self.args = init, args

    def __call__(self, position: float) -> _Run:
        threshold = threshold_at(self.sorted_mags, position)
        scores = self.ranked - threshold
        fact = factorize(scores, *self.args, init=self.init)
        kept = int(np.count_nonzero(fact.mask()))
        if self.scale != 1.0:
            kept = round(kept * self.scale)
        return Probe(position, threshold, kept, self.scale != 1.0), fact, scores


@dataclasses.dataclass
class _Search:
    """One threshold search: its new probes in order, the probe closest to ``target``
    (new or seen before) and its run (None when it was seen before)."""

    target: int
    probes: list[Probe]
    best: Probe
    run: _Run | None


def calibrate(
    weights: np.ndarray,
    sparsity: float,
    rank: int,
    tile_rows: int,
    tile_cols: int,
    semiring: str = "bool",
    tolerance: float = 0.01,
    max_probes: int = 16,
    max_iters: int = MAX_ITERS,
    init: str = "best",
    sample: int | None = SAMPLE_TILES,
) -> Calibration:
    """Search the score threshold until the mask keeps the target count of weights
    (module docstring): ``tolerance`` is the allowed miss as a fraction of the target,
    ``max_probes`` the probes per search, ``max_iters`` and ``init`` those of
    :func:`codesign.models.lbi_factorize.factorize`, ``sample`` the tiles of the
    calibration sample (None: always search on the whole matrix)."""
    ranked = ranked_magnitudes(weights)
    sorted_mags = np.sort(ranked, axis=None)
    size = sorted_mags.size
    target = size - round(sparsity * size)
    allowed = max(1, int(tolerance * target))
    args = (rank, tile_rows, tile_cols, semiring, max_iters)
    inits = [init] + (["svd", "deflation"] if init == "best" else [])
    tiles = _sample_tiles(ranked.shape, tile_rows, tile_cols, sample)
    if tiles is None:
        measures = [_Measure(ranked, sorted_mags, 1.0, name, args) for name in inits]
        searches = _searches(measures, size, target, allowed, max_probes)
        chosen = _closest(searches, target)
        run = searches[chosen].run
        assert run is not None
        probe, fact, scores = run
        probes = tuple(p for s in searches for p in s.probes)
        return Calibration(fact, scores, probe, target, allowed, inits[chosen], probes)
    stacked = np.concatenate([ranked[r0 : r0 + tile_rows, c0 : c0 + tile_cols] for r0, c0 in tiles])
    measures = [_Measure(stacked, sorted_mags, size / stacked.size, name, args) for name in inits]
    close = max(1, int(_SAMPLE_TOLERANCE * allowed))
    searches = _searches(measures, size, target, close, max_probes)
    chosen = _closest(searches, target)
    search = searches[chosen]
    whole = _Measure(ranked, sorted_mags, 1.0, inits[chosen], args)
    runs = [whole(search.best.position)]
    if abs(runs[0][0].kept - target) > allowed:
        aim = target - (runs[0][0].kept - search.best.kept)
        again = _search(measures[chosen], size, aim, close, max_probes, search.probes)
        search.probes += again.probes
        if again.best.position != search.best.position:
            runs.append(whole(again.best.position))
    probe, fact, scores = min(runs, key=lambda run: abs(run[0].kept - target))
    probes = [p for s in searches for p in s.probes] + [run[0] for run in runs]
    return Calibration(fact, scores, probe, target, allowed, inits[chosen], tuple(probes))


def _closest(searches: list[_Search], target: int) -> int:
    """Index of the search whose best probe is closest to ``target`` (the first on ties)."""
    return min(range(len(searches)), key=lambda i: abs(searches[i].best.kept - target))


def _sample_tiles(
    shape: tuple[int, int], tile_rows: int, tile_cols: int, sample: int | None
) -> list[tuple[int, int]] | None:
    """(first row, first column) of the calibration sample's tiles — ``sample`` full
    tiles, or 1/:data:`SAMPLE_SHARE` of them when that is more — or None when the matrix
    has fewer than 4·``sample`` full tiles."""
    full_across = shape[1] // tile_cols
    count = (shape[0] // tile_rows) * full_across
    if sample is None or count < 4 * sample:
        return None
    size = max(sample, count // SAMPLE_SHARE)
    picks = (np.arange(size) * count) // size
    return [(int(t // full_across) * tile_rows, int(t % full_across) * tile_cols) for t in picks]


def _searches(
    measures: list[_Measure], size: int, target: int, allowed: int, max_probes: int
) -> list[_Search]:
    """The search with each measure's initialisation in turn, until one reaches the
    allowed miss."""
    searches = []
    for measure in measures:
        searches.append(_search(measure, size, target, allowed, max_probes, []))
        if abs(searches[-1].best.kept - target) <= allowed:
            break
    return searches


def _search(
    measure: _Measure,
    size: int,
    target: int,
    allowed: int,
    max_probes: int,
    seen: list[Probe],
) -> _Search:
    """One threshold search (module docstring) toward ``target``; ``seen``: probes of an
    earlier search of the same measure, which set the bracket and the first secant."""
    probes: list[Probe] = []
    history = list(seen)
    lo, hi = -1.0, size + 1.0
    for p in history:
        lo, hi = (max(lo, p.position), hi) if p.kept > target else (lo, min(hi, p.position))
    q = _next_probe(history, lo, hi, target, size) if history else float(size - target)
    best = min(history, key=lambda p: abs(p.kept - target), default=None)
    best_run = None
    stalls = 0
    while q is not None and len(probes) < max_probes:
        run = measure(q)
        probe = run[0]
        probes.append(probe)
        history.append(probe)
        if best is None or abs(probe.kept - target) < abs(best.kept - target):
            best, best_run = probe, run
        if abs(probe.kept - target) <= allowed:
            break
        width = hi - lo
        if probe.kept > target:
            lo = q
        else:
            hi = q
        stalls = stalls + 1 if hi - lo > 0.5 * width else 0
        middle = None
        if stalls >= 2 and lo >= 0 and hi <= size:
            middle = _middle(measure.sorted_mags, lo, hi)
        q = _next_probe(history, lo, hi, target, size, middle)
    assert best is not None
    return _Search(target, probes, best, best_run)


def _middle(sorted_mags: np.ndarray, lo: float, hi: float) -> float:
    """The position inside (lo, hi) whose threshold is midway between theirs: bisection
    in threshold, which crosses a gap between magnitude levels (one position wide, a
    large threshold step) in a few probes where bisection in position would not."""
    low, high = threshold_at(sorted_mags, lo), threshold_at(sorted_mags, hi)
    middle = 0.5 * (low + high)
    k = int(np.searchsorted(sorted_mags, middle, side="right")) - 1
    if not 0 <= k < sorted_mags.size - 1 or sorted_mags[k + 1] == sorted_mags[k]:
        return 0.5 * (lo + hi)
    q = k + 0.5 + (middle - sorted_mags[k]) / (sorted_mags[k + 1] - sorted_mags[k])
    return q if lo < q < hi else 0.5 * (lo + hi)


def _next_probe(
    probes: list[Probe],
    lo: float,
    hi: float,
    target: int,
    size: int,
    middle: float | None = None,
) -> float | None:
    """The next position inside the bracket [lo, hi] (lo = -1 / hi = size + 1: not
    bracketed yet) that is not a probe yet, or None when the bracket is too narrow: the
    secant of the last two probes; ``middle`` instead when given (the secant has not
    halved the bracket twice in a row: the kept count jumps there); the bracket's
    midpoint when the guess lands on a probe."""
    lower, upper = max(lo, 0.0), min(hi, float(size))
    if upper - lower < CALIBRATION_RESOLUTION:
        return None
    seen = {p.position for p in probes}
    a, b = probes[-2:] if len(probes) > 1 else (probes[-1], probes[-1])
    slope = -1.0
    if (b.kept - a.kept) * (b.position - a.position) < 0:
        slope = (b.kept - a.kept) / (b.position - a.position)
    guess = min(max(b.position + (target - b.kept) / slope, lower), upper)
    if middle is not None:
        guess = middle
    if guess in seen:
        guess = 0.5 * (lower + upper)
    return None if guess in seen else guess
