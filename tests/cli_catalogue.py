"""A catalogue of bad inputs to the `codesign` command, each of which must end in one
error line with exit code 2: no traceback, no out-of-memory kill, no report, no file
changed.

Every :class:`Case` is a command line run in a folder holding the case's input files;
its expected message is a regular expression searched in the error line. The cases
cover the memory pre-flight (work refused before it allocates; run in a subprocess so
that its peak memory is measured), simulator, sweep and energy-table YAML (numbers,
aliases, nesting, repeated keys, syntax, encoding), weight values a cast or
quantization would lose, repeated ``--spec`` fields, and the outputs that cannot be
written.

``python tests/cli_catalogue.py [--python PY] [--pythonpath DIR] [--timeout S] [--cap GB]
[--strip-max-memory]`` runs every case as a subprocess (``PY -m codesign``;
``--pythonpath`` puts another source tree first, e.g. an older version without
``--max-memory``, which ``--strip-max-memory`` then drops) and prints, as Markdown, each case's
outcome and the counts by category: clean error, traceback, out of memory (killed, or
``MemoryError`` under the ``--cap`` address-space limit), wrong report (exit 0), hang
(timeout), other. Peak memory is the command's own ``VmHWM``. Exit code 1 when a case
is not a clean error.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

#: A file's content, or a builder writing it at the given path.
Content = str | bytes | Callable[[Path], None]


@dataclasses.dataclass(frozen=True)
class Case:
    """One bad command line. ``argv``: the arguments after ``codesign``; ``files``:
    input files written into the case's folder first (name -> content); ``message``: a
    regular expression the error line must contain; ``issue``: the issue and item it
    comes from; ``memory``: a pre-flight case, refused before any large allocation
    (measured in a subprocess); ``env``: extra environment variables."""

    id: str
    issue: str
    argv: tuple[str, ...]
    message: str
    files: dict[str, Content] = dataclasses.field(default_factory=dict)
    memory: bool = False
    env: dict[str, str] = dataclasses.field(default_factory=dict)


# ---------------------------------------------------------------- input builders


def _npz(arrays: dict[str, np.ndarray]) -> Callable[[Path], None]:
    def build(path: Path) -> None:
        with path.open("wb") as f:
            np.savez(f, **arrays)

    return build


def _safetensors(arrays: dict[str, np.ndarray]) -> Callable[[Path], None]:
    def build(path: Path) -> None:
        from safetensors.numpy import save_file

        save_file(arrays, str(path))

    return build


def outliers() -> np.ndarray:
    """A 64x64 gaussian layer whose first 8 weights are 1000: at int8 their step rounds
    every other weight to 0."""
    w = np.random.default_rng(0).normal(0, 0.05, (64, 64)).astype(np.float32)
    w[0, :8] = 1000.0
    return w


def _sim(arch: str = "", layer: str = "{synthetic: 64x64}", extra: str = "") -> str:
    return f"arch: {{{arch}}}\n{extra}layers:\n  - {layer}\n"


def _sweep(body: str) -> str:
    return f"name: bad\nstages: [compress]\nbase: {{workload: {{synthetic: 16x16}}}}\n{body}"


#: Nine levels of nine aliases each ("billion laughs": 9^9 strings once expanded),
#: defined in a mapping the schemas accept as it is, at two spaces of indentation.
ANCHORS = "".join(
    f"    {chr(97 + i)}: &{chr(97 + i)} [" + ",".join([f"*{chr(96 + i)}"] * 9) + "]\n"
    if i
    else '    a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for i in range(9)
)
#: The bomb used where a schema walks it: override patterns, a sweep's format axis.
SIM_LAUGHS = (
    f"defaults:\n  spec:\n{ANCHORS}overrides:\n  - match: *i\nlayers:\n  - {{synthetic: 8x8}}\n"
)
SWEEP_LAUGHS = f"stages: [compress]\nbase:\n  spec:\n{ANCHORS}grid:\n  format: *i\n"
DEEP = "layers: " + "[" * 5000 + "]" * 5000 + "\n"
DUPLICATE = "arch:\n  lanes: 16\n  lanes: 32\nlayers:\n  - {synthetic: 64x64}\n"
SYNTAX = "arch: {lanes: 16\nlayers:\n  - {synthetic: 64x64}\n"
UTF8 = b"name: caf\xe9\nlayers:\n  - {synthetic: 64x64}\n"
INTEGER = r"expected integer \(write {n}: an integer key refuses a float"
NOT_FINITE = "not a finite number; every number of a config must be finite"

CASES: list[Case] = [
    # ------------------------------------------------------------ pre-flight (16.1)
    Case(
        "synthetic 100000x100000",
        "16.1",
        ("compress", "--format", "csr", "--synthetic", "100000x100000", "--sparsity", "0.9"),
        r"layer gaussian100000x100000 \(100000x100000\) in csr needs about 186 GiB of "
        r"memory .* more than the limit of .*; lower the layer's size",
        memory=True,
    ),
    Case(
        "viterbi segment=10^12",
        "16.1",
        ("compress", "--format", "viterbi", "--spec", "segment=1000000000000")
        + ("--synthetic", "20000x20000", "--sparsity", "0.9"),
        r"the trellis survivors of 2\^8 states × 80,000,000 cycles per segment.*; lower "
        r"segment or n_ff",
        memory=True,
    ),
    Case(
        "viterbi n_in=8, n_ff=12 (n_out=64, n_c=8)",
        "16.1",
        ("--max-memory", "2G", "compress", "--format", "viterbi", "--spec", "n_in=8")
        + ("--spec", "n_ff=12", "--spec", "n_out=64", "--spec", "n_c=8")
        + ("--synthetic", "64x64", "--sparsity", "0.9"),
        r"the keep table of 2\^20 tap vectors × 512 raw outputs.* more than the limit of "
        r"2 GiB \(--max-memory 2G; .*lower n_in \+ n_ff",
        memory=True,
    ),
    Case(
        "xor n_s=4, n_in=6, n_out=1024 (exact search)",
        "16.1",
        ("--max-memory", "1G", "compress", "--format", "xor", "--spec", "n_s=4")
        + ("--spec", "n_in=6", "--spec", "n_out=1024", "--spec", "dp_states=262144")
        + ("--spec", "segment=512", "--synthetic", "4096x4096", "--sparsity", "0.9"),
        r"in xor needs about .* more than the limit of 1 GiB",
        memory=True,
    ),
    Case(
        "lbi rank 16 on 4096x4096 tiles",
        "16.1",
        ("--max-memory", "1G", "compress", "--format", "lbi", "--spec", "rank=16")
        + ("--spec", "tile_rows=4096", "--spec", "tile_cols=4096")
        + ("--synthetic", "4096x4096", "--sparsity", "0.9"),
        r"in lbi needs about .* more than the limit of 1 GiB",
        memory=True,
    ),
    Case(
        "prune viterbi n_in=8, n_ff=12",
        "16.1",
        ("--max-memory", "2G", "prune", "--method", "viterbi", "--sparsity", "0.9")
        + ("--spec", "n_in=8", "--spec", "n_ff=12", "--spec", "n_out=64", "--spec", "n_c=8"),
        r"layer fc1 \(300x64\) in viterbi needs about .*lower n_in \+ n_ff",
        memory=True,
    ),
    *(
        Case(
            f"simulate {name} 10^9",
            "16.1",
            ("simulate", "big.yaml", "--no-synth"),
            f"simulating layer gaussian64x64 .* needs about .* TiB of memory .*; lower {lower}",
            files={"big.yaml": _sim(arch)},
            memory=True,
        )
        for name, arch, lower in (
            ("batch", "batch: 1000000000", r"arch.batch"),
            ("lanes", "lanes: 1000000000, decoders: 1", r"arch.lanes"),
            ("decoders", "lanes: 1000000000, decoders: 1000000000", r"arch.lanes"),
        )
    ),
    Case(
        "synth viterbi_search max_segment=65536",
        "16.1",
        ("synth", "viterbi_search", "--spec", "threshold=3", "--spec", "max_segment=65536"),
        r"synthesizing block viterbi_search needs about .* GiB of memory \(an estimated "
        r"65,920,814 cells.*lower max_segment, n_ff or n_in",
        memory=True,
    ),
    Case(
        "verilog viterbi_search max_segment=65536",
        "16.1",
        ("--max-memory", "1G", "verilog", "viterbi_search", "--spec", "threshold=3")
        + ("--spec", "max_segment=65536", "-o", "out"),
        r"generating the Verilog of block viterbi_search needs about",
        memory=True,
    ),
    Case(
        "weights file beyond --max-memory",
        "16.1",
        ("--max-memory", "100K", "compress", "--format", "csr", "--weights", "w.npz"),
        r"w.npz: its tensors declare 256 KiB, more than the limit of 100 KiB "
        r"\(--max-memory 100K",
        files={"w.npz": _npz({"w": np.ones((256, 256), np.float32)})},
        memory=True,
    ),
    Case(
        "--max-memory not a size",
        "16.1",
        ("--max-memory", "lots", "formats"),
        r"--max-memory: 'lots' is not a memory size",
    ),
    # ------------------------------------------------------------ simulator YAML (16.2)
    *(
        Case(
            f"simulator {key}: {value}",
            "16.2",
            ("simulate", "c.yaml", "--no-synth"),
            f"c.yaml: arch.{key} = {value}; " + INTEGER.format(n=int(float(value))),
            files={"c.yaml": _sim(f"{key}: {value}")},
        )
        for key, value in (("lanes", "16.0"), ("batch", "1.0"), ("activation_bits", "8.0"))
    ),
    *(
        Case(
            f"simulator {where} {literal}",
            "16.2",
            ("simulate", "c.yaml", "--no-synth"),
            f"c.yaml: {re.escape(where)} = {shown}: {NOT_FINITE}",
            files={"c.yaml": doc},
        )
        for where, literal, shown, doc in (
            ("arch.clock_ghz", ".nan", "nan", _sim("clock_ghz: .nan")),
            ("arch.clock_ghz", ".inf", "inf", _sim("clock_ghz: .inf")),
            ("arch.dram.bytes_per_cycle", ".inf", "inf", _sim("dram: {bytes_per_cycle: .inf}")),
            ("layers[0].sparsity", ".nan", "nan", _sim(layer="{synthetic: 8x8, sparsity: .nan}")),
        )
    ),
    Case(
        "energy table: infinite energy",
        "16.2",
        ("simulate", "c.yaml", "--no-synth"),
        f"energy_table: e.yaml: dram_64b_pj = inf: {NOT_FINITE}",
        files={"c.yaml": _sim(extra="energy_table: e.yaml\n"), "e.yaml": "dram_64b_pj: .inf\n"},
    ),
    Case(
        "energy table: width 'eight'",
        "17",
        ("simulate", "c.yaml", "--no-synth"),
        r"energy_table.int_add_pj in e.yaml: key 'eight' is not a width in bits; allowed: "
        r"integers >= 1",
        files={
            "c.yaml": _sim(extra="energy_table: e.yaml\n"),
            "e.yaml": "int_add_pj: {eight: 0.03}\n",
        },
    ),
    Case(
        "energy table: duplicate key",
        "17",
        ("simulate", "c.yaml", "--no-synth"),
        r"e.yaml: line 2, column 1: key 'dram_64b_pj' appears twice",
        files={
            "c.yaml": _sim(extra="energy_table: e.yaml\n"),
            "e.yaml": "dram_64b_pj: 1\ndram_64b_pj: 2\n",
        },
    ),
    Case(
        "simulator billion laughs",
        "16.2",
        ("simulate", "c.yaml"),
        r"c.yaml: line \d+, column \d+: more than 100,000 values once its aliases are expanded",
        files={"c.yaml": SIM_LAUGHS},
    ),
    Case(
        "simulator deep nesting",
        "16.2",
        ("simulate", "c.yaml"),
        r"c.yaml: line 1, column \d+: nested more than 64 levels deep",
        files={"c.yaml": DEEP},
    ),
    Case(
        "simulator duplicate key",
        "17",
        ("simulate", "c.yaml"),
        r"c.yaml: line 3, column 3: key 'lanes' appears twice in one mapping \(first at line 2\)",
        files={"c.yaml": DUPLICATE},
    ),
    Case(
        "simulator YAML syntax error",
        "17",
        ("simulate", "c.yaml"),
        r"c.yaml: line 2, column 7: expected ',' or '}', but got ':'",
        files={"c.yaml": SYNTAX},
    ),
    Case(
        "simulator invalid UTF-8",
        "17",
        ("simulate", "c.yaml"),
        r"c.yaml: line 1: not UTF-8 text \(byte 0xe9 at offset 9\)",
        files={"c.yaml": UTF8},
    ),
    Case(
        "simulator bytes_per_cycle .inf",
        "17",
        ("simulate", "c.yaml"),
        f"c.yaml: arch.dram.bytes_per_cycle = inf: {NOT_FINITE}",
        files={"c.yaml": _sim("dram: {bytes_per_cycle: .inf}")},
    ),
    Case(
        "simulator python tag",
        "16.2",
        ("simulate", "c.yaml"),
        r"c.yaml: line 1, column 7: could not determine a constructor for the tag "
        r"'tag:yaml.org,2002:python/object/apply:os.system'",
        files={"c.yaml": 'name: !!python/object/apply:os.system ["touch pwned"]\nlayers: []\n'},
    ),
    Case(
        "simulator lanes 1000000000001, decoders 4",
        "17",
        ("simulate", "c.yaml"),
        r"arch.decoders = 4 must divide arch.lanes = 1000000000001 .*allowed: 1 \(divisors "
        r"up to 64 listed\)",
        files={"c.yaml": _sim("lanes: 1000000000001, decoders: 4")},
    ),
    # ------------------------------------------------------------ sweep YAML (16.2)
    Case(
        "sweep quantize 8.0",
        "16.2",
        ("sweep", "s.yaml", "--out", "out"),
        r"s.yaml: grid.quantize\[0\]: 8.0 is not of type 'integer', 'null' \(write 8",
        files={"s.yaml": _sweep("grid: {format: [csr], quantize: [8.0]}\n")},
    ),
    Case(
        "sweep sparsity .nan",
        "16.2",
        ("sweep", "s.yaml", "--out", "out"),
        f"s.yaml: grid.sparsity\\[0\\] = nan: {NOT_FINITE}",
        files={"s.yaml": _sweep("grid: {format: [csr], sparsity: [.nan]}\n")},
    ),
    Case(
        "sweep simulator arch.lanes 16.0",
        "16.2",
        ("sweep", "s.yaml", "--out", "out"),
        r"arch.lanes = 16.0; expected integer \(write 16",
        files={
            "s.yaml": "stages: [simulate]\nbase: {workload: {synthetic: 16x16}, format: csr, "
            "synth: false}\ngrid: {arch.lanes: [16.0]}\n"
        },
    ),
    Case(
        "sweep duplicate key",
        "17",
        ("sweep", "s.yaml", "--out", "out"),
        r"s.yaml: line 5, column 1: key 'grid' appears twice",
        files={"s.yaml": _sweep("grid: {format: [csr]}\ngrid: {format: [bitmap]}\n")},
    ),
    Case(
        "sweep billion laughs",
        "16.2",
        ("sweep", "s.yaml", "--out", "out"),
        r"s.yaml: line \d+, column \d+: more than 100,000 values",
        files={"s.yaml": SWEEP_LAUGHS},
    ),
    Case(
        "sweep YAML syntax error",
        "17",
        ("sweep", "s.yaml", "--out", "out"),
        r"s.yaml: line 2, column 1: expected ',' or ']', but got '<stream end>'",
        files={"s.yaml": "stages: [compress\n"},
    ),
    Case(
        "sweep invalid UTF-8",
        "17",
        ("sweep", "s.yaml", "--out", "out"),
        r"s.yaml: line 1: not UTF-8 text",
        files={"s.yaml": b"name: \xff\xfe\n"},
    ),
    Case(
        "sweep name escaping its folder",
        "17",
        ("sweep", "s.yaml"),
        r"name: '../../../../tmp/escaped' is not a folder name",
        files={
            "s.yaml": "name: ../../../../tmp/escaped\nstages: [compress]\ngrid: {format: [csr]}\n"
        },
    ),
    # ------------------------------------------------------------ silent value loss (17)
    Case(
        "float64 weights 1e39",
        "17",
        ("compress", "--format", "csr", "--weights", "w.npz"),
        r"w.npz: tensor 'w': 1 float64 value\(s\) beyond float32's range .* would become "
        r"±inf as float32",
        files={"w.npz": _npz({"w": np.array([[1.0, 1e39], [2.0, -3.0]])})},
    ),
    Case(
        "float64 weights 1e308",
        "17",
        ("compress", "--format", "csr", "--weights", "w.safetensors"),
        r"tensor 'w': 16 float64 value\(s\) beyond float32's range",
        files={"w.safetensors": _safetensors({"w": np.full((4, 4), 1e308)})},
    ),
    Case(
        "subnormal float64 weights",
        "17",
        ("compress", "--format", "csr", "--weights", "w.npz"),
        r"tensor 'w': 16 float64 value\(s\) below float32's normal range .* would become 0",
        files={"w.npz": _npz({"w": np.full((4, 4), 1e-310)})},
    ),
    Case(
        "xor on a layer with outliers",
        "17",
        ("compress", "--format", "xor", "--weights", "w.npz", "--sparsity", "0.5"),
        r"layer w: xor's quantization to XorSpec.value_bits=8 turns 2,040 of the 2,048 kept "
        r"weights into 0 .*value_bits=15 is the smallest width keeping",
        files={"w.npz": _npz({"w": outliers()})},
    ),
    Case(
        "--quantize 8 on a layer with outliers",
        "17",
        ("compress", "--format", "csr", "--weights", "w.npz", "--sparsity", "0.5")
        + ("--quantize", "8"),
        r"layer w: --quantize 8 turns 2,040 of the 2,048 kept weights into 0 .*--quantize 15 "
        r"is the smallest width keeping",
        files={"w.npz": _npz({"w": outliers()})},
    ),
    Case(
        "simulated --quantize 8 on a layer with outliers",
        "17",
        ("simulate", "c.yaml", "--no-synth"),
        r"layer w: --quantize 8 turns 2,040 of the 2,048 kept weights into 0",
        files={
            "w.npz": _npz({"w": outliers()}),
            "c.yaml": "defaults: {sparsity: 0.5, quantize: 8}\nlayers:\n  - {weights: w.npz}\n",
        },
    ),
    # ------------------------------------------------------------ repeated --spec (17)
    Case(
        "repeated --spec field (compress)",
        "17",
        ("compress", "--format", "csr", "--spec", "col_bits=4", "--spec", "col_bits=5")
        + ("--synthetic", "8x8"),
        r"--spec col_bits is given twice \(col_bits=4 and col_bits=5\); give each field once",
    ),
    Case(
        "repeated --spec parameter (verilog)",
        "17",
        ("verilog", "relative", "--spec", "n_cols=4", "--spec", "n_cols=8", "-o", "out"),
        r"--spec n_cols is given twice",
    ),
    # ------------------------------------------------------------ outputs (17)
    Case(
        "--json /proc/version",
        "17",
        ("compress", "--format", "csr", "--synthetic", "8x8", "--json", "/proc/version"),
        r"cannot write /proc/version: cannot create a file in /proc",
    ),
    Case(
        "verilog output pair with a directory in the way",
        "17",
        ("verilog", "relative", "-o", "out"),
        r"out/relative_decoder.json",
        files={"out/relative_decoder.json/keep": ""},
    ),
]


# ---------------------------------------------------------------- running a case


def write_inputs(case: Case, folder: Path) -> None:
    """Write the case's input files into ``folder``."""
    for name, content in case.files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if callable(content):
            content(path)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


