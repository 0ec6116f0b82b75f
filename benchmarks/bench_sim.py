"""Simulator speed: a 4096×4096 layer at 90 % sparsity in every format, batch 1 and 16.

Usage: python benchmarks/bench_sim.py [--size 4096] [--repeats 3] [--batches 1,16]
[--configs csr,viterbi] [--json OUT]

Per example configuration (format, spec, sparsity and quantization from
``experiments/configs/sim_<name>.yaml``; LBI on 64×64 tiles at rank 8, the tile size of
its own benchmark) the layer is compressed once (``encode`` seconds, not part of the
simulator, served by the encoded-layer cache after the first run), then timed, median
of ``--repeats`` runs after one warm-up: ``work`` (per-row work read from the streams,
:func:`codesign.sim.decoders.layer_work`) and, per batch, :func:`codesign.sim.run.simulate_layer`
with each engine (:data:`codesign.sim.engine.ENGINES`):

* ``event``: the SimPy processes (the reference) — µs per row and events per row of
  the engine alone, and its simulated cycles per second;
* ``rec``: the row-order recurrence (same cycles; checked here too) — simulated cycles
  per second of the engine alone;
* ``layer``: simulated cycles per wall-second of the whole ``simulate_layer`` with the
  default engine (engine + the lanes' product + the closed form + energy + numpy's
  reference product for the check).

The baseline measured in the same run: a SimPy clock process that ticks once per cycle
and does nothing else (the floor of any cycle-stepped model), timed on 200 000 ticks;
``x tick`` is the event engine's cycles per second over it.

Recorded on the shared 2-core machine (load average about 3.5; medians of 3; the
recurrence is the default engine, so ``layer`` uses it): in every format the SimPy
engine takes 8–16 µs and about 4 events per row (3.2–3.4 at batch 16); on csr it
simulates 7.4 M cycles/s at batch 1 and 36 M at batch 16 (4–21× the ticking clock), the
recurrence 2.2 G and 8.2 G, and the whole ``simulate_layer`` 4.8 M and 15 M (most of it
numpy's reference product of the check: the int8 matrix converted and multiplied). The
before/after comparison with the previous engine on the same pass is in
docs/simulator.md, "Speed".
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import numpy as np
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


def timed_layer(work, reference, arch, table, dtype, engine: str, repeats: int):
    """(median wall seconds of ``simulate_layer``, median engine seconds, last result)."""
    results = []

    def run():
        results.append(simulate_layer(work, reference, arch, table, {}, dtype, engine=engine))

    walls = timings(run, repeats)
    engines = [sum(p.engine_s for p in r.passes) for r in results[1:]]
    return statistics.median(walls), statistics.median(engines), results[-1]


def bench_layer(name: str, weights: np.ndarray, batches: list[int], repeats: int, table):
    """Rows of one configuration: encode and work times, then one row per batch."""
    cfg = layer_config(name)
    start = time.perf_counter()
    reference, enc = encode_layer(weights, cfg)
    encode_s = time.perf_counter() - start
    work_s = statistics.median(timings(lambda: layer_work(name, enc), repeats))
    work = layer_work(name, enc)
    rows_m = sum(p.rows for p in work.passes)
    out = []
    for batch in batches:
        arch = dataclasses.replace(Arch(), batch=batch)
        figures = {}
        for engine in ("event", "recurrence", "auto"):
            figures[engine] = timed_layer(work, reference, arch, table, enc.dtype, engine, repeats)
        event, fast, auto = (figures[e][2] for e in ("event", "recurrence", "auto"))
        assert [p.cycles for p in event.passes] == [p.cycles for p in fast.passes]
        cycles = event.cycles
        out.append(
            {
                "config": name,
                "spec": enc.spec.to_dict(),
                "batch": batch,
                "rows": rows_m,
                "encode_s": encode_s,
                "work_s": work_s,
                "cycles": cycles,
                "event_us_per_row": figures["event"][1] / rows_m * 1e6,
                "events_per_row": event.events / rows_m,
                "event_cycles_per_s": cycles / figures["event"][1],
                "recurrence_cycles_per_s": cycles / figures["recurrence"][1],
                "layer_s": figures["auto"][0],
                "layer_cycles_per_s": cycles / figures["auto"][0],
                "layer_engine": auto.passes[0].engine,
                "product_ok": auto.product_ok,
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batches", default="1,16", help="comma-separated batch sizes")
    parser.add_argument(
        "--configs",
        default=",".join([*FORMATS, "viterbi_xor"]),
        help="names of experiments/configs/sim_<name>.yaml",
    )
    parser.add_argument("--json", metavar="OUT")
    args = parser.parse_args()
    weights = synthetic("gaussian", (args.size, args.size), 0)
    table = load_table(None)
    ticks = statistics.median(tick_rate() for _ in range(3))
    batches = [int(b) for b in args.batches.split(",")]
    print(f"{args.size}x{args.size}, batches {batches}, arch {Arch()}")
    print(f"baseline: a SimPy clock ticking every cycle runs {ticks:.3g} cycles/s")
    print(
        f"{'config':11} {'B':>3} {'encode s':>8} {'work s':>7} {'cycles':>9} {'event us/row':>12} "
        f"{'ev/row':>6} {'event cyc/s':>11} {'x tick':>7} {'rec cyc/s':>10} {'layer s':>8} "
        f"{'layer cyc/s':>11} {'W.X':>4}"
    )
    rows = []
    for name in args.configs.split(","):
        for row in bench_layer(name, weights, batches, args.repeats, table):
            row["vs_tick"] = row["event_cycles_per_s"] / ticks
            rows.append(row)
            print(
                f"{name:11} {row['batch']:3d} {row['encode_s']:8.2f} {row['work_s']:7.3f} "
                f"{row['cycles']:9d} {row['event_us_per_row']:12.1f} "
                f"{row['events_per_row']:6.2f} {row['event_cycles_per_s']:11.3g} "
                f"{row['vs_tick']:7.1f} {row['recurrence_cycles_per_s']:10.3g} "
                f"{row['layer_s']:8.3f} {row['layer_cycles_per_s']:11.3g} "
                f"{'yes' if row['product_ok'] else 'NO':>4}",
                flush=True,
            )
    if args.json:
        doc = {"size": args.size, "tick_cycles_per_s": ticks, "rows": rows}
        write_json(args.json, doc)


if __name__ == "__main__":
    main()
