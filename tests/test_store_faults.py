"""Broken, foreign, read-only and full stores; two configs and two sweeps on one store;
sweep names that would leave their folder. Each gets one line naming the file or key
and what to do, exit code 2, and loses no row."""

from __future__ import annotations

import contextlib
import csv
import json
import multiprocessing
import os
import sqlite3
import subprocess
import threading
from pathlib import Path

import pytest
import yaml

from codesign.experiments.cli.main import main
from codesign.experiments.reports.sweep_report import write_reports
from codesign.experiments.sweeps.config import SweepConfigError, load_config, plan, validate_config
from codesign.experiments.sweeps.runner import run_sweep
from codesign.experiments.sweeps.store import CODE_VERSION_ENV, LOCK_FILE, Store, StoreError

CODE = "store-faults"
SMALL = {
    "stages": ["compress"],
    "grid": {"workload": [{"synthetic": "16x16"}], "format": ["csr", "bitmap"], "sparsity": [0.5]},
}
OTHER = {
    "stages": ["compress"],
    "grid": {"workload": [{"synthetic": "8x8"}], "format": ["relative"], "sparsity": [0.5, 0.9]},
}


@pytest.fixture(autouse=True)
def pinned_code(monkeypatch):
    monkeypatch.setenv(CODE_VERSION_ENV, CODE)


