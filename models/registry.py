"""The registry of storage formats, by name.

:data:`FORMATS` maps each format's name to its :class:`~codesign.models.format.Format`,
in the order the project lists them. A format's module is imported the first time the
format is looked up, so a command that uses one format does not load the others (nor
numba, which most of them compile their kernels with).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping

from codesign.models.format import Format, FormatError

#: name -> (module of codesign.models, class), in listing order.
_CLASSES = {
    "dense": ("dense", "DenseFormat"),
    "bitmap": ("bitmap", "BitmapFormat"),
    "csr": ("csr", "CsrFormat"),
    "relative": ("relative", "RelativeFormat"),
    "nm": ("nm", "NmFormat"),
    "block": ("block", "BlockFormat"),
    "xor": ("xor", "XorFormat"),
    "viterbi": ("viterbi", "ViterbiFormat"),
    "lbi": ("lbi", "LbiFormat"),
    "bmwm": ("darb", "BmwmFormat"),
    "darb": ("darb", "DarbFormat"),
    "lowrank": ("lowrank", "LowrankFormat"),
}


class _Formats(Mapping[str, Format]):
    """The formats by name; each instantiated (its module imported) on first lookup."""

    def __init__(self) -> None:
        self._made: dict[str, Format] = {}

    def __getitem__(self, name: str) -> Format:
        if name not in self._made:
            module, cls = _CLASSES[name]
            self._made[name] = getattr(importlib.import_module(f"codesign.models.{module}"), cls)()
        return self._made[name]

    def __iter__(self) -> Iterator[str]:
        return iter(_CLASSES)

    def __len__(self) -> int:
        return len(_CLASSES)


FORMATS: Mapping[str, Format] = _Formats()
"""Every registered format by name (module docstring)."""


def get_format(name: str) -> Format:
    """The registered format called ``name``."""
    try:
        return FORMATS[name]
    except KeyError:
        raise FormatError(f"unknown format {name!r}; known formats: {', '.join(FORMATS)}") from None
