"""XOR value codec over searched masks (mask_format viterbi / lbi): lossless round trips
through compress, the mask of the mask format's own search, exact sizes counted here
from REFERENCES §1–§3, and the errors of encoding a given mask."""

from __future__ import annotations

import math

import numpy as np
import pytest

from codesign.models.format import FormatError
from codesign.models.registry import get_format
from codesign.models.report import report_encoded
from codesign.models.specs import LbiSpec, SpecError, ViterbiSpec, XorSpec
from codesign.models.workloads import gaussian, quantize_symmetric
from codesign.models.xor import XorFormat, mask_spec

FMT = XorFormat()


def ceil_log2(x: int) -> int:
    return 0 if x <= 1 else math.ceil(math.log2(x))


def own_mask_spec(mask_format: str, shape):
    """The mask format's default spec, LBI tiles (and rank) clipped to the matrix."""
    if mask_format == "viterbi":
        return ViterbiSpec()
    rows, cols = min(64, shape[0]), min(64, shape[1])
    return LbiSpec(rank=min(8, rows, cols), tile_rows=rows, tile_cols=cols)


def mask_index_bits(mask_format: str, shape) -> int:
    m, n = shape
    if mask_format == "viterbi":
        return math.ceil(m * n / 5) * 1
    spec = own_mask_spec("lbi", shape)
    down, across = math.ceil(m / spec.tile_rows), math.ceil(n / spec.tile_cols)
    return spec.rank * (across * m + down * n)


@pytest.mark.parametrize("mask_format", ["viterbi", "lbi"])
@pytest.mark.parametrize(
    ("shape", "sparsity", "value_bits", "n_s"),
    [((24, 37), 0.8, 4, 1), ((70, 90), 0.9, 3, 2), ((9, 130), 0.7, 5, 1)],
)
def test_compress_round_trip_and_sizes(mask_format, shape, sparsity, value_bits, n_s):
    w = gaussian(shape, seed=shape[0])
    spec = XorSpec(n_in=4, n_out=20, n_s=n_s, value_bits=value_bits, mask_format=mask_format)
    ref, enc = FMT.compress(w, sparsity, spec)
    assert report_encoded("layer", ref, enc, FMT).lossless

    mask_fmt = get_format(mask_format)
    own_ref, own = mask_fmt.compress(w, sparsity, own_mask_spec(mask_format, shape))
    mask = mask_fmt.decode(own).mask
    dec = FMT.decode(enc)
    np.testing.assert_array_equal(dec.mask, mask)
    np.testing.assert_array_equal(FMT.prune(w, sparsity, spec), own_ref)

    pruned = np.where(mask, w, 0)
    q, scale = quantize_symmetric(pruned, value_bits)
    expected = np.where(pruned != 0, q.astype(np.float32) * np.float32(scale), 0)
    np.testing.assert_array_equal(ref, expected.astype(np.float32))

    threshold = own.spec.threshold if mask_format == "viterbi" else None
    assert enc.spec == XorSpec.from_json(enc.spec.to_json())
    assert enc.spec.mask_threshold == threshold
    assert enc.index_bits == mask_index_bits(mask_format, shape) == own.index_bits
    blocks = math.ceil(w.size / 20)
    patches = int(enc.streams["patch_count"].data.sum())
    value_bits_total = (
        value_bits * blocks * 4
        + patches * (ceil_log2(blocks) + ceil_log2(20))
        + value_bits * 32
        + 32
    )
    assert enc.value_bits == value_bits_total
    assert enc.stored_values == int(mask.sum())
    prefix = {"viterbi": {"mask_inputs"}, "lbi": {"mask_ip", "mask_iz"}}[mask_format]
    assert {k for k in enc.streams if k.startswith("mask_")} == prefix
    assert enc.extras["mask_bits"] == enc.index_bits


@pytest.mark.parametrize("mask_format", ["viterbi", "lbi"])
def test_integer_layer_keeps_zero_weights_in_the_mask(mask_format):
    w = quantize_symmetric(gaussian((30, 40), seed=7), 4)[0]
    assert np.count_nonzero(w == 0) > 100
    ref, enc = FMT.compress(
        w, 0.6, XorSpec(n_in=3, n_out=12, value_bits=4, mask_format=mask_format)
    )
    dec = FMT.decode(enc)
    assert report_encoded("layer", ref, enc, FMT).lossless
    assert ref.dtype == w.dtype
    assert np.all(dec.mask[ref != 0])
    kept_zeros = dec.mask & (ref == 0)
    assert kept_zeros.any() and np.all(dec.weights[kept_zeros] == 0)


def test_encode_takes_a_mask_that_covers_the_non_zeros():
    w = quantize_symmetric(gaussian((12, 30), seed=2), 6)[0]
    everything = XorSpec(n_in=4, n_out=16, value_bits=6, mask_format="viterbi", mask_threshold=16)
    enc = FMT.encode(w, everything)
    assert FMT.decode(enc).mask.all()
    assert report_encoded("layer", w, enc, FMT).lossless
    dense = np.where(w == 0, 1, w).astype(w.dtype)
    enc = FMT.encode(dense, XorSpec(n_in=4, n_out=16, value_bits=6, mask_format="lbi"))
    assert report_encoded("layer", dense, enc, FMT).lossless


def test_encode_errors():
    w = quantize_symmetric(gaussian((40, 64), seed=4), 8)[0]
    sparse = np.where(np.random.default_rng(0).random(w.shape) < 0.15, w, 0).astype(w.dtype)
    with pytest.raises(
        FormatError,
        match=r"mask_format='viterbi' takes its mask from a pruning search; use compress with "
        r"a sparsity .*mask_threshold is unset",
    ):
        FMT.encode(sparse, XorSpec(mask_format="viterbi"))
    with pytest.raises(
        FormatError, match=r"mask_format='lbi' .*use compress with a sparsity .*misses \d+ of"
    ):
        FMT.encode(sparse, XorSpec(mask_format="lbi"))
    zeros = np.where(np.arange(w.size).reshape(w.shape) % 3 == 0, 0, w / 7).astype(np.float32)
    binary = XorSpec(quant="binary", mask_format="viterbi", mask_threshold=16)
    with pytest.raises(FormatError, match=r"keeps \d+ positions whose weight is zero.*'uniform'"):
        FMT.encode(zeros, binary)
    with pytest.raises(SpecError, match="mask_threshold is the threshold of a viterbi mask"):
        XorSpec(mask_threshold=3)
    with pytest.raises(SpecError, match=r"XorSpec.mask_threshold must be in 0\.\.16, got 17"):
        XorSpec(mask_format="viterbi", mask_threshold=17)


def test_lbi_mask_spec_is_clipped_to_the_matrix():
    spec = XorSpec(mask_format="lbi")
    assert mask_spec(spec, (10, 100)) == LbiSpec(rank=8, tile_rows=10, tile_cols=64)
    assert mask_spec(spec, (5, 3)) == LbiSpec(rank=3, tile_rows=5, tile_cols=3)
    assert mask_spec(spec, (200, 300)) == LbiSpec()
    viterbi = XorSpec(mask_format="viterbi", mask_threshold=5)
    assert mask_spec(viterbi, (3, 3)) == ViterbiSpec(threshold=5)
