"""XOR-gate sequential decoder: cocotb on the generated Verilog, one run per parameter set.

Stimuli come from the golden model (:mod:`codesign.models.xor`) here, in the pytest process, and
reach the testbench as an ``.npz`` (``RTL_STIMULI``): per case the matrix shape (m, n)
the planes cover (what the simulator's rule attributes blocks by), the inputs (planes, B),
the patches (plane, block, bit), the raw decoder output ``decode_planes`` at every
position of every block (pre-patch), the target bits (the quantized weights' bit-planes)
and the care mask (the mask format's slots).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from codesign.models.bitplanes import to_bitplanes
from codesign.models.registry import get_format
from codesign.models.specs import XorSpec
from codesign.models.workloads import gaussian, magnitude_prune, quantize_symmetric
from codesign.models.xor import decode_planes
from rtl_tests.runner import checked_run
from rtl_tests.xor_timing import block_cycles

FORMAT = get_format("xor")
#: name -> (spec, decoder parameters); segments short enough to restart inside planes.
PARAM_SETS = {
    "8-64-1": (XorSpec(n_in=8, n_out=64, n_s=1, value_bits=4, segment=7), {}),
    "4-24-2": (XorSpec(n_in=4, n_out=24, n_s=2, value_bits=4, segment=5), {"block_bits": 9}),
    "6-60-3": (XorSpec(n_in=6, n_out=60, n_s=3, value_bits=4, segment=4), {}),
    "1-4-2": (XorSpec(n_in=1, n_out=4, n_s=2, value_bits=3, segment=3), {"block_bits": 6}),
}
#: cocotb tests in rtl_tests.tb_xor_decoder.
COCOTB_TESTS = 3
#: Blocks per plane aimed at by the weight stimuli.
TARGET_BLOCKS = 24
#: Weight matrix columns of the synthetic stimuli (not a multiple of n_out: the last
#: block of a plane is padded).
SYNTH_COLS = 30


def _pad(bits: np.ndarray, blocks: int, n_out: int) -> np.ndarray:
    out = np.zeros(bits.shape[:-1] + (blocks * n_out,), dtype=bits.dtype)
    out[..., : bits.shape[-1]] = bits
    return out


def encoded_case(weights: np.ndarray, spec: XorSpec) -> dict[str, np.ndarray]:
    """Golden encoding of a pruned float matrix, quantized to ``spec.value_bits``."""
    q = quantize_symmetric(weights, spec.value_bits)[0]
    enc = FORMAT.encode(q, spec)
    inputs = enc.streams["inputs"].data.reshape(spec.value_bits, -1).astype(np.uint64)
    blocks = inputs.shape[1]
    counts = enc.streams["patch_count"].data.astype(np.int64)
    planes = to_bitplanes(q, spec.value_bits, "uniform").planes.reshape(spec.value_bits, -1)
    return {
        "shape": np.array(q.shape),
        "inputs": inputs,
        "patch_plane": np.repeat(np.arange(spec.value_bits), counts),
        "patch_block": enc.streams["patch_block"].data.astype(np.int64),
        "patch_bit": enc.streams["patch_bit"].data.astype(np.int64),
        "raw": decode_planes(inputs, spec, blocks * spec.n_out),
        "target": _pad(planes, blocks, spec.n_out),
        "care": _pad(FORMAT.decode(enc).mask.ravel(), blocks, spec.n_out),
    }


def random_case(
    spec: XorSpec, planes: int, blocks: int, seed: int, patches: bool = True
) -> dict[str, np.ndarray]:
    """Random inputs and random sorted, distinct patches (one plane without any, block 0
    and the last block with several); every position is care and the target is the
    golden decode with the patches flipped. Its shape is one row of blocks·n_out."""
    rng = np.random.default_rng(seed)
    inputs = rng.integers(0, 1 << spec.n_in, size=(planes, blocks), dtype=np.uint64)
    size = blocks * spec.n_out
    plane, pos = [], []
    for p in range(planes if patches else 0):
        if p == 1:
            continue
        chosen = set(rng.choice(size, size=int(rng.integers(1, blocks)), replace=False).tolist())
        if p == 0:
            chosen |= {0, spec.n_out - 1, size - spec.n_out, size - 1}
        plane += [p] * len(chosen)
        pos += sorted(chosen)
    plane, pos = np.array(plane, dtype=np.int64), np.array(pos, dtype=np.int64)
    raw = decode_planes(inputs, spec, size)
    target = raw.copy()
    target[plane, pos] ^= 1
    return {
        "shape": np.array([1, size]),
        "inputs": inputs,
        "patch_plane": plane,
        "patch_block": pos // spec.n_out,
        "patch_bit": pos % spec.n_out,
        "raw": raw,
        "target": target,
        "care": np.ones(size, dtype=bool),
    }


def write_stimuli(path: Path, spec: XorSpec, params: dict, digits: list) -> Path:
    """Save the cases the testbench sends, in order: synthetic layers at 90 % and 60 %
    sparsity, a digits-MLP layer (90 %), a random stream with patches, and a random
    stream without patches."""
    max_blocks = 1 << params.get("block_bits", 16)
    blocks = min(TARGET_BLOCKS, max_blocks)
    rows = -(-blocks * spec.n_out // SYNTH_COLS)
    cases = {}
    for sparsity in (0.9, 0.6):
        w = gaussian((rows, SYNTH_COLS), seed=spec.n_in + spec.n_s)
        cases[f"synthetic-{sparsity:g}"] = encoded_case(magnitude_prune(w, sparsity), spec)
    layer = digits[0]
    digit_rows = max(1, min(blocks * spec.n_out // layer.shape[1], layer.shape[0]))
    cases["digits-mlp-0.9"] = encoded_case(layer[:digit_rows], spec)
    random_blocks = min(max_blocks, 2 * TARGET_BLOCKS)
    cases["random"] = random_case(spec, 3, random_blocks, seed=spec.n_out)
    cases["random-no-patches"] = random_case(spec, 2, TARGET_BLOCKS, seed=1, patches=False)
    for name, case in cases.items():
        assert case["inputs"].shape[1] <= max_blocks, f"{name}: plane longer than block_bits"
    arrays = {f"{name}/{key}": value for name, case in cases.items() for key, value in case.items()}
    np.savez(path, names=np.array(list(cases)), **arrays)
    return path


def rule_cycles(path: Path) -> int:
    """Cycles of every block of the stimuli under the timing rule (no stalls), from the
    patches each plane's stream names (:func:`rtl_tests.xor_timing.block_cycles`)."""
    total = 0
    with np.load(path) as z:
        for name in z["names"]:
            planes, blocks = z[f"{name}/inputs"].shape
            plane, block = z[f"{name}/patch_plane"], z[f"{name}/patch_block"]
            named = [block[plane == p].tolist() for p in range(planes)]
            total += sum(block_cycles([blocks] * planes, named))
    return total


@pytest.mark.parametrize("name", list(PARAM_SETS))
def test_xor_decoder_rtl(name: str, tmp_path: Path, digits_pruned: list[np.ndarray]) -> None:
    spec, params = PARAM_SETS[name]
    stimuli = write_stimuli(tmp_path / "stimuli.npz", spec, params, digits_pruned)
    with checked_run(
        "xor",
        name,
        spec,
        "rtl_tests.tb_xor_decoder",
        tmp_path,
        COCOTB_TESTS,
        stimuli,
        seed=spec.n_out,
        strip_init=name != next(iter(PARAM_SETS)),  # the first set as shipped
        **params,
    ) as (run, full):
        assert full["latency"] == run.sidecar["latency"] == 1
        assert full["cycles"] == rule_cycles(stimuli) + full["latency"]
        clean = full["cases"]["random-no-patches"]
        assert clean["cycles_per_output"] == 1.0 and clean["patches"] == 0