def snapshot(folder: Path) -> dict[str, str]:
    """Every file and folder under ``folder``: relative path -> content digest."""
    out = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        out[key] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
    return out


def one_line_error(err: str, message: str) -> str | None:
    """What is wrong with ``err`` as the promised error (None: it is one line starting
    ``codesign: error:`` and containing ``message``)."""
    if "Traceback" in err:
        return "a traceback"
    lines = err.splitlines()
    if len(lines) != 1 or not lines[0].startswith("codesign: error: "):
        return f"{len(lines)} lines on stderr, not one error line"
    if not re.search(message, lines[0]):
        return f"the error line does not match {message!r}"
    return None


@dataclasses.dataclass(frozen=True)
class Outcome:
    """A case run as a subprocess: exit ``code`` (negative: killed by that signal),
    ``err`` (stderr), ``peak_bytes`` (its VmHWM; ``ru_maxrss`` when it was killed),
    ``seconds``, ``timed_out``,
    ``changed`` (files of the case's folder changed or created)."""

    code: int
    err: str
    peak_bytes: int
    seconds: float
    timed_out: bool
    changed: bool

    def category(self, case: Case) -> str:
        """clean error, traceback, out of memory, wrong report, hang or other."""
        if self.timed_out:
            return "hang"
        if self.code == -signal.SIGKILL or "MemoryError" in self.err:
            return "out of memory"
        if "Traceback" in self.err:
            return "traceback"
        if self.code == 0:
            return "wrong report"
        if self.code == 2 and one_line_error(self.err, case.message) is None:
            return "clean error" if not self.changed else "other"
        return "other"


