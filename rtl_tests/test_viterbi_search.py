"""Viterbi search: cocotb on the generated Verilog, one run per parameter set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from codesign.hw.viterbi_search import latency, segment_cycles
from codesign.models.specs import ViterbiSpec
from codesign.models.viterbi_search import branch_scores, quantize_scores
from codesign.models.workloads import gaussian, magnitude_prune, magnitude_threshold
from rtl_tests.runner import checked_run

#: name -> (spec, block parameters): 16, 8, 64, 256 and 2 states; n_in = 2; a survivor
#: memory deeper than the segment and not a power of two; 2-bit scores (mostly ties).
#: max_segment ≥ 4 (segment_flags sends unfinished segments of 1 … max_segment − 1 steps;
#: short_segments sends segments of up to 4 steps).
PARAM_SETS = {
    "ff4-in1-out3-seg16": (
        ViterbiSpec(n_ff=4, n_in=1, n_out=3, n_c=2, threshold=1, segment=16),
        {"score_bits": 8, "max_segment": 16},
    ),
    "ff3-in2-out4-seg12": (
        ViterbiSpec(n_ff=3, n_in=2, n_out=4, n_c=2, threshold=2, segment=12),
        {"score_bits": 6, "max_segment": 20},
    ),
    "ff6-in1-out5-seg32": (
        ViterbiSpec(n_ff=6, n_in=1, n_out=5, n_c=4, threshold=3, segment=32),
        {"score_bits": 8, "max_segment": 32},
    ),
    "ff8-in1-out5-seg8": (
        ViterbiSpec(n_ff=8, n_in=1, n_out=5, n_c=4, threshold=3, segment=8),
        {"score_bits": 8, "max_segment": 8},
    ),
    "ff1-in1-out1-seg3": (
        ViterbiSpec(n_ff=1, n_in=1, n_out=1, n_c=1, threshold=1, segment=3),
        {"score_bits": 2, "max_segment": 4},
    ),
}
#: cocotb tests in rtl_tests.tb_viterbi_search.
COCOTB_TESTS = 5
#: Segments per stimulus array: two full ones and a shorter tail.
SEGMENTS = 2.5
#: Sparsity of the pruned synthetic weights.
SYNTHETIC_SPARSITY = 0.8


def weights_count(spec: ViterbiSpec) -> int:
    """Weights per stimulus array: :data:`SEGMENTS` segments of n_out weights per step,
    one short of a whole step (so the last step is padded)."""
    return int(SEGMENTS * spec.segment) * spec.n_out - 1


def scores_of(w: np.ndarray, spec: ViterbiSpec, score_bits: int) -> np.ndarray:
    """Fixed-point scores of ``w`` with θ = the magnitude threshold at the comparator
    rate threshold / 2^n_c (the calibration's starting point)."""
    assert spec.threshold is not None
    theta = magnitude_threshold(w, 1.0 - spec.threshold / 2**spec.n_c)
    return quantize_scores(branch_scores(w, theta), score_bits)


def write_stimuli(path: Path, spec: ViterbiSpec, score_bits: int, digits: list[np.ndarray]) -> Path:
    """Save the score arrays the testbench sends: pruned synthetic weights, a slice of
    the pruned digits MLP, uniform random scores, scores in {−1, 0, 1} with a run of
    zeros (ties everywhere), and ±the largest score."""
    size = weights_count(spec)
    top = 2 ** (score_bits - 1) - 1
    rng = np.random.default_rng(spec.n_ff * 100 + spec.n_out)
    synthetic = magnitude_prune(gaussian((1, size), seed=spec.n_ff), SYNTHETIC_SPARSITY)
    flat = np.concatenate([w.ravel() for w in digits])
    start = int(rng.integers(0, flat.size - size))
    ties = rng.integers(-1, 2, size=size)
    ties[size // 3 : 2 * size // 3] = 0
    arrays = {
        "synthetic-pruned": scores_of(synthetic, spec, score_bits),
        "digits-mlp-0.9": scores_of(flat[None, start : start + size], spec, score_bits),
        "random": rng.integers(-top, top + 1, size=size),
        "ties": ties,
        "extremes": rng.choice([-top, top], size=size),
    }
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("name", list(PARAM_SETS))
def test_viterbi_search_rtl(name: str, tmp_path: Path, digits_pruned: list[np.ndarray]) -> None:
    spec, params = PARAM_SETS[name]
    stimuli = write_stimuli(tmp_path / "stimuli.npz", spec, params["score_bits"], digits_pruned)
    with checked_run(
        "viterbi_search",
        name,
        spec,
        "rtl_tests.tb_viterbi_search",
        tmp_path,
        COCOTB_TESTS,
        stimuli,
        seed=spec.n_ff,
        strip_init=name != next(iter(PARAM_SETS)),  # the first set as shipped
        **params,
    ) as (run, full):
        assert full["cycles_per_output"] == 1.0
        assert (
            full["latency"] == run.sidecar["latency"] == latency(spec.segment) == spec.segment + 1
        )
        assert full["segment_cycles"] == segment_cycles(spec.segment) == spec.segment
