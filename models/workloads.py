"""Workloads: the weight matrices the project compresses.

A layer's weight matrix ``W`` has shape ``(out_features, in_features)``: the accelerator
computes ``Y = W @ X``. Weights come from three sources:

* synthetic matrices (:func:`gaussian`, :func:`laplacian`, :func:`synthetic`), seeded;
* files: ``.npz`` or ``.safetensors`` model files, read by
  :mod:`codesign.models.weight_files`;
* a small trained model (:func:`load_digits_mlp`): a 64-300-100-10 ReLU MLP on
  scikit-learn's shipped digits dataset, trained once and cached.

Pruning (:func:`magnitude_prune`) and quantization (:func:`quantize_symmetric`) turn them
into the sparse, integer matrices the formats encode. Every bad input raises
:class:`WeightsError` (a ``ValueError``) with a one-line message naming the problem.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import numbers
import re
from collections.abc import Callable, Sequence
from importlib.metadata import version
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from codesign.files import drop_corrupt, replacing
from codesign.limits import Need, check_memory
from codesign.models.disk_cache import (
    array_digest,
    code_version,
    default_cache_dir,
    entry_path,
    read_entry,
    write_entry,
)
from codesign.models.errors import PrecisionError, WeightsError
from codesign.models.weight_files import read_arrays

#: Notes on stderr (a quantization that rounds some kept weights to 0).
LOG = logging.getLogger("codesign")

if TYPE_CHECKING:
    from sklearn.neural_network import MLPClassifier


# ---------------------------------------------------------------- validation


def check_weights(w: Any, name: str = "weights") -> np.ndarray:
    """Check that ``w`` is a weight matrix and return it unchanged.

    A weight matrix is a 2-D ``np.ndarray`` of shape ``(out_features, in_features)``,
    both >= 1, with an integer or floating dtype (not bool, complex or object) and
    only finite values. ``name`` starts every error message.
    """
    if not isinstance(w, np.ndarray):
        raise WeightsError(f"{name}: expected a numpy ndarray, got {type(w).__name__}")
    if not _is_numeric(w.dtype):
        raise WeightsError(
            f"{name}: dtype {w.dtype} is not supported; need an integer or floating dtype"
        )
    if w.ndim != 2:
        raise WeightsError(
            f"{name}: expected a 2-D array (out_features, in_features), got shape {w.shape}"
        )
    if w.size == 0:
        raise WeightsError(f"{name}: shape {w.shape} is empty; both dimensions must be >= 1")
    _check_finite(w, name)
    return w


def check_sparsity(s: Any) -> float:
    """Check a sparsity (fraction of weights zeroed, a number in [0, 1)); return it as float."""
    ok = isinstance(s, numbers.Real) and not isinstance(s, bool) and math.isfinite(s)
    if not ok or not 0.0 <= s < 1.0:
        raise WeightsError(f"sparsity must be a finite number in [0, 1), got {s!r}")
    return float(s)


def _is_numeric(dtype: np.dtype) -> bool:
    return np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)


def _check_finite(w: np.ndarray, name: str) -> None:
    if not np.issubdtype(w.dtype, np.floating):
        return
    bad = ~np.isfinite(w)
    count = int(np.count_nonzero(bad))
    if count:
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise WeightsError(
            f"{name}: {count} non-finite value(s) (NaN/inf); first at row {row}, column {col}"
        )


def _check_int(name: str, value: Any, lo: int, hi: int | None = None) -> int:
    allowed = f"{lo}..{hi}" if hi is not None else f">= {lo}"
    is_int = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not is_int or value < lo or (hi is not None and value > hi):
        raise WeightsError(f"{name} must be an integer in {allowed}, got {value!r}")
    return int(value)


def _check_shape(shape: Any) -> tuple[int, int]:
    ok = (
        isinstance(shape, (tuple, list))
        and len(shape) == 2
        and all(isinstance(d, numbers.Integral) and not isinstance(d, bool) for d in shape)
        and all(d >= 1 for d in shape)
    )
    if not ok:
        raise WeightsError(
            f"shape must be two positive integers (out_features, in_features), got {shape!r}"
        )
    return int(shape[0]), int(shape[1])


def _check_positive(name: str, value: Any) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value <= 0:
        raise WeightsError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


# ---------------------------------------------------------------- synthetic weights


def _generated_shape(shape: Any) -> tuple[int, int]:
    """The checked shape of synthetic weights, refused (:class:`ResourceError`) before
    drawing when its float64 draws and float32 copy (12 bytes per weight) would exceed
    the memory limit."""
    rows, cols = _check_shape(shape)
    need = Need(12 * rows * cols, "float64 draws kept as float32", "the --synthetic shape")
    check_memory(f"drawing synthetic weights of shape {rows}x{cols}", [need])
    return rows, cols


def gaussian(shape: tuple[int, int], seed: int, std: float = 0.05) -> np.ndarray:
    """Normal(0, ``std``) weights of ``shape`` (out, in), float32, from ``default_rng(seed)``:
    standard normal float32 samples (numpy's float32 ziggurat, a third faster than drawing
    float64 and rounding) scaled by ``std``."""
    rows, cols = _generated_shape(shape)
    rng = np.random.default_rng(_check_int("seed", seed, 0))
    w = rng.standard_normal((rows, cols), dtype=np.float32)
    w *= np.float32(_check_positive("std", std))
    return w


def laplacian(shape: tuple[int, int], seed: int, scale: float = 0.05) -> np.ndarray:
    """Laplace(0, ``scale``) weights of ``shape`` (out, in), float32, from ``default_rng(seed)``.

    Heavier-tailed than :func:`gaussian`, closer to the weights of trained layers.
    """
    rows, cols = _generated_shape(shape)
    rng = np.random.default_rng(_check_int("seed", seed, 0))
    return rng.laplace(0.0, _check_positive("scale", scale), (rows, cols)).astype(np.float32)


_SYNTHETIC: dict[str, Callable[[tuple[int, int], int], np.ndarray]] = {
    "gaussian": gaussian,
    "laplacian": laplacian,
}


def synthetic(kind: str, shape: tuple[int, int], seed: int) -> np.ndarray:
    """Synthetic float32 weights of ``shape`` (out, in): ``kind`` is "gaussian" or "laplacian"."""
    try:
        make = _SYNTHETIC[kind]
    except (KeyError, TypeError):
        raise WeightsError(
            f"unknown synthetic kind {kind!r}; known kinds: {', '.join(_SYNTHETIC)}"
        ) from None
    return make(shape, seed)


_SHAPE_RE = re.compile(r"(\d+)[xX](\d+)")


def parse_shape(text: str) -> tuple[int, int]:
    """Parse an "MxN" string such as "4096x4096" into ``(M, N)`` = (out, in), both >= 1."""
    match = _SHAPE_RE.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None or min(int(g) for g in match.groups()) < 1:
        raise WeightsError(
            f"shape {text!r} is malformed; expected 'MxN' with positive integers, e.g. '4096x4096'"
        )
    return int(match.group(1)), int(match.group(2))


# ---------------------------------------------------------------- pruning


def magnitude_mask(w: np.ndarray, sparsity: float, scope: str = "global") -> np.ndarray:
    """Bool mask of ``w``'s shape, True = kept, that zeroes the smallest-|w| weights.

    ``scope="global"`` prunes exactly ``round(sparsity * w.size)`` weights of the whole
    matrix; ``scope="row"`` prunes ``round(sparsity * n_cols)`` weights of every row.
    ``round`` is Python's (halves go to the even count). Ties in |w| are broken by
    position: among equal |w| the earlier (row-major) weight is pruned first — the mask
    of a stable sort of |w|, found in O(m·n) with one selection (``np.partition``).
    """
    w = check_weights(w)
    sparsity = check_sparsity(sparsity)
    try:
        make = _MASKS[scope]
    except (KeyError, TypeError):
        raise WeightsError(
            f"scope must be one of {', '.join(map(repr, _MASKS))}; got {scope!r}"
        ) from None
    return make(w, sparsity)


def _magnitudes(w: np.ndarray) -> np.ndarray:
    """|w| in a dtype that orders and ties exactly as |w| does: the weights' own
    floating dtype (abs is exact), float64 for integers (no overflow of abs(-128))."""
    if np.issubdtype(w.dtype, np.floating):
        return np.abs(w)
    return np.abs(w, dtype=np.float64)


def _global_mask(w: np.ndarray, sparsity: float) -> np.ndarray:
    pruned = round(sparsity * w.size)
    if pruned in (0, w.size):
        return np.full(w.shape, pruned == 0)
    mags = _magnitudes(w).reshape(-1)
    mags.partition(pruned)  # a temporary of its own: selected in place
    first_kept = mags[pruned]
    # |w| >= t without a second |w| array
    mask = (w >= first_kept) | (w <= -first_kept)
    extra = int(np.count_nonzero(mask)) - (w.size - pruned)
    if extra:
        flat = w.reshape(-1)
        ties = np.flatnonzero((flat == first_kept) | (flat == -first_kept))
        mask.reshape(-1)[ties[:extra]] = False
    return mask


def _row_mask(w: np.ndarray, sparsity: float) -> np.ndarray:
    mags = _magnitudes(w)
    n = mags.shape[1]
    pruned = round(sparsity * n)
    if pruned in (0, n):
        return np.full(mags.shape, pruned == 0)
    first_kept = np.partition(mags, pruned, axis=1)[:, pruned, np.newaxis]
    mask = mags > first_kept
    ties = mags == first_kept
    tie_counts = np.count_nonzero(ties, axis=1)
    pruned_ties = pruned - (n - np.count_nonzero(mask, axis=1) - tie_counts)
    some = np.flatnonzero(pruned_ties > 0)
    mask |= ties
    if some.size:
        order = np.cumsum(ties[some], axis=1)
        mask[some] &= ~(ties[some] & (order <= pruned_ties[some, np.newaxis]))
    return mask


_MASKS: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "global": _global_mask,
    "row": _row_mask,
}


def magnitude_prune(w: np.ndarray, sparsity: float, scope: str = "global") -> np.ndarray:
    """A copy of ``w`` (same shape and dtype) with its smallest-|w| weights set to +0.

    Which weights are zeroed is given by :func:`magnitude_mask` with the same arguments.
    """
    mask = magnitude_mask(w, sparsity, scope)
    return np.where(mask, w, np.zeros((), dtype=w.dtype))


def magnitude_threshold(w: np.ndarray, sparsity: float) -> float:
    """The smallest |w| kept by global magnitude pruning at ``sparsity`` (units of ``w``).

    Every weight with a smaller magnitude is pruned; weights equal to it may be pruned
    by the tie rule of :func:`magnitude_mask`. ``inf`` when every weight is pruned.
    """
    w = check_weights(w)
    pruned = round(check_sparsity(sparsity) * w.size)
    if pruned == w.size:
        return math.inf
    return float(np.partition(_magnitudes(w).ravel(), pruned)[pruned])


# ---------------------------------------------------------------- quantization


def quantize_symmetric(w: np.ndarray, bits: int) -> tuple[np.ndarray, float]:
    """Uniform symmetric quantization of ``w`` to signed ``bits``-bit integers (2..16).

    Returns ``(q, scale)``: ``q`` has ``w``'s shape, dtype int8 for ``bits <= 8`` else
    int16, values in ``[-(2**(bits-1) - 1), 2**(bits-1) - 1]``; ``scale`` (units of ``w``
    per integer step) is ``max|w| / (2**(bits-1) - 1)``, or 1.0 when ``w`` is all zero.
    ``q * scale`` approximates ``w`` within ``scale / 2``; zeros stay exactly zero.
    """
    w = check_weights(w)
    levels = 2 ** (_check_int("bits", bits, 2, 16) - 1) - 1
    peak = float(np.max(np.abs(w, dtype=np.float64)))
    scale = peak / levels if peak > 0 else 1.0
    q = np.clip(np.rint(w.astype(np.float64) / scale), -levels, levels)
    return q.astype(np.int8 if bits <= 8 else np.int16), scale


MOST_LOST = 0.5
"""The largest fraction of the kept weights a quantization may turn into 0.