#: Environment variable naming the file the command writes its peak memory to.
HWM_FILE = "CODESIGN_CASE_HWM"
#: ``python -c`` program: `codesign` with the command line's arguments, writing its own
#: ``VmHWM`` line (kB) to :data:`HWM_FILE` at exit (``ru_maxrss`` of a child counts the
#: parent's size at the fork too).
_RUN = (
    "import atexit, os, runpy\n"
    "def hwm():\n"
    "    with open('/proc/self/status') as f:\n"
    "        line = next(x for x in f if x.startswith('VmHWM'))\n"
    f"    with open(os.environ['{HWM_FILE}'], 'w') as f:\n"
    "        f.write(line)\n"
    "atexit.register(hwm)\n"
    "runpy.run_module('codesign', run_name='__main__')\n"
)


def run_case(
    case: Case,
    python: str = sys.executable,
    pythonpath: str | None = None,
    timeout: float = 120.0,
    cap_gb: float | None = None,
) -> Outcome:
    """Run ``case`` as ``python -m codesign`` in a fresh folder (its own session, killed
    with its children after ``timeout`` seconds; ``cap_gb``: address-space limit)."""
    with tempfile.TemporaryDirectory(prefix="case-") as tmp:
        folder = Path(tmp) / "case"
        folder.mkdir()
        write_inputs(case, folder)
        before = snapshot(folder)
        env = {k: v for k, v in os.environ.items() if k != "CODESIGN_MAX_MEMORY"}
        env.update(case.env)
        if pythonpath:
            env["PYTHONPATH"] = pythonpath
        limit = None if cap_gb is None else int(cap_gb * 2**30)

        def cap() -> None:
            if limit is not None:
                resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

        hwm = Path(tmp) / "hwm"
        env[HWM_FILE] = str(hwm)
        start = time.monotonic()
        with open(Path(tmp) / "stderr", "w+b") as err:
            proc = subprocess.Popen(
                [python, "-c", _RUN, *case.argv],
                cwd=folder,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=err,
                preexec_fn=cap,
                start_new_session=True,
            )
            timed_out = False
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                if time.monotonic() - start > timeout:
                    os.killpg(proc.pid, signal.SIGKILL)
                    timed_out = True
                time.sleep(0.05)
            proc.returncode = os.waitstatus_to_exitcode(status)
            seconds = time.monotonic() - start
            err.seek(0)
            text = err.read().decode(errors="replace")
        changed = snapshot(folder) != before
        peak = int(hwm.read_text().split()[1]) if hwm.is_file() else usage.ru_maxrss
    return Outcome(proc.returncode, text, peak * 1024, seconds, timed_out, changed)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--pythonpath")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--cap", type=float, help="address-space limit of each run, GiB")
    parser.add_argument("--only", help="run the cases whose id contains this text")
    parser.add_argument(
        "--strip-max-memory",
        action="store_true",
        help="drop --max-memory SIZE from the command lines (a version without the option)",
    )
    args = parser.parse_args()
    tally: Counter[str] = Counter()
    print("| case | issue | exit | category | peak MiB | s | stderr (last line) |")
    print("|---|---|---|---|---|---|---|")
    for case in CASES:
        if args.only and args.only not in case.id:
            continue
        if args.strip_max_memory and "--max-memory" in case.argv:
            at = case.argv.index("--max-memory")
            case = dataclasses.replace(case, argv=case.argv[:at] + case.argv[at + 2 :])
        out = run_case(case, args.python, args.pythonpath, args.timeout, args.cap)
        kind = out.category(case)
        tally[kind] += 1
        last = (out.err.strip().splitlines() or [""])[-1][:160].replace("|", "/")
        print(
            f"| {case.id} | {case.issue} | {out.code} | {kind} | "
            f"{out.peak_bytes / 2**20:.0f} | {out.seconds:.1f} | {last} |",
            flush=True,
        )
    print()
    print(", ".join(f"{k}: {v}" for k, v in sorted(tally.items())), f"(cases: {tally.total()})")
    return 0 if set(tally) <= {"clean error"} else 1


if __name__ == "__main__":
    sys.exit(main())
