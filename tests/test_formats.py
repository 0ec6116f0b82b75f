"""Baseline formats: exact decode, and sizes against independent counts."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codesign.models.format import Encoded, FormatError
from codesign.models.nm import nm_prune
from codesign.models.registry import FORMATS, get_format
from codesign.models.specs import BitmapSpec, BlockSpec, CsrSpec, DenseSpec, NmSpec, RelativeSpec

SPECS = {
    "dense": [DenseSpec()],
    "bitmap": [BitmapSpec()],
    "csr": [CsrSpec(), CsrSpec(col_bits=16, ptr_bits=32)],
    "relative": [RelativeSpec(r=1), RelativeSpec(r=3), RelativeSpec(r=8)],
    "nm": [NmSpec(n=2, m=4), NmSpec(n=1, m=1), NmSpec(n=3, m=7), NmSpec(n=4, m=4)],
    "block": [BlockSpec(b=1), BlockSpec(b=3), BlockSpec(b=8)],
}
CASES = [(name, spec) for name, specs in SPECS.items() for spec in specs]
DTYPES = [np.float32, np.float64, np.float16, np.int8, np.int16, np.int32, np.uint8]


def test_baseline_formats_are_registered():
    assert set(SPECS) <= set(FORMATS)


def random_matrix(rng: np.random.Generator, shape, density: float, dtype) -> np.ndarray:
    """Non-zero values at a Bernoulli(density) pattern, with one all-zero and one
    all-dense row when the matrix has rows to spare."""
    keep = rng.random(shape) < density
    if shape[0] >= 3:
        keep[0] = False
        keep[1] = True
    if np.issubdtype(dtype, np.integer):
        lo = 1
        hi = min(np.iinfo(dtype).max, 100)
        vals = rng.integers(lo, hi + 1, size=shape)
        if np.iinfo(dtype).min < 0:
            vals *= rng.choice([-1, 1], size=shape)
    else:
        vals = rng.standard_normal(shape) + np.where(rng.random(shape) < 0.5, -2.0, 2.0)
    return np.where(keep, vals, 0).astype(dtype)


def fit(name: str, spec, w: np.ndarray) -> np.ndarray:
    """The input a format can store exactly: N:M needs N:M structure."""
    return nm_prune(w, spec) if name == "nm" else w


def ceil_log2(x: int) -> int:
    return 0 if x <= 1 else math.ceil(math.log2(x))


def relative_entries_slow(w: np.ndarray, r: int) -> int:
    entries, run = 0, 0
    for v in w.ravel().tolist():
        if v == 0:
            run += 1
            continue
        while run >= 2**r:
            entries += 1
            run -= 2**r
        entries += 1
        run = 0
    return entries


def expected_sizes(name: str, spec, w: np.ndarray) -> tuple[int, int]:
    """(index bits, value bits) counted by loops, from REFERENCES §6."""
    m, n = w.shape
    b = w.dtype.itemsize * 8
    nnz = int((w != 0).sum())
    if name == "dense":
        return 0, m * n * b
    if name == "bitmap":
        return m * n, nnz * b
    if name == "csr":
        col = spec.col_bits or ceil_log2(n)
        ptr = spec.ptr_bits or ceil_log2(nnz + 1)
        return nnz * col + (m + 1) * ptr, nnz * b
    if name == "relative":
        e = relative_entries_slow(w, spec.r)
        return e * spec.r, e * b
    if name == "nm":
        slots = sum(min(spec.n, len(range(c, min(c + spec.m, n)))) for c in range(0, n, spec.m))
        return m * slots * ceil_log2(spec.m), m * slots * b
    if name == "block":
        bb = spec.b
        kept_area = 0
        n_blocks = 0
        for i in range(0, m, bb):
            for j in range(0, n, bb):
                n_blocks += 1
                blk = w[i : i + bb, j : j + bb]
                if (blk != 0).any():
                    kept_area += blk.size
        return n_blocks, kept_area * b
    raise AssertionError(name)


def check_encoded(name: str, spec, w: np.ndarray, enc: Encoded) -> None:
    assert enc.index_bits == enc.stream_bits("index")
    assert enc.value_bits == enc.stream_bits("value")
    assert (enc.index_bits, enc.value_bits) == expected_sizes(name, spec, w)
    assert enc.nnz == int((w != 0).sum())
    for key, stream in enc.streams.items():
        assert stream.data.ndim == 1, key
        if stream.role == "index" and stream.data.size:
            assert stream.data.min() >= 0, key
            assert int(stream.data.max()) < 2**stream.width, key
        if stream.role == "value":
            assert stream.width == w.dtype.itemsize * 8


def check_decoded(name: str, w: np.ndarray, enc: Encoded) -> None:
    dec = get_format(name).decode(enc)
    assert dec.weights.dtype == w.dtype
    assert dec.weights.shape == w.shape
    np.testing.assert_array_equal(dec.weights, w)
    nz = w != 0
    assert not (nz & ~dec.mask).any(), "a non-zero weight is outside the decoded mask"
    if name in ("bitmap", "csr"):
        np.testing.assert_array_equal(dec.mask, nz)
    assert int(dec.mask.sum()) == enc.stored_values


@settings(max_examples=60, deadline=None)
@given(
    case=st.sampled_from(CASES),
    rows=st.integers(1, 23),
    cols=st.integers(1, 41),
    density=st.sampled_from([0.0, 0.02, 0.1, 0.5, 0.9, 1.0]),
    dtype=st.sampled_from(DTYPES),
    seed=st.integers(0, 2**32 - 1),
)
def test_roundtrip_and_sizes(case, rows, cols, density, dtype, seed):
    name, spec = case
    w = fit(name, spec, random_matrix(np.random.default_rng(seed), (rows, cols), density, dtype))
    enc = get_format(name).encode(w, spec)
    check_encoded(name, spec, w, enc)
    check_decoded(name, w, enc)


@pytest.mark.parametrize(("name", "spec"), CASES)
@pytest.mark.parametrize("pattern", ["zeros", "dense", "one_corner", "long_gaps", "diagonal"])
def test_adversarial_patterns(name, spec, pattern):
    m, n = 37, 70
    w = np.zeros((m, n), dtype=np.float32)
    if pattern == "dense":
        w[:] = np.arange(1, m * n + 1).reshape(m, n)
    elif pattern == "one_corner":
        w[-1, -1] = -3.5
    elif pattern == "long_gaps":
        w.ravel()[::300] = 1.25
    elif pattern == "diagonal":
        w[np.arange(m), np.arange(m)] = 2.0
    w = fit(name, spec, w)
    enc = get_format(name).encode(w, spec)
    check_encoded(name, spec, w, enc)
    check_decoded(name, w, enc)


def test_relative_padding_example():
    w = np.array([[5, 0, 0, 0, 0, 0, 7, 0, 0]], dtype=np.int8)
    enc = get_format("relative").encode(w, RelativeSpec(r=2))
    assert enc.streams["gaps"].data.tolist() == [0, 3, 1]
    assert enc.streams["values"].data.tolist() == [5, 0, 7]
    assert enc.stored_values == 3 and enc.nnz == 2
    assert enc.index_bits == 6


def test_csr_example_and_width_errors():
    w = np.array([[0, 1, 0, 2], [0, 0, 0, 0], [3, 0, 0, 0]], dtype=np.int16)
    enc = get_format("csr").encode(w, CsrSpec())
    assert enc.streams["col_idx"].data.tolist() == [1, 3, 0]
    assert enc.streams["row_ptr"].data.tolist() == [0, 2, 2, 3]
    assert enc.index_bits == 3 * 2 + 4 * 2
    with pytest.raises(FormatError, match=r"CsrSpec.col_bits=1 cannot address n=4 .* 2\.\.64"):
        get_format("csr").encode(w, CsrSpec(col_bits=1))
    with pytest.raises(FormatError, match=r"CsrSpec.ptr_bits=1 .* nnz=3; use ptr_bits in 2\.\.64"):
        get_format("csr").encode(w, CsrSpec(ptr_bits=1))


def test_nm_rejects_dense_group_and_prune_fixes_it():
    w = np.array([[1.0, 2.0, 3.0, 0.0, 1.0]], dtype=np.float32)
    fmt = get_format("nm")
    with pytest.raises(FormatError, match=r"row 0, group 0 .* has 3 non-zeros; NmSpec n=2"):
        fmt.encode(w, NmSpec(n=2, m=4))
    pruned = fmt.prune(w, 0.5, NmSpec(n=2, m=4))
    assert pruned.tolist() == [[0.0, 2.0, 3.0, 0.0, 1.0]]
    assert fmt.prune(w, 0.504, NmSpec(n=2, m=4)).tolist() == pruned.tolist()


@pytest.mark.parametrize(
    ("sparsity", "nearest"),
    [(0.8, "n=1, m=5 (sparsity 0.8)"), (0.0, "n=1, m=1 (sparsity 0)"), (0.3, "n=7, m=10")],
)
def test_nm_refuses_a_sparsity_its_structure_cannot_reach(sparsity, nearest):
    """The fixed-sparsity rule: N:M reaches 1 − n/m only; elsewhere it refuses and
    names its own point and an n:m reaching the request (never pads silently)."""
    w = np.arange(1, 41, dtype=np.float32).reshape(4, 10)
    message = (
        rf"nm keeps n=2 of every m=4 weights, so its sparsity is fixed at 0\.5, out of reach "
        rf"of the requested sparsity {sparsity:g}; ask for sparsity 0\.5, or use "
        + re.escape(nearest)
    )
    with pytest.raises(FormatError, match=message):
        get_format("nm").prune(w, sparsity, NmSpec(n=2, m=4))


def test_block_prune_keeps_strongest_blocks():
    w = np.ones((4, 4), dtype=np.float32)
    w[:2, :2] = 10.0
    pruned = get_format("block").prune(w, 0.75, BlockSpec(b=2))
    assert np.count_nonzero(pruned) == 4
    assert (pruned[:2, :2] == 10.0).all()


@pytest.mark.parametrize("name", list(SPECS))
def test_encode_rejects_bad_weights(name):
    fmt = get_format(name)
    bad = np.ones((3, 3), dtype=np.float32)
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fmt.encode(bad)
    with pytest.raises(ValueError, match="2-D"):
        fmt.encode(np.ones(5, dtype=np.float32))
    with pytest.raises(ValueError, match="dtype"):
        fmt.encode(np.ones((2, 2), dtype=bool))


def test_encode_rejects_spec_of_another_format():
    with pytest.raises(FormatError, match="needs a CsrSpec, got BitmapSpec"):
        get_format("csr").encode(np.ones((2, 2), dtype=np.float32), BitmapSpec())


def test_unknown_format():
    with pytest.raises(FormatError, match="unknown format 'foo'; known formats: dense"):
        get_format("foo")
