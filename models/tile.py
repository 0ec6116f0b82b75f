"""The sparse matrix-vector tile: its spec, and a layer's weight stream laid out for it.

The tile (:mod:`codesign.hw.tile`) computes Y (m × B) = W·X for an encoded weight
matrix W (m × n, int8 values) and activations X (n × B). It is the machine the simulator
models (:mod:`codesign.sim.arch`), small but real: one weight stream of
``stream_bytes`` bytes per beat (standing for DRAM → buffer), ``decoders`` decoder units
(row r on unit r mod D), ``lanes`` MAC lanes (row r on lane r mod P) with lane FIFOs of
``fifo_rows`` rows. :class:`TileSpec` is read by the hardware (elaboration) and by the
simulator (:func:`codesign.sim.arch.tile_arch`), so both describe the same machine.

**Stream layout** (:func:`tile_stream`). The weight stream carries one *record* per row,
in row order, each a whole number of stream words (the last word flagged ``last``, its
unused high bits zero); the decoder unit of a row reads nothing but that record. Fields
are packed from bit 0 of the record up (word k holds record bits k·8W … k·8W + 8W − 1):

* ``relative``: an entry count (``count_bits`` = bits of ``n_cols``), then per entry
  its gap (r bits) and value (8 bits). The entries are the golden stream's, attributed
  to the row of their position, the first gap **rebased** to the row start (the
  distance from position −1 of the row; never larger than the stored gap, so it fits
  in r bits): rows decode independently, with the same entries and the same bits as
  the encoding plus the count.
* ``csr``: the row's entry count in ``ptr_bits`` (in place of the cumulative pointer;
  the layer's first pointer, always 0, is not sent), then per entry its column
  (``col_bits``) and value (8 bits).
* ``viterbi``: the row's VD inputs (n/n_out steps of n_in bits; the layer must be
  encoded with one segment per row, segment·n_out = n, so every row starts the VD from
  state 0), padded to a word, then the row's kept values (8 bits each) in column order.
* ``lbi``: the row's Ip codes (one rank-bit code per tile across), padded to a word,
  then its values. Before the first row of every band of ``tile_rows`` rows, a **band
  record**: the band's n Iz column codes (rank bits each, tile by tile), which the tile
  stores once for all its decoder units.

So a row moves ``row_words`` words through its unit's bank and the stream carries
``band_words`` more before it (LBI band records); these, not the encoding's packed bits,
are what the simulator times on a machine that mirrors the tile.

**Reading a record** (:attr:`TileStream.reads`). A unit reads a row's words from its
bank one per cycle from the row's start s, and a word's bank slot is free from the
cycle after its read. A split record (viterbi, lbi) is read without pause: word j at
s + j. A packed record (relative, csr) passes through a two-word gearbox from which the
decoder takes one item per cycle from s + 1 (item 0: the count, with relative's first
entry; then one entry each), so word j + 1 is read at the first cycle t ≥ R(j) + 1 by
whose end the items taken cover j words of bits: R(0) = s, R(j + 1) = max(R(j) + 1,
s + 1 + i_j), i_j the first item whose bits end at or beyond j·8W.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from codesign.models.format import Encoded, ceil_log2
from codesign.models.lbi import factor_codes
from codesign.models.lbi_factorize import tile_counts
from codesign.models.registry import get_format
from codesign.models.specs import (
    DEFAULT_SPARSITY,
    CsrSpec,
    LbiSpec,
    RelativeSpec,
    Spec,
    ViterbiSpec,
)

#: Formats the tile decodes.
TILE_FORMATS = ("relative", "csr", "viterbi", "lbi")
#: Bits of a stored weight value (int8).
VALUE_BITS = 8
#: A CSR pointer's width when the tile's spec leaves it unset (layers of up to 65,535
#: non-zeros).
CSR_PTR_BITS = 16
#: Largest Iz tile the LBI decoder holds (rank·tile_cols bits).
MAX_IZ_BITS = 16384

#: Cycles from a unit finishing a row (its start + max(decode cycles, record words)) to
#: the first cycle the row's lane may take it: the decoder's output register and the
#: unit's commit register.
HANDOFF_CYCLES = 2
#: Cycles from the end of a row's last multiply-accumulate to the end of the cycle of
#: its ``y`` handshake when the port is free: the read and accumulate stages, the
#: lane's output queue and the registered output (one row per cycle).
OUTPUT_CYCLES = 4
#: Cycles from the handshake of a record's last word to the first cycle its unit may
#: start the row (the bank's count of complete records is a register).
RECORD_CYCLES = 1

#: Integer fields of :class:`TileSpec`: (lowest, highest, meaning).
TILE_PARAMS: dict[str, tuple[int, int, str]] = {
    "lanes": (1, 64, "MAC lanes P"),
    "decoders": (1, 64, "decoder units D (divides lanes)"),
    "fifo_rows": (1, 16, "decoded rows a lane FIFO holds"),
    "stream_bytes": (1, 64, "bytes per weight-stream beat (a power of two)"),
    "n_cols": (1, 4096, "most columns of W (rows of X)"),
    "batch": (1, 16, "columns B of X"),
    "activation_bits": (2, 16, "bits of an activation (signed)"),
    "accumulator_bits": (8, 64, "bits of an accumulator and of Y (signed, wraps)"),
    "bank_words": (2, 65536, "stream words a decoder unit's bank holds"),
    "row_bits": (1, 32, "bits of a Y row index (most rows 2^row_bits)"),
}


class TileError(ValueError):
    """A tile parameter or a layer the tile cannot take; the message names the field and
    the allowed range. ``field`` / ``least``: the :class:`TileSpec` field too small for
    the layer and the least value that takes it (None when another change is needed)."""

    def __init__(self, message: str, field: str | None = None, least: int | None = None):
        super().__init__(message)
        self.field, self.least = field, least


@dataclasses.dataclass(frozen=True)
class TileSpec:
    """The tile's parameters (ranges in :data:`TILE_PARAMS`) and its format spec.

    ``format_spec``: a spec of one of :data:`TILE_FORMATS`, completed on construction:
    a CSR spec's unset col_bits takes ⌈log2 n_cols⌉ and an unset ptr_bits
    :data:`CSR_PTR_BITS` (the golden pointer counts the layer's non-zeros; the record
    holds each row's count in that width), an unset Viterbi threshold the
    rate threshold at the default sparsity (the VD hard-wires it).
    """

    format_spec: Spec = dataclasses.field(default_factory=CsrSpec)
    lanes: int = 4
    decoders: int = 2
    fifo_rows: int = 2
    stream_bytes: int = 8
    n_cols: int = 64
    batch: int = 1
    activation_bits: int = 8
    accumulator_bits: int = 32
    bank_words: int = 64
    row_bits: int = 16

    def __post_init__(self) -> None:
        for name, (lo, hi, _) in TILE_PARAMS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise TileError(f"TileSpec.{name} must be an integer in {lo}..{hi}, got {value!r}")
        if self.lanes % self.decoders:
            divisors = [d for d in range(1, self.lanes + 1) if self.lanes % d == 0]
            raise TileError(
                f"TileSpec.decoders = {self.decoders} must divide lanes = {self.lanes}; "
                f"allowed: {', '.join(map(str, divisors))}"
            )
        if self.stream_bytes & (self.stream_bytes - 1):
            raise TileError(
                f"TileSpec.stream_bytes must be a power of two in 1..64, got "
                f"{self.stream_bytes}; allowed: 1, 2, 4, 8, 16, 32, 64"
            )
        if getattr(self.format_spec, "format_name", None) not in TILE_FORMATS:
            got = getattr(self.format_spec, "format_name", type(self.format_spec).__name__)
            raise TileError(
                f"TileSpec.format_spec must be a spec of {', '.join(TILE_FORMATS)}, got {got!r}"
            )
        object.__setattr__(self, "format_spec", self._completed(self.format_spec))
        self._check_format()

    @property
    def format(self) -> str:
        """The format's name."""
        return self.format_spec.format_name

    @property
    def word_bits(self) -> int:
        """Bits of a stream word (8 · stream_bytes)."""
        return 8 * self.stream_bytes

    @property
    def count_bits(self) -> int:
        """Bits of a relative record's entry count: bits of ``n_cols``."""
        return self.n_cols.bit_length()

    @property
    def lanes_per_decoder(self) -> int:
        """Lanes a decoder unit feeds (P / D)."""
        return self.lanes // self.decoders

    def params(self) -> dict[str, int]:
        """The integer parameters as a dict (the block's parameters)."""
        return {name: getattr(self, name) for name in TILE_PARAMS}

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain data: the parameters and ``format_spec`` (its dict)."""
        return {**self.params(), "format_spec": self.format_spec.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TileSpec:
        """Inverse of :meth:`to_dict`."""
        data = dict(data)
        return cls(format_spec=Spec.from_dict(data.pop("format_spec")), **data)

    def _completed(self, spec: Spec) -> Spec:
        if isinstance(spec, CsrSpec):
            col = spec.col_bits if spec.col_bits is not None else max(1, ceil_log2(self.n_cols))
            ptr = spec.ptr_bits if spec.ptr_bits is not None else CSR_PTR_BITS
            return dataclasses.replace(spec, col_bits=col, ptr_bits=ptr)
        if isinstance(spec, ViterbiSpec):
            return spec.with_rate_threshold(DEFAULT_SPARSITY)
        return spec

    def _fits_word(self, what: str, bits: int, lower: str) -> None:
        if bits > self.word_bits:
            raise TileError(
                f"TileSpec: {what} is {bits} bits, more than a stream word of "
                f"stream_bytes = {self.stream_bytes} ({self.word_bits} bits); raise "
                f"stream_bytes or lower {lower}"
            )

    def _check_format(self) -> None:
        spec = self.format_spec
        if isinstance(spec, RelativeSpec):
            entry = self.count_bits + spec.r + VALUE_BITS
            self._fits_word("a relative count and entry", entry, "r or n_cols")
        elif isinstance(spec, CsrSpec):
            need_col, need_ptr = max(1, ceil_log2(self.n_cols)), self.n_cols.bit_length()
            if spec.col_bits < need_col or spec.ptr_bits < need_ptr:
                raise TileError(
                    f"TileSpec: CsrSpec col_bits = {spec.col_bits} and ptr_bits = "
                    f"{spec.ptr_bits} must hold n_cols = {self.n_cols} columns: col_bits >= "
                    f"{need_col}, ptr_bits >= {need_ptr}"
                )
            self._fits_word("a CSR entry", spec.col_bits + VALUE_BITS, "col_bits")
            self._fits_word("a CSR row count", spec.ptr_bits, "ptr_bits")
        elif isinstance(spec, ViterbiSpec):
            if spec.n_out > self.n_cols:
                raise TileError(
                    f"TileSpec: ViterbiSpec.n_out = {spec.n_out} exceeds n_cols = {self.n_cols}"
                )
        elif isinstance(spec, LbiSpec):
            if spec.tile_cols > self.n_cols or spec.rank * spec.tile_cols > MAX_IZ_BITS:
                raise TileError(
                    f"TileSpec: LbiSpec.tile_cols = {spec.tile_cols} must be in "
                    f"1..min(n_cols = {self.n_cols}, {MAX_IZ_BITS} / rank)"
                )
            self._fits_word("an Ip code", spec.rank, "rank")

    def index_bits_max(self) -> int:
        """Most bits of a row's index part for the split formats (viterbi, lbi): VD
        inputs or Ip codes of a row of ``n_cols`` columns; 0 for relative and csr."""
        spec = self.format_spec
        if isinstance(spec, ViterbiSpec):
            return -(-self.n_cols // spec.n_out) * spec.n_in
        if isinstance(spec, LbiSpec):
            return -(-self.n_cols // spec.tile_cols) * spec.rank
        return 0


# ---------------------------------------------------------------- the stream layout


class _Record:
    """A record's bits, packed from bit 0 up (an arbitrary-precision integer)."""

    def __init__(self) -> None:
        self.value = 0
        self.bits = 0
        self.ends: list[int] | None = None  # a packed record's item ends (bits)

    def end_item(self) -> None:
        """A packed record's decoder item ends here (module docstring)."""
        if self.ends is None:
            self.ends = []
        self.ends.append(self.bits)

    def reads(self, word_bits: int) -> np.ndarray:
        """Cycles from the row's start to the read of each of its words (module
        docstring): R(j) − j is the running maximum of i_(j−1) − (j − 1), as i_0 = 0."""
        count = max(1, -(-self.bits // word_bits))
        if self.ends is None:
            return np.arange(count)
        firsts = np.searchsorted(self.ends, np.arange(count - 1) * word_bits)  # i_j
        lag = np.maximum.accumulate(np.concatenate([[0], firsts - np.arange(count - 1)]))
        return lag + np.arange(count)

    def put(self, value: int, width: int) -> None:
        self.value |= (int(value) & ((1 << width) - 1)) << self.bits
        self.bits += width

    def pad(self, word_bits: int) -> None:
        self.bits = max(1, -(-self.bits // word_bits)) * word_bits

    def words(self, word_bits: int) -> list[int]:
        count = max(1, -(-self.bits // word_bits))
        mask = (1 << word_bits) - 1
        return [(self.value >> (k * word_bits)) & mask for k in range(count)]


@dataclasses.dataclass(frozen=True)
class TileStream:
    """A layer laid out for a tile (module docstring).

    ``words``: every stream word in order (integers of 8·stream_bytes bits); ``last``:
    True on the last word of each record; ``row_words`` (m,): words of each row's own
    record; ``band_words`` (m,): words of the band record sent just before the row (LBI,
    first row of each band; else 0); ``weights`` (m, n) int64: the golden decode the
    tile must multiply (``Y = weights @ X``); ``mask`` (m, n) bool: the positions it
    stores (operands, padding slots of relative included); ``reads`` (Σ row_words,)
    int64: for every word of the rows' own records, row by row, the cycle of its read
    counted from the row's start (module docstring).
    """

    words: list[int]
    last: list[bool]
    row_words: np.ndarray
    band_words: np.ndarray
    weights: np.ndarray
    mask: np.ndarray
    reads: np.ndarray

    @property
    def operands(self) -> np.ndarray:
        """(m,) int64: stored values of each row (the lane's multiply-accumulates per
        column of X)."""
        return self.mask.sum(axis=1).astype(np.int64)


def check_layer(enc: Encoded, tile: TileSpec) -> None:
    """Raise :class:`TileError` (naming what to change) when ``tile`` cannot take the
    encoded layer: another format or spec, more columns than ``n_cols``, more rows than
    ``2^row_bits``, values that are not int8, a Viterbi layer whose segments cross
    rows, or a row record longer than a bank (a unit starts a row only once its whole
    record is in its bank, so such a row would never start). Builds the layer's stream
    (:func:`tile_stream`) to measure its records."""
    tile_stream(enc, tile)


def _check_encoding(enc: Encoded, tile: TileSpec) -> None:
    """The checks of :func:`check_layer` that need no stream."""
    m, n = enc.shape
    if enc.format != tile.format:
        raise TileError(f"the layer is stored in {enc.format}; the tile decodes {tile.format}")
    if n > tile.n_cols:
        raise TileError(f"the layer has {n} columns; the tile takes n_cols = {tile.n_cols} at most")
    if m > 1 << tile.row_bits:
        raise TileError(
            f"the layer has {m} rows; row_bits = {tile.row_bits} counts {1 << tile.row_bits}",
            "row_bits",
            ceil_log2(m),
        )
    if np.dtype(enc.dtype) != np.int8:
        raise TileError(
            f"the tile multiplies int8 values; the layer stores {enc.dtype} (quantize to 8)"
        )
    spec, own = enc.spec, tile.format_spec
    if isinstance(spec, ViterbiSpec):
        if spec.segment * spec.n_out != n:
            raise TileError(
                f"the tile restarts the VD at every row: encode the layer with segment = "
                f"n / n_out = {n}/{spec.n_out} (one segment per row), got segment = {spec.segment}"
            )
        spec = dataclasses.replace(spec, segment=own.segment)
    if tile._completed(spec) != own:
        raise TileError(
            f"the layer's spec {spec.to_json()} differs from the tile's {own.to_json()}"
        )


def _relative_rows(enc: Encoded, tile: TileSpec) -> list[_Record]:
    m, n = enc.shape
    spec: RelativeSpec = enc.spec
    gaps = enc.streams["gaps"].data.astype(np.int64)
    values = enc.streams["values"].data.astype(np.int64)
    pos = np.cumsum(gaps + 1) - 1
    bounds = np.searchsorted(pos, np.arange(m + 1) * n)
    records = []
    for r in range(m):
        lo, hi = int(bounds[r]), int(bounds[r + 1])
        rec = _Record()
        rec.put(hi - lo, tile.count_bits)
        if hi == lo:
            rec.end_item()
        for e in range(lo, hi):
            gap = pos[e] - r * n if e == lo else gaps[e]
            rec.put(gap, spec.r)
            rec.put(values[e], VALUE_BITS)
            rec.end_item()
        records.append(rec)
    return records


def _csr_rows(enc: Encoded, tile: TileSpec) -> list[_Record]:
    spec: CsrSpec = tile.format_spec  # the layer's widths, completed as the tile's
    ptr = enc.streams["row_ptr"].data.astype(np.int64)
    cols = enc.streams["col_idx"].data.astype(np.int64)
    values = enc.streams["values"].data.astype(np.int64)
    records = []
    for r in range(enc.shape[0]):
        rec = _Record()
        rec.put(ptr[r + 1] - ptr[r], spec.ptr_bits)
        rec.end_item()
        for e in range(ptr[r], ptr[r + 1]):
            rec.put(cols[e], spec.col_bits)
            rec.put(values[e], VALUE_BITS)
            rec.end_item()
        records.append(rec)
    return records


def _split(index: list[tuple[int, int]], values: np.ndarray, word_bits: int) -> _Record:
    """A split record: the index fields (value, width), padded to a word, then the
    values."""
    rec = _Record()
    for value, width in index:
        rec.put(value, width)
    rec.pad(word_bits)
    for v in values:
        rec.put(int(v), VALUE_BITS)
    return rec


def _row_values(weights: np.ndarray, mask: np.ndarray, r: int) -> np.ndarray:
    return weights[r][mask[r]]


def _viterbi_rows(enc: Encoded, tile: TileSpec, weights, mask) -> list[_Record]:
    spec: ViterbiSpec = enc.spec
    steps = enc.shape[1] // spec.n_out
    inputs = enc.streams["inputs"].data.astype(np.int64).reshape(enc.shape[0], steps)
    return [
        _split([(u, spec.n_in) for u in inputs[r]], _row_values(weights, mask, r), tile.word_bits)
        for r in range(enc.shape[0])
    ]


def _lbi_rows(enc: Encoded, tile: TileSpec, weights, mask) -> tuple[list[_Record], dict]:
    spec: LbiSpec = enc.spec
    m, n = enc.shape
    ip, iz = factor_codes(enc)
    rows = [
        _split(
            [(code, spec.rank) for code in ip[:, r]],
            _row_values(weights, mask, r),
            tile.word_bits,
        )
        for r in range(m)
    ]
    bands = {}
    for band in range(tile_counts(enc.shape, spec.tile_rows, spec.tile_cols)[0]):
        rec = _Record()
        for code in iz[band]:
            rec.put(code, spec.rank)
        bands[band * spec.tile_rows] = rec
    return rows, bands


def tile_stream(enc: Encoded, tile: TileSpec) -> TileStream:
    """The weight stream of ``enc`` for ``tile`` (module docstring); :class:`TileError`
    as :func:`check_layer` says."""
    _check_encoding(enc, tile)
    if enc.format == "viterbi" and enc.shape[1] % enc.spec.n_out:
        raise TileError(f"n_out = {enc.spec.n_out} must divide the layer's {enc.shape[1]} columns")
    decoded = get_format(enc.format).decode(enc)
    weights = decoded.weights.astype(np.int64)
    bands: dict[int, _Record] = {}
    if enc.format == "relative":
        rows = _relative_rows(enc, tile)
    elif enc.format == "csr":
        rows = _csr_rows(enc, tile)
    elif enc.format == "viterbi":
        rows = _viterbi_rows(enc, tile, weights, decoded.mask)
    else:
        rows, bands = _lbi_rows(enc, tile, weights, decoded.mask)
    m = enc.shape[0]
    words: list[int] = []
    last: list[bool] = []
    row_words = np.zeros(m, dtype=np.int64)
    band_words = np.zeros(m, dtype=np.int64)
    reads: list[np.ndarray] = []
    for r, rec in enumerate(rows):
        reads.append(rec.reads(tile.word_bits))
        for target, record in ((band_words, bands.get(r)), (row_words, rec)):
            if record is None:
                continue
            chunk = record.words(tile.word_bits)
            words += chunk
            last += [False] * (len(chunk) - 1) + [True]
            target[r] = len(chunk)
    longest = int(np.argmax(row_words)) if m else 0
    if m and row_words[longest] > tile.bank_words:
        raise TileError(
            f"row {longest}'s record is {row_words[longest]} words of {tile.stream_bytes} "
            f"bytes, longer than a bank (bank_words = {tile.bank_words}): its unit would "
            f"never start it; raise bank_words to at least {row_words[longest]}",
            "bank_words",
            int(row_words[longest]),
        )
    read_cycles = np.concatenate(reads).astype(np.int64) if reads else np.zeros(0, np.int64)
    return TileStream(words, last, row_words, band_words, weights, decoded.mask, read_cycles)
