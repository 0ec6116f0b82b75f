"""Whole layers through the simulator: every format, real streams, the product check,
the closed form on balanced layers, bottlenecks named, the `simulate` command."""

from __future__ import annotations

import copy
import dataclasses
import json
import re

import numpy as np
import pytest
import yaml
from tile_machine import TILE_CONFIG

from codesign.experiments import CONFIGS
from codesign.experiments.cli.main import main
from codesign.experiments.jobs.simulate import run_config
from codesign.models.registry import FORMATS
from codesign.models.workloads import synthetic
from codesign.sim.analytical import estimate_pass
from codesign.sim.arch import Arch, ConfigError
from codesign.sim.config import LayerConfig, load_config, parse_config
from codesign.sim.decoders import layer_work
from codesign.sim.energy import COMPONENTS, load_table
from codesign.sim.engine import event_timeline
from codesign.sim.layers import encode_layer, expand
from codesign.sim.recurrence import pass_timeline
from codesign.sim.run import STALLS, simulate_layer, summarize

SMALL_SPECS = {
    "lbi": {"rank": 2, "tile_rows": 8, "tile_cols": 8},
    "bmwm": {"b": 8},
    "xor": {"n_in": 4, "n_out": 24, "value_bits": 8},
    "viterbi": {"n_out": 5, "n_ff": 6},
}
SPARSITY = {"dense": None, "bmwm": 0.875, "nm": 0.5, "lowrank": 0.7}


def run_layer(fmt: str, arch: Arch, shape=(40, 48), quantize: int | None = 8, seed=0):
    weights = synthetic("gaussian", shape, seed)
    cfg = LayerConfig({}, fmt, SMALL_SPECS.get(fmt, {}), SPARSITY.get(fmt, 0.8), quantize)
    reference, enc = encode_layer(weights, cfg)
    work = layer_work("layer", enc)
    return simulate_layer(work, reference, arch, load_table(None), {}, enc.dtype), work


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize("quantize", [8, None])
def test_every_format_multiplies_exactly_what_it_stored(fmt, quantize):
    arch = Arch(lanes=4, decoders=2, batch=3, dram_latency_cycles=10)
    result, work = run_layer(fmt, arch, quantize=quantize)
    assert result.product_ok, result.product_error
    row = summarize(result)
    assert row["cycles"] == result.cycles > 0
    for r in result.passes:
        assert sum(r.lane_cycles.values()) == arch.lanes * r.cycles
    assert sum(row[f"stall_{k}"] for k in STALLS) + row["util_lanes"] == pytest.approx(1.0)
    assert all(row[f"energy_{k}_pj"] >= 0 for k in COMPONENTS)
    assert row["energy_dram_pj"] == pytest.approx(work.total_bits / 64 * 1950.0)
    assert row["pj_per_mac"] == pytest.approx(row["energy_pj"] / (40 * 48 * 3))


def balanced_weights(m: int, n: int, kept: int, seed: int = 0) -> np.ndarray:
    """Integer weights with exactly ``kept`` non-zeros in every row."""
    rng = np.random.default_rng(seed)
    w = np.zeros((m, n), dtype=np.int8)
    for r in range(m):
        w[r, rng.choice(n, kept, replace=False)] = rng.integers(1, 100, kept)
    return w


@pytest.mark.parametrize("fmt", ["dense", "bitmap"])
@pytest.mark.parametrize(
    "arch",
    [
        Arch(lanes=4, decoders=2, dram_bytes_per_cycle=64.0),
        Arch(lanes=16, decoders=4, batch=2),
        Arch(lanes=8, decoders=8, dram_bytes_per_cycle=2.0),
        Arch(lanes=8, decoders=1, bank_bytes_per_cycle=1, dram_bytes_per_cycle=64.0),
    ],
)
def test_balanced_dense_and_bitmap_layers_equal_the_closed_form(fmt, arch):
    w = balanced_weights(96, 200, 20)
    enc_cfg = LayerConfig({}, fmt, {}, None, None)
    reference, enc = encode_layer(w, enc_cfg)
    work = layer_work("balanced", enc)
    (p,) = work.passes
    assert len(set(p.row_bits.tolist())) == 1 and len(set(p.decode_cycles.tolist())) == 1
    result = simulate_layer(work, reference, arch, load_table(None), {}, enc.dtype)
    assert result.cycles == estimate_pass(p, arch).cycles
    assert result.product_ok and result.product_error == 0.0


