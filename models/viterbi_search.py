"""Viterbi search for the VD inputs whose mask keeps the important weights.

Reconstruction of REFERENCES §1 [ours]. Every weight w gets a score (:func:`branch_scores`)

    score(w) = tanh(S1·(|w| − θ))  for |w| ≥ θ,     tanh(S2·(|w| − θ))  for |w| < θ,

with θ a magnitude threshold (the one of the target rate; :mod:`codesign.models.viterbi` sets it
while calibrating) and S1 = ``s1``/θ, S2 = ``s2``/θ (``s1``, ``s2`` are dimensionless, so
the score does not depend on the scale of the weights). Defaults s1 = s2 = 0.5, measured
(kept |w| mass against magnitude pruning, calibrated masks, n_ff = 8, n_out = 5, a
gaussian 512×512 and the digits-MLP fc1/fc2): s = 0.5 matches s = 0.25 (the score is then
nearly linear in |w| − θ, the Lagrangian of "keep the most |w| for a given count") and
beats s = 1, 2, 4, 8 at 80 and 90 % sparsity by 0.1 to 6 points; at 95 % s = 2 is up to
1.5 points better. Averaged over the nine cases: 0.841 (s = 0.5) vs 0.834 (s = 2) vs
0.806 (s = 8). The branch metric of a VD cycle is Σ score(w_j) over the n_out
weights of the cycle that the branch's mask keeps; the path metric is the sum along the
path (maximised). The matrix is flattened row-major and cut into segments of
``spec.segment`` cycles (segment·n_out weights, the last segment shorter; positions past
the matrix end score 0); each segment is an independent trellis starting from state 0,
searched in parallel (numba ``prange``).

Trellis step (same for both versions below): for every next state S' the candidates
are the tap vectors x = S' + h·2^K, h = 0 … 2^n_in − 1 (predecessor state x >> n_in,
input x mod 2^n_in), with metric pm[x >> n_in] + branch(x). **Tie-break:** the
candidate with the lowest h wins, i.e. the lowest tap vector x = U + 2^n_in·S (the
lowest predecessor state, then the lowest input); at the end of a segment the lowest
state among those with the best metric is traced back. A branch metric is a table
lookup: the n_out-bit mask pattern of every x is precomputed (in bytes of 8 mask bits),
and each cycle builds the subset sums of its scores per byte.

Two versions share one kernel:

* :func:`viterbi_search` — float64 scores and path metrics.
* :func:`viterbi_search_fixed` — the hardware arithmetic: scores are signed
  ``score_bits``-bit integers (:func:`quantize_scores`), path metrics are
  :func:`metric_bits`-bit two's-complement integers normalised every cycle (the best
  metric of the cycle is subtracted, so metrics lie in [−2^(W−1), 0]) and clamped at
  −2^(W−1), the value every state but state 0 starts from. The add-compare-select works
  on W + 1 bits. The width makes the clamp unreachable for any state reachable from the
  segment start, so the fixed search returns exactly the optimum of the integer scores
  with the same tie-break as the float search.
"""

from __future__ import annotations

import dataclasses

import numba
import numpy as np

from codesign.models.specs import ViterbiSpec
from codesign.models.viterbi_decompressor import (
    keep_table,
    matrix_cycles,
    segment_count,
    unpack_inputs,
)

DEFAULT_S1 = 0.5
"""Slope of the score above θ, in units of 1/θ (S1 = DEFAULT_S1 / θ)."""
DEFAULT_S2 = 0.5
"""Slope of the score below θ, in units of 1/θ (S2 = DEFAULT_S2 / θ)."""
DEFAULT_SCORE_BITS = 8
"""Width of a fixed-point score (signed): 8 bits, scores in −127 … 127."""

_BYTE = 8
_PARALLEL_CYCLES = 4096
"""Smaller searches run on one thread (a parallel launch costs more than they do)."""
_LOWBIT = np.array([0] + [(p & -p).bit_length() - 1 for p in range(1, 256)], dtype=np.int64)


def branch_scores(
    weights: np.ndarray, theta: float, s1: float = DEFAULT_S1, s2: float = DEFAULT_S2
) -> np.ndarray:
    """Score of every weight, float64 of ``weights``' shape, in (−1, 1).

    ``theta`` (units of the weights, ≥ 0): the magnitude threshold; ``s1``, ``s2``: slopes
    above and below θ in units of 1/θ. θ = 0 scores every non-zero weight 1 and zeros 0.
    One fused pass for the tanh argument (numba, parallel), then numpy's tanh in place.
    """
    if not theta >= 0:
        raise ValueError(f"theta must be a magnitude >= 0, got {theta!r}")
    if not (s1 > 0 and s2 > 0):
        raise ValueError(f"slopes s1, s2 must be > 0, got s1={s1!r}, s2={s2!r}")
    w = np.asarray(weights)
    if theta == 0:
        return (w != 0).astype(np.float64)
    flat = np.ascontiguousarray(w).ravel()
    if flat.dtype not in (np.float32, np.float64):
        flat = flat.astype(np.float64)
    out = np.empty(flat.size, dtype=np.float64)
    _slopes(flat, float(theta), float(s1), float(s2), out)
    return np.tanh(out, out=out).reshape(w.shape)


