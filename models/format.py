"""The format interface every storage format implements.

A format turns a (pruned) weight matrix W of shape (m, n) — zeros are pruned
weights — into an :class:`Encoded` bundle of named bit streams, and decodes it back
using nothing but those streams, the shape and the spec. Size accounting follows the
closed forms of the project's references and is exact: ``index_bits`` and
``value_bits`` count every side stream (pointers, padding values, per-group slots).
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, ClassVar

import numpy as np

from codesign.limits import Need, check_memory
from codesign.models.specs import Spec, spec_class
from codesign.models.workloads import check_weights, magnitude_prune


class FormatError(ValueError):
    """An input cannot be stored in a format under the given spec."""


@dataclasses.dataclass(frozen=True)
class Stream:
    """One stored array of an encoded layer.

    ``data``: 1-D array of stored elements; ``width``: bits per element as stored;
    ``role``: ``"index"`` (metadata: positions, pointers, masks) or ``"value"``.
    """

    data: np.ndarray
    width: int
    role: str

    @property
    def bits(self) -> int:
        """Storage of this stream in bits (elements × width)."""
        return int(self.data.size) * self.width


@dataclasses.dataclass(frozen=True)
class Encoded:
    """A layer stored in one format.

    ``shape``: (m, n) of the weight matrix; ``dtype``: dtype of the stored values;
    ``nnz``: non-zero weights of the encoded input; ``stored_values``: value slots
    stored (≥ nnz for formats that pad); ``index_bits`` / ``value_bits``: the format's
    closed-form storage in bits (equal to the sum of the streams of that role);
    ``extras``: figures of the format's own (e.g. patch bits, encoding efficiency,
    kept |w| mass), copied into the layer report.
    """

    format: str
    spec: Spec
    shape: tuple[int, int]
    dtype: np.dtype
    streams: dict[str, Stream]
    nnz: int
    stored_values: int
    index_bits: int
    value_bits: int
    extras: dict[str, float] = dataclasses.field(default_factory=dict)

    @property
    def total_bits(self) -> int:
        """Index plus value storage in bits."""
        return self.index_bits + self.value_bits

    def stream_bits(self, role: str) -> int:
        """Sum of the stored bits of the streams of one role (independent of the
        closed-form accounting)."""
        return sum(s.bits for s in self.streams.values() if s.role == role)


@dataclasses.dataclass(frozen=True)
class Decoded:
    """A decoded layer: ``weights`` (m, n) with zeros outside the stored positions and
    ``mask`` (m, n) bool, True where the format stores a value (a stored value may be
    zero, e.g. dense storage or a block that is kept)."""

    weights: np.ndarray
    mask: np.ndarray


def value_width(dtype: np.dtype) -> int:
    """Bits of one stored value of ``dtype``."""
    return np.dtype(dtype).itemsize * 8


def ceil_log2(x: int) -> int:
    """⌈log2 x⌉ for x ≥ 1 (0 for x = 1)."""
    if x < 1:
        raise ValueError(f"ceil_log2 needs x >= 1, got {x}")
    return int(x - 1).bit_length()


SPARSITY_TOLERANCE = 0.005
"""How far (absolute) a format's reached sparsity may lie from the requested one when
its structure fixes the sparsity (nm: 1 − n/m; bmwm: 1 − 1/b): farther, it refuses and
names the nearest sparsity it reaches (the calibrated formats use the same 0.005)."""


class Format(abc.ABC):
    """A storage format: ``encode`` / ``decode`` plus the pruning structure it needs.

    Subclasses set ``name`` (the spec's ``format_name``) and implement ``_encode`` and
    ``decode``. ``prune`` gives the structure the format stores best (magnitude
    pruning by default); encoding itself never changes a weight.

    ``approximates``: True for a format whose decode approximates its input instead of
    reproducing a pruned matrix (``lowrank``): a report compares its decode with the
    input and its CSR baseline is the input's magnitude pruning at the same sparsity.
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    approximates: ClassVar[bool] = False
    memory_per_weight: ClassVar[int] = 20
    """Peak bytes per weight of pruning, encoding, decoding and reporting a layer,
    beyond the layer itself (measured by ``benchmarks/bench_memory.py``, rounded up)."""

    @property
    def spec_type(self) -> type[Spec]:
        """The spec class of this format."""
        return spec_class(self.name)

    def encode(self, weights: np.ndarray, spec: Spec | None = None) -> Encoded:
        """Store ``weights`` (m, n) under ``spec`` (the spec's defaults when None)."""
        check_weights(weights)
        spec = self.spec_type() if spec is None else spec
        if not isinstance(spec, self.spec_type):
            raise FormatError(
                f"format {self.name!r} needs a {self.spec_type.__name__}, got {type(spec).__name__}"
            )
        return self._encode(weights, spec)

    def memory_needs(self, shape: tuple[int, int], spec: Spec | None = None) -> list[Need]:
        """Peak memory of :meth:`compress` and :meth:`decode` of an (m, n) layer under
        ``spec``, by part: :attr:`memory_per_weight` per weight, plus what a format's
        search allocates on top (its override)."""
        m, n = shape
        return [
            Need(
                self.memory_per_weight * m * n,
                f"{self.name} storage of {m * n:,} weights",
                "the layer's size (a smaller --synthetic shape or fewer --layers)",
            )
        ]

    def value_precision(self, enc: Encoded) -> int:
        """Bits of one stored value of ``enc``: the width its values are compared at
        (the stored dtype's; a format that quantizes internally overrides it)."""
        return value_width(enc.dtype)

    @abc.abstractmethod
    def _encode(self, weights: np.ndarray, spec: Any) -> Encoded:
        """Encode validated weights."""

    @abc.abstractmethod
    def decode(self, enc: Encoded) -> Decoded:
        """Rebuild the matrix from the streams, shape and spec only."""

    def prune(self, weights: np.ndarray, sparsity: float, spec: Spec | None = None) -> np.ndarray:
        """Prune ``weights`` to ``sparsity`` with the structure this format stores
        (global magnitude pruning unless a subclass says otherwise)."""
        return magnitude_prune(weights, sparsity)

    def compress(
        self, weights: np.ndarray, sparsity: float | None, spec: Spec | None = None
    ) -> tuple[np.ndarray, Encoded]:
        """Prune (when ``sparsity`` is given) and encode.

        Returns ``(reference, encoded)``: the (m, n) matrix the encoding stands for
        (the pruned layer) and its :class:`Encoded`. Formats whose pruning and encoding
        are one search (Viterbi) or that quantize (XOR) override this.
        """
        spec = self.spec_type() if spec is None else spec
        reference = weights if sparsity is None else self.prune(weights, sparsity, spec)
        return reference, self.encode(reference, spec)

    def _bundle(
        self,
        weights: np.ndarray,
        spec: Spec,
        streams: dict[str, Stream],
        index_bits: int,
        value_bits: int,
        extras: dict[str, float] | None = None,
    ) -> Encoded:
        stored = sum(s.data.size for s in streams.values() if s.role == "value")
        return Encoded(
            format=self.name,
            spec=spec,
            shape=(int(weights.shape[0]), int(weights.shape[1])),
            dtype=weights.dtype,
            streams=streams,
            nnz=int(np.count_nonzero(weights)),
            stored_values=int(stored),
            index_bits=int(index_bits),
            value_bits=int(value_bits),
            extras=extras or {},
        )


QUANTIZE_BYTES_PER_WEIGHT = 32
"""Peak bytes per weight of symmetric quantization (float64 temporaries)."""


def check_layer(
    name: str,
    shape: tuple[int, int],
    fmt: Format,
    spec: Spec | None = None,
    quantize: int | None = None,
) -> int:
    """The pre-flight of one layer (:func:`codesign.limits.check_memory`): refuse to
    quantize, prune and store the (m, n) layer ``name`` in ``fmt`` when its
    :meth:`Format.memory_needs` (or the quantization's temporaries, if larger) and what
    this process holds exceed the memory limit. Returns the estimate in bytes."""
    needs = fmt.memory_needs(shape, spec)
    m, n = shape
    if quantize is not None and QUANTIZE_BYTES_PER_WEIGHT * m * n > needs[0].nbytes:
        needs[0] = Need(
            QUANTIZE_BYTES_PER_WEIGHT * m * n,
            f"quantization of {m * n:,} weights",
            needs[0].lower,
        )
    return check_memory(f"layer {name} ({m}x{n}) in {fmt.name}", needs)
