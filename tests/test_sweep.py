"""Sweep configs (expansion, validation) and runs: process pool, dask, failures,
worker crashes, Ctrl-C and SIGKILL followed by a resume."""

from __future__ import annotations

import itertools
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from sweep_faults import own_cache

from codesign.experiments.cli.main import main
from codesign.experiments.sweeps.config import (
    SweepConfigError,
    expand,
    load_config,
    plan,
    validate_config,
)
from codesign.experiments.sweeps.runner import run_sweep
from codesign.experiments.sweeps.stages import STAGES, Stage
from codesign.experiments.sweeps.store import CODE_VERSION_ENV, DONE, FAILED, Store, point_key
from codesign.models.specs import ViterbiSpec

ROOT = Path(__file__).resolve().parent.parent
CODE = "test-code-version"
SYNTH = {"synthetic": "16x16"}


@pytest.fixture(autouse=True)
def pinned_code(monkeypatch):
    """Pin the code version: other edits to the sources must not change keys mid-test."""
    monkeypatch.setenv(CODE_VERSION_ENV, CODE)


def config(**kw):
    return validate_config({"stages": ["compress"], **kw})


def write_config(path: Path, doc: dict) -> Path:
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


# ---------------------------------------------------------------- expansion


def test_grid_is_the_product_in_key_order_over_the_base():
    cfg = config(
        base={"workload": SYNTH, "quantize": 8},
        grid={"format": ["csr", "relative"], "sparsity": [0.5, 0.75, 0.9]},
    )
    points = expand(cfg)
    expected = list(itertools.product(["csr", "relative"], [0.5, 0.75, 0.9]))
    assert [(p["format"], p["sparsity"]) for p in points] == expected
    for p in points:
        assert p["quantize"] == 8 and p["arch"] == {} and p["stages"] == ["compress"]
        assert p["workload"] == {"synthetic": "16x16", "distribution": "gaussian", "seed": 0}


def test_spec_fields_get_their_defaults_and_dotted_keys_set_one_field():
    cfg = config(base={"workload": SYNTH, "format": "viterbi"}, grid={"spec.n_out": [4, 5]})
    specs = [p["spec"] for p in expand(cfg)]
    defaults = ViterbiSpec().to_dict()
    del defaults["format"]
    assert specs == [{**defaults, "n_out": 4}, {**defaults, "n_out": 5}]


def test_a_list_of_grids_is_their_union_and_duplicates_are_merged():
    cfg = config(
        base={"workload": SYNTH, "sparsity": 0.5},
        grid=[
            {"format": ["relative"], "spec.r": [2, 3]},
            {"format": ["csr", "relative"], "spec": [{}]},
        ],
    )
    points = expand(cfg)
    assert [(p["format"], p["spec"].get("r")) for p in points] == [
        ("relative", 2),
        ("relative", 3),
        ("csr", None),
        ("relative", 4),
    ]
    assert len(plan(cfg, CODE)) == 4
    dup = config(base={"workload": SYNTH}, grid={"format": ["csr", "csr"], "sparsity": [0.5]})
    assert len(expand(dup)) == 2 and len(plan(dup, CODE)) == 1


def test_random_samples_are_seeded_within_the_space_and_cross_the_grid():
    space = {
        "sparsity": {"low": 0.5, "high": 0.95},
        "spec.r": {"low": 2, "high": 6, "int": True},
        "quantize": [4, 8],
    }
    cfg = config(
        base={"workload": SYNTH, "format": "relative"},
        grid={"workload.seed": [0, 1]},
        random={"samples": 5, "seed": 3, "space": {"spec.r": space["spec.r"]}},
    )
    points = expand(cfg)
    assert [p["workload"]["seed"] for p in points] == [0] * 5 + [1] * 5
    rs = [p["spec"]["r"] for p in points[:5]]
    assert [p["spec"]["r"] for p in points[5:]] == rs
    assert all(isinstance(r, int) and 2 <= r <= 6 for r in rs) and len(set(rs)) > 1
    cfg = config(
        base={"workload": SYNTH, "format": "relative"},
        random={"samples": 40, "seed": 7, "space": space},
    )
    first, again = expand(cfg), expand(cfg)
    assert first == again
    s = np.array([p["sparsity"] for p in first])
    assert (s >= 0.5).all() and (s <= 0.95).all() and s.std() > 0.05
    assert {p["quantize"] for p in first} == {4, 8}
    other = expand({**cfg, "random": {**cfg["random"], "seed": 8}})
    assert [p["sparsity"] for p in other] != list(s)


