"""LBI binary index decoder: cocotb on the generated Verilog, one run per parameter set.

Stimuli come from the golden model here, in the pytest process, and reach the testbench
as an ``.npz`` (``RTL_STIMULI``): per case the shape, the ``ip`` and ``iz`` stream data
(golden layout, :class:`codesign.models.lbi.LbiFormat`) and the expected (m, n) mask. Cases, in
order: a magnitude-scored synthetic layer (calibrated factorization at 70 % sparsity), a
digits-MLP layer pruned to 90 % and encoded, and random Ip/Iz codes. The encoded cases'
masks are the golden decode's; the random case's are
:func:`codesign.models.lbi_factorize.mask_from_codes` of each tile's codes. Every matrix but the
random one is cut into clipped edge tiles at the bottom and right.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from codesign.hw.binary_index_decoder import stream_cycles, tile_beats
from codesign.models.lbi import LbiFormat
from codesign.models.lbi_factorize import mask_from_codes, tile_counts
from codesign.models.specs import LbiSpec
from codesign.models.workloads import gaussian
from rtl_tests.runner import checked_run

#: Golden format; ``max_miss`` 1 accepts whatever kept count the calibration reaches
#: (the decoder is tested on the factors, not on the calibration).
FORMAT = LbiFormat(max_miss=1.0)
#: name -> spec; tile sizes not powers of two in three of them.
PARAM_SETS = {
    "r1-8x8-bool": LbiSpec(rank=1, tile_rows=8, tile_cols=8, semiring="bool"),
    "r4-16x24-gf2": LbiSpec(rank=4, tile_rows=16, tile_cols=24, semiring="gf2"),
    "r8-64x64-bool": LbiSpec(rank=8, tile_rows=64, tile_cols=64, semiring="bool"),
    "r5-12x20-gf2": LbiSpec(rank=5, tile_rows=12, tile_cols=20, semiring="gf2"),
    "r1-5x1-gf2": LbiSpec(rank=1, tile_rows=5, tile_cols=1, semiring="gf2"),
}
#: cocotb tests in rtl_tests.tb_binary_index_decoder.
COCOTB_TESTS = 3
#: Sparsity of the synthetic layer.
SYNTH_SPARSITY = 0.7
#: Rows (of any tile) aimed at per case.
TARGET_ROWS = 120


def edge_shape(spec: LbiSpec) -> tuple[int, int]:
    """A matrix with clipped tiles at the bottom and right and about
    :data:`TARGET_ROWS` tile rows in all: 1.5 tiles down (at least), columns of
    ⌈TARGET_ROWS/m⌉ − ½ tiles across."""
    m = spec.tile_rows + max(1, spec.tile_rows // 2)
    across = max(2, -(-TARGET_ROWS // m))
    return m, (across - 1) * spec.tile_cols + max(1, spec.tile_cols // 2)


def encoded_case(enc, mask: np.ndarray) -> dict[str, np.ndarray]:
    return {
        "shape": np.array(enc.shape),
        "ip": enc.streams["ip"].data.astype(np.int64),
        "iz": enc.streams["iz"].data.astype(np.int64),
        "mask": mask,
    }


def random_case(spec: LbiSpec, seed: int) -> dict[str, np.ndarray]:
    """Random codes over 2 × 2 whole tiles (1 × 2 for tiles of more than 16 rows); each
    tile's expected mask is ``mask_from_codes`` of that tile alone."""
    m = spec.tile_rows * (2 if spec.tile_rows <= 16 else 1)
    n = 2 * spec.tile_cols
    rng = np.random.default_rng(seed)
    down, across = tile_counts((m, n), spec.tile_rows, spec.tile_cols)
    ip = rng.integers(0, 1 << spec.rank, size=across * m)
    iz = rng.integers(0, 1 << spec.rank, size=down * n)
    mask = np.zeros((m, n), dtype=bool)
    for tile in tile_beats(spec, (m, n), ip, iz):
        width = tile.c1 - tile.c0
        codes = [(tile.iz >> (j * spec.rank)) & ((1 << spec.rank) - 1) for j in range(width)]
        mask[tile.r0 : tile.r1, tile.c0 : tile.c1] = mask_from_codes(
            np.array([tile.ip]),
            np.array([codes]),
            spec.tile_rows,
            spec.tile_cols,
            spec.semiring,
        )
    return {"shape": np.array([m, n]), "ip": ip, "iz": iz, "mask": mask}


def digits_rows(spec: LbiSpec, layer: np.ndarray) -> int:
    """Rows of the digits layer (64 inputs wide) giving about :data:`TARGET_ROWS` tile
    rows, at least one tile and a clipped bottom tile where the layer allows."""
    across = -(-layer.shape[1] // spec.tile_cols)
    rows = max(spec.tile_rows + max(1, spec.tile_rows // 2), TARGET_ROWS // across)
    return min(rows, layer.shape[0])


def write_stimuli(path: Path, spec: LbiSpec, digits: list[np.ndarray]) -> Path:
    """Save the cases the testbench sends (module docstring), with their names in order."""
    w = gaussian(edge_shape(spec), seed=spec.rank + spec.tile_cols)
    _, synthetic = FORMAT.compress(w, SYNTH_SPARSITY, spec)
    layer = digits[0][: digits_rows(spec, digits[0])]
    digits_enc = FORMAT.encode(layer, spec)
    cases = {
        f"synthetic-{SYNTH_SPARSITY:g}": encoded_case(synthetic, FORMAT.decode(synthetic).mask),
        "digits-mlp-0.9": encoded_case(digits_enc, FORMAT.decode(digits_enc).mask),
        "random": random_case(spec, seed=spec.rank),
    }
    arrays = {f"{name}/{key}": value for name, case in cases.items() for key, value in case.items()}
    np.savez(path, names=np.array(list(cases)), **arrays)
    return path


def tile_rows_of(spec: LbiSpec, path: Path) -> list[int]:
    """Rows a' of every tile of the stimuli, in the order sent."""
    rows = []
    with np.load(path) as z:
        for name in z["names"]:
            shape = tuple(int(s) for s in z[f"{name}/shape"])
            beats = tile_beats(spec, shape, z[f"{name}/ip"], z[f"{name}/iz"])
            rows += [t.r1 - t.r0 for t in beats]
    return rows


@pytest.mark.parametrize("name", list(PARAM_SETS))
def test_binary_index_decoder_rtl(
    name: str, tmp_path: Path, digits_pruned: list[np.ndarray]
) -> None:
    spec = PARAM_SETS[name]
    stimuli = write_stimuli(tmp_path / "stimuli.npz", spec, digits_pruned)
    with checked_run(
        "lbi",
        name,
        spec,
        "rtl_tests.tb_binary_index_decoder",
        tmp_path,
        COCOTB_TESTS,
        stimuli,
        seed=spec.rank * 100 + spec.tile_cols,
        strip_init=name != next(iter(PARAM_SETS)),  # the first set as shipped
    ) as (run, full):
        rows = tile_rows_of(spec, stimuli)
        assert full["latency"] == run.sidecar["latency"] == 1
        assert full["rows"] == sum(rows) and full["tiles"] == len(rows)
        assert full["stream_cycles"] == stream_cycles(rows)
        assert full["cycles_per_output"] == 1.0
        assert full["edge_tiles"] > 0
