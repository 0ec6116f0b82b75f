"""The tile's spec and weight stream (codesign.models.tile), and its agreement study.

The stream is checked by reading every record back field by field, as the tile's
decoder units do, and comparing what it gives with the golden decode of the encoding.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codesign.experiments.jobs.hardware import block_spec
from codesign.experiments.studies.tile import load_rows, render_rows
from codesign.models.registry import get_format
from codesign.models.specs import CsrSpec, LbiSpec, RelativeSpec, SpecError, ViterbiSpec
from codesign.models.tile import VALUE_BITS, TileError, TileSpec, check_layer, tile_stream


class _Reader:
    """Fields of a record read from bit 0 up."""

    def __init__(self, words: list[int], word_bits: int) -> None:
        self.value = sum(w << (k * word_bits) for k, w in enumerate(words))
        self.pos = 0
        self.word_bits = word_bits

    def get(self, width: int, signed: bool = False) -> int:
        v = (self.value >> self.pos) & ((1 << width) - 1)
        self.pos += width
        return v - (1 << width) if signed and v >> (width - 1) else v

    def align(self) -> None:
        self.pos = -(-self.pos // self.word_bits) * self.word_bits


def _records(stream, tile: TileSpec) -> list[list[int]]:
    records, current = [], []
    for word, last in zip(stream.words, stream.last, strict=True):
        current.append(word)
        if last:
            records.append(current)
            current = []
    assert not current, "the stream ends inside a record"
    return records


def _read_back(enc, tile: TileSpec, stream) -> np.ndarray:
    """The weights the records say, read as the tile reads them."""
    m, n = enc.shape
    spec = tile.format_spec
    out = np.zeros((m, n), dtype=np.int64)
    records = iter(_records(stream, tile))
    for r in range(m):
        if stream.band_words[r]:
            next(records)  # a band record: the Iz codes (their mask is the golden one)
        rec = _Reader(next(records), tile.word_bits)
        if isinstance(spec, RelativeSpec):
            col = -1
            for _ in range(rec.get(tile.count_bits)):
                col += rec.get(spec.r) + 1
                out[r, col] = rec.get(VALUE_BITS, signed=True)
        elif isinstance(spec, CsrSpec):
            for _ in range(rec.get(spec.ptr_bits)):
                col = rec.get(spec.col_bits)
                out[r, col] = rec.get(VALUE_BITS, signed=True)
        else:
            items = n // spec.n_out if isinstance(spec, ViterbiSpec) else -(-n // spec.tile_cols)
            rec.get(items * (spec.n_in if isinstance(spec, ViterbiSpec) else spec.rank))
            rec.align()
            for col in np.flatnonzero(stream.mask[r]):
                out[r, col] = rec.get(VALUE_BITS, signed=True)
    return out


SPECS = [
    RelativeSpec(r=3),
    CsrSpec(),
    ViterbiSpec(n_out=4, threshold=2, segment=12),
    LbiSpec(rank=2, tile_rows=4, tile_cols=8),
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.format_name)
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16), keep=st.floats(0.0, 1.0), width=st.sampled_from([4, 8, 16]))
def test_the_stream_reads_back_to_the_golden_decode(spec, seed, keep, width):
    rng = np.random.default_rng(seed)
    m, n = 13, 48
    weights = rng.integers(-128, 128, size=(m, n)).astype(np.int8)
    weights[rng.random((m, n)) >= keep] = 0
    enc = get_format(spec.format_name).encode(weights, spec)
    tile = TileSpec(format_spec=enc.spec, n_cols=n, stream_bytes=width, row_bits=4)
    stream = tile_stream(enc, tile)
    golden = get_format(spec.format_name).decode(enc).weights.astype(np.int64)
    np.testing.assert_array_equal(stream.weights, golden)
    np.testing.assert_array_equal(_read_back(enc, tile, stream), golden)
    assert stream.row_words.sum() + stream.band_words.sum() == len(stream.words)
    assert all(0 <= w < 1 << tile.word_bits for w in stream.words)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"lanes": 0}, r"TileSpec.lanes must be an integer in 1..64, got 0"),
        ({"lanes": 4, "decoders": 3}, r"decoders = 3 must divide lanes = 4; allowed: 1, 2, 4"),
        (
            {"stream_bytes": 3},
            r"stream_bytes must be a power of two in 1..64, got 3; allowed: 1, 2, 4, 8, 16, 32, 64",
        ),
        (
            {"format_spec": RelativeSpec(r=16), "stream_bytes": 2},
            r"a relative count and entry is 31 bits, more than a stream word",
        ),
    ],
)
def test_a_tile_it_cannot_build_names_the_field(fields, message):
    with pytest.raises(TileError, match=message):
        TileSpec(**fields)


def test_a_layer_the_tile_cannot_take_says_what_to_change():
    weights = np.eye(8, 16, dtype=np.int8)
    enc = get_format("csr").encode(weights, CsrSpec())
    with pytest.raises(TileError, match=r"16 columns; the tile takes n_cols = 8"):
        tile_stream(enc, TileSpec(n_cols=8))
    with pytest.raises(TileError, match=r"stored in csr; the tile decodes relative"):
        tile_stream(enc, TileSpec(format_spec=RelativeSpec(), n_cols=16))
    # a unit starts a row only once its whole record is in its bank: a longer record
    # would hang the tile, so it is refused (row 1: 16 entries of 12 bits + its count)
    weights[1] = 5
    enc = get_format("csr").encode(weights, CsrSpec())
    words = tile_stream(enc, TileSpec(n_cols=16)).row_words
    assert words.argmax() == 1 and words[1] == -(-(16 + 16 * (4 + 8)) // 64) == 4
    with pytest.raises(
        TileError,
        match=r"row 1's record is 4 words of 8 bytes, longer than a bank \(bank_words = 3\): "
        r"its unit would never start it; raise bank_words to at least 4",
    ):
        check_layer(enc, TileSpec(n_cols=16, bank_words=3))
    check_layer(enc, TileSpec(n_cols=16, bank_words=4))


def test_the_tile_block_takes_a_format():
    block, spec, params = block_spec("tile", ["format=viterbi", "n_out=4", "lanes=8"])
    assert (block.name, spec.format_name, spec.n_out, params) == (
        "tile",
        "viterbi",
        4,
        {"lanes": 8},
    )
    assert block_spec("tile", None)[1].format_name == "csr"
    with pytest.raises(SpecError, match=r"format must be one of relative, csr, viterbi, lbi"):
        block_spec("tile", ["format=bitmap"])
    with pytest.raises(SpecError, match=r"no spec field or parameter 'r'"):
        block_spec("tile", ["format=csr", "r=4"])


def test_the_study_tabulates_every_run(tmp_path):
    figures = {
        "rtl_cycles": 120,
        "sim_cycles": 120,
        "closed_form": 100,
        "gap": 0.2,
        "named_effect": "lane imbalance",
    }
    record = {
        "format": "csr",
        "runs": {
            "csr/p4": {
                "layers": {"fc3@0.9": figures, "fc1@0.8": {**figures, "sim_cycles": 121}},
                "bits_compared": {"full_rate": 10, "random_stalls": 5},
            }
        },
    }
    (tmp_path / "tile_csr.json").write_text(json.dumps(record))
    rows = load_rows(tmp_path)
    assert [(r["layer"], r["sparsity"]) for r in rows] == [("fc1", 0.8), ("fc3", 0.9)]
    text = render_rows(rows)
    assert "+20.0%" in text and "lane imbalance" in text
    assert "2 layer runs, simulator exact on 1" in text and ": 15" in text
    with pytest.raises(FileNotFoundError, match="run `pytest rtl_tests/test_tile.py`"):
        load_rows(tmp_path / "none")
