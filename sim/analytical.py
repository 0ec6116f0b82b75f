"""Closed-form cycle estimate of a pass, beside the event simulation.

The machine of :mod:`codesign.sim.engine` is a tandem of three stages: the DRAM channel (one
server, rows in order), D decoder units (row r on unit r mod D) and P lanes (row r on
lane r mod P). For N identical rows — a bits, u decoder-unit cycles (decode or bank
read, the slower), M = operands·columns lane cycles (columns = the batch B times the
reuse of :mod:`codesign.sim.geometry`) — the last row finishes at the end of the
longest path through that grid: it runs along the DRAM stream to some row, along one
decoder unit's rows, then along one lane's rows. Its length is linear in the number of
rows taken in each stage, so the maximum is at one of four corners:

* DRAM-bound: A(N) + u + λ + M
* decoder-bound: A(r_d) + h + (⌈(N − r_d)/D⌉ + 1)·u + λ + M, r_d the first row of row N's unit
* lane-bound: A(r_l) + u + λ + (⌈(N − r_l)/P⌉ + 1)·M, r_l the first row of row N's lane
* decoder then lane: A(r_u) + h + ((r_l − r_u)/D + 1)·u + λ + (⌈(N − r_l)/P⌉ + 1)·M,
  r_u the first row of r_l's unit

with A(r) = ⌈r·a / (8·bandwidth)⌉ + DRAM latency (a: the row's DRAM bits, band records
included), h the head cycles of a unit's first row, λ the pass's handoff latency and M
at least one cycle (a lane takes one row a cycle). On the tile (an output port taking
one result a cycle, ``arch.output_cycles`` after its last multiply-accumulate) every
path adds that latency, and a fifth bound counts the port: the first result's path
plus one cycle per further row,

* output: A(1) + h + u + λ + M + (N − 1) + output latency.

For identical rows and buffers and FIFOs deep enough never to fill, without an output
port, this is exactly the simulated cycle count; for real layers it uses the mean row,
so the gap to the simulation measures **lane imbalance** (rows of different lengths),
**decoder imbalance**, **bank conflicts** (D > banks: a unit waits for a bank; the
estimate stretches a decoder unit's period u by D / banks), **buffer or FIFO
backpressure** (capacities the closed form does not see), results queueing at the
**output port** and an LBI **band barrier** (a band record waiting for its buffer).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from codesign.sim.arch import Arch
from codesign.sim.timeline import dram_ticks, lane_time, unit_cycles
from codesign.sim.work import Pass

#: Named bounds of :class:`Estimate`, in report order (``output`` only on the tile).
BOUNDS = ("dram", "decoder", "lane", "decoder+lane", "output")


@dataclasses.dataclass(frozen=True)
class Estimate:
    """Closed-form cycles of a pass: ``cycles`` = the longest of ``paths`` (cycles per
    entry of :data:`BOUNDS`), ``bound`` = which one."""

    cycles: int
    bound: str
    paths: dict[str, float]


def estimate_pass(p: Pass, arch: Arch, columns: int | None = None) -> Estimate:
    """The closed-form estimate of pass ``p`` on ``arch`` with ``columns`` columns of X
    (default: the batch) (see the module docstring)."""
    n = p.rows
    if n == 0:
        return Estimate(0, "dram", dict.fromkeys(BOUNDS, 0.0))
    d, lanes = arch.decoders, arch.lanes
    bits = int(p.dram_bits.sum())
    per_bit, per_cycle = dram_ticks(arch)

    def arrival(r: int) -> float:
        # r mean rows: ⌈r · (bits / n) / (8·bandwidth)⌉ cycles, in exact integers
        return -(-r * bits * per_bit // (n * per_cycle)) + arch.dram_latency_cycles

    u = float(unit_cycles(p, arch).mean())
    walk = u * d / min(d, arch.buffer_banks)
    h = float(max(p.head_cycles + float(p.decode_cycles.mean()), u) - u)
    mac = float(lane_time(p, arch.batch if columns is None else columns).mean())
    lat = p.latency
    r_d = (n - 1) % d + 1
    r_l = (n - 1) % lanes + 1
    r_u = (r_l - 1) % d + 1
    unit_head = h if r_l <= d else 0.0
    paths = {
        "dram": arrival(n) + (h if n <= d else 0.0) + u + lat + mac,
        "decoder": arrival(r_d) + h + (n - r_d) // d * walk + u + lat + mac,
        "lane": arrival(r_l) + unit_head + u + lat + ((n - r_l) // lanes + 1) * mac,
        "decoder+lane": arrival(r_u)
        + h
        + (r_l - r_u) // d * walk
        + u
        + lat
        + ((n - r_l) // lanes + 1) * mac,
    }
    port = arch.output_cycles
    if port is not None:
        paths = {name: path + port for name, path in paths.items()}
        paths["output"] = arrival(1) + h + u + lat + mac + (n - 1) + port
    bound = max(paths, key=paths.__getitem__)
    return Estimate(int(np.ceil(paths[bound] - 1e-9)), bound, paths)