def test_log_sampling_stays_in_range():
    cfg = config(
        base={"workload": SYNTH, "format": "relative"},
        random={"samples": 200, "space": {"sparsity": {"low": 0.001, "high": 0.9, "log": True}}},
    )
    s = np.array([p["sparsity"] for p in expand(cfg)])
    assert s.min() >= 0.001 and s.max() <= 0.9
    assert np.median(s) < 0.1  # log-uniform: the median is near sqrt(0.001 * 0.9) = 0.03


def test_prune_points_take_their_format_from_the_method():
    cfg = validate_config(
        {"stages": ["prune"], "grid": {"method": ["magnitude", "viterbi"], "sparsity": [0.9]}}
    )
    points = expand(cfg)
    assert [p["format"] for p in points] == ["csr", "viterbi"]
    assert all(p["finetune_epochs"] == 10 and p["seed"] == 0 for p in points)


BAD_CONFIGS = [
    ({"stages": ["compress"], "grid": {"format": ["csr"]}, "colour": 1}, "colour: unknown key"),
    ({"grid": {"format": ["csr"]}}, "'stages' is a required property"),
    ({"stages": ["compress"], "grid": {}}, "grid: {} should be non-empty"),
    ({"stages": ["compress"], "grid": {"sparsity": []}}, "grid.sparsity: [] should be non-empty"),
    ({"stages": ["compress"]}, "give grid, random or both"),
    (
        {"stages": ["simulation"], "grid": {"format": ["csr"]}},
        "stages[0]: 'simulation' is not one of",
    ),
    ({"stages": ["compress"], "grid": {"format": ["csv"]}}, "grid.format[0]: 'csv' is not one of"),
    (
        {"stages": ["compress"], "grid": {"fromat": ["csr"]}},
        "grid.fromat: unknown key; allowed keys: workload, format",
    ),
    (
        {"stages": ["compress"], "grid": {"sparsity": [0.5, 1.0]}},
        "grid.sparsity[1]: 1.0 is greater than or equal to the maximum of 1",
    ),
    (
        {"stages": ["compress"], "base": {"workload": SYNTH}, "grid": {"spec.n_out": [4]}},
        "format: format is missing; formats: dense, bitmap, csr",
    ),
    (
        {
            "stages": ["compress"],
            "base": {"workload": SYNTH},
            "grid": {"format": ["csr", "xor"], "spec.n_out": [4]},
        },
        "grid.spec.n_out: spec field 'n_out' does not apply to format csr; csr's spec "
        "fields: col_bits, ptr_bits",
    ),
    (
        {
            "stages": ["compress"],
            "base": {"workload": SYNTH, "format": "viterbi"},
            "grid": {"spec.n_out": [4, 0]},
        },
        "grid.spec.n_out: ViterbiSpec.n_out must be",
    ),
    (
        {"stages": ["compress"], "grid": {"format": ["csr"], "method": ["viterbi"]}},
        "grid.method: method is read by stage prune, which this sweep does not run",
    ),
    (
        {"stages": ["synth"], "grid": {"format": ["xor"], "arch.lanes": [8]}},
        "grid.arch.lanes: arch.lanes is read by no stage of this point; arch keys it reads: "
        "block, block_bits",
    ),
    (
        {"stages": ["synth"], "grid": {"format": ["csr"]}},
        "stage synth: format csr has no hardware block named after it",
    ),
    (
        {
            "stages": ["compress"],
            "base": {"format": "csr"},
            "random": {"samples": 2, "space": {"sparsity": {"low": 0.9, "high": 0.5}}},
        },
        "random.space.sparsity: low 0.9 must be <= high 0.5",
    ),
    (
        {
            "stages": ["compress"],
            "grid": {"format": ["csr"], "workload": [{"synthetic": "4x4", "model": "digits"}]},
        },
        "grid.workload: workload needs exactly one of synthetic, model, weights",
    ),
    (
        {
            "stages": ["compress"],
            "grid": {"format": ["csr"], "sparsity": [0.5]},
            "random": {"samples": 1, "space": {"sparsity": [0.1]}},
        },
        "random.space.sparsity: also a grid key",
    ),
    (
        {"stages": ["compress"], "grid": {"format": ["csr"]}, "plots": [{"x": "sparsity"}]},
        "plots[0]: 'y' is a required property",
    ),
]


@pytest.mark.parametrize(("doc", "message"), BAD_CONFIGS)
def test_bad_configs_name_the_key(doc, message):
    with pytest.raises(SweepConfigError) as info:
        expand(validate_config(doc))
    assert message in str(info.value)


