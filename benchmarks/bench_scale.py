"""Pruning and the slow encoders at real scale, each against a sort of 2^24 float64.

Usage: python benchmarks/bench_scale.py [--rows ROW ...] [--repeats N] [--json OUT]

Every row is timed ``--repeats`` times (after one warm-up on a small matrix, so the
numba kernels are loaded, not compiled, in the timed runs); before each timed run the
reference — ``np.sort`` of 2^24 uniform float64 — is timed too, so a row's ratio
(median row time / median reference time) compares runs that shared the machine's
load. ``cpu_s`` is the CPU time of a run over all its threads (and child processes):
the reference is one thread, the encoders use two, so under load the wall-clock ratio
of a parallel row rises more than its CPU time. Rows:

* ``csr-cli``: ``codesign compress --format csr --synthetic 4096x4096 --sparsity 0.9
  --json OUT`` as a new process, start to JSON written (global magnitude pruning,
  encode, decode, report). Target: <= 5x the reference.
* ``prune``: ``magnitude_mask`` of a gaussian 4096x4096 (float32) at 90 %, global and
  per row (in process; the part of ``csr-cli`` the O(N) selection replaced).
* ``viterbi``: ``ViterbiFormat.compress`` of a gaussian 4096x4096 (seed 0) at 90 %,
  default spec (n_ff 8, n_in 1, n_out 5), calibration included; weights/s, kept
  fraction and kept |w| mass ratio. Target: >= 4 M weights/s and <= 12x.
* ``lbi-1024``: ``LbiFormat.compress`` of a gaussian 1024x1024 quantized to int8, at
  90 %, default spec (64x64 tiles, rank 8, bool); kept fraction and mass. Target:
  <= 8x. ``lbi-4096``: the same at 4096x4096. Target: <= 60 s.
* ``xor``: ``XorFormat.compress`` of a gaussian 1024x1024 (1 M weights) at 90 %,
  XorSpec(n_s=3, n_in=8, n_out=64), csr mask, 8-bit planes; weights/s and encoding
  efficiency E. Target: >= 100 k weights/s. When XorSpec has a ``dp_states`` field, E
  of the exact search (``dp_states=2**20``) on the first ``--xor-check-rows`` rows is
  reported beside the default's E on the same rows (target: within 0.01).
* ``xor-jit``: a new process with an empty ``NUMBA_CACHE_DIR`` runs an n_s = 2
  ``XorFormat.compress`` of a 64x1024 matrix twice (first: compile + run, second: run);
  a second process with the now filled cache does the same. Target: first-run
  compile <= 5 s, or cached across processes.
* ``lowrank-cli``: ``codesign compress --format lowrank --synthetic 4096x4096
  --sparsity 0.9`` as a new process, with and without ``--workers 1``. Target: <= 15 s.

Recorded on the shared 2-core machine (load average 4–11 from other jobs; medians of 3
runs, 1 for the slow "before" rows; s = seconds, × = ratio to the sort in the same run):

| row | before | after |
|---|---|---|
| csr-cli | 4.41 s, 22.3× | 1.81 s, 6.3× (CPU 1.14 s) |
| csr-cli, second | 1.37–1.45 s, 6.5–6.6× | 0.71–1.04 s, 3.9–4.4× (CPU 0.7 s) |
| prune global / row | 3.14 s, 17.0× / 1.61 s, 6.6× | 0.13 s, 0.47× / 0.19 s, 0.69× |
| viterbi | 24.9 s, 135×, 0.93 M w/s | 4.7 s, 16.1×, 3.6 M w/s (CPU 3.1 s) |
| lbi-1024 | 32.1 s, 43.3× | 2.7 s, 4.7× |
| lbi-4096 | 1013 s | 22.7 s |
| xor | 367 s, 2.9 k w/s, E 0.7983 | 0.32 s, 3.3 M w/s, E 0.7979 |
| xor-jit n_s=2, empty cache | compile 7.5 s | compile 10.3 s (load 5 vs 2) |
| xor-jit n_s=2, filled cache | first call 0.36 s | first call 0.52 s |
| lowrank-cli / --workers 1 | 66.6 s / 173.8 s | 6.6 s / 5.0 s |

The second csr-cli row (load average 1.3–3.5, medians of 5, two rounds; "before" is the
code just before, timed in the same runs) comes with
the CLI loading one subcommand and one format (no numba, no Amaranth), CSR encoding and
decoding on flat positions, pruning without a copy of |w|, and gaussian weights drawn
as float32 (the same distribution, other samples: figures recorded from synthetic
matrices before that change differ a little when regenerated).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from codesign.models.registry import get_format
from codesign.models.specs import LbiSpec, ViterbiSpec, XorSpec
from codesign.models.workloads import gaussian, magnitude_mask, quantize_symmetric

SPARSITY = 0.9
REFERENCE_SIZE = 2**24


def sort_reference(data: np.ndarray) -> float:
    """Seconds of one ``np.sort`` of ``data`` (2^24 float64)."""
    start = time.perf_counter()
    np.sort(data)
    return time.perf_counter() - start


@dataclasses.dataclass
class Row:
    """Timed runs of one row, each with the reference timed just before it."""

    name: str
    seconds: list[float]
    reference: list[float]
    figures: dict[str, Any]
    weights: int | None = None
    """Weights a run processes: the row reports weights/s at its median time."""

    @property
    def ratio(self) -> float:
        return statistics.median(self.seconds) / statistics.median(self.reference)

    def to_dict(self) -> dict[str, Any]:
        median = statistics.median(self.seconds)
        rate = {} if self.weights is None else {"weights_per_s": self.weights / median}
        return {
            "row": self.name,
            "median_s": median,
            "min_s": min(self.seconds),
            "reference_median_s": statistics.median(self.reference),
            "ratio": self.ratio,
            "seconds": self.seconds,
            "reference_s": self.reference,
            **rate,
            **self.figures,
        }


def cpu_seconds() -> float:
    """CPU seconds used so far by this process (all threads) and its finished children."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def timed(
    name: str,
    run: Callable[[], dict[str, Any]],
    repeats: int,
    data: np.ndarray,
    weights: int | None = None,
) -> Row:
    """``repeats`` runs of ``run`` (returns its figures) on ``weights`` weights, each after
    a reference sort; the figures gain ``cpu_s``, the median CPU seconds of a run (every
    thread)."""
    seconds, reference, figures, cpu = [], [], {}, []
    for _ in range(repeats):
        reference.append(sort_reference(data))
        start, used = time.perf_counter(), cpu_seconds()
        figures = run()
        seconds.append(time.perf_counter() - start)
        cpu.append(cpu_seconds() - used)
    return Row(name, seconds, reference, {**figures, "cpu_s": statistics.median(cpu)}, weights)


