"""codesign.sim.decoders: per-row bits, decode cycles and operands of every format, against slow
per-row re-derivations written here from the streams and the rules as stated."""

from __future__ import annotations

import math

import numpy as np
import pytest

from codesign.models.block import block_reach
from codesign.models.format import FormatError
from codesign.models.lbi import LbiFormat
from codesign.models.registry import FORMATS, get_format
from codesign.models.specs import (
    BitmapSpec,
    BlockSpec,
    BmwmSpec,
    CsrSpec,
    DarbSpec,
    DenseSpec,
    LbiSpec,
    LowrankSpec,
    NmSpec,
    RelativeSpec,
    ViterbiSpec,
    XorSpec,
)
from codesign.sim.decoders import (
    HEAD_CYCLES,
    LATENCY,
    kept_block_cycles,
    layer_work,
    lbi_cycles,
    relative_cycles,
    slice_cycles,
    step_rows,
    stream_cycles,
    viterbi_cycles,
    xor_cycles,
)

RTL_KINDS = {"relative", "viterbi", "lbi", "xor"}


# ------------------------------------------------------------------ layers


def _values(rng, shape) -> np.ndarray:
    return rng.integers(1, 100, size=shape) * rng.choice([-1, 1], size=shape)


def make_layer(kind: str, seed: int = 0) -> np.ndarray:
    """Integer (int16) test layers, adversarial patterns included."""
    rng = np.random.default_rng(seed)
    shapes = {"one_row": (1, 41), "one_col": (13, 1), "long_gaps": (7, 50)}
    shape = shapes.get(kind, (11, 23))
    keep = rng.random(shape) < 0.35
    if kind == "empty_rows":
        keep[[0, 3, 4, 10]] = False
    elif kind == "dense_row":
        keep[2] = True
        keep[5] = False
    elif kind == "long_gaps":
        keep[:] = False
        keep[0, 1] = keep[3, 40] = keep[6, 49] = True
    return np.where(keep, _values(rng, shape), 0).astype(np.int16)


LAYERS = ["random", "empty_rows", "dense_row", "one_row", "one_col", "long_gaps"]


def lbi_spec(shape) -> LbiSpec:
    return LbiSpec(rank=1, tile_rows=min(4, shape[0]), tile_cols=min(5, shape[1]))


def fixed(value):
    return lambda shape: value


def one_per_block(sparsity: float):
    """BMWM / DARB keep one weight per row at least: no pruning of a single column."""
    return lambda shape: sparsity if shape[1] > 1 else 0.0


#: id -> (format, spec of a layer shape, sparsity given to compress of a layer shape)
CASES = {
    "dense": ("dense", fixed(DenseSpec()), fixed(None)),
    "bitmap": ("bitmap", fixed(BitmapSpec()), fixed(None)),
    "csr": ("csr", fixed(CsrSpec()), fixed(None)),
    "relative-r2": ("relative", fixed(RelativeSpec(r=2)), fixed(None)),
    "relative-r4": ("relative", fixed(RelativeSpec(r=4)), fixed(None)),
    "nm": ("nm", fixed(NmSpec(n=2, m=4)), fixed(0.5)),
    "block": ("block", fixed(BlockSpec(b=3)), fixed(0.5)),
    "bmwm": ("bmwm", lambda s: BmwmSpec(b=4 if s[1] > 1 else 1), one_per_block(0.75)),
    "darb": ("darb", fixed(DarbSpec(max_block=8)), one_per_block(0.7)),
    "viterbi": ("viterbi", fixed(ViterbiSpec(n_out=4, threshold=6, segment=5)), fixed(None)),
    "lbi": ("lbi", lbi_spec, fixed(0.6)),
    "lowrank": ("lowrank", lambda s: LowrankSpec(rank=min(2, *s)), fixed(None)),
    "xor-bitmap": ("xor", fixed(XorSpec(n_in=4, n_out=16, mask_format="bitmap")), fixed(None)),
    "xor-csr": ("xor", fixed(XorSpec(n_in=3, n_out=8, n_s=2, mask_format="csr")), fixed(None)),
    "xor-relative": (
        "xor",
        fixed(XorSpec(n_in=4, n_out=12, mask_format="relative")),
        fixed(None),
    ),
    "xor-patches": ("xor", fixed(XorSpec(n_in=1, n_out=24, mask_format="bitmap")), fixed(None)),
    "xor-viterbi": ("xor", fixed(XorSpec(n_in=4, n_out=16, mask_format="viterbi")), fixed(0.7)),
    "xor-lbi": ("xor", fixed(XorSpec(n_in=3, n_out=10, mask_format="lbi")), fixed(0.7)),
}


