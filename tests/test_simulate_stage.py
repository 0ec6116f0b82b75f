"""The sweep's ``simulate`` stage: its figures against independent counts, its arch
keys, its point checks, its quality measures, and the experiment 7/8 configs."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from codesign.experiments.sweeps.config import (
    SweepConfigError,
    expand,
    load_config,
    plan,
    validate_config,
)
from codesign.experiments.sweeps.stages import run_compress, run_simulate, sim_config
from codesign.models.workloads import load_digits_mlp
from codesign.sim.arch import Arch
from codesign.sim.run import STALLS

CONFIGS = Path(__file__).resolve().parent.parent / "experiments" / "configs"
TINY = {"synthetic": "16x32"}
#: Default energy table entries the independent energy counts use (sim/energy.py).
DRAM_64B_PJ, INT8_MULT_PJ, INT32_ADD_PJ = 1950.0, 0.2, 0.1


def points(**kw):
    return expand(validate_config({"stages": ["simulate"], **kw}))


def one_point(**base):
    (point,) = points(base={"synth": False, **base}, grid={"seed": [0]})
    return point


@pytest.fixture(scope="module")
def mlp():
    return load_digits_mlp()


# ---------------------------------------------------------------- figures


@pytest.mark.parametrize("fmt", ["csr", "relative"])
def test_tiny_point_figures_agree_with_independent_counts(fmt):
    arch = {"lanes": 4, "decoders": 2, "dram_bytes_per_cycle": 4}
    point = one_point(workload=TINY, format=fmt, sparsity=0.5, quantize=8, arch=arch)
    m = run_simulate(point)
    storage = run_compress(point)
    weights = 16 * 32

    assert m["storage"] == fmt and m["layers"] == 1 and m["weights"] == weights
    assert m["total_bits"] == storage["total_bits"]
    assert m["bits_per_weight"] == pytest.approx(storage["total_bits"] / weights)
    assert m["product_ok"] is True
    # 1 GHz clock: one cycle is a nanosecond; dense-equivalent work is m·n MACs.
    assert m["time_us"] == pytest.approx(m["cycles"] * 1e-3)
    assert m["gops"] == pytest.approx(2 * weights / m["cycles"])
    assert m["weights_per_s"] == pytest.approx(weights / (m["cycles"] * 1e-9))
    parts = [m[f"energy_{c}_pj"] for c in ("dram", "sram", "mac", "decoder")]
    assert m["energy_pj"] == pytest.approx(sum(parts))
    assert m["pj_per_mac"] == pytest.approx(m["energy_pj"] / weights)
    assert m["energy_dram_pj"] == pytest.approx(storage["total_bits"] / 64 * DRAM_64B_PJ)
    # every stored value is an operand: one 8-bit multiply and one 32-bit add each
    operands = storage["nnz"] if fmt == "csr" else storage["value_bits"] / 8
    assert m["energy_mac_pj"] == pytest.approx(operands * (INT8_MULT_PJ + INT32_ADD_PJ))
    # lane cycles: busy or stalled for one reason, fractions summing to one
    stalls = [m[k] for k in m if k.startswith("stall_")]
    assert len(stalls) == len(STALLS) and m["util_lanes"] + sum(stalls) == pytest.approx(1.0)
    for key in ("util_dram", "util_decoder", "util_lanes"):
        assert 0.0 <= m[key] <= 1.0
    # lower bounds: 4 lanes doing one MAC a cycle; 4 bytes a cycle from DRAM
    assert m["cycles"] >= math.ceil(operands / 4)
    assert m["cycles"] >= math.ceil(storage["total_bits"] / 8 / 4)
    assert m["analytic_cycles"] > 0
    assert m["gap"] == pytest.approx((m["cycles"] - m["analytic_cycles"]) / m["analytic_cycles"])
    # without synthesis no decoder reports an area
    assert "decoder_cells" not in m and "area_um2" not in m


def test_more_lanes_speed_up_a_lane_bound_layer_at_the_same_energy():
    base = {"workload": TINY, "format": "dense", "quantize": 8}
    slow = run_simulate(one_point(**base, arch={"lanes": 2, "decoders": 1}))
    fast = run_simulate(one_point(**base, arch={"lanes": 16, "decoders": 1}))
    assert slow["cycles"] >= 16 * 32 / 2
    assert fast["cycles"] < slow["cycles"] / 2
    assert fast["pj_per_mac"] == pytest.approx(slow["pj_per_mac"])


def test_layer_selects_one_matrix_of_a_weights_file(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "two.npz"
    np.savez(path, a=rng.normal(size=(8, 16)), b=rng.normal(size=(12, 20)))
    base = {"workload": {"weights": str(path)}, "format": "csr", "sparsity": 0.5}
    both = run_simulate(one_point(**base))
    only_b = run_simulate(one_point(**base, layer="b"))
    assert (both["layers"], both["weights"]) == (2, 8 * 16 + 12 * 20)
    assert (only_b["layers"], only_b["weights"]) == (1, 12 * 20)
    assert only_b["total_bits"] < both["total_bits"]


# ---------------------------------------------------------------- arch keys


def _doubled(field: dataclasses.Field) -> int | float:
    return field.default * 2


def test_every_arch_field_is_a_flat_arch_key_reaching_the_simulator():
    for field in dataclasses.fields(Arch):
        value = _doubled(field)
        point = one_point(workload=TINY, format="csr", arch={field.name: value})
        assert sim_config(point).arch == dataclasses.replace(Arch(), **{field.name: value})


def test_unknown_arch_key_is_rejected_naming_it():
    with pytest.raises(SweepConfigError) as err:
        points(base={"workload": TINY, "format": "csr"}, grid={"arch.lane": [8]})
    message = str(err.value)
    assert "arch.lane is read by no stage" in message
    assert "lanes" in message and "dram_bytes_per_cycle" in message


@pytest.mark.parametrize(
    ("arch", "message"),
    [
        ({"decoders": 3}, "arch.decoders = 3 must divide arch.lanes = 16"),
        ({"dram_bytes_per_cycle": 0}, "arch.dram.bytes_per_cycle = 0 is out of range"),
        ({"lanes": "many"}, "arch.lanes = 'many'; expected integer"),
    ],
)
def test_bad_arch_values_are_rejected_before_the_sweep(arch, message):
    with pytest.raises(SweepConfigError, match="stage simulate") as err:
        points(base={"workload": TINY, "format": "csr", "arch": arch}, grid={"seed": [0]})
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("base", "message"),
    [
        ({"workload": {"model": "digits"}, "layer": "fc4"}, "its layers: fc1, fc2, fc3"),
        ({"workload": TINY, "layer": "fc1"}, "its layers: gaussian16x32"),
        ({"workload": TINY, "format": "lowrank", "quality": True}, "format lowrank"),
        ({"workload": TINY, "energy_table": "/nonexistent.yaml"}, "nonexistent.yaml"),
        ({"format": "csr"}, "needs a workload"),
    ],
)
def test_bad_points_name_the_problem(base, message):
    with pytest.raises(SweepConfigError) as err:
        points(base={"format": "csr", **base}, grid={"seed": [0]})
    assert message in str(err.value)


# ---------------------------------------------------------------- quality


def _forward_accuracy(mlp, weights) -> float:
    a = mlp.split.x_test
    for i, (w, b) in enumerate(zip(weights, mlp.biases, strict=True)):
        a = a @ np.asarray(w, dtype=np.float64).T + b
        a = np.maximum(a, 0.0) if i < len(weights) - 1 else a
    return float(np.mean(a.argmax(axis=1) == mlp.split.y_test))


def _top_mass(w: np.ndarray, kept: int) -> float:
    return float(np.sort(np.abs(w), axis=None)[::-1][:kept].sum())


def test_quality_of_one_digits_layer_matches_an_independent_pruning(mlp):
    point = one_point(
        workload={"model": "digits"},
        layer="fc2",
        format="csr",
        sparsity=0.9,
        quality=True,
        finetune_epochs=0,
    )
    m = run_simulate(point)
    w = mlp.weights[1]
    threshold = np.sort(np.abs(w), axis=None)[::-1][w.size // 10 - 1]
    pruned = np.where(np.abs(w) >= threshold, w, 0)
    assert m["weights"] == w.size and m["layers"] == 1
    assert m["kept_fraction"] == pytest.approx(0.1)
    assert m["kept_mass_ratio"] == pytest.approx(1.0)
    expected = _forward_accuracy(mlp, [mlp.weights[0], pruned, mlp.weights[2]])
    assert m["accuracy_pruned"] == pytest.approx(expected)
    assert m["dense_accuracy"] == pytest.approx(_forward_accuracy(mlp, mlp.weights))
    assert m["accuracy_loss"] == pytest.approx(m["dense_accuracy"] - expected)
    assert "accuracy_finetuned" not in m


def test_structured_mask_keeps_less_mass_than_magnitude_pruning(mlp):
    point = one_point(
        workload={"model": "digits"},
        layer="fc3",
        format="nm",
        spec={"n": 1, "m": 4},
        sparsity=0.75,
        quality=True,
        finetune_epochs=1,
    )
    m = run_simulate(point)
    w = mlp.weights[2]
    groups = np.abs(w).reshape(w.shape[0], -1, 4)
    kept = groups.max(axis=2).sum()
    assert m["kept_fraction"] == pytest.approx(0.25)
    assert m["kept_mass_ratio"] == pytest.approx(kept / _top_mass(w, w.size // 4), rel=1e-5)
    assert m["kept_mass_ratio"] < 1.0
    assert m["accuracy_loss"] == pytest.approx(m["dense_accuracy"] - m["accuracy_finetuned"])
    assert 0.0 <= m["accuracy_finetuned"] <= 1.0


def test_quality_of_a_synthetic_layer_has_no_accuracy():
    point = one_point(workload=TINY, format="block", spec={"b": 4}, sparsity=0.75, quality=True)
    m = run_simulate(point)
    assert m["kept_fraction"] == pytest.approx(0.25)
    assert 0.0 < m["kept_mass_ratio"] <= 1.0
    assert not any(k.startswith("accuracy") or k == "dense_accuracy" for k in m)


# ---------------------------------------------------------------- configs


@pytest.mark.parametrize(
    ("name", "count"),
    [("exp7_accelerator", 468), ("exp8_digits", 73), ("exp8_4096", 13)],
)
def test_experiment_configs_validate(name, count):
    config = load_config(CONFIGS / f"{name}.yaml")
    planned = plan(config, "code")
    assert len(planned) == count
    assert all(p["stages"] == ["simulate"] for _, p in planned)
    formats = {p["format"] for _, p in planned}
    assert {"csr", "viterbi", "xor", "lbi", "dense"} <= formats
    masks = {p["spec"]["mask_format"] for _, p in planned if p["format"] == "xor"}
    assert masks == {"csr", "viterbi"}
    if name.startswith("exp8"):
        assert all(p["quality"] and p["arch"] == {} for _, p in planned)
    if name == "exp8_digits":
        assert {p["layer"] for _, p in planned} == {"fc1", "fc2", "fc3"}
