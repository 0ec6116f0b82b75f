"""cocotb testbench of the generated relative-index decoder (``relative.v``).

Run by :mod:`rtl_tests.test_relative` through :mod:`rtl_tests.runner`; the environment
gives ``RTL_SIDECAR`` (the JSON sidecar: spec, parameters, latency, port map),
``RTL_MEASURE`` (where the measured cycle counts go), ``RTL_STIMULI`` (an ``.npz`` of
pruned integer weight matrices) and ``RTL_SEED``.

Stimuli are encodings by the golden model (``models.registry.get_format("relative")``)
of the ``RTL_STIMULI`` matrices and of random (gap, value) streams; every output (row,
col, value, valid_weight) is compared bit by bit with the positions and values of the
golden decode.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge

from models.format import Encoded, Stream
from models.registry import get_format
from models.specs import RelativeSpec, Spec
from rtl_tests.streams import (
    Scoreboard,
    StreamDriver,
    StreamMonitor,
    StreamPort,
    load_sidecar,
    reset,
    start_clock,
)

FORMAT = get_format("relative")
#: Entries of the random (gap, value) stream.
RANDOM_ENTRIES = 160
#: Stall probabilities of the stalled runs: (input valid low, output ready low).
STALLS = ((0.3, 0.3), (0.1, 0.7))
#: Mid-stream resets per reset test.
RESETS = 4


class Case:
    """One matrix sent to the decoder: its input items and the expected outputs (rows
    modulo 2^row_bits, values as value_bits-bit patterns)."""

    def __init__(self, source: str, enc: Encoded, value_bits: int, row_bits: int) -> None:
        self.source = source
        gaps = enc.streams["gaps"].data
        values = enc.streams["values"].data
        vmask = (1 << value_bits) - 1
        self.inputs = [
            {"gap": int(g), "value": int(v) & vmask, "first": int(i == 0)}
            for i, (g, v) in enumerate(zip(gaps, values, strict=True))
        ]
        decoded = FORMAT.decode(enc)
        pos = np.flatnonzero(decoded.mask.ravel())
        assert pos.size == len(self.inputs), f"{source}: golden decode lost entries"
        n_cols = enc.shape[1]
        flat = decoded.weights.ravel()
        self.expected = [
            {
                "row": int(p // n_cols) % (1 << row_bits),
                "col": int(p % n_cols),
                "value": int(flat[p]) & vmask,
                "valid_weight": int(flat[p] != 0),
            }
            for p in pos
        ]

    def with_first(self, first: int) -> list[dict[str, int]]:
        """The inputs with the first entry's ``first`` flag set to ``first``."""
        return [{**self.inputs[0], "first": first}, *self.inputs[1:]]


