"""Formal proofs of every block (SymbiYosys by k-induction, :mod:`codesign.hw.formal`):
stream properties for all, equivalence with a specification written from the sidecar
for the fixed-function blocks. ``make formal`` runs this module alone; the figures
(status, depth, seconds, assertions per property) go to ``results/rtl/formal.json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from codesign.hw.build import verilog
from codesign.hw.formal import prove
from codesign.models.specs import LbiSpec, RelativeSpec, ViterbiSpec, XorSpec
from rtl_tests.runner import merge_result

#: Induction depth of every proof (steps).
DEPTH = 3
#: name -> (block, spec, parameters): every block, xor with n_s 1 to 4, both semirings.
PARAM_SETS: dict[str, tuple[str, Any, dict[str, int]]] = {
    "viterbi-i1-o5-k8": ("viterbi", ViterbiSpec(n_in=1, n_out=5, n_ff=8, n_c=4, threshold=3), {}),
    "viterbi-i3-o12-k5": (
        "viterbi",
        ViterbiSpec(n_in=3, n_out=12, n_ff=5, n_c=2, threshold=1),
        {},
    ),
    "xor-8-32-s1": ("xor", XorSpec(n_in=8, n_out=32, n_s=1), {"block_bits": 4}),
    "xor-4-24-s2": ("xor", XorSpec(n_in=4, n_out=24, n_s=2), {"block_bits": 5}),
    "xor-3-16-s3": ("xor", XorSpec(n_in=3, n_out=16, n_s=3), {"block_bits": 4}),
    "xor-2-10-s4": ("xor", XorSpec(n_in=2, n_out=10, n_s=4), {"block_bits": 3}),
    "lbi-r3-10-gf2": ("lbi", LbiSpec(rank=3, tile_rows=8, tile_cols=10, semiring="gf2"), {}),
    "lbi-r4-6-bool": ("lbi", LbiSpec(rank=4, tile_rows=8, tile_cols=6, semiring="bool"), {}),
    "relative-r4-c37": (
        "relative",
        RelativeSpec(r=4),
        {"n_cols": 37, "value_bits": 6, "row_bits": 3},
    ),
    "relative-r3-c1": (
        "relative",
        RelativeSpec(r=3),
        {"n_cols": 1, "value_bits": 4, "row_bits": 4},
    ),
    "search-ff3-in1": (
        "viterbi_search",
        ViterbiSpec(n_ff=3, n_in=1, n_out=3, n_c=2, threshold=1, segment=6),
        {"score_bits": 4, "max_segment": 6},
    ),
}


@pytest.mark.parametrize("name", list(PARAM_SETS))
def test_proof(name: str, tmp_path: Path) -> None:
    block, spec, params = PARAM_SETS[name]
    text, sidecar = verilog(block, spec, **params)
    proof = prove(text, json.loads(json.dumps(sidecar)), tmp_path, DEPTH)
    assert proof.status == "PASS", proof.log
    assert {"reset_idle", "output_hold"} <= set(proof.properties)
    if block != "viterbi_search":
        assert "conservation" in proof.properties
        assert any(p.startswith("spec_") for p in proof.properties)
    merge_result(
        "formal",
        (name,),
        {
            "status": proof.status,
            "depth": proof.depth,
            "seconds": round(proof.seconds, 2),
            "properties": proof.properties,
        },
    )


@pytest.mark.parametrize(
    ("matrix", "row", "col", "failing"),
    [("taps", 3, 2, "spec_mask"), ("comparator_rows", 0, 0, "spec_mask")],
)
def test_a_wrong_specification_is_not_proved(matrix, row, col, failing, tmp_path):
    """The proof is not vacuous: the sidecar's matrix changed in one entry, the block no
    longer meets its specification."""
    block, spec, params = PARAM_SETS["viterbi-i1-o5-k8"]
    text, sidecar = verilog(block, spec, **params)
    sidecar = json.loads(json.dumps(sidecar))
    entry = sidecar["matrices"][matrix][row]
    entry[col] = entry[col] ^ 1 if matrix == "taps" else entry[col + 1]
    proof = prove(text, sidecar, tmp_path, DEPTH)
    assert proof.status != "PASS"
    assert f"failed assertion {sidecar['top']}.{failing}" in proof.log
