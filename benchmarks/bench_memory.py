"""The memory pre-flight's estimates against the measured peaks they stand for.

Usage: python benchmarks/bench_memory.py [--size 2048] [--json OUT]

* **formats**: every format compresses, decodes and reports one gaussian ``size``×``size``
  layer at 90 % sparsity (nm at n=1, m=10; bmwm at b=16, 0.9375), float32 and
  ``--quantize 8`` values, each in a fresh process; measured: the growth of the
  process's peak resident set (``VmHWM``, reset just before the work) over its resident
  set before it; estimated: :meth:`Format.memory_needs` (plus the quantization's
  temporaries, as :func:`~codesign.models.format.check_layer` counts them).
  ``Format.memory_per_weight`` is set from these figures, rounded up.
* **simulator**: `codesign simulate --no-synth` of small layers on machines scaled in
  one direction (200,000 lanes, 200,000 decoder units, 200,000 rows, 100,000 columns of
  X); measured: the command's ``VmHWM`` minus that of the 16-lane baseline; estimated:
  :meth:`Arch.memory_needs` and the layer's format (the constants ``LANE_BYTES``,
  ``DECODER_BYTES``, ``ROW_BYTES``, ``ACTIVATION_BYTES`` of ``sim/arch.py`` come from
  these runs).

An estimate is good when it is at least the measured figure (the pre-flight never lets
through work it thinks fits but does not) and within a small factor of it. Memory does
not depend on the machine's load, so one run of each is enough.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

_PROBE = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from codesign.models.format import QUANTIZE_BYTES_PER_WEIGHT
    from codesign.models.registry import get_format
    from codesign.models.report import report_layer
    from codesign.models.specs import Spec
    from codesign.models.workloads import gaussian, quantize_symmetric

    def status(key):
        line = next(x for x in Path("/proc/self/status").read_text().splitlines()
                    if x.startswith(key + ":"))
        return int(line.split()[1]) * 1024

    name, size, spec, sparsity, bits = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]), \\
        float(sys.argv[4]), int(sys.argv[5])
    fmt = get_format(name)
    spec = Spec.from_dict({"format": name, **spec})
    prep = (lambda w: w) if not bits else (lambda w: quantize_symmetric(w, bits)[0])
    report_layer("warm", prep(gaussian((64, 256), 1)), fmt, spec, sparsity)
    w = gaussian((size, size), 0)
    base = status("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")
    report_layer("x", prep(w), fmt, spec, sparsity)
    needs = fmt.memory_needs(w.shape, spec)
    if bits:
        needs[0].__init__(max(needs[0].nbytes, QUANTIZE_BYTES_PER_WEIGHT * w.size), "", "")
    print(json.dumps({"grown": status("VmHWM") - base, "need": sum(n.nbytes for n in needs)}))
    """
)
_HWM = (
    "import atexit, runpy\n"
    "def hwm():\n"
    "    line = next(x for x in open('/proc/self/status') if x.startswith('VmHWM'))\n"
    "    print('HWM', int(line.split()[1]) * 1024)\n"
    "atexit.register(hwm)\n"
    "runpy.run_module('codesign', run_name='__main__')\n"
)
SPECS = {"nm": ({"n": 1, "m": 10}, 0.9), "bmwm": ({"b": 16}, 0.9375)}
#: Simulator runs: label -> (arch mapping, layer shape, the estimate's lanes, decoders,
#: rows, cols, columns).
MACHINES = {
    "baseline (16 lanes)": ("{lanes: 16, decoders: 4}", "64x64", (16, 4, 64, 64, 1)),
    "200,000 lanes": ("{lanes: 200000, decoders: 1}", "64x64", (200_000, 1, 64, 64, 1)),
    "200,000 decoder units": (
        "{lanes: 200000, decoders: 200000}",
        "64x64",
        (200_000, 200_000, 64, 64, 1),
    ),
    "200,000 rows": ("{lanes: 16, decoders: 4}", "200000x16", (16, 4, 200_000, 16, 1)),
    "100,000 columns": (
        "{lanes: 16, decoders: 4, batch: 100000}",
        "64x64",
        (16, 4, 64, 64, 100_000),
    ),
}


def formats(size: int) -> list[dict]:
    from codesign.models.registry import FORMATS

    rows = []
    for name in FORMATS:
        spec, sparsity = SPECS.get(name, ({}, 0.9))
        for bits in (0, 8):
            args = [name, str(size), json.dumps(spec), str(sparsity), str(bits)]
            out = subprocess.run(
                [sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, check=True
            )
            figures = json.loads(out.stdout)
            rows.append({"format": name, "values": f"int{bits}" if bits else "float32", **figures})
    return rows


def machines() -> list[dict]:
    from codesign.models.registry import get_format
    from codesign.sim.arch import Arch

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, (arch, shape, (lanes, decoders, m, n, columns)) in MACHINES.items():
            config = Path(tmp) / "c.yaml"
            config.write_text(f"arch: {arch}\nlayers:\n  - synthetic: {shape}\n")
            out = subprocess.run(
                [sys.executable, "-c", _HWM, "simulate", str(config), "--no-synth"],
                capture_output=True,
                text=True,
                check=True,
            )
            hwm = int(out.stdout.split("HWM ")[-1])
            machine = Arch(lanes=lanes, decoders=decoders, batch=columns)
            needs = machine.memory_needs(m, n, columns) + get_format("csr").memory_needs((m, n))
            rows.append({"machine": label, "hwm": hwm, "need": sum(x.nbytes for x in needs)})
    base = rows[0]
    for row in rows:
        row["grown"] = row["hwm"] - base["hwm"]
        row["need"] -= base["need"]
    return rows[1:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=2048, help="layer side of the formats")
    parser.add_argument("--json", help="also write the figures as JSON")
    args = parser.parse_args()
    mib = 2**20
    fmt_rows = formats(args.size)
    print(f"formats, {args.size}x{args.size} at 90 % (MiB)")
    print("| format | values | measured | estimate | estimate / measured |")
    print("|---|---|---|---|---|")
    for r in fmt_rows:
        ratio = r["need"] / max(r["grown"], 1)
        print(
            f"| {r['format']} | {r['values']} | {r['grown'] / mib:.0f} | {r['need'] / mib:.0f} "
            f"| {ratio:.2f} |"
        )
    sim_rows = machines()
    print("\nsimulator, over the 16-lane baseline (MiB)")
    print("| machine | measured | estimate | estimate / measured |")
    print("|---|---|---|---|")
    for r in sim_rows:
        ratio = r["need"] / max(r["grown"], 1)
        print(f"| {r['machine']} | {r['grown'] / mib:.0f} | {r['need'] / mib:.0f} | {ratio:.2f} |")
    if args.json:
        from codesign.files import write_json

        write_json(args.json, {"size": args.size, "formats": fmt_rows, "simulator": sim_rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
