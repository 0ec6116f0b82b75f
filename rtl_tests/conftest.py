"""Shared fixtures of the RTL tests."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.models.workloads import load_digits_mlp, magnitude_prune

#: Sparsity of the digits MLP stimuli.
DIGITS_SPARSITY = 0.9


@pytest.fixture(scope="session")
def digits_pruned() -> list[np.ndarray]:
    """The digits MLP's weight matrices (out, in), each magnitude-pruned to 90 %."""
    return [magnitude_prune(w, DIGITS_SPARSITY) for w in load_digits_mlp().weights]
