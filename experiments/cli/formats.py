"""`codesign formats`: the storage formats, their spec fields, defaults and ranges."""

from __future__ import annotations

import argparse
import textwrap

from codesign.experiments.cli.command import Subparsers, add_command
from codesign.hw.blocks import BLOCKS
from codesign.models.registry import FORMATS
from codesign.models.specs import Spec

#: Width the listings are wrapped to.
WIDTH = 88


def field_lines(rows: list[tuple[str, str, str]], indent: str = "    ") -> list[str]:
    """``name = default    allowed: range`` per ``(name, default, range)`` row, aligned,
    a long range wrapped under itself to :data:`WIDTH` characters."""
    width = max(len(f"{name} = {default}") for name, default, _ in rows)
    lines = []
    for name, default, allowed in rows:
        head = f"{indent}{f'{name} = {default}':<{width}}    allowed: "
        text = textwrap.wrap(allowed, max(WIDTH - len(head), 30))
        lines.append(head + text[0])
        lines += [" " * len(head) + rest for rest in text[1:]]
    return lines


def spec_lines(spec_type: type[Spec], indent: str = "    ") -> list[str]:
    """One line per field of ``spec_type`` (:func:`field_lines`): its default and its
    range as the spec checks it (a bound on other fields as its formula)."""
    rows = spec_type.field_help()
    return field_lines(rows, indent) if rows else [f"{indent}(no spec fields)"]


def formats_text() -> str:
    """Every format with its summary, spec fields and the hardware blocks built from
    its spec."""
    lines = []
    for fmt in FORMATS.values():
        lines.append(f"{fmt.name}: {fmt.summary}")
        lines += spec_lines(fmt.spec_type)
        blocks = [b.name for b in BLOCKS.values() if b.spec_type is fmt.spec_type]
        if blocks:
            lines.append(f"    hardware blocks: {', '.join(blocks)} (codesign verilog --help)")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    print(formats_text())
    return 0


def register(subparsers: Subparsers) -> None:
    add_command(
        subparsers,
        "formats",
        "list the storage formats and their spec fields",
        "List every storage format: what it stores, each spec field with its default and "
        "allowed range\n(the --spec KEY=VALUE of compress, prune, verilog and synth), and "
        "the hardware blocks built\nfrom its spec. A range bounded by other fields shows "
        "its formula and its value at the defaults;\n'unset' fields are derived from the "
        "matrix or calibrated to --sparsity when compressing.",
        ["codesign formats"],
        run,
    )
