"""Viterbi-based pruning (Lee et al., ICLR 2018) as a storage format.

The mask of a layer is whatever the Viterbi decompressor
(:mod:`codesign.models.viterbi_decompressor`) expands from the stored input bits; pruning
is the Viterbi search for those bits (:mod:`codesign.models.viterbi_search`). Storage: the
VD inputs, exactly ⌈m·n / n_out⌉·n_in index bits (n_in / n_out per weight at any
sparsity, the tail rounded up to a whole cycle), and the weights at the kept positions in
row-major order (a kept weight that is zero is still stored).

Calibration, a reconstruction (REFERENCES §1 [ours, measured]: the search keeps fewer
weights than the comparator rate threshold / 2^n_c, so a sparsity needs a search loop).
θ is always set as a keep quantile q of |w| (θ = the magnitude threshold at keep
fraction q); the kept fraction rises with q and with the threshold T.

* ``spec.threshold`` set: the search on q at that T.
* ``strategy="threshold"`` (the loop of the issue): bisection on T in 1 … 2^n_c with
  q = T / 2^n_c (so :meth:`ViterbiFormat.encode` with the resolved T reproduces the mask
  when no refinement follows); when T's steps are too coarse, the search on q at the
  bracketing T closest to the target, then at the other.
* ``strategy="rate"`` (the default): T = ⌈(1 − sparsity)·2^n_c⌉
  (:meth:`~codesign.models.specs.ViterbiSpec.rate_threshold`), the lowest comparator
  rate at or above the target, then the search on q; the ``"threshold"`` loop if that T
  cannot reach the target. Measured on gaussian and digits-MLP layers it keeps more
  |w| mass at the same kept fraction than the T the ``"threshold"`` loop lands on
  (a rate just above the target with θ lowered beats a higher rate with θ raised).

The search on q starts at q = 1 − sparsity (θ = the magnitude threshold of the target
rate) and takes secant steps (the first through the origin: kept ∝ q), kept inside the
bracket of the probes that kept too few and too many (its middle when a step would
leave it). The result is the first search whose kept fraction is within
``tolerance`` (absolute, default :data:`KEEP_TOLERANCE` = 0.005) of 1 − sparsity or,
when none is (a small matrix whose kept fraction moves in coarse steps), the closest
one found.

Large matrices (more than 4 × ``sample`` weights, default :data:`SAMPLE_WEIGHTS`) are
calibrated on a sample: ``sample`` / (segment·n_out) whole segments (at least
:data:`SAMPLE_MIN_SEGMENTS`), evenly spaced over the matrix. Segments are independent
trellises, so the sample's kept fraction at a (T, θ) estimates the matrix's; the loops
above run on the sample (θ a quantile of the sample's |w|) to within a quarter of the
tolerance, then the whole matrix is searched once at the (T, θ) found. When that
misses the tolerance, the sample's bias (matrix kept − sample kept at that point) is
subtracted from the target, the search on q runs on the sample again, and the matrix
is searched a second time; the closer of the two is the result. The full search runs
at most twice. A target the VD cannot reach at all — below the fewest weights kept at
T = 1 (or at the given threshold) with θ = max|w|, or above the most kept at the given
threshold with θ = min|w| — raises :class:`FormatError` naming the sparsity, the
threshold and the reachable range.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from codesign.models.format import Decoded, Encoded, Format, FormatError, Stream, value_width
from codesign.models.quality import kept_fraction, kept_mass_ratio
from codesign.models.specs import ViterbiSpec
from codesign.models.viterbi_decompressor import (
    expand_matrix,
    matrix_cycles,
    pack_inputs,
    unpack_inputs,
)
from codesign.models.viterbi_search import DEFAULT_S1, DEFAULT_S2, branch_scores, viterbi_search
from codesign.models.workloads import check_sparsity, check_weights

KEEP_TOLERANCE = 0.005
"""Default calibration tolerance: |kept fraction − (1 − sparsity)| ≤ 0.005 (absolute)."""
STRATEGIES = ("rate", "threshold")
"""Calibration strategies (see the module docstring); the first is the default."""
SAMPLE_WEIGHTS = 1 << 19
"""Weights of the calibration sample of a large matrix (whole segments; see above)."""
SAMPLE_MIN_SEGMENTS = 64
"""Fewest segments in a calibration sample."""
_THETA_STEPS = 14
_SAMPLE_TOLERANCE = 0.25
"""The sample is calibrated to this fraction of the tolerance."""


@dataclasses.dataclass(frozen=True)
class ViterbiPruning:
    """One searched mask: ``spec`` (threshold set), ``theta`` (the magnitude threshold
    of the scores, units of the weights), VD ``inputs`` uint8 (cycles, n_in) and the
    ``mask`` (m, n) bool they expand to."""

    spec: ViterbiSpec
    theta: float
    inputs: np.ndarray
    mask: np.ndarray

    @property
    def kept(self) -> float:
        """Kept fraction of the mask."""
        return kept_fraction(self.mask)


class _Magnitudes:
    """Sorted |w| of a matrix: θ at a keep fraction without re-sorting (the rule of
    :func:`codesign.models.workloads.magnitude_threshold`, clipped to the largest |w|)."""

    def __init__(self, weights: np.ndarray):
        self.sorted = np.sort(np.abs(weights, dtype=np.float64), axis=None)

    def theta(self, keep: float) -> float:
        pruned = min(round((1.0 - keep) * self.sorted.size), self.sorted.size - 1)
        return float(self.sorted[pruned])


def _sample(weights: np.ndarray, spec: ViterbiSpec, sample: int | None) -> np.ndarray | None:
    """The calibration sample of ``weights`` (see the module docstring): (segments,
    segment·n_out) whole segments, evenly spaced, each a row; None when the matrix is
    calibrated whole."""
    length = spec.segment * spec.n_out
    full = weights.size // length
    count = max(SAMPLE_MIN_SEGMENTS, (sample or 0) // length)
    if sample is None or weights.size <= 4 * sample or full < 4 * count:
        return None
    rows = np.ravel(weights)[: full * length].reshape(full, length)
    return rows[(np.arange(count) * full) // count]


def viterbi_prune(
    weights: np.ndarray,
    spec: ViterbiSpec,
    theta: float | None = None,
    s1: float = DEFAULT_S1,
    s2: float = DEFAULT_S2,
) -> ViterbiPruning:
    """One search of ``weights`` (m, n) with ``spec.threshold`` set; ``theta`` unset: the
    magnitude threshold at keep fraction threshold / 2^n_c. ``s1``, ``s2``: score slopes
    (see :func:`codesign.models.viterbi_search.branch_scores`)."""
    if spec.threshold is None:
        raise FormatError(
            "ViterbiSpec.threshold is unset: give a sparsity to calibrate it, "
            f"or a threshold in 1..2^n_c={2**spec.n_c}"
        )
    if theta is None:
        theta = _Magnitudes(weights).theta(spec.threshold / 2**spec.n_c)
    result = viterbi_search(spec, branch_scores(weights, theta, s1, s2))
    mask = expand_matrix(spec, result.inputs, weights.shape)
    return ViterbiPruning(spec, theta, result.inputs, mask)


class _Calibration:
    """The searches of one calibration (memoised), keeping the one closest to the target."""

    def __init__(self, weights, spec, target, tolerance, s1, s2):
        self.weights, self.spec, self.target, self.tolerance = weights, spec, target, tolerance
        self.s1, self.s2 = s1, s2
        self.full = 2**spec.n_c
        self.fewest = 1.0 / weights.size
        self.mags = _Magnitudes(weights)
        self.runs: dict[tuple[int, float], ViterbiPruning] = {}
        self.best: ViterbiPruning | None = None

    def kept(self, threshold: int, keep: float) -> float:
        """Kept fraction of the search at ``threshold`` with θ at keep quantile ``keep``."""
        key = (threshold, self.mags.theta(keep))
        if key not in self.runs:
            spec = dataclasses.replace(self.spec, threshold=threshold)
            self.runs[key] = viterbi_prune(self.weights, spec, key[1], self.s1, self.s2)
        out = self.runs[key]
        if self.best is None or self.miss(out) < self.miss(self.best):
            self.best = out
        return out.kept

    def retarget(self, target: float) -> None:
        """Aim at a new ``target``: the best run becomes the closest run to it so far."""
        self.target = target
        self.best = min(self.runs.values(), key=self.miss, default=None)

    def miss(self, out: ViterbiPruning) -> float:
        return abs(out.kept - self.target)

    def done(self) -> bool:
        return self.best is not None and self.miss(self.best) <= self.tolerance

    def theta_search(self, threshold: int, lo: float, hi: float) -> None:
        """Search of θ's keep quantile q in [lo, hi] at ``threshold`` (module docstring):
        first probe at the target rate (clipped to the interval), then secant steps kept
        inside the bracket of the probes that kept too few and too many."""
        probe = min(max(self.target, lo), hi)
        last = None
        for _ in range(_THETA_STEPS):
            if self.done():
                return
            kept = self.kept(threshold, probe)
            if kept < self.target:
                lo = probe
            else:
                hi = probe
            probe, last = _secant(last, (probe, kept), self.target, lo, hi), (probe, kept)

    def threshold_bisection(self) -> None:
        """Bisection on T with θ following T, then on θ at the bracketing thresholds."""
        full, fewest = self.full, self.fewest
        if self.kept(1, 1 / full) >= self.target:
            self.theta_search(1, fewest, 1 / full)
            return
        lo, hi = 1, full
        while hi - lo > 1 and not self.done():
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if self.kept(mid, mid / full) < self.target else (lo, mid)
        brackets = [(lo, lo / full, 1.0)]
        if hi < full:
            brackets.append((hi, fewest, hi / full))
        else:
            self.kept(full, 1.0)
        brackets.sort(key=lambda b: abs(self.kept(b[0], b[0] / full) - self.target))
        for threshold, low, high in brackets:
            self.theta_search(threshold, low, high)

    def check_reach(self, threshold: int | None) -> None:
        """Raise when the target lies outside what ``threshold`` (None: any) can keep."""
        if threshold is None:
            lowest, highest, which = self.kept(1, self.fewest), 1.0, f"threshold 1..{self.full}"
        else:
            lowest = self.kept(threshold, self.fewest)
            highest = self.kept(threshold, 1.0)
            which = f"threshold={threshold}"
        if lowest - self.tolerance <= self.target <= highest + self.tolerance:
            return
        spec = self.spec
        raise FormatError(
            f"sparsity {1 - self.target:.4g} (kept fraction {self.target:.4g}) is out of reach "
            f"of this VD (n_ff={spec.n_ff}, n_out={spec.n_out}, n_c={spec.n_c}, {which}): "
            f"reachable kept fractions {lowest:.4g}..{highest:.4g}, i.e. sparsities "
            f"{1 - highest:.4g}..{1 - lowest:.4g} (within ±{self.tolerance:g})"
        )


def _secant(
    last: tuple[float, float] | None,
    now: tuple[float, float],
    target: float,
    lo: float,
    hi: float,
) -> float:
    """The next keep quantile toward ``target``: the secant through the ``last`` and
    ``now`` (q, kept) probes — through the origin after the first probe (kept ∝ q) — or
    the middle of [lo, hi] when that step leaves the bracket's inner 98 %."""
    (q, kept), middle = now, 0.5 * (lo + hi)
    if last is None:
        step = q * target / kept if kept > 0 else middle
    elif kept != last[1]:
        step = q + (target - kept) * (q - last[0]) / (kept - last[1])
    else:
        step = middle
    margin = 0.01 * (hi - lo)
    return step if lo + margin < step < hi - margin else middle


