"""BMWM and DARB: exact storage, sizes and rules against slow loop references, and the
decode-cost model on a hand-worked example."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codesign.models.csr import CsrFormat
from codesign.models.darb import (
    BmwmFormat,
    DarbFormat,
    bmwm_block_for,
    darb_log_blocks,
    darb_log_blocks_for,
    magnitude_row_counts,
)
from codesign.models.decode_cost import block_decode_cost, decode_cost
from codesign.models.format import FormatError
from codesign.models.specs import BmwmSpec, DarbSpec, NmSpec, SpecError
from codesign.models.workloads import magnitude_mask

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DTYPES = [np.float32, np.float64, np.float16, np.int8, np.int16, np.int32, np.uint8]
BMWM = BmwmFormat()
DARB = DarbFormat()


# ---------------------------------------------------------------- slow references


def random_matrix(rng: np.random.Generator, shape, density: float, dtype) -> np.ndarray:
    """Bernoulli(density) non-zeros; row 0 all zero and row 1 all dense when m ≥ 3."""
    keep = rng.random(shape) < density
    if shape[0] >= 3:
        keep[0] = False
        keep[1] = True
    if np.issubdtype(dtype, np.integer):
        vals = rng.integers(1, min(np.iinfo(dtype).max, 100) + 1, size=shape)
        if np.iinfo(dtype).min < 0:
            vals = vals * rng.choice([-1, 1], size=shape)
    else:
        vals = rng.standard_normal(shape) + np.where(rng.random(shape) < 0.5, -2.0, 2.0)
    return np.where(keep, vals, 0).astype(dtype)


def block_ranges(n: int, b: int) -> list[range]:
    return [range(lo, min(lo + b, n)) for lo in range(0, n, b)]


def ref_select(w: np.ndarray, sizes: list[int]) -> list[list[int]]:
    """Per row, the column kept in each block: the first largest |w| (Python loops)."""
    kept = []
    for r, b in enumerate(sizes):
        row = []
        for block in block_ranges(w.shape[1], b):
            mags = [abs(float(w[r, c])) for c in block]
            row.append(block[mags.index(max(mags))])
        kept.append(row)
    return kept


def ref_index_bits(n: int, sizes: list[int], code_bits: int) -> int:
    return sum(len(block_ranges(n, b)) * int(math.log2(b)) + code_bits for b in sizes)


def ref_rule(count: int, n: int, max_block: int, rounding: str) -> int:
    """DARB's b_r by trying every power of two (independent of the vectorised rule)."""
    cands = [1]
    while cands[-1] < min(max_block, n):
        cands.append(cands[-1] * 2)
    cands = [b for b in cands if b <= max_block]
    kept = {b: len(block_ranges(n, b)) for b in cands}
    if rounding == "nearest":
        return min(cands, key=lambda b: (abs(kept[b] - count), -b))
    if rounding == "down":
        ok = [b for b in cands if kept[b] >= count]
        return max(ok) if ok else cands[0]
    ok = [b for b in cands if kept[b] <= count]
    return min(ok) if ok else cands[-1]


def ref_fitting(row: np.ndarray, cap: int) -> int:
    """Largest power-of-two b ≤ cap whose blocks hold at most one non-zero of ``row``."""
    b = cap
    while b > 1 and any(
        np.count_nonzero(row[blk.start : blk.stop]) > 1 for blk in block_ranges(row.size, b)
    ):
        b //= 2
    return b


def cap_of(n: int, max_block: int) -> int:
    return min(max_block, 1 << (n - 1).bit_length())


def block_sizes(enc) -> list[int]:
    m = enc.shape[0]
    if enc.format == "bmwm":
        return [enc.spec.b] * m
    return [1 << int(k) for k in enc.streams["row_code"].data]


def check_storage(w: np.ndarray, enc, fmt, sizes: list[int]) -> None:
    """Exact decode, one stored slot per block at the reference column, sizes."""
    m, n = w.shape
    dec = fmt.decode(enc)
    assert dec.weights.dtype == w.dtype
    np.testing.assert_array_equal(dec.weights, w)
    assert not ((w != 0) & ~dec.mask).any()
    expect = ref_select(w, sizes)
    for r in range(m):
        assert np.flatnonzero(dec.mask[r]).tolist() == expect[r]
    code = math.ceil(math.log2(math.log2(enc.spec.max_block) + 1)) if enc.format == "darb" else 0
    assert enc.index_bits == ref_index_bits(n, sizes, code)
    assert enc.index_bits == enc.stream_bits("index")
    slots = sum(len(block_ranges(n, b)) for b in sizes)
    assert enc.stored_values == slots
    assert enc.value_bits == slots * w.dtype.itemsize * 8 == enc.stream_bits("value")
    for key, stream in enc.streams.items():
        if stream.role == "index" and stream.data.size:
            assert stream.data.min() >= 0 and int(stream.data.max()) < 2**stream.width, key