def write_config(path: Path, doc: dict) -> Path:
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def sweep(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["sweep", *argv, "--no-progress"])
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    """The single line of ``err`` (an error must be one line, without a traceback)."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# ---------------------------------------------------------------- broken and foreign stores


def test_a_folder_in_place_of_the_store_is_named(tmp_path, capsys):
    (tmp_path / "out" / "results.sqlite").mkdir(parents=True)
    code, _, err = sweep(
        capsys, str(write_config(tmp_path / "s.yaml", SMALL)), "--out", str(tmp_path / "out")
    )
    assert code == 2
    assert one_line(err) == (
        f"codesign: error: {tmp_path}/out/results.sqlite is a directory, not a sweep store: "
        f"move it away or choose another --out"
    )


def test_a_file_in_place_of_the_sweep_folder_is_named(tmp_path, capsys):
    (tmp_path / "out").write_text("notes")
    code, _, err = sweep(
        capsys, str(write_config(tmp_path / "s.yaml", SMALL)), "--out", str(tmp_path / "out")
    )
    assert code == 2 and "out is a file, not a sweep directory" in one_line(err)
    assert (tmp_path / "out").read_text() == "notes"


def test_another_programs_results_table_is_refused_untouched(tmp_path, capsys):
    db = tmp_path / "out" / "results.sqlite"
    db.parent.mkdir()
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE results (id INTEGER, name TEXT)")
    con.execute("INSERT INTO results VALUES (1, 'mine')")
    con.commit()
    con.close()
    code, _, err = sweep(
        capsys, str(write_config(tmp_path / "s.yaml", SMALL)), "--out", str(db.parent)
    )
    assert code == 2
    assert one_line(err) == (
        f"codesign: error: {db} is not a sweep store: its table `results` has the columns "
        f"(id, name), not a sweep's; it belongs to another program: move it away or choose "
        f"another --out"
    )
    con = sqlite3.connect(db)
    tables = [n for (n,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    assert tables == ["results"] and con.execute("SELECT * FROM results").fetchall() == [
        (1, "mine")
    ]
    con.close()
    assert main(["report", str(db.parent)]) == 2
    assert "is not a sweep store" in one_line(capsys.readouterr().err)


def test_a_store_of_the_earlier_layout_is_upgraded_in_place(tmp_path):
    config = validate_config(SMALL, name="old")
    points = plan(config, CODE)
    db = tmp_path / "results.sqlite"
    con = sqlite3.connect(db)
    con.executescript(
        "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "CREATE TABLE points (idx INTEGER PRIMARY KEY, key TEXT NOT NULL, point TEXT NOT NULL);"
    )
    con.executemany(
        "INSERT INTO meta VALUES (?, ?)", [("config", json.dumps(config)), ("code_version", CODE)]
    )
    con.executemany(
        "INSERT INTO points VALUES (?, ?, ?)",
        [(i, k, json.dumps(p)) for i, (k, p) in enumerate(points)],
    )
    con.commit()
    con.close()
    with Store(tmp_path) as store:
        assert store.sweeps() == ["old"]
        assert store.points() == points and store.meta("config") == config
        assert store.meta("code_version", "old") == CODE


# ---------------------------------------------------------------- read-only and full


@contextlib.contextmanager
def read_only(path: Path):
    """``path`` read-only for this process: a read-only bind mount as root (root
    ignores permission bits), permission bits otherwise."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    try:
        subprocess.run(["mount", "--bind", path, path], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("running as root without the right to mount: no read-only folder")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", path, path], check=True)
        yield
    finally:
        subprocess.run(["umount", path], check=True)


def test_a_read_only_folder_or_store_is_named_and_still_reported(tmp_path, capsys):
    cfg = write_config(tmp_path / "s.yaml", SMALL)
    out = tmp_path / "out"
    assert sweep(capsys, str(cfg), "--out", str(out))[0] == 0
    before = out.joinpath("results.sqlite").read_bytes()
    (tmp_path / "empty").mkdir()
    with read_only(tmp_path / "empty"):
        code, _, err = sweep(capsys, str(cfg), "--out", str(tmp_path / "empty"))
        assert code == 2 and one_line(err) == (
            f"codesign: error: cannot open {tmp_path}/empty/results.sqlite (sqlite: unable to "
            f"open database file): its folder {tmp_path}/empty must be a writable directory; "
            f"fix it or choose another --out"
        )
    with read_only(out):
        code, _, err = sweep(capsys, str(cfg), "--out", str(out))
        assert code == 2 and f"{out}/results.sqlite" in one_line(err)
        assert err.rstrip().endswith("choose another --out")
        assert main(["report", str(out), "--out", str(tmp_path / "report")]) == 0
        assert main(["report", str(out)]) == 2
        assert one_line(capsys.readouterr().err).startswith(
            f"codesign: error: cannot write {out}/results.csv: "
        )
    with read_only(out / "results.sqlite"):
        code, _, err = sweep(capsys, str(cfg), "--out", str(out))
        assert code == 2 and one_line(err) == (
            f"codesign: error: {out}/results.sqlite is read-only (sqlite: attempt to write a "
            f"readonly database): make it and its folder writable, or choose another --out"
        )
    assert out.joinpath("results.sqlite").read_bytes() == before
    assert len(list(csv.DictReader((tmp_path / "report" / "results.csv").open()))) == 2


def test_a_full_disk_stops_the_sweep_keeps_its_rows_and_leaves_no_worker(tmp_path):
    config = validate_config(
        {**SMALL, "grid": {**SMALL["grid"], "workload.seed": list(range(12))}}, name="full"
    )
    points = plan(config, CODE)
    with Store(tmp_path) as store:
        store.set_sweep(config, points, CODE)
        run_sweep(points[:2], store, CODE, workers=1, progress=False)
        pages = store._db.execute("PRAGMA page_count").fetchone()[0]
        store._db.execute(f"PRAGMA max_page_count = {pages + 1}")  # as if the disk filled up
        with pytest.raises(StoreError, match="the disk is full .*rerun the same command to resume"):
            run_sweep(points, store, CODE, workers=2, progress=False)
        assert multiprocessing.active_children() == []
        kept = store.rows()
    assert len(kept) >= 2
    with Store(tmp_path) as store:
        run_sweep(points, store, CODE, workers=1, progress=False)
        rows = store.rows()
    assert len(rows) == len(points) and all(rows[k] == row for k, row in kept.items())


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_a_real_full_disk_is_one_line(tmp_path, capsys):
    full = tmp_path / "full"
    full.mkdir()
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", full], check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("no right to mount a tmpfs")
    try:
        doc = {**SMALL, "grid": {**SMALL["grid"], "workload.seed": list(range(30))}}
        code, _, err = sweep(
            capsys, str(write_config(tmp_path / "s.yaml", doc)), "--out", str(full / "s")
        )
        lines = err.strip().splitlines()
        assert code == 2 and "Traceback" not in err
        assert lines[-1] == (
            f"codesign: error: {full}/s/results.sqlite: the disk is full (sqlite: database or "
            f"disk is full): free some space and rerun the same command to resume (committed "
            f"rows are kept)"
        )
    finally:
        subprocess.run(["umount", full], check=True)


# ---------------------------------------------------------------- two sweeps, two configs


def test_a_second_sweep_is_refused_naming_the_first_or_waits(tmp_path):
    with Store(tmp_path) as first, first.lock("alpha"):
        holder = json.loads((tmp_path / LOCK_FILE).read_text())
        assert holder["sweep"] == "alpha" and holder["pid"] == os.getpid()
        with Store(tmp_path) as second:
            with pytest.raises(StoreError) as refused, second.lock("beta"):
                pass
            assert str(refused.value).startswith(
                f"{tmp_path}/results.sqlite is in use by sweep alpha (pid {os.getpid()} on "
            )
            assert str(refused.value).endswith(
                "wait for it to finish or stop it, rerun with --wait, or choose another --out"
            )
            waited = []
            got = threading.Event()

            def wait_for_it():
                with Store(tmp_path) as third, third.lock("gamma", True, waited.append):
                    got.set()

            thread = threading.Thread(target=wait_for_it)
            thread.start()
            assert not got.wait(0.5) and waited and "sweep alpha" in waited[0]
    thread.join(10)
    assert got.is_set() and (tmp_path / LOCK_FILE).read_text() == ""


def test_two_configs_on_one_store_keep_their_points_and_reports_apart(tmp_path, capsys):
    out = tmp_path / "out"
    first = write_config(tmp_path / "first.yaml", SMALL)
    second = write_config(tmp_path / "second.yaml", OTHER)
    assert sweep(capsys, str(first), "--out", str(out), "--report")[0] == 0
    code, stdout, _ = sweep(capsys, str(second), "--out", str(out), "--report")
    assert code == 0 and f"wrote {out}/second/summary.md" in stdout
    with Store(out) as store:
        assert store.sweeps() == ["first", "second"]
        assert [p["format"] for _, p in store.points("first")] == ["csr", "bitmap"]
        assert [p["format"] for _, p in store.points("second")] == ["relative", "relative"]
    for rewritten in (False, True):  # as written by each sweep, then by `codesign report`
        own = (out / "summary.md").read_text()
        assert own.startswith("# Sweep `first`") and "relative" not in own
        assert ("`second` (second/)" in own) is rewritten
        rows = list(csv.DictReader((out / "results.csv").open()))
        assert [r["format"] for r in rows] == ["csr", "bitmap"]
        other = (out / "second" / "summary.md").read_text()
        assert other.startswith("# Sweep `second`") and "`first` (../)" in other
        rows = list(csv.DictReader((out / "second" / "results.csv").open()))
        assert [(r["format"], r["sparsity"]) for r in rows] == [
            ("relative", "0.5"),
            ("relative", "0.9"),
        ]
        files = write_reports(out)
        assert [f.summary for f in files] == [out / "summary.md", out / "second" / "summary.md"]


# ---------------------------------------------------------------- names


@pytest.mark.parametrize(
    "name",
    ["../../../../tmp/escaped", "/tmp/absolute", "a/b", "..", ".hidden", "-rf", "x" * 101, "a b"],
)
def test_a_name_that_is_not_one_folder_name_is_refused(name):
    with pytest.raises(SweepConfigError, match=r"^name: .* is not a folder name: .*--out$"):
        validate_config({**SMALL, "name": name})


def test_a_file_name_that_is_not_a_folder_name_needs_a_name_key(tmp_path):
    path = write_config(tmp_path / "...yaml", SMALL)
    with pytest.raises(SweepConfigError, match=r"name \(from the file name; set name: to choose"):
        load_config(path)
    assert load_config(write_config(tmp_path / "exp1_v2.1+b.yaml", SMALL))["name"] == "exp1_v2.1+b"


def test_an_escaping_name_writes_nothing_anywhere(tmp_path, capsys, monkeypatch):
    work = tmp_path / "a" / "b" / "c"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    cfg = write_config(work / "s.yaml", {**SMALL, "name": "../../../../escaped"})
    code, _, err = sweep(capsys, str(cfg))
    assert code == 2 and one_line(err).startswith(
        f"codesign: error: {cfg}: name: '../../../../escaped' is not a folder name"
    )
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "b", "c", "s.yaml"]
