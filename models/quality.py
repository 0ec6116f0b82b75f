"""How well a pruning mask keeps what matters, against magnitude pruning."""

from __future__ import annotations

import numpy as np

from codesign.models.workloads import magnitude_mask


def kept_fraction(mask: np.ndarray) -> float:
    """Fraction of positions a bool mask keeps."""
    return float(np.count_nonzero(mask)) / mask.size


def kept_mass_ratio(weights: np.ndarray, mask: np.ndarray) -> float:
    """Σ|w| kept by ``mask`` divided by Σ|w| kept by global magnitude pruning at the same
    kept fraction (1.0: as good as magnitude pruning, which is the maximum).

    ``weights`` and ``mask`` are (m, n); an all-pruned mask gives 1.0.
    """
    if mask.shape != weights.shape:
        raise ValueError(f"mask shape {mask.shape} does not match weights {weights.shape}")
    if not mask.any():
        return 1.0
    best_mask = magnitude_mask(weights, 1.0 - kept_fraction(mask))
    best = float(np.abs(weights[best_mask]).sum(dtype=np.float64))
    return 1.0 if best == 0.0 else float(np.abs(weights[mask]).sum(dtype=np.float64)) / best
