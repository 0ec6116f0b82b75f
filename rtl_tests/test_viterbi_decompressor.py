"""Viterbi decompressor: cocotb on the generated Verilog, one run per parameter set.

The stimuli are made here, once per parameter set: synthetic and digits-MLP matrices
are pruned by the golden format's Viterbi search (:class:`codesign.models.viterbi.ViterbiFormat`,
``encode`` at the spec's threshold or ``compress`` to a sparsity) and the stored VD
inputs, together with the golden decode's mask, go to the testbench
(:mod:`rtl_tests.tb_viterbi_decompressor`) in an ``.npz``. The weights are given dense
or mildly magnitude-pruned: weights already sparser than the comparator rate
threshold / 2^n_c put the search's magnitude threshold at 0, and its answer is the
all-zero input (every position kept), which would exercise nothing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from codesign.models.registry import get_format
from codesign.models.specs import ViterbiSpec
from codesign.models.workloads import gaussian, load_digits_mlp, magnitude_prune
from rtl_tests.runner import checked_run

#: name -> spec (threshold set; short segments, so every stream has several).
PARAM_SETS = {
    "i1-o5-k8-c4": ViterbiSpec(n_in=1, n_out=5, n_ff=8, n_c=4, threshold=3, segment=24),
    "i2-o16-k6-c2": ViterbiSpec(n_in=2, n_out=16, n_ff=6, n_c=2, threshold=1, segment=10),
    "i1-o1-k4-c1": ViterbiSpec(n_in=1, n_out=1, n_ff=4, n_c=1, threshold=1, segment=7),
    "i3-o40-k9-c4": ViterbiSpec(n_in=3, n_out=40, n_ff=9, n_c=4, threshold=3, segment=8),
}
#: cocotb tests in rtl_tests.tb_viterbi_decompressor.
COCOTB_TESTS = 3
#: VD cycles aimed at per stimulus matrix.
TARGET_CYCLES = 120
#: Magnitude-pruning sparsity of the pruned synthetic matrix (its kept fraction, 0.6, is
#: above every comparator rate of PARAM_SETS).
PRE_PRUNE = 0.4
#: Kept fraction the calibrated matrix is compressed to, in units of the comparator rate.
CALIBRATED_KEEP = 0.6

FORMAT = get_format("viterbi")


def write_stimuli(path: Path, spec: ViterbiSpec) -> Path:
    """Save, per matrix ``NAME``, ``NAME.inputs`` (the stored VD input integers U_t of
    the golden encoding, one per cycle) and ``NAME.mask`` (the golden decode's mask)."""
    layer = load_digits_mlp().weights[0]
    rows = min(layer.shape[0], max(1, round(TARGET_CYCLES * spec.n_out / layer.shape[1])))
    shape = (rows, layer.shape[1])
    rate = spec.threshold / 2**spec.n_c
    encodings = {
        "synthetic-dense": FORMAT.encode(gaussian(shape, seed=spec.n_out), spec),
        f"synthetic-pruned-{PRE_PRUNE:g}": FORMAT.encode(
            magnitude_prune(gaussian(shape, seed=spec.n_out + 1), PRE_PRUNE), spec
        ),
        "synthetic-calibrated": FORMAT.compress(
            gaussian(shape, seed=spec.n_out + 2), 1 - CALIBRATED_KEEP * rate, spec
        )[1],
        "digits-mlp-fc1": FORMAT.encode(layer[:rows], spec),
    }
    arrays = {}
    for name, enc in encodings.items():
        mask = FORMAT.decode(enc).mask
        assert 0 < mask.mean() < 1, f"{name}: degenerate mask"
        arrays[f"{name}.inputs"] = enc.streams["inputs"].data.astype(np.int64)
        arrays[f"{name}.mask"] = mask
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("name", list(PARAM_SETS))
def test_viterbi_rtl(name: str, tmp_path: Path) -> None:
    spec = PARAM_SETS[name]
    stimuli = write_stimuli(tmp_path / "stimuli.npz", spec)
    with checked_run(
        "viterbi",
        name,
        spec,
        "rtl_tests.tb_viterbi_decompressor",
        tmp_path,
        COCOTB_TESTS,
        stimuli,
        seed=spec.n_out,
        strip_init=name != next(iter(PARAM_SETS)),  # the first set as shipped
    ) as (run, full):
        assert full["cycles_per_output"] == 1.0
        assert full["latency"] == run.sidecar["latency"] == 1
        assert full["cycles"] == full["outputs"] + full["latency"]
