"""The encoded-layer cache: entries read back equal to what was computed, keyed by
everything that changes an encoding, corrupt entries dropped and recomputed, and a
sweep point's stages encoding each layer once."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest

from codesign.models import disk_cache, encoded_cache
from codesign.models.disk_cache import entry_path
from codesign.models.encoded_cache import cache_key, compress_layer
from codesign.models.registry import FORMATS, get_format
from codesign.models.specs import CsrSpec
from codesign.models.workloads import synthetic

SPECS = {
    "lbi": {"rank": 2, "tile_rows": 8, "tile_cols": 8},
    "bmwm": {"b": 8},
    "xor": {"n_in": 4, "n_out": 24, "value_bits": 8},
    "viterbi": {"n_out": 5, "n_ff": 6},
    "nm": {"n": 1, "m": 2},
}
SPARSITY = {"dense": None, "bmwm": 0.875, "nm": 0.5, "lowrank": 0.7}
WEIGHTS = synthetic("gaussian", (40, 48), 3)


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CODESIGN_CACHE", str(tmp_path))
    return tmp_path / "encoded"


class Counting:
    """Counts the calls of a format's ``compress`` (patched on its class)."""

    def __init__(self, monkeypatch, name: str) -> None:
        self.calls = 0
        cls = type(get_format(name))
        original = cls.compress

        def compress(fmt, *args, **kw):
            self.calls += 1
            return original(fmt, *args, **kw)

        monkeypatch.setattr(cls, "compress", compress)


def assert_same_encoding(a, b) -> None:
    (ref_a, enc_a), (ref_b, enc_b) = a, b
    assert ref_a.dtype == ref_b.dtype
    np.testing.assert_array_equal(ref_a, ref_b)
    for field in dataclasses.fields(enc_a):
        if field.name != "streams":
            assert getattr(enc_a, field.name) == getattr(enc_b, field.name), field.name
    assert list(enc_a.streams) == list(enc_b.streams)
    for name, stream in enc_a.streams.items():
        other = enc_b.streams[name]
        assert (stream.width, stream.role, stream.data.dtype) == (
            other.width,
            other.role,
            other.data.dtype,
        )
        np.testing.assert_array_equal(stream.data, other.data)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize("quantize", [8, None])
def test_an_entry_reads_back_what_was_computed(fmt, quantize, monkeypatch, cache_dir):
    spec = get_format(fmt).spec_type(**SPECS.get(fmt, {}))
    args = (WEIGHTS, fmt, spec, SPARSITY.get(fmt, 0.8), quantize)
    fresh = compress_layer(*args, cache=False)
    counting = Counting(monkeypatch, fmt)
    stored = compress_layer(*args)
    read = compress_layer(*args)
    assert counting.calls == 1, "the second call reads the entry"
    assert len(list(cache_dir.glob(f"{fmt}-*.npz"))) == 1
    assert_same_encoding(fresh, stored)
    assert_same_encoding(fresh, read)
    decoded = get_format(fmt).decode(read[1])
    np.testing.assert_array_equal(decoded.weights, get_format(fmt).decode(fresh[1]).weights)


def test_every_part_of_the_key_makes_its_own_entry(monkeypatch, cache_dir):
    counting = Counting(monkeypatch, "csr")
    changed = synthetic("gaussian", (40, 48), 4)
    calls = [
        (WEIGHTS, "csr", CsrSpec(), 0.8, None),
        (changed, "csr", CsrSpec(), 0.8, None),
        (WEIGHTS.astype(np.float64), "csr", CsrSpec(), 0.8, None),
        (WEIGHTS, "csr", CsrSpec(), 0.7, None),
        (WEIGHTS, "csr", CsrSpec(), None, None),
        (WEIGHTS, "csr", CsrSpec(), 0.8, 8),
        (WEIGHTS, "csr", CsrSpec(), 0.8, 4),
        (WEIGHTS, "csr", CsrSpec(col_bits=8), 0.8, None),
    ]
    for args in calls:
        compress_layer(*args)
    assert counting.calls == len(calls)
    assert len(list(cache_dir.glob("csr-*.npz"))) == len(calls)
    for args in calls:
        compress_layer(*args)
    assert counting.calls == len(calls)
    # a change to the code of codesign.models starts new entries
    monkeypatch.setattr(encoded_cache, "code_version", lambda: "another version")
    compress_layer(*calls[0])
    assert counting.calls == len(calls) + 1


