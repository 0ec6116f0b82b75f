"""Tests of codesign.models.workloads: synthetic weights, pruning, quantization, the digits
MLP (weights files: test_weight_files.py)."""

from __future__ import annotations

import logging
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from codesign.models.weight_files import load_weights
from codesign.models.workloads import (
    DigitsMLP,
    WeightsError,
    check_sparsity,
    check_weights,
    digits_cache_path,
    gaussian,
    laplacian,
    load_digits_mlp,
    magnitude_mask,
    magnitude_prune,
    magnitude_threshold,
    parse_shape,
    quantize_symmetric,
    synthetic,
)

shapes = st.tuples(st.integers(1, 24), st.integers(1, 24))
seeds = st.integers(0, 2**32 - 1)
sparsities = st.floats(0.0, 0.99)


# ---------------------------------------------------------------- validation


def test_check_weights_returns_input_unchanged():
    w = np.arange(6, dtype=np.int16).reshape(2, 3)
    assert check_weights(w) is w


@pytest.mark.parametrize(
    ("w", "message"),
    [
        ([[1.0, 2.0]], "w: expected a numpy ndarray, got list"),
        (np.ones((2, 2), dtype=bool), "w: dtype bool is not supported"),
        (np.ones((2, 2), dtype=complex), "w: dtype complex128 is not supported"),
        (np.ones((2, 2), dtype=object), "w: dtype object is not supported"),
        (np.ones(3), "w: expected a 2-D array (out_features, in_features), got shape (3,)"),
        (np.ones((2, 2, 2)), "got shape (2, 2, 2)"),
        (np.ones((0, 4)), "w: shape (0, 4) is empty; both dimensions must be >= 1"),
    ],
)
def test_check_weights_rejects(w, message):
    with pytest.raises(WeightsError, match=re.escape(message)):
        check_weights(w, name="w")


def test_check_weights_reports_non_finite_count_and_first_position():
    w = np.zeros((4, 5), dtype=np.float32)
    w[3, 0] = np.nan
    w[1, 2] = np.inf
    w[1, 4] = -np.inf
    message = "weights: 3 non-finite value(s) (NaN/inf); first at row 1, column 2"
    with pytest.raises(WeightsError, match=re.escape(message)):
        check_weights(w)


@pytest.mark.parametrize("s", [0, 0.0, 0.5, 0.99, np.float32(0.25)])
def test_check_sparsity_accepts(s):
    assert check_sparsity(s) == float(s)
    assert isinstance(check_sparsity(s), float)


@pytest.mark.parametrize("s", [-0.1, 1.0, 1.5, float("nan"), float("inf"), "0.5", None, True])
def test_check_sparsity_rejects(s):
    message = f"sparsity must be a finite number in [0, 1), got {s!r}"
    with pytest.raises(WeightsError, match=re.escape(message)):
        check_sparsity(s)


# ---------------------------------------------------------------- synthetic weights


@pytest.mark.parametrize("kind", ["gaussian", "laplacian"])
@given(shape=shapes, seed=seeds)
@settings(max_examples=25, deadline=None)
def test_synthetic_is_reproducible_by_seed(kind, shape, seed):
    w = synthetic(kind, shape, seed)
    assert w.dtype == np.float32
    assert w.shape == shape
    np.testing.assert_array_equal(w, synthetic(kind, list(shape), seed))


@pytest.mark.parametrize("make", [gaussian, laplacian])
def test_synthetic_differs_across_seeds(make):
    assert not np.array_equal(make((16, 16), 0), make((16, 16), 1))


def test_synthetic_spread_matches_parameters():
    assert np.std(gaussian((256, 256), 0, std=0.1)) == pytest.approx(0.1, rel=0.02)
    assert np.mean(np.abs(laplacian((256, 256), 0, scale=0.1))) == pytest.approx(0.1, rel=0.02)


def test_synthetic_unknown_kind_lists_kinds():
    message = "unknown synthetic kind 'uniform'; known kinds: gaussian, laplacian"
    with pytest.raises(WeightsError, match=re.escape(message)):
        synthetic("uniform", (2, 2), 0)