def named_stall(result) -> str:
    totals = {k: sum(r.lane_cycles[k] for r in result.passes) for k in STALLS if k != "fill"}
    return max(totals, key=totals.__getitem__)


def test_a_slow_dram_is_named_the_bottleneck():
    result, _ = run_layer("csr", Arch(lanes=16, decoders=4, dram_bytes_per_cycle=0.5))
    assert named_stall(result) == "bandwidth"
    assert result.estimate_bound == "dram"
    assert summarize(result)["util_dram"] > 0.9


def test_a_scarce_decoder_is_named_the_bottleneck():
    arch = Arch(lanes=16, decoders=1, dram_bytes_per_cycle=64.0)
    result, _ = run_layer("viterbi", arch, shape=(64, 200))
    assert named_stall(result) == "decoder"
    assert result.estimate_bound == "decoder"
    assert summarize(result)["util_decoder"] > 0.9


def test_irregular_rows_show_lane_imbalance():
    w = balanced_weights(64, 256, 4)
    w[::8] = 50
    reference, enc = encode_layer(w, LayerConfig({}, "csr", {}, None, None))
    arch = Arch(lanes=8, decoders=8, index_units=64, dram_bytes_per_cycle=256.0)
    result = simulate_layer(
        layer_work("skewed", enc), reference, arch, load_table(None), {}, enc.dtype
    )
    row = summarize(result)
    assert row["gap"] > 0.02
    assert row["gap_effect"] == "lane imbalance"


def write_config(path, **over):
    doc = {
        "name": "tiny",
        "arch": {"lanes": 4, "decoders": 2, "dram": {"bytes_per_cycle": 8}},
        "defaults": {"format": "csr", "sparsity": 0.8, "quantize": 8},
        "layers": [{"synthetic": "24x40"}, {"synthetic": "16x24", "format": "relative"}],
    }
    doc.update(over)
    path.write_text(yaml.safe_dump(doc))
    return path


def test_the_simulate_command_prints_and_writes_every_figure(tmp_path, capsys):
    config = write_config(tmp_path / "c.yaml")
    out = tmp_path / "out.json"
    assert main(["simulate", str(config), "--no-synth", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "energy table: Horowitz ISSCC 2014, 45 nm" in text
    assert "gaussian24x40" in text and "total" in text
    doc = json.loads(out.read_text())
    assert [r["format"] for r in doc["layers"]] == ["csr", "relative"]
    assert doc["total"]["cycles"] == sum(r["cycles"] for r in doc["layers"])
    assert doc["total"]["product_ok"] is True


def test_the_simulate_command_synthesizes_rtl_decoders(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CODESIGN_CACHE", str(tmp_path / "cache"))
    config = write_config(
        tmp_path / "c.yaml",
        layers=[{"synthetic": "16x30", "format": "viterbi", "spec": {"n_out": 5, "n_ff": 4}}],
    )
    out = tmp_path / "out.json"
    assert main(["simulate", str(config), "--json", str(out)]) == 0
    row = json.loads(out.read_text())["layers"][0]
    assert row["decoder_cells"] > 0 and row["area_um2"] > 0
    assert list((tmp_path / "cache" / "synth").glob("viterbi-*.json"))


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"arch": {"dram": {"bytes_per_cycle": 0}}}, "arch.dram.bytes_per_cycle = 0"),
        ({"arch": {"buffer": {"bytes": 8}}}, "arch.buffer.bytes = 8 is smaller than one row"),
        ({"tiles": 3}, "'tiles' was unexpected"),
    ],
)
def test_the_simulate_command_rejects_bad_configs(tmp_path, capsys, over, message):
    config = write_config(tmp_path / "c.yaml", **over)
    assert main(["simulate", str(config), "--no-synth"]) == 2
    assert message in capsys.readouterr().err


