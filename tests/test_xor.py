"""XOR-gate fixed-to-fixed encoding: lossless round trips, exact size accounting, and
the encoders' optimality, against slow references written here."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codesign.models import gf2
from codesign.models.bitplanes import planes_to_values, to_bitplanes
from codesign.models.errors import PrecisionError
from codesign.models.format import FormatError
from codesign.models.report import report_encoded
from codesign.models.specs import BitmapSpec, SpecError, XorSpec
from codesign.models.workloads import gaussian, quantize_symmetric
from codesign.models.xor import (
    MASK_FORMATS,
    XorFormat,
    decode_planes,
    encode_planes,
    xor_matrix,
    xor_reference,
)
from codesign.models.xor_encode import encode_blocks

FMT = XorFormat()
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PATTERNS = ["random", "all_care", "empty", "dense_runs", "single"]


# ------------------------------------------------------------------ slow references


def input_bits(x: int, n_in: int) -> np.ndarray:
    return np.array([(int(x) >> k) & 1 for k in range(n_in)], dtype=np.int64)


def slow_decode(spec: XorSpec, inputs: np.ndarray, length: int) -> np.ndarray:
    """y_t = M·[x_t; x_{t−1}; …] mod 2 block by block, inputs before the segment start
    zero; rows (planes, length)."""
    m = xor_matrix(spec).astype(np.int64)
    planes, blocks = inputs.shape
    out = np.zeros((planes, blocks * spec.n_out), dtype=np.uint8)
    for p in range(planes):
        for t in range(blocks):
            seg_start = (t // spec.segment) * spec.segment
            v = np.zeros(spec.n_s * spec.n_in, dtype=np.int64)
            for j in range(spec.n_s):
                if t - j >= seg_start:
                    v[j * spec.n_in : (j + 1) * spec.n_in] = input_bits(inputs[p, t - j], spec.n_in)
            out[p, t * spec.n_out : (t + 1) * spec.n_out] = (m @ v) % 2
    return out[:, :length]


def slow_mismatches(spec: XorSpec, seq: tuple[int, ...], bits: np.ndarray, care: np.ndarray):
    """Mismatched care bits of one plane decoded from the input sequence ``seq``."""
    y = slow_decode(spec, np.array([seq], dtype=np.uint64), bits.size)[0]
    return int(((y != bits) & care).sum())


def ceil_log2(x: int) -> int:
    return 0 if x <= 1 else math.ceil(math.log2(x))


def mask_index_bits(mask_format: str, slots: np.ndarray, nnz_mask: np.ndarray) -> int:
    """Index bits of the mask in its format, counted from REFERENCES §6."""
    m, n = slots.shape
    nnz = int(nnz_mask.sum())
    if mask_format == "bitmap":
        return m * n
    if mask_format == "csr":
        return nnz * ceil_log2(n) + (m + 1) * ceil_log2(nnz + 1)
    return int(slots.sum()) * 4


def care_pattern(kind: str, shape, n_out: int, density: float, rng) -> np.ndarray:
    m, n = shape
    if kind == "all_care":
        return np.ones(shape, dtype=bool)
    if kind == "empty":
        return np.zeros(shape, dtype=bool)
    flat = np.zeros(m * n, dtype=bool)
    if kind == "single":
        flat[rng.integers(m * n)] = True
    elif kind == "dense_runs":
        flat = rng.random(m * n) < 0.05
        blocks = -(-m * n // n_out)
        first = rng.integers(blocks)
        run = rng.integers(1, 4)
        flat[first * n_out : (first + run) * n_out] = True
    else:
        flat = rng.random(m * n) < density
    return flat.reshape(shape)


def integer_layer(mask: np.ndarray, value_bits: int, rng) -> np.ndarray:
    """int16 weights, non-zero exactly on ``mask``, spanning value_bits two's complement."""
    lo, hi = -(2 ** (value_bits - 1)), 2 ** (value_bits - 1) - 1
    vals = rng.integers(lo, hi + 1, size=mask.shape)
    vals[vals == 0] = lo
    return np.where(mask, vals, 0).astype(np.int16)


# ------------------------------------------------------------------ properties