@pytest.mark.parametrize("shape", [(0, 5), (3,), (2, 3, 4), "4x4", (2.0, 3), (True, 3), (-1, 2)])
def test_synthetic_rejects_bad_shape(shape):
    message = f"shape must be two positive integers (out_features, in_features), got {shape!r}"
    with pytest.raises(WeightsError, match=re.escape(message)):
        gaussian(shape, 0)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: gaussian((2, 2), -1), "seed must be an integer in >= 0, got -1"),
        (lambda: gaussian((2, 2), 0, std=0), "std must be a finite number > 0, got 0"),
        (lambda: laplacian((2, 2), 0, scale=np.nan), "scale must be a finite number > 0"),
    ],
)
def test_synthetic_rejects_bad_parameters(call, message):
    with pytest.raises(WeightsError, match=re.escape(message)):
        call()


@pytest.mark.parametrize(
    ("text", "shape"), [("4096x4096", (4096, 4096)), ("300x64", (300, 64)), (" 10X1 ", (10, 1))]
)
def test_parse_shape(text, shape):
    assert parse_shape(text) == shape


@pytest.mark.parametrize("text", ["4096", "4096x", "ax3", "0x4", "4x4x4", "-2x3", "", "4 x 4"])
def test_parse_shape_rejects_malformed(text):
    message = f"shape {text!r} is malformed; expected 'MxN' with positive integers"
    with pytest.raises(WeightsError, match=re.escape(message)):
        parse_shape(text)


# ---------------------------------------------------------------- pruning


@given(shape=shapes, seed=seeds, sparsity=sparsities)
@example(shape=(7, 13), seed=0, sparsity=0.0)
@example(shape=(7, 13), seed=0, sparsity=0.99)
@settings(max_examples=60, deadline=None)
def test_global_prune_zeroes_exact_count_of_smallest(shape, seed, sparsity):
    w = laplacian(shape, seed)
    pruned = magnitude_prune(w, sparsity)
    zeroed = pruned == 0
    assert np.count_nonzero(zeroed) == round(sparsity * w.size)
    np.testing.assert_array_equal(pruned[~zeroed], w[~zeroed])
    if zeroed.any() and not zeroed.all():
        assert np.abs(w[zeroed]).max() <= np.abs(w[~zeroed]).min()


@given(shape=shapes, seed=seeds, sparsity=sparsities)
@example(shape=(7, 13), seed=0, sparsity=0.0)
@example(shape=(7, 13), seed=0, sparsity=0.99)
@settings(max_examples=60, deadline=None)
def test_row_prune_zeroes_exact_count_of_smallest_per_row(shape, seed, sparsity):
    w = gaussian(shape, seed)
    mask = magnitude_mask(w, sparsity, scope="row")
    per_row = round(sparsity * shape[1])
    assert (np.count_nonzero(~mask, axis=1) == per_row).all()
    for row, keep in zip(np.abs(w), mask, strict=True):
        if 0 < per_row < shape[1]:
            assert row[~keep].max() <= row[keep].min()


@pytest.mark.parametrize("scope", ["global", "row"])
@pytest.mark.parametrize("sparsity", [0.0, 0.25, 0.5, 0.9, 0.99])
def test_prune_count_on_a_layer(scope, sparsity):
    w = laplacian((64, 200), 3)
    zeros = np.count_nonzero(magnitude_prune(w, sparsity, scope) == 0)
    expected = round(sparsity * w.size) if scope == "global" else 64 * round(sparsity * 200)
    assert zeros == expected


def test_prune_breaks_ties_by_position():
    w = np.array([[3, -3, 3], [-3, 3, 1]], dtype=np.int8)
    np.testing.assert_array_equal(
        magnitude_prune(w, 0.5), np.array([[0, 0, 3], [-3, 3, 0]], dtype=np.int8)
    )
    np.testing.assert_array_equal(
        magnitude_mask(w, 0.5, scope="row"), [[False, False, True], [False, True, False]]
    )


