"""Every block driven and checked from its ``.v`` and ``.json`` alone, as an outside
integrator would: the files come from the ``codesign verilog`` command, the expected
outputs from :mod:`rtl_tests.sidecar_model` (which reads the sidecar's matrices and
``protocol`` and imports nothing of the project), the run from :mod:`rtl_tests.tb_sidecar`.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from rtl_tests import sidecar_model
from rtl_tests.runner import failure_report, record_cycles, simulate

#: name -> (block, ``--spec`` items): every kind of block, xor with n_s 1 to 4, both LBI
#: semirings, a relative decoder whose row counter wraps.
PARAM_SETS = {
    "viterbi-i1-o5-k8": ("viterbi", "n_in=1 n_out=5 n_ff=8 n_c=4 threshold=3"),
    "viterbi-i3-o12-k5": ("viterbi", "n_in=3 n_out=12 n_ff=5 n_c=2 threshold=1"),
    "xor-8-32-s1": ("xor", "n_in=8 n_out=32 n_s=1"),
    "xor-4-24-s2": ("xor", "n_in=4 n_out=24 n_s=2 block_bits=5"),
    "xor-3-16-s3": ("xor", "n_in=3 n_out=16 n_s=3 block_bits=4"),
    "xor-2-10-s4": ("xor", "n_in=2 n_out=10 n_s=4 block_bits=3"),
    "lbi-r3-10-gf2": ("lbi", "rank=3 tile_rows=8 tile_cols=10 semiring=gf2"),
    "lbi-r5-7-bool": ("lbi", "rank=5 tile_rows=6 tile_cols=7 semiring=bool"),
    "relative-r4-c37-wrap": ("relative", "r=4 n_cols=37 value_bits=6 row_bits=3"),
    "relative-r2-c1": ("relative", "r=2 n_cols=1 value_bits=4"),
    "search-ff3-in1": (
        "viterbi_search",
        "n_ff=3 n_in=1 n_out=3 n_c=2 threshold=1 segment=6 score_bits=4 max_segment=6",
    ),
    "search-ff2-in2": (
        "viterbi_search",
        "n_ff=2 n_in=2 n_out=4 n_c=2 threshold=2 segment=5 score_bits=3 max_segment=5",
    ),
}
#: Input beats per stimulus (about).
ITEMS = 300
#: cocotb tests in rtl_tests.tb_sidecar.
COCOTB_TESTS = 2
#: What the sidecar model may import: the standard library only.
STDLIB = {"__future__", "collections", "dataclasses", "random", "typing"}


def generate(block: str, items: str, out: Path) -> tuple[Path, Path]:
    """Run ``codesign verilog BLOCK --spec ... -o OUT``; the ``.v`` and ``.json`` it wrote."""
    command = [str(Path(sys.executable).parent / "codesign"), "verilog", block, "-o", str(out)]
    for item in items.split():
        command += ["--spec", item]
    proc = subprocess.run(command, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    (v_path,) = out.glob("*.v")
    return v_path, v_path.with_suffix(".json")


def test_model_imports_only_the_standard_library() -> None:
    tree = ast.parse(Path(sidecar_model.__file__).read_text())
    imported = {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported <= STDLIB, f"sidecar_model imports {sorted(imported - STDLIB)}"


@pytest.mark.parametrize("name", list(PARAM_SETS))
def test_sidecar_only(name: str, tmp_path: Path) -> None:
    block, items = PARAM_SETS[name]
    v_path, json_path = generate(block, items, tmp_path)
    sidecar = json.loads(json_path.read_text())
    stim = sidecar_model.stimulus(sidecar, seed=len(name), items=ITEMS)
    stimuli = tmp_path / "stimuli.json"
    stimuli.write_text(json.dumps(stim.__dict__))
    run = simulate(
        v_path,
        json_path,
        "rtl_tests.tb_sidecar",
        tmp_path,
        seed=len(name),
        env={"RTL_STIMULI": str(stimuli)},
        strip_init=True,
    )
    assert run.failed == 0 and run.tests == COCOTB_TESTS, failure_report(run)
    full = run.measured["full_rate"]
    assert full["outputs"] == len(stim.expected) > 0
    assert full["bits_compared"] == len(stim.expected) * sum(
        f["width"] for f in sidecar["protocol"]["streams"]["out"]["fields"].values()
    )
    record_cycles(f"{block}_sidecar_only", name, run)
