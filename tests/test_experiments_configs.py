"""The named experiments (experiments/configs/exp*_*.yaml): each validates, plans the
expected points and labels its axes with units; a scaled-down experiment runs end to end
through `codesign sweep --report`; the metrics the experiments added to the stages
(decode cost, pruning ratio) and the workers' thread limits."""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import numpy as np
import pytest
import yaml

from codesign.experiments.cli.main import main
from codesign.experiments.reports.labels import COLUMNS, axis_label
from codesign.experiments.reports.results_table import names
from codesign.experiments.sweeps.config import (
    SweepConfigError,
    expand,
    load_config,
    plan,
    validate_config,
)
from codesign.experiments.sweeps.runner import run_sweep
from codesign.experiments.sweeps.stages import STAGES, Stage, run_compress
from codesign.experiments.sweeps.store import CODE_VERSION_ENV, DONE, Store, point_key
from codesign.models.workloads import magnitude_mask, synthetic

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "experiments" / "configs"
#: Points each named experiment plans (grid sizes worked out by hand).
EXPECTED_POINTS = {
    # 2 workloads x (5 formats x 5 rates + lbi x 5 + nm x 4) + prune: 3 + 2 x 3
    "exp1_index_bits": 2 * (5 * 5 + 5 + 4) + 3 + 6,
    "exp2_xor_efficiency": 3 * 5 * 13,
    # 2 workloads x 2 rates x 2 semirings x 4 ranks x 3 tiles + csr 2 x 2
    "exp3_lbi": 2 * 2 * 2 * 4 * 3 + 4,
    "exp4_darb": 3 * 10 + 5,
    "exp5_accuracy": 4 * 6 + 6 + 4 + 4 + 6,
    # relative 5 x 2, viterbi 5 x 3, xor 2 x 4 x 2, lbi 4 x 2, viterbi_search 2 x 2
    "exp6_decoder_area": 10 + 15 + 16 + 8 + 4,
}


@pytest.fixture(autouse=True)
def pinned_code(monkeypatch):
    monkeypatch.setenv(CODE_VERSION_ENV, "experiments-test")


def test_there_are_six_named_experiments():
    assert sorted(p.stem for p in CONFIGS.glob("exp[1-6]_*.yaml")) == sorted(EXPECTED_POINTS)


@pytest.mark.parametrize("name", sorted(EXPECTED_POINTS))
def test_each_experiment_validates_and_plans_its_points(name):
    config = load_config(CONFIGS / f"{name}.yaml")
    assert config["name"] == name and config["description"]
    points = plan(config, "x")
    assert len(points) == EXPECTED_POINTS[name]
    assert len(expand(config)) == len(points)  # no duplicate points
    assert config["plots"] and config["comparisons"]


def declared_units(config: dict) -> dict[str, str]:
    return {c["name"]: c["unit"] for c in config.get("columns", []) if "unit" in c}


@pytest.mark.parametrize("name", sorted(EXPECTED_POINTS))
def test_every_axis_of_every_experiment_has_a_name_and_unit(name):
    config = load_config(CONFIGS / f"{name}.yaml")
    units = declared_units(config)
    for i, plot in enumerate(config["plots"]):
        axes = [("x", plot["x"], plot.get("xlabel"))]
        labels = names(plot.get("ylabel")) or [None] * len(names(plot["y"]))
        axes += [("y", y, label) for y, label in zip(names(plot["y"]), labels, strict=True)]
        for axis, column, label in axes:
            shown = label or axis_label(column, units)
            assert shown.endswith(")"), f"{name} plot {i} {axis}={column}: no unit in {shown!r}"
            if column in COLUMNS and not label:
                entry = COLUMNS[column]
                assert shown == f"{entry.name} ({entry.unit})", f"{name} plot {i}: {shown!r}"


def test_every_swept_numeric_parameter_on_an_axis_is_named():
    for name in EXPECTED_POINTS:
        config = load_config(CONFIGS / f"{name}.yaml")
        for plot in config["plots"]:
            if plot["x"].startswith(("spec.", "arch.")):
                assert plot["x"] in COLUMNS, f"{name}: {plot['x']} has no name and unit"


# ---------------------------------------------------------------- end to end

TINY = {
    "name": "tiny",
    "description": "exp1 scaled down: formats against the rate, a claim table",
    "stages": ["compress"],
    "grid": [
        {
            "workload": [{"synthetic": "16x24"}],
            "format": ["csr", "relative", "viterbi"],
            "sparsity": [0.75, 0.9],
        },
        {
            "workload": [{"synthetic": "16x24"}],
            "sparsity": [0.75],
            "arch.index_units": [4],
            "zip": [{"format": "bmwm", "spec.b": 4}, {"format": "darb"}],
        },
        {"stages": [["prune"]], "method": ["magnitude"], "sparsity": [0.9], "finetune_epochs": [1]},
    ],
    "columns": [
        {
            "name": "index_vs_csr",
            "expr": "index_bits / baseline.index_bits - 1",
            "unit": "change vs CSR",
            "baseline": {"where": {"format": "csr", "stages": "compress"}, "match": ["sparsity"]},
        }
    ],
    "comparisons": [
        {
            "title": "Claim",
            "where": {"format": "viterbi"},
            "columns": ["sparsity", {"column": "index_vs_csr", "format": "+.1%"}],
            "reference": {"paper": "-85.2 %"},
        }
    ],
    "plots": [
        {
            "x": "sparsity",
            "y": "index_bits_per_weight",
            "group": "format",
            "where": {"stages": "compress"},
            "reference": [{"expr": "-(x * log2(x) + (1 - x) * log2(1 - x))", "label": "H(S)"}],
        }
    ],
}


