"""The errors of bad weight matrices, weights files and workload parameters."""

from __future__ import annotations


class WeightsError(ValueError):
    """A weight matrix, a weights file or a workload parameter is invalid; the message
    is one line naming the problem (and the file and tensor, for a file)."""


class PrecisionError(WeightsError):
    """A cast or quantization would turn kept weights into 0 or ±inf (or change them
    beyond the declared precision); the message names the count and how to keep them."""
