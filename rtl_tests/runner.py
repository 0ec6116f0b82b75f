"""Build a block's Verilog and run a cocotb test module on it (Icarus Verilog).

Every run works in its own directory (the pytest test's ``tmp_path``), so runs of
different parameter sets and pytest-xdist workers never share a ``sim_build``. The
testbench finds the sidecar through ``RTL_SIDECAR`` and writes its measured cycle
counts to ``RTL_MEASURE``; :func:`record_cycles` merges them into
``results/rtl/cycles_BLOCK.json`` under a file lock.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
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


def run_cocotb(
    block: str,
    spec: Spec,
    test_module: str,
    work_dir: Path,
    seed: int = 0,
    env: dict[str, str] | None = None,
    **params: Any,
) -> CocotbRun:
    """Generate ``block`` into ``work_dir``, compile it with Icarus and run the cocotb
    tests of ``test_module`` (a dotted module name) on it; ``env`` adds environment
    variables for the testbench."""
    if shutil.which("iverilog") is None:
        raise RuntimeError("Icarus Verilog (iverilog) is not on PATH; `make iverilog` installs it")
    v_path, json_path = write(block, spec, work_dir, **params)
    build_dir = work_dir / "sim_build"
    measure = work_dir / "measured.json"
    log = work_dir / "sim.log"
    runner = get_runner("icarus")
    runner.build(
        sources=[v_path],
        hdl_toplevel=block,
        build_dir=build_dir,
        always=True,
        timescale=("1ns", "1ps"),
        log_file=work_dir / "build.log",
    )
    try:
        results = runner.test(
            test_module=test_module,
            hdl_toplevel=block,
            build_dir=build_dir,
            test_dir=work_dir,
            results_xml=str(work_dir / "results.xml"),
            seed=seed,
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


def record_cycles(block: str, name: str, run: CocotbRun) -> Path:
    """Merge one parameter set's measured figures into ``results/rtl/cycles_BLOCK.json``
    (``{"block", "runs": {name: {"spec", "params", "latency", ...figures}}}``)."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"cycles_{block}.json"
    with open(RESULTS_DIR / f".cycles_{block}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = json.loads(path.read_text()) if path.exists() else {"block": block, "runs": {}}
        data["runs"][name] = {
            "spec": run.sidecar["spec"],
            "params": run.sidecar["params"],
            "latency": run.sidecar["latency"],
            **run.measured,
        }
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return path


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
    **params: Any,
) -> Iterator[tuple[CocotbRun, dict[str, Any]]]:
    """Run ``test_module`` on ``block`` (:func:`run_cocotb`, ``RTL_STIMULI`` =
    ``stimuli``), assert all ``tests`` cocotb tests ran and passed, and give the run and
    its ``full_rate`` figures; when the ``with`` body (the block's own checks) passes,
    record the figures under ``name`` (:func:`record_cycles`)."""
    run = run_cocotb(
        block, spec, test_module, work_dir, seed=seed, env={"RTL_STIMULI": str(stimuli)}, **params
    )
    assert run.failed == 0 and run.tests == tests, failure_report(run)
    yield run, run.measured["full_rate"]
    record_cycles(block, name, run)