A symmetric b-bit quantization always rounds the weights below half its step to 0 (a
dense gaussian layer loses about 1.5 % of its weights at 8 bits, a quarter at 4 bits),
and the report shows the sparsity then reached. When it zeroes most of the weights the
pruning keeps, its step is set by a few outliers (or the width is too small for the
layer): that is no longer a quantization of the layer, and it is refused."""


def kept_count(w: np.ndarray, sparsity: float | None) -> int:
    """How many weights of ``w`` pruning to ``sparsity`` keeps (its non-zeros when
    ``sparsity`` is None): the weights a quantization must not zero."""
    nonzero = int(np.count_nonzero(w))
    if sparsity is None:
        return nonzero
    return min(nonzero, w.size - round(check_sparsity(sparsity) * w.size))


def lost_weights_error(
    what: str,
    option: str,
    lost: int,
    kept: int,
    w: np.ndarray,
    scale: float,
    bits: int,
    lost_at: Callable[[int], int],
    noun: str = "kept weights",
    remedy: str = "or prune them (a higher sparsity), or remove the outliers",
) -> PrecisionError:
    """The refusal of a ``bits``-bit quantization (``what``; its width set by ``option``,
    ``--quantize `` or ``value_bits=``) turning ``lost`` of the ``kept`` kept weights of
    ``w`` into 0 with step ``scale``. ``lost_at(b)``: how many of them a ``b``-bit
    quantization would lose; the width it suggests is the smallest above ``bits`` that
    the same rule (:func:`too_many_lost`) passes. ``noun`` names what was kept (a side
    tensor's ``non-zero values``) and ``remedy`` the other ways out."""
    need = next((b for b in range(bits + 1, 17) if not too_many_lost(lost_at(b), kept)), None)
    fix = (
        f"{option}{need} is the smallest width keeping at least {1 - MOST_LOST:.0%} of them"
        if need
        else f"no width up to 16 bits keeps {1 - MOST_LOST:.0%} of them"
    )
    return PrecisionError(
        f"{what} turns {lost:,} of the {kept:,} {noun} into 0 (more than "
        f"{MOST_LOST:.0%}): its step {scale:.3g} "
        f"(the largest |w|, {float(np.abs(w).max()):.3g}, over {2 ** (bits - 1) - 1} levels) "
        f"rounds them away; {fix}, {remedy}"
    )


def too_many_lost(lost: int, kept: int) -> bool:
    """Whether a quantization turning ``lost`` of ``kept`` kept weights into 0 is refused:
    more than :data:`MOST_LOST` of them."""
    return lost > MOST_LOST * kept


def quantize_kept(
    w: np.ndarray, bits: int, sparsity: float | None = None, name: str | None = None
) -> np.ndarray:
    """:func:`quantize_symmetric` of ``w`` to ``bits``, refused (:class:`PrecisionError`
    naming the count and the smallest width that passes) when it turns most of the
    weights that pruning to ``sparsity`` keeps (:func:`kept_count`) into 0
    (:func:`too_many_lost`). Fewer lost weights pass; with a layer ``name`` their
    count is logged (a warning of the ``codesign`` logger, on stderr)."""
    kept = kept_count(w, sparsity)

    def lost_at(b: int) -> int:
        return kept - min(kept, int(np.count_nonzero(quantize_symmetric(w, b)[0])))

    q, scale = quantize_symmetric(w, bits)
    lost = kept - min(kept, int(np.count_nonzero(q)))
    if too_many_lost(lost, kept):
        raise lost_weights_error(
            f"--quantize {bits}", "--quantize ", lost, kept, w, scale, bits, lost_at
        )
    if lost and name is not None:
        LOG.warning(
            "codesign: note: layer %s: --quantize %d turns %s of the %s weights the pruning "
            "keeps into 0 (%.2g%%); the reached sparsity counts them",
            name,
            bits,
            f"{lost:,}",
            f"{kept:,}",
            100 * lost / kept,
        )
    return q


# ---------------------------------------------------------------- the digits MLP

DIGITS_LAYER_SIZES = (64, 300, 100, 10)
"""Units per layer of the digits MLP: 8x8 pixel inputs, two ReLU hidden layers, 10 classes."""

DIGITS_LAYER_NAMES = ("fc1", "fc2", "fc3")

_MLP_PARAMS: dict[str, Any] = {
    "hidden_layer_sizes": DIGITS_LAYER_SIZES[1:-1],
    "activation": "relu",
    "solver": "adam",
    "alpha": 1e-4,
    "batch_size": "auto",
    "learning_rate_init": 1e-3,
    "max_iter": 200,
    "random_state": 0,
}
_SPLIT_PARAMS: dict[str, Any] = {"test_size": 0.25, "random_state": 0}
_FINETUNE_BATCH = 64


class DigitsSplit(NamedTuple):
    """The fixed stratified split of the digits dataset (75 % train, 25 % held out).

    ``x_*`` are float64 arrays of shape (samples, 64), pixel intensities scaled to
    [0, 1]; ``y_*`` are int arrays of shape (samples,) with the digit 0..9.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def digits_split() -> DigitsSplit:
    """Load scikit-learn's shipped digits dataset (no download) and split it."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        data.data / 16.0, data.target, stratify=data.target, **_SPLIT_PARAMS
    )
    return DigitsSplit(x_train, y_train, x_test, y_test)


