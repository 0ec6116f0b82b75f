"""Viterbi-based pruning: the VD golden model against a bit-by-bit reference, the search
against exhaustive enumeration and a dict-based reference Viterbi, float vs fixed point,
calibration, storage accounting and errors."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codesign.models import gf2
from codesign.models import viterbi as viterbi_module
from codesign.models.format import FormatError
from codesign.models.quality import kept_mass_ratio
from codesign.models.specs import CsrSpec, SpecError, ViterbiSpec
from codesign.models.viterbi import STRATEGIES, ViterbiFormat, calibrate
from codesign.models.viterbi_decompressor import expand, expand_matrix, keep_table, taps
from codesign.models.viterbi_search import (
    branch_scores,
    metric_bits,
    quantize_scores,
    viterbi_search,
    viterbi_search_fixed,
)
from codesign.models.workloads import WeightsError, gaussian, load_digits_mlp, magnitude_threshold

FMT = ViterbiFormat()


# ---------------------------------------------------------------- references


def ref_cycle(spec, g, state, u):
    """One VD cycle bit by bit: (mask bits, next state); ``state`` and ``u`` are bit lists
    (flip-flop k, input i)."""
    x = list(u) + list(state)
    raw = [0] * g.shape[0]
    for row in range(g.shape[0]):
        acc = 0
        for col in range(len(x)):
            acc ^= int(g[row, col]) & x[col]
        raw[row] = acc
    mask = []
    for j in range(spec.n_out):
        value = sum(raw[j * spec.n_c + b] << b for b in range(spec.n_c))
        mask.append(value < spec.threshold)
    nxt = [u[k] if k < spec.n_in else state[k - spec.n_in] for k in range(spec.n_ff)]
    return mask, nxt


def ref_expand(spec, inputs):
    g = taps(spec)
    state = [0] * spec.n_ff
    out = []
    for u in inputs:
        mask, state = ref_cycle(spec, g, state, [int(b) for b in u])
        out.append(mask)
    return np.array(out, dtype=bool).reshape(len(inputs), spec.n_out)


def ref_expand_matrix(spec, inputs, shape):
    flat = []
    for start in range(0, len(inputs), spec.segment):
        flat.extend(ref_expand(spec, inputs[start : start + spec.segment]).ravel().tolist())
    return np.array(flat[: shape[0] * shape[1]], dtype=bool).reshape(shape)


def bits_of(value, width):
    return [(value >> i) & 1 for i in range(width)]


def ref_viterbi(spec, scores):
    """Dict-based Viterbi of one segment (scores: (cycles, n_out)), ties to the lowest
    tap vector x = U + 2^n_in·S, final ties to the lowest state. Returns (metric, U list)."""
    g = taps(spec)
    alive = {0: (0, [])}
    for row in scores:
        nxt = {}
        for s, (metric, path) in sorted(alive.items()):
            for u in range(2**spec.n_in):
                mask, s_bits = ref_cycle(spec, g, bits_of(s, spec.n_ff), bits_of(u, spec.n_in))
                s2 = sum(b << k for k, b in enumerate(s_bits))
                m2 = metric + sum(row[j] for j in range(spec.n_out) if mask[j])
                key = u + (s << spec.n_in)
                old = nxt.get(s2)
                if old is None or m2 > old[0] or (m2 == old[0] and key < old[1]):
                    nxt[s2] = (m2, key, path + [u])
        alive = {s2: (m, p) for s2, (m, _, p) in nxt.items()}
    best = max(m for m, _ in alive.values())
    state = min(s for s, (m, _) in alive.items() if m == best)
    return best, alive[state][1]


def segments_of(spec, scores_flat):
    """Per-segment (cycles, n_out) score blocks, zero-padded past the end."""
    cycles = -(-scores_flat.size // spec.n_out)
    padded = np.zeros(cycles * spec.n_out, dtype=scores_flat.dtype)
    padded[: scores_flat.size] = scores_flat
    blocks = padded.reshape(cycles, spec.n_out)
    return [blocks[i : i + spec.segment] for i in range(0, cycles, spec.segment)]


def words(inputs, n_in):
    return (np.asarray(inputs, dtype=np.int64) << np.arange(n_in)).sum(axis=1)


@st.composite
def small_specs(draw):
    """Small VDs, with every field in range (n_out clipped to the distinct taps)."""
    n_in, n_ff = draw(st.integers(1, 3)), draw(st.integers(1, 6))
    n_c = min(draw(st.integers(1, 3)), n_in + n_ff)
    n_out = min(draw(st.integers(1, 4)), (2 ** (n_in + n_ff) - 1) // n_c)
    return ViterbiSpec(
        n_in=n_in,
        n_ff=n_ff,
        n_out=n_out,
        n_c=n_c,
        threshold=draw(st.integers(0, 2**n_c)),
        seed=draw(st.integers(0, 1000)),
        segment=draw(st.integers(1, 9)),
    )


# ---------------------------------------------------------------- taps and VD


@pytest.mark.parametrize(
    "spec",
    [
        ViterbiSpec(),
        ViterbiSpec(n_in=2, n_ff=4, n_out=3, n_c=3),
        ViterbiSpec(n_ff=2, n_out=1, n_c=3),
    ],
)
def test_taps_properties(spec):
    g = taps(spec)
    assert g.dtype == np.uint8 and g.shape == (spec.n_out * spec.n_c, spec.n_in + spec.n_ff)
    assert set(np.unique(g)) <= {0, 1}
    assert g.any(axis=1).all(), "zero row"
    assert len({r.tobytes() for r in g}) == g.shape[0], "duplicate row"
    for j in range(spec.n_out):
        assert gf2.rank(g[j * spec.n_c : (j + 1) * spec.n_c]) == spec.n_c
    assert np.array_equal(g, taps(dataclasses.replace(spec)))


def test_taps_differ_across_seeds():
    drawn = {taps(ViterbiSpec(seed=seed)).tobytes() for seed in range(20)}
    assert len(drawn) == 20


def test_taps_fill_the_whole_space():
    spec = ViterbiSpec(n_in=1, n_ff=2, n_out=7, n_c=1)
    rows = sorted(int(words(r[None, :], 3)[0]) for r in taps(spec))
    assert rows == list(range(1, 8))


@pytest.mark.parametrize("threshold", [0, 1, 5, 16])
def test_keep_probability_is_threshold_over_two_to_nc(threshold):
    table = keep_table(ViterbiSpec(threshold=threshold))
    assert np.array_equal(table.mean(axis=0), np.full(5, threshold / 16))


@settings(max_examples=40, deadline=None)
@given(small_specs(), st.integers(0, 2**32 - 1), st.integers(1, 40))
def test_expand_matches_bitwise_reference(spec, seed, cycles):
    inputs = np.random.default_rng(seed).integers(0, 2, (cycles, spec.n_in))
    assert np.array_equal(expand(spec, inputs), ref_expand(spec, inputs))


@settings(max_examples=30, deadline=None)
@given(small_specs(), st.integers(0, 2**32 - 1), st.integers(1, 9), st.integers(1, 11))
def test_expand_matrix_resets_each_segment(spec, seed, m, n):
    cycles = -(-m * n // spec.n_out)
    inputs = np.random.default_rng(seed).integers(0, 2, (cycles, spec.n_in))
    got = expand_matrix(spec, inputs, (m, n))
    assert np.array_equal(got, ref_expand_matrix(spec, inputs, (m, n)))


# ---------------------------------------------------------------- the search


EXHAUSTIVE = [
    (ViterbiSpec(n_in=1, n_ff=3, n_out=3, n_c=2, threshold=2, segment=12, seed=1), 70),
    (ViterbiSpec(n_in=2, n_ff=4, n_out=4, n_c=3, threshold=3, segment=6, seed=2), 45),
    (ViterbiSpec(n_in=1, n_ff=5, n_out=2, n_c=3, threshold=2, segment=10, seed=3), 43),
    (ViterbiSpec(n_in=2, n_ff=1, n_out=3, n_c=2, threshold=1, segment=5, seed=4), 32),
]


@pytest.mark.parametrize(("spec", "size"), EXHAUSTIVE)
def test_search_matches_exhaustive_enumeration(spec, size):
    rng = np.random.default_rng(spec.seed)
    scores = rng.normal(size=size)
    result = viterbi_search(spec, scores)
    q = rng.integers(-3, 4, size=size)
    fixed = viterbi_search_fixed(spec, q, score_bits=3)
    start = 0
    for g, (blk, qblk) in enumerate(
        zip(segments_of(spec, scores), segments_of(spec, q), strict=True)
    ):
        cycles = blk.shape[0]
        seqs = list(itertools.product(range(2**spec.n_in), repeat=cycles))
        as_bits = [np.array([bits_of(u, spec.n_in) for u in seq]) for seq in seqs]
        masks = np.array([expand(spec, b) for b in as_bits])
        metrics = (masks * blk).sum(axis=(1, 2))
        best = metrics.max()
        assert result.path_metrics[g] == pytest.approx(best, abs=1e-9)
        got = words(result.inputs[start : start + cycles], spec.n_in)
        assert (masks[seqs.index(tuple(got))] * blk).sum() == pytest.approx(best, abs=1e-9)
        if np.sort(metrics)[-2] < best - 1e-9:
            assert tuple(got) == seqs[int(np.argmax(metrics))]
        assert fixed.path_metrics[g] == (masks * qblk).sum(axis=(1, 2)).max()
        start += cycles


@settings(max_examples=25, deadline=None)
@given(small_specs(), st.integers(0, 2**32 - 1), st.integers(1, 40))
def test_tie_break_matches_reference_viterbi(spec, seed, size):
    q = np.random.default_rng(seed).integers(-1, 2, size=size)
    fixed = viterbi_search_fixed(spec, q, score_bits=2)
    floats = viterbi_search(spec, q.astype(np.float64))
    assert np.array_equal(fixed.inputs, floats.inputs)
    start = 0
    for g, blk in enumerate(segments_of(spec, q)):
        metric, path = ref_viterbi(spec, blk.tolist())
        assert fixed.path_metrics[g] == metric
        assert words(fixed.inputs[start : start + blk.shape[0]], spec.n_in).tolist() == path
        start += blk.shape[0]


def test_all_zero_scores_give_all_zero_inputs():
    result = viterbi_search(ViterbiSpec(threshold=3), np.zeros(1000))
    assert not result.inputs.any()


def test_fixed_equals_float_on_the_same_grid():
    spec = ViterbiSpec(threshold=3, segment=64)
    rng = np.random.default_rng(7)
    w = rng.normal(size=(64, 1000))
    q = quantize_scores(branch_scores(w, magnitude_threshold(w, 0.8)))
    extreme = rng.choice([-127, 127], size=q.shape)
    for scores in (q, extreme):
        fixed = viterbi_search_fixed(spec, scores)
        floats = viterbi_search(spec, scores / 128.0)
        assert np.array_equal(fixed.inputs, floats.inputs)
        assert np.array_equal(fixed.path_metrics, np.rint(floats.path_metrics * 128))


def test_fixed_vs_float_disagreement_rate():
    """Float search on the float scores vs fixed search on their 8-bit quantization."""
    spec = ViterbiSpec(threshold=3)
    w = gaussian((256, 1280), seed=3)
    scores = branch_scores(w, magnitude_threshold(w, 0.9))
    q = quantize_scores(scores)
    floats, fixed = viterbi_search(spec, scores), viterbi_search_fixed(spec, q)
    cycles = floats.inputs.shape[0]
    seg = [slice(i, min(i + spec.segment, cycles)) for i in range(0, cycles, spec.segment)]
    differ = [s for s in seg if not np.array_equal(floats.inputs[s], fixed.inputs[s])]
    m_float = expand_matrix(spec, floats.inputs, w.shape)
    m_fixed = expand_matrix(spec, fixed.inputs, w.shape)
    loss = 1 - (scores * m_fixed).sum() / (scores * m_float).sum()
    ties = 0
    for s in differ:
        lo, hi = s.start * spec.n_out, min(s.stop * spec.n_out, w.size)
        if (q.ravel()[lo:hi] * m_float.ravel()[lo:hi]).sum() == (
            q.ravel()[lo:hi] * m_fixed.ravel()[lo:hi]
        ).sum():
            ties += 1
    mask_diff = float(np.mean(m_float != m_fixed))
    print(
        f"\nfloat vs fixed (8-bit scores, {len(seg)} segments): {len(differ)} segments differ "
        f"({len(differ) / len(seg):.1%}), {ties} of them tie under the integer scores; "
        f"mask bits differ {mask_diff:.3%}; float metric lost by the fixed path {loss:.2e}"
    )
    assert (q * m_float).sum() <= fixed.path_metrics.sum()
    assert mask_diff < 0.02
    assert 0 <= loss < 2e-3


def test_metric_bits_bound():
    spec = ViterbiSpec()
    assert metric_bits(spec, 8) == (34 * 5 * 127).bit_length() + 1 == 16


# ---------------------------------------------------------------- the format


def check_storage(w, ref, enc, spec):
    dec = FMT.decode(enc)
    mask = dec.mask
    cycles = math.ceil(w.size / spec.n_out)
    b = w.dtype.itemsize * 8
    assert set(enc.streams) == {"inputs", "values"}
    assert enc.index_bits == enc.stream_bits("index") == cycles * spec.n_in
    assert enc.value_bits == enc.stream_bits("value") == int(mask.sum()) * b
    assert enc.stored_values == int(mask.sum())
    assert enc.nnz == int(np.count_nonzero(ref))
    assert np.array_equal(dec.weights, ref)
    assert np.array_equal(ref, np.where(mask, w, 0))
    assert np.array_equal(enc.streams["values"].data, w[mask])


@settings(max_examples=20, deadline=None)
@given(small_specs(), st.integers(0, 2**32 - 1), st.integers(1, 12), st.integers(1, 12))
def test_encode_decode_roundtrip(spec, seed, m, n):
    rng = np.random.default_rng(seed)
    w = np.where(rng.random((m, n)) < 0.2, 0, rng.normal(size=(m, n))).astype(np.float32)
    enc = FMT.encode(w, spec)
    inputs = (enc.streams["inputs"].data[:, None] >> np.arange(spec.n_in)) & 1
    ref = np.where(ref_expand_matrix(spec, inputs, w.shape), w, 0)
    check_storage(w, ref, enc, spec)


def test_encode_uses_theta_of_the_comparator_rate():
    w = gaussian((40, 50), seed=1)
    spec = ViterbiSpec(threshold=3, segment=32)
    enc = FMT.encode(w, spec)
    theta = magnitude_threshold(w, 1 - 3 / 16)
    assert enc.extras["theta"] == pytest.approx(theta)
    search = viterbi_search(spec, branch_scores(w, theta))
    assert np.array_equal(FMT.decode(enc).mask, expand_matrix(spec, search.inputs, w.shape))


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("sparsity", [0.8, 0.9, 0.95])
def test_calibration_on_synthetic(strategy, sparsity):
    w = gaussian((192, 320), seed=5)
    spec = ViterbiSpec(segment=128)
    pruning = calibrate(w, sparsity, spec, strategy=strategy)
    assert abs(pruning.kept - (1 - sparsity)) <= 0.005
    assert np.array_equal(pruning.mask, ref_expand_matrix(pruning.spec, pruning.inputs, w.shape))


def record_searches(monkeypatch) -> list:
    """Record every search the calibration runs (its ViterbiPruning)."""
    runs: list = []
    search = viterbi_module.viterbi_prune

    def recorded(*args, **kwargs):
        runs.append(search(*args, **kwargs))
        return runs[-1]

    monkeypatch.setattr(viterbi_module, "viterbi_prune", recorded)
    return runs


def test_large_matrix_is_calibrated_on_a_sample(monkeypatch):
    w = gaussian((640, 640), seed=7)
    whole = calibrate(w, 0.9, ViterbiSpec(), sample=None)
    runs = record_searches(monkeypatch)
    sampled = calibrate(w, 0.9, ViterbiSpec(), sample=16384)
    sizes = [run.mask.size for run in runs]
    assert set(sizes) == {64 * 256 * 5, w.size}
    assert sizes.count(w.size) == 1
    assert abs(sampled.kept - 0.1) <= 0.005
    assert np.array_equal(sampled.mask, expand_matrix(sampled.spec, sampled.inputs, w.shape))
    mass = kept_mass_ratio(w, sampled.mask)
    assert mass == pytest.approx(kept_mass_ratio(w, whole.mask), abs=0.01)


def test_a_biased_sample_costs_at_most_two_full_searches(monkeypatch):
    w = gaussian((640, 640), seed=8)
    w.reshape(-1, 256 * 5)[::5] *= 0.05  # the evenly spaced sample takes only these
    runs = record_searches(monkeypatch)
    pruning = calibrate(w, 0.9, ViterbiSpec(), sample=16384)
    full = [run for run in runs if run.mask.size == w.size]
    assert len(full) == 2
    assert abs(full[1].kept - 0.1) < abs(full[0].kept - 0.1)
    assert pruning is full[1]


def test_compress_digits_layers():
    mlp = load_digits_mlp()
    spec = ViterbiSpec()
    for w in mlp.weights:
        ref, enc = FMT.compress(w, 0.9, spec)
        assert abs(enc.extras["kept_fraction"] - 0.1) <= 0.005
        assert enc.spec.threshold is not None and enc.spec.n_ff == spec.n_ff
        assert enc.extras["kept_mass_ratio"] == pytest.approx(
            kept_mass_ratio(w, FMT.decode(enc).mask)
        )
        assert 0.5 < enc.extras["kept_mass_ratio"] <= 1.0
        check_storage(w, ref, enc, enc.spec)


def test_threshold_strategy_reproduced_by_encode():
    w = gaussian((64, 200), seed=2)
    pruning = calibrate(w, 0.85, ViterbiSpec(), strategy="threshold", tolerance=0.5)
    assert pruning.theta == magnitude_threshold(w, 1 - pruning.spec.threshold / 16)
    assert np.array_equal(FMT.decode(FMT.encode(w, pruning.spec)).mask, pruning.mask)


def test_explicit_threshold_calibrates_theta_only():
    w = gaussian((128, 128), seed=4)
    ref, enc = FMT.compress(w, 0.9, ViterbiSpec(threshold=3))
    assert enc.spec.threshold == 3
    assert abs(enc.extras["kept_fraction"] - 0.1) <= 0.005


def test_kept_zero_weights_are_stored():
    w = np.zeros((20, 30), dtype=np.float32)
    w[::3, ::2] = 1.0
    ref, enc = FMT.compress(w, None, ViterbiSpec(threshold=8, segment=16))
    mask = FMT.decode(enc).mask
    assert (mask & (w == 0)).any()
    check_storage(w, ref, enc, enc.spec)


def test_integer_weights():
    w = np.random.default_rng(0).integers(-128, 128, (30, 40)).astype(np.int8)
    ref, enc = FMT.compress(w, 0.8, ViterbiSpec(segment=32))
    check_storage(w, ref, enc, enc.spec)
    assert enc.streams["values"].width == 8


# ---------------------------------------------------------------- errors


def test_encode_without_threshold_says_what_to_give():
    with pytest.raises(FormatError, match="threshold is unset: give a sparsity"):
        FMT.encode(gaussian((8, 8), seed=0), ViterbiSpec())


def test_unreachable_sparsity_names_range():
    w = gaussian((64, 64), seed=0)
    with pytest.raises(FormatError, match=r"sparsity 0\.999 .*out of reach.*threshold 1\.\.2"):
        FMT.compress(w, 0.999, ViterbiSpec(n_c=1))
    with pytest.raises(FormatError, match=r"sparsity 0\.9 .*threshold=16.*reachable kept"):
        FMT.compress(w, 0.9, ViterbiSpec(threshold=16))


def test_bad_inputs():
    w = gaussian((8, 8), seed=0)
    with pytest.raises(FormatError, match="needs a ViterbiSpec"):
        FMT.compress(w, 0.9, CsrSpec())
    with pytest.raises(WeightsError, match="sparsity"):
        FMT.compress(w, 1.0, ViterbiSpec())
    with pytest.raises(SpecError, match=r"ViterbiSpec.n_c must be in 1\.\.n_in \+ n_ff=3"):
        ViterbiSpec(n_ff=2, n_c=4, n_out=1)
    with pytest.raises(ValueError, match=r"inputs must have shape \(cycles, n_in=1\)"):
        expand(ViterbiSpec(threshold=1), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="0/1"):
        expand(ViterbiSpec(threshold=1), np.full((4, 1), 2))
    with pytest.raises(ValueError, match="needs"):
        expand_matrix(ViterbiSpec(threshold=1), np.zeros((3, 1)), (4, 4))
    with pytest.raises(ValueError, match=r"scores must lie in -127\.\.127"):
        viterbi_search_fixed(ViterbiSpec(threshold=1), np.array([128]))
    with pytest.raises(ValueError, match="strategy must be one of"):
        calibrate(w, 0.9, ViterbiSpec(), strategy="fast")
