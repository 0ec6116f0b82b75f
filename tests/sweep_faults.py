"""Fault injection for `codesign sweep`: a signal sent at a stage of a real sweep run.

:func:`run_fault` starts ``codesign sweep`` as a subprocess (in its own session, with a
tag in its environment that every process it starts inherits), waits for the stage,
sends the signal, and measures what the issue of record asks: the rows committed when
the signal was sent and after the process ended, the processes of the run still alive a
few seconds later (workers, forkserver, resource tracker), the exit code and stderr;
then, optionally, it resumes the sweep and checks that no row was lost, changed or
computed twice. Linux only (the tag is read from ``/proc/PID/environ``).

Signals: ``SIGINT``, ``SIGTERM`` and ``SIGKILL`` sent to the sweep process alone, or
to its whole process group (``SIGTERM-group``: a service manager stopping it,
``SIGKILL-group``). Stages: ``pool`` (points running on 2 local workers),
``in-process`` (``--workers 1``), ``report`` (all rows committed, ``--report``
writing), ``lock-wait`` (``--wait`` blocked behind another sweep on the same store).

``python tests/sweep_faults.py [STAGE ...]`` runs every signal at every stage (or at the
given ones) and prints the table.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CODE = "fault-test-code-version"
TAG = "CODESIGN_FAULT_TAG"
#: 40 points of about 0.25 s each on 2 workers (Viterbi and LBI on 128x128 layers).
LONG = {
    "name": "faults",
    "stages": ["compress"],
    "grid": {
        "workload": [{"synthetic": "128x128"}],
        "workload.seed": list(range(10)),
        "format": ["viterbi", "lbi"],
        "sparsity": [0.5, 0.9],
    },
}
#: 6 quick points, for the report stage.
SHORT = {
    "name": "faults",
    "stages": ["compress"],
    "grid": {
        "workload": [{"synthetic": "32x32"}],
        "format": ["csr", "bitmap", "relative"],
        "sparsity": [0.5, 0.9],
    },
}
SIGNALS = ("SIGINT", "SIGTERM", "SIGKILL", "SIGTERM-group", "SIGKILL-group")
STAGES = ("pool", "in-process", "report", "lock-wait")
#: Seconds the processes of a run get to end after its parent ended.
GRACE_S = 5.0


@dataclasses.dataclass
class FaultResult:
    """What a fault did. ``rows_before``: committed rows when the signal was sent;
    ``rows_after``: after the sweep ended; ``children_left``: processes of the run alive
    :data:`GRACE_S` after it ended; ``exit_code``: the shell's code (128 + signal for a
    process killed by one); ``stderr`` of the run; ``lost`` and ``changed``: rows present
    before the signal and missing or different after the resume (None: not resumed);
    ``resumed_rows`` and ``points``: rows after the resume and points of the sweep;
    ``crashes``: rows recorded as a worker crash;
    ``partial_reports``: report files (CSV, summary) that exist but are incomplete."""

    signal: str
    stage: str
    rows_before: int
    rows_after: int
    children_left: int
    exit_code: int
    stderr: str
    points: int
    lost: int | None = None
    changed: int | None = None
    resumed_rows: int | None = None
    crashes: int = 0
    partial_reports: int = 0


def n_points(doc: dict) -> int:
    """Points of a grid config without repeats."""
    return math.prod(len(values) for values in doc["grid"].values())


def committed(db: Path) -> dict[str, tuple]:
    """key -> (status, error_type, started, finished, worker, metrics) of the rows."""
    if not db.exists():
        return {}
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        rows = con.execute(
            "SELECT key, status, error_type, started, finished, worker, metrics FROM results"
        )
        return {key: tuple(rest) for key, *rest in rows}
    except sqlite3.OperationalError:
        return {}
    finally:
        con.close()


def tagged(tag: str) -> list[int]:
    """Pids of the live processes whose environment holds ``TAG=tag``."""
    needle = f"{TAG}={tag}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if needle in environ.split(b"\0") and state != "Z":
            found.append(int(entry.name))
    return found


def wait_until(condition, what: str, timeout: float = 90.0, poll: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(poll)


def children_after(tag: str) -> int:
    """Processes tagged ``tag`` still alive after :data:`GRACE_S` (0 as soon as none)."""
    deadline = time.monotonic() + GRACE_S
    while tagged(tag) and time.monotonic() < deadline:
        time.sleep(0.05)
    return len(tagged(tag))


def own_cache(cfg: Path) -> dict[str, str]:
    """The environment giving the runs of the config ``cfg`` a cache folder of their own
    beside it: the points must take their time, and encodings left in a shared cache
    by an earlier run would make them instant."""
    return {"CODESIGN_CACHE": str(cfg.parent / "cache")}


def start(cfg: Path, out: Path, tag: str, *extra: str, workers: int = 2) -> subprocess.Popen:
    argv = [sys.executable, "-m", "codesign", "sweep", str(cfg), "--out", str(out)]
    argv += ["--workers", str(workers), "--no-progress", *extra]
    return subprocess.Popen(
        argv,
        cwd=ROOT,
        env={**os.environ, "CODESIGN_CODE_VERSION": CODE, TAG: tag, **own_cache(cfg)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def send(proc: subprocess.Popen, name: str) -> None:
    """Send the signal ``name`` (module docstring) unless the run has ended."""
    sig = getattr(signal, name.removesuffix("-group"))
    with contextlib.suppress(ProcessLookupError):
        if name.endswith("-group"):
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)


def exit_code(proc: subprocess.Popen) -> int:
    return 128 - proc.returncode if proc.returncode < 0 else proc.returncode


def write_config(path: Path, doc: dict) -> Path:
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def run_fault(tmp: Path, sig: str, stage: str, resume: bool = True) -> FaultResult:
    """Send ``sig`` to a sweep at ``stage`` (module docstring) in the folder ``tmp``;
    with ``resume``, rerun the sweep to its end and compare the rows."""
    doc = SHORT if stage == "report" else LONG
    cfg = write_config(tmp / "faults.yaml", doc)
    out = tmp / "sweep"
    db = out / "results.sqlite"
    tag = uuid.uuid4().hex
    holder = None
    lines: list[str] = []
    if stage == "lock-wait":
        holder = start(cfg, out, f"{tag}-holder", workers=1)
        wait_until(lambda: len(committed(db)) >= 1, "the holder's first row")
        proc = start(cfg, out, tag, "--wait")
        wait_until(
            lambda: lines.append(proc.stderr.readline()) or "waiting" in lines[-1] or proc.poll(),
            "the second sweep to wait",
        )
    else:
        extra = ["--report"] if stage == "report" else []
        proc = start(cfg, out, tag, *extra, workers=1 if stage == "in-process" else 2)
        enough = n_points(doc) if stage == "report" else 2
        wait_until(lambda: len(committed(db)) >= enough or proc.poll() is not None, "rows")
    before = committed(db)
    send(proc, sig)
    proc.wait(timeout=60)
    left = children_after(tag)
    for pid in tagged(tag):  # a leftover process would keep the pipes open
        os.kill(pid, signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    if holder is not None:
        holder.send_signal(signal.SIGINT)
        holder.communicate(timeout=60)
    after = committed(db)
    result = FaultResult(
        sig,
        stage,
        len(before),
        len(after),
        left,
        exit_code(proc),
        "".join(lines) + err,
        n_points(doc),
        partial_reports=partial_reports(out, n_points(doc)),
    )
    if resume:
        done = start(cfg, out, f"{tag}-resume")
        done.communicate(timeout=300)
        final = committed(db)
        result.resumed_rows = len(final)
        result.lost = sum(k not in final for k in before)
        result.changed = sum(k in final and final[k] != v for k, v in before.items())
        result.crashes = sum(r[1] == "WorkerCrash" for r in final.values())
    return result


def partial_reports(out: Path, points: int) -> int:
    """Report files in ``out`` that exist but are incomplete: a CSV without its header and
    one line per point, a summary without its last section."""
    partial = 0
    csv_file, summary = out / "results.csv", out / "summary.md"
    if csv_file.exists():
        partial += len(csv_file.read_text().splitlines()) != points + 1
    if summary.exists():
        partial += "## Failures" not in summary.read_text()
    return partial


def table(results: list[FaultResult]) -> str:
    """The fault table as Markdown."""
    lines = [
        "| signal | stage | rows before → after | after resume | lost / changed | crashes | "
        "partial reports | children left | exit | traceback |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        resumed = "-" if r.resumed_rows is None else f"{r.resumed_rows}/{r.points}"
        damage = "-" if r.lost is None else f"{r.lost} / {r.changed}"
        lines.append(
            f"| {r.signal} | {r.stage} | {r.rows_before} → {r.rows_after} | {resumed} | "
            f"{damage} | {r.crashes} | {r.partial_reports} | {r.children_left} | "
            f"{r.exit_code} | {'yes' if 'Traceback' in r.stderr else 'no'} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    import tempfile

    results = []
    for stage in sys.argv[1:] or STAGES:
        for sig in SIGNALS:
            with tempfile.TemporaryDirectory() as tmp:
                results.append(run_fault(Path(tmp), sig, stage))
                print(table(results[-1:]).splitlines()[-1], flush=True)
    print(table(results))
