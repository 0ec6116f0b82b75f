"""Low-rank binary indexing: exact updates, monotone refinement, planted recovery,
calibration, stream layout, size accounting and errors, against slow references."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codesign.models.format import FormatError
from codesign.models.lbi import LbiFormat
from codesign.models.lbi_calibrate import (
    calibrate,
    importance_scores,
    ranked_magnitudes,
    threshold_at,
)
from codesign.models.lbi_factorize import factorize, update_codes
from codesign.models.specs import BitmapSpec, LbiSpec, SpecError
from codesign.models.workloads import WeightsError, gaussian, quantize_symmetric

SEMIRINGS = ["bool", "gf2"]


# ---------------------------------------------------------------- slow references


def covered(row_code: int, col_code: int, rank: int, semiring: str) -> bool:
    """Σ_r Ip[i, r]·Iz[r, j] in the semiring, bit by bit."""
    terms = [(row_code >> r) & 1 and (col_code >> r) & 1 for r in range(rank)]
    return any(terms) if semiring == "bool" else sum(terms) % 2 == 1


def tiles_of(shape, spec):
    """(r0, r1, c0, c1) of every tile in row-major tile order, edge tiles clipped."""
    m, n = shape
    return [
        (r0, min(r0 + spec.tile_rows, m), c0, min(c0 + spec.tile_cols, n))
        for r0 in range(0, m, spec.tile_rows)
        for c0 in range(0, n, spec.tile_cols)
    ]


def slow_mask_from_streams(enc) -> np.ndarray:
    """The mask read tile by tile from the ``ip``/``iz`` streams as the format documents:
    per tile in row-major order, its a' row codes (ip) and its b' column codes (iz)."""
    spec = enc.spec
    ip = enc.streams["ip"].data.tolist()
    iz = enc.streams["iz"].data.tolist()
    mask = np.zeros(enc.shape, dtype=bool)
    pi = zi = 0
    for r0, r1, c0, c1 in tiles_of(enc.shape, spec):
        rows = ip[pi : pi + r1 - r0]
        cols = iz[zi : zi + c1 - c0]
        pi += r1 - r0
        zi += c1 - c0
        for i, rc in enumerate(rows):
            for j, cc in enumerate(cols):
                mask[r0 + i, c0 + j] = covered(rc, cc, spec.rank, spec.semiring)
    assert pi == len(ip) and zi == len(iz)
    return mask


def slow_index_bits(shape, spec) -> int:
    return sum(spec.rank * ((r1 - r0) + (c1 - c0)) for r0, r1, c0, c1 in tiles_of(shape, spec))


def slow_row_values(scores_row, col_codes, rank, semiring) -> list[float]:
    """Objective of one row for each of its 2^rank codes, by enumeration."""
    return [
        sum(
            float(s)
            for s, cc in zip(scores_row, col_codes, strict=True)
            if covered(c, int(cc), rank, semiring)
        )
        for c in range(2**rank)
    ]


def slow_mass_ratio(weights, mask) -> float:
    mags = np.sort(np.abs(weights.astype(np.float64)), axis=None)[::-1]
    best = mags[: int(mask.sum())].sum()
    return float(np.abs(weights.astype(np.float64))[mask].sum() / best)


def planted_codes(rng, shape, tile_rows, tile_cols, rank, kind):
    """Row codes (tiles across, m) and column codes (tiles down, n) of a planted mask.

    ``blocks``: every row and column of a tile in at most one factor (disjoint
    rectangles: the same mask in both semirings); ``random``: each factor bit set with
    probability 0.3 (overlapping rectangles); ``onehot``: each row in at most one factor,
    columns random."""
    m, n = shape
    across, down = -(-n // tile_cols), -(-m // tile_rows)

    def one_factor(size):
        group = rng.integers(0, rank + 1, size)
        return np.where(group < rank, 1 << np.minimum(group, rank - 1), 0)

    def random_bits(size):
        bits = rng.random((size, rank)) < 0.3
        return (bits * (1 << np.arange(rank))).sum(axis=1)

    rows_fn = random_bits if kind == "random" else one_factor
    cols_fn = one_factor if kind == "blocks" else random_bits
    return (
        np.stack([rows_fn(m) for _ in range(across)]).astype(np.int64),
        np.stack([cols_fn(n) for _ in range(down)]).astype(np.int64),
    )


def slow_mask_from_codes(ip, iz, tile_rows, tile_cols, rank, semiring):
    m, n = ip.shape[1], iz.shape[1]
    return np.array(
        [
            [
                covered(int(ip[j // tile_cols, i]), int(iz[i // tile_rows, j]), rank, semiring)
                for j in range(n)
            ]
            for i in range(m)
        ]
    )


# ---------------------------------------------------------------- the exact updates


@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(1, 150),
    cols=st.integers(1, 11),
    rank=st.integers(1, 5),
    semiring=st.sampled_from(SEMIRINGS),
    seed=st.integers(0, 2**32 - 1),
)
def test_row_update_is_the_best_of_all_codes(rows, cols, rank, semiring, seed):
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(rows, cols))
    if rng.random() < 0.3:
        scores = np.round(scores)
    col_codes = rng.integers(0, 2**rank, cols).astype(np.int64)
    codes = rng.integers(0, 2**rank, rows).astype(np.int64)
    new = codes.copy()
    by_col = np.ascontiguousarray(scores.T)
    changed, objective = update_codes(by_col, col_codes, new, rank, semiring == "gf2")
    total = 0.0
    for i in range(rows):
        values = slow_row_values(scores[i], col_codes, rank, semiring)
        assert values[new[i]] == pytest.approx(max(values), abs=1e-9)
        if new[i] != codes[i]:
            assert values[new[i]] > values[codes[i]] + 1e-12
        total += values[new[i]]
    assert objective == pytest.approx(total, abs=1e-9)
    assert changed == bool((new != codes).any())


@pytest.mark.parametrize("semiring", SEMIRINGS)
def test_update_keeps_the_current_code_on_ties(semiring):
    by_col = np.zeros((4, 3))
    codes = np.array([5, 0, 7], dtype=np.int64)
    new = codes.copy()
    changed, objective = update_codes(
        by_col, np.arange(4, dtype=np.int64), new, 3, semiring == "gf2"
    )
    assert not changed and objective == 0.0
    np.testing.assert_array_equal(new, codes)


# ---------------------------------------------------------------- refinement


@settings(max_examples=25, deadline=None)
@given(
    m=st.integers(1, 40),
    n=st.integers(1, 40),
    data=st.data(),
    semiring=st.sampled_from(SEMIRINGS),
    init=st.sampled_from(["svd", "deflation", "best"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_objective_trace_never_decreases_and_matches_the_mask(m, n, data, semiring, init, seed):
    tile_rows = data.draw(st.integers(1, m))
    tile_cols = data.draw(st.integers(1, n))
    rank = data.draw(st.integers(1, min(tile_rows, tile_cols, 6)))
    rng = np.random.default_rng(seed)
    scores = np.abs(rng.normal(size=(m, n))) - rng.uniform(0.0, 2.0)
    fact = factorize(scores, rank, tile_rows, tile_cols, semiring, init=init)
    trace = fact.trace
    assert trace.shape == (2 * fact.iterations + 1,)
    assert np.all(np.diff(trace) >= -1e-9 * np.abs(scores).sum())
    mask = slow_mask_from_codes(fact.ip, fact.iz, tile_rows, tile_cols, rank, semiring)
    np.testing.assert_array_equal(fact.mask(), mask)
    assert fact.objective == pytest.approx(scores[mask].sum(), abs=1e-9)
    assert fact.objective >= 0.0
    assert np.all(fact.ip < 2**rank) and np.all(fact.iz < 2**rank)


@pytest.mark.parametrize("semiring", SEMIRINGS)
def test_refinement_stops_at_max_iters(semiring):
    scores = np.abs(gaussian((64, 64), 3).astype(np.float64)) - 0.06
    capped = factorize(scores, 8, 64, 64, semiring, max_iters=1, init="svd")
    free = factorize(scores, 8, 64, 64, semiring, init="svd")
    assert capped.iterations == 1 and capped.trace.shape == (3,)
    assert free.converged and free.iterations > 1
    np.testing.assert_allclose(free.trace[:3], capped.trace)


PLANTED = [
    ("blocks", "bool", (50, 70), 16, 24, 3),
    ("blocks", "gf2", (50, 70), 16, 24, 3),
    ("blocks", "bool", (37, 29), 10, 7, 5),
    ("blocks", "gf2", (37, 29), 10, 7, 5),
    ("blocks", "bool", (64, 64), 64, 64, 8),
    ("onehot", "bool", (64, 64), 64, 64, 2),
    ("random", "gf2", (64, 64), 64, 64, 2),
    ("random", "gf2", (64, 64), 64, 64, 4),
    ("random", "gf2", (48, 40), 48, 40, 3),
]


@pytest.mark.parametrize(("kind", "semiring", "shape", "tile_rows", "tile_cols", "rank"), PLANTED)
@pytest.mark.parametrize("seed", range(6))
def test_planted_rank_k_mask_is_recovered(kind, semiring, shape, tile_rows, tile_cols, rank, seed):
    rng = np.random.default_rng(seed)
    ip, iz = planted_codes(rng, shape, tile_rows, tile_cols, rank, kind)
    planted = slow_mask_from_codes(ip, iz, tile_rows, tile_cols, rank, semiring)
    magnitude = rng.uniform(0.5, 1.5, shape)
    scores = np.where(planted, magnitude, -magnitude)
    fact = factorize(scores, rank, tile_rows, tile_cols, semiring)
    assert fact.objective >= scores[planted].sum() - 1e-9
    np.testing.assert_array_equal(fact.mask(), planted)


# ---------------------------------------------------------------- calibration


@pytest.mark.parametrize("semiring", SEMIRINGS)
@pytest.mark.parametrize("sparsity", [0.5, 0.8, 0.9, 0.95])
def test_calibration_reaches_the_target_kept_count(semiring, sparsity):
    w = gaussian((120, 90), 7)
    cal = calibrate(w, sparsity, 4, 24, 18, semiring)
    target = w.size - round(sparsity * w.size)
    assert cal.target == target
    kept = int(cal.factorization.mask().sum())
    assert kept == cal.best.kept
    assert abs(kept - target) <= max(1, int(0.01 * target))
    assert cal.reached
    mags = np.sort(np.abs(w.astype(np.float64)), axis=None)
    first = round(sparsity * w.size)
    assert cal.probes[0].position == first
    assert cal.probes[0].threshold == pytest.approx((mags[first - 1] + mags[first]) / 2)
    np.testing.assert_array_equal(cal.scores, ranked_magnitudes(w) - cal.best.threshold)
    gap = np.diff(np.unique(np.abs(w.astype(np.float64)))).min()
    np.testing.assert_allclose(
        cal.scores, np.abs(w.astype(np.float64)) - cal.best.threshold, rtol=0, atol=gap / 2
    )


def test_calibration_reports_the_closest_mask_when_the_target_is_unreachable():
    # A rank-1 Boolean 4x4 mask is a rectangle: it keeps 0, 1, 2, 3, 4, 6, 8, 9, 12 or 16.
    w = np.random.default_rng(0).permutation(np.arange(1.0, 17.0)).reshape(4, 4)
    cal = calibrate(w, 0.125, 1, 4, 4, "bool", max_probes=3)
    assert cal.target == 14 and not cal.reached
    misses = [abs(p.kept - cal.target) for p in cal.probes]
    assert abs(cal.best.kept - cal.target) == min(misses) == 2
    assert int(cal.factorization.mask().sum()) == cal.best.kept
    assert len(cal.probes) == 9, "best, then svd, then deflation: 3 probes each"
    single = calibrate(w, 0.125, 1, 4, 4, "bool", max_probes=3, init="svd")
    assert single.init == "svd" and len(single.probes) == 3


def test_threshold_at_separates_pruned_from_kept():
    mags = np.array([0.0, 0.1, 0.1, 0.4, 0.9])
    assert threshold_at(mags, 0) < 0.0
    assert threshold_at(mags, 1) == pytest.approx(0.05)
    assert threshold_at(mags, 3) == pytest.approx(0.25)
    assert threshold_at(mags, 3.25) == pytest.approx(0.325)
    assert threshold_at(mags, 4.5) == 0.9
    assert threshold_at(mags, 5) > 0.9
    positions = np.linspace(-1, 6, 141)
    assert np.all(np.diff([threshold_at(mags, q) for q in positions]) >= 0)
    scores = importance_scores(np.array([[-0.4, 0.1]]), threshold_at(mags, 3))
    np.testing.assert_allclose(scores, [[0.15, -0.15]])


# ---------------------------------------------------------------- the format

FMT = LbiFormat()
FORMAT_CASES = [
    LbiSpec(rank=4, tile_rows=24, tile_cols=18, semiring="bool"),
    LbiSpec(rank=4, tile_rows=24, tile_cols=18, semiring="gf2"),
    LbiSpec(rank=3, tile_rows=13, tile_cols=7, semiring="bool"),
    LbiSpec(rank=5, tile_rows=7, tile_cols=11, semiring="gf2"),
    LbiSpec(rank=1, tile_rows=1, tile_cols=1, semiring="bool"),
]


def check_layout_and_sizes(w_stored, enc, mask):
    spec = enc.spec
    b = w_stored.dtype.itemsize * 8
    assert enc.index_bits == slow_index_bits(w_stored.shape, spec) == enc.stream_bits("index")
    assert enc.value_bits == int(mask.sum()) * b == enc.stream_bits("value")
    assert enc.streams["ip"].width == enc.streams["iz"].width == spec.rank
    for key in ("ip", "iz"):
        assert enc.streams[key].data.ndim == 1
        assert int(enc.streams[key].data.max(initial=0)) < 2**spec.rank
    np.testing.assert_array_equal(slow_mask_from_streams(enc), mask)
    values = [
        w_stored[i, j] for i in range(mask.shape[0]) for j in range(mask.shape[1]) if mask[i, j]
    ]
    np.testing.assert_array_equal(enc.streams["values"].data, np.array(values, w_stored.dtype))
    dec = FMT.decode(enc)
    np.testing.assert_array_equal(dec.mask, mask)
    np.testing.assert_array_equal(dec.weights, np.where(mask, w_stored, 0).astype(w_stored.dtype))
    assert dec.weights.dtype == w_stored.dtype


@pytest.mark.parametrize("spec", FORMAT_CASES, ids=str)
@pytest.mark.parametrize("sparsity", [0.0, 0.7, 0.9])
def test_compress_roundtrip_layout_and_extras(spec, sparsity):
    w = gaussian((50, 37), 11)
    reference, enc = FMT.compress(w, sparsity, spec)
    mask = reference != 0
    check_layout_and_sizes(reference, enc, mask)
    np.testing.assert_array_equal(FMT.decode(enc).weights, reference)
    np.testing.assert_array_equal(reference, np.where(mask, w, 0))
    np.testing.assert_array_equal(FMT.prune(w, sparsity, spec), reference)
    target = w.size - round(sparsity * w.size)
    miss = abs(int(mask.sum()) - target)
    assert miss <= max(1, int(0.1 * target))
    extras = enc.extras
    assert extras["calibration_reached"] == float(miss <= max(1, int(0.01 * target)))
    assert extras["kept_fraction"] == pytest.approx(mask.mean())
    assert extras["target_kept_fraction"] == pytest.approx(target / w.size)
    assert extras["kept_mass_ratio"] == pytest.approx(slow_mass_ratio(w, mask))
    scores = ranked_magnitudes(w) - extras["threshold"]
    assert extras["objective"] == pytest.approx(scores[mask].sum(), rel=1e-9, abs=1e-9)
    if sparsity == 0.0:
        assert mask.all()


@settings(max_examples=40, deadline=None)
@given(
    m=st.integers(1, 30),
    n=st.integers(1, 30),
    data=st.data(),
    semiring=st.sampled_from(SEMIRINGS),
    density=st.sampled_from([0.0, 0.1, 0.5, 1.0]),
    dtype=st.sampled_from([np.float32, np.float16, np.int8, np.int32]),
    seed=st.integers(0, 2**32 - 1),
)
def test_encode_stores_exactly_the_chosen_mask(m, n, data, semiring, density, dtype, seed):
    tile_rows = data.draw(st.integers(1, m))
    tile_cols = data.draw(st.integers(1, n))
    rank = data.draw(st.integers(1, min(tile_rows, tile_cols, 6)))
    spec = LbiSpec(rank=rank, tile_rows=tile_rows, tile_cols=tile_cols, semiring=semiring)
    rng = np.random.default_rng(seed)
    keep = rng.random((m, n)) < density
    w = np.where(keep, rng.integers(1, 100, (m, n)) * rng.choice([-1, 1], (m, n)), 0).astype(dtype)
    enc = FMT.encode(w, spec)
    mask = FMT.decode(enc).mask
    check_layout_and_sizes(w, enc, mask)
    assert enc.nnz == int(keep.sum())
    covered_nz = (mask & keep).sum() / max(1, keep.sum())
    assert enc.extras["covered_fraction"] == pytest.approx(covered_nz)
    if not keep.any():
        assert not mask.any()


@pytest.mark.parametrize("semiring", SEMIRINGS)
def test_encode_of_a_reachable_pattern_is_lossless(semiring):
    rng = np.random.default_rng(5)
    ip, iz = planted_codes(rng, (45, 52), 15, 13, 3, "blocks")
    planted = slow_mask_from_codes(ip, iz, 15, 13, 3, semiring)
    w = np.where(planted, rng.uniform(0.5, 1.5, planted.shape), 0.0).astype(np.float32)
    enc = FMT.encode(w, LbiSpec(rank=3, tile_rows=15, tile_cols=13, semiring=semiring))
    np.testing.assert_array_equal(FMT.decode(enc).weights, w)
    assert enc.extras["covered_fraction"] == 1.0


def test_index_bits_ignore_the_pruning_rate_and_match_the_closed_form():
    w = gaussian((128, 96), 2)
    spec = LbiSpec(rank=4, tile_rows=32, tile_cols=32)
    sizes = {FMT.compress(w, s, spec)[1].index_bits for s in (0.5, 0.9)}
    assert sizes == {(4 * 3) * 4 * (32 + 32)}
    edge = LbiSpec(rank=2, tile_rows=50, tile_cols=40)
    assert FMT.encode(w, edge).index_bits == 2 * (3 * 128 + 3 * 96)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: LbiSpec(rank=9, tile_rows=8, tile_cols=64), r"LbiSpec.rank must be in 1\.\.min"),
        (lambda: LbiSpec(rank=17, tile_rows=64, tile_cols=64), r"LbiSpec.rank must be in 1\.\.16"),
        (lambda: LbiSpec(rank=0), r"LbiSpec.rank must be in 1\.\.16, got 0"),
        (lambda: LbiSpec(semiring="xor"), r"LbiSpec.semiring must be one of bool, gf2"),
        (lambda: LbiSpec(tile_rows=0), r"LbiSpec.tile_rows must be in 1\.\.4096"),
    ],
)
def test_spec_errors_name_the_field_and_range(factory, message):
    with pytest.raises(SpecError, match=message):
        factory()


def test_tiles_larger_than_the_matrix_are_rejected():
    w = gaussian((10, 100), 0)
    with pytest.raises(
        FormatError, match=r"LbiSpec.tile_rows=64 .* 10 rows; use tile_rows in 8\.\.10"
    ):
        FMT.encode(w, LbiSpec())
    with pytest.raises(
        FormatError, match=r"tile_rows in 1\.\.5 and rank in 1\.\.tile_rows \(rank=8"
    ):
        FMT.compress(w[:5], 0.9, LbiSpec())
    with pytest.raises(FormatError, match=r"LbiSpec.tile_cols=64 .* 20 columns; .* in 4\.\.20"):
        FMT.compress(gaussian((80, 20), 0), 0.9, LbiSpec(rank=4))


def test_unreachable_sparsity_names_the_rank_and_tile_limit():
    # A rank-1 Boolean 4x4 mask is a rectangle: 14 kept weights is no rectangle.
    w = np.random.default_rng(0).permutation(np.arange(1.0, 17.0)).reshape(4, 4)
    with pytest.raises(
        FormatError,
        match=r"sparsity=0\.125 is out of reach .* keeps 14 of 16 .* between two neighbouring "
        r"magnitudes .* masks of this rank on these tiles keep no count in between; .* raise rank",
    ):
        FMT.compress(w.astype(np.float32), 0.125, LbiSpec(rank=1, tile_rows=4, tile_cols=4))


def heavy_tailed_int8(shape: tuple[int, int], seed: int) -> np.ndarray:
    """A layer like a trained FFN matrix, quantized to int8: Student-t (8 degrees of
    freedom, unit variance) weights, two outliers of 5..15 per row and four of 150..200
    in the whole matrix, so max/std >= 100 and the int8 levels tie massively."""
    rng = np.random.default_rng(seed)
    m, n = shape
    w = rng.standard_t(8.0, shape) / np.sqrt(8.0 / 6.0)
    cols = rng.integers(0, n, (m, 2))
    w[np.arange(m)[:, None], cols] = rng.choice([-1, 1], (m, 2)) * rng.uniform(5, 15, (m, 2))
    w.flat[rng.choice(w.size, 4, replace=False)] = rng.choice([-1, 1], 4) * rng.uniform(150, 200, 4)
    assert np.abs(w).max() / w.std() >= 100
    return quantize_symmetric(w.astype(np.float32), 8)[0]


@pytest.mark.parametrize("sparsity", [0.8, 0.9, 0.95])
def test_quantized_heavy_tailed_layer_reaches_the_sparsity(sparsity):
    q = heavy_tailed_int8((512, 512), 0)
    levels = np.abs(q.astype(np.int64))
    assert 0.02 < (levels >= 2).mean() < 0.06 and 0.35 < (levels >= 1).mean() < 0.5
    reference, enc = FMT.compress(q, sparsity, LbiSpec())
    kept = np.count_nonzero(FMT.decode(enc).mask) / q.size
    assert abs(kept - (1 - sparsity)) <= 0.005
    assert enc.extras["calibration_reached"] == 1.0
    np.testing.assert_array_equal(FMT.decode(enc).weights, reference)
    assert enc.extras["kept_mass_ratio"] > 0.6


@pytest.mark.parametrize("semiring", SEMIRINGS)
def test_calibration_on_a_sample_of_tiles_factorizes_the_whole_matrix_at_most_twice(semiring):
    q = heavy_tailed_int8((512, 512), 1)
    cal = calibrate(q, 0.9, 8, 64, 64, semiring, sample=16)
    whole = [p for p in cal.probes if not p.sampled]
    assert 1 <= len(whole) <= 2 and cal.best in whole
    assert any(p.sampled for p in cal.probes)
    kept = int(cal.factorization.mask().sum())
    assert kept == cal.best.kept
    assert abs(kept / q.size - 0.1) <= 0.005
    full = calibrate(q, 0.9, 8, 64, 64, semiring, sample=None)
    assert not any(p.sampled for p in full.probes)


def test_ranked_magnitudes_keep_the_order_and_break_ties_by_row_then_column_mass():
    w = np.array([[1, -2, 0], [2, 2, 1], [-1, 0, 1]], dtype=np.int8)
    ranked = ranked_magnitudes(w)
    mags = np.abs(w.astype(np.float64))
    assert np.unique(ranked).size == w.size
    assert (np.abs(ranked - mags) < 0.5).all()
    order = np.argsort(ranked, axis=None)
    assert (np.diff(mags.ravel()[order]) >= 0).all()
    # row masses 3, 5, 2 and column masses 4, 4, 2: row 1 > row 0 > row 2, column 1 > 0 > 2
    ones = [(0, 0), (1, 2), (2, 0), (2, 2)]
    assert sorted(ones, key=lambda ij: ranked[ij]) == [(2, 2), (2, 0), (0, 0), (1, 2)]
    floats = gaussian((30, 40), 3)
    gap = np.diff(np.unique(np.abs(floats.astype(np.float64)))).min()
    assert np.abs(ranked_magnitudes(floats) - np.abs(floats.astype(np.float64))).max() < gap


def test_other_bad_input():
    w = gaussian((16, 16), 0)
    spec = LbiSpec(rank=2, tile_rows=8, tile_cols=8)
    with pytest.raises(WeightsError, match="sparsity"):
        FMT.compress(w, 1.0, spec)
    with pytest.raises(FormatError, match="needs a LbiSpec, got BitmapSpec"):
        FMT.compress(w, 0.5, BitmapSpec())
    with pytest.raises(FormatError, match="needs a LbiSpec, got BitmapSpec"):
        FMT.encode(w, BitmapSpec())
    bad = w.copy()
    bad[2, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        FMT.compress(bad, 0.5, spec)
    with pytest.raises(ValueError, match="semiring must be one of bool, gf2"):
        factorize(np.zeros((4, 4)), 1, 2, 2, "or")
    with pytest.raises(ValueError, match="init must be one of svd, deflation, best"):
        LbiFormat(init="random")
    with pytest.raises(ValueError, match="tolerance"):
        LbiFormat(tolerance=0.5, max_miss=0.1)


def test_fitted_clips_tiles_and_rank_to_the_matrix():
    spec = LbiSpec()  # rank 8, 64x64 tiles
    assert spec.fitted((300, 64)) is spec
    assert spec.fitted((10, 100)) == LbiSpec(rank=8, tile_rows=10, tile_cols=64)
    assert spec.fitted((4, 3)) == LbiSpec(rank=3, tile_rows=4, tile_cols=3)
    w = gaussian((10, 100), 1)
    ref, enc = FMT.compress(w, 0.9, spec.fitted(w.shape))
    assert np.array_equal(FMT.decode(enc).weights, ref)
