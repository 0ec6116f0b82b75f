"""Decode-cost metrics of a workload stored in BMWM, DARB or CSR, for sweep stages.

The cost model is :mod:`codesign.models.decode_cost` (a reconstruction, REFERENCES §4): per row,
the operations producing its column indices and the sequential steps with ``lanes``
index units. Here the layers' costs are summed into one set of figures per point.
"""

from __future__ import annotations

from collections.abc import Sequence

from codesign.experiments.jobs.compress import Layer, LayerPlan, encode
from codesign.models.decode_cost import decode_cost

#: Formats with a decode-cost model.
DECODE_COST_FORMATS = ("bmwm", "darb", "csr")
#: Index units when the point's ``arch.index_units`` is not given (as in darb_study).
DEFAULT_LANES = 8


def check_lanes(lanes: object) -> int:
    """``lanes`` as an int >= 1, else ``ValueError`` naming ``arch.index_units``."""
    if isinstance(lanes, bool) or not isinstance(lanes, int) or lanes < 1:
        raise ValueError(
            f"arch.index_units (decode index units) must be an integer >= 1, got {lanes!r}"
        )
    return lanes


def decode_metrics(
    layers: Sequence[Layer],
    plans: Sequence[LayerPlan],
    lanes: int = DEFAULT_LANES,
    cache: bool = True,
) -> dict[str, float]:
    """The decode cost of the ``layers`` whose plan stores them in a format with a cost
    model (:data:`DECODE_COST_FORMATS`; each pruned and quantized as its plan says, as
    the compress stage does), over those layers: ``decode_steps`` (every row decoded
    one after another), ``decode_steps_per_row``, ``decode_max_steps`` (the slowest
    row: the bound when rows decode in parallel), ``decode_ops``, ``decode_ops_per_kept``
    (operations / kept weights) and ``lane_utilization`` (produced indices / (lanes ×
    steps)). Empty when no layer has such a format."""
    costed = [
        (layer, plan)
        for layer, plan in zip(layers, plans, strict=True)
        if plan.format in DECODE_COST_FORMATS
    ]
    if not costed:
        return {}
    lanes = check_lanes(lanes)
    encodings = [encode(layer, plan, cache)[1] for layer, plan in costed]
    costs = [decode_cost(enc, lanes) for enc in encodings]
    steps = sum(c.total_steps for c in costs)
    rows = sum(c.produced.size for c in costs)
    ops = sum(c.total_ops for c in costs)
    kept = sum(enc.nnz for enc in encodings)
    return {
        "decode_steps": steps,
        "decode_steps_per_row": steps / rows,
        "decode_max_steps": max(c.max_steps for c in costs),
        "decode_ops": ops,
        "decode_ops_per_kept": ops / max(kept, 1),
        "lane_utilization": sum(int(c.produced.sum()) for c in costs) / max(lanes * steps, 1),
    }
