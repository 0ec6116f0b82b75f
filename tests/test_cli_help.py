"""`codesign --help` and every subcommand's help: description, examples, defaults; the
block parameters and spec ranges listed from their definitions; `--version`."""

from __future__ import annotations

import argparse
import re

import pytest

import codesign
from codesign.experiments.cli.main import build_parser, main
from codesign.hw.blocks import BLOCKS
from codesign.models.registry import FORMATS


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


COMMANDS = subcommands()


def help_text(name: str, capsys) -> str:
    with pytest.raises(SystemExit) as done:
        main([name, "--help"])
    assert done.value.code == 0
    return capsys.readouterr().out


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"codesign {codesign.__version__}"
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", codesign.__version__)


def test_every_subcommand_is_listed_with_a_summary(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert re.search(rf"^\s+{name}\s+\S", out, re.MULTILINE), name


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_has_description_example_and_defaults(name, capsys):
    parser = COMMANDS[name]
    assert parser.description and len(parser.description) > 40
    assert parser.get_default("examples"), f"{name} has no example"
    out = help_text(name, capsys)
    assert "example" in out
    for example in parser.get_default("examples"):
        assert example.startswith(f"codesign {name}") and f"  {example}" in out
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, f"{name} {action.option_strings or action.dest} has no help"
        if action.option_strings and action.default is not None and action.default is not False:
            assert f"(default: {action.default})" in " ".join(out.split()), (
                f"{name} {action.option_strings[0]}: default {action.default} not shown"
            )


def test_prune_method_and_seed_have_help(capsys):
    out = " ".join(help_text("prune", capsys).split())
    assert "magnitude (csr)" in out and "trp (trained rank pruning" in out
    assert "--seed SEED seed of the fine-tuning's minibatch order" in out
    assert "(default: 0)" in out and "(default: 10)" in out


@pytest.mark.parametrize("command", ["verilog", "synth"])
def test_block_help_lists_every_parameter_and_spec_field(command, capsys):
    """Generated from the blocks and specs: every parameter with its default and range,
    every spec field with its range, every limit."""
    out = help_text(command, capsys)
    flat = " ".join(out.split())
    for block in BLOCKS.values():
        section = flat[flat.index(f"{block.name}: {block.summary}") :]
        for name, param in block.params.items():
            assert f"{name} = {param.default} allowed: {param.lo}..{param.hi}" in section
        for field, default, allowed in block.spec_type.field_help():
            assert f"{field} = {default} allowed: {' '.join(allowed.split())}" in section
        for limit in block.limits:
            assert f"limit: {limit}" in section
    viterbi = flat[flat.index("viterbi: Viterbi decompressor") :]
    assert "threshold = unset allowed: 0..2^n_c (0..16 at the defaults)" in viterbi
    assert "unset, this block takes 2" in viterbi
    assert "n_cols = 64 allowed: 1..65536: columns of the matrix" in flat


def test_formats_shows_true_ranges(capsys):
    assert main(["formats"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    for name in FORMATS:
        assert f"{name}: " in out
    assert "threshold = unset allowed: 0..2^n_c (0..16 at the defaults) or unset" in out
    assert "0..256" not in out
    assert "n = 2 allowed: 1..m (1..4 at the defaults)" in out
    assert "mask_threshold = unset allowed: 0..16 or unset" in out
    assert "rank = 8 allowed: 1..16, at most min(tile_rows, tile_cols)" in out
    assert "hardware blocks: viterbi, viterbi_search" in out


def test_help_paragraphs_fit_the_terminal(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    for name in ("compress", "sweep", "prune"):
        out = help_text(name, capsys)
        prose = out.split("\n\n")[1]  # the description
        assert max(len(line) for line in prose.splitlines()) <= 80, name


@pytest.mark.parametrize(
    "argv, command",
    [
        (["compress", "--format", "csr", "--synthetic", "8x8", "--quantize", "8.5"], "compress"),
        (["compress", "--format", "csr"], "compress"),
        (["synth"], "synth"),
        (["bogus"], None),
        ([], None),
        *(([name, "--no-such-option"], name) for name in sorted(COMMANDS)),
    ],
)
def test_a_parser_error_is_one_line_naming_the_command_and_its_help(argv, command, capsys):
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 2
    captured = capsys.readouterr()
    prog = "codesign" if command is None else f"codesign {command}"
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"{prog}: error: ") and lines[0].endswith(f"(see {prog} --help)")