def calibrate(
    weights: np.ndarray,
    sparsity: float,
    spec: ViterbiSpec,
    tolerance: float = KEEP_TOLERANCE,
    strategy: str = STRATEGIES[0],
    s1: float = DEFAULT_S1,
    s2: float = DEFAULT_S2,
    sample: int | None = SAMPLE_WEIGHTS,
) -> ViterbiPruning:
    """The search of ``weights`` (m, n) whose kept fraction meets 1 − ``sparsity``
    within ``tolerance`` (see the module docstring for the strategies, the sample of a
    large matrix — ``sample`` weights, None: always the whole matrix — the fallback and
    the errors)."""
    weights = check_weights(weights)
    target = 1.0 - check_sparsity(sparsity)
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    if not 0 <= tolerance < 1:
        raise ValueError(
            f"tolerance must be a kept-fraction difference in [0, 1), got {tolerance!r}"
        )
    rows = _sample(weights, spec, sample)
    if rows is None:
        return _calibrated(_Calibration(weights, spec, target, tolerance, s1, s2), strategy)
    cal = _Calibration(rows, spec, target, _SAMPLE_TOLERANCE * tolerance, s1, s2)
    point = _calibrated(cal, strategy)
    first = viterbi_prune(weights, point.spec, point.theta, s1, s2)
    if abs(first.kept - target) <= tolerance:
        return first
    cal.retarget(target - (first.kept - point.kept))
    assert point.spec.threshold is not None
    cal.theta_search(point.spec.threshold, cal.fewest, 1.0)
    assert cal.best is not None
    if cal.best is point:
        return first
    second = viterbi_prune(weights, cal.best.spec, cal.best.theta, s1, s2)
    return min((first, second), key=lambda out: abs(out.kept - target))