class DigitsMLP:
    """A trained 64-300-100-10 ReLU MLP on the digits dataset.

    Attributes:
        layer_names: ``["fc1", "fc2", "fc3"]``.
        weights: float32 arrays of shape (out, in): (300, 64), (100, 300), (10, 100).
        biases: float32 arrays of shape (out,).
        split: the :class:`DigitsSplit` the model was trained and is evaluated on.
        dense_accuracy: held-out accuracy (fraction in [0, 1]) of ``weights``.
    """

    def __init__(self, weights: list[np.ndarray], biases: list[np.ndarray], split: DigitsSplit):
        self.layer_names = list(DIGITS_LAYER_NAMES)
        self.weights = weights
        self.biases = biases
        self.split = split
        self.dense_accuracy = self.evaluate(weights)

    def evaluate(self, weights: Sequence[np.ndarray]) -> float:
        """Held-out accuracy (fraction in [0, 1]) with ``weights`` (out, in) per layer.

        A numpy forward pass in float64 with the trained biases; the prediction is the
        arg-max of the output logits.
        """
        self._check_layers(weights)
        activations = self.split.x_test
        for i, (w, b) in enumerate(zip(weights, self.biases, strict=True)):
            activations = activations @ w.T + b
            if i < len(weights) - 1:
                activations = np.maximum(activations, 0.0)
        return float(np.mean(np.argmax(activations, axis=1) == self.split.y_test))

    def finetune(
        self,
        weights: Sequence[np.ndarray],
        masks: Sequence[np.ndarray],
        epochs: int = 10,
        seed: int = 0,
        cache: bool = True,
    ) -> list[np.ndarray]:
        """Masked fine-tuning: retrain ``weights`` with the pruning ``masks`` held fixed.

        ``masks`` are bool arrays of the weights' shapes, True = kept. Training is
        scikit-learn's own adam loop (``MLPClassifier.partial_fit``) on shuffled
        minibatches of 64 training samples for ``epochs`` passes, starting from
        ``weights * masks``; after every ``partial_fit`` call the masked-out weights are
        set back to zero and the biases back to their trained values (so
        :meth:`evaluate` scores what was trained). ``seed`` fixes the batch order. It
        runs on one BLAS thread: its small products gain nothing from more threads on
        an idle machine and are many times slower with them on a loaded one (10 epochs:
        about 1 s on one thread, up to 18 s on the default threads of a busy 2-core
        machine).

        With ``cache`` the result is kept on disk (:mod:`codesign.models.disk_cache`,
        folder ``finetuned``) under the digests of ``weights``, ``masks``, the model's
        biases and training data, ``epochs``, ``seed``, scikit-learn's version and the
        code version, and read back by a later call with the same key.

        Returns new float32 weights (out, in) that are zero wherever a mask is False.
        """
        self._check_layers(weights)
        self._check_masks(masks)
        epochs = _check_int("epochs", epochs, 0)
        seed = _check_int("seed", seed, 0)
        if not cache:
            return self._train_masked(weights, masks, epochs, seed)
        key = {
            "weights": [array_digest(w) for w in weights],
            "masks": [array_digest(m) for m in masks],
            "biases": [array_digest(b) for b in self.biases],
            "train": [array_digest(self.split.x_train), array_digest(self.split.y_train)],
            "epochs": epochs,
            "seed": seed,
            "sklearn": version("scikit-learn"),
            "models": code_version(),
        }
        path = entry_path("finetuned", key, "digits")
        tuned = read_entry(path, key, self._tuned)
        if tuned is None:
            tuned = self._train_masked(weights, masks, epochs, seed)
            write_entry(path, key, dict(zip(self.layer_names, tuned, strict=True)), {})
        return tuned

    def _train_masked(
        self, weights: Sequence[np.ndarray], masks: Sequence[np.ndarray], epochs: int, seed: int
    ) -> list[np.ndarray]:
        from threadpoolctl import threadpool_limits

        rng = np.random.default_rng(seed)
        pruned = [~mask.T for mask in masks]
        n_train = len(self.split.y_train)
        with threadpool_limits(limits=1, user_api="blas"):
            clf = self._classifier(weights, pruned, seed)
            for _ in range(epochs):
                order = rng.permutation(n_train)
                for start in range(0, n_train, _FINETUNE_BATCH):
                    batch = order[start : start + _FINETUNE_BATCH]
                    clf.partial_fit(self.split.x_train[batch], self.split.y_train[batch])
                    self._pin(clf, pruned)
        return [np.ascontiguousarray(coef.T, dtype=np.float32) for coef in clf.coefs_]

    def _tuned(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> list[np.ndarray]:
        """The weights of a fine-tuning cache entry (raises ``ValueError`` when they are
        not float32 arrays of the layers' shapes)."""
        tuned = [arrays[name] for name in self.layer_names]
        if [(w.shape, w.dtype) for w in tuned] != [
            (w.shape, np.dtype(np.float32)) for w in self.weights
        ]:
            raise ValueError("its weights are not float32 arrays of the layers' shapes")
        return tuned

    def _classifier(
        self, weights: Sequence[np.ndarray], pruned: list[np.ndarray], seed: int
    ) -> MLPClassifier:
        from sklearn.neural_network import MLPClassifier

        clf = MLPClassifier(**{**_MLP_PARAMS, "random_state": seed})
        x_head, y_head = self.split.x_train[:_FINETUNE_BATCH], self.split.y_train[:_FINETUNE_BATCH]
        clf.partial_fit(x_head, y_head, classes=np.unique(self.split.y_train))
        for coef, w in zip(clf.coefs_, weights, strict=True):
            coef[...] = w.T
        self._pin(clf, pruned)
        return clf

    def _pin(self, clf: MLPClassifier, pruned: list[np.ndarray]) -> None:
        for coef, intercept, cut, bias in zip(
            clf.coefs_, clf.intercepts_, pruned, self.biases, strict=True
        ):
            coef[cut] = 0.0
            intercept[...] = bias

    def _check_layers(self, weights: Sequence[np.ndarray]) -> None:
        self._check_count(weights, "weight matrices")
        for name, w, ref in zip(self.layer_names, weights, self.weights, strict=True):
            check_weights(w, name=f"layer {name}")
            if w.shape != ref.shape:
                raise WeightsError(
                    f"layer {name}: weights shape {w.shape} does not match the model's {ref.shape}"
                )

    def _check_masks(self, masks: Sequence[np.ndarray]) -> None:
        self._check_count(masks, "masks")
        for name, mask, ref in zip(self.layer_names, masks, self.weights, strict=True):
            ok = isinstance(mask, np.ndarray) and mask.dtype == bool and mask.shape == ref.shape
            if not ok:
                got = (
                    f"{mask.dtype} array of shape {mask.shape}"
                    if isinstance(mask, np.ndarray)
                    else type(mask).__name__
                )
                raise WeightsError(
                    f"layer {name}: mask must be a bool array of shape {ref.shape}, got {got}"
                )

    def _check_count(self, arrays: Sequence[Any], what: str) -> None:
        if len(arrays) != len(self.layer_names):
            raise WeightsError(
                f"expected {len(self.layer_names)} {what} ({', '.join(self.layer_names)}), "
                f"got {len(arrays)}"
            )


def digits_cache_path(cache_dir: str | Path | None = None) -> Path:
    """The cache file of the trained digits MLP in ``cache_dir``.

    ``cache_dir`` defaults to ``$CODESIGN_CACHE`` if set, else ``~/.cache/sparse-codesign``.
    The file name holds a digest of the hyper-parameters and the scikit-learn version.
    """
    if cache_dir is None:
        cache_dir = default_cache_dir()
    key = json.dumps({"mlp": _MLP_PARAMS, "split": _SPLIT_PARAMS}, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return Path(cache_dir) / f"digits-mlp-{digest}-sklearn{version('scikit-learn')}.npz"


def load_digits_mlp(cache_dir: str | Path | None = None) -> DigitsMLP:
    """The trained digits MLP: read from the cache, or trained (a few seconds) and cached.

    The cache (see :func:`digits_cache_path`) is an ``.npz`` with ``fc1.weight`` (out, in),
    ``fc1.bias``, ... in float32; a missing, corrupt or mismatched cache file is
    retrained and overwritten.
    """
    path = digits_cache_path(cache_dir)
    split = digits_split()
    params = _read_cache(path)
    if params is None:
        params = _train(split)
        _write_cache(path, *params)
    return DigitsMLP(*params, split)


def _layer_shapes() -> list[tuple[int, int]]:
    return [(n_out, n_in) for n_in, n_out in pairwise(DIGITS_LAYER_SIZES)]


def _train(split: DigitsSplit) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Train the MLP on one BLAS thread (as :meth:`DigitsMLP.finetune`: its small
    products only lose time to more threads, minutes of it on a loaded machine)."""
    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        clf = MLPClassifier(**_MLP_PARAMS).fit(split.x_train, split.y_train)
    weights = [np.ascontiguousarray(coef.T, dtype=np.float32) for coef in clf.coefs_]
    biases = [intercept.astype(np.float32) for intercept in clf.intercepts_]
    return weights, biases


def _read_cache(path: Path) -> tuple[list[np.ndarray], list[np.ndarray]] | None:
    if not path.is_file():
        return None
    try:
        arrays = read_arrays(path)
        weights = [arrays[f"{name}.weight"] for name in DIGITS_LAYER_NAMES]
        biases = [arrays[f"{name}.bias"] for name in DIGITS_LAYER_NAMES]
    except (WeightsError, KeyError) as exc:
        drop_corrupt(path, str(exc).removeprefix(f"{path}: "))
        return None
    shapes_ok = [w.shape for w in weights] == _layer_shapes() and all(
        b.shape == (w.shape[0],) for w, b in zip(weights, biases, strict=True)
    )
    if not shapes_ok:
        drop_corrupt(path, "layer shapes differ from the digits MLP's")
        return None
    if not all(np.isfinite(a).all() for a in weights + biases):
        drop_corrupt(path, "NaN or infinite parameters")
        return None
    return weights, biases


def _write_cache(path: Path, weights: list[np.ndarray], biases: list[np.ndarray]) -> None:
    arrays = {}
    for name, w, b in zip(DIGITS_LAYER_NAMES, weights, biases, strict=True):
        arrays[f"{name}.weight"] = w
        arrays[f"{name}.bias"] = b
    with replacing(path) as tmp:
        np.savez(tmp, **arrays)