def test_bad_config_exits_2_through_the_cli(tmp_path, capsys):
    cfg = write_config(tmp_path / "bad.yaml", {"stages": ["compress"], "grid": {"fromat": [1]}})
    assert main(["sweep", str(cfg), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"codesign: error: {cfg}: grid.fromat: unknown key")
    (tmp_path / "broken.yaml").write_text("stages: [compress\n")
    assert main(["sweep", str(tmp_path / "broken.yaml")]) == 2
    assert "broken.yaml: line 2, column 1: expected ',' or ']'" in capsys.readouterr().err
    assert main(["sweep", str(tmp_path / "missing.yaml")]) == 2
    assert main(["sweep", str(cfg), "--workers", "2", "--scheduler", "tcp://x:1"]) == 2


# ---------------------------------------------------------------- runs

MIXED = {
    "stages": ["compress"],
    "grid": [
        {
            "workload": [{"synthetic": "64x64"}],
            "format": ["csr", "relative", "viterbi"],
            "sparsity": [0.5, 0.9],
        },
        {"workload": [{"model": "digits"}], "format": ["csr", "nm"], "sparsity": [0.9]},
    ],
}


def rows_of(directory: Path) -> dict:
    with Store(directory) as store:
        return store.rows()


@pytest.fixture(scope="module")
def pool_run(tmp_path_factory):
    """MIXED on a local pool of 2 workers: (config path, sweep dir, stdout)."""
    tmp = tmp_path_factory.mktemp("pool")
    cfg = write_config(tmp / "mixed.yaml", MIXED)
    out = tmp / "sweep"
    env_before = os.environ.get(CODE_VERSION_ENV)
    os.environ[CODE_VERSION_ENV] = CODE
    try:
        code = main(["sweep", str(cfg), "--out", str(out), "--workers", "2", "--no-progress"])
    finally:
        if env_before is None:
            del os.environ[CODE_VERSION_ENV]
        else:
            os.environ[CODE_VERSION_ENV] = env_before
    assert code == 0
    return cfg, out


def test_a_failing_point_is_recorded_and_the_others_finish(pool_run):
    cfg, out = pool_run
    rows = rows_of(out)
    points = plan(load_config(cfg), CODE)
    assert set(rows) == {k for k, _ in points}
    by_format = {(p["format"], p["workload"].get("model")): rows[k] for k, p in points}
    nm = by_format[("nm", "digits")]  # 2:4 cannot reach 0.9
    assert nm.status == FAILED and nm.error_type.endswith("Error")
    assert "fixed at 0.5" in nm.error_message and "Traceback" in nm.traceback
    done = [r for r in rows.values() if r.status == DONE]
    assert len(done) == len(points) - 1
    for row in done:
        assert row.metrics["lossless"] is True
        bits = row.metrics["index_bits"] + row.metrics["value_bits"]
        assert row.metrics["total_bits"] == bits
        assert (
            row.metrics["index_bits_per_weight"]
            == row.metrics["index_bits"] / (row.metrics["weights"])
        )
    assert by_format[("csr", "digits")].metrics["weights"] == 300 * 64 + 100 * 300 + 10 * 100


def test_dask_cluster_gives_the_same_rows_as_the_pool(pool_run, tmp_path):
    from distributed import LocalCluster

    cfg, pool_out = pool_run
    out = tmp_path / "dask"
    with LocalCluster(
        processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None
    ) as cluster:
        argv = ["sweep", str(cfg), "--out", str(out), "--scheduler", cluster.scheduler_address]
        assert main([*argv, "--no-progress"]) == 0
    pool, dask = rows_of(pool_out), rows_of(out)
    assert set(pool) == set(dask)
    for key, row in pool.items():
        assert (dask[key].status, dask[key].metrics) == (row.status, row.metrics)
        assert (dask[key].error_type, dask[key].error_message) == (
            row.error_type,
            row.error_message,
        )


def crash_or_value(point):
    """A stage whose process dies at sparsity 0.7 (as if killed or crashed natively)."""
    if point["sparsity"] == 0.7:
        os._exit(3)
    return {"value": point["sparsity"]}


def test_a_killed_worker_fails_only_its_point(tmp_path):
    registry = {**STAGES, "crash": Stage("crash", crash_or_value)}
    base = {"workload": None, "format": "csr", "spec": {}, "quantize": None, "arch": {}}
    points = [{**base, "sparsity": s, "stages": ["crash"]} for s in (0.5, 0.6, 0.7, 0.8, 0.9)]
    items = [(point_key(p, CODE), p) for p in points]
    with Store(tmp_path) as store:
        summary = run_sweep(items, store, CODE, workers=2, progress=False, registry=registry)
        rows = store.rows()
    assert (summary.done, summary.failed, summary.pending) == (4, 1, 0)
    crashed = rows[items[2][0]]
    assert crashed.status == FAILED and crashed.error_type == "WorkerCrash"
    assert {rows[k].metrics["value"] for k, _ in items if k != items[2][0]} == {
        0.5,
        0.6,
        0.8,
        0.9,
    }


SLOW = {
    "stages": ["compress"],
    "grid": {
        "workload": [{"synthetic": "192x192"}],
        "workload.seed": [0, 1, 2, 3, 4, 5],
        "format": ["viterbi", "lbi"],
        "sparsity": [0.5, 0.9],
    },
}


def committed(db: Path) -> dict:
    """key -> (started, finished, worker, metrics text) of the committed rows."""
    if not db.exists():
        return {}
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        rows = con.execute("SELECT key, started, finished, worker, metrics FROM results")
        return {key: rest for key, *rest in rows}
    except sqlite3.OperationalError:
        return {}
    finally:
        con.close()


def start_sweep(cfg: Path, out: Path) -> subprocess.Popen:
    argv = [sys.executable, "-m", "codesign.experiments.cli.main", "sweep", str(cfg)]
    argv += ["--out", str(out), "--workers", "2", "--no-progress"]
    return subprocess.Popen(
        argv,
        cwd=ROOT,
        env={**os.environ, CODE_VERSION_ENV: CODE, **own_cache(cfg)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_for_rows(db: Path, proc: subprocess.Popen, at_least: int) -> None:
    deadline = time.monotonic() + 60
    while len(committed(db)) < at_least:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "sweep too slow"
        time.sleep(0.02)


def group_gone(pgid: int) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_ctrl_c_then_sigkill_then_resume_loses_and_recomputes_nothing(tmp_path):
    cfg = write_config(tmp_path / "slow.yaml", SLOW)
    out = tmp_path / "sweep"
    db = out / "results.sqlite"
    total = len(plan(load_config(cfg), CODE))

    proc = start_sweep(cfg, out)
    wait_for_rows(db, proc, 3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "interrupted" in err
    assert group_gone(proc.pid), "workers left behind after Ctrl-C"
    after_int = committed(db)
    assert 3 <= len(after_int) < total

    proc = start_sweep(cfg, out)
    wait_for_rows(db, proc, len(after_int) + 3)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    after_kill = committed(db)
    assert len(after_kill) < total
    assert {k: after_kill[k] for k in after_int} == after_int

    proc = start_sweep(cfg, out)
    stdout, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0
    assert f"({total - len(after_kill)} now, {len(after_kill)} from earlier runs)" in stdout
    final = committed(db)
    assert len(final) == total
    assert {k: final[k] for k in after_kill} == after_kill
    con = sqlite3.connect(db)
    count, distinct = con.execute("SELECT COUNT(*), COUNT(DISTINCT key) FROM results").fetchone()
    statuses = {s for (s,) in con.execute("SELECT status FROM results")}
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    assert count == distinct == total and statuses == {DONE}


def test_compress_and_prune_in_one_point_agree_on_storage(tmp_path):
    cfg = validate_config(
        {
            "stages": ["compress", "prune"],
            "base": {"workload": {"model": "digits"}, "finetune_epochs": 1},
            "grid": {"method": ["magnitude"], "sparsity": [0.9]},
        }
    )
    with Store(tmp_path) as store:
        run_sweep(plan(cfg, CODE), store, CODE, workers=1, progress=False)
        (row,) = store.rows().values()
    m = row.metrics
    assert row.status == DONE and row.point["format"] == "csr"
    # the same magnitude pruning stored in CSR by both stages; prune's names are prefixed
    assert m["prune.index_bits_per_weight"] == m["index_bits_per_weight"]
    assert m["prune.total_bits"] == m["total_bits"] and m["prune.kept_fraction"] == 0.1
    assert m["nnz"] == round(0.1 * m["weights"])
    assert m["dense_accuracy"] > 0.9 and 0 <= m["accuracy_pruned"] <= 1
    assert 0 <= m["accuracy_finetuned"] <= 1


def test_synth_points_count_cells_of_the_block(tmp_path):
    cfg = validate_config(
        {"stages": ["synth"], "base": {"format": "relative"}, "grid": {"arch.n_cols": [16, 256]}}
    )
    with Store(tmp_path) as store:
        items = plan(cfg, CODE)
        run_sweep(items, store, CODE, workers=1, progress=False)
        rows = store.rows()
    small, large = (rows[k].metrics for k, _ in items)
    for m in (small, large):
        assert m["cells"] == m["dff"] + m["logic_cells"] and m["dff"] > 0 and m["depth"] > 0
    # a wider column counter: more flip-flops and more logic
    assert large["dff"] > small["dff"] and large["cells"] > small["cells"]