# ---------------------------------------------------------------- round trips


@SETTINGS
@given(
    rows=st.integers(1, 12),
    cols=st.integers(1, 70),
    density=st.sampled_from([0.0, 0.05, 0.3, 1.0]),
    dtype=st.sampled_from(DTYPES),
    b=st.sampled_from([1, 2, 4, 8, 16, 128]),
    seed=st.integers(0, 2**32 - 1),
)
def test_bmwm_roundtrip(rows, cols, density, dtype, b, seed):
    w = random_matrix(np.random.default_rng(seed), (rows, cols), density, dtype)
    pruned = BMWM.prune(w, 1.0 - 1.0 / b, BmwmSpec(b=b))
    for r, row in enumerate(ref_select(w, [b] * rows)):
        expect = np.zeros(cols, dtype=w.dtype)
        expect[row] = w[r, row]
        np.testing.assert_array_equal(pruned[r], expect)
    enc = BMWM.encode(pruned, BmwmSpec(b=b))
    check_storage(pruned, enc, BMWM, [b] * rows)


@SETTINGS
@given(
    rows=st.integers(1, 12),
    cols=st.integers(1, 70),
    density=st.sampled_from([0.0, 0.05, 0.3, 0.8, 1.0]),
    dtype=st.sampled_from(DTYPES),
    max_block=st.sampled_from([1, 2, 8, 64]),
    seed=st.integers(0, 2**32 - 1),
)
def test_darb_encode_any_matrix(rows, cols, density, dtype, max_block, seed):
    """DARB stores any matrix exactly, each row at its largest fitting block size."""
    w = random_matrix(np.random.default_rng(seed), (rows, cols), density, dtype)
    enc = DARB.encode(w, DarbSpec(max_block=max_block))
    sizes = [ref_fitting(w[r], cap_of(cols, max_block)) for r in range(rows)]
    assert block_sizes(enc) == sizes
    check_storage(w, enc, DARB, sizes)