def codesign_command() -> list[str]:
    """The installed ``codesign`` console script beside this interpreter."""
    script = Path(sys.executable).with_name("codesign")
    return [str(script)] if script.exists() else [shutil.which("codesign") or "codesign"]


def run_cli(args: list[str], env: dict[str, str] | None = None) -> str:
    out = subprocess.run(
        codesign_command() + args, check=True, capture_output=True, text=True, env=env
    )
    return out.stdout


def row_csr_cli(repeats: int, data: np.ndarray, _: argparse.Namespace) -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "csr.json"
        args = ["compress", "--format", "csr", "--synthetic", "4096x4096"]
        args += ["--sparsity", str(SPARSITY), "--json", str(out)]

        def run() -> dict[str, Any]:
            run_cli(args)
            layer = json.loads(out.read_text())["layers"][0]
            return {"nnz": layer["nnz"], "lossless": layer["lossless"]}

        run_cli(["compress", "--format", "csr", "--synthetic", "64x64", "--sparsity", "0.9"])
        return [timed("csr-cli 4096x4096", run, repeats, data)]


def row_prune(repeats: int, data: np.ndarray, _: argparse.Namespace) -> list[Row]:
    w = gaussian((4096, 4096), seed=0)
    return [
        timed(
            f"prune {scope} 4096x4096",
            lambda scope=scope: {"kept": int(magnitude_mask(w, SPARSITY, scope).sum())},
            repeats,
            data,
        )
        for scope in ("global", "row")
    ]


def compress_figures(fmt_name: str, weights: np.ndarray, spec: Any) -> Callable[[], dict]:
    """A run of ``fmt.compress(weights, SPARSITY, spec)`` returning its kept fraction
    and kept |w| mass ratio."""
    fmt = get_format(fmt_name)

    def run() -> dict[str, Any]:
        _, enc = fmt.compress(weights, SPARSITY, spec)
        return {
            "kept_fraction": enc.extras["kept_fraction"],
            "kept_mass_ratio": enc.extras.get("kept_mass_ratio"),
        }

    return run


def row_viterbi(repeats: int, data: np.ndarray, _: argparse.Namespace) -> list[Row]:
    spec = ViterbiSpec()
    compress_figures("viterbi", gaussian((256, 256), seed=1), spec)()
    w = gaussian((4096, 4096), seed=0)
    run = compress_figures("viterbi", w, spec)
    return [timed("viterbi 4096x4096", run, repeats, data, w.size)]


def int8(size: int, seed: int) -> np.ndarray:
    return quantize_symmetric(gaussian((size, size), seed=seed), 8)[0]


def row_lbi(size: int) -> Callable[[int, np.ndarray, argparse.Namespace], list[Row]]:
    def row(repeats: int, data: np.ndarray, _: argparse.Namespace) -> list[Row]:
        spec = LbiSpec()
        compress_figures("lbi", int8(128, 1), spec)()
        w = int8(size, 0)
        run = compress_figures("lbi", w, spec)
        return [timed(f"lbi {size}x{size} int8", run, repeats, data, w.size)]

    return row


def xor_efficiency(weights: np.ndarray, spec: XorSpec) -> float:
    return get_format("xor").compress(weights, SPARSITY, spec)[1].extras["efficiency"]