def csr_bits(mask: np.ndarray) -> int:
    m, n = mask.shape
    nnz = int(mask.sum())
    return nnz * math.ceil(math.log2(n)) + (m + 1) * math.ceil(math.log2(nnz + 1))


def test_a_tiny_experiment_runs_end_to_end_with_one_command(tmp_path, capsys):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY, sort_keys=False))
    out = tmp_path / "out"
    argv = ["sweep", str(path), "--out", str(out), "--workers", "1", "--report", "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "wrote" in printed and "summary.md" in printed and "next: codesign report" not in printed
    with (out / "results.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 * 2 + 2 + 1 and {r["status"] for r in rows} == {DONE}
    w = synthetic("gaussian", (16, 24), 0)
    viterbi = [r for r in rows if r["format"] == "viterbi"]
    for r in viterbi:
        csr = csr_bits(magnitude_mask(w, float(r["sparsity"])))
        assert int(r["index_bits"]) == math.ceil(16 * 24 / 5)  # one input bit per 5 mask bits
        assert math.isclose(float(r["index_vs_csr"]), int(r["index_bits"]) / csr - 1)
    summary = (out / "summary.md").read_text()
    assert "- stages: compress, prune" in summary
    claim = summary.split("### Claim", 1)[1]
    for r in viterbi:
        assert f"| {r['sparsity']} | {float(r['index_vs_csr']):+.1%} | -85.2 % |" in claim
    prune = next(r for r in rows if r["stages"] == "prune")
    assert prune["format"] == "csr" and 0 < float(prune["accuracy_finetuned"]) <= 1
    assert math.isclose(float(prune["pruning_ratio"]), 10.0)
    assert (out / "plots" / "plot1-index_bits_per_weight-vs-sparsity.svg").is_file()
    # a second run reuses every point and rewrites the report
    assert main(argv) == 0
    assert "(0 now, 9 from earlier runs)" in capsys.readouterr().out


def test_report_flag_is_skipped_for_a_bad_config(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**TINY, "plots": [{"x": "sparsity"}]}))
    assert main(["sweep", str(path), "--out", str(tmp_path / "o"), "--report"]) == 2
    assert "plots[0]: 'y' is a required property" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------- stage metrics


def compress_point(fmt: str, sparsity: float, spec: dict, lanes: int | None) -> dict:
    base = {"workload": {"synthetic": "24x40"}, "format": fmt, "sparsity": sparsity}
    if lanes is not None:
        base["arch"] = {"index_units": lanes}
    (point,) = expand(
        validate_config({"stages": ["compress"], "base": base, "grid": {"spec": [spec]}})
    )
    return point


def test_decode_cost_of_csr_and_bmwm_against_a_direct_count():
    w = synthetic("gaussian", (24, 40), 0)
    mask = magnitude_mask(w, 0.75)
    row_nnz = mask.sum(axis=1)
    metrics = run_compress(compress_point("csr", 0.75, {}, 4))
    steps = [1 + math.ceil(k / 4) for k in row_nnz]  # pointer read, then 4 indices a step
    assert metrics["decode_steps"] == sum(steps)
    assert metrics["decode_max_steps"] == max(steps)
    assert metrics["decode_ops"] == int(row_nnz.sum()) + 24 + 1  # indices, pointers, ptr[0]
    assert math.isclose(metrics["lane_utilization"], row_nnz.sum() / (4 * sum(steps)))
    assert math.isclose(metrics["decode_steps_per_row"], sum(steps) / 24)
    assert math.isclose(metrics["pruning_ratio"], 4.0) and metrics["pruned_fraction"] == 0.75
    bmwm = run_compress(compress_point("bmwm", 0.75, {"b": 4}, None))  # default 8 lanes
    assert bmwm["decode_steps"] == 24 * math.ceil(10 / 8) and bmwm["decode_max_steps"] == 2
    assert bmwm["decode_ops"] == 24 * 10 and bmwm["decode_ops_per_kept"] == 1.0
    assert "decode_steps" not in run_compress(compress_point("relative", 0.75, {}, None))


def test_lanes_are_checked_and_read_only_by_formats_with_a_cost_model():
    with pytest.raises(SweepConfigError, match=r"arch.index_units \(decode index units\) must be"):
        compress_point("csr", 0.5, {}, 0)
    with pytest.raises(
        SweepConfigError, match="arch.index_units is read by no stage of this point"
    ):
        compress_point("relative", 0.5, {}, 4)


def blas_threads(point: dict) -> dict:
    from threadpoolctl import threadpool_info

    counts = [info["num_threads"] for info in threadpool_info()]
    return {"blas_threads": max(counts), "omp": os.environ.get("OMP_NUM_THREADS", "")}


def test_pool_workers_share_the_cores_with_blas_too(tmp_path):
    registry = {**STAGES, "threads": Stage("threads", blas_threads)}
    base = {"workload": None, "format": "csr", "spec": {}, "quantize": None, "arch": {}}
    points = [{**base, "sparsity": s, "stages": ["threads"]} for s in (0.1, 0.2)]
    items = [(point_key(p, "t"), p) for p in points]
    with Store(tmp_path) as store:
        run_sweep(items, store, "t", workers=2, progress=False, registry=registry)
        rows = store.rows()
    share = max(1, (os.cpu_count() or 1) // 2)
    for key, _ in items:
        assert rows[key].metrics == {"blas_threads": share, "omp": str(share)}
