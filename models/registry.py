"""The registry of storage formats, by name."""

from __future__ import annotations

from models.bitmap import BitmapFormat
from models.block import BlockFormat
from models.csr import CsrFormat
from models.darb import BmwmFormat, DarbFormat
from models.dense import DenseFormat
from models.format import Format, FormatError
from models.lbi import LbiFormat
from models.lowrank import LowrankFormat
from models.nm import NmFormat
from models.relative import RelativeFormat
from models.viterbi import ViterbiFormat
from models.xor import XorFormat

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
