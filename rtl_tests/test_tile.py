"""The sparse tile: cocotb on the generated Verilog, and the simulator against it.

For every format the tile decodes, on the parameter sets of :data:`RUNS`, the layers of
:data:`LAYERS` (the digits MLP's at 80 and 90 %, a 256×256 Gaussian at 90 %, int8) are
encoded exactly as `codesign simulate` encodes them
(:func:`codesign.sim.layers.encode_layer`), laid out for the tile
(:func:`codesign.models.tile.tile_stream`) and sent through the generated Verilog
(:mod:`rtl_tests.tb_tile`): Y must equal numpy's product of the golden decode with X bit
for bit on every layer at full rate, and again on every layer under random stalls on the
activation, weight and Y streams, after a reset in the middle of that layer. The full-rate cycles of
every layer are then predicted by `codesign simulate`'s work
(:func:`codesign.experiments.jobs.simulate.run_config`) on the arch that mirrors the
tile (:func:`codesign.sim.arch.tile_arch`), which must give them exactly; both numbers, the
closed form, the gap and the named effect go to ``results/rtl/tile_<format>.json``
(`python -m codesign.experiments.studies.tile`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from codesign.experiments.jobs.simulate import run_config
from codesign.hw.build import write
from codesign.models.specs import CsrSpec, LbiSpec, RelativeSpec, Spec, ViterbiSpec
from codesign.models.tile import TileSpec, check_layer, tile_stream
from codesign.sim.arch import tile_arch
from codesign.sim.config import LayerConfig, SimConfig
from codesign.sim.layers import encode_layer, load_source
from rtl_tests.runner import failure_report, merge_result, simulate

#: Tile parameter sets: lanes P, decoder units D, lane FIFO rows, stream bytes W per
#: beat, batch B and the bank's words (the middle set's banks fill under load; the last
#: set's, 48 words, hold one long record: :func:`test_tile_rtl_skewed_banks`).
PARAM_SETS = {
    "p4-d2-f2-w8-b1": {"lanes": 4, "decoders": 2, "fifo_rows": 2, "stream_bytes": 8, "batch": 1},
    "p8-d4-f1-w4-b2": {
        "lanes": 8,
        "decoders": 4,
        "fifo_rows": 1,
        "stream_bytes": 4,
        "batch": 2,
        "bank_words": 64,
    },
    "p16-d4-f3-w16-b1": {
        "lanes": 16,
        "decoders": 4,
        "fifo_rows": 3,
        "stream_bytes": 16,
        "batch": 1,
    },
    "p2-d2-f2-w4-b1": {
        "lanes": 2,
        "decoders": 2,
        "fifo_rows": 2,
        "stream_bytes": 4,
        "batch": 1,
        "bank_words": 48,
    },
}
#: Parameters every set shares: the widest layer (300 columns), rows, banks that hold
#: a layer.
COMMON = {"n_cols": 300, "row_bits": 9, "bank_words": 2048}
#: The layers: (source as a simulator config names it, sparsity).
LAYERS = [
    ({"digits": "fc1"}, 0.9),
    ({"digits": "fc2"}, 0.9),
    ({"digits": "fc3"}, 0.9),
    ({"synthetic": "256x256"}, 0.9),
    ({"digits": "fc1"}, 0.8),
    ({"digits": "fc2"}, 0.8),
    ({"digits": "fc3"}, 0.8),
]
#: Larger layers (``make tile-large``, marked slow): a 512×300 and a 300×300 Gaussian.
LARGE_LAYERS = [({"synthetic": "512x300"}, 0.9), ({"synthetic": "300x300"}, 0.8)]
#: Format variants: (format spec, sparsities). The VD hard-wires its comparator
#: threshold, so each sparsity has its own (its rate threshold); its segment is a row.
VARIANTS: dict[str, tuple[Spec, tuple[float, ...]]] = {
    "relative": (RelativeSpec(r=4), (0.8, 0.9)),
    "csr": (CsrSpec(col_bits=9, ptr_bits=16), (0.8, 0.9)),
    "viterbi-t2": (ViterbiSpec(n_out=4, threshold=2), (0.9,)),
    "viterbi-t4": (ViterbiSpec(n_out=4, threshold=4), (0.8,)),
    "lbi": (LbiSpec(rank=4, tile_rows=8, tile_cols=16), (0.8, 0.9)),
}
#: cocotb tests in rtl_tests.tb_tile.
COCOTB_TESTS = 2


@dataclasses.dataclass(frozen=True)
class TileLayer:
    """A layer of the run: its name, simulator layer entry and encoding."""

    name: str
    config: LayerConfig
    encoded: Any


def layer_name(source: dict[str, str], sparsity: float) -> str:
    """``fc1@0.9``, ``256x256@0.9``, ``skewed@0.7`` (a weight file: its stem)."""
    name = Path(source["weights"]).stem if "weights" in source else next(iter(source.values()))
    return f"{name}@{sparsity:g}"


def layer_spec(spec: Spec, n: int) -> Spec:
    """The layer's spec: a Viterbi layer is one segment per row (segment = n / n_out)."""
    if isinstance(spec, ViterbiSpec):
        return dataclasses.replace(spec, segment=n // spec.n_out)
    return spec


def variant_layers(
    variant: str, first_set: bool = True, chosen: list[tuple[dict[str, str], float]] | None = None
) -> list[TileLayer]:
    """The layers of a format variant, encoded as `codesign simulate` encodes them: at
    every sparsity of the variant on the first parameter set, at 90 % on the others
    (``chosen``: these layers instead, every one)."""
    spec, sparsities = VARIANTS[variant]
    layers = []
    for source, sparsity in LAYERS if chosen is None else chosen:
        if chosen is None and sparsity not in (sparsities if first_set else (0.9,)):
            continue
        ((_, weights, _),) = load_source(source).layers
        own = layer_spec(spec, weights.shape[1])
        fields = {k: v for k, v in own.to_dict().items() if k != "format"}
        config = LayerConfig(source, own.format_name, fields, sparsity, 8)
        _, enc = encode_layer(weights, config)
        layers.append(TileLayer(layer_name(source, sparsity), config, enc))
    return layers


def write_stimuli(path: Path, tile: TileSpec, layers: list[TileLayer], seed: int) -> Path:
    """Each layer's weight stream, X (random int8, n × B) and Y = golden decode @ X."""
    rng = np.random.default_rng(seed)
    arrays: dict[str, np.ndarray] = {}
    for layer in layers:
        own = dataclasses.replace(tile, format_spec=layer.encoded.spec)
        stream = tile_stream(layer.encoded, own)
        x = rng.integers(-128, 128, size=(layer.encoded.shape[1], tile.batch))
        words = [w.to_bytes(tile.stream_bytes, "little") for w in stream.words]
        arrays[f"{layer.name}/words"] = np.frombuffer(b"".join(words), np.uint8).reshape(
            len(words), tile.stream_bytes
        )
        arrays[f"{layer.name}/last"] = np.array(stream.last, dtype=np.uint8)
        arrays[f"{layer.name}/x"] = x
        arrays[f"{layer.name}/y"] = stream.weights @ x
    np.savez(path, names=np.array([layer.name for layer in layers]), **arrays)
    return path


def predicted(tile: TileSpec, layer: TileLayer) -> dict[str, Any]:
    """`codesign simulate`'s figures of the layer on the arch that mirrors ``tile``."""
    arch = tile_arch(tile)
    config = SimConfig("tile", arch, "default", 0, (layer.config,))
    row = run_config(config, synth=False)["layers"][0]
    return {
        "sim_cycles": row["cycles"],
        "closed_form": row["analytic_cycles"],
        "closed_form_bound": row["analytic_bound"],
        "gap": row["gap"],
        "named_effect": row["gap_effect"],
        "effects_cycles": row["effects_cycles"],
        "engine": row["engine"],
    }


#: The runs: every format variant on the first parameter set, and at 90 % three on the
#: second and one on the third (together every format on two sets; the suite fits 3 min
#: under Icarus).
RUNS = [(variant, next(iter(PARAM_SETS))) for variant in VARIANTS] + [
    ("relative", "p8-d4-f1-w4-b2"),
    ("lbi", "p8-d4-f1-w4-b2"),
    ("viterbi-t2", "p8-d4-f1-w4-b2"),
    ("csr", "p16-d4-f3-w16-b1"),
]


@pytest.mark.parametrize(("variant", "params"), RUNS)
def test_tile_rtl(variant: str, params: str, tmp_path: Path) -> None:
    run_tile(variant, params, variant_layers(variant, params == RUNS[0][1]), tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["relative", "csr", "viterbi-t2", "lbi"])
def test_tile_rtl_large_layers(variant: str, tmp_path: Path) -> None:
    layers = variant_layers(variant, chosen=LARGE_LAYERS)
    run_tile(variant, "p8-d4-f1-w4-b2", layers, tmp_path, "large")


#: Random machines and layers (:func:`random_machine`): seeds run by `make test`, and
#: more by `make tile-large` (slow).
RANDOM_SEEDS = range(12)
RANDOM_SEEDS_SLOW = range(12, 76)


def random_machine(seed: int, tmp_path: Path) -> tuple[str, dict[str, int], list[TileLayer]]:
    """A random format, layer (16–79 rows × 32–128 columns, each row scaled by 0.01–3 so
    records differ in length, at 50–90 %) and tile (D 1, 2 or 4, P = D or 2D, 1–3 FIFO
    rows, 4- or 8-byte words, batch 1–2, banks 0–7 words longer than the longest record:
    they fill)."""
    rng = np.random.default_rng(1000 + seed)
    variant = ["relative", "csr", "lbi", "viterbi-t2"][seed % 4]
    m, n = int(rng.integers(16, 80)), int(rng.choice([32, 64, 96, 128]))
    weights = rng.normal(size=(m, n)) * rng.choice([0.01, 0.1, 1.0, 3.0], size=m)[:, None]
    path = tmp_path / f"random{seed}.npz"
    np.savez(path, **{"fc.weight": weights.astype(np.float32)})
    sparsity = 0.9 if variant == "viterbi-t2" else float(rng.choice([0.5, 0.7, 0.9]))
    layers = variant_layers(variant, chosen=[({"weights": str(path)}, sparsity)])
    units = int(rng.choice([1, 2, 4]))
    params = {
        "lanes": units * int(rng.choice([1, 2])),
        "decoders": units,
        "fifo_rows": int(rng.integers(1, 4)),
        "stream_bytes": int(rng.choice([4, 8])),
        "batch": int(rng.integers(1, 3)),
    }
    probe = TileSpec(format_spec=layers[0].encoded.spec, **{**COMMON, **params})
    longest = int(tile_stream(layers[0].encoded, probe).row_words.max())
    params["bank_words"] = max(2, longest + int(rng.integers(0, 8)))
    return variant, params, layers


@pytest.mark.parametrize("seed", RANDOM_SEEDS)
def test_tile_rtl_random_machines(seed: int, tmp_path: Path) -> None:
    variant, params, layers = random_machine(seed, tmp_path)
    run_tile(variant, f"random{seed}", layers, tmp_path, params=params, seed=seed)


@pytest.mark.slow
@pytest.mark.parametrize("seed", RANDOM_SEEDS_SLOW)
def test_tile_rtl_more_random_machines(seed: int, tmp_path: Path) -> None:
    test_tile_rtl_random_machines(seed, tmp_path)


@pytest.mark.parametrize("variant", ["relative", "csr"])
def test_tile_rtl_skewed_banks(variant: str, tmp_path: Path) -> None:
    """A 64×128 layer whose even rows (unit 0's) are long and odd rows (unit 1's) short,
    on 48-word banks: unit 0's bank fills while unit 1's stays nearly empty, so the
    stream stalls on one bank (its records are 34 / 48 words; relative / CSR)."""
    rng = np.random.default_rng(5)
    weights = rng.normal(size=(64, 128)).astype(np.float32)
    weights[1::2] *= 0.01
    path = tmp_path / "skewed.npz"
    np.savez(path, **{"fc.weight": weights})
    layers = variant_layers(variant, chosen=[({"weights": str(path)}, 0.7)])
    run_tile(variant, "p2-d2-f2-w4-b1", layers, tmp_path, "skewed")


def run_tile(
    variant: str,
    name: str,
    layers: list[TileLayer],
    tmp_path: Path,
    tag: str = "",
    params: dict[str, int] | None = None,
    seed: int | None = None,
) -> None:
    """``layers`` through the tile of parameter set ``name`` (``params`` when given; full
    rate, then under stalls with a reset mid-layer), Y checked; the simulator must give
    the full-rate cycles exactly; both go to ``results/rtl/tile_<format>.json`` under
    ``variant/name[/tag]``."""
    spec, _ = VARIANTS[variant]
    params = PARAM_SETS[name] if params is None else params
    tile = TileSpec(format_spec=layers[0].encoded.spec, **{**COMMON, **params})
    for layer in layers:
        check_layer(layer.encoded, dataclasses.replace(tile, format_spec=layer.encoded.spec))
    if seed is None:
        seed = sorted(PARAM_SETS).index(name) * 10 + sorted(VARIANTS).index(variant)
    stimuli = write_stimuli(tmp_path / "stimuli.npz", tile, layers, seed)
    v_path, json_path = write("tile", tile.format_spec, tmp_path, **tile.params())
    first = (variant, name) == RUNS[0]
    env = {"RTL_STIMULI": str(stimuli)}
    run = simulate(v_path, json_path, "rtl_tests.tb_tile", tmp_path, seed, env, not first)
    assert run.failed == 0 and run.tests == COCOTB_TESTS, failure_report(run)
    measured = run.measured["full_rate"]["layers"]
    rows = {}
    for layer in layers:
        rtl = measured[layer.name]
        figures = {**rtl, "rtl_cycles": rtl["cycles"], **predicted(tile, layer)}
        rows[layer.name] = figures
    record = {
        "spec": tile.format_spec.to_dict(),
        "params": tile.params(),
        "layers": rows,
        "bits_compared": {
            test: run.measured[test]["bits_compared"] for test in ("full_rate", "random_stalls")
        },
        "random_stalls": run.measured["random_stalls"]["runs"],
    }
    merge_result(
        f"tile_{spec.format_name}",
        ("runs", "/".join([variant, name, *([tag] if tag else [])])),
        record,
        {"format": spec.format_name},
    )
    for name, figures in rows.items():
        assert figures["rtl_cycles"] == figures["sim_cycles"], (
            f"{name}: the RTL took {figures['rtl_cycles']} cycles, the simulator predicts "
            f"{figures['sim_cycles']}"
        )
