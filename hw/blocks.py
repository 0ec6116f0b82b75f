"""The registry of hardware blocks: BLOCK name -> how to elaborate it from a spec.

A :class:`Block` says which spec class the block reads, the extra parameters it takes
(with defaults), how to build its Amaranth component, its latency and the derived
matrices its sidecar lists. Adding a block is one entry in :data:`BLOCKS`.
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
from codesign.hw.emit import check_module_name
from codesign.models.specs import LbiSpec, RelativeSpec, Spec, ViterbiSpec, XorSpec

#: Builds the component from a spec and the complete parameter set.
ComponentFactory = Callable[..., wiring.Component]
#: Derives a figure (latency, matrices) from a spec and the complete parameter set.
SpecFunction = Callable[[Spec, Mapping[str, Any]], Any]


def _no_matrices(spec: Spec, params: Mapping[str, Any]) -> dict[str, np.ndarray]:
    return {}


@dataclasses.dataclass(frozen=True)
class Block:
    """One hardware block.

    ``spec_type``: the spec class it is elaborated from; ``defaults``: its other
    parameters and their default values (every accepted parameter is listed);
    ``check``: ``(spec, **params) -> None``, raises ``ValueError`` for what the hardware
    cannot build (called before the component is constructed); ``component``:
    ``(spec, **params) -> Component``; ``latency``: ``(spec, params) -> cycles``
    from an input handshake to its first output; ``matrices``: ``(spec, params) ->
    {name: 0/1 array}``, the derived matrices the circuit hard-wires; ``module``: the
    Verilog top module's name (no Verilog/SystemVerilog keyword); ``describe``:
    ``(spec, params) -> dict``, the block's part of the sidecar's ``protocol``
    (:func:`codesign.hw.protocol.build`).
    """

    name: str
    module: str
    summary: str
    spec_type: type[Spec]
    defaults: Mapping[str, Any]
    check: Callable[..., None]
    component: ComponentFactory
    latency: SpecFunction
    describe: SpecFunction
    matrices: SpecFunction = _no_matrices

    def __post_init__(self) -> None:
        check_module_name(self.module)

    def resolve(self, spec: Spec | None, params: Mapping[str, Any]) -> tuple[Spec, dict[str, Any]]:
        """The spec (defaults when None) and the complete parameter set, checked
        (spec type, parameter names, :attr:`check`)."""
        spec = self.spec_type() if spec is None else spec
        if not isinstance(spec, self.spec_type):
            raise ValueError(
                f"block {self.name!r} needs a {self.spec_type.__name__}, got {type(spec).__name__}"
            )
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
            module="relative_decoder",
            summary="EIE relative-index decoder: (gap, value) -> (row, col, value)",
            spec_type=RelativeSpec,
            defaults={"n_cols": 64, "value_bits": 8, "row_bits": 16},
            check=relative_decoder.check_params,
            component=relative_decoder.RelativeDecoder,
            latency=lambda spec, params: relative_decoder.LATENCY,
            describe=relative_decoder.describe,
        ),
        Block(
            name="viterbi",
            module="viterbi_decompressor",
            summary="Viterbi decompressor: n_in stored bits -> n_out mask bits per cycle",
            spec_type=ViterbiSpec,
            defaults={},
            check=viterbi_decompressor.check_params,
            component=viterbi_decompressor.ViterbiDecompressor,
            latency=lambda spec, params: viterbi_decompressor.LATENCY,
            describe=viterbi_decompressor.describe,
            matrices=viterbi_decompressor.matrices,
        ),
        Block(
            name="viterbi_search",
            module="viterbi_search",
            summary="Viterbi search: n_out scores per step -> the VD input bits of a segment",
            spec_type=ViterbiSpec,
            defaults={
                "score_bits": viterbi_search.DEFAULT_SCORE_BITS,
                "max_segment": viterbi_search.DEFAULT_MAX_SEGMENT,
            },
            check=viterbi_search.check_params,
            component=viterbi_search.ViterbiSearch,
            latency=lambda spec, params: viterbi_search.latency(spec.segment),
            describe=viterbi_search.describe,
            matrices=viterbi_search.matrices,
        ),
        Block(
            name="xor",
            module="xor_decoder",
            summary="XOR-gate sequential decoder: n_in bits -> n_out bits per cycle, patched",
            spec_type=XorSpec,
            defaults={"block_bits": 16},
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
            defaults={},
            check=binary_index_decoder.check_params,
            component=binary_index_decoder.BinaryIndexDecoder,
            latency=lambda spec, params: binary_index_decoder.LATENCY,
            describe=binary_index_decoder.describe,
        ),
    )
}


def get_block(name: str) -> Block:
    """The registered block called ``name`` (``ValueError`` naming the known ones)."""
    try:
        return BLOCKS[name]
    except KeyError:
        raise ValueError(f"unknown block {name!r}; known blocks: {', '.join(BLOCKS)}") from None