@numba.njit(cache=True, parallel=True)
def _slopes(flat, theta, s1, s2, out):
    """out[i] = s·(|w_i|/θ − 1), s = s1 at or above θ and s2 below (the tanh argument)."""
    for i in numba.prange(flat.size):
        rel = abs(np.float64(flat[i])) / theta - 1.0
        out[i] = s1 * rel if rel >= 0 else s2 * rel


def _score_top(score_bits: int) -> int:
    """Largest |q| of a ``score_bits``-bit score (2^(b−1) − 1), after checking b in 2..16."""
    if isinstance(score_bits, bool) or not isinstance(score_bits, int) or not 2 <= score_bits <= 16:
        raise ValueError(f"score_bits must be an integer in 2..16, got {score_bits!r}")
    return 2 ** (score_bits - 1) - 1


def quantize_scores(scores: np.ndarray, score_bits: int = DEFAULT_SCORE_BITS) -> np.ndarray:
    """Fixed-point scores, int64 of ``scores``' shape: q = rint(score·(2^(b−1) − 1) / peak),
    b = ``score_bits`` (2..16), peak = max|score| (1 when every score is 0), so
    |q| ≤ 2^(b−1) − 1 and the largest score uses the full range. A positive scale does
    not change which path is best, so the search needs no scale; rint rounds halves to
    even."""
    top = _score_top(score_bits)
    values = np.asarray(scores, dtype=np.float64)
    peak = float(np.abs(values).max()) if values.size else 0.0
    return np.rint(values * (top / (peak or 1.0))).astype(np.int64)