#: Layers of the example configurations the engines are compared on: all of them but
#: the transformer encoder's blocks 1-5 (block 0 has the same shapes and formats; the
#: Viterbi search of each FFN matrix takes a second or more).
LATER_BLOCKS = ("encoder.layer.1.", "encoder.layer.2.", "encoder.layer.3.")
LATER_BLOCKS += ("encoder.layer.4.", "encoder.layer.5.")


@pytest.mark.parametrize(
    "path",
    sorted(CONFIGS.glob("sim_*.yaml")) + sorted(CONFIGS.glob("net_*.yaml")),
    ids=lambda path: path.stem,
)
def test_every_example_config_times_alike_in_both_engines(path):
    # on the configuration's machine, and with a buffer of two of the largest rows and
    # one-row FIFOs (the channel waits for space, the units for slots); on the tile the
    # buffer is whole words per bank
    cfg = load_config(path)
    word = cfg.arch.decoders * cfg.arch.bank_bytes_per_cycle if cfg.arch.is_tile else 1
    for layer in expand(cfg).layers:
        if layer.name.startswith(LATER_BLOCKS):
            continue
        enc = encode_layer(layer.weights, layer.config)[1]
        work = layer_work(
            layer.name,
            enc,
            bitmap_slice_bits=cfg.arch.bitmap_slice_bits,
            index_units=cfg.arch.index_units,
            tile=cfg.arch.tile_spec(enc.spec) if cfg.arch.is_tile else None,
        )
        columns = layer.geometry.columns(cfg.arch.batch)
        for p in work.passes:
            two_rows = -(-int(p.row_bits.max()) // 4)
            tight_bytes = -(-two_rows // word) * word
            tight = dataclasses.replace(cfg.arch, buffer_bytes=tight_bytes, lane_fifo_rows=1)
            for arch in (cfg.arch, tight):
                timeline, _ = event_timeline(p, arch, columns)
                fast = pass_timeline(p, arch, columns)
                for field in dataclasses.fields(timeline):
                    same = np.array_equal(getattr(fast, field.name), getattr(timeline, field.name))
                    assert same, f"{layer.name}: {field.name} differs on {arch}"


@pytest.mark.parametrize(
    ("arch", "sparsity", "message"),
    [
        (
            {"buffer": {"bytes": 32, "banks": 2, "bank_bytes_per_cycle": 8}},
            0.3,  # longer records
            r"layer gaussian16x24 on arch.tile: row \d+'s record is (\d+) words of 8 bytes, "
            r"longer than a bank \(bank_words = 2\).*; in the configuration: "
            r"arch.buffer.bytes >= (\d+) for this layer",
        ),
        (
            {"tile": {"n_cols": 24, "row_bits": 3}},
            0.8,
            r"the layer has 16 rows; row_bits = 3 counts 8; in the configuration: "
            r"arch.tile.row_bits >= 4 for this layer",
        ),
    ],
)
def test_a_layer_the_tile_cannot_take_names_the_key_to_raise(arch, sparsity, message):
    config = copy.deepcopy(TILE_CONFIG)
    config["defaults"]["sparsity"] = sparsity
    config["arch"].update(arch)
    with pytest.raises(ConfigError, match=message) as info:
        run_config(parse_config(config), synth=False)
    found = re.search(message, str(info.value))
    if found.groups():  # the suggested buffer holds that record in each of the 2 banks
        assert int(found.group(2)) == int(found.group(1)) * 2 * 8
        config["arch"]["buffer"]["bytes"] = int(found.group(2))
        assert run_config(parse_config(config), synth=False)["total"]["product_ok"]
