"""Per-layer settings by name pattern: the ``overrides`` of simulator and sweep configs.

A whole model rarely wants one setting for every layer: the stem convolution or the
classifier often stays denser, a downsample path keeps more precision. An override is a
mapping with ``match`` — one ``fnmatch`` pattern or a list of them, tested against the
tensor name (``"layer1.*"``, ``"*.output.dense.weight"``) — and any of the settings
it changes (``format``, ``spec``, ``sparsity``, ``quantize``, and the simulator's
geometry keys). Every override whose pattern matches a layer applies, in order, so a
later one wins for the keys it sets; a ``spec`` override replaces the whole spec, and
an override changing the ``format`` without a ``spec`` starts from that format's
default spec (the old format's fields do not apply to it).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["OVERRIDE_KEYS", "matches", "resolve", "unused_patterns"]

OVERRIDE_KEYS = ("format", "spec", "sparsity", "quantize")
"""Settings every override may change (a simulator config adds its geometry keys)."""


def _patterns(override: Mapping[str, Any]) -> list[str]:
    match = override["match"]
    return [match] if isinstance(match, str) else list(match)


def matches(override: Mapping[str, Any], name: str) -> bool:
    """Whether ``override``'s ``match`` pattern (or one of its patterns) matches ``name``."""
    return any(fnmatch.fnmatchcase(name, p) for p in _patterns(override))


def resolve(
    name: str, base: Mapping[str, Any], overrides: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """``base`` settings of the layer ``name`` updated by every matching override, in
    order (``match`` itself is not a setting)."""
    out = dict(base)
    for override in overrides:
        if matches(override, name):
            if override.get("format", out.get("format")) != out.get("format"):
                out["spec"] = {}
            out.update({k: v for k, v in override.items() if k != "match"})
    return out


def unused_patterns(names: Sequence[str], overrides: Sequence[Mapping[str, Any]]) -> list[str]:
    """Patterns of ``overrides`` that match none of ``names`` (probably a typo)."""
    return [
        p
        for o in overrides
        for p in _patterns(o)
        if not any(fnmatch.fnmatchcase(n, p) for n in names)
    ]
