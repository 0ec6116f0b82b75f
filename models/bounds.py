"""Closed-form limits of XOR-gate fixed-to-fixed encoding (REFERENCES §2).

* :func:`entropy_bound`: the largest useful n_out/n_in at sparsity S is 1/(1 − S):
  only the care bits (a fraction 1 − S of the positions) carry information, so n_in
  stored bits cannot stand for more than n_in/(1 − S) positions on average.
* :func:`no_patch_probability`: for the single-step decoder (n_s = 1), the exact
  probability that a block of n_out positions needs no patch when the care positions
  are Bernoulli(1 − S), the data bits are uniform and the XOR matrix M has uniform
  independent entries. A block with k care positions is solvable iff its k data bits
  lie in the column space of the k × n_in sub-matrix of M; with rank r that happens
  with probability 2^(r − k). Summing over the GF(2) rank distribution
  (:func:`gf2_rank_distribution`) and over k ~ Binomial(n_out, 1 − S) gives the
  probability.
"""

from __future__ import annotations

import math

import numpy as np

from codesign.models.workloads import check_sparsity

__all__ = ["entropy_bound", "gf2_rank_distribution", "no_patch_probability"]


def _check_dim(name: str, value: int, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {value!r}")
    return int(value)


def entropy_bound(sparsity: float) -> float:
    """The maximum compression ratio n_out/n_in = 1/(1 − S) at sparsity ``sparsity``
    (a fraction in [0, 1))."""
    return 1.0 / (1.0 - check_sparsity(sparsity))


def gf2_rank_distribution(k: int, n: int) -> np.ndarray:
    """P(rank = r), r = 0..min(k, n), of a k × n matrix over GF(2) with independent
    uniform entries; float64 array of length min(k, n) + 1.

    The number of k × n matrices of rank r is
    ∏_{i<r} (2^k − 2^i)(2^n − 2^i)/(2^r − 2^i); divided by 2^(k·n) this is
    2^(−(k−r)(n−r)) · ∏_{i<r} (1 − 2^(i−k))(1 − 2^(i−n))/(1 − 2^(i−r)),
    the form evaluated here (every factor is in (0, 1], no overflow).
    """
    k = _check_dim("k", k, 0)
    n = _check_dim("n", n, 0)
    top = min(k, n)
    probs = np.empty(top + 1, dtype=np.float64)
    for r in range(top + 1):
        log2_p = -float((k - r) * (n - r))
        for i in range(r):
            log2_p += math.log2(1.0 - 2.0 ** (i - k))
            log2_p += math.log2(1.0 - 2.0 ** (i - n))
            log2_p -= math.log2(1.0 - 2.0 ** (i - r))
        probs[r] = 2.0**log2_p
    return probs


def no_patch_probability(n_out: int, n_in: int, sparsity: float) -> float:
    """Probability that an n_s = 1 block of ``n_out`` positions decoded from ``n_in``
    input bits matches all its care bits, care positions Bernoulli(1 − ``sparsity``).

    Σ_k Binom(k; n_out, 1 − S) · Σ_r P(rank r | k × n_in) · 2^(r − k).
    """
    n_out = _check_dim("n_out", n_out, 1)
    n_in = _check_dim("n_in", n_in, 1)
    density = 1.0 - check_sparsity(sparsity)
    total = 0.0
    for k in range(n_out + 1):
        weight = math.comb(n_out, k) * density**k * (1.0 - density) ** (n_out - k)
        if weight == 0.0:
            continue
        ranks = gf2_rank_distribution(k, n_in)
        solvable = float(np.dot(ranks, 2.0 ** (np.arange(ranks.size) - k)))
        total += weight * solvable
    return total