def test_the_code_version_covers_the_models_sources(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    first = disk_cache.code_version.__wrapped__(tmp_path)
    (tmp_path / "a.py").write_text("x = 2\n")
    assert disk_cache.code_version.__wrapped__(tmp_path) != first
    assert len(disk_cache.code_version()) == 16


def test_a_dense_reference_is_stored_whole_and_a_sparse_one_by_positions(cache_dir):
    import zipfile

    compress_layer(WEIGHTS, "csr", CsrSpec(), 0.9)
    compress_layer(WEIGHTS, "csr", CsrSpec(), None)
    names = {}
    for path in cache_dir.glob("*.npz"):
        with zipfile.ZipFile(path) as z:
            names[path] = {n.removesuffix(".npy") for n in z.namelist()}
    kinds = sorted("reference" in n for n in names.values())
    assert kinds == [False, True]
    assert all("meta" in n for n in names.values())


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), "not a whole .npz"),
        (lambda p: p.write_bytes(b"not a zip file"), "not a whole .npz"),
        (lambda p: p.write_bytes(b""), "not a whole .npz"),
    ],
    ids=["truncated", "garbage", "empty"],
)
def test_a_corrupt_entry_is_dropped_named_and_recomputed(damage, reason, caplog, cache_dir):
    args = (WEIGHTS, "csr", CsrSpec(), 0.8, 8)
    expected = compress_layer(*args)
    (path,) = cache_dir.glob("*.npz")
    damage(path)
    with caplog.at_level(logging.WARNING, logger="codesign"):
        again = compress_layer(*args)
    assert_same_encoding(expected, again)
    assert f"dropped the corrupt cache file {path}" in caplog.text
    assert reason in caplog.text
    assert path.is_file(), "recomputed and stored again"
    caplog.clear()
    compress_layer(*args)
    assert caplog.text == ""


def test_an_entry_of_another_key_or_with_wrong_sizes_is_dropped(caplog):
    args = (WEIGHTS, "csr", CsrSpec(), 0.8, 8)
    other = (WEIGHTS, "csr", CsrSpec(), 0.7, 8)
    path = entry_path("encoded", cache_key(*args), "csr")
    compress_layer(*args)
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    np.savez(entry_path("encoded", cache_key(*other), "csr"), **arrays)
    with caplog.at_level(logging.WARNING, logger="codesign"):
        assert compress_layer(*other)[1].nnz > compress_layer(*args)[1].nnz
    assert "its key differs from the file name's" in caplog.text
    arrays["stream.values"] = arrays["stream.values"][:-1]
    np.savez(path, **arrays)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="codesign"):
        compress_layer(*args)
    assert "its value streams hold" in caplog.text


def test_a_sweep_point_with_quality_encodes_each_layer_once(monkeypatch):
    # experiment 8's stages: simulate, then the quality measure of the same layer
    from codesign.experiments.sweeps.config import expand, validate_config
    from codesign.experiments.sweeps.stages import run_simulate

    base = {
        "workload": {"synthetic": "64x96"},
        "format": "viterbi",
        "spec": {"n_out": 5, "n_ff": 6},
        "sparsity": 0.9,
        "quantize": 8,
        "quality": True,
        "synth": False,
    }
    config = {"stages": ["simulate"], "base": base, "grid": {"seed": [0]}}
    (point,) = expand(validate_config(config))
    counting = Counting(monkeypatch, "viterbi")
    first = run_simulate(point)
    assert counting.calls == 1
    assert 0 < first["kept_mass_ratio"] <= 1
    again = run_simulate(point)
    assert counting.calls == 1, "a second run of the point reads the encoding back"
    timed = ("sim_wall_s", "encode_s")
    assert {k: v for k, v in again.items() if k not in timed} == {
        k: v for k, v in first.items() if k not in timed
    }