class Bench:
    """The DUT with its streams, sidecar and a seeded random generator."""

    def __init__(self, dut: Any) -> None:
        self.dut = dut
        self.sidecar = load_sidecar(os.environ["RTL_SIDECAR"])
        self.spec: Spec = RelativeSpec.from_dict(self.sidecar["spec"])
        self.params: dict[str, int] = self.sidecar["params"]
        self.latency: int = self.sidecar["latency"]
        ports = self.sidecar["ports"]
        self.clk = getattr(dut, ports["clk"]["port"])
        self.rst = getattr(dut, ports["rst"]["port"])
        self.inp = StreamPort(dut, ports, "in")
        self.out = StreamPort(dut, ports, "out")
        self.rng = random.Random(int(os.environ.get("RTL_SEED", "0")))
        self.scoreboard = Scoreboard({f: w for f, (_, w) in self.out.fields.items()})
        self._clocked = False

    async def start(
        self, valid_stall: float = 0.0, ready_stall: float = 0.0
    ) -> tuple[StreamDriver, StreamMonitor]:
        """Clock (once), reset, a driver and a started monitor."""
        if not self._clocked:
            start_clock(self.clk)
            self._clocked = True
        driver = StreamDriver(self.inp, self.clk, self.rng, valid_stall)
        monitor = StreamMonitor(self.out, self.clk, self.rng, ready_stall)
        await reset(self.clk, self.rst)
        monitor.start()
        return driver, monitor

    def cases(self, seed: int) -> list[Case]:
        """Back-to-back stimulus matrices: the weight matrices of ``RTL_STIMULI`` (an
        ``.npz`` of integer (rows, n_cols) matrices, in file order), then a random
        (gap, value) stream."""
        bits = self.params["value_bits"], self.params["row_bits"]
        with np.load(os.environ["RTL_STIMULI"]) as stimuli:
            cases = [Case(name, FORMAT.encode(stimuli[name], self.spec), *bits) for name in stimuli]
        cases.append(Case("random-stream", self._random_stream(seed), *bits))
        return cases

    def _random_stream(self, seed: int) -> Encoded:
        rng = np.random.default_rng(seed)
        r, n_cols, vb = self.spec.r, self.params["n_cols"], self.params["value_bits"]
        gaps = rng.integers(0, 1 << r, size=RANDOM_ENTRIES)
        values = rng.integers(0, 1 << vb, size=RANDOM_ENTRIES) * (rng.random(RANDOM_ENTRIES) > 0.2)
        rows = -(-int((gaps + 1).sum()) // n_cols)
        streams = {"gaps": Stream(gaps, r, "index"), "values": Stream(values, vb, "value")}
        return Encoded(
            format="relative",
            spec=self.spec,
            shape=(rows, n_cols),
            dtype=np.dtype(np.int64),
            streams=streams,
            nnz=int(np.count_nonzero(values)),
            stored_values=RANDOM_ENTRIES,
            index_bits=RANDOM_ENTRIES * r,
            value_bits=RANDOM_ENTRIES * vb,
        )

    def record(self, test: str, figures: dict[str, Any]) -> None:
        """Add ``figures`` under ``test`` to the measurement file."""
        path = Path(os.environ["RTL_MEASURE"])
        data = json.loads(path.read_text()) if path.exists() else {}
        data[test] = figures
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def _concat(cases: list[Case]) -> tuple[list[dict[str, int]], list[dict[str, int]]]:
    return (
        [item for c in cases for item in c.inputs],
        [item for c in cases for item in c.expected],
    )


@cocotb.test()
async def full_rate(dut: Any) -> None:
    """No stalls: one input and one output per cycle, every output LATENCY cycles after
    its input, across back-to-back matrices."""
    bench = Bench(dut)
    driver, monitor = await bench.start()
    cases = bench.cases(seed=1)
    inputs, expected = _concat(cases)
    await driver.send(inputs)
    await monitor.wait_for(len(expected), bench.latency + 4)
    bench.scoreboard.check(monitor.items, expected, "full rate")
    n = len(expected)
    first_in, last_out = driver.accepted[0], monitor.cycles[-1]
    assert driver.accepted == list(range(first_in, first_in + n)), "input stalled at full rate"
    assert monitor.cycles == list(range(first_in + bench.latency, first_in + bench.latency + n))
    bench.record(
        "full_rate",
        {
            "entries": n,
            "cycles": last_out - first_in + 1,
            "cycles_per_output": (last_out - monitor.cycles[0] + 1) / n,
            "latency": monitor.cycles[0] - first_in,
            "matrices": [{"source": c.source, "entries": len(c.inputs)} for c in cases],
            "bits_compared": bench.scoreboard.bits,
        },
    )


@cocotb.test()
async def random_stalls(dut: Any) -> None:
    """Random valid and ready stalls: nothing lost, duplicated or reordered, and an
    output never takes fewer than LATENCY cycles after its input."""
    bench = Bench(dut)
    figures = []
    for k, (valid_stall, ready_stall) in enumerate(STALLS):
        driver, monitor = await bench.start(valid_stall, ready_stall)
        cases = bench.cases(seed=10 + k)
        inputs, expected = _concat(cases)
        await driver.send(inputs)
        await monitor.wait_for(len(expected), 20 * len(expected))
        for _ in range(8):
            await RisingEdge(bench.clk)
        bench.scoreboard.check(monitor.items, expected, f"stalls {valid_stall}/{ready_stall}")
        gaps = [o - i for i, o in zip(driver.accepted, monitor.cycles, strict=True)]
        assert min(gaps) >= bench.latency, f"an output came {min(gaps)} cycles after its input"
        figures.append(
            {
                "valid_stall": valid_stall,
                "ready_stall": ready_stall,
                "entries": len(expected),
                "cycles": monitor.cycles[-1] - driver.accepted[0] + 1,
            }
        )
        monitor.stop()
    bench.record("random_stalls", {"runs": figures, "bits_compared": bench.scoreboard.bits})


@cocotb.test()
async def reset_mid_stream(dut: Any) -> None:
    """Reset while a matrix streams in under stalls: the outputs before the reset are a
    prefix of that matrix's, the output is empty after the reset, and a fresh matrix
    (sent with and without its ``first`` flag) then decodes exactly."""
    bench = Bench(dut)
    driver, monitor = await bench.start(0.2, 0.3)
    cases = bench.cases(seed=20)
    for k in range(RESETS):
        interrupted, fresh = cases[k % len(cases)], cases[(k + 1) % len(cases)]
        task = cocotb.start_soon(driver.send(interrupted.inputs))
        for _ in range(bench.rng.randrange(3, len(interrupted.inputs))):
            await RisingEdge(bench.clk)
        driver.abort()
        await task
        await reset(bench.clk, bench.rst, cycles=bench.rng.randrange(1, 4))
        await RisingEdge(bench.clk)
        assert not bench.out.valid.value, "output valid right after reset"
        bench.scoreboard.check_prefix(monitor.items, interrupted.expected, f"before reset {k}")
        monitor.clear()
        await driver.send(fresh.with_first(k % 2))
        await monitor.wait_for(len(fresh.expected), 20 * len(fresh.expected))
        bench.scoreboard.check(monitor.items, fresh.expected, f"after reset {k}")
        monitor.clear()
    bench.record("reset_mid_stream", {"resets": RESETS, "bits_compared": bench.scoreboard.bits})