def check_layer(w: np.ndarray, spec: XorSpec) -> None:
    """Round trip, mask, streams and closed-form sizes of one layer."""
    enc = FMT.encode(w, spec)
    dec = FMT.decode(enc)
    ref = xor_reference(w, spec)
    assert dec.weights.dtype == ref.dtype
    np.testing.assert_array_equal(dec.weights, ref)
    assert not ((ref != 0) & ~dec.mask).any()
    if spec.mask_format != "relative":
        np.testing.assert_array_equal(dec.mask, ref != 0)

    m, n = w.shape
    blocks = -(-m * n // spec.n_out)
    planes = to_bitplanes(w, spec.value_bits, spec.quant).planes.reshape(spec.value_bits, -1)
    inputs = enc.streams["inputs"].data.reshape(spec.value_bits, blocks)
    care = dec.mask.ravel()
    wrong = (slow_decode(spec, inputs, m * n) != planes) & care
    patches = int(wrong.sum())
    assert enc.streams["patch_count"].data.tolist() == wrong.sum(axis=1).tolist()
    pos = enc.streams["patch_block"].data * spec.n_out + enc.streams["patch_bit"].data
    assert sorted(pos.tolist()) == sorted(np.nonzero(wrong)[1].tolist())

    n_scales = 0 if np.issubdtype(w.dtype, np.integer) else 1
    if spec.quant == "binary":
        n_scales = spec.value_bits
    in_bits = spec.value_bits * blocks * spec.n_in
    patch_bits = patches * (ceil_log2(blocks) + ceil_log2(spec.n_out)) + 32 * spec.value_bits
    assert enc.value_bits == in_bits + patch_bits + 32 * n_scales
    assert enc.index_bits == mask_index_bits(spec.mask_format, dec.mask, ref != 0)
    assert enc.index_bits == enc.stream_bits("index")
    assert enc.value_bits == enc.stream_bits("value")
    assert all(k.startswith("mask_") for k, s in enc.streams.items() if s.role == "index")
    for key, stream in enc.streams.items():
        assert stream.data.ndim == 1, key
        if key != "scales" and stream.data.size:
            assert int(stream.data.max()) < 2**stream.width, key
    care_bits = int(care.sum()) * spec.value_bits
    assert enc.stored_values == int(care.sum())
    assert enc.extras["care_bits"] == care_bits
    assert enc.extras["patch_bits"] == patch_bits
    assert enc.extras["input_bits"] == in_bits
    assert enc.extras["mask_bits"] == enc.index_bits
    assert enc.extras["efficiency"] == pytest.approx(care_bits / (in_bits + patch_bits))
    clean = ~wrong.reshape(spec.value_bits, -1)
    clean = np.pad(clean, ((0, 0), (0, blocks * spec.n_out - m * n)), constant_values=True)
    fraction = clean.reshape(spec.value_bits, blocks, spec.n_out).all(axis=2).mean()
    assert enc.extras["no_patch_block_fraction"] == pytest.approx(fraction)


@SETTINGS
@given(
    pattern=st.sampled_from(PATTERNS),
    rows=st.integers(1, 17),
    cols=st.integers(1, 29),
    n_s=st.sampled_from([1, 2, 3]),
    n_in=st.sampled_from([1, 4, 8]),
    n_out=st.sampled_from([1, 3, 7, 16, 64, 70]),
    segment=st.sampled_from([1, 2, 5, 1024]),
    value_bits=st.integers(1, 3),
    mask_format=st.sampled_from(["bitmap", "csr", "relative"]),
    density=st.sampled_from([0.02, 0.1, 0.3, 0.7]),
    dp_states=st.sampled_from([1, 4096]),
    seed=st.integers(0, 2**32 - 1),
)
def test_lossless_integer_layers(
    pattern,
    rows,
    cols,
    n_s,
    n_in,
    n_out,
    segment,
    value_bits,
    mask_format,
    density,
    dp_states,
    seed,
):
    if n_s == 3 and n_in == 8 and dp_states > 1:
        n_in = 4
    rng = np.random.default_rng(seed)
    spec = XorSpec(
        n_in=n_in,
        n_out=n_out,
        n_s=n_s,
        seed=seed % 1000,
        value_bits=value_bits,
        mask_format=mask_format,
        segment=segment,
        dp_states=dp_states,
    )
    mask = care_pattern(pattern, (rows, cols), n_out, density, rng)
    check_layer(integer_layer(mask, value_bits, rng), spec)


@pytest.mark.parametrize("dp_states", [1, 2**20])
@pytest.mark.parametrize("pattern", PATTERNS)
def test_lossless_three_steps_eight_inputs(pattern, dp_states):
    rng = np.random.default_rng(5)
    spec = XorSpec(
        n_in=8,
        n_out=16,
        n_s=3,
        value_bits=1,
        mask_format="bitmap",
        segment=3,
        dp_states=dp_states,
    )
    mask = care_pattern(pattern, (4, 19), 16, 0.3, rng)
    check_layer(integer_layer(mask, 1, rng), spec)


@SETTINGS
@given(
    quant=st.sampled_from(["uniform", "binary"]),
    value_bits=st.integers(2, 5),
    n_s=st.sampled_from([1, 2]),
    mask_format=st.sampled_from(["bitmap", "csr"]),
    sparsity=st.sampled_from([0.0, 0.5, 0.9, 0.99]),
    seed=st.integers(0, 1000),
)
def test_lossless_float_layers(quant, value_bits, n_s, mask_format, sparsity, seed):
    spec = XorSpec(
        n_in=4, n_out=24, n_s=n_s, value_bits=value_bits, quant=quant, mask_format=mask_format
    )
    w = gaussian((13, 31), seed=seed)
    pruned = FMT.prune(w, sparsity)
    try:
        ref, enc = FMT.compress(w, sparsity, spec)
    except PrecisionError:  # most kept weights would round to 0 (2-bit values, few pruned)
        lost = (pruned != 0) & (to_bitplanes(pruned, value_bits, quant).values() == 0)
        assert np.count_nonzero(lost) > np.count_nonzero(pruned) / 2
        return
    assert ref.dtype == np.float32
    np.testing.assert_array_equal(ref, xor_reference(pruned, spec))
    assert np.count_nonzero(ref) <= round((1 - sparsity) * w.size)
    check_layer(pruned, spec)
    assert report_encoded("layer", ref, enc, FMT).lossless


# ------------------------------------------------------------------ encoders


def pack_planes(bits: np.ndarray, care: np.ndarray, n_out: int):
    """(planes, B, W) data words and (B, W) care words of equal-length rows."""
    planes, length = bits.shape
    blocks = -(-length // n_out)
    pad = blocks * n_out - length
    data = np.pad(bits, ((0, 0), (0, pad))).reshape(planes * blocks, n_out)
    mask = np.pad(care, (0, pad)).reshape(blocks, n_out)
    return gf2.pack(data).reshape(planes, blocks, -1), gf2.pack(mask)


@pytest.mark.parametrize("n_in", [1, 2, 3, 5, 6])
@pytest.mark.parametrize("density", [0.3, 0.8])
def test_single_step_mismatch_is_minimal(n_in, density):
    """Per block, the n_s = 1 encoder's patches equal the minimum over all 2^n_in inputs."""
    rng = np.random.default_rng(n_in)
    spec = XorSpec(n_in=n_in, n_out=12, n_s=1, seed=n_in)
    blocks = 40
    bits = rng.integers(0, 2, (1, blocks * 12), dtype=np.uint8)
    care = rng.random(blocks * 12) < density
    code = encode_planes(bits, care, spec)
    got = np.bincount(code.patch_block, minlength=blocks)
    for t in range(blocks):
        sl = slice(t * 12, (t + 1) * 12)
        best = min(slow_mismatches(spec, (x,), bits[0, sl], care[sl]) for x in range(2**n_in))
        assert got[t] == best, t
    assert got.sum() > 0


def test_single_step_heuristic_above_enumeration_limit():
    """n_in = 20 (no exhaustive search): lossless, no patch exactly on consistent blocks."""
    rng = np.random.default_rng(3)
    spec = XorSpec(n_in=20, n_out=48, n_s=1, seed=3)
    blocks = 60
    bits = rng.integers(0, 2, (2, blocks * 48), dtype=np.uint8)
    care = np.repeat(rng.random(blocks) * 0.9, 48) > rng.random(blocks * 48)
    code = encode_planes(bits, care, spec)
    y = slow_decode(spec, code.inputs, bits.shape[1])
    y[code.patch_plane, code.patch_block * 48 + code.patch_bit] ^= 1
    assert ((y == bits) | ~care).all()
    m = xor_matrix(spec)
    clean = code.no_patch_blocks()
    for p in range(2):
        for t in range(blocks):
            rows = np.flatnonzero(care[t * 48 : (t + 1) * 48])
            rhs = bits[p, t * 48 + rows]
            assert clean[p, t] == gf2.is_consistent(m[rows], rhs)
    assert 0 < clean.mean() < 1


TRELLIS_CASES = [
    (2, 1, 4, 8, 1024),
    (2, 2, 3, 5, 1024),
    (2, 2, 5, 4, 2),
    (3, 1, 5, 6, 1024),
    (3, 2, 4, 4, 3),
    (4, 1, 6, 6, 1024),
]


@pytest.mark.parametrize(("n_s", "n_in", "n_out", "blocks", "segment"), TRELLIS_CASES)
@pytest.mark.parametrize("max_care", [None, -1, 6])
def test_trellis_cost_equals_brute_force(n_s, n_in, n_out, blocks, segment, max_care):
    """The n_s ≥ 2 search (direct steps, distance-transform steps, or both) reaches the
    minimum number of mismatched care bits over all input sequences."""
    rng = np.random.default_rng(n_s * 100 + n_in * 10 + n_out)
    spec = XorSpec(n_in=n_in, n_out=n_out, n_s=n_s, seed=n_out, segment=segment)
    for trial in range(3):
        length = blocks * n_out - trial
        bits = rng.integers(0, 2, (1, length), dtype=np.uint8)
        care = rng.random(length) < [0.5, 0.8, 1.0][trial]
        data, mask = pack_planes(bits, care, n_out)
        inputs, residual = encode_blocks(
            data, mask, xor_matrix(spec), n_in, n_s, segment, max_care=max_care
        )
        cost = int(np.unpackbits(residual.view(np.uint8)).sum())
        assert cost == slow_mismatches(spec, tuple(inputs[0]), bits[0], care)
        best = min(
            slow_mismatches(spec, seq, bits[0], care)
            for seq in itertools.product(range(2**n_in), repeat=blocks)
        )
        assert cost == best


@pytest.mark.parametrize(("n_s", "n_in", "n_out", "blocks", "segment"), TRELLIS_CASES)
def test_elimination_patches_are_its_mismatches_and_at_least_the_minimum(
    n_s, n_in, n_out, blocks, segment
):
    """The elimination search's residual is exactly the care bits its inputs decode
    wrong, and never fewer than the exact search's minimum."""
    rng = np.random.default_rng(n_s * 7 + n_in)
    spec = XorSpec(n_in=n_in, n_out=n_out, n_s=n_s, seed=n_out, segment=segment)
    for trial in range(6):
        length = blocks * n_out - trial % 3
        bits = rng.integers(0, 2, (2, length), dtype=np.uint8)
        care = rng.random(length) < [0.2, 0.5, 0.8, 1.0, 0.3, 0.6][trial]
        data, mask = pack_planes(bits, care, n_out)
        matrix = xor_matrix(spec)
        inputs, residual = encode_blocks(data, mask, matrix, n_in, n_s, segment, exact=False)
        for p in range(2):
            wrong = slow_mismatches(spec, tuple(inputs[p]), bits[p], care)
            assert int(np.unpackbits(residual[p].view(np.uint8)).sum()) == wrong
        _, best = encode_blocks(data, mask, matrix, n_in, n_s, segment)
        assert (residual & ~mask[np.newaxis] == 0).all()
        assert (
            np.unpackbits(residual.view(np.uint8)).sum() >= np.unpackbits(best.view(np.uint8)).sum()
        )


@pytest.mark.parametrize("seed", [0, 1])
def test_elimination_efficiency_matches_the_exact_search_at_90_percent(seed):
    """n_s = 3, n_in = 8, n_out = 64 at S = 0.9 (a trellis of 2^16 states, beyond the
    default dp_states): E of the elimination search within 0.01 of the exact search's."""
    w = gaussian((32, 1024), seed=seed)
    fast = XorSpec(n_s=3, n_in=8, n_out=64, value_bits=4)
    exact = XorSpec(n_s=3, n_in=8, n_out=64, value_bits=4, dp_states=2**20)
    ref, enc = FMT.compress(w, 0.9, fast)
    _, oracle = FMT.compress(w, 0.9, exact)
    assert enc.extras["patch_bits"] >= oracle.extras["patch_bits"]
    assert enc.extras["efficiency"] == pytest.approx(oracle.extras["efficiency"], abs=0.01)
    assert report_encoded("layer", ref, enc, FMT).lossless


def test_decode_planes_matches_slow_decoder():
    rng = np.random.default_rng(0)
    for n_s, n_in, n_out, segment in [(1, 64, 100, 3), (2, 7, 130, 4), (4, 5, 9, 1)]:
        spec = XorSpec(n_in=n_in, n_out=n_out, n_s=n_s, segment=segment, seed=n_out)
        inputs = rng.integers(0, 2**n_in, (2, 11), dtype=np.uint64)
        length = 11 * n_out - 5
        np.testing.assert_array_equal(
            decode_planes(inputs, spec, length), slow_decode(spec, inputs, length)
        )


def test_xor_matrix_is_seeded_and_fair():
    spec = XorSpec(n_in=8, n_out=64, n_s=3, seed=7)
    m = xor_matrix(spec)
    assert m.shape == (64, 24) and m.dtype == np.uint8
    np.testing.assert_array_equal(m, xor_matrix(XorSpec(n_in=8, n_out=64, n_s=3, seed=7)))
    assert not np.array_equal(m, xor_matrix(XorSpec(n_in=8, n_out=64, n_s=3, seed=8)))
    assert abs(m.mean() - 0.5) < 0.05


# ------------------------------------------------------------------ quantization


def slow_binary_coding(values: np.ndarray, value_bits: int):
    residual = [float(v) for v in values]
    alphas, signs = [], []
    for _ in range(value_bits):
        alpha = np.float32(sum(abs(r) for r in residual) / len(residual))
        b = [-1.0 if r < 0 else 1.0 for r in residual]
        residual = [r - float(alpha) * s for r, s in zip(residual, b, strict=True)]
        alphas.append(alpha)
        signs.append(b)
    return np.array(alphas, dtype=np.float32), np.array(signs)


@pytest.mark.parametrize("value_bits", [1, 2, 4])
def test_binary_coding_round_trip(value_bits):
    w = gaussian((20, 30), seed=value_bits)
    w[np.abs(w) < np.quantile(np.abs(w), 0.6)] = 0
    spec = XorSpec(n_in=6, n_out=30, quant="binary", value_bits=value_bits, mask_format="bitmap")
    ref, enc = FMT.compress(w, None, spec)
    kept = w != 0
    alphas, signs = slow_binary_coding(w[kept], value_bits)
    np.testing.assert_allclose(enc.streams["scales"].data, alphas, rtol=1e-6)
    expect = np.zeros(kept.sum(), dtype=np.float32)
    for a, s in zip(enc.streams["scales"].data, signs, strict=True):
        expect += (a * s).astype(np.float32)
    np.testing.assert_allclose(ref[kept], expect, rtol=1e-6)
    assert (ref[~kept] == 0).all()
    np.testing.assert_array_equal(FMT.decode(enc).weights, ref)
    errors = [np.abs(w[kept] - ref[kept]).mean()]
    if value_bits > 1:
        coarser = XorSpec(n_in=6, n_out=30, quant="binary", value_bits=value_bits - 1)
        errors.append(np.abs(w[kept] - xor_reference(w, coarser)[kept]).mean())
        assert errors[0] < errors[1]


@pytest.mark.parametrize("value_bits", [2, 5, 8, 16])
def test_uniform_round_trip(value_bits):
    # uniform weights: the kept 30 % lie above 0.7 of the largest |w|, so even 2-bit
    # values keep every one of them (xor refuses a quantization that zeroes most)
    w = np.random.default_rng(value_bits).uniform(-0.2, 0.2, (16, 21)).astype(np.float32)
    spec = XorSpec(n_in=8, n_out=50, value_bits=value_bits, n_s=2)
    ref, enc = FMT.compress(w, 0.7, spec)
    pruned = FMT.prune(w, 0.7)
    q, scale = quantize_symmetric(pruned, value_bits)
    np.testing.assert_array_equal(ref, q.astype(np.float32) * np.float32(scale))
    assert enc.streams["scales"].data.tolist() == [np.float32(scale)]
    np.testing.assert_array_equal(FMT.decode(enc).weights, ref)


@pytest.mark.parametrize(
    ("dtype", "value_bits", "lo", "hi"),
    [(np.int8, 8, -128, 127), (np.int16, 1, -1, 0), (np.int32, 3, -4, 3), (np.uint8, 9, 0, 255)],
)
def test_integer_input_stored_as_is(dtype, value_bits, lo, hi):
    rng = np.random.default_rng(value_bits)
    w = rng.integers(lo, hi + 1, (9, 14)).astype(dtype)
    w[0, :3] = [lo, hi, 0]
    enc = FMT.encode(w, XorSpec(n_in=4, n_out=10, value_bits=value_bits))
    dec = FMT.decode(enc)
    assert dec.weights.dtype == dtype
    np.testing.assert_array_equal(dec.weights, w)
    assert enc.streams["scales"].data.size == 0
    planes = to_bitplanes(w, value_bits, "uniform")
    assert planes.planes.shape == (value_bits, 9, 14)
    code = sum(planes.planes[i].astype(np.int64) << i for i in range(value_bits))
    np.testing.assert_array_equal(code, w.astype(np.int64) % (1 << value_bits))
    np.testing.assert_array_equal(
        planes_to_values(planes.planes, planes.scales, "uniform", np.dtype(dtype)), w
    )


# ------------------------------------------------------------------ errors


def test_bad_inputs():
    w = np.ones((4, 4), dtype=np.float32)
    with pytest.raises(FormatError, match=r"span \[-3, 200\].*use value_bits >= 9"):
        FMT.encode(np.array([[-3, 200]], dtype=np.int16), XorSpec(value_bits=8))
    with pytest.raises(FormatError, match="quant='binary' needs floating weights"):
        FMT.encode(np.ones((2, 2), dtype=np.int8), XorSpec(quant="binary"))
    with pytest.raises(FormatError, match="value_bits >= 2 for floating weights"):
        FMT.encode(w, XorSpec(value_bits=1))
    with pytest.raises(SpecError, match="mask_format='relative'.*quant='binary'"):
        XorSpec(quant="binary", mask_format="relative")
    with pytest.raises(SpecError, match="XorSpec.quant must be one of uniform, binary"):
        XorSpec(quant="ternary")
    with pytest.raises(SpecError, match="XorSpec.mask_format must be one of bitmap, csr"):
        XorSpec(mask_format="dense")
    with pytest.raises(FormatError, match=r"2\^26 transitions per block; n_s·n_in must be <= 24"):
        FMT.encode(w, XorSpec(n_s=2, n_in=13, dp_states=2**20))
    with pytest.raises(FormatError, match=r"XorSpec.segment=20000: .* use segment <= 16384"):
        FMT.encode(np.ones((100, 200), np.int8), XorSpec(n_s=2, n_in=12, n_out=1, segment=20000))
    with pytest.raises(FormatError, match="needs a XorSpec, got BitmapSpec"):
        FMT.encode(w, BitmapSpec())
    bad = w.copy()
    bad[1, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        FMT.compress(bad, 0.5, XorSpec())
    with pytest.raises(ValueError, match=r"bits must be \(planes, L\) and care \(L,\)"):
        encode_planes(np.zeros((2, 5), np.uint8), np.zeros(4, bool), XorSpec())
    with pytest.raises(ValueError, match="max_care must be <= 20"):
        encode_blocks(
            *pack_planes(np.zeros((1, 8), np.uint8), np.ones(8, bool), 8),
            xor_matrix(XorSpec(n_s=2, n_in=2, n_out=8)),
            2,
            2,
            4,
            max_care=21,
        )


def test_every_allowed_mask_format_has_its_format():
    assert tuple(MASK_FORMATS) == XorSpec._choices["mask_format"]
    assert all(fmt.name == name for name, fmt in MASK_FORMATS.items())
