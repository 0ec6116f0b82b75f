"""The ``protocol`` section of a block's sidecar and the header comment of its Verilog.

A block describes its own semantics (:func:`field`, :func:`stream` and its ``function``,
``cycles`` and ``latency`` entries); :func:`build` adds what every block shares (clock,
synchronous active-high reset, the valid/ready handshake), fills in each stream's ports
and each field's bit slice from the port map, and validates the result against the JSON
Schema shipped with the package (``protocol.schema.json``, :func:`schema`).
:func:`header` renders the same description as the comment above the module.

Conventions every block follows (stated in the section itself): bit 0 of a port or field
is its least significant bit; a payload's fields are packed from bit 0 up in the order
listed; a signed field is two's complement; an array field holds element e at bits
e·width … (e + 1)·width − 1 of the field.
"""

from __future__ import annotations

import functools
import json
import textwrap
from importlib import resources
from typing import Any

import jsonschema

#: Version of the ``protocol`` section's layout.
VERSION = 1

BIT_ORDER = (
    "bit 0 of a port or field is its least significant bit; a payload packs its fields "
    "from bit 0 up in the order listed; an array field holds element e at bits "
    "e*width .. (e+1)*width-1 of the field; signed fields are two's complement"
)
TRANSFER = "a beat moves on a stream at a rising clk edge where its valid and ready are both high"
OUTPUT_HOLD = (
    "once an output's valid is high it stays high, with its payload unchanged, until the "
    "beat is taken (valid and ready high at an edge)"
)
RESET_RULE = (
    "while rst is high no beat moves: a beat offered during reset is discarded even where "
    "a ready is high, so a source holds its valid low until rst is low (or offers the beat "
    "again after reset)"
)
INPUT_RULE = (
    "the block samples an input only at a transfer; a source must not make its valid wait "
    "for any ready (a ready may depend combinationally on valids, as each stream's rule says)"
)


def field(meaning: str, encoding: str = "unsigned", **extra: Any) -> dict[str, Any]:
    """One payload field: ``meaning``, ``encoding`` (``unsigned``, ``signed``, ``flag``,
    ``bits`` — each bit on its own — or ``array``) and block-specific keys (an array's
    ``element_width``, ``elements`` and ``element_encoding``)."""
    return {"meaning": meaning, "encoding": encoding, **extra}


def stream(
    direction: str, meaning: str, ready: str, fields: dict[str, dict[str, Any]], order: str
) -> dict[str, Any]:
    """One stream: ``direction`` (``input``/``output``), ``meaning``, the rule for its
    ``ready``, its payload ``fields`` (name -> :func:`field`, bit 0 up) and its ``order``
    (how beats relate to one another)."""
    return {
        "direction": direction,
        "meaning": meaning,
        "ready": ready,
        "order": order,
        "fields": fields,
    }


@functools.cache
def schema() -> dict[str, Any]:
    """The JSON Schema of the ``protocol`` section (package data)."""
    text = resources.files("codesign.hw").joinpath("protocol.schema.json").read_text()
    return json.loads(text)


def validate(protocol: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``protocol`` follows :func:`schema`."""
    jsonschema.validate(protocol, schema())


def build(described: dict[str, Any], ports: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The complete, validated ``protocol`` section.

    ``described``: the block's ``streams`` (name -> :func:`stream`), ``latency``,
    ``cycles``, ``function`` and ``after_reset`` (its state after reset); ``ports``: the
    sidecar's port map (field path -> port, bit slice).
    """
    streams = {}
    for name, entry in described["streams"].items():
        fields = {}
        for key, info in entry["fields"].items():
            slot = ports[f"{name}.payload.{key}"]
            fields[key] = {"lsb": slot["lsb"], "width": slot["width"], **info}
        streams[name] = {
            **entry,
            "valid": ports[f"{name}.valid"]["port"],
            "ready_port": ports[f"{name}.ready"]["port"],
            "payload": ports[f"{name}.payload"]["port"],
            "payload_width": ports[f"{name}.payload"]["port_width"],
            "fields": fields,
        }
    protocol = {
        "version": VERSION,
        "bit_order": BIT_ORDER,
        "clock": {"port": ports["clk"]["port"], "edge": "rising"},
        "reset": {
            "port": ports["rst"]["port"],
            "synchronous": True,
            "active": "high",
            "min_cycles": 1,
            "during": RESET_RULE,
            "after": described["after_reset"],
        },
        "handshake": {"transfer": TRANSFER, "output_hold": OUTPUT_HOLD, "inputs": INPUT_RULE},
        "streams": streams,
        "latency": described["latency"],
        "cycles": described["cycles"],
        "function": described["function"],
    }
    validate(protocol)
    return protocol


def _wrap(text: str, indent: str = "") -> list[str]:
    return textwrap.wrap(text, 88, initial_indent=indent, subsequent_indent=indent + "  ")


def header(sidecar: dict[str, Any], command: str) -> str:
    """The comment block above a generated module: what it is, how it was generated,
    clock, reset, handshake, latency, cycle rule, then every port (direction, width,
    meaning) and every payload field."""
    p = sidecar["protocol"]
    lines = [f"{sidecar['top']}: {sidecar['summary']}"]
    lines += _wrap(
        f"Generated by sparse-codesign ({command}) from spec {json.dumps(sidecar['spec'])} "
        f"and parameters {json.dumps(sidecar['params'])}; the JSON sidecar "
        f"{sidecar['top']}.json holds this description (key protocol) and the hard-wired "
        f"matrices."
    )
    lines.append("")
    reset = p["reset"]
    lines += _wrap(f"Clock: {p['clock']['port']}, every register on its rising edge.")
    lines += _wrap(
        f"Reset: {reset['port']}, synchronous, active high, at least {reset['min_cycles']} "
        f"cycle; {reset['during']}; afterwards {reset['after']}"
    )
    lines += _wrap(
        f"Handshake: {p['handshake']['transfer']}; {p['handshake']['output_hold']}; "
        f"{p['handshake']['inputs']}."
    )
    lines += _wrap(f"Latency: {p['latency']['cycles']} cycle(s); {p['latency']['rule']}")
    lines += _wrap(f"Cycles: {p['cycles']['rule']}")
    lines += _wrap(f"Bit order: {p['bit_order']}.")
    lines += ["", f"{'port':<16} {'dir':<6} {'width':>5}  meaning"]
    meanings = {p["clock"]["port"]: "clock", reset["port"]: "synchronous reset, active high"}
    for name, s in p["streams"].items():
        meanings[s["valid"]] = f"{name}: valid ({s['meaning']})"
        meanings[s["ready_port"]] = f"{name}: ready; {s['ready']}"
        meanings[s["payload"]] = f"{name}: payload, fields below"
    for key, port in sidecar["ports"].items():
        if port["lsb"] == 0 and port["width"] == port["port_width"] and "payload." not in key:
            text = f"{port['port']:<16} {port['dir']:<6} {port['port_width']:>5}  "
            lines += _wrap(text + meanings[port["port"]])
    for name, s in p["streams"].items():
        lines += ["", *_wrap(f"{s['payload']} ({s['direction']} stream {name}): {s['order']}")]
        for key, f in s["fields"].items():
            bits = f"[{f['lsb'] + f['width'] - 1}:{f['lsb']}]"
            lines += _wrap(f"  {bits:<9} {key} ({f['encoding']}): {f['meaning']}")
    return "\n".join(lines)
