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
    viterbi_decompressor,
    viterbi_search,
    xor_decoder,
)
from codesign.models.specs import (
    DEFAULT_SPARSITY,
    LbiSpec,
    RelativeSpec,
    Spec,
    ViterbiSpec,
    XorSpec,
)

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
    the circuit hard-wires; ``limits``: what ``check`` requires beyond the spec's and the
    parameters' own ranges, in words; ``complete``: the spec the block builds for a given
    one (fills what the hardware needs and the spec leaves unset).
    """

    name: str
    summary: str
    spec_type: type[Spec]
    params: Mapping[str, Param]
    check: Callable[..., None]
    component: ComponentFactory
    latency: SpecFunction
    matrices: SpecFunction = _no_matrices
    limits: tuple[str, ...] = ()
    complete: Callable[[Any], Spec] = _as_given

    @property
    def defaults(self) -> dict[str, int]:
        """Parameter name -> default value."""
        return {name: p.default for name, p in self.params.items()}

    def resolve(self, spec: Spec | None, params: Mapping[str, Any]) -> tuple[Spec, dict[str, Any]]:
        """The spec (defaults when None, completed by :attr:`complete`) and the complete
        parameter set, checked (spec type, parameter names, :attr:`check`)."""
        spec = self.spec_type() if spec is None else spec
        if not isinstance(spec, self.spec_type):
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
        return spec, full

    def build(self, spec: Spec | None = None, **params: Any) -> wiring.Component:
        """Elaborate the component (``ValueError`` for what the hardware cannot build)."""
        spec, full = self.resolve(spec, params)
        return self.component(spec, **full)


BLOCKS: dict[str, Block] = {
    block.name: block
    for block in (
        Block(
            name="relative",
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
        ),
        Block(
            name="viterbi",
            summary="Viterbi decompressor: n_in stored bits -> n_out mask bits per cycle",
            spec_type=ViterbiSpec,
            params={},
            check=viterbi_decompressor.check_params,
            component=viterbi_decompressor.ViterbiDecompressor,
            latency=lambda spec, params: viterbi_decompressor.LATENCY,
            matrices=viterbi_decompressor.matrices,
            complete=_threshold_default,
        ),
        Block(
            name="viterbi_search",
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
            matrices=viterbi_search.matrices,
            limits=(
                f"n_ff + n_in <= {viterbi_search.MAX_TAP_BITS} "
                "(2^(n_ff + n_in) add-compare candidates per step)",
            ),
            complete=_threshold_default,
        ),
        Block(
            name="xor",
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
            matrices=xor_decoder.matrices,
        ),
        Block(
            name="lbi",
            summary="LBI binary index decompressor: Iz tile, rank-bit Ip rows -> mask rows",
            spec_type=LbiSpec,
            params={},
            check=binary_index_decoder.check_params,
            component=binary_index_decoder.BinaryIndexDecoder,
            latency=lambda spec, params: binary_index_decoder.LATENCY,
            limits=(
                f"rank·tile_cols <= {binary_index_decoder.MAX_IZ_BITS} (the bits of one Iz beat)",
            ),
        ),
    )
}


def get_block(name: str) -> Block:
    """The registered block called ``name`` (``ValueError`` naming the known ones)."""
    try:
        return BLOCKS[name]
    except KeyError:
        raise ValueError(f"unknown block {name!r}; known blocks: {', '.join(BLOCKS)}") from None
