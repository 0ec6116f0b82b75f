"""cocotb testbench of the generated Viterbi decompressor (``viterbi.v``).

Run by :mod:`rtl_tests.test_viterbi_decompressor` through :mod:`rtl_tests.runner`; the
environment gives ``RTL_SIDECAR`` (the JSON sidecar: spec, latency, port map, taps),
``RTL_MEASURE`` (where the measured cycle counts go), ``RTL_STIMULI`` (an ``.npz`` with,
per matrix, the golden encoding's VD input integers ``NAME.inputs`` and the golden
decode's mask ``NAME.mask``) and ``RTL_SEED``.

A matrix is sent as its VD cycles in order, ``first`` set every ``spec.segment`` cycles
(as :func:`models.viterbi_decompressor.expand_matrix` cuts segments); a random stream
has random input bits and random segment lengths. The expected mask word of every cycle
is :func:`models.viterbi_decompressor.expand` of its segment (all n_out bits, the last
cycle of a matrix included), checked first against the golden decode's mask; every
output (``mask``, ``first``) is compared bit by bit.
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

from models.specs import ViterbiSpec
from models.viterbi_decompressor import expand, unpack_inputs
from rtl_tests.streams import (
    Scoreboard,
    StreamDriver,
    StreamMonitor,
    StreamPort,
    load_sidecar,
    reset,
    start_clock,
)

#: VD cycles of the random stream.
RANDOM_CYCLES = 120
#: Stall probabilities of the stalled runs: (input valid low, output ready low).
STALLS = ((0.3, 0.3), (0.1, 0.7))
#: Mid-stream resets per reset test.
RESETS = 4


class Case:
    """One input stream: ``inputs`` ({"u", "first"} per cycle) and the golden
    ``expected`` outputs ({"mask", "first"} per cycle)."""

    def __init__(self, source: str, spec: ViterbiSpec, words: np.ndarray, lengths: list[int]):
        self.source = source
        self.segments = len(lengths)
        self.inputs: list[dict[str, int]] = []
        self.expected: list[dict[str, int]] = []
        weights = 1 << np.arange(spec.n_out)
        start = 0
        for length in lengths:
            segment = words[start : start + length]
            masks = expand(spec, unpack_inputs(spec, segment)) @ weights
            for t, (u, mask) in enumerate(zip(segment, masks, strict=True)):
                self.inputs.append({"u": int(u), "first": int(t == 0)})
                self.expected.append({"mask": int(mask), "first": int(t == 0)})
            start += length
        assert start == len(words), f"{source}: segments do not cover the stream"

    def mask_bits(self, n_out: int) -> np.ndarray:
        """The expected mask bits in stream order (cycle t, bit j at t·n_out + j)."""
        words = np.array([e["mask"] for e in self.expected], dtype=np.int64)
        return ((words[:, None] >> np.arange(n_out)) & 1).ravel().astype(bool)


class Bench:
    """The DUT with its streams, sidecar and a seeded random generator."""

    def __init__(self, dut: Any) -> None:
        self.dut = dut
        self.sidecar = load_sidecar(os.environ["RTL_SIDECAR"])
        self.spec = ViterbiSpec.from_dict(self.sidecar["spec"])
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
        """Back-to-back streams: the golden encodings of ``RTL_STIMULI`` (in file order,
        each checked against its golden decode), then a random stream."""
        spec, cases = self.spec, []
        with np.load(os.environ["RTL_STIMULI"]) as stimuli:
            names = [key.removesuffix(".inputs") for key in stimuli if key.endswith(".inputs")]
            for name in names:
                words, mask = stimuli[f"{name}.inputs"], stimuli[f"{name}.mask"]
                full, tail = divmod(len(words), spec.segment)
                case = Case(name, spec, words, [spec.segment] * full + [tail] * (tail > 0))
                got = case.mask_bits(spec.n_out)[: mask.size]
                assert np.array_equal(got, mask.ravel()), f"{name}: expand != golden decode"
                cases.append(case)
        rng = np.random.default_rng(seed)
        words = rng.integers(0, 1 << spec.n_in, size=RANDOM_CYCLES)
        lengths: list[int] = [1, 1]
        while sum(lengths) < RANDOM_CYCLES:
            lengths.append(int(rng.integers(1, 2 * spec.segment + 1)))
        lengths[-1] -= sum(lengths) - RANDOM_CYCLES
        cases.append(Case("random-stream", spec, words, lengths))
        return cases

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
    """No stalls: one input and one mask word per cycle, every output LATENCY cycles
    after its input, across back-to-back matrices and segments."""
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
            "outputs": n,
            "mask_bits": n * bench.spec.n_out,
            "cycles": last_out - first_in + 1,
            "cycles_per_output": (last_out - monitor.cycles[0] + 1) / n,
            "latency": monitor.cycles[0] - first_in,
            "streams": [
                {"source": c.source, "cycles": len(c.inputs), "segments": c.segments} for c in cases
            ],
            "bits_compared": bench.scoreboard.bits,
        },
    )


@cocotb.test()
async def random_stalls(dut: Any) -> None:
    """Random valid and ready stalls: nothing lost, duplicated or reordered (a stall
    holds the state), and an output never takes fewer than LATENCY cycles."""
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
                "outputs": len(expected),
                "cycles": monitor.cycles[-1] - driver.accepted[0] + 1,
            }
        )
        monitor.stop()
    bench.record("random_stalls", {"runs": figures, "bits_compared": bench.scoreboard.bits})


@cocotb.test()
async def reset_mid_stream(dut: Any) -> None:
    """Reset in the middle of a segment under stalls: the outputs before the reset are a
    prefix of that stream's, the output is empty after the reset, and a fresh stream
    (its first cycle sent with and without ``first``: the reset zeroes the state) then
    expands exactly."""
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
        first = k % 2
        await driver.send([{**fresh.inputs[0], "first": first}, *fresh.inputs[1:]])
        expected = [{**fresh.expected[0], "first": first}, *fresh.expected[1:]]
        await monitor.wait_for(len(expected), 20 * len(expected))
        bench.scoreboard.check(monitor.items, expected, f"after reset {k}")
        monitor.clear()
    bench.record("reset_mid_stream", {"resets": RESETS, "bits_compared": bench.scoreboard.bits})
