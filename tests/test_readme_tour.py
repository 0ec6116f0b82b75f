"""The README's command line tour runs as written.

The commands are read from the README's text (the ``sh`` block under "Command line
tour"), each run in order with the installed ``codesign`` script, in a fresh directory
that holds what the repository root holds for them (``experiments/``). ``codesign
demo`` (about half a minute) runs in a test of its own so it can run beside the others.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from codesign.experiments.cli.main import build_parser

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
CODESIGN = Path(sys.executable).parent / "codesign"
SLOW = ("codesign demo",)


def tour() -> list[str]:
    """The tour's command lines, comments after ``#`` removed."""
    text = README.read_text()
    section = text[text.index("## Command line tour") :]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block, "the tour has no sh block"
    lines = [line.split(" #", 1)[0].strip() for line in block.group(1).splitlines()]
    return [line for line in lines if line]


def run_line(line: str, cwd: Path) -> tuple[int, float, str]:
    argv = shlex.split(line)
    assert argv[0] == "codesign", f"a tour line that is not a codesign command: {line}"
    start = time.perf_counter()
    done = subprocess.run(
        [str(CODESIGN), *argv[1:]],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "100"},
    )
    return done.returncode, time.perf_counter() - start, done.stdout + done.stderr


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A directory with the repository's ``experiments/`` (configs) in it."""
    (tmp_path / "experiments").symlink_to(ROOT / "experiments")
    return tmp_path


def test_tour_is_read_from_the_readme():
    lines = tour()
    assert len(lines) >= 15
    assert lines[0] == "codesign --version"
    assert any(line.startswith("codesign prune --method lbi") for line in lines)


def test_tour_runs_as_written(checkout):
    failed = []
    for line in [line for line in tour() if line not in SLOW]:
        code, seconds, output = run_line(line, checkout)
        print(f"exit {code}  {seconds:6.1f} s  {line}")
        if code != 0:
            failed.append(f"{line}\n  exit {code}: {output.strip().splitlines()[-1:]}")
    assert not failed, "\n".join(failed)
    assert (checkout / "build" / "viterbi_decompressor.v").exists()
    assert (checkout / "results" / "sweeps" / "small" / "summary.md").exists()
    written = {p.name for p in checkout.iterdir()} - {"experiments", "examples"}
    assert written <= {"build", "results"}, (
        f"the tour writes outside build/ and results/: {written}"
    )


def test_demo_line_runs_as_written(checkout):
    (line,) = [line for line in tour() if line in SLOW]
    code, seconds, output = run_line(line, checkout)
    print(f"exit {code}  {seconds:6.1f} s  {line}")
    assert code == 0, output[-2000:]
    assert (checkout / "results" / "demo" / "storage.png").exists()


def test_every_help_example_is_in_the_tour():
    """The examples each `--help` shows are tour lines, so the tour test runs them."""
    lines = set(tour())
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, command in sub.choices.items():
        for example in command.get_default("examples"):
            assert example in lines, f"{name} example not in the README tour: {example}"


def test_make_setup_writes_the_tour_weight_file():
    """The Makefile's recipe for the example weight file is the tour's line."""
    makefile = (ROOT / "Makefile").read_text()
    target = re.search(r"^EXAMPLE_WEIGHTS := (\S+)$", makefile, re.MULTILINE).group(1)
    recipe = re.search(r"^\$\(EXAMPLE_WEIGHTS\):.*\n\t(.+)$", makefile, re.MULTILINE).group(1)
    command = recipe.replace("$(VENV)/bin/codesign", "codesign").replace("$@", target)
    assert command in tour()
    assert re.search(r"^setup: .*\$\(EXAMPLE_WEIGHTS\)", makefile, re.MULTILINE)
