"""Signals sent to real `codesign sweep` runs (harness: tests/sweep_faults.py): every
stop keeps the committed rows, leaves no process behind and exits with 128 + signal;
a second sweep on a store in use is refused, naming the first.

The cases here run in `make test`; `make fuzz` runs every signal at every stage
(marker ``fuzz``)."""

from __future__ import annotations

import signal
import sys

import pytest
from sweep_faults import (
    LONG,
    SIGNALS,
    STAGES,
    committed,
    n_points,
    run_fault,
    start,
    wait_until,
    write_config,
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

#: Exit code of each signal: 128 + its number.
EXIT = {"SIGINT": 130, "SIGTERM": 143, "SIGKILL": 137}


def check(result, resumed: bool = True) -> None:
    """What every fault must leave: no row lost or changed, no process, the signal's
    exit code (a report may have finished first: 0), no traceback."""
    expected = EXIT[result.signal.removesuffix("-group")]
    assert result.exit_code in ((expected, 0) if result.stage == "report" else (expected,))
    assert result.rows_after >= result.rows_before
    assert result.children_left == 0, "processes of the sweep left behind"
    assert "Traceback" not in result.stderr and "Error" not in result.stderr, result.stderr
    assert result.partial_reports == 0
    if resumed:
        assert (result.lost, result.changed, result.crashes) == (0, 0, 0)
        assert result.resumed_rows == result.points


def test_sigterm_stops_like_ctrl_c(tmp_path):
    result = run_fault(tmp_path, "SIGTERM", "pool")
    check(result)
    assert result.exit_code == 143
    assert result.stderr.strip().splitlines() == [
        f"interrupted: committed rows are kept; rerun the same command to resume "
        f"({result.points - result.rows_after} points left)"
    ]


def test_a_killed_sweep_takes_its_workers_forkserver_and_tracker_along(tmp_path):
    result = run_fault(tmp_path, "SIGKILL", "pool", resume=False)
    check(result, resumed=False)
    assert result.rows_after == result.rows_before


def test_sigterm_to_the_whole_group_records_no_worker_crash(tmp_path):
    result = run_fault(tmp_path, "SIGTERM-group", "pool", resume=False)
    check(result, resumed=False)
    rows = committed(tmp_path / "sweep" / "results.sqlite")
    assert all(status == "done" for status, *_ in rows.values())


def test_a_sweep_waiting_for_the_store_stops_on_ctrl_c(tmp_path):
    result = run_fault(tmp_path, "SIGINT", "lock-wait", resume=False)
    check(result, resumed=False)
    assert result.stderr.splitlines()[0].startswith("waiting: the store is in use by sweep faults")
    assert result.stderr.splitlines()[1:] == ["codesign: stopped by SIGINT"]


def test_a_second_sweep_on_a_store_in_use_is_refused_naming_the_first(tmp_path):
    cfg = write_config(tmp_path / "faults.yaml", LONG)
    out = tmp_path / "sweep"
    first = start(cfg, out, "first", workers=1)
    try:
        wait_until(lambda: len(committed(out / "results.sqlite")) >= 1, "a first row")
        second = start(cfg, out, "second")
        _, err = second.communicate(timeout=60)
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=60)
    assert second.returncode == 2
    assert err.splitlines() == [
        f"codesign: error: {out}/results.sqlite is in use by sweep faults (pid {first.pid} on "
        + err.split(f"(pid {first.pid} on ", 1)[1].split(")", 1)[0]
        + "): wait for it to finish or stop it, rerun with --wait, or choose another --out"
    ]
    assert len(committed(out / "results.sqlite")) < n_points(LONG)


@pytest.mark.fuzz
@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("sig", SIGNALS)
def test_every_signal_at_every_stage(tmp_path, sig, stage):
    check(run_fault(tmp_path, sig, stage))
