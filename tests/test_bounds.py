"""The no-patch probability and entropy bound of XOR encoding, checked by enumeration
and against the real encoder."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from codesign.models.bounds import entropy_bound, gf2_rank_distribution, no_patch_probability
from codesign.models.specs import XorSpec
from codesign.models.workloads import WeightsError, gaussian
from codesign.models.xor import XorFormat, encode_planes


def slow_rank(rows: list[int]) -> int:
    """GF(2) rank of rows given as integers (XOR basis by leading bit)."""
    basis: dict[int, int] = {}
    for r in rows:
        while r:
            top = r.bit_length() - 1
            if top not in basis:
                basis[top] = r
                break
            r ^= basis[top]
    return len(basis)


@pytest.mark.parametrize(("k", "n"), [(0, 3), (1, 1), (2, 3), (3, 2), (3, 3), (4, 3), (5, 2)])
def test_rank_distribution_matches_enumeration(k, n):
    counts = np.zeros(min(k, n) + 1)
    for rows in itertools.product(range(2**n), repeat=k):
        counts[slow_rank(list(rows))] += 1
    np.testing.assert_allclose(gf2_rank_distribution(k, n), counts / counts.sum(), rtol=1e-12)


@pytest.mark.parametrize(("n_out", "n_in", "sparsity"), [(3, 2, 0.3), (4, 1, 0.6), (2, 3, 0.0)])
def test_no_patch_probability_matches_enumeration(n_out, n_in, sparsity):
    """Average over every matrix M, care mask and data word of [some x matches]."""
    density = 1 - sparsity
    total = 0.0
    matrices = list(itertools.product(range(2**n_in), repeat=n_out))
    for rows in matrices:
        images = [[bin(r & x).count("1") % 2 for r in rows] for x in range(2**n_in)]
        for care in itertools.product([0, 1], repeat=n_out):
            weight = np.prod([density if c else 1 - density for c in care])
            solvable = 0
            for data in itertools.product([0, 1], repeat=n_out):
                solvable += any(
                    all(y[i] == data[i] for i in range(n_out) if care[i]) for y in images
                )
            total += weight * solvable / 2**n_out
    assert no_patch_probability(n_out, n_in, sparsity) == pytest.approx(
        total / len(matrices), rel=1e-12
    )


def test_reference_values():
    assert no_patch_probability(100, 10, 0.9) == pytest.approx(0.56, abs=0.01)
    assert no_patch_probability(100, 16, 0.9) == pytest.approx(0.95, abs=0.01)
    assert no_patch_probability(1, 1, 0.0) == pytest.approx(0.75)
    assert entropy_bound(0.9) == pytest.approx(10.0)
    assert entropy_bound(0.0) == 1.0


def test_bad_arguments():
    with pytest.raises(WeightsError, match=r"sparsity must be a finite number in \[0, 1\)"):
        entropy_bound(1.0)
    with pytest.raises(ValueError, match="n_out must be an integer >= 1"):
        no_patch_probability(0, 4, 0.5)
    with pytest.raises(ValueError, match="k must be an integer >= 0"):
        gf2_rank_distribution(-1, 4)


@pytest.mark.parametrize(
    ("n_out", "n_in", "sparsity"), [(100, 10, 0.9), (100, 16, 0.9), (64, 8, 0.9), (24, 4, 0.8)]
)
def test_encoder_no_patch_fraction_matches_exact(n_out, n_in, sparsity):
    """Random data bits, Bernoulli care masks, the real n_s = 1 encoder: the fraction of
    blocks without a patch agrees with the exact probability within 4 standard errors
    (standard error from the spread between seeds, since each seed fixes one M)."""
    seeds, blocks = 40, 500
    fractions = []
    for seed in range(seeds):
        rng = np.random.default_rng(1000 + seed)
        spec = XorSpec(n_in=n_in, n_out=n_out, n_s=1, seed=seed)
        bits = rng.integers(0, 2, (1, blocks * n_out), dtype=np.uint8)
        care = rng.random(blocks * n_out) >= sparsity
        fractions.append(encode_planes(bits, care, spec).no_patch_blocks().mean())
    mean = float(np.mean(fractions))
    stderr = float(np.std(fractions, ddof=1)) / np.sqrt(seeds)
    exact = no_patch_probability(n_out, n_in, sparsity)
    assert stderr > 0
    assert abs(mean - exact) < 4 * stderr, (mean, exact, stderr)


@pytest.mark.parametrize(("n_out", "n_in"), [(64, 8), (40, 4)])
def test_two_step_decoder_is_more_efficient(n_out, n_in):
    """E(n_s = 2) > E(n_s = 1) at the same n_out/n_in, S = 0.9, both below the bound."""
    w = gaussian((128, 256), seed=1)
    fmt = XorFormat()
    efficiency = {}
    for n_s in (1, 2):
        spec = XorSpec(n_in=n_in, n_out=n_out, n_s=n_s, quant="binary", value_bits=1)
        _, enc = fmt.compress(w, 0.9, spec)
        efficiency[n_s] = enc.extras["efficiency"]
        assert enc.extras["entropy_bound"] == pytest.approx(10.0, rel=1e-3)
    assert efficiency[2] > efficiency[1]
    assert efficiency[2] <= 1.0