def sorted_mask(w: np.ndarray, sparsity: float, scope: str) -> np.ndarray:
    """The definition of the pruning mask: a stable sort of |w| (float64), the first
    round(sparsity·count) positions of the matrix (or of each row) pruned."""
    mags = np.abs(w, dtype=np.float64)
    mask = np.ones(w.shape, dtype=bool)
    if scope == "global":
        order = np.argsort(mags, axis=None, kind="stable")
        mask.flat[order[: round(sparsity * w.size)]] = False
    else:
        order = np.argsort(mags, axis=1, kind="stable")
        np.put_along_axis(mask, order[:, : round(sparsity * w.shape[1])], False, axis=1)
    return mask


@given(
    shape=shapes,
    seed=seeds,
    sparsity=sparsities,
    levels=st.integers(1, 6),
    dtype=st.sampled_from([np.int8, np.int32, np.float16, np.float32, np.float64]),
    scope=st.sampled_from(["global", "row"]),
)
@example(shape=(3, 5), seed=0, sparsity=0.5, levels=1, dtype=np.float32, scope="row")
@example(shape=(4, 4), seed=1, sparsity=0.9, levels=1, dtype=np.int8, scope="global")
@settings(max_examples=150, deadline=None)
def test_prune_mask_is_the_stable_sort_mask_with_many_ties(
    shape, seed, sparsity, levels, dtype, scope
):
    rng = np.random.default_rng(seed)
    w = rng.integers(-levels, levels + 1, shape).astype(dtype)
    np.testing.assert_array_equal(
        magnitude_mask(w, sparsity, scope), sorted_mask(w, sparsity, scope)
    )


@pytest.mark.parametrize("scope", ["global", "row"])
@pytest.mark.parametrize("sparsity", [0.1, 0.5, 0.9])
def test_prune_mask_is_the_stable_sort_mask_on_a_layer(scope, sparsity):
    for w in (gaussian((96, 130), 4), quantize_symmetric(laplacian((96, 130), 5), 4)[0]):
        np.testing.assert_array_equal(
            magnitude_mask(w, sparsity, scope), sorted_mask(w, sparsity, scope)
        )


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int8, np.int32])
def test_prune_returns_new_array_of_same_dtype(dtype):
    w = (laplacian((8, 8), 1) * 1000).astype(dtype)
    before = w.copy()
    pruned = magnitude_prune(w, 0.5)
    assert pruned.dtype == dtype
    assert pruned is not w
    np.testing.assert_array_equal(w, before)


def test_prune_zeros_are_positive():
    pruned = magnitude_prune(-np.abs(gaussian((8, 8), 0)), 0.5)
    assert not np.signbit(pruned[pruned == 0]).any()


def test_prune_rejects_unknown_scope():
    with pytest.raises(WeightsError, match=re.escape("scope must be one of 'global', 'row'")):
        magnitude_prune(gaussian((4, 4), 0), 0.5, scope="column")


@given(shape=shapes, seed=seeds, sparsity=sparsities)
@settings(max_examples=40, deadline=None)
def test_threshold_separates_pruned_from_kept(shape, seed, sparsity):
    w = gaussian(shape, seed)
    threshold = magnitude_threshold(w, sparsity)
    mask = magnitude_mask(w, sparsity)
    mags = np.abs(w)
    assert (mags[~mask] <= threshold).all()
    assert (mags[mask] >= threshold).all()
    assert not mask[mags < threshold].any()


def test_threshold_is_inf_when_everything_is_pruned():
    assert magnitude_threshold(np.ones((1, 10)), 0.99) == np.inf
    assert magnitude_threshold(np.array([[0.5, -0.1]]), 0.0) == pytest.approx(0.1)


# ---------------------------------------------------------------- quantization


