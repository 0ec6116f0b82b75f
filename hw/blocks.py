"""The registry of hardware blocks: BLOCK name -> how to elaborate it from a spec.

A :class:`Block` says which spec class the block reads, the extra parameters it takes
(each with its default, range and meaning), what the hardware limits beyond the spec's
own ranges, how to build its Amaranth component, its latency and the derived matrices
its sidecar lists. Adding a block is one entry in :data:`BLOCKS`; `codesign verilog
--help` lists them from here.

The Viterbi blocks hard-wire the comparator threshold, so an unset ``threshold`` takes
:meth:`~codesign.models.specs.ViterbiSpec.rate_threshold` at
:data:`~codesign.models.specs.DEFAULT_SPARSITY`: T = ⌈(1 − 0.9)·2^n_c⌉, 2 at the
default n_c = 4 (comparator rate 2/16 = 0.125, the lowest at or above 10 % kept; what
calibration starts from at 90 % sparsity).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from amaranth.lib import wiring

from codesign.hw import (
    binary_index_decoder,
    relative_decoder,
    tile,
    viterbi_decompressor,
    viterbi_search,
    xor_decoder,
)
from codesign.hw.emit import check_module_name
from codesign.models.specs import (
    DEFAULT_SPARSITY,
    CsrSpec,
    LbiSpec,
    RelativeSpec,
    Spec,
    ViterbiSpec,
    XorSpec,
)
from codesign.models.tile import TILE_FORMATS

#: Builds the component from a spec and the complete parameter set.
ComponentFactory = Callable[..., wiring.Component]
#: Derives a figure (latency, matrices) from a spec and the complete parameter set.
SpecFunction = Callable[[Spec, Mapping[str, Any]], Any]


def _no_matrices(spec: Spec, params: Mapping[str, Any]) -> dict[str, np.ndarray]:
    return {}


def _as_given(spec: Spec) -> Spec:
    return spec


def _threshold_default(spec: ViterbiSpec) -> ViterbiSpec:
    return spec.with_rate_threshold(DEFAULT_SPARSITY)


def _tile_default(spec: Spec) -> Spec:
    return _threshold_default(spec) if isinstance(spec, ViterbiSpec) else spec


def _finished_as_given(spec: Spec, params: Mapping[str, Any]) -> Spec:
    return spec


@dataclasses.dataclass(frozen=True)
class Param:
    """A block parameter besides the spec: an integer ``default`` in ``lo``..``hi``
    (the block's ``check`` enforces the range) and what it sets."""

    default: int
    lo: int
    hi: int
    meaning: str


@dataclasses.dataclass(frozen=True)
class Block:
    """One hardware block.

    ``spec_type``: the spec class it is elaborated from; ``params``: its other
    parameters (every accepted one is listed); ``check``: ``(spec, **params) -> None``,
    raises ``ValueError`` for what the hardware cannot build (called before the
    component is constructed); ``component``: ``(spec, **params) -> Component``;
    ``latency``: ``(spec, params) -> cycles`` from an input handshake to its first
    output; ``matrices``: ``(spec, params) -> {name: 0/1 array}``, the derived matrices
    the circuit hard-wires; ``module``: the Verilog top module's name (no
    Verilog/SystemVerilog keyword); ``describe``: ``(spec, params) -> dict``, the block's
    part of the sidecar's ``protocol`` (:func:`codesign.hw.protocol.build`); ``limits``:
    what ``check`` requires beyond the spec's and the parameters' own ranges, in words;
    ``complete``: the spec the block builds for a given one (fills what the hardware
    needs and the spec leaves unset); ``finish``: the same once the parameters are known
    (the tile completes a CSR spec's widths from its column count); ``formats``: the
    formats whose specs the block takes when it takes several (``--spec format=NAME``;
    ``spec_type`` is the default's); ``hierarchical``: the block is made of instances
    worth counting apart (decoder units, lanes), so its generic synthesis keeps the
    hierarchy (:mod:`codesign.hw.synth`).
    """

    name: str
    module: str
    summary: str
    spec_type: type[Spec]
    params: Mapping[str, Param]
    check: Callable[..., None]
    component: ComponentFactory
    latency: SpecFunction
    describe: SpecFunction
    matrices: SpecFunction = _no_matrices
    limits: tuple[str, ...] = ()
    complete: Callable[[Any], Spec] = _as_given
    finish: SpecFunction = _finished_as_given
    formats: tuple[str, ...] = ()
    hierarchical: bool = False

    @property
    def defaults(self) -> dict[str, int]:
        """Parameter name -> default value."""
        return {name: p.default for name, p in self.params.items()}

    def __post_init__(self) -> None:
        check_module_name(self.module)

    def resolve(self, spec: Spec | None, params: Mapping[str, Any]) -> tuple[Spec, dict[str, Any]]:
        """The spec (defaults when None, completed by :attr:`complete`) and the complete
        parameter set, checked (spec type, parameter names, :attr:`check`)."""
        spec = self.spec_type() if spec is None else spec
        if self.formats and getattr(spec, "format_name", None) not in self.formats:
            raise ValueError(
                f"block {self.name!r} needs a spec of {', '.join(self.formats)}, got "
                f"{type(spec).__name__}"
            )
        if not self.formats and not isinstance(spec, self.spec_type):
            raise ValueError(
                f"block {self.name!r} needs a {self.spec_type.__name__}, got {type(spec).__name__}"
            )
        spec = self.complete(spec)
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            known = ", ".join(sorted(self.defaults)) or "(none)"
            raise ValueError(
                f"block {self.name!r} has no parameter(s) {', '.join(unknown)}; parameters are "
                f"{known}"
            )
        full = {**self.defaults, **params}
        self.check(spec, **full)
        return self.finish(spec, full), full

    def build(self, spec: Spec | None = None, **params: Any) -> wiring.Component:
        """Elaborate the component (``ValueError`` for what the hardware cannot build)."""
        spec, full = self.resolve(spec, params)
        return self.component(spec, **full)


BLOCKS: dict[str, Block] = {
    block.name: block
    for block in (
        Block(
            name="relative",
            module="relative_decoder",
            summary="EIE relative-index decoder: (gap, value) -> (row, col, value)",
            spec_type=RelativeSpec,
            params={
                "n_cols": Param(64, 1, relative_decoder.MAX_COLS, "columns of the matrix"),
                "value_bits": Param(
                    8, 1, relative_decoder.MAX_VALUE_BITS, "bits of a stored value"
                ),
                "row_bits": Param(
                    16, 1, relative_decoder.MAX_ROW_BITS, "bits of the row output (wraps)"
                ),
            },
            check=relative_decoder.check_params,
            component=relative_decoder.RelativeDecoder,
            latency=lambda spec, params: relative_decoder.LATENCY,
            limits=(
                f"2^r <= {relative_decoder.MAX_ROW_WRAPS}·n_cols "
                "(one entry advances at most that many rows)",
            ),
            describe=relative_decoder.describe,
        ),
        Block(
            name="viterbi",
            module="viterbi_decompressor",
            summary="Viterbi decompressor: n_in stored bits -> n_out mask bits per cycle",
            spec_type=ViterbiSpec,
            params={},
            check=viterbi_decompressor.check_params,
            component=viterbi_decompressor.ViterbiDecompressor,
            latency=lambda spec, params: viterbi_decompressor.LATENCY,
            describe=viterbi_decompressor.describe,
            matrices=viterbi_decompressor.matrices,
            complete=_threshold_default,
        ),
        Block(
            name="viterbi_search",
            module="viterbi_search",
            summary="Viterbi search: n_out scores per step -> the VD input bits of a segment",
            spec_type=ViterbiSpec,
            params={
                "score_bits": Param(
                    viterbi_search.DEFAULT_SCORE_BITS,
                    *viterbi_search.SCORE_BITS_RANGE,
                    "bits of a signed branch score",
                ),
                "max_segment": Param(
                    viterbi_search.DEFAULT_MAX_SEGMENT,
                    1,
                    viterbi_search.MAX_SEGMENT,
                    "longest segment in steps (at least spec segment)",
                ),
            },
            check=viterbi_search.check_params,
            component=viterbi_search.ViterbiSearch,
            latency=lambda spec, params: viterbi_search.latency(spec.segment),
            describe=viterbi_search.describe,
            matrices=viterbi_search.matrices,
            limits=(
                f"n_ff + n_in <= {viterbi_search.MAX_TAP_BITS} "
                "(2^(n_ff + n_in) add-compare candidates per step)",
            ),
            complete=_threshold_default,
        ),
        Block(
            name="xor",
            module="xor_decoder",
            summary="XOR-gate sequential decoder: n_in bits -> n_out bits per cycle, patched",
            spec_type=XorSpec,
            params={
                "block_bits": Param(
                    16, 1, xor_decoder.MAX_BLOCK_BITS, "bits of a patch's block number"
                )
            },
            check=xor_decoder.check_params,
            component=xor_decoder.XorDecoder,
            latency=lambda spec, params: xor_decoder.LATENCY,
            describe=xor_decoder.describe,
            matrices=xor_decoder.matrices,
        ),
        Block(
            name="lbi",
            module="lbi_decoder",
            summary="LBI binary index decompressor: Iz tile, rank-bit Ip rows -> mask rows",
            spec_type=LbiSpec,
            params={},
            check=binary_index_decoder.check_params,
            component=binary_index_decoder.BinaryIndexDecoder,
            latency=lambda spec, params: binary_index_decoder.LATENCY,
            limits=(
                f"rank·tile_cols <= {binary_index_decoder.MAX_IZ_BITS} (the bits of one Iz beat)",
            ),
            describe=binary_index_decoder.describe,
        ),
        Block(
            name="tile",
            module="sparse_tile",
            summary="sparse matrix-vector tile: weight stream -> D decoder units -> P MAC "
            "lanes -> Y",
            spec_type=CsrSpec,
            params={
                name: Param(default, lo, hi, meaning)
                for name, (default, lo, hi, meaning) in tile.PARAMS.items()
            },
            check=tile.check_params,
            component=lambda spec, **params: tile.SparseTile(tile.tile_of(spec, params)),
            latency=lambda spec, params: tile.describe(spec, params)["latency"]["cycles"],
            describe=tile.describe,
            limits=(
                "decoders divides lanes; stream_bytes a power of two whose word holds an "
                "entry (relative: count, gap and value; csr: column and value)",
                "viterbi: the layer encoded with one segment per row (segment = n / n_out)",
            ),
            complete=_tile_default,
            finish=lambda spec, params: tile.tile_of(spec, params).format_spec,
            hierarchical=True,
            formats=TILE_FORMATS,
        ),
    )
}


def get_block(name: str) -> Block:
    """The registered block called ``name`` (``ValueError`` naming the known ones)."""
    try:
        return BLOCKS[name]
    except KeyError:
        raise ValueError(f"unknown block {name!r}; known blocks: {', '.join(BLOCKS)}") from None
