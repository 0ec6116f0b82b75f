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

* ``spec.threshold`` set: bisection on q at that T.
* ``strategy="threshold"`` (the loop of the issue): bisection on T in 1 … 2^n_c with
  q = T / 2^n_c (so :meth:`ViterbiFormat.encode` with the resolved T reproduces the mask
  when no refinement follows); when T's steps are too coarse, bisection on q at the
  bracketing T closest to the target, then at the other.
* ``strategy="rate"`` (the default): T = ⌈(1 − sparsity)·2^n_c⌉
  (:meth:`~codesign.models.specs.ViterbiSpec.rate_threshold`), the lowest comparator
  rate at or above the target, then bisection on q; the ``"threshold"`` loop if that T
  cannot reach the target. Measured on gaussian and digits-MLP layers it keeps more
  |w| mass at the same kept fraction than the T the ``"threshold"`` loop lands on
  (a rate just above the target with θ lowered beats a higher rate with θ raised).

Every bisection on q starts at q = 1 − sparsity (θ = the magnitude threshold of the
target rate). The result is the first search whose kept fraction is within
``tolerance`` (absolute, default :data:`KEEP_TOLERANCE` = 0.005) of 1 − sparsity or,
when none is (a small matrix whose kept fraction moves in coarse steps), the closest
one found. A target the VD cannot reach at all — below the fewest weights kept at
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
_THETA_STEPS = 14


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
            out = viterbi_prune(self.weights, spec, key[1], self.s1, self.s2)
            self.runs[key] = out
            if self.best is None or self.miss(out) < self.miss(self.best):
                self.best = out
        return self.runs[key].kept

    def miss(self, out: ViterbiPruning) -> float:
        return abs(out.kept - self.target)

    def done(self) -> bool:
        return self.best is not None and self.miss(self.best) <= self.tolerance

    def theta_bisection(self, threshold: int, lo: float, hi: float) -> None:
        """Bisection on θ's keep quantile in [lo, hi] at ``threshold``, first probe at
        the target rate (clipped to the interval)."""
        probe = min(max(self.target, lo), hi)
        for _ in range(_THETA_STEPS):
            if self.done():
                return
            if self.kept(threshold, probe) < self.target:
                lo = probe
            else:
                hi = probe
            probe = 0.5 * (lo + hi)

    def threshold_bisection(self) -> None:
        """Bisection on T with θ following T, then on θ at the bracketing thresholds."""
        full, fewest = self.full, self.fewest
        if self.kept(1, 1 / full) >= self.target:
            self.theta_bisection(1, fewest, 1 / full)
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
            self.theta_bisection(threshold, low, high)

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


def calibrate(
    weights: np.ndarray,
    sparsity: float,
    spec: ViterbiSpec,
    tolerance: float = KEEP_TOLERANCE,
    strategy: str = STRATEGIES[0],
    s1: float = DEFAULT_S1,
    s2: float = DEFAULT_S2,
) -> ViterbiPruning:
    """The search of ``weights`` (m, n) whose kept fraction meets 1 − ``sparsity``
    within ``tolerance`` (see the module docstring for the strategies, the fallback and
    the errors)."""
    weights = check_weights(weights)
    target = 1.0 - check_sparsity(sparsity)
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    if not 0 <= tolerance < 1:
        raise ValueError(
            f"tolerance must be a kept-fraction difference in [0, 1), got {tolerance!r}"
        )
    cal = _Calibration(weights, spec, target, tolerance, s1, s2)
    if spec.threshold is not None:
        cal.theta_bisection(spec.threshold, cal.fewest, 1.0)
    elif strategy == "rate":
        cal.theta_bisection(spec.rate_threshold(sparsity), cal.fewest, 1.0)
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
