"""Whole networks end to end: `codesign compress` on the 10 M-weight transformer file and
`codesign simulate` of the ResNet-18-shaped CNN.

Usage: python benchmarks/bench_networks.py [--repeats 3] [--formats csr,relative,...]
[--json OUT]

Every run is a fresh process running the command as a user would (interpreter start,
imports, reading the file, every layer, the table), timed end to end by this script;
figures are medians (and minima) of ``--repeats`` runs after one warm-up run (which
fills the example-file and numba caches).

* **compress**: the example ``encoder`` file (37 matrices of 384×384 / 1536×384 /
  384×1536, 10.76 M weights, float32 ``.safetensors``) in csr, relative, bitmap, block,
  darb and bmwm at 90 % sparsity (bmwm at its own 0.9375, b = 16), float32 values and,
  as a second series, ``--quantize 8``. Target: ≤ 10 s each. **Memory**: the child
  process reports its resident set after importing the command's modules and building
  its argument parser, and its peak (``VmHWM``, the high-water mark of this process
  image; ``ru_maxrss`` would carry over the parent's size at fork); the work's memory is peak −
  baseline (the interpreter and the imported libraries — numpy, numba, amaranth — are
  the same for any file). Target: ≤ 4× the file size.
* **simulate**: ``experiments/configs/net_resnet18.yaml`` with its layers in CSR at 90 %
  (the example ResNet-18 at batch 1, a 224×224 image: 21 convolutions and the
  classifier). Target: ≤ 30 s.

Reference measured in the same run: numpy's sort of 2^24 float64 values (median of
``--repeats``), so a figure can be compared across machines as a ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from timing import timings

from codesign.experiments import CONFIGS
from codesign.models.examples import example_path

FORMATS = ("csr", "relative", "bitmap", "block", "darb", "bmwm")
#: Per-format arguments reaching the target sparsity (bmwm: its own point).
ARGS = {"bmwm": ["--spec", "b=16", "--sparsity", "0.9375"]}
SPARSITY = "0.9"

#: The child: import the command and build its parser (which imports the hardware
#: blocks), note the resident set, run the command, report the peak.
CHILD = """
import io, json, sys
from contextlib import redirect_stdout
import codesign.experiments.jobs.compress, codesign.experiments.jobs.simulate
import codesign.models.registry
from codesign.experiments.cli.main import build_parser, main
build_parser()
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096
base = rss()
with redirect_stdout(io.StringIO()):
    code = main(sys.argv[1:])
with open("/proc/self/status") as f:
    peak = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
print(json.dumps({"code": code, "base": base, "peak": peak}))
"""


def run(argv: list[str]) -> tuple[float, dict]:
    """Wall seconds of one child process running `codesign ARGV`, and its report."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, *argv], capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"codesign {' '.join(argv)} failed:\n{proc.stderr}")
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    if report["code"] != 0:
        raise SystemExit(f"codesign {' '.join(argv)} exited {report['code']}:\n{proc.stderr}")
    return wall, report


def series(argv: list[str], repeats: int) -> dict:
    """Median and min wall time and the median work memory of ``repeats`` runs after a
    warm-up."""
    run(argv)
    walls, reports = [], []
    for _ in range(repeats):
        wall, report = run(argv)
        walls.append(wall)
        reports.append(report)
    work = [r["peak"] - r["base"] for r in reports]
    return {
        "wall_s": statistics.median(walls),
        "wall_min_s": min(walls),
        "work_bytes": statistics.median(work),
        "peak_rss_bytes": statistics.median(r["peak"] for r in reports),
        "base_rss_bytes": statistics.median(r["base"] for r in reports),
    }


def sort_reference(repeats: int) -> float:
    """Median seconds of numpy's sort of 2^24 float64 values."""
    values = np.random.default_rng(0).random(2**24)
    return statistics.median(timings(lambda: np.sort(values), repeats))


def resnet_csr_config(directory: Path) -> Path:
    """``net_resnet18.yaml`` with every layer in CSR at 90 % (its overrides dropped)."""
    doc = yaml.safe_load((CONFIGS / "net_resnet18.yaml").read_text())
    doc.pop("overrides", None)
    path = directory / "resnet18_csr.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--json", metavar="OUT")
    args = parser.parse_args()

    model = example_path("encoder")
    size = model.stat().st_size
    reference = sort_reference(args.repeats)
    rows = []
    for quantize in (None, 8):
        for fmt in args.formats.split(","):
            argv = ["compress", "--format", fmt, "--weights", str(model)]
            argv += ARGS.get(fmt, ["--sparsity", SPARSITY])
            argv += [] if quantize is None else ["--quantize", str(quantize)]
            row = {"command": "compress", "format": fmt, "quantize": quantize}
            row.update(series(argv, args.repeats))
            row["memory_x_file"] = row["work_bytes"] / size
            rows.append(row)
            print(
                f"compress {fmt:9} quantize {quantize!s:4}  {row['wall_s']:6.2f} s (min "
                f"{row['wall_min_s']:.2f})  work memory {row['work_bytes'] / 2**20:6.1f} MiB "
                f"= {row['memory_x_file']:.2f}x file  ({row['wall_s'] / reference:5.1f}x sort)",
                flush=True,
            )
    with tempfile.TemporaryDirectory() as tmp:
        argv = ["simulate", str(resnet_csr_config(Path(tmp)))]
        row = {"command": "simulate resnet18 csr", "format": "csr", "quantize": 8}
        row.update(series(argv, args.repeats))
        rows.append(row)
    print(
        f"simulate resnet18 csr batch 1      {row['wall_s']:6.2f} s (min {row['wall_min_s']:.2f})"
        f"  ({row['wall_s'] / reference:5.1f}x sort)"
    )
    print(
        f"file {model.name}: {size / 2**20:.1f} MiB; reference: numpy sort of 2^24 float64 "
        f"{reference:.3f} s (median of {args.repeats}); medians of {args.repeats} runs"
    )
    if args.json:
        doc = {"file_bytes": size, "sort_2_24_s": reference, "repeats": args.repeats, "rows": rows}
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