def compress(case: str, w: np.ndarray):
    fmt_name, spec_of, sparsity_of = CASES[case]
    fmt = LbiFormat(max_miss=1.0) if fmt_name == "lbi" else get_format(fmt_name)
    if fmt_name == "lowrank":
        w = w.astype(np.float32)
    sparsity, spec = sparsity_of(w.shape), spec_of(w.shape)
    if fmt_name == "block":  # the point its blocks reach nearest below the request
        sparsity = block_reach(w, sparsity, spec.b)[1]
    return fmt.compress(w, sparsity, spec)


# ------------------------------------------------------------------ slow references


def slow_entry_rows(gaps: np.ndarray, n: int) -> list[int]:
    rows, pos = [], -1
    for g in gaps.tolist():
        pos += g + 1
        rows.append(pos // n)
    return rows


def slow_step_rows(n_out: int, m: int, n: int) -> list[int]:
    rows, t = [], 0
    while t * n_out < m * n:
        last = min(t * n_out + n_out, m * n) - 1
        rows.append(last // n)
        t += 1
    return rows


def count_rows(rows: list[int], m: int) -> list[int]:
    out = [0] * m
    for r in rows:
        out[r] += 1
    return out


def slow_cycles(fmt: str, streams: dict, shape, spec, slice_bits: int, units: int) -> list[int]:
    """Per-row cycles of ``fmt``'s decoder, read from ``streams`` with loops."""
    m, n = shape
    if fmt in ("dense", "lowrank"):
        return [0] * m
    if fmt == "bitmap":
        return [math.ceil(n / slice_bits)] * m
    if fmt == "csr":
        ptr = streams["row_ptr"].data.tolist()
        return [1 + math.ceil((ptr[r + 1] - ptr[r]) / units) for r in range(m)]
    if fmt in ("bmwm", "darb"):
        codes = (
            streams["row_code"].data.tolist() if fmt == "darb" else [spec.b.bit_length() - 1] * m
        )
        return [math.ceil(math.ceil(n / 2**k) / units) for k in codes]
    if fmt == "relative":
        return count_rows(slow_entry_rows(streams["gaps"].data, n), m)
    if fmt == "nm":
        return [math.ceil(n / spec.m)] * m
    if fmt == "block":
        bits = streams["block_mask"].data.tolist()
        across = math.ceil(n / spec.b)
        return [
            max(1, sum(bits[(r // spec.b) * across : (r // spec.b + 1) * across])) for r in range(m)
        ]
    if fmt == "viterbi":
        return count_rows(slow_step_rows(spec.n_out, m, n), m)
    if fmt == "lbi":
        return [math.ceil(n / spec.tile_cols)] * m
    assert fmt == "xor"
    mask_streams = {k[5:]: s for k, s in streams.items() if k.startswith("mask_")}
    mask_spec = get_format(spec.mask_format).spec_type()
    if spec.mask_format == "viterbi":
        mask_spec = ViterbiSpec(threshold=spec.mask_threshold)
    elif spec.mask_format == "lbi":
        mask_spec = LbiSpec(rank=1, tile_rows=1, tile_cols=min(64, n))
    mask = slow_cycles(spec.mask_format, mask_streams, shape, mask_spec, slice_bits, units)
    block_rows = slow_step_rows(spec.n_out, m, n)
    counts = streams["patch_count"].data.tolist()
    blocks = streams["patch_block"].data.tolist()
    per_row = [[0] * m for _ in counts]
    start = 0
    for p, count in enumerate(counts):
        mine = blocks[start : start + count]
        start += count
        for t, row in enumerate(block_rows):
            k = mine.count(t)
            per_row[p][row] += max(1, k) + (1 if t == 0 and k > 0 else 0)
    return [max(mask[r], *(plane[r] for plane in per_row)) for r in range(m)]


def kinds(enc) -> set[str]:
    if enc.format == "xor":
        return {"xor", enc.spec.mask_format}
    return {enc.format}


# ------------------------------------------------------------------ per-format work


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("case", list(CASES))
def test_layer_work_matches_streams(case: str, layer: str):
    w = make_layer(layer, seed=LAYERS.index(layer))
    reference, enc = compress(case, w)
    slice_bits, units = (8, 3) if layer == "random" else (64, 1)
    work = layer_work("fc", enc, bitmap_slice_bits=slice_bits, index_units=units)
    assert work.format == enc.format and work.total_bits == enc.total_bits
    assert work.dense_shape == w.shape and work.dense_macs == w.size
    assert sum(int(p.index_bits.sum()) for p in work.passes) == enc.index_bits
    assert sum(int(p.value_bits.sum()) for p in work.passes) == enc.value_bits

    x = np.random.default_rng(1).integers(-9, 10, size=(w.shape[1], 3))
    y = x
    for p in work.passes:
        assert p.indptr[-1] == p.cols.size == p.vals.size
        y = p.apply(y)
    if enc.format == "lowrank":
        (v, u) = work.passes
        assert (v.shape, u.shape) == (
            (enc.extras["rank"], w.shape[1]),
            (w.shape[0], enc.extras["rank"]),
        )
        assert not v.decoders and not u.decoders and not v.decode_cycles.any()
        decoded = get_format("lowrank").decode(enc).weights.astype(np.float64)
        np.testing.assert_allclose(y, decoded @ x, rtol=1e-4, atol=1e-4)
        return
    np.testing.assert_array_equal(y, reference.astype(np.float64) @ x)

    (p,) = work.passes
    dec = get_format(enc.format).decode(enc)
    rows = np.repeat(np.arange(p.rows), p.macs)
    assert all(
        np.all(np.diff(p.cols[a:b]) > 0) for a, b in zip(p.indptr[:-1], p.indptr[1:], strict=True)
    )
    positions = np.zeros(w.shape, dtype=bool)
    positions[rows, p.cols] = True
    np.testing.assert_array_equal(positions, dec.mask)
    np.testing.assert_array_equal(p.vals, dec.weights[rows, p.cols])
    if enc.format == "relative":
        assert p.macs.sum() == enc.streams["gaps"].data.size
        assert p.macs.tolist() == count_rows(
            slow_entry_rows(enc.streams["gaps"].data, w.shape[1]), p.rows
        )

    expected = slow_cycles(enc.format, enc.streams, enc.shape, enc.spec, slice_bits, units)
    assert p.decode_cycles.tolist() == expected
    used = kinds(enc) if enc.format != "dense" else set()
    assert p.head_cycles == (1 if "lbi" in used else 0)
    assert p.latency == (1 if used & RTL_KINDS else 0)
    assert {d.kind for d in p.decoders} == used
    if p.decoders:
        busiest = np.max([d.active_cycles for d in p.decoders], axis=0)
        np.testing.assert_array_equal(busiest, p.decode_cycles)
    for d in p.decoders:
        assert d.block == (d.kind if d.kind in RTL_KINDS else None)


@pytest.mark.parametrize("layer", ["random", "long_gaps", "one_col"])
def test_rtl_formats_whole_stream_cycles(layer: str):
    """head + Σ rows + latency = what one decoder takes for the whole stream."""
    w = make_layer(layer)
    m, n = w.shape
    _, rel = compress("relative-r2", w)
    assert layer_cycles(rel) == rel.streams["gaps"].data.size + 1
    _, vit = compress("viterbi", w)
    assert layer_cycles(vit) == math.ceil(m * n / vit.spec.n_out) + 1
    _, lbi = compress("lbi", w)
    assert layer_cycles(lbi) == 1 + lbi.streams["ip"].data.size + 1


def layer_cycles(enc) -> int:
    (p,) = layer_work("fc", enc).passes
    return p.head_cycles + int(p.decode_cycles.sum()) + p.latency


def test_relative_padding_slots_are_operands():
    w = make_layer("long_gaps")
    _, enc = compress("relative-r2", w)
    (p,) = layer_work("fc", enc).passes
    gaps = enc.streams["gaps"].data
    assert (gaps == 3).sum() > 3 and p.macs.sum() == gaps.size > np.count_nonzero(w)
    assert p.index_bits.tolist() == [2 * c for c in p.macs.tolist()]
    assert p.value_bits.tolist() == [16 * c for c in p.macs.tolist()]
    (use,) = p.decoders
    assert use.params == {"n_cols": 50, "value_bits": 16, "row_bits": 3}
    assert use.spec == RelativeSpec(r=2)


def test_xor_planes_and_patches():
    w = make_layer("dense_row")
    _, enc = compress("xor-patches", w)
    counts = enc.streams["patch_count"].data
    assert counts.sum() > 100
    (p,) = layer_work("fc", enc).passes
    mask_use, xor_use = p.decoders
    assert (mask_use.kind, xor_use.kind, xor_use.copies) == ("bitmap", "xor", 8)
    blocks = math.ceil(w.size / 24)
    assert xor_use.params == {"block_bits": math.ceil(math.log2(blocks))}
    assert p.decode_cycles.max() > 1
    assert p.value_bits[0] >= 32 * 8


def test_xor_on_searched_masks_uses_their_blocks():
    w = make_layer("random")
    _, enc = compress("xor-viterbi", w)
    (p,) = layer_work("fc", enc).passes
    mask_use, xor_use = p.decoders
    assert (mask_use.block, mask_use.spec) == (
        "viterbi",
        ViterbiSpec(threshold=enc.spec.mask_threshold),
    )
    assert mask_use.active_cycles.sum() == math.ceil(w.size / 5)
    assert (xor_use.block, xor_use.copies, p.head_cycles) == ("xor", 8, 0)
    _, enc = compress("xor-lbi", w)
    (p,) = layer_work("fc", enc).passes
    mask_use, _ = p.decoders
    assert (mask_use.block, mask_use.spec) == ("lbi", LbiSpec(rank=8, tile_rows=11, tile_cols=23))
    assert p.head_cycles == 1 and p.latency == 1


def test_block_bits_go_to_the_last_row_of_the_band():
    w = make_layer("random")
    _, enc = compress("block", w)
    (p,) = layer_work("fc", enc).passes
    assert p.index_bits.tolist() == [0, 0, 8] * 3 + [0, 8]


def test_viterbi_and_lbi_index_bits_per_row():
    w = make_layer("random")
    _, vit = compress("viterbi", w)
    (p,) = layer_work("fc", vit).passes
    assert p.index_bits.tolist() == [c * vit.spec.n_in for c in p.decode_cycles.tolist()]
    assert p.decoders[0].spec == vit.spec and p.decoders[0].spec.threshold == 6
    _, lbi = compress("lbi", w)
    (p,) = layer_work("fc", lbi).passes
    across_bits = 5 * 1
    assert p.index_bits.tolist() == [
        across_bits + (23 if r in (3, 7, 10) else 0) for r in range(11)
    ]


def test_csr_header_goes_to_row_zero():
    w = make_layer("empty_rows")
    _, enc = compress("csr", w)
    (p,) = layer_work("fc", enc, index_units=2).passes
    ptr_bits, col_bits = enc.streams["row_ptr"].width, enc.streams["col_idx"].width
    nnz = np.count_nonzero(w, axis=1)
    expected = nnz * col_bits + ptr_bits
    expected[0] += ptr_bits
    assert p.index_bits.tolist() == expected.tolist()
    assert p.decode_cycles.tolist() == (1 + -(-nnz // 2)).tolist()


def test_every_registered_format_is_covered():
    assert {fmt for fmt, _, _ in CASES.values()} == set(FORMATS)


# ------------------------------------------------------------------ stream-level rules


def test_rules_on_hand_computed_streams():
    # positions 0, 4, 6, 7 of a 2x4 matrix: rows 0, 1, 1, 1
    assert relative_cycles(np.array([0, 3, 1, 0]), (2, 4)).tolist() == [1, 3]
    assert relative_cycles(np.array([], dtype=np.int64), (3, 2)).tolist() == [0, 0, 0]
    # 12 positions in steps of 5: last positions 4, 9, 11 -> rows 1, 2, 2
    assert step_rows(5, (3, 4)).tolist() == [1, 2, 2]
    assert viterbi_cycles(5, (3, 4)).tolist() == [0, 1, 2]
    assert viterbi_cycles(1, (2, 3)).tolist() == [3, 3]
    assert slice_cycles((2, 65), 64).tolist() == [2, 2]
    assert slice_cycles((1, 64), 64).tolist() == [1]
    assert lbi_cycles(8, (3, 20)).tolist() == [3, 3, 3]
    # bands of 2 rows, 3 blocks across: band 0 keeps 2, band 1 none
    assert kept_block_cycles(np.array([1, 1, 0, 0, 0, 0]), (3, 5), 2).tolist() == [2, 2, 1]
    # 2 planes of 2 blocks (rows 0, 1): plane 0 blocks (2, 1) patches, plane 1 (0, 3)
    got = xor_cycles(np.array([0, 0, 0, 1, 1, 1]), np.array([0, 0, 1, 1, 1, 1]), 2, 4, (2, 4))
    assert got.tolist() == [[3, 1], [1, 3]]
    # a first block with one patch takes 2 cycles; a block spanning rows goes to the later
    got = xor_cycles(np.array([0]), np.array([0]), 1, 3, (2, 2))
    assert got.tolist() == [[0, 2 + 1]]
    assert stream_cycles("lbi", [np.array([2, 2]), np.array([1])]) == 1 + 5 + 1
    assert stream_cycles("relative", [np.array([3, 0])]) == 4
    assert stream_cycles("csr", [np.array([2, 2])]) == 4
    assert HEAD_CYCLES == {"lbi": 1} and set(LATENCY) == RTL_KINDS


def test_bad_arguments():
    _, enc = compress("bitmap", make_layer("random"))
    with pytest.raises(ValueError, match="bitmap_slice_bits must be an integer >= 1, got 0"):
        layer_work("fc", enc, bitmap_slice_bits=0)
    with pytest.raises(ValueError, match="index_units must be an integer >= 1, got True"):
        layer_work("fc", enc, index_units=True)
    with pytest.raises(ValueError, match=r"reaches position 8, past the 2x4 matrix"):
        relative_cycles(np.array([8]), (2, 4))
    with pytest.raises(ValueError, match="width must be an integer >= 1"):
        slice_cycles((2, 2), 0)
    with pytest.raises(ValueError, match=r"shape must be \(m, n\) with m, n >= 1"):
        step_rows(4, (0, 3))
    bogus = type(enc)("nope", enc.spec, enc.shape, enc.dtype, enc.streams, 0, 0, 0, 0)
    with pytest.raises(FormatError, match="unknown format 'nope'"):
        layer_work("fc", bogus)