@SETTINGS
@given(
    rows=st.integers(1, 12),
    cols=st.integers(1, 70),
    dtype=st.sampled_from([np.float32, np.float16, np.int8]),
    sparsity=st.floats(0.0, 0.97),
    max_block=st.sampled_from([4, 16, 64]),
    rounding=st.sampled_from(["nearest", "down", "up"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_darb_compress(rows, cols, dtype, sparsity, max_block, rounding, seed):
    w = random_matrix(np.random.default_rng(seed), (rows, cols), 0.9, dtype)
    spec = DarbSpec(max_block=max_block, rounding=rounding)
    counts = magnitude_mask(w, sparsity).sum(axis=1)
    cap = cap_of(cols, max_block)
    budget = w.size - round(sparsity * w.size)
    if rows * len(block_ranges(cols, cap)) > budget:
        with pytest.raises(FormatError, match=f"max_block={max_block}"):
            DARB.compress(w, sparsity, spec)
        return
    ref, enc = DARB.compress(w, sparsity, spec)
    sizes = [ref_rule(int(c), cols, max_block, rounding) for c in counts]
    assert block_sizes(enc) == sizes
    check_storage(ref, enc, DARB, sizes)
    kept = ref_select(w, sizes)
    for r in range(rows):
        np.testing.assert_array_equal(np.flatnonzero(DARB.decode(enc).mask[r]), kept[r])
        np.testing.assert_array_equal(ref[r, kept[r]], w[r, kept[r]])
    assert np.count_nonzero(ref) <= sum(len(k) for k in kept)
    np.testing.assert_array_equal(DARB.prune(w, sparsity, spec), ref)


def test_zero_rows_and_dense_rows():
    w = np.zeros((4, 20), dtype=np.float32)
    w[1] = np.arange(1, 21)
    w[2, [3, 17]] = [5.0, -6.0]
    enc = DARB.encode(w, DarbSpec(max_block=64))
    assert block_sizes(enc) == [32, 1, 16, 32]
    check_storage(w, enc, DARB, [32, 1, 16, 32])
    zero = np.zeros((3, 9), dtype=np.float64)
    for fmt, spec in ((BMWM, BmwmSpec(b=4)), (DARB, DarbSpec(max_block=4))):
        enc = fmt.encode(zero, spec)
        np.testing.assert_array_equal(fmt.decode(enc).weights, zero)
        assert enc.nnz == 0 and enc.stored_values == 3 * 3


def test_compress_reports_lossless_and_sparsity():
    from codesign.models.report import report_layer

    w = np.random.default_rng(1).laplace(size=(40, 100)).astype(np.float32)
    for fmt, spec, s in ((BMWM, BmwmSpec(b=8), 0.875), (DARB, DarbSpec(), 0.9)):
        rep = report_layer("w", w, fmt, spec, s)
        assert rep.lossless
        assert rep.extras["sparsity"] == pytest.approx(1 - rep.stored_values / w.size)


# ---------------------------------------------------------------- rules


@pytest.mark.parametrize("rounding", ["nearest", "down", "up"])
@pytest.mark.parametrize("n", [1, 5, 64, 100, 300])
def test_darb_rule(rounding, n):
    spec = DarbSpec(max_block=64, rounding=rounding)
    counts = np.arange(n + 1)
    got = 1 << darb_log_blocks(counts, n, spec)
    assert got.tolist() == [ref_rule(int(c), n, 64, rounding) for c in counts]


def test_darb_rule_examples():
    """n = 100: nnz 11 keeps 13 at b=8 or 7 at b=16 (13 is closer); nnz 3 → 4 at b=32
    vs 2 at b=64: a tie, broken toward the larger block."""
    spec = DarbSpec(max_block=64)
    got = 1 << darb_log_blocks(np.array([11, 3, 0, 100, 60]), 100, spec)
    assert got.tolist() == [8, 64, 64, 1, 2]
    down = 1 << darb_log_blocks(np.array([10, 3]), 100, DarbSpec(rounding="down"))
    up = 1 << darb_log_blocks(np.array([10, 3]), 100, DarbSpec(rounding="up"))
    assert down.tolist() == [8, 32] and up.tolist() == [16, 64]


@SETTINGS
@given(
    rows=st.integers(1, 15),
    cols=st.integers(1, 40),
    levels=st.integers(1, 6),
    sparsity=st.floats(0.0, 0.999),
    seed=st.integers(0, 2**32 - 1),
)
def test_magnitude_row_counts_match_magnitude_mask(rows, cols, levels, sparsity, seed):
    """Few distinct magnitudes, so ties decide many counts."""
    rng = np.random.default_rng(seed)
    w = (rng.integers(0, levels + 1, (rows, cols)) * rng.choice([-1, 1], (rows, cols))).astype(
        np.int16
    )
    expect = magnitude_mask(w, sparsity).sum(axis=1)
    np.testing.assert_array_equal(magnitude_row_counts(w, sparsity), expect)
    np.testing.assert_array_equal(magnitude_row_counts(w.astype(np.float32), sparsity), expect)


def test_darb_rows_follow_density():
    """Denser rows under magnitude pruning get smaller blocks."""
    rng = np.random.default_rng(3)
    w = rng.standard_normal((8, 256)).astype(np.float32) * np.geomspace(1, 8, 8)[:, None]
    k = darb_log_blocks_for(w, 0.9, DarbSpec())
    assert (np.diff(k) <= 0).all() and k[0] > k[-1]


def test_bmwm_block_for():
    assert [bmwm_block_for(s) for s in (0.0, 0.5, 0.6, 0.875, 0.9, 0.96875)] == [
        1,
        2,
        4,
        8,
        16,
        32,
    ]


def test_kept_mass_beats_random_choices():
    """The largest |w| per block keeps at least the mass of any one-per-block choice."""
    rng = np.random.default_rng(5)
    w = rng.standard_normal((30, 77)).astype(np.float32)
    ref, enc = DARB.compress(w, 0.85, DarbSpec(max_block=32))
    sizes = block_sizes(enc)
    mass = np.abs(ref).sum()
    trials = np.zeros(200)
    for r, b in enumerate(sizes):
        for blk in block_ranges(77, b):
            trials += np.abs(w[r, rng.integers(blk.start, blk.stop, size=200)])
    assert (mass >= trials - 1e-4).all()
    pruned = BMWM.prune(w, 0.75, BmwmSpec(b=4))
    blocks = np.abs(np.pad(w, ((0, 0), (0, 3)))).reshape(30, 20, 4)
    picks = np.take_along_axis(blocks[None], rng.integers(0, 4, (200, 30, 20, 1)), axis=-1)
    assert (np.abs(pruned).sum() >= picks.sum(axis=(1, 2, 3)) - 1e-4).all()


# ---------------------------------------------------------------- errors


def test_errors():
    w = np.arange(1, 65, dtype=np.float32).reshape(4, 16)
    with pytest.raises(
        FormatError,
        match=r"BmwmSpec b=8 gives 0\.875, out of reach of the requested sparsity 0\.9; nearest "
        r"points: b=8 gives 0\.875, b=16 gives 0\.9375 \(use b=16 with sparsity 0\.9375, or "
        r"ask for sparsity 0\.875\)",
    ):
        BMWM.prune(w, 0.9, BmwmSpec(b=8))
    with pytest.raises(FormatError, match=r"use b=2"):
        BMWM.compress(w, 0.5, BmwmSpec(b=8))
    with pytest.raises(FormatError, match=r"gives 0\.75, out of reach .* sparsity 0\.6;"):
        BMWM.prune(w, 0.6, BmwmSpec(b=4))  # the smallest b reaching 0.6 overshoots: refused
    assert np.count_nonzero(BMWM.prune(w, 0.749, BmwmSpec(b=4))) == 16  # within 0.005
    with pytest.raises(FormatError, match=r"row 0, block 0 \(columns 0\.\.3\) has 4 non-zeros"):
        BMWM.encode(w, BmwmSpec(b=4))
    with pytest.raises(FormatError, match=r"b=4096 gives 0\.999756, out of reach .* 0\.99;"):
        BMWM.prune(w, 0.99, BmwmSpec(b=4096))
    with pytest.raises(FormatError, match=r"max_block=4 .*use max_block >= 8"):
        DARB.compress(w, 0.85, DarbSpec(max_block=4))
    with pytest.raises(FormatError, match=r"sparsity <= 0\.9375"):
        DARB.prune(w, 0.99, DarbSpec(max_block=64))
    with pytest.raises(FormatError, match="needs a DarbSpec"):
        DARB.compress(w, 0.5, NmSpec())
    with pytest.raises(SpecError, match="rounding"):
        DarbSpec(rounding="floor")
    with pytest.raises(SpecError, match="power of two"):
        BmwmSpec(b=6)


# ---------------------------------------------------------------- decode cost


def test_decode_cost_hand_worked():
    """3×10 layer, DARB max_block 8 (2-bit codes), b_r = 2, 4, 8 → 5, 3, 2 slots;
    P = 2 lanes: steps ⌈5/2⌉, ⌈3/2⌉, ⌈2/2⌉ = 3, 2, 1; ops = slots + 1 code read;
    bits = 5·1 + 2, 3·2 + 2, 2·3 + 2. CSR of rows with 3, 0, 1 non-zeros, 4-bit
    columns, 3-bit pointers: steps 1 + 2, 1 + 0, 1 + 1."""
    w = np.zeros((3, 10), dtype=np.float32)
    w[0, [0, 3, 4, 7, 9]] = 1.0
    w[1, [1, 5, 8]] = 2.0
    w[2, [6, 9]] = 3.0
    enc = DARB.encode(w, DarbSpec(max_block=8))
    assert block_sizes(enc) == [2, 4, 8]
    cost = decode_cost(enc, lanes=2)
    assert cost.steps.tolist() == [3, 2, 1]
    assert cost.ops.tolist() == [6, 4, 3]
    assert cost.produced.tolist() == [5, 3, 2]
    assert cost.index_bits.tolist() == [7, 8, 8]
    assert cost.total_index_bits == enc.index_bits
    assert cost.total_steps == 6 and cost.max_steps == 3
    assert cost.lane_utilization == pytest.approx(10 / 12)
    assert decode_cost(enc, lanes=8).steps.tolist() == [1, 1, 1]
    dense_rows = decode_cost(DARB.encode(w, DarbSpec(max_block=1)), lanes=4)
    assert dense_rows.ops.tolist() == [10, 10, 10] and dense_rows.total_index_bits == 0
    assert decode_cost(enc, lanes=2, code_latency=1).steps.tolist() == [4, 3, 2]

    c = np.zeros((3, 10), dtype=np.float32)
    c[0, [1, 2, 3]] = 1.0
    c[2, 9] = 1.0
    csr = CsrFormat().encode(c)
    cc = decode_cost(csr, lanes=2)
    assert cc.steps.tolist() == [3, 1, 2]
    assert cc.ops.tolist() == [4, 1, 2] and cc.total_ops == 8
    assert cc.index_bits.tolist() == [3 * 4 + 3, 3, 4 + 3]
    assert cc.total_index_bits == csr.index_bits
    assert decode_cost(csr, lanes=1, pointer_latency=0).steps.tolist() == [3, 0, 1]

    bm = BMWM.encode(BMWM.prune(w, 0.75, BmwmSpec(b=4)), BmwmSpec(b=4))
    bc = decode_cost(bm, lanes=2)
    assert bc.steps.tolist() == [2, 2, 2] and bc.ops.tolist() == [3, 3, 3]
    assert bc.total_index_bits == bm.index_bits == 3 * 3 * 2


def test_decode_cost_errors():
    enc = DARB.encode(np.eye(4, dtype=np.float32))
    with pytest.raises(ValueError, match="lanes must be an integer >= 1"):
        decode_cost(enc, lanes=0)
    with pytest.raises(ValueError, match="code_latency"):
        block_decode_cost(4, np.zeros(2, dtype=np.int64), 1, 2, code_latency=-1)
    from codesign.models.bitmap import BitmapFormat

    with pytest.raises(FormatError, match="bmwm, darb and csr"):
        decode_cost(BitmapFormat().encode(np.eye(3)), lanes=1)
