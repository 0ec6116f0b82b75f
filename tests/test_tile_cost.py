"""The tile's cost: its generic synthesis counted per instance with its memories apart
(:mod:`codesign.hw.synth`), and the simulator pricing a tile machine by those cells
(:func:`codesign.experiments.jobs.simulate.tile_cells`, :mod:`codesign.sim.energy`)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tile_machine import TILE_CONFIG

from codesign.experiments.jobs import simulate as job
from codesign.hw import synth
from codesign.models.specs import CsrSpec, RelativeSpec
from codesign.models.tile import TileSpec
from codesign.sim.config import parse_config
from codesign.sim.energy import TileCells, load_table, pass_energy

#: A small tile: 2 lanes, 1 unit, 8 columns, 4-byte words, batch 2.
SMALL = TileSpec(CsrSpec(), lanes=2, decoders=1, n_cols=8, bank_words=16, stream_bytes=4, batch=2)


def test_the_tile_is_counted_per_instance_with_its_memories_as_arrays():
    t = SMALL
    stats = synth.synthesize("tile", t.format_spec, **t.params())
    top = "sparse_tile"
    assert sum(stats.instances.values()) == stats.total == sum(stats.cells.values())
    assert {p for p in stats.instances if p.count("/") == 1} == {
        f"{top}/unit0",
        f"{top}/lane0",
        f"{top}/lane1",
    }
    assert stats.inclusive(top) == stats.total
    assert stats.inclusive(f"{top}/unit0") > stats.instances[f"{top}/unit0/decoder"] > 0
    # the memories, from the tile's parameters: a bank of words and their last flags per
    # unit; per lane F + 1 slots of ceil(n / W) value words and a 4-row output queue of
    # (row, B accumulators); X: n_cols x B activations
    words = -(-t.n_cols // t.stream_bytes)
    assert stats.memory_bits == {
        f"{top}/unit0": t.bank_words * (t.word_bits + 1),
        **{f"{top}/lane{i}": (t.fifo_rows + 1) * words * t.word_bits for i in range(2)},
        **{
            f"{top}/lane{i}/queue": 4 * (t.row_bits + t.batch * t.accumulator_bits)
            for i in range(2)
        },
        top: t.n_cols * t.batch * t.activation_bits,
    }
    assert json.loads(json.dumps(stats.to_dict()))["memory_bits"] == stats.memory_bits


def test_a_flattened_block_has_one_instance_and_no_memory_arrays():
    stats = synth.synthesize("relative", RelativeSpec(r=4), n_cols=37)
    assert stats.instances == {"relative_decoder": stats.total} and stats.memory_bits == {}


def test_a_tile_unit_is_charged_its_cells_per_cycle_a_decoder_is_busy():
    config = parse_config(TILE_CONFIG)
    layer = job.expand(config).layers[0]
    _, enc = job.encode_layer(layer.weights, layer.config)
    tile = config.arch.tile_spec(enc.spec)
    work = job.layer_work("l", enc, tile=tile)
    (p,) = work.passes
    cells = TileCells(units=(100, 300), lanes=(50, 50, 50, 50), top=7, memory_bits=1000)
    table = load_table(None)
    energy = pass_energy(p, config.arch, table, enc.dtype, {"relative_decoder": 10**6}, tile=cells)
    busy = np.max([use.active_cycles for use in p.decoders], axis=0).sum()
    assert busy > 0 and energy.actions["decoder_active_cycles"] == busy
    assert energy.pj["decoder"] == pytest.approx(busy * 200 * 0.25 * 0.002)
    assert energy.decoder_cells == 400 and energy.area_um2 == pytest.approx(400 * 1.5)
    assert cells.total == 607
    assert cells.area_um2(table) == pytest.approx(607 * 1.5 + 1000 * 0.346)


def test_simulate_on_the_tile_uses_its_synthesis_once(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("CODESIGN_CACHE", str(tmp_path / "cache"))
    doc = job.run_config(parse_config(TILE_CONFIG))
    row = doc["layers"][0]
    cells = row["tile_cells"]
    assert len(cells["units"]) == 2 and len(cells["lanes"]) == 4
    assert row["decoder_cells"] == sum(cells["units"])
    assert cells["total"] == sum(cells["units"]) + sum(cells["lanes"]) + cells["top"]
    assert row["tile_area_um2"] == pytest.approx(
        cells["total"] * 1.5 + cells["memory_bits"] * 0.346
    )
    assert doc["total"]["tile_cells"] == cells
    assert "tile, synthesized" in job.render_report(doc)
    (entry,) = (tmp_path / "cache" / "synth").glob("tile-*.json")

    def no_synthesis(*args, **kwargs):
        raise AssertionError("synthesized again")

    monkeypatch.setattr(synth, "synthesize", no_synthesis)
    assert job.run_config(parse_config(TILE_CONFIG))["layers"][0]["tile_cells"] == cells
    entry.write_text('{"instances": {"x": -1}, "memory_bits": {}}')
    monkeypatch.undo()
    monkeypatch.setenv("CODESIGN_CACHE", str(tmp_path / "cache"))
    assert job.run_config(parse_config(TILE_CONFIG))["layers"][0]["tile_cells"] == cells
    assert "instances is {'x': -1}" in caplog.text
    off = job.run_config(parse_config(TILE_CONFIG), synth=False)["layers"][0]
    assert off["tile_cells"] is None and off["tile_area_um2"] is None
