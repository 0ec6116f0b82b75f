"""Wall-clock timing shared by the benchmark scripts."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def timings(fn: Callable[[], object], repeats: int) -> list[float]:
    """Wall times in seconds of ``repeats`` calls of ``fn`` after one warm-up call."""
    fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def measure(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(median, minimum) wall time in seconds of ``repeats`` calls after one warm-up."""
    times = timings(fn, repeats)
    return statistics.median(times), min(times)
