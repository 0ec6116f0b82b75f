"""Trained rank pruning and the lowrank format, against numpy SVD and loop references."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from threadpoolctl import threadpool_info, threadpool_limits

from codesign.models import lowrank
from codesign.models.csr import csr_bits
from codesign.models.format import FormatError
from codesign.models.lowrank import (
    LowrankFormat,
    budget_rank,
    energy_rank,
    factor_scales,
    truncated_svd,
)
from codesign.models.report import report_layer
from codesign.models.specs import LowrankSpec
from codesign.models.trp import TrpConfig, rank_prune_step, train_trp
from codesign.models.workloads import DigitsMLP, load_digits_mlp

SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LOWRANK = LowrankFormat()


@pytest.fixture(autouse=True, scope="module")
def single_thread_blas():
    """The matrices here are small: BLAS threads only add overhead on a shared machine."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def low_rank_matrix(rng: np.random.Generator, m: int, n: int, rank: int) -> np.ndarray:
    return rng.standard_normal((m, rank)) @ rng.standard_normal((rank, n))


def ref_energy_rank(w: np.ndarray, energy: float) -> int:
    """Grow r until the r largest σ² reach ``energy`` of Σσ² (at least 1)."""
    s = np.linalg.svd(w.astype(np.float64), compute_uv=False)
    total = float(np.sum(s**2))
    r, kept = 0, 0.0
    while r < s.size and (r == 0 or kept < energy * total * (1 - 1e-12)):
        kept += float(s[r] ** 2)
        r += 1
    return r


@SETTINGS
@given(
    m=st.integers(1, 30),
    n=st.integers(1, 30),
    true_rank=st.integers(1, 30),
    energy=st.sampled_from([0.5, 0.9, 0.97, 0.999, 1.0]),
    seed=st.integers(0, 2**32 - 1),
)
def test_energy_rank_against_svd(m, n, true_rank, energy, seed):
    w = low_rank_matrix(np.random.default_rng(seed), m, n, min(true_rank, m, n))
    s = np.linalg.svd(w, compute_uv=False)
    r = energy_rank(s, energy)
    assert r == ref_energy_rank(w, energy)
    assert np.sum(s[:r] ** 2) >= energy * np.sum(s**2) * (1 - 1e-12)
    assert r == 1 or np.sum(s[: r - 1] ** 2) < energy * np.sum(s**2)


def test_energy_rank_edges():
    assert energy_rank(np.array([3.0, 4.0 * 0 + 2.0, 1.0]), 9 / 14) == 1
    assert energy_rank(np.array([3.0, 2.0, 1.0]), 9 / 14 + 1e-9) == 2
    assert energy_rank(np.zeros(4), 0.9) == 1
    with pytest.raises(ValueError, match="energy"):
        energy_rank(np.ones(3), 0.0)


def test_rank_prune_step_shrinks_singular_values():
    """W_r − λ·U_r·V_rᵀ: the kept σ_i become σ_i − λ, the others 0, vectors kept."""
    rng = np.random.default_rng(2)
    u, _ = np.linalg.qr(rng.standard_normal((12, 6)))
    v, _ = np.linalg.qr(rng.standard_normal((9, 6)))
    sigma = np.array([5.0, 3.0, 2.0, 0.5, 0.2, 0.1])
    w = (u * sigma) @ v.T
    lam = 0.05
    out, r = rank_prune_step(w, 0.95, lam)
    assert r == ref_energy_rank(w, 0.95) == 3
    s = np.linalg.svd(out, compute_uv=False)
    np.testing.assert_allclose(s[:3], sigma[:3] - lam, atol=1e-10)
    np.testing.assert_allclose(s[3:], 0.0, atol=1e-10)
    np.testing.assert_allclose(out, (u[:, :3] * (sigma[:3] - lam)) @ v[:, :3].T, atol=1e-10)
    zero_lam, _ = rank_prune_step(w, 0.95, 0.0)
    np.testing.assert_allclose(zero_lam, (u[:, :3] * sigma[:3]) @ v[:, :3].T, atol=1e-10)
    assert np.linalg.norm(out) < np.linalg.norm(zero_lam)


@pytest.fixture(scope="module")
def mlp() -> DigitsMLP:
    return load_digits_mlp()


