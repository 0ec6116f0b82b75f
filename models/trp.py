"""Trained rank pruning (TRP, Xu et al., IJCAI 2020) of the digits MLP.

Training is scikit-learn's own adam loop (``MLPClassifier.partial_fit`` on shuffled
minibatches, the way :meth:`codesign.models.workloads.DigitsMLP.finetune` drives it), started
from the trained MLP. Every ``period`` steps each weight matrix W (out, in) is replaced
by a rank-pruning step (:func:`rank_prune_step`):

1. truncated SVD at energy e: W_r = U_r·diag(σ_1..σ_r)·V_rᵀ with r = the smallest rank
   keeping e of Σσ² (:func:`codesign.models.lowrank.energy_rank`);
2. the nuclear-norm sub-gradient step: W ← W_r − λ·U_r·V_rᵀ. ∂‖W‖_* ∋ U_r·V_rᵀ, so this
   is a descent step of unit size on λ·‖W‖_*: it **shrinks** every kept singular value
   by λ (σ_i → σ_i − λ, singular vectors unchanged; for σ_i < λ the value becomes
   λ − σ_i with the vector's sign flipped, as a plain sub-gradient step does).

Training then continues from the projected weights (the adam moments are kept). After
the last epoch every layer is cut (plain truncated SVD) at its final rank — the rank of
its last rank-pruning step, or its energy rank when training took fewer than ``period``
steps — and deployed as two thin layers
U (out, r), V (r, in) (:func:`codesign.models.lowrank.truncated_factors`) when that is smaller
(r·(out + in) < out·in), else as the dense rank-r matrix. Biases are trained too and
never factored; parameter and MAC counts cover the weight matrices (MACs per sample).

The period in steps and the placement of λ (applied on the projection steps, in weight
units) are this project's reading of the paper (REFERENCES §5).
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

import numpy as np
from threadpoolctl import threadpool_limits

from codesign.models.lowrank import energy_rank, truncated_factors
from codesign.models.workloads import DIGITS_LAYER_SIZES, DigitsMLP

if TYPE_CHECKING:
    from sklearn.neural_network import MLPClassifier

_MAX_BATCH = 200


@dataclasses.dataclass(frozen=True)
class TrpConfig:
    """TRP hyper-parameters.

    ``energy``: fraction of Σσ² the truncation keeps, in (0, 1]; ``period``: training
    steps (minibatches) between rank-pruning steps, ≥ 1; ``lam``: nuclear-norm weight λ
    ≥ 0 (weight units per projection step); ``epochs`` ≥ 0; ``batch_size`` in 1..200
    (scikit-learn's "auto" batch is min(200, samples), so each minibatch is one step);
    ``learning_rate`` > 0 and ``alpha`` ≥ 0 (L2): adam's settings; ``seed``: batch order
    and classifier seed.
    """

    energy: float = 0.95
    period: int = 20
    lam: float = 3e-4
    epochs: int = 20
    batch_size: int = 64
    learning_rate: float = 1e-3
    alpha: float = 1e-4
    seed: int = 0

    def __post_init__(self) -> None:
        checks = {
            "energy": (_finite(self.energy) and 0.0 < self.energy <= 1.0, "a number in (0, 1]"),
            "period": (_is_int(self.period) and self.period >= 1, "an integer >= 1"),
            "lam": (_finite(self.lam) and self.lam >= 0, "a number >= 0"),
            "epochs": (_is_int(self.epochs) and self.epochs >= 0, "an integer >= 0"),
            "batch_size": (
                _is_int(self.batch_size) and 1 <= self.batch_size <= _MAX_BATCH,
                f"an integer in 1..{_MAX_BATCH}",
            ),
            "learning_rate": (_finite(self.learning_rate) and self.learning_rate > 0, "> 0"),
            "alpha": (_finite(self.alpha) and self.alpha >= 0, "a number >= 0"),
            "seed": (_is_int(self.seed) and self.seed >= 0, "an integer >= 0"),
        }
        for field, (ok, allowed) in checks.items():
            if not ok:
                raise ValueError(
                    f"TrpConfig.{field} must be {allowed}, got {getattr(self, field)!r}"
                )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def rank_prune_step(weights: np.ndarray, energy: float, lam: float) -> tuple[np.ndarray, int]:
    """One TRP step on ``weights`` (m, n): W_r − λ·U_r·V_rᵀ at the energy rank r.

    Returns the new float64 matrix (m, n), of rank ≤ r, and r.
    """
    u, s, vt = np.linalg.svd(np.asarray(weights, dtype=np.float64), full_matrices=False)
    r = energy_rank(s, energy)
    return (u[:, :r] * (s[:r] - lam)) @ vt[:r], r


@dataclasses.dataclass(frozen=True)
class TrpLayer:
    """One deployed layer: ``u`` (m, r) and ``v`` (r, n) float32 with W ≈ u·v,
    ``bias`` (m,); ``factored``: deployed as two thin layers (else as the dense u·v)."""

    name: str
    u: np.ndarray
    v: np.ndarray
    bias: np.ndarray
    factored: bool

    @property
    def shape(self) -> tuple[int, int]:
        return self.u.shape[0], self.v.shape[1]

    @property
    def rank(self) -> int:
        return int(self.u.shape[1])

    @property
    def dense_params(self) -> int:
        """Weights of the dense layer, m·n (also its MACs per sample)."""
        return self.shape[0] * self.shape[1]

    @property
    def params(self) -> int:
        """Weights deployed: r·(m + n) when factored, else m·n (= MACs per sample)."""
        return self.rank * sum(self.shape) if self.factored else self.dense_params

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x (samples, n) → (samples, m), in float64, without the activation."""
        u, v = self.u.astype(np.float64), self.v.astype(np.float64)
        if self.factored:
            return (x @ v.T) @ u.T + self.bias
        return x @ (u @ v).T + self.bias


@dataclasses.dataclass(frozen=True)
class TrpResult:
    """Outcome of :func:`train_trp`.

    ``layers``: the deployed layers; ``rank_history``: ranks per layer at every
    rank-pruning step; accuracies are held-out fractions in [0, 1]: ``dense_accuracy``
    (the trained dense MLP), ``trained_accuracy`` (the TRP-trained full matrices before
    the final cut), ``deployed_accuracy`` (the deployed factored model),
    ``svd_only_accuracy`` (the dense MLP's weights cut at the same ranks, no training).
    """

    config: TrpConfig
    layers: list[TrpLayer]
    rank_history: list[list[int]]
    dense_accuracy: float
    trained_accuracy: float
    deployed_accuracy: float
    svd_only_accuracy: float

    @property
    def ranks(self) -> list[int]:
        return [layer.rank for layer in self.layers]

    @property
    def dense_params(self) -> int:
        return sum(layer.dense_params for layer in self.layers)

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def param_reduction(self) -> float:
        """Dense weights / deployed weights (× fewer)."""
        return self.dense_params / self.params

    @property
    def dense_macs(self) -> int:
        """MACs per sample of the dense layers (= their weights for an MLP)."""
        return self.dense_params

    @property
    def macs(self) -> int:
        """MACs per sample of the deployed layers."""
        return self.params

    @property
    def mac_reduction(self) -> float:
        return self.dense_macs / self.macs

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON summary (no factors)."""
        return {
            "config": dataclasses.asdict(self.config),
            "layers": [
                {
                    "name": layer.name,
                    "shape": list(layer.shape),
                    "rank": layer.rank,
                    "full_rank": min(layer.shape),
                    "factored": layer.factored,
                    "params": layer.params,
                    "dense_params": layer.dense_params,
                }
                for layer in self.layers
            ],
            "rank_history": self.rank_history,
            "params": self.params,
            "dense_params": self.dense_params,
            "param_reduction": self.param_reduction,
            "macs": self.macs,
            "dense_macs": self.dense_macs,
            "mac_reduction": self.mac_reduction,
            "dense_accuracy": self.dense_accuracy,
            "trained_accuracy": self.trained_accuracy,
            "deployed_accuracy": self.deployed_accuracy,
            "svd_only_accuracy": self.svd_only_accuracy,
        }


def deploy(
    names: list[str], weights: list[np.ndarray], biases: list[np.ndarray], ranks: list[int]
) -> list[TrpLayer]:
    """Cut each ``weights`` (out, in) at its rank into float32 factors."""
    layers = []
    for name, w, b, rank in zip(names, weights, biases, ranks, strict=True):
        u, v = truncated_factors(w, rank)
        factored = rank * sum(w.shape) < w.size
        layers.append(
            TrpLayer(name, u.astype(np.float32), v.astype(np.float32), b.copy(), factored)
        )
    return layers


def accuracy(layers: list[TrpLayer], x: np.ndarray, y: np.ndarray) -> float:
    """Accuracy of the ReLU network ``layers`` on samples ``x`` (samples, in) with
    labels ``y`` (samples,)."""
    h = np.asarray(x, dtype=np.float64)
    for i, layer in enumerate(layers):
        h = layer.forward(h)
        if i < len(layers) - 1:
            h = np.maximum(h, 0.0)
    return float(np.mean(np.argmax(h, axis=1) == y))


def _classifier(mlp: DigitsMLP, config: TrpConfig) -> MLPClassifier:
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(
        hidden_layer_sizes=DIGITS_LAYER_SIZES[1:-1],
        activation="relu",
        solver="adam",
        alpha=config.alpha,
        learning_rate_init=config.learning_rate,
        random_state=config.seed,
    )
    split = mlp.split
    head = slice(0, config.batch_size)
    clf.partial_fit(split.x_train[head], split.y_train[head], classes=np.unique(split.y_train))
    for coef, intercept, w, b in zip(
        clf.coefs_, clf.intercepts_, mlp.weights, mlp.biases, strict=True
    ):
        coef[...] = w.T
        intercept[...] = b
    return clf


def train_trp(mlp: DigitsMLP, config: TrpConfig | None = None) -> TrpResult:
    """Train ``mlp`` (its weights are not changed) with trained rank pruning and deploy
    the result as factored layers (see the module docstring). BLAS runs on one thread
    meanwhile: the layers are small, and extra threads only add overhead."""
    config = TrpConfig() if config is None else config
    with threadpool_limits(limits=1, user_api="blas"):
        return _train(mlp, config)


def _train(mlp: DigitsMLP, config: TrpConfig) -> TrpResult:
    split = mlp.split
    clf = _classifier(mlp, config)
    rng = np.random.default_rng(config.seed)
    n_train = len(split.y_train)
    history: list[list[int]] = []
    step = 0
    for _ in range(config.epochs):
        order = rng.permutation(n_train)
        for start in range(0, n_train, config.batch_size):
            batch = order[start : start + config.batch_size]
            clf.partial_fit(split.x_train[batch], split.y_train[batch])
            step += 1
            if step % config.period == 0:
                history.append(_rank_prune(clf, config))
    weights = [np.ascontiguousarray(c.T, dtype=np.float32) for c in clf.coefs_]
    biases = [b.astype(np.float32) for b in clf.intercepts_]
    ranks = history[-1] if history else [_energy_rank(w, config.energy) for w in weights]
    layers = deploy(mlp.layer_names, weights, biases, ranks)
    svd_only = [
        np.matmul(*truncated_factors(w, layer.rank)).astype(np.float32)
        for w, layer in zip(mlp.weights, layers, strict=True)
    ]
    return TrpResult(
        config=config,
        layers=layers,
        rank_history=history,
        dense_accuracy=mlp.dense_accuracy,
        trained_accuracy=DigitsMLP(weights, biases, split).dense_accuracy,
        deployed_accuracy=accuracy(layers, split.x_test, split.y_test),
        svd_only_accuracy=mlp.evaluate(svd_only),
    )


def _energy_rank(weights: np.ndarray, energy: float) -> int:
    return energy_rank(np.linalg.svd(weights.astype(np.float64), compute_uv=False), energy)


def _rank_prune(clf: MLPClassifier, config: TrpConfig) -> list[int]:
    ranks = []
    for coef in clf.coefs_:
        w, r = rank_prune_step(coef.T, config.energy, config.lam)
        coef[...] = w.T
        ranks.append(r)
    return ranks
