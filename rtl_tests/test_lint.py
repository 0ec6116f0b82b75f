"""Verilator lint of the generated Verilog: every block and parameter set of the RTL
benches and of the formal proofs.

Verilator's default lint (``--lint-only``) must pass with no warning at all; with
``-Wall`` only the kinds Amaranth's output cannot avoid may remain (docs/hardware.md
names and explains them): ``PROCASSINIT`` (registers declared with their initial value)
and ``UNUSEDSIGNAL`` (unused top bits of an arithmetic result, an alias wire of bits
read under another name, a tap or flag the parameter set does not use), and for the
tile, whose instances are modules of one file, ``DECLFILENAME``. The counts go to
``results/rtl/lint.json``.
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from codesign.hw.build import write
from codesign.models.tile import TileSpec
from rtl_tests import (
    test_binary_index_decoder,
    test_formal,
    test_relative,
    test_tile,
    test_viterbi_decompressor,
    test_viterbi_search,
    test_xor_decoder,
)
from rtl_tests.runner import merge_result, verilator

#: The -Wall warning kinds the generated Verilog may show (and a block of several
#: modules in one file, the tile: its submodules' names differ from the file's).
ALLOWED_WALL = {"PROCASSINIT", "UNUSEDSIGNAL"}
ALLOWED_WALL_MODULES = ALLOWED_WALL | {"DECLFILENAME"}


def _sets() -> dict[str, tuple[str, Any, dict[str, Any]]]:
    sets: dict[str, tuple[str, Any, dict[str, Any]]] = {}
    for block, module in (
        ("relative", test_relative),
        ("viterbi", test_viterbi_decompressor),
        ("viterbi_search", test_viterbi_search),
        ("xor", test_xor_decoder),
        ("lbi", test_binary_index_decoder),
    ):
        for name, entry in module.PARAM_SETS.items():
            spec, params = entry if isinstance(entry, tuple) else (entry, {})
            sets[f"{block}-{name}"] = (block, spec, params)
    sets.update({f"formal-{name}": entry for name, entry in test_formal.PARAM_SETS.items()})
    for variant, name in test_tile.RUNS:  # every format, every parameter set of the tile
        spec = test_tile.layer_spec(test_tile.VARIANTS[variant][0], 256)
        tile = TileSpec(format_spec=spec, **{**test_tile.COMMON, **test_tile.PARAM_SETS[name]})
        sets[f"tile-{variant}-{name}"] = ("tile", tile.format_spec, tile.params())
    return sets


SETS = _sets()


def lint(v_path: Path, *flags: str) -> tuple[int, Counter]:
    """Verilator ``--lint-only`` of ``v_path``: exit code and warnings by kind."""
    proc = subprocess.run(
        [verilator(), "--lint-only", *flags, str(v_path)], capture_output=True, text=True
    )
    return proc.returncode, Counter(re.findall(r"%Warning-(\w+)", proc.stderr))


@pytest.mark.parametrize("name", list(SETS))
def test_verilator_lint(name: str, tmp_path: Path) -> None:
    block, spec, params = SETS[name]
    v_path, _ = write(block, spec, tmp_path, **params)
    code, warnings = lint(v_path)
    assert code == 0 and not warnings, f"default lint: exit {code}, {dict(warnings)}"
    _, wall = lint(v_path, "-Wall")
    allowed = ALLOWED_WALL_MODULES if block == "tile" else ALLOWED_WALL
    assert set(wall) <= allowed, f"-Wall kinds {sorted(set(wall) - allowed)}"
    merge_result("lint", (name,), {"default_exit": code, "default_warnings": 0, "wall": dict(wall)})


@pytest.mark.parametrize("seed", test_tile.RANDOM_SEEDS)
def test_verilator_lint_random_tiles(seed: int, tmp_path: Path) -> None:
    """The tiles of the random machines (:func:`rtl_tests.test_tile.random_machine`) pass
    the default lint too: several units, lanes, split formats and small banks."""
    variant, params, layers = test_tile.random_machine(seed, tmp_path)
    tile = TileSpec(format_spec=layers[0].encoded.spec, **{**test_tile.COMMON, **params})
    v_path, _ = write("tile", tile.format_spec, tmp_path, **tile.params())
    code, warnings = lint(v_path)
    assert code == 0 and not warnings, f"{variant} {params}: exit {code}, {dict(warnings)}"