def test_short_trp_run(mlp):
    result = train_trp(mlp, TrpConfig(energy=0.9, epochs=3, period=20))
    full = [min(w.shape) for w in mlp.weights]
    assert all(r <= f for r, f in zip(result.ranks, full, strict=True))
    assert sum(result.ranks) < sum(full) / 2
    assert len(result.rank_history) == (3 * -(-len(mlp.split.y_train) // 64)) // 20
    assert result.deployed_accuracy >= mlp.dense_accuracy - 0.05
    assert result.deployed_accuracy >= result.svd_only_accuracy
    dense = sum(w.size for w in mlp.weights)
    params = 0
    for layer, w in zip(result.layers, mlp.weights, strict=True):
        m, n = w.shape
        assert layer.u.shape == (m, layer.rank) and layer.v.shape == (layer.rank, n)
        assert layer.factored == (layer.rank * (m + n) < m * n)
        params += layer.rank * (m + n) if layer.factored else m * n
    assert result.params == params and result.dense_params == dense
    assert result.param_reduction == pytest.approx(dense / params)
    assert result.mac_reduction == pytest.approx(dense / params)
    products = [(lay.u.astype(np.float64) @ lay.v).astype(np.float32) for lay in result.layers]
    biases = [lay.bias for lay in result.layers]
    assert DigitsMLP(products, biases, mlp.split).dense_accuracy == pytest.approx(
        result.deployed_accuracy, abs=1 / 450
    )
    assert result.to_dict()["layers"][0]["rank"] == result.ranks[0]


def test_trp_config_errors():
    for field, value in [("energy", 1.5), ("period", 0), ("lam", -1.0), ("epochs", 1.5)]:
        with pytest.raises(ValueError, match=f"TrpConfig.{field}"):
            TrpConfig(**{field: value})


# ---------------------------------------------------------------- lowrank format


@SETTINGS
@given(
    m=st.integers(1, 25),
    n=st.integers(1, 25),
    rank=st.integers(1, 25),
    dtype=st.sampled_from([np.float32, np.float64, np.float16]),
    seed=st.integers(0, 2**32 - 1),
)
def test_lowrank_roundtrip_and_sizes(m, n, rank, dtype, seed):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((m, n)).astype(dtype)
    if rank > min(m, n):
        with pytest.raises(FormatError, match="LowrankSpec.rank"):
            LOWRANK.encode(w, LowrankSpec(rank=rank))
        return
    enc = LOWRANK.encode(w, LowrankSpec(rank=rank))
    b = np.dtype(dtype).itemsize * 8
    assert enc.index_bits == 0 == enc.stream_bits("index")
    assert enc.value_bits == rank * (m + n) * b == enc.stream_bits("value")
    assert enc.stored_values == rank * (m + n)
    u = enc.streams["u"].data.reshape(m, rank)
    v = enc.streams["v"].data.reshape(rank, n)
    dec = LOWRANK.decode(enc)
    assert dec.weights.dtype == w.dtype and dec.mask.all()
    np.testing.assert_array_equal(
        dec.weights, (u.astype(np.float64) @ v.astype(np.float64)).astype(dtype)
    )
    wf = w.astype(np.float64)
    uu, s, vt = np.linalg.svd(wf, full_matrices=False)
    best = (uu[:, :rank] * s[:rank]) @ vt[:rank]
    tol = 1e-9 if dtype == np.float64 else (1e-4 if dtype == np.float32 else 5e-2)
    scale = max(float(np.abs(wf).max()), 1.0)
    np.testing.assert_allclose(
        u.astype(np.float64) @ v.astype(np.float64), best, atol=tol * scale * 10
    )


@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.9, 0.97])
@pytest.mark.parametrize("shape", [(30, 20), (100, 300), (10, 100)])
def test_lowrank_compress_budget(shape, sparsity):
    m, n = shape
    r = 0
    while (r + 1) * (m + n) <= (1 - sparsity) * m * n and r < min(m, n):
        r += 1
    w = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    if r == 0:
        with pytest.raises(FormatError, match="lowrank reaches sparsity"):
            LOWRANK.compress(w, sparsity)
        return
    assert budget_rank(shape, sparsity) == r
    ref, enc = LOWRANK.compress(w, sparsity)
    assert enc.extras["rank"] == r
    assert enc.stored_values <= (1 - sparsity) * m * n
    np.testing.assert_array_equal(LOWRANK.decode(enc).weights, ref)
    rep = report_layer("w", w, LOWRANK, LowrankSpec(), sparsity)
    assert rep.index_bits == 0 and rep.precision_bits == 32
    # Honest accounting: lowrank approximates the input, so it is compared with the input
    # (lossy unless the rank is full) and its CSR baseline is the input's magnitude
    # pruning at the same sparsity, never CSR of its own dense reconstruction.
    assert rep.lossless == bool(np.array_equal(ref, w))
    kept = m * n - round(sparsity * m * n)
    assert rep.csr_total_bits == csr_bits(shape, kept) + kept * 32
    assert rep.sparsity == pytest.approx(1 - r * (m + n) / (m * n))