@given(shape=shapes, seed=seeds, bits=st.integers(2, 16), sparsity=sparsities)
@settings(max_examples=60, deadline=None)
def test_quantize_round_trip_within_half_step(shape, seed, bits, sparsity):
    w = magnitude_prune(laplacian(shape, seed), sparsity)
    q, scale = quantize_symmetric(w, bits)
    levels = 2 ** (bits - 1) - 1
    assert q.dtype == (np.int8 if bits <= 8 else np.int16)
    assert q.shape == w.shape
    assert np.abs(q.astype(np.int32)).max() <= levels
    peak = np.abs(w.astype(np.float64)).max()
    assert scale == (pytest.approx(peak / levels) if peak > 0 else 1.0)
    error = np.abs(q * scale - w.astype(np.float64))
    assert error.max() <= scale / 2 * (1 + 1e-9)
    assert (q[w == 0] == 0).all()


def test_quantize_all_zero_matrix():
    q, scale = quantize_symmetric(np.zeros((3, 4), dtype=np.float32), 8)
    assert scale == 1.0
    assert q.dtype == np.int8
    assert not q.any()


def test_quantize_maps_peak_to_largest_level():
    q, scale = quantize_symmetric(np.array([[-0.5, 0.25, 1.0]]), 4)
    np.testing.assert_array_equal(q, [[-4, 2, 7]])
    assert scale == pytest.approx(1.0 / 7)


@pytest.mark.parametrize("bits", [1, 17, 8.0, True])
def test_quantize_rejects_bits(bits):
    with pytest.raises(
        WeightsError, match=re.escape(f"bits must be an integer in 2..16, got {bits!r}")
    ):
        quantize_symmetric(np.ones((2, 2)), bits)


# ---------------------------------------------------------------- the digits MLP


@pytest.fixture(scope="session")
def digits(tmp_path_factory) -> tuple[DigitsMLP, Path, float]:
    cache_dir = tmp_path_factory.mktemp("codesign-cache")
    start = time.perf_counter()
    model = load_digits_mlp(cache_dir=cache_dir)
    return model, cache_dir, time.perf_counter() - start


def test_digits_mlp_layers_and_accuracy(digits):
    model, _, _ = digits
    assert model.layer_names == ["fc1", "fc2", "fc3"]
    assert [w.shape for w in model.weights] == [(300, 64), (100, 300), (10, 100)]
    assert [b.shape for b in model.biases] == [(300,), (100,), (10,)]
    assert all(w.dtype == np.float32 for w in model.weights + model.biases)
    assert len(model.split.y_test) == 450
    assert model.dense_accuracy >= 0.93


def test_digits_mlp_second_load_reads_cache(digits):
    model, cache_dir, first_seconds = digits
    assert digits_cache_path(cache_dir).is_file()
    start = time.perf_counter()
    again = load_digits_mlp(cache_dir=cache_dir)
    assert time.perf_counter() - start < first_seconds / 3
    for w, w_again in zip(model.weights + model.biases, again.weights + again.biases, strict=True):
        np.testing.assert_array_equal(w, w_again)
    assert again.dense_accuracy == model.dense_accuracy


def test_digits_cache_is_a_weights_file(digits):
    model, cache_dir, _ = digits
    loaded = load_weights(digits_cache_path(cache_dir))
    assert list(loaded) == ["fc1.weight", "fc2.weight", "fc3.weight"]
    np.testing.assert_array_equal(loaded["fc2.weight"], model.weights[1])


def test_digits_cache_dir_defaults_to_env_var(digits, tmp_path, monkeypatch):
    model, cache_dir, _ = digits
    monkeypatch.setenv("CODESIGN_CACHE", str(tmp_path))
    assert digits_cache_path() == tmp_path / digits_cache_path(cache_dir).name
    assert re.fullmatch(r"digits-mlp-[0-9a-f]{12}-sklearn[\w.]+\.npz", digits_cache_path().name)
    shutil.copy(digits_cache_path(cache_dir), digits_cache_path())
    np.testing.assert_array_equal(load_digits_mlp().weights[0], model.weights[0])


