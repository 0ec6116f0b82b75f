"""Experiments 7 and 8: the Pareto front, the per-layer selection under a quality
bound (hand-made candidates), and the files written from a results store."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from codesign.experiments.studies.codesign import (
    Candidate,
    QualityBound,
    decoder_params,
    main,
    pareto_front,
    quality_bound,
    select,
    select_layers,
)
from codesign.experiments.sweeps.store import DONE, FAILED, Outcome, Store

DIGITS = {"model": "digits"}
BIG = {"synthetic": "4096x4096", "distribution": "gaussian", "seed": 0}
LOSS = QualityBound("accuracy_loss", 0.01, upper=True)
MASS = QualityBound("kept_mass_ratio", 0.9, upper=False)


def candidate(
    fmt="csr",
    spec=None,
    pj=10.0,
    gops=50.0,
    bits=2.0,
    workload=DIGITS,
    layer="fc1",
    quantize=8,
    **quality,
):
    point = {
        "workload": workload,
        "layer": layer,
        "format": fmt,
        "spec": spec or {},
        "sparsity": 0.9,
        "quantize": quantize,
        "arch": {},
    }
    metrics = {"pj_per_mac": pj, "gops": gops, "bits_per_weight": bits, **quality}
    return Candidate(point, metrics)


# ---------------------------------------------------------------- Pareto front


def test_pareto_front_of_hand_made_points():
    points = [(10, 5.0), (20, 6.0), (15, 7.0), (20, 6.0), (5, 5.0), (30, 9.0), (30, 10.0)]
    # (15, 7) is beaten by (20, 6); (5, 5) by (10, 5); (30, 10) by (30, 9);
    # the two equal (20, 6) points stay together.
    assert pareto_front(points) == [0, 1, 3, 5]


def _dominates(a, b):
    return a[0] >= b[0] and a[1] <= b[1] and a != b


@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), max_size=25))
def test_pareto_front_is_exactly_the_undominated_points(points):
    front = pareto_front(points)
    for i, p in enumerate(points):
        beaten = any(_dominates(q, p) for q in points)
        assert (i in front) == (not beaten)
    # every point off the front is dominated by a point on it
    for i, p in enumerate(points):
        if i not in front:
            assert any(_dominates(points[j], p) for j in front)


# ---------------------------------------------------------------- selection


def test_selection_respects_the_bound_and_picks_each_objective():
    cheap_but_lossy = candidate("viterbi", pj=5.0, gops=30.0, accuracy_loss=0.05)
    frugal = candidate("bmwm", {"b": 16}, pj=8.0, gops=40.0, accuracy_loss=0.0)
    fast = candidate("csr", pj=12.0, gops=90.0, accuracy_loss=0.01)
    faster_but_lossy = candidate("block", pj=20.0, gops=120.0, accuracy_loss=0.02)
    rows = [cheap_but_lossy, frugal, fast, faster_but_lossy]
    s = select("digits fc1", rows, LOSS)
    assert s.feasible == [frugal, fast]
    assert s.by_energy is frugal
    assert s.by_throughput is fast  # a loss equal to the bound meets it


def test_mass_bound_is_a_lower_bound():
    low = candidate("viterbi", pj=5.0, kept_mass_ratio=0.85, workload=BIG, layer=None)
    high = candidate("csr", pj=9.0, kept_mass_ratio=0.95, workload=BIG, layer=None)
    edge = candidate("darb", pj=7.0, kept_mass_ratio=0.9, workload=BIG, layer=None)
    s = select("4096x4096", [low, high, edge], MASS)
    assert s.by_energy is edge and s.feasible == [high, edge]


def test_energy_ties_go_to_throughput_then_bits_then_label():
    a = candidate("csr", pj=8.0, gops=40.0, bits=2.0, accuracy_loss=0.0)
    b = candidate("bitmap", pj=8.0, gops=60.0, bits=3.0, accuracy_loss=0.0)
    assert select("l", [a, b], LOSS).by_energy is b
    c = candidate("relative", {"r": 3}, pj=8.0, gops=60.0, bits=1.5, accuracy_loss=0.0)
    assert select("l", [a, b, c], LOSS).by_energy is c
    d = candidate("darb", pj=8.0, gops=60.0, bits=1.5, accuracy_loss=0.0)
    for order in itertools.permutations([a, b, c, d]):
        # equal on every figure: the label "darb + int8 …" sorts before "relative + …"
        assert select("l", list(order), LOSS).by_energy is d


def test_throughput_ties_go_to_energy_then_bits():
    a = candidate("csr", pj=9.0, gops=80.0, bits=2.0, accuracy_loss=0.0)
    b = candidate("bitmap", pj=7.0, gops=80.0, bits=3.0, accuracy_loss=0.0)
    c = candidate("darb", pj=7.0, gops=80.0, bits=1.0, accuracy_loss=0.0)
    assert select("l", [a, b], LOSS).by_throughput is b
    assert select("l", [a, b, c], LOSS).by_throughput is c


def test_nothing_feasible_and_missing_quality():
    lossy = candidate(pj=5.0, accuracy_loss=0.2)
    unmeasured = candidate("bitmap", pj=4.0)
    nan = candidate("relative", pj=3.0, accuracy_loss=float("nan"))
    s = select("l", [lossy, unmeasured, nan], LOSS)
    assert s.feasible == [] and s.by_energy is None and s.by_throughput is None


def test_layers_get_their_own_bound():
    digits = [
        candidate(layer="fc1", accuracy_loss=0.0, kept_mass_ratio=1.0),
        candidate("bitmap", layer="fc2", pj=3.0, accuracy_loss=0.005, kept_mass_ratio=0.5),
    ]
    big = [candidate(workload=BIG, layer=None, kept_mass_ratio=0.95)]
    selections = select_layers(digits + big, max_loss=0.01, min_mass=0.9)
    assert [s.layer for s in selections] == ["digits fc1", "digits fc2", "4096x4096"]
    assert [str(s.bound) for s in selections] == [
        "accuracy_loss ≤ 0.01",
        "accuracy_loss ≤ 0.01",
        "kept_mass_ratio ≥ 0.9",
    ]
    assert selections[1].by_energy is digits[1]  # its mass ratio does not matter
    assert quality_bound([]) == MASS


def test_labels_name_mask_values_and_the_distinguishing_parameters():
    xor = candidate("xor", {"n_in": 8, "n_out": 80, "n_s": 2, "value_bits": 8,
                            "mask_format": "viterbi"})  # fmt: skip
    assert xor.storage == "viterbi + xor 8-bit"
    assert decoder_params(xor) == "n_out=80 n_s=2"
    plain = candidate("viterbi", {"n_in": 1, "n_out": 5}, quantize=None)
    other = candidate("viterbi", {"n_in": 2, "n_out": 5})
    assert plain.storage == "viterbi + float32"
    assert decoder_params(plain) == "n_in=1 n_out=5"  # nothing differs: every set field
    assert decoder_params(plain, [plain, other]) == "n_in=1"
    assert candidate("dense").mask_format == "none (dense)"


# ---------------------------------------------------------------- files


def _store(directory, candidates, failed=()):
    store = Store(directory)
    items = [(f"k{i}", c) for i, c in enumerate([*candidates, *failed])]
    store.set_sweep({"name": "t", "stages": ["simulate"]}, [(k, c.point) for k, c in items], "v")
    for i, (key, c) in enumerate(items):
        status = DONE if i < len(candidates) else FAILED
        error = None if status == DONE else ("E", "boom", "")
        store.record(key, c.point, "v", Outcome(status, c.metrics, error, 0.0, 1.0, "w"))
    store.close()


def test_select_writes_tables_and_figure_from_stores(tmp_path, capsys):
    digits = [
        candidate("viterbi", {"n_out": 10}, pj=5.0, gops=30.0, accuracy_loss=0.005,
                  accuracy_finetuned=0.97, decoder_cells=400),
        candidate("csr", pj=9.0, gops=60.0, accuracy_loss=0.0, accuracy_finetuned=0.98),
        candidate("dense", pj=60.0, gops=20.0, bits=8.0, accuracy_loss=0.0),
    ]  # fmt: skip
    broken = [candidate("lbi", pj=1.0, gops=999.0, accuracy_loss=0.0)]
    big = [
        candidate("darb", workload=BIG, layer=None, pj=7.0, gops=70.0, kept_mass_ratio=0.91),
        candidate("block", workload=BIG, layer=None, pj=6.0, gops=90.0, kept_mass_ratio=0.5),
    ]
    _store(tmp_path / "a", digits, failed=broken)
    _store(tmp_path / "b", big)
    out = tmp_path / "out"
    assert main(["select", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(out)]) == 0
    text = (out / "codesign.md").read_text()
    fc1 = text.split("## digits fc1")[1].split("<details>")[0]
    assert "3 of 3 candidates meet it" in fc1
    assert "| best by energy | viterbi | int8 | n_out=10 | 5 | 30 |" in fc1
    assert "| best by throughput | csr | int8 | - | 9 | 60 |" in fc1
    assert "| dense reference | none (dense) | int8 |" in fc1
    assert "lbi" not in text  # failed points are no candidates
    large = text.split("## 4096x4096")[1]
    assert "kept_mass_ratio ≥ 0.9" in large and "1 of 2 candidates" in large
    assert "| best by throughput | darb |" in large
    assert (out / "codesign.png").stat().st_size > 0 and (out / "codesign.svg").is_file()
    assert "<details>" not in capsys.readouterr().out


def test_pareto_writes_the_front(tmp_path):
    rows = [
        candidate("csr", pj=10.0, gops=50.0, bits=2.0, layer=None),
        candidate("viterbi", pj=5.0, gops=30.0, bits=1.0, layer=None),
        candidate("dense", pj=60.0, gops=40.0, bits=8.0, layer=None),
        candidate("csr", pj=10.0, gops=80.0, bits=2.0, workload=BIG, layer=None),
    ]
    rows[0].point["arch"] = {"lanes": 8}
    _store(tmp_path, rows)
    assert main(["pareto", str(tmp_path)]) == 0
    text = (tmp_path / "pareto.md").read_text()
    assert "## digits: 2 of 3 points on the front" in text
    assert "| csr + int8 | - | lanes=8 | 50 | 10 | 2 |" in text
    assert "dense" not in text
    assert "## 4096x4096: 1 of 1 points" in text
    assert (tmp_path / "pareto.png").stat().st_size > 0


def test_a_store_without_simulate_metrics_is_refused(tmp_path):
    bare = Candidate(candidate().point, {"total_bits": 10})
    _store(tmp_path, [bare])
    with pytest.raises(ValueError, match="lacks pj_per_mac, gops, bits_per_weight"):
        main(["pareto", str(tmp_path)])
