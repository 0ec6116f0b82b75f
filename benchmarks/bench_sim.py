"""Simulator speed: a 4096×4096 layer at 90 % sparsity, batch 1, in every format.

Usage: python benchmarks/bench_sim.py [--size 4096] [--repeats 3] [--configs csr,viterbi]
[--json OUT]

Per example configuration (format, spec, sparsity and quantization from
``experiments/configs/sim_<name>.yaml``; LBI on 64×64 tiles at rank 8, the tile size of
its own benchmark) the layer is compressed once (``encode`` seconds, not part of the
simulator), then timed, median (and min) of ``--repeats`` runs after one warm-up:
``work`` (per-row work read from the streams, :func:`codesign.sim.decoders.layer_work`) and
``simulate`` (event simulation + closed form + energy + product check,
:func:`codesign.sim.run.simulate_layer`). Reported: simulated cycles, cycles per wall-second of
``simulate``, SimPy events per second, and the ratio to the baseline measured in the
same run — a SimPy clock process that ticks once per cycle and does nothing else (the
floor of any cycle-stepped model), timed on 200 000 ticks.
"""

from __future__ import annotations

import argparse
import statistics
import time

import simpy
import yaml
from timing import timings

from codesign.experiments import CONFIGS
from codesign.experiments.studies.sim import LARGE_SPECS
from codesign.files import write_json
from codesign.models.registry import FORMATS
from codesign.models.workloads import synthetic
from codesign.sim.arch import Arch
from codesign.sim.config import LayerConfig
from codesign.sim.decoders import layer_work
from codesign.sim.energy import load_table
from codesign.sim.layers import encode_layer
from codesign.sim.run import simulate_layer


def layer_config(name: str) -> LayerConfig:
    """Format, spec and sparsity of the example configuration ``sim_<name>.yaml``."""
    defaults = yaml.safe_load((CONFIGS / f"sim_{name}.yaml").read_text())["defaults"]
    fmt = defaults["format"]
    return LayerConfig(
        source={},
        format=fmt,
        spec=LARGE_SPECS.get(fmt, defaults.get("spec") or {}),
        sparsity=defaults.get("sparsity"),
        quantize=defaults.get("quantize"),
    )


def tick_rate(ticks: int = 200_000) -> float:
    """Cycles per second of a SimPy process ticking once per cycle."""
    env = simpy.Environment()

    def clock():
        for _ in range(ticks):
            yield env.timeout(1)

    env.process(clock())
    start = time.perf_counter()
    env.run()
    return ticks / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--configs",
        default=",".join([*FORMATS, "viterbi_xor"]),
        help="names of experiments/configs/sim_<name>.yaml",
    )
    parser.add_argument("--json", metavar="OUT")
    args = parser.parse_args()
    weights = synthetic("gaussian", (args.size, args.size), 0)
    arch, table = Arch(), load_table(None)
    ticks = statistics.median(tick_rate() for _ in range(3))
    print(f"{args.size}x{args.size}, batch 1, arch {arch}")
    print(f"baseline: a SimPy clock ticking every cycle runs {ticks:.3g} cycles/s")
    header = (
        f"{'config':11} {'encode s':>9} {'work s':>8} {'sim s':>7} {'sim min':>8} "
        f"{'cycles':>10} {'cycles/s':>10} {'x tick':>7} {'events/s':>9} {'W.X':>4}"
    )
    print(header)
    rows = []
    for name in args.configs.split(","):
        cfg = layer_config(name)
        fmt = cfg.format
        start = time.perf_counter()
        reference, enc = encode_layer(weights, cfg)
        encode_s = time.perf_counter() - start
        work_times = timings(lambda enc=enc, fmt=fmt: layer_work(fmt, enc), args.repeats)
        work = layer_work(fmt, enc)
        results = []

        def run(work=work, reference=reference, enc=enc, results=results):
            results.append(simulate_layer(work, reference, arch, table, {}, enc.dtype))

        sim_times = timings(run, args.repeats)
        result = results[-1]
        sim_s = statistics.median(sim_times)
        row = {
            "config": name,
            "spec": enc.spec.to_dict(),
            "encode_s": encode_s,
            "work_s": statistics.median(work_times),
            "simulate_s": sim_s,
            "simulate_min_s": min(sim_times),
            "cycles": result.cycles,
            "cycles_per_s": result.cycles / sim_s,
            "vs_tick": result.cycles / sim_s / ticks,
            "events_per_s": result.events / sim_s,
            "product_ok": result.product_ok,
        }
        rows.append(row)
        print(
            f"{name:11} {encode_s:9.2f} {row['work_s']:8.2f} {sim_s:7.2f} {min(sim_times):8.2f} "
            f"{result.cycles:10d} {row['cycles_per_s']:10.3g} {row['vs_tick']:7.1f} "
            f"{row['events_per_s']:9.3g} {'yes' if result.product_ok else 'NO':>4}",
            flush=True,
        )
    if args.json:
        doc = {"size": args.size, "tick_cycles_per_s": ticks, "rows": rows}
        write_json(args.json, doc)


if __name__ == "__main__":
    main()
