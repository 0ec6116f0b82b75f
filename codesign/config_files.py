"""Configuration files — simulator configs, sweep configs, energy tables — read safely and
checked with one rule for numbers.

:func:`load_yaml` never trusts the file. It reads at most :data:`MAX_BYTES` bytes,
which must be UTF-8 text, and parses them with PyYAML's safe loader (no ``!!python/*``
tag is ever constructed). Before any object is built, the parse events are checked:
collections nest at most :data:`MAX_DEPTH` deep, and the document holds at most
:data:`MAX_VALUES` values once its aliases are expanded (a "billion laughs" file of
nested aliases is refused instead of exhausting memory in whatever walks it later). A
key repeated in one mapping is refused (YAML would keep the last silently; a ``<<``
merge key may still be overridden). Every problem is one line naming the file, and
the line and column or the key: a syntax error, a repeated key, a number that is not
finite (``.nan``, ``.inf``).

**Numbers.** One rule for every config: a key that takes an integer takes an integer
literal only — a float such as ``16.0`` is refused, naming the key ("write 16") —
and no number may be NaN or infinite. :data:`Validator` is the JSON-schema validator
every config schema is checked with: Draft 2020-12 whose ``integer`` type excludes
floats (the draft itself accepts ``16.0`` as an integer). :func:`check_finite` finds a
non-finite number in a document built in code.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import yaml

MAX_BYTES = 4 * 2**20
"""Largest config file read (bytes)."""
MAX_DEPTH = 64
"""Deepest nesting of mappings and sequences in a config."""
MAX_VALUES = 100_000
"""Most values (scalars, mappings, sequences) of a config with its aliases expanded."""

_MERGE = "tag:yaml.org,2002:merge"


def _strict_integer(checker: Any, instance: Any) -> bool:
    return isinstance(instance, int) and not isinstance(instance, bool)


Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer", _strict_integer),
)
"""JSON-schema Draft 2020-12 validator whose ``integer`` is an integer literal only."""


def integer_hint(value: Any) -> str:
    """The advice for a whole float where an integer is meant (`` (write 16)``), else
    ``""``."""
    if isinstance(value, float) and value.is_integer():
        return f" (write {int(value)}: an integer key refuses a float, even a whole one)"
    return ""


class _Loader(yaml.SafeLoader):
    """The safe loader, refusing a key repeated in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE:
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node.start_mark.line + 1)
            except TypeError:  # an unhashable key: the safe loader refuses it itself
                continue
            if first != key_node.start_mark.line + 1:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key {key!r} appears twice in one mapping (first at line {first}); "
                    "a key may be given once",
                    key_node.start_mark,
                )
        return super().construct_mapping(node, deep=deep)


def _where(path: Path, mark: Any) -> str:
    if mark is None:
        return str(path)
    return f"{path}: line {mark.line + 1}, column {mark.column + 1}"


def _events_checked(text: str, path: Path, error: type[ValueError]) -> None:
    """Refuse too deep a nesting or too many values after alias expansion, from the
    parse events alone (nothing is constructed)."""
    counts = [0]
    anchors: dict[str, int] = {}
    open_anchors: list[str | None] = []
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.CollectionStartEvent):
            if len(counts) > MAX_DEPTH:
                raise error(
                    f"{_where(path, event.start_mark)}: nested more than {MAX_DEPTH} levels "
                    "deep; a config nests a few levels"
                )
            counts.append(1)
            open_anchors.append(event.anchor)
        elif isinstance(event, yaml.CollectionEndEvent):
            count = counts.pop()
            anchor = open_anchors.pop()
            if anchor is not None:
                anchors[anchor] = count
            counts[-1] += count
        elif isinstance(event, yaml.ScalarEvent):
            if event.anchor is not None:
                anchors[event.anchor] = 1
            counts[-1] += 1
        elif isinstance(event, yaml.AliasEvent):
            counts[-1] += anchors.get(event.anchor, 1)
        if sum(counts) > MAX_VALUES:
            raise error(
                f"{_where(path, event.start_mark)}: more than {MAX_VALUES:,} values once its "
                "aliases are expanded (nested aliases?); a config holds far fewer"
            )


def _text(path: Path, error: type[ValueError]) -> str:
    try:
        with path.open("rb") as f:
            data = f.read(MAX_BYTES + 1)
    except IsADirectoryError:
        raise error(f"{path}: is a directory, not a YAML file") from None
    except OSError as exc:
        raise error(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise error(f"{path}: larger than {MAX_BYTES // 2**20} MiB; a config is a small file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise error(
            f"{path}: line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset "
            f"{exc.start}); save the file as UTF-8"
        ) from None


def load_yaml(path: str | Path, error: type[ValueError] = ValueError) -> Any:
    """The document of the YAML file ``path``, read and checked as the module docstring
    says; every problem raises ``error`` with one line naming the file."""
    path = Path(path)
    text = _text(path, error)
    try:
        _events_checked(text, path, error)
        doc = yaml.load(text, Loader=_Loader)  # noqa: S506  (a safe loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(str(exc.problem or exc.context or "invalid YAML").split())
        raise error(f"{_where(path, mark)}: {problem}") from None
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    check_finite(doc, error, f"{path}: ")
    return doc


def _numbers(doc: Any, where: str) -> Iterator[tuple[str, float]]:
    if isinstance(doc, float):
        yield where, doc
    elif isinstance(doc, dict):
        for key, value in doc.items():
            yield from _numbers(value, f"{where}.{key}" if where else str(key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield from _numbers(value, f"{where}[{i}]")


def check_finite(doc: Any, error: type[ValueError] = ValueError, prefix: str = "") -> None:
    """Raise ``error`` (``prefix`` + one line naming the key path) for the first NaN or
    infinite number in ``doc`` (nested dicts and lists)."""
    for where, value in _numbers(doc, ""):
        if not math.isfinite(value):
            raise error(
                f"{prefix}{where or 'the document'} = {value}: not a finite number; every "
                "number of a config must be finite"
            )
