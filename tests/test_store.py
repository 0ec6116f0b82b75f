"""The sweep results store: stable keys, code version, resume, failures and retries."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys

import pytest

from codesign.experiments.sweeps.runner import run_sweep
from codesign.experiments.sweeps.stages import Stage
from codesign.experiments.sweeps.store import (
    CODE_VERSION_ENV,
    DONE,
    FAILED,
    Outcome,
    Store,
    StoreError,
    code_version,
    point_key,
)

POINT = {
    "workload": {"synthetic": "8x8", "distribution": "gaussian", "seed": 0},
    "format": "relative",
    "spec": {"r": 3},
    "sparsity": 0.5,
    "quantize": None,
    "arch": {},
    "stages": ["compress"],
}


def reordered(value):
    """The same JSON value with every dict's keys inserted in reverse order."""
    if isinstance(value, dict):
        return {k: reordered(value[k]) for k in reversed(list(value))}
    return value


def reference_key(point, code):
    text = json.dumps({"point": point, "code": code}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_key_is_sha256_of_canonical_json_and_ignores_dict_order():
    assert list(reordered(POINT)) != list(POINT)
    assert point_key(POINT, "v1") == point_key(reordered(POINT), "v1")
    assert point_key(POINT, "v1") == reference_key(POINT, "v1")


def test_key_is_stable_across_processes():
    script = (
        "import json, sys; from codesign.experiments.sweeps.store import point_key; "
        "print(point_key(json.loads(sys.argv[1]), 'v1'))"
    )
    keys = set()
    for seed, point in (("1", POINT), ("2", reordered(POINT))):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", script, json.dumps(point)],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        )
        keys.add(out.stdout.strip())
    assert keys == {point_key(POINT, "v1")}


def test_code_version_is_part_of_the_key():
    assert point_key(POINT, "v1") != point_key(POINT, "v2")
    changed = {**POINT, "sparsity": 0.75}
    assert point_key(changed, "v1") != point_key(POINT, "v1")


def test_code_version_follows_python_sources(tmp_path, monkeypatch):
    monkeypatch.delenv(CODE_VERSION_ENV, raising=False)
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "a.py").write_text("x = 1\n")
    (pkg / "sub" / "b.py").write_text("y = 2\n")
    (pkg / "notes.txt").write_text("not code\n")

    def version():
        return code_version(tmp_path, ("pkg",))

    first = version()
    assert first == version()
    (pkg / "notes.txt").write_text("still not code\n")
    assert version() == first
    (pkg / "sub" / "b.py").write_text("y = 3\n")
    edited = version()
    assert edited != first
    (pkg / "sub" / "b.py").rename(pkg / "sub" / "c.py")
    assert version() not in (first, edited)
    monkeypatch.setenv(CODE_VERSION_ENV, "pinned")
    assert version() == "pinned"


def test_the_project_code_version_covers_its_sources(monkeypatch):
    monkeypatch.delenv(CODE_VERSION_ENV, raising=False)
    assert len(code_version()) == 64
    assert code_version() != code_version(dirs=("models",))


def outcome(status=DONE, value=1.0, error=None, t=100.0):
    return Outcome(status, {"value": value}, error, t, t + 1.0, "host:1")


def test_store_is_wal_and_commits_each_row(tmp_path):
    with Store(tmp_path) as store:
        store.record("k1", POINT, "v1", outcome())
        other = sqlite3.connect(store.path)
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert other.execute("SELECT key, status FROM results").fetchall() == [("k1", DONE)]
        other.close()


def test_a_done_row_is_never_overwritten_and_a_failed_one_is(tmp_path):
    with Store(tmp_path) as store:
        store.record("done", POINT, "v1", outcome(value=1.0))
        store.record("done", POINT, "v1", outcome(value=2.0, t=200.0))
        err = ("ValueError", "bad", "Traceback ...")
        store.record("bad", POINT, "v1", outcome(FAILED, error=err))
        store.record("bad", POINT, "v1", outcome(DONE, value=3.0, t=300.0))
        rows = store.rows()
    assert rows["done"].metrics == {"value": 1.0} and rows["done"].started == 100.0
    assert rows["done"].attempts == 1
    assert rows["bad"].status == DONE and rows["bad"].metrics == {"value": 3.0}
    assert rows["bad"].attempts == 2 and rows["bad"].error_type is None


def test_report_of_a_directory_without_store_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError, match="no sweep store"):
        Store(tmp_path / "missing", create=False)
    (tmp_path / "results.sqlite").write_text("this is not a database, " * 100)
    with pytest.raises(StoreError, match="not a sweep store"):
        Store(tmp_path)


CALLS: list[float] = []


def value_stage(point):
    CALLS.append(point["sparsity"])
    if point["sparsity"] == 0.25:
        raise ZeroDivisionError("a quarter is not allowed")
    return {"value": point["sparsity"] * 2}


REGISTRY = {"value": Stage("value", value_stage)}


def make_points(sparsities, code="v1"):
    points = [{**POINT, "sparsity": s, "stages": ["value"]} for s in sparsities]
    return [(point_key(p, code), p) for p in points]


def test_resume_skips_done_rows_and_failed_rows_wait_for_retry(tmp_path):
    points = make_points([0.0, 0.25, 0.5, 0.75])
    CALLS.clear()
    with Store(tmp_path) as store:
        first = run_sweep(points, store, "v1", workers=1, progress=False, registry=REGISTRY)
        assert (first.done, first.failed, first.reused) == (3, 1, 0)
        assert sorted(CALLS) == [0.0, 0.25, 0.5, 0.75]
        rows = store.rows()
        failed = rows[points[1][0]]
        assert failed.status == FAILED and failed.error_type == "ZeroDivisionError"
        assert failed.error_message == "a quarter is not allowed"
        assert "value_stage" in failed.traceback and failed.metrics == {}

        CALLS.clear()
        again = run_sweep(points, store, "v1", workers=1, progress=False, registry=REGISTRY)
        assert CALLS == []
        assert (again.reused, again.skipped_failed, again.done, again.failed) == (3, 1, 0, 0)
        assert store.rows() == rows

        retry = run_sweep(
            points, store, "v1", workers=1, progress=False, retry_failed=True, registry=REGISTRY
        )
        assert CALLS == [0.25] and retry.failed == 1 and retry.reused == 3
        assert store.rows()[points[1][0]].attempts == 2
        unchanged = {k: r for k, r in store.rows().items() if r.status == DONE}
        assert unchanged == {k: r for k, r in rows.items() if r.status == DONE}


def test_new_code_version_recomputes_and_keeps_old_rows(tmp_path):
    CALLS.clear()
    with Store(tmp_path) as store:
        run_sweep(make_points([0.5]), store, "v1", workers=1, progress=False, registry=REGISTRY)
        run_sweep(
            make_points([0.5], "v2"), store, "v2", workers=1, progress=False, registry=REGISTRY
        )
        versions = sorted(r.code_version for r in store.rows().values())
    assert CALLS == [0.5, 0.5] and versions == ["v1", "v2"]
