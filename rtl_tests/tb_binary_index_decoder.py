"""cocotb testbench of the generated LBI binary index decoder (``lbi_decoder.v``).

Run by :mod:`rtl_tests.test_binary_index_decoder` through :mod:`rtl_tests.runner`; the
environment gives ``RTL_SIDECAR`` (spec, latency, port map), ``RTL_MEASURE`` (where the
measured cycle counts go), ``RTL_STIMULI`` (the golden model's cases, see
:mod:`rtl_tests.test_binary_index_decoder`) and ``RTL_SEED``.

Two input streams are driven, split into beats by
:func:`codesign.hw.binary_index_decoder.tile_beats` (``iz``: one zero-padded Iz tile per beat;
``ip``: one row code per beat, ``last`` on a tile's last row) and ``out`` is monitored.
Every output row is compared bit by bit with the expected mask row of its tile (all
``tile_cols`` bits: the out-of-matrix bits of a clipped tile must be 0) and its
``last`` flag.
"""

from __future__ import annotations

import os
from typing import Any

import cocotb
import numpy as np

from codesign.hw.binary_index_decoder import IZ_LOAD_CYCLES, LATENCY, tile_beats
from codesign.models.specs import LbiSpec
from codesign.sim.decoders import lbi_cycles, stream_cycles
from rtl_tests.bench import (
    BenchBase,
    Stimulus,
    interrupt_and_reset,
    reset_pairs,
    run_random_stalls,
    sim_checked,
)
from rtl_tests.streams import Scoreboard, StreamDriver

#: Stall probabilities of the stalled runs: (valid low on iz and ip, out.ready low).
STALLS = ((0.3, 0.3), (0.1, 0.7))
#: Mid-stream resets in the reset test.
RESETS = 4
#: Input streams of the decoder.
SOURCES = ("iz", "ip")


class Case:
    """One matrix: the ``iz`` and ``ip`` beats, the expected output rows, the rows a' of
    each tile, how many tiles are clipped and the simulator's cycles per matrix row
    (``sim_rows``)."""

    def __init__(self, name: str, z: Any, spec: LbiSpec) -> None:
        self.name = name
        shape = tuple(int(s) for s in z[f"{name}/shape"])
        mask = z[f"{name}/mask"]
        tiles = tile_beats(spec, shape, z[f"{name}/ip"], z[f"{name}/iz"])
        self.items = {
            "iz": [{"codes": t.iz} for t in tiles],
            "ip": [
                {"code": code, "last": int(k == len(t.ip) - 1)}
                for t in tiles
                for k, code in enumerate(t.ip)
            ],
        }
        self.expected = [
            {
                "mask": sum(1 << j for j in np.flatnonzero(mask[r, t.c0 : t.c1]).tolist()),
                "last": int(r == t.r1 - 1),
            }
            for t in tiles
            for r in range(t.r0, t.r1)
        ]
        self.tile_rows = [t.r1 - t.r0 for t in tiles]
        self.sim_rows = lbi_cycles(spec.tile_cols, shape)
        self.edge_tiles = sum(
            t.r1 - t.r0 < spec.tile_rows or t.c1 - t.c0 < spec.tile_cols for t in tiles
        )
        self.matrix_bits = int(mask.size)


class Bench(BenchBase):
    """The DUT with its streams, sidecar, cases and a seeded random generator."""

    def __init__(self, dut: Any) -> None:
        super().__init__(dut, SOURCES)
        self.spec = LbiSpec.from_dict(self.sidecar["spec"])
        self.scoreboard = Scoreboard({"mask": self.spec.tile_cols, "last": 1})
        with np.load(os.environ["RTL_STIMULI"]) as z:
            self.cases = [Case(str(name), z, self.spec) for name in z["names"]]

    start = BenchBase.start_streams

    def items(self, cases: list[Case]) -> dict[str, list[dict[str, int]]]:
        """What each stream sends for ``cases`` back to back."""
        return {name: [i for c in cases for i in c.items[name]] for name in SOURCES}

    async def send(self, drivers: dict[str, StreamDriver], cases: list[Case]) -> None:
        """Send ``cases`` back to back on both streams at once."""
        await self.send_items(drivers, self.items(cases))