def test_lowrank_energy_spec():
    w = low_rank_matrix(np.random.default_rng(4), 40, 30, 30) * np.geomspace(1, 1e-3, 30)
    enc = LOWRANK.encode(w, LowrankSpec(energy=0.9))
    assert enc.extras["rank"] == ref_energy_rank(w, 0.9)
    assert enc.extras["energy_kept"] >= 0.9


def test_lowrank_quantized_weights_store_quantized_factors():
    """Integer (--quantize) weights: the factors are stored at the weights' own width
    with one float32 scale each, so the comparison stays at that precision."""
    rng = np.random.default_rng(3)
    q = np.clip(np.rint(rng.standard_normal((30, 40)) * 30), -127, 127).astype(np.int8)
    enc = LOWRANK.encode(q, LowrankSpec(rank=6))
    assert enc.streams["u"].data.dtype == np.int8 and enc.streams["u"].width == 8
    assert enc.value_bits == 6 * (30 + 40) * 8 + 2 * 32 == enc.stream_bits("value")
    su, sv = factor_scales(enc)
    u = enc.streams["u"].data.reshape(30, 6).astype(np.float64)
    v = enc.streams["v"].data.reshape(6, 40).astype(np.float64)
    decoded = LOWRANK.decode(enc).weights
    assert decoded.dtype == np.float32
    np.testing.assert_allclose(decoded, (su * sv) * (u @ v), rtol=1e-6, atol=1e-4)
    assert enc.extras["relative_error"] < 0.9
    rep = report_layer("q", q, LOWRANK, LowrankSpec(), 0.5)
    assert rep.precision_bits == 8 and not rep.lossless
    assert rep.dense_bits == 30 * 40 * 8


def decaying(rng: np.random.Generator, m: int, n: int) -> np.ndarray:
    """An (m, n) matrix whose singular values fall geometrically (0.9^i), like a trained
    layer's."""
    k = min(m, n)
    u = np.linalg.qr(rng.standard_normal((m, k)))[0]
    v = np.linalg.qr(rng.standard_normal((n, k)))[0]
    return (u * 0.9 ** np.arange(k)) @ v.T


@pytest.mark.parametrize("rank", [8, 64, 128])
def test_randomized_svd_equals_the_full_svd_on_a_decaying_spectrum(rank):
    w = decaying(np.random.default_rng(rank), 1024, 1100)
    assert rank <= lowrank.RANDOMIZED_MAX_FRACTION * 1024
    u, s, vt = truncated_svd(w, rank)
    uu, ss, vvt = np.linalg.svd(w, full_matrices=False)
    np.testing.assert_allclose(s, ss[:rank], rtol=1e-9)
    best = (uu[:, :rank] * ss[:rank]) @ vvt[:rank]
    np.testing.assert_allclose((u * s) @ vt, best, rtol=0, atol=1e-8)
    np.testing.assert_allclose(u.T @ u, np.eye(rank), atol=1e-9)


def test_randomized_svd_on_a_flat_spectrum_is_within_one_percent_of_the_optimum():
    w = np.random.default_rng(0).standard_normal((1024, 1024))
    u, s, vt = truncated_svd(w, 100)
    optimum = np.sqrt((np.linalg.svd(w, compute_uv=False)[100:] ** 2).sum())
    error = np.linalg.norm(w - (u * s) @ vt)
    assert optimum <= error <= 1.01 * optimum


def test_blas_threads_follow_the_numba_threads(monkeypatch):
    seen = []
    qr = np.linalg.qr

    def recording(a, *args, **kwargs):
        seen.append(max(p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"))
        return qr(a, *args, **kwargs)

    monkeypatch.setattr(np.linalg, "qr", recording)
    before = numba.get_num_threads()
    w = np.random.default_rng(1).standard_normal((1024, 1024)).astype(np.float32)
    with threadpool_limits(limits=2, user_api="blas"):
        numba.set_num_threads(1)
        try:
            LOWRANK.compress(w, 0.95)
        finally:
            numba.set_num_threads(before)
    assert seen and set(seen) == {1}


def test_lowrank_errors():
    w = np.ones((4, 5), dtype=np.float32)
    with pytest.raises(FormatError, match="not both"):
        LOWRANK.compress(w, 0.5, LowrankSpec(rank=1))
