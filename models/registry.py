"""The registry of storage formats, by name."""

from __future__ import annotations

from codesign.models.bitmap import BitmapFormat
from codesign.models.block import BlockFormat
from codesign.models.csr import CsrFormat
from codesign.models.darb import BmwmFormat, DarbFormat
from codesign.models.dense import DenseFormat
from codesign.models.format import Format, FormatError
from codesign.models.lbi import LbiFormat
from codesign.models.lowrank import LowrankFormat
from codesign.models.nm import NmFormat
from codesign.models.relative import RelativeFormat
from codesign.models.viterbi import ViterbiFormat
from codesign.models.xor import XorFormat

FORMATS: dict[str, Format] = {
    cls.name: cls()
    for cls in (
        DenseFormat,
        BitmapFormat,
        CsrFormat,
        RelativeFormat,
        NmFormat,
        BlockFormat,
        XorFormat,
        ViterbiFormat,
        LbiFormat,
        BmwmFormat,
        DarbFormat,
        LowrankFormat,
    )
}


def get_format(name: str) -> Format:
    """The registered format called ``name``."""
    try:
        return FORMATS[name]
    except KeyError:
        raise FormatError(f"unknown format {name!r}; known formats: {', '.join(FORMATS)}") from None