def _expected(cases: list[Case]) -> list[dict[str, int]]:
    return [row for c in cases for row in c.expected]


@cocotb.test()
async def full_rate(dut: Any) -> None:
    """No stalls, all cases back to back: the first Iz beat takes IZ_LOAD_CYCLES, then one
    row per cycle with no gap at tile or case boundaries (each next Iz beat is taken at
    the edge of the previous tile's last row), every output LATENCY cycles after its
    row; the cycles are the simulator's."""
    bench = Bench(dut)
    drivers, monitor = await bench.start()
    cases = bench.cases
    expected = _expected(cases)
    await bench.send(drivers, cases)
    await monitor.wait_for(len(expected), LATENCY + 4)
    bench.scoreboard.check(monitor.items, expected, "full rate")
    iz, ip, out = drivers["iz"].accepted, drivers["ip"].accepted, monitor.cycles
    rows = [a for c in cases for a in c.tile_rows]
    n = len(expected)
    first = iz[0] + IZ_LOAD_CYCLES
    assert ip == list(range(first, first + n)), "a row was not taken every cycle"
    ends = np.cumsum(rows)[:-1] - 1
    assert iz[1:] == [ip[e] for e in ends], "an Iz beat was not taken with the last row"
    latencies = [o - i for i, o in zip(ip, out, strict=True)]
    assert set(latencies) == {LATENCY}, f"latencies {sorted(set(latencies))}"
    per_case, start = {}, 0
    for case in cases:
        k = len(case.expected)
        per_case[case.name] = {
            "rows": k,
            "tiles": len(case.tile_rows),
            "edge_tiles": case.edge_tiles,
            "cycles_per_output": (out[start + k - 1] - out[start] + 1) / k,
        }
        start += k
    cycles = out[-1] - iz[0] + 1
    bench.record(
        "full_rate",
        {
            "rows": n,
            "tiles": len(rows),
            "edge_tiles": sum(c.edge_tiles for c in cases),
            "stream_cycles": ip[-1] - iz[0] + 1,
            "cycles": cycles,
            **sim_checked(cycles, stream_cycles("lbi", [c.sim_rows for c in cases])),
            "cycles_per_output": (out[-1] - out[0] + 1) / n,
            "latency": min(latencies),
            "iz_load_cycles": ip[0] - iz[0],
            "cases": per_case,
            "matrix_bits": sum(c.matrix_bits for c in cases),
            "bits_compared": bench.scoreboard.bits,
        },
    )


@cocotb.test()
async def random_stalls(dut: Any) -> None:
    """Random valid stalls on ``iz`` and ``ip`` and ready stalls on ``out``: nothing lost,
    duplicated or reordered, no output sooner than LATENCY cycles after its row."""
    bench = Bench(dut)
    await run_random_stalls(
        bench,
        STALLS,
        lambda _: Stimulus(bench.items(bench.cases), _expected(bench.cases)),
        bench.scoreboard.check,
        "rows",
        timeout_per_item=40,
        latency=LATENCY,
        timed="ip",
        noun="row",
        first="iz",
    )


@cocotb.test()
async def reset_mid_stream(dut: Any) -> None:
    """Reset while a case streams in under stalls: the rows before the reset are a prefix
    of that case's, the output is empty right after the reset, and a fresh case (its
    own Iz beats; a decoder still holding the old Iz would decode it wrongly) then
    decodes exactly."""
    bench = Bench(dut)
    drivers, monitor = await bench.start(0.2, 0.3)
    cases = bench.cases
    for k, interrupted, fresh in reset_pairs(cases, RESETS):
        await interrupt_and_reset(
            bench, drivers, bench.send(drivers, [interrupted]), len(interrupted.expected)
        )
        bench.scoreboard.check_prefix(monitor.items, interrupted.expected, f"before reset {k}")
        monitor.clear()
        await bench.send(drivers, [fresh])
        await monitor.wait_for(len(fresh.expected), 40 * len(fresh.expected))
        bench.scoreboard.check(monitor.items, fresh.expected, f"after reset {k}")
        monitor.clear()
    bench.record("reset_mid_stream", {"resets": RESETS, **bench.compared()})