def test_digits_corrupt_cache_is_named_retrained_and_overwritten(digits, tmp_path, caplog):
    model, _, _ = digits
    path = digits_cache_path(tmp_path)
    path.write_bytes(b"not an npz archive")
    with caplog.at_level(logging.WARNING, logger="codesign"):
        retrained = load_digits_mlp(cache_dir=tmp_path)
    assert caplog.messages == [
        f"codesign: dropped the corrupt cache file {path} (not an .npz file (not a zip "
        f"archive)); recomputing it"
    ]
    assert retrained.dense_accuracy >= 0.93
    assert list(load_weights(path)) == ["fc1.weight", "fc2.weight", "fc3.weight"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_digits_evaluate(digits):
    model, _, _ = digits
    assert model.evaluate(model.weights) == model.dense_accuracy
    assert model.evaluate([np.zeros_like(w) for w in model.weights]) <= 0.2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda ws: ws[:2], "expected 3 weight matrices (fc1, fc2, fc3), got 2"),
        (lambda ws: [ws[0], ws[1][:, :-1], ws[2]], "layer fc2: weights shape (100, 299) does not"),
        (lambda ws: [ws[0], ws[1], ws[2][0]], "layer fc3: expected a 2-D array"),
    ],
)
def test_digits_evaluate_checks_layers(digits, change, message):
    model, _, _ = digits
    with pytest.raises(WeightsError, match=re.escape(message)):
        model.evaluate(change(model.weights))


def test_digits_finetune_recovers_pruned_accuracy(digits):
    model, _, _ = digits
    masks = [magnitude_mask(w, 0.9) for w in model.weights]
    pruned = [magnitude_prune(w, 0.9) for w in model.weights]
    pruned_accuracy = model.evaluate(pruned)
    tuned = model.finetune(pruned, masks, epochs=10, seed=0)
    assert [w.shape for w in tuned] == [w.shape for w in model.weights]
    assert all(w.dtype == np.float32 for w in tuned)
    for w, mask in zip(tuned, masks, strict=True):
        assert (w[~mask] == 0).all()
    assert model.evaluate(tuned) >= pruned_accuracy - 0.01
    assert model.evaluate(tuned) > pruned_accuracy


def test_digits_finetune_is_cached_under_its_inputs(digits, tmp_path, monkeypatch, caplog):
    model, _, _ = digits
    monkeypatch.setenv("CODESIGN_CACHE", str(tmp_path))
    masks = [magnitude_mask(w, 0.8) for w in model.weights]
    pruned = [magnitude_prune(w, 0.8) for w in model.weights]
    trained = []
    train = type(model)._train_masked

    def counting(self, *args):
        trained.append(args[2:])
        return train(self, *args)

    monkeypatch.setattr(type(model), "_train_masked", counting)
    fresh = model.finetune(pruned, masks, epochs=2, seed=1, cache=False)
    first = model.finetune(pruned, masks, epochs=2, seed=1)
    again = model.finetune(pruned, masks, epochs=2, seed=1)
    assert trained == [(2, 1), (2, 1)], "the third call reads the second's entry"
    for a, b, c in zip(fresh, first, again, strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    model.finetune(pruned, masks, epochs=2, seed=2)
    model.finetune(pruned, masks, epochs=3, seed=1)
    masks[2] = masks[2].copy()
    masks[2][0, 0] = not masks[2][0, 0]
    model.finetune(pruned, masks, epochs=2, seed=1)
    assert trained[2:] == [(2, 2), (3, 1), (2, 1)]
    entries = sorted((tmp_path / "finetuned").glob("digits-*.npz"))
    assert len(entries) == 4
    for entry in entries:
        entry.write_bytes(entry.read_bytes()[:100])
    with caplog.at_level(logging.WARNING, logger="codesign"):
        model.finetune(pruned, masks, epochs=2, seed=1)
    assert "dropped the corrupt cache file" in caplog.text
    assert trained[-1] == (2, 1)


def test_digits_finetune_checks_masks(digits):
    model, _, _ = digits
    masks = [np.ones(w.shape, dtype=bool) for w in model.weights]
    masks[1] = masks[1].astype(np.uint8)
    message = "layer fc2: mask must be a bool array of shape (100, 300), got uint8 array"
    with pytest.raises(WeightsError, match=re.escape(message)):
        model.finetune(model.weights, masks)
