"""The error every bad weight matrix, weights file or workload parameter raises."""

from __future__ import annotations


class WeightsError(ValueError):
    """A weight matrix, a weights file or a workload parameter is invalid; the message
    is one line naming the problem (and the file and tensor, for a file)."""