def _calibrated(cal: _Calibration, strategy: str) -> ViterbiPruning:
    """Run the calibration loops of ``strategy`` (module docstring) on ``cal``'s matrix."""
    spec = cal.spec
    if spec.threshold is not None:
        cal.theta_search(spec.threshold, cal.fewest, 1.0)
    elif strategy == "rate":
        cal.theta_search(spec.rate_threshold(1.0 - cal.target), cal.fewest, 1.0)
    if spec.threshold is None and not cal.done():
        cal.threshold_bisection()
    if not cal.done():
        cal.check_reach(spec.threshold)
    assert cal.best is not None
    return cal.best


class ViterbiFormat(Format):
    """Index bits ⌈m·n / n_out⌉·n_in (the VD inputs), values: every kept position.

    :meth:`compress` calibrates and searches; :meth:`encode` searches with the spec's
    threshold (θ at keep fraction threshold / 2^n_c); :meth:`decode` expands the stored
    inputs with the VD. ``extras``: ``kept_fraction``, ``kept_mass_ratio`` (Σ|w| kept
    over magnitude pruning's at the same kept fraction), ``threshold``, ``theta``.
    """

    name = "viterbi"
    summary = "Viterbi decompressor: n_in/n_out index bits per weight at any sparsity"

    def _encode(self, weights: np.ndarray, spec: ViterbiSpec) -> Encoded:
        return self._store(weights, viterbi_prune(weights, spec))[1]

    def compress(
        self, weights: np.ndarray, sparsity: float | None, spec: ViterbiSpec | None = None
    ) -> tuple[np.ndarray, Encoded]:
        """Calibrate to ``sparsity`` and search (``sparsity`` None: search with the
        spec's threshold). Returns (W∘mask, encoded); the encoded spec carries the
        resolved threshold."""
        weights = check_weights(weights)
        spec = self._check_spec(spec)
        if sparsity is None:
            return self._store(weights, viterbi_prune(weights, spec))
        return self._store(weights, calibrate(weights, sparsity, spec))

    def prune(
        self, weights: np.ndarray, sparsity: float, spec: ViterbiSpec | None = None
    ) -> np.ndarray:
        """W∘mask of the calibrated search."""
        return self.compress(weights, sparsity, spec)[0]

    def decode(self, enc: Encoded) -> Decoded:
        inputs = unpack_inputs(enc.spec, enc.streams["inputs"].data)
        mask = expand_matrix(enc.spec, inputs, enc.shape)
        weights = np.zeros(enc.shape, dtype=enc.dtype)
        weights[mask] = enc.streams["values"].data
        return Decoded(weights, mask)

    def _check_spec(self, spec: ViterbiSpec | None) -> ViterbiSpec:
        spec = ViterbiSpec() if spec is None else spec
        if not isinstance(spec, ViterbiSpec):
            raise FormatError(f"format 'viterbi' needs a ViterbiSpec, got {type(spec).__name__}")
        return spec

    def _store(self, weights: np.ndarray, pruning: ViterbiPruning) -> tuple[np.ndarray, Encoded]:
        spec, mask = pruning.spec, pruning.mask
        pruned = np.where(mask, weights, np.zeros((), dtype=weights.dtype))
        b = value_width(weights.dtype)
        values = weights[mask]
        streams = {
            "inputs": Stream(
                pack_inputs(spec, pruning.inputs).astype(np.uint8), spec.n_in, "index"
            ),
            "values": Stream(values, b, "value"),
        }
        extras = {
            "kept_fraction": pruning.kept,
            "kept_mass_ratio": kept_mass_ratio(weights, mask),
            "threshold": float(spec.threshold),
            "theta": pruning.theta,
        }
        index_bits = matrix_cycles(spec, weights.size) * spec.n_in
        enc = self._bundle(pruned, spec, streams, index_bits, values.size * b, extras)
        return pruned, enc
