"""Simulator configuration files and energy tables: validation and pricing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from codesign.sim.arch import Arch, ConfigError
from codesign.sim.config import load_config, parse_config
from codesign.sim.energy import DEFAULT_TABLE, load_table, pass_energy, sized
from codesign.sim.work import DecoderUse, Pass

CONFIGS = Path(__file__).resolve().parent.parent / "experiments" / "configs"


def doc(**over):
    base = {"layers": [{"synthetic": "32x48", "format": "bitmap"}]}
    base.update(over)
    return base


def test_a_minimal_config_takes_the_defaults():
    cfg = parse_config(doc())
    assert cfg.arch == Arch()
    layer = cfg.layers[0]
    assert (layer.format, layer.sparsity, layer.quantize) == ("bitmap", 0.9, 8)
    assert layer.source == {"synthetic": "32x48"}
    assert cfg.engine == "auto"
    assert parse_config(doc(engine="event")).engine == "event"


def test_nested_arch_keys_map_to_fields():
    cfg = parse_config(
        doc(
            arch={
                "lanes": 8,
                "decoders": 2,
                "dram": {"bytes_per_cycle": 4.5, "latency_cycles": 7},
                "buffer": {"bytes": 4096, "banks": 2, "bank_bytes_per_cycle": 8},
            },
            defaults={"format": "csr", "sparsity": None, "quantize": None},
        )
    )
    a = cfg.arch
    assert (a.lanes, a.decoders, a.dram_bytes_per_cycle, a.dram_latency_cycles) == (8, 2, 4.5, 7)
    assert (a.buffer_bytes, a.buffer_banks, a.bank_bytes_per_cycle) == (4096, 2, 8)
    assert cfg.layers[0].sparsity is None and cfg.layers[0].format == "bitmap"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (doc(archh={}), r"Additional properties.*'archh'.*allowed keys: arch, defaults"),
        (doc(arch={"lane": 4}), r"^arch: .*'lane' was unexpected.*allowed keys: .*lanes"),
        (
            doc(arch={"dram": {"bytes_per_cycle": 0}}),
            r"arch.dram.bytes_per_cycle = 0 is out of range; allowed: > 0",
        ),
        (doc(arch={"lanes": 0}), r"arch.lanes = 0 is out of range; allowed: >= 1"),
        (doc(arch={"buffer": {"bytes": -5}}), r"arch.buffer.bytes = -5 .*allowed: >= 1"),
        (doc(arch={"lanes": 16, "decoders": 3}), r"arch.decoders = 3 must divide .*1, 2, 4, 8, 16"),
        (doc(arch={"lanes": "many"}), r"arch.lanes = 'many'; expected integer"),
        ({"arch": {}}, r"'layers' is a required property"),
        (doc(layers=[]), r"layers: \[\] should be non-empty"),
        (doc(layers=[{"format": "csr"}]), r"layers.0: a layer needs exactly one of the keys"),
        (
            doc(layers=[{"synthetic": "8x8", "digits": "fc1"}]),
            r"layers.0: a layer needs exactly one",
        ),
        (doc(layers=[{"synthetic": "8x8", "format": "zip"}]), r"layers.0.format = 'zip'; allowed:"),
        (doc(layers=[{"synthetic": "8by8"}]), r"layers.0.synthetic: '8by8' does not match"),
        (
            doc(layers=[{"synthetic": "8x8", "format": "nm", "spec": {"k": 2}}]),
            r"layers.0.spec.k: not a field of format nm; allowed: m, n",
        ),
        (
            doc(layers=[{"synthetic": "8x8", "format": "relative", "spec": {"r": 99}}]),
            r"layers.0.spec: .*r",
        ),
        (
            doc(defaults={"sparsity": 1.0}),
            r"defaults.sparsity = 1.0 is out of range; allowed: >= 0 and < 1",
        ),
        (doc(layers=[{"example": "vgg"}]), r"layers.0.example = 'vgg'; allowed: encoder, resnet18"),
        (
            doc(layers=[{"synthetic": "8x8", "conv": {"stride": 1}}]),
            r"layers.0.conv: 'input' is a required property",
        ),
        (
            doc(layers=[{"synthetic": "8x8", "conv": {"input": 0}}]),
            r"layers.0.conv.input = 0; expected an integer >= 1, or a list of them",
        ),
        (doc(layers=[{"synthetic": "8x8", "tokens": 0}]), r"layers.0.tokens = 0 is out of range"),
        (doc(overrides=[{"format": "csr"}]), r"overrides.0: 'match' is a required property"),
        (
            doc(overrides=[{"match": "a*", "format": "nm", "spec": {"b": 2}}]),
            r"overrides.0.spec.b: not a field of format nm",
        ),
        (
            doc(overrides=[{"match": [], "sparsity": 0.5}]),
            r"overrides.0.match = \[\]; expected a name pattern \(fnmatch\), or a list of them",
        ),
        (
            doc(layers=[{"synthetic": "8x8", "digits": "fc1"}]),
            r"layers.0: a layer needs exactly one of the keys digits, synthetic, weights, example",
        ),
        (doc(defaults={"quantize": 1}), r"defaults.quantize = 1 is out of range; allowed: >= 2"),
        (doc(engine="fast"), r"engine = 'fast'; allowed: auto, event, recurrence"),
    ],
)
def test_bad_configs_name_the_key_and_the_allowed_values(bad, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(bad)


def test_unreadable_config_files_are_reported(tmp_path):
    with pytest.raises(ConfigError, match=r"cannot read .*missing.yaml: No such file"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("layers: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: line 2, column 1: expected ',' or ']'"):
        load_config(bad)


def test_every_example_config_is_valid():
    files = sorted(CONFIGS.glob("sim_*.yaml"))
    assert files, "no example simulator configs"
    for path in files:
        cfg = load_config(path)
        assert cfg.layers


def test_the_example_configs_cover_every_format():
    from codesign.models.registry import FORMATS

    used = set()
    for path in CONFIGS.glob("sim_*.yaml"):
        cfg = load_config(path)
        used |= {layer.format for layer in cfg.layers}
    assert used == set(FORMATS)


def test_energy_table_overrides_merge_and_name_themselves(tmp_path):
    path = tmp_path / "7nm.yaml"
    path.write_text(yaml.safe_dump({"dram_64b_pj": 640, "int_mult_pj": {8: 0.05}}))
    table = load_table(path)
    assert table["dram_64b_pj"] == 640.0
    assert table["int_mult_pj"] == {8: 0.05}
    assert table["fp_add_pj"] == DEFAULT_TABLE["fp_add_pj"]
    assert table["name"].startswith("7nm.yaml (over Horowitz")
    path.write_text(yaml.safe_dump({"name": "my 7nm", "dram_64b_pj": 640}))
    assert load_table(path)["name"] == "my 7nm"


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ({"dram_pj": 1}, r"unknown key 'dram_pj'.*allowed: name, int_add_pj"),
        ({"dram_64b_pj": -1}, r"energy_table.dram_64b_pj must be a finite number >= 0"),
        ({"int_add_pj": 3}, r"energy_table.int_add_pj in \S+: expected a mapping"),
    ],
)
def test_bad_energy_tables_are_rejected(tmp_path, entries, message):
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(entries))
    with pytest.raises(ConfigError, match=message):
        load_table(path)


def test_sized_entries_take_the_smallest_fitting_width():
    t = DEFAULT_TABLE
    assert sized(t, "int_mult_pj", 8) == 0.2
    assert sized(t, "int_mult_pj", 9) == 3.1
    assert sized(t, "int_mult_pj", 64) == 3.1
    assert sized(t, "sram_read_64b_pj", 100) == 10.0
    assert sized(t, "sram_read_64b_pj", 20000) == 20.0


def tiny_pass(block: str | None) -> Pass:
    # 2 rows x 4 columns, 3 operands, 100 + 60 bits, decoder busy 5 + 2 cycles
    use = DecoderUse("kind", block, None, {}, 2, np.array([5, 2]))
    return Pass(
        "t", (2, 4), np.array([40, 20]), np.array([60, 40]), np.array([5, 2]), 0, 1,
        np.array([0, 2, 3]), np.array([0, 3, 1]), np.array([1.0, 2.0, 3.0]), (use,),
    )  # fmt: skip


def test_pass_energy_counts_every_action():
    arch = Arch(lanes=2, decoders=2, batch=2, buffer_bytes=8192, activation_bits=8)
    e = pass_energy(tiny_pass("xor"), arch, DEFAULT_TABLE, np.dtype(np.int8), {"xor": 100})
    bits, macs = 160, 3 * 2
    assert e.pj["dram"] == pytest.approx(bits / 64 * 1950.0)
    act_bits = (macs + 2 * 2) * 8
    assert e.pj["sram"] == pytest.approx(bits * 2 * 10 / 64 + act_bits * 10 / 64)
    assert e.pj["mac"] == pytest.approx(macs * (0.2 + 0.1))
    assert e.pj["decoder"] == pytest.approx(100 * 2 * 7 * 0.25 * 0.002)
    assert e.decoder_cells == 100 * 2 * 2
    assert e.area_um2 == pytest.approx(400 * 1.5)
    fp = pass_energy(tiny_pass(None), arch, DEFAULT_TABLE, np.dtype(np.float32), {})
    assert fp.pj["mac"] == pytest.approx(macs * (3.7 + 0.9))
    assert fp.pj["decoder"] == pytest.approx(2 * 7 * 0.1)
    assert fp.decoder_cells is None and fp.area_um2 is None
