"""Speed of the Viterbi search (n_ff = 8, n_in = 1, n_out = 5) at 90 % sparsity.

Usage: python benchmarks/bench_viterbi.py [--sizes 1024 4096] [--repeats 3] [--json OUT]

Reports, per square matrix size, the median and min wall time (after a JIT warm-up call)
of the float search, the fixed-point search and the VD expansion of the whole mask
(decode), in weights/s (dense weights m·n per second). Baseline in the same run: a
plain-numpy Viterbi of the same algorithm and tie-break (vectorised over states and
segments, no numba) on a smaller matrix of whole segments, checked to return the same
inputs as the numba search, and the ratio of the two rates. numba uses all its threads
(``NUMBA_NUM_THREADS``).
"""

from __future__ import annotations

import argparse
import statistics

import numba
import numpy as np
from timing import timings

from codesign.files import write_json
from codesign.models.specs import ViterbiSpec
from codesign.models.viterbi_decompressor import (
    expand_matrix,
    keep_table,
    pack_inputs,
    unpack_inputs,
)
from codesign.models.viterbi_search import (
    branch_scores,
    quantize_scores,
    viterbi_search,
    viterbi_search_fixed,
)
from codesign.models.workloads import gaussian, magnitude_threshold

SPEC = ViterbiSpec(n_in=1, n_out=5, n_ff=8, n_c=4, threshold=2, segment=256)


def numpy_search(spec: ViterbiSpec, scores: np.ndarray) -> np.ndarray:
    """The float search in plain numpy: uint8 inputs (cycles, n_in) of row-major
    ``scores`` whose size is a whole number of segments."""
    seg, n_states, n_branch = spec.segment, 2**spec.n_ff, 2**spec.n_in
    per_segment = seg * spec.n_out
    if scores.size % per_segment:
        raise ValueError(f"scores must fill whole segments of {per_segment} weights")
    blocks = scores.reshape(-1, seg, spec.n_out)
    n_seg = blocks.shape[0]
    table = keep_table(spec).astype(np.float64).T
    prev = np.arange(n_states * n_branch) >> spec.n_in
    pm = np.full((n_seg, n_states), -np.inf)
    pm[:, 0] = 0.0
    survivors = np.empty((seg, n_seg, n_states), dtype=np.int64)
    for t in range(seg):
        cand = (pm[:, prev] + blocks[:, t, :] @ table).reshape(n_seg, n_branch, n_states)
        survivors[t] = np.argmax(cand, axis=1)
        new = np.take_along_axis(cand, survivors[t][:, None, :], axis=1)[:, 0, :]
        pm = new - new.max(axis=1, keepdims=True)
    state = np.argmax(pm, axis=1)
    words = np.empty((n_seg, seg), dtype=np.int64)
    rows = np.arange(n_seg)
    for t in range(seg - 1, -1, -1):
        x = state + survivors[t, rows, state] * n_states
        words[:, t] = x & (n_branch - 1)
        state = x >> spec.n_in
    return unpack_inputs(spec, words.ravel())


def rate(size: int, seconds: list[float]) -> dict[str, float]:
    med = statistics.median(seconds)
    return {"median_s": med, "min_s": min(seconds), "weights_per_s": size / med}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 4096])
    parser.add_argument("--sparsity", type=float, default=0.9)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--numpy-rows", type=int, default=128)
    parser.add_argument("--json", metavar="OUT")
    args = parser.parse_args()

    rows: dict[str, dict[str, float]] = {}
    for size in args.sizes:
        w = gaussian((size, size), seed=0)
        scores = branch_scores(w, magnitude_threshold(w, args.sparsity))
        q = quantize_scores(scores)
        inputs = viterbi_search(SPEC, scores).inputs
        for label, fn in (
            ("search float", lambda s=scores: viterbi_search(SPEC, s)),
            ("search fixed", lambda s=q: viterbi_search_fixed(SPEC, s)),
            ("decode (VD)", lambda i=inputs, sh=w.shape: expand_matrix(SPEC, i, sh)),
        ):
            rows[f"{label} {size}x{size}"] = rate(w.size, timings(fn, args.repeats))

    cols = SPEC.segment * SPEC.n_out
    small = gaussian((args.numpy_rows, cols), seed=1)
    scores = branch_scores(small, magnitude_threshold(small, args.sparsity))
    same = np.array_equal(
        pack_inputs(SPEC, numpy_search(SPEC, scores)),
        pack_inputs(SPEC, viterbi_search(SPEC, scores).inputs),
    )
    label = f"{args.numpy_rows}x{cols}"
    rows[f"numpy search {label}"] = rate(small.size, timings(lambda: numpy_search(SPEC, scores), 1))
    rows[f"search float {label}"] = rate(
        small.size, timings(lambda: viterbi_search(SPEC, scores), args.repeats)
    )
    ratio = (
        rows[f"search float {label}"]["weights_per_s"]
        / rows[f"numpy search {label}"]["weights_per_s"]
    )

    print(
        f"Viterbi search, n_ff={SPEC.n_ff} n_in={SPEC.n_in} n_out={SPEC.n_out} "
        f"segment={SPEC.segment}, sparsity {args.sparsity}, {numba.get_num_threads()} numba "
        f"threads, median of {args.repeats} runs (numpy: 1 run)"
    )
    print(f"{'run':32}{'median s':>10}{'min s':>10}{'M weights/s':>13}")
    for name, r in rows.items():
        print(f"{name:32}{r['median_s']:10.3f}{r['min_s']:10.3f}{r['weights_per_s'] / 1e6:13.2f}")
    print(f"numba / numpy search rate: {ratio:.1f}x (same inputs: {'yes' if same else 'NO'})")
    if args.json:
        doc = {
            "spec": SPEC.to_dict(),
            "sparsity": args.sparsity,
            "threads": numba.get_num_threads(),
            "rows": rows,
            "numba_over_numpy": ratio,
            "numpy_same_inputs": same,
        }
        write_json(args.json, doc)


if __name__ == "__main__":
    main()
