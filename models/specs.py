"""Format specs: one frozen dataclass per storage format.

A spec is the single description of a decoder that every layer of the project reads
(golden model, hardware, simulator, sweeps). Specs validate themselves on
construction: a bad field raises :class:`SpecError` (a ``ValueError``) whose message
names the field and its allowed range. ``to_json``/``from_json`` round-trip exactly.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from typing import Any, ClassVar

#: The sparsity (fraction of weights pruned) that a default derived from a target rate
#: assumes when none is given: the Viterbi threshold of the hardware blocks
#: (:meth:`ViterbiSpec.rate_threshold`) and the target of `codesign demo`.
DEFAULT_SPARSITY = 0.9


class SpecError(ValueError):
    """A spec field is outside its allowed range."""


def _check_int(cls_name: str, field: str, value: Any, lo: int, hi: int | None = None) -> None:
    allowed = f"{lo}..{hi}" if hi is not None else f">= {lo}"
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"{cls_name}.{field} must be an integer in {allowed}, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        raise SpecError(f"{cls_name}.{field} must be in {allowed}, got {value}")


def _check_real(cls_name: str, field: str, value: Any, lo: float, hi: float) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or not lo <= value <= hi:
        raise SpecError(f"{cls_name}.{field} must be a number in [{lo}, {hi}], got {value!r}")


def _check_power_of_two(cls_name: str, field: str, value: int) -> None:
    if value & (value - 1):
        raise SpecError(f"{cls_name}.{field} must be a power of two (1, 2, 4, ...), got {value}")


@dataclasses.dataclass(frozen=True)
class Spec:
    """Base class of all specs.

    Subclasses declare ``format_name`` and, per field kind, a table of what is allowed:
    ``_ranges`` maps integer fields to ``(lo, hi)`` (``hi`` ``None`` for unbounded),
    ``_real_ranges`` maps real fields to inclusive ``(lo, hi)``, ``_choices`` maps
    string fields to their allowed values, ``_bounds`` maps integer fields to an upper
    bound that depends on other fields: ``(the bound as a formula, spec -> bound)``,
    checked after the fixed ranges and listed by :meth:`field_help`. Fields whose
    default is ``None`` mean "derive from the matrix" (``_unset`` says otherwise where
    they mean something else) and are validated only when given.
    """

    format_name: ClassVar[str] = ""
    _ranges: ClassVar[dict[str, tuple[int, int | None]]] = {}
    _real_ranges: ClassVar[dict[str, tuple[float, float]]] = {}
    _choices: ClassVar[dict[str, tuple[str, ...]]] = {}
    _bounds: ClassVar[dict[str, tuple[str, Callable[[Any], int]]]] = {}
    _unset_means: ClassVar[dict[str, str]] = {}

    def __post_init__(self) -> None:
        name = type(self).__name__
        for field, (lo, hi) in self._ranges.items():
            if not self._unset(field):
                _check_int(name, field, getattr(self, field), lo, hi)
        for field, (lo, hi) in self._real_ranges.items():
            if not self._unset(field):
                _check_real(name, field, getattr(self, field), lo, hi)
        for field, allowed in self._choices.items():
            value = getattr(self, field)
            if value not in allowed:
                raise SpecError(
                    f"{name}.{field} must be one of {', '.join(allowed)}, got {value!r}"
                )
        for field, (formula, bound) in self._bounds.items():
            value, hi = getattr(self, field), bound(self)
            if not self._unset(field) and value > hi:
                lo = self._ranges[field][0]
                raise SpecError(f"{name}.{field} must be in {lo}..{formula}={hi}, got {value}")
        self.validate()

    def _unset(self, field: str) -> bool:
        return getattr(self, field) is None and self._field_default(field) is None

    @classmethod
    def _field_default(cls, field: str) -> Any:
        for f in dataclasses.fields(cls):
            if f.name == field:
                return f.default
        raise KeyError(field)

    def validate(self) -> None:
        """Cross-field checks; subclasses override and raise :class:`SpecError`."""

    def to_dict(self) -> dict[str, Any]:
        """The spec as a plain dict, with its format name under ``"format"``."""
        return {"format": self.format_name, **dataclasses.asdict(self)}

    def to_json(self) -> str:
        """JSON text of :meth:`to_dict` (keys sorted, so equal specs give equal text)."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Spec:
        """Build a spec from :meth:`to_dict` output; the ``"format"`` key picks the class
        when called on :class:`Spec` itself."""
        data = dict(data)
        fmt = data.pop("format", cls.format_name)
        target = cls if cls.format_name else spec_class(fmt)
        if target.format_name != fmt:
            raise SpecError(
                f"spec format {fmt!r} does not match {target.__name__} ({target.format_name!r})"
            )
        known = {f.name for f in dataclasses.fields(target)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SpecError(
                f"{target.__name__} has no field(s) {', '.join(unknown)}; "
                f"fields are {', '.join(sorted(known)) or '(none)'}"
            )
        return target(**data)

    @classmethod
    def from_json(cls, text: str) -> Spec:
        """Inverse of :meth:`to_json`."""
        return cls.from_dict(json.loads(text))

    @classmethod
    def field_help(cls) -> list[tuple[str, str, str]]:
        """``(field, default, allowed range)`` rows for listing a spec's fields; a bound
        that depends on other fields is given as its formula and its value at the
        defaults (``0..2^n_c (0..16 at the defaults)``)."""
        rows = []
        defaults = cls()
        for f in dataclasses.fields(cls):
            lo, hi = cls._ranges.get(f.name, cls._real_ranges.get(f.name, (None, None)))
            formula, bound = cls._bounds.get(f.name, (None, None))
            if f.name in cls._choices:
                allowed = " | ".join(cls._choices[f.name])
            elif lo is None:
                allowed = "any"
            elif bound is not None:
                top = bound(defaults) if hi is None else min(hi, bound(defaults))
                at_defaults = f"{lo}..{top} at the defaults"
                if hi is None:
                    allowed = f"{lo}..{formula} ({at_defaults})"
                else:
                    allowed = f"{lo}..{hi}, at most {formula} ({at_defaults})"
            elif hi is None:
                allowed = f">= {lo}"
            else:
                allowed = f"{lo}..{hi}"
            if f.default is None and lo is not None:
                unset = cls._unset_means.get(f.name, "derived from the matrix")
                allowed += f" or unset ({unset})"
            rows.append((f.name, "unset" if f.default is None else repr(f.default), allowed))
        return rows


_SPEC_CLASSES: dict[str, type[Spec]] = {}


def register_spec(cls: type[Spec]) -> type[Spec]:
    """Class decorator: make ``cls`` reachable by its ``format_name``."""
    _SPEC_CLASSES[cls.format_name] = cls
    return cls


def spec_class(format_name: str) -> type[Spec]:
    """The spec class of a format name."""
    try:
        return _SPEC_CLASSES[format_name]
    except KeyError:
        raise SpecError(
            f"unknown format {format_name!r}; known formats: {', '.join(sorted(_SPEC_CLASSES))}"
        ) from None


def spec_items(items: list[str] | None) -> list[tuple[str, str]]:
    """``key=value`` strings (``--spec``) as ``(key, value)`` pairs; a malformed item, or
    a key given twice (which value would count?), raises :class:`SpecError`."""
    pairs: dict[str, str] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise SpecError(f"--spec expects key=value, got {item!r}")
        if key in pairs:
            raise SpecError(
                f"--spec {key} is given twice ({key}={pairs[key]} and {key}={raw}); give "
                f"each field once"
            )
        pairs[key] = raw
    return list(pairs.items())


def parse_spec(format_name: str, items: list[str] | None) -> Spec:
    """Build a spec from ``key=value`` strings (integers, or ``none`` for "derive");
    :func:`spec_items` checks them."""
    cls = spec_class(format_name)
    kwargs: dict[str, Any] = {}
    known = {f.name: f for f in dataclasses.fields(cls)}
    for key, raw in spec_items(items):
        if key not in known:
            raise SpecError(
                f"{cls.__name__} has no field {key!r}; fields are "
                f"{', '.join(sorted(known)) or '(none)'}"
            )
        kwargs[key] = _parse_value(cls, key, raw)
    return cls(**kwargs)


def _parse_value(cls: type[Spec], key: str, raw: str) -> Any:
    if raw.lower() == "none":
        return None
    for table, kind, convert in (
        (cls._ranges, "an integer", int),
        (cls._real_ranges, "a number", float),
    ):
        if key in table:
            try:
                return convert(raw)
            except ValueError:
                raise SpecError(f"{cls.__name__}.{key} must be {kind}, got {raw!r}") from None
    return raw


@register_spec
@dataclasses.dataclass(frozen=True)
class DenseSpec(Spec):
    """Dense storage: every weight stored, no index."""

    format_name: ClassVar[str] = "dense"


@register_spec
@dataclasses.dataclass(frozen=True)
class BitmapSpec(Spec):
    """One mask bit per weight (m·n bits), kept values in row-major order."""

    format_name: ClassVar[str] = "bitmap"


@register_spec
@dataclasses.dataclass(frozen=True)
class CsrSpec(Spec):
    """Compressed sparse row.

    ``col_bits``: width of a column index in bits (unset: ⌈log2 n⌉, the minimum).
    ``ptr_bits``: width of a row pointer in bits (unset: ⌈log2(nnz+1)⌉, the minimum).
    A width below the matrix's minimum is rejected at encode time.
    """

    format_name: ClassVar[str] = "csr"
    _ranges: ClassVar[dict[str, tuple[int, int | None]]] = {
        "col_bits": (1, 64),
        "ptr_bits": (1, 64),
    }
    col_bits: int | None = None
    ptr_bits: int | None = None


@register_spec
@dataclasses.dataclass(frozen=True)
class RelativeSpec(Spec):
    """EIE-style relative index over the row-major flattened matrix.

    Each stored value carries an ``r``-bit gap (zeros skipped since the previous stored
    value). A run of 2^r or more zeros inserts a padding zero value (gap 2^r − 1).
    """

    format_name: ClassVar[str] = "relative"
    _ranges: ClassVar[dict[str, tuple[int, int | None]]] = {"r": (1, 32)}
    r: int = 4


@register_spec
@dataclasses.dataclass(frozen=True)
class NmSpec(Spec):
    """N:M structured sparsity: at most ``n`` kept weights in every ``m`` consecutive
    weights of a row; exactly ``n`` slots of (⌈log2 m⌉-bit position, value) per group.
    A row whose length is not a multiple of ``m`` ends in a short group."""

    format_name: ClassVar[str] = "nm"
    _ranges: ClassVar[dict[str, tuple[int, int | None]]] = {"n": (1, None), "m": (1, 64)}
    _bounds: ClassVar[dict[str, tuple[str, Callable[[Any], int]]]] = {"n": ("m", lambda s: s.m)}
    n: int = 2
    m: int = 4


@register_spec
@dataclasses.dataclass(frozen=True)
class BlockSpec(Spec):
    """Coarse block pruning: ``b``×``b`` blocks kept or dropped; one bit per block
    (⌈m/b⌉·⌈n/b⌉ bits), kept blocks stored dense (edge blocks clipped to the matrix)."""

    format_name: ClassVar[str] = "block"
    _ranges: ClassVar[dict[str, tuple[int, int | None]]] = {"b": (1, 4096)}
    b: int = 4


@register_spec
@dataclasses.dataclass(frozen=True)
class ViterbiSpec(Spec):
    """Viterbi decompressor (VD) of Viterbi-based pruning.

    ``n_ff`` flip-flops of state, ``n_in`` input bits per cycle, ``n_out`` mask bits per
    cycle; raw outputs r_t = G·[u_t; s_t] over GF(2) (G: n_out·n_c rows of
    n_in + n_ff bits, drawn from ``seed``, no zero and no duplicate rows, the n_c rows of
    each comparator group linearly independent, so n_c ≤ n_in + n_ff); mask bit j of a
    cycle = (integer value of raw group j, n_c bits) < ``threshold``, so
    P(keep) = threshold / 2^n_c. ``threshold`` unset: calibrated at encode time to the
    target sparsity; a hardware block takes :meth:`rate_threshold` at
    :data:`DEFAULT_SPARSITY` (:meth:`with_rate_threshold`). ``segment``: VD cycles per
    segment (the state resets at each segment start; one segment covers segment·n_out
    weights of the row-major matrix). Index bits per weight = n_in / n_out.
    """

    format_name: ClassVar[str] = "viterbi"
    _ranges: ClassVar[dict[str, tuple[int, int | None]]] = {
        "n_in": (1, 8),
        "n_out": (1, 64),
        "n_ff": (1, 12),
        "n_c": (1, 8),
        "threshold": (0, None),
        "seed": (0, None),
        "segment": (1, None),
    }
    _bounds: ClassVar[dict[str, tuple[str, Callable[[Any], int]]]] = {
        "threshold": ("2^n_c", lambda s: 2**s.n_c),
        "n_c": ("n_in + n_ff", lambda s: s.n_in + s.n_ff),
    }
    _unset_means: ClassVar[dict[str, str]] = {"threshold": "calibrated to the sparsity"}
    n_in: int = 1
    n_out: int = 5
    n_ff: int = 8
    n_c: int = 4
    threshold: int | None = None
    seed: int = 0
    segment: int = 256

    def rate_threshold(self, sparsity: float = DEFAULT_SPARSITY) -> int:
        """The threshold whose comparator rate T / 2^n_c is the lowest at or above the
        kept fraction 1 − ``sparsity``: T = max(1, ⌈(1 − sparsity)·2^n_c⌉) — 2 at the
        defaults (n_c = 4, sparsity 0.9: rate 0.125 for 10 % kept). Calibration tries it
        first (:func:`codesign.models.viterbi.calibrate`, strategy ``rate``); the search
        then keeps fewer weights than the rate, and calibration moves θ to meet the
        sparsity."""
        return max(1, math.ceil((1.0 - sparsity) * 2**self.n_c))

    def with_rate_threshold(self, sparsity: float = DEFAULT_SPARSITY) -> ViterbiSpec:
        """This spec with ``threshold`` = :meth:`rate_threshold` of ``sparsity`` when it is
        unset (the hardware blocks' default: the comparators hard-wire a threshold)."""
        if self.threshold is not None:
            return self
        return dataclasses.replace(self, threshold=self.rate_threshold(sparsity))

    def validate(self) -> None:
        rows, limit = self.n_out * self.n_c, 2 ** (self.n_in + self.n_ff) - 1
        if rows > limit:
            raise SpecError(
                f"ViterbiSpec: n_out·n_c = {rows} raw outputs need distinct non-zero taps but "
                f"n_in + n_ff = {self.n_in + self.n_ff} bits give only {limit}; "
                f"raise n_ff or lower n_out·n_c"
            )


@register_spec
@dataclasses.dataclass(frozen=True)
class XorSpec(Spec):
    """XOR-gate fixed-to-fixed encoding of weight bit-planes (sequential decoder).

    Each bit-plane is cut into blocks of ``n_out`` bits; block t decodes as
    y_t = M·[x_t; x_{t−1}; …; x_{t−n_s+1}] over GF(2) from ``n_in``-bit inputs x
    (M: n_out × n_s·n_in from ``seed``); care bits are the kept positions of the mask.
    ``value_bits``: bits of a quantized value (one plane each); ``quant``: ``uniform``
    (symmetric two's complement) or ``binary`` (binary-coding: sign planes of
    ±alpha_i); ``mask_format``: the format storing the mask (with that format's
    default spec; ``lbi``'s tiles clipped to the matrix), reported separately — a
    layer is mask format + value format. ``relative`` pads long gaps with zero-valued
    slots, so it needs ``uniform``. ``viterbi`` and ``lbi`` masks come from their
    pruning search (``compress`` with a sparsity), not from a given mask; the slots
    they keep may hold zero weights, which decode to zero only with ``uniform``.
    ``mask_threshold``: the ``viterbi`` mask's comparator threshold (ViterbiSpec
    ``threshold`` of the default VD, 0..2^n_c = 0..16), set by ``compress``'s
    calibration (unset: calibrated); only with ``mask_format='viterbi'``.
    ``segment``: blocks per segment of a plane; the shift register starts from zero at
    each segment start, so segments encode and decode independently.
    ``dp_states``: the width of the n_s ≥ 2 encoder — the largest trellis, in states
    (2^((n_s−1)·n_in)), it searches exactly (fewest patches, work 2^(n_s·n_in) per
    block); a larger trellis is encoded by GF(2) elimination in scan order (work per
    care bit, patches an upper bound of the exact count). 2^20 (the most states
    allowed): always exact; 1: always elimination.
    """

    format_name: ClassVar[str] = "xor"
    _ranges: ClassVar[dict[str, tuple[int, int | None]]] = {
        "n_in": (1, 64),
        "n_out": (1, 1024),
        "n_s": (1, 4),
        "seed": (0, None),
        "value_bits": (1, 16),
        "segment": (1, None),
        "mask_threshold": (0, 2**ViterbiSpec.n_c),
        "dp_states": (1, 2**20),
    }
    _unset_means: ClassVar[dict[str, str]] = {"mask_threshold": "calibrated to the sparsity"}
    _choices: ClassVar[dict[str, tuple[str, ...]]] = {
        "quant": ("uniform", "binary"),
        "mask_format": ("bitmap", "csr", "relative", "viterbi", "lbi"),
    }
    n_in: int = 8
    n_out: int = 64
    n_s: int = 1
    seed: int = 0
    value_bits: int = 8
    quant: str = "uniform"
    mask_format: str = "csr"
    segment: int = 1024
    mask_threshold: int | None = None
    dp_states: int = 4096

    def validate(self) -> None:
        if self.mask_threshold is not None and self.mask_format != "viterbi":
            raise SpecError(
                f"XorSpec.mask_threshold is the threshold of a viterbi mask; unset it for "
                f"mask_format={self.mask_format!r} or use mask_format='viterbi'"
            )
        state_bits = (self.n_s - 1) * self.n_in
        if state_bits > 20:
            raise SpecError(
                f"XorSpec: (n_s - 1)·n_in = {state_bits} state bits; the encoder's search "
                f"allows at most 20 (2^20 states); lower n_s or n_in"
            )
        if self.quant == "binary" and self.mask_format == "relative":
            raise SpecError(
                "XorSpec.mask_format='relative' stores padding slots that must decode to "
                "zero, which quant='binary' (values ±alpha sums) cannot represent; use "
                "mask_format bitmap or csr, or quant='uniform'"
            )


@register_spec
@dataclasses.dataclass(frozen=True)
class LbiSpec(Spec):
    """Low-rank binary indexing: each ``tile_rows``×``tile_cols`` tile's mask is
    Ip·Iz (Ip: tile_rows×rank, Iz: rank×tile_cols, binary) in ``semiring``:
    ``bool`` (OR of ANDs) or ``gf2`` (XOR of ANDs). Edge tiles are clipped to the
    matrix and their factors stored at the clipped size, so index bits =
    Σ_tiles rank·(a' + b') (= tiles·rank·(tile_rows + tile_cols) when the tiles divide
    the matrix). ``rank`` ≤ min(tile_rows, tile_cols) and ≤ 16 (the encoder tries all
    2^rank choices of a factor row)."""

    format_name: ClassVar[str] = "lbi"
    _ranges: ClassVar[dict[str, tuple[int, int | None]]] = {
        "rank": (1, 16),
        "tile_rows": (1, 4096),
        "tile_cols": (1, 4096),
    }
    _choices: ClassVar[dict[str, tuple[str, ...]]] = {"semiring": ("bool", "gf2")}
    _bounds: ClassVar[dict[str, tuple[str, Callable[[Any], int]]]] = {
        "rank": ("min(tile_rows, tile_cols)", lambda s: min(s.tile_rows, s.tile_cols))
    }
    rank: int = 8
    tile_rows: int = 64
    tile_cols: int = 64
    semiring: str = "bool"

    def fitted(self, shape: tuple[int, int]) -> LbiSpec:
        """This spec with its tiles clipped to an (m, n) matrix (tile_rows ≤ m,
        tile_cols ≤ n) and its rank to the clipped tiles; the spec itself when it fits."""
        rows, cols = min(self.tile_rows, shape[0]), min(self.tile_cols, shape[1])
        rank = min(self.rank, rows, cols)
        if (rows, cols, rank) == (self.tile_rows, self.tile_cols, self.rank):
            return self
        return dataclasses.replace(self, rank=rank, tile_rows=rows, tile_cols=cols)


@register_spec
@dataclasses.dataclass(frozen=True)
class BmwmSpec(Spec):
    """Block-max weight masking: every row cut into blocks of ``b`` (a power of two)
    consecutive weights, one kept per block with a log2(b)-bit offset."""

    format_name: ClassVar[str] = "bmwm"
    _ranges: ClassVar[dict[str, tuple[int, int | None]]] = {"b": (1, 4096)}
    b: int = 8

    def validate(self) -> None:
        _check_power_of_two("BmwmSpec", "b", self.b)


@register_spec
@dataclasses.dataclass(frozen=True)
class DarbSpec(Spec):
    """Density-adaptive regular-block pruning: each row its own power-of-two block
    size b_r ≤ ``max_block`` (from the row's density under magnitude pruning), one kept
    weight per block with a log2(b_r)-bit offset, plus a per-row code of
    ⌈log2(log2(max_block) + 1)⌉ bits naming b_r.

    ``rounding`` turns the row's magnitude-pruning count nnz_r into b_r ≈ n / nnz_r,
    comparing the row's kept count ⌈n / b_r⌉ with nnz_r: ``nearest`` (closest count,
    a tie goes to the larger block), ``down`` (largest b_r keeping ≥ nnz_r weights),
    ``up`` (smallest b_r keeping ≤ nnz_r weights)."""

    format_name: ClassVar[str] = "darb"
    _ranges: ClassVar[dict[str, tuple[int, int | None]]] = {"max_block": (1, 4096)}
    _choices: ClassVar[dict[str, tuple[str, ...]]] = {"rounding": ("nearest", "down", "up")}
    max_block: int = 64
    rounding: str = "nearest"

    def validate(self) -> None:
        _check_power_of_two("DarbSpec", "max_block", self.max_block)


@register_spec
@dataclasses.dataclass(frozen=True)
class LowrankSpec(Spec):
    """Two dense factors W ≈ U·V (U: m×rank, V: rank×n), the deployment of trained
    rank pruning. ``rank`` unset: the smallest rank keeping ``energy`` of Σσ²."""

    format_name: ClassVar[str] = "lowrank"
    _ranges: ClassVar[dict[str, tuple[int, int | None]]] = {"rank": (1, None)}
    _real_ranges: ClassVar[dict[str, tuple[float, float]]] = {"energy": (1e-6, 1.0)}
    _unset_means: ClassVar[dict[str, str]] = {"rank": "the smallest keeping energy"}
    rank: int | None = None
    energy: float = 0.95