def row_xor(repeats: int, data: np.ndarray, args: argparse.Namespace) -> list[Row]:
    spec = XorSpec(n_s=3, n_in=8, n_out=64)
    w = gaussian((1024, 1024), seed=0)
    xor_efficiency(gaussian((16, 1024), seed=1), spec)

    row = timed(
        "xor n_s=3 1024x1024",
        lambda: {"efficiency": xor_efficiency(w, spec)},
        repeats,
        data,
        w.size,
    )
    if "dp_states" in {f.name for f in dataclasses.fields(XorSpec)}:
        check = w[: args.xor_check_rows]
        exact = dataclasses.replace(spec, dp_states=2**20)
        row.figures["check_rows"] = int(check.shape[0])
        row.figures["check_efficiency_default"] = xor_efficiency(check, spec)
        row.figures["check_efficiency_exact"] = xor_efficiency(check, exact)
    return [row]


_JIT_SCRIPT = """
import json, time
t0 = time.perf_counter()
from codesign.models.registry import get_format
from codesign.models.specs import XorSpec
from codesign.models.workloads import gaussian
t1 = time.perf_counter()
w = gaussian((64, 1024), seed=0)
fmt, spec = get_format("xor"), XorSpec(n_s=2, n_in=8, n_out=64)
times = []
for _ in range(2):
    start = time.perf_counter()
    fmt.compress(w, 0.9, spec)
    times.append(time.perf_counter() - start)
print(json.dumps({"import_s": t1 - t0, "first_s": times[0], "second_s": times[1]}))
"""


def row_xor_jit(repeats: int, data: np.ndarray, _: argparse.Namespace) -> list[Row]:
    rows = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as cache:
            env = {**os.environ, "NUMBA_CACHE_DIR": cache}
            for label in ("empty cache", "filled cache"):
                ref = sort_reference(data)
                start = time.perf_counter()
                out = subprocess.run(
                    [sys.executable, "-c", _JIT_SCRIPT],
                    check=True,
                    capture_output=True,
                    text=True,
                    env=env,
                )
                wall = time.perf_counter() - start
                figures = json.loads(out.stdout.strip().splitlines()[-1])
                figures["compile_s"] = figures["first_s"] - figures["second_s"]
                rows.append(Row(f"xor-jit n_s=2 {label}", [wall], [ref], figures))
    return _merge(rows)


def _merge(rows: list[Row]) -> list[Row]:
    """Rows of the same name merged into one (their runs pooled, figures medians)."""
    merged: dict[str, Row] = {}
    for row in rows:
        if row.name not in merged:
            merged[row.name] = Row(row.name, [], [], {k: [] for k in row.figures})
        target = merged[row.name]
        target.seconds += row.seconds
        target.reference += row.reference
        for k, v in row.figures.items():
            target.figures[k].append(v)
    for row in merged.values():
        row.figures = {k: statistics.median(v) for k, v in row.figures.items()}
    return list(merged.values())


def row_lowrank_cli(repeats: int, data: np.ndarray, _: argparse.Namespace) -> list[Row]:
    args = ["compress", "--format", "lowrank", "--synthetic", "4096x4096"]
    args += ["--sparsity", str(SPARSITY)]
    run_cli(["compress", "--format", "lowrank", "--synthetic", "64x64", "--sparsity", "0.5"])
    return [
        timed(
            f"lowrank-cli 4096x4096{label}", lambda a=args + extra: run_cli(a) and {}, repeats, data
        )
        for label, extra in (("", []), (" --workers 1", ["--workers", "1"]))
    ]


ROWS: dict[str, Callable[[int, np.ndarray, argparse.Namespace], list[Row]]] = {
    "csr-cli": row_csr_cli,
    "prune": row_prune,
    "viterbi": row_viterbi,
    "lbi-1024": row_lbi(1024),
    "lbi-4096": row_lbi(4096),
    "xor": row_xor,
    "xor-jit": row_xor_jit,
    "lowrank-cli": row_lowrank_cli,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), default=list(ROWS))
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per row")
    parser.add_argument("--xor-check-rows", type=int, default=128)
    parser.add_argument("--json", type=Path, metavar="OUT")
    args = parser.parse_args(argv)
    data = np.random.default_rng(0).random(REFERENCE_SIZE)
    sort_reference(data)
    rows = [row for name in args.rows for row in ROWS[name](args.repeats, data, args)]
    print(f"reference: np.sort of 2^24 float64; medians of {args.repeats} runs")
    print(f"{'row':34}{'median s':>10}{'ref s':>8}{'ratio':>8}  figures")
    for row in rows:
        d = row.to_dict()
        shown = {k: v for k, v in d.items() if k in row.figures or k == "weights_per_s"}
        text = "  ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items()
        )
        print(
            f"{row.name:34}{d['median_s']:10.3f}{d['reference_median_s']:8.3f}"
            f"{row.ratio:8.2f}  {text}"
        )
    if args.json is not None:
        args.json.write_text(json.dumps([r.to_dict() for r in rows], indent=2) + "\n")


if __name__ == "__main__":
    main()
