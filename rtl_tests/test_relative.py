"""Relative-index decoder: cocotb on the generated Verilog, one run per parameter set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from codesign.models.specs import RelativeSpec
from codesign.models.workloads import gaussian, magnitude_prune, quantize_symmetric
from rtl_tests.runner import checked_run

#: name -> (spec, decoder parameters); n_cols not a power of two in two of them.
PARAM_SETS = {
    "r1-c64-v8": (RelativeSpec(r=1), {"n_cols": 64, "value_bits": 8}),
    "r4-c300-v8": (RelativeSpec(r=4), {"n_cols": 300, "value_bits": 8}),
    "r8-c37-v16": (RelativeSpec(r=8), {"n_cols": 37, "value_bits": 16, "row_bits": 12}),
    "r3-c1-v4": (RelativeSpec(r=3), {"n_cols": 1, "value_bits": 4}),
}
#: cocotb tests in rtl_tests.tb_relative.
COCOTB_TESTS = 3
#: Entries aimed at per stimulus matrix.
TARGET_ENTRIES = 160


def rows_for(density: float, r: int, n_cols: int) -> int:
    """Rows of an ``n_cols``-wide matrix whose encoding has about :data:`TARGET_ENTRIES`
    entries: one per kept weight plus about one padding entry per 2^r zeros."""
    return max(1, round(TARGET_ENTRIES / (density + 2.0**-r) / n_cols))


def digits_matrix(layers: list[np.ndarray], n_cols: int, rows: int) -> np.ndarray:
    """``rows`` × ``n_cols`` of the pruned digits MLP: the first layer ``n_cols`` wide,
    else all layers' weights in row-major order."""
    for w in layers:
        if w.shape[1] == n_cols:
            return w[:rows]
    flat = np.concatenate([w.ravel() for w in layers])
    rows = min(rows, flat.size // n_cols)
    return flat[: rows * n_cols].reshape(rows, n_cols)


def write_stimuli(path: Path, spec: RelativeSpec, params: dict, digits: list) -> Path:
    """Save the pruned, quantized weight matrices the testbench encodes."""
    n_cols, bits = params["n_cols"], min(params["value_bits"], 16)
    matrices = {}
    for density in (0.1, 0.01):
        w = gaussian((rows_for(density, spec.r, n_cols), n_cols), seed=spec.r)
        matrices[f"synthetic-{density:g}"] = magnitude_prune(w, 1.0 - density)
    matrices["digits-mlp-0.9"] = digits_matrix(digits, n_cols, rows_for(0.1, spec.r, n_cols))
    np.savez(path, **{name: quantize_symmetric(w, bits)[0] for name, w in matrices.items()})
    return path


@pytest.mark.parametrize("name", list(PARAM_SETS))
def test_relative_rtl(name: str, tmp_path: Path, digits_pruned: list[np.ndarray]) -> None:
    spec, params = PARAM_SETS[name]
    stimuli = write_stimuli(tmp_path / "stimuli.npz", spec, params, digits_pruned)
    with checked_run(
        "relative",
        name,
        spec,
        "rtl_tests.tb_relative",
        tmp_path,
        COCOTB_TESTS,
        stimuli,
        seed=spec.r,
        strip_init=name != next(iter(PARAM_SETS)),  # the first set as shipped
        **params,
    ) as (run, full):
        assert full["cycles_per_output"] == 1.0
        assert full["latency"] == run.sidecar["latency"] == 1
        assert full["cycles"] == full["entries"] + full["latency"]
