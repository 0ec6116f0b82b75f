"""Format specs: one frozen dataclass per storage format.

A spec is the single description of a decoder that every layer of the project reads
(golden model, hardware, simulator, sweeps). Specs validate themselves on
construction: a bad field raises :class:`SpecError` (a ``ValueError``) whose message
names the field and its allowed range. ``to_json``/``from_json`` round-trip exactly.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, ClassVar


class SpecError(ValueError):
    """A spec field is outside its allowed range."""


def _check_int(cls_name: str, field: str, value: Any, lo: int, hi: int | None = None) -> None:
    allowed = f"{lo}..{hi}" if hi is not None else f">= {lo}"
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(
            f"{cls_name}.{field} must be an integer in {allowed}, got {value!r}"
        )
    if value < lo or (hi is not None and value > hi):
        raise SpecError(f"{cls_name}.{field} must be in {allowed}, got {value}")


@dataclasses.dataclass(frozen=True)
class Spec:
    """Base class of all specs.

    Subclasses declare ``format_name`` and a ``_ranges`` table mapping each integer
    field to ``(lo, hi)`` (``hi`` may be ``None`` for unbounded); fields whose default
    is ``None`` mean "derive from the matrix" and are validated only when given.
    """

    format_name: ClassVar[str] = ""
    _ranges: ClassVar[dict[str, tuple[int, int | None]]] = {}

    def __post_init__(self) -> None:
        name = type(self).__name__
        for field, (lo, hi) in self._ranges.items():
            value = getattr(self, field)
            if value is None and self._field_default(field) is None:
                continue
            _check_int(name, field, value, lo, hi)
        self.validate()

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
        """``(field, default, allowed range)`` rows for listing a spec's fields."""
        rows = []
        for f in dataclasses.fields(cls):
            lo, hi = cls._ranges.get(f.name, (None, None))
            if lo is None:
                allowed = cls._choices_help(f.name)
            elif hi is None:
                allowed = f">= {lo}"
            else:
                allowed = f"{lo}..{hi}"
            if f.default is None and lo is not None:
                allowed += " or unset (derived from the matrix)"
            rows.append((f.name, repr(f.default), allowed))
        return rows

    @classmethod
    def _choices_help(cls, field: str) -> str:
        return "any"


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


def parse_spec(format_name: str, items: list[str] | None) -> Spec:
    """Build a spec from ``key=value`` strings (integers, or ``none`` for "derive")."""
    cls = spec_class(format_name)
    kwargs: dict[str, Any] = {}
    known = {f.name: f for f in dataclasses.fields(cls)}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise SpecError(f"--spec expects key=value, got {item!r}")
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
    if key in cls._ranges:
        try:
            return int(raw)
        except ValueError:
            raise SpecError(f"{cls.__name__}.{key} must be an integer, got {raw!r}") from None
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
    _ranges: ClassVar[dict[str, tuple[int, int | None]]] = {"n": (1, 64), "m": (1, 64)}
    n: int = 2
    m: int = 4

    def validate(self) -> None:
        if self.n > self.m:
            raise SpecError(f"NmSpec.n must be in 1..m={self.m}, got {self.n}")


@register_spec
@dataclasses.dataclass(frozen=True)
class BlockSpec(Spec):
    """Coarse block pruning: ``b``×``b`` blocks kept or dropped; one bit per block
    (⌈m/b⌉·⌈n/b⌉ bits), kept blocks stored dense (edge blocks clipped to the matrix)."""

    format_name: ClassVar[str] = "block"
    _ranges: ClassVar[dict[str, tuple[int, int | None]]] = {"b": (1, 4096)}
    b: int = 4