def metric_bits(spec: ViterbiSpec, score_bits: int = DEFAULT_SCORE_BITS) -> int:
    """Width W (bits, signed) of a normalised fixed-point path metric.

    With L = ⌈n_ff / n_in⌉ cycles to reach any state and B = n_out·(2^(b−1) − 1) the
    largest |branch metric|, the metrics of states reachable from the segment start
    never spread by more than 2·L·B after normalisation, and a state that is not yet
    reachable stays below −2^(W−1) + 2·L·B. W is the smallest width with
    2^(W−1) > (4·L + 2)·B, so an unreachable predecessor never beats a reachable one and
    no reachable metric is clamped.
    """
    reach = -(-spec.n_ff // spec.n_in)
    bound = (4 * reach + 2) * spec.n_out * _score_top(score_bits)
    return bound.bit_length() + 1


@dataclasses.dataclass(frozen=True)
class SearchResult:
    """Outcome of a search over a whole matrix.

    ``inputs``: uint8 0/1 (cycles, n_in), cycles = ⌈size / n_out⌉, the VD input bits;
    ``path_metrics``: (segments,) best path metric of each segment (float64 for the
    float search, int64 in score units for the fixed search).
    """

    inputs: np.ndarray
    path_metrics: np.ndarray


@numba.njit(cache=True)
def _segment(g, scores, seg_len, patterns, lowbit, n_in, n_ff, n_out, floor, inputs, metrics):
    """Search segment ``g``: its best input integers into ``inputs`` (cycles,) uint8 and
    its best metric into ``metrics[g]``.

    ``scores``: (size,) in scan order, positions past the end score 0; ``patterns``:
    (bytes, 2^(n_in+n_ff)) uint8, byte c of the mask pattern of each tap vector;
    ``floor``: start metric of states other than 0 and clamp of normalised metrics (−inf
    for floats)."""
    n_states = 1 << n_ff
    n_branch = 1 << n_in
    n_bytes = patterns.shape[0]
    first = g * seg_len
    length = min(seg_len, inputs.size - first)
    pm = np.empty(n_states, dtype=scores.dtype)
    pm[:] = floor
    pm[0] = 0
    new = np.empty(n_states, dtype=scores.dtype)
    branch = np.empty(n_states * n_branch, dtype=scores.dtype)
    sums = np.zeros((n_bytes, 256), dtype=scores.dtype)
    survivors = np.empty((length, n_states), dtype=np.uint8)
    total = metrics[g]
    for t in range(length):
        base = (first + t) * n_out
        for c in range(n_bytes):
            width = min(8, n_out - 8 * c)
            for p in range(1, 1 << width):
                i = base + 8 * c + lowbit[p]
                sums[c, p] = sums[c, p & (p - 1)] + (scores[i] if i < scores.size else 0)
        for x in range(branch.size):
            branch[x] = pm[x >> n_in] + sums[0, patterns[0, x]]
        for c in range(1, n_bytes):
            for x in range(branch.size):
                branch[x] += sums[c, patterns[c, x]]
        best = branch[0]
        for s in range(n_states):
            top = branch[s]
            pick = 0
            for h in range(1, n_branch):
                if branch[s + h * n_states] > top:
                    top = branch[s + h * n_states]
                    pick = h
            new[s] = top
            survivors[t, s] = pick
            best = max(best, top)
        for s in range(n_states):
            pm[s] = max(new[s] - best, floor)
        total += best
    state = 0
    for s in range(n_states):
        if pm[s] > pm[state]:
            state = s
    metrics[g] = total + pm[state]
    for t in range(length - 1, -1, -1):
        x = state + survivors[t, state] * n_states
        inputs[first + t] = x & (n_branch - 1)
        state = x >> n_in


@numba.njit(cache=True, parallel=True)
def _segments_parallel(
    scores, seg_len, patterns, lowbit, n_in, n_ff, n_out, floor, inputs, metrics
):
    for g in numba.prange(metrics.size):
        _segment(g, scores, seg_len, patterns, lowbit, n_in, n_ff, n_out, floor, inputs, metrics)


@numba.njit(cache=True)
def _segments_serial(scores, seg_len, patterns, lowbit, n_in, n_ff, n_out, floor, inputs, metrics):
    for g in range(metrics.size):
        _segment(g, scores, seg_len, patterns, lowbit, n_in, n_ff, n_out, floor, inputs, metrics)


def _patterns(spec: ViterbiSpec) -> np.ndarray:
    """Mask patterns of the keep table in bytes: uint8 (⌈n_out/8⌉, 2^(n_in+n_ff))."""
    table = keep_table(spec)
    n_bytes = -(-spec.n_out // _BYTE)
    padded = np.zeros((table.shape[0], n_bytes * _BYTE), dtype=bool)
    padded[:, : spec.n_out] = table
    return np.ascontiguousarray(np.packbits(padded, axis=1, bitorder="little").T)


def _search(spec: ViterbiSpec, scores: np.ndarray, floor: float | int) -> SearchResult:
    flat = np.asarray(scores).ravel()
    cycles = matrix_cycles(spec, flat.size)
    words = np.zeros(cycles, dtype=np.uint8)
    metrics = np.zeros(segment_count(spec, cycles), dtype=flat.dtype)
    run = _segments_parallel if cycles >= _PARALLEL_CYCLES else _segments_serial
    run(
        flat,
        spec.segment,
        _patterns(spec),
        _LOWBIT,
        spec.n_in,
        spec.n_ff,
        spec.n_out,
        floor,
        words,
        metrics,
    )
    return SearchResult(unpack_inputs(spec, words), metrics)


def viterbi_search(spec: ViterbiSpec, scores: np.ndarray) -> SearchResult:
    """Float search: the VD inputs maximising Σ kept scores per segment.

    ``scores``: float scores of the weights in row-major order (any shape; flattened),
    e.g. :func:`branch_scores`. Needs ``spec.threshold``.
    """
    return _search(spec, np.asarray(scores, dtype=np.float64), -np.inf)


def viterbi_search_fixed(
    spec: ViterbiSpec, scores: np.ndarray, score_bits: int = DEFAULT_SCORE_BITS
) -> SearchResult:
    """Fixed-point search on integer scores (|q| ≤ 2^(score_bits−1) − 1, e.g.
    :func:`quantize_scores`) with :func:`metric_bits`-wide normalised path metrics.

    Returns the same inputs as :func:`viterbi_search` on the scores q·2^−(score_bits−1),
    since both are exact and share the tie-break; path metrics are in integer score units.
    """
    q = np.asarray(scores)
    top = _score_top(score_bits)
    if not np.issubdtype(q.dtype, np.integer):
        raise ValueError(f"fixed-point scores must be integers, got dtype {q.dtype}")
    if q.size and int(np.abs(q.astype(np.int64)).max()) > top:
        raise ValueError(
            f"fixed-point scores must lie in -{top}..{top} for score_bits={score_bits}"
        )
    floor = -(2 ** (metric_bits(spec, score_bits) - 1))
    return _search(spec, q.astype(np.int64), floor)
