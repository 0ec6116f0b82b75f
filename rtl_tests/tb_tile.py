"""cocotb testbench of the generated sparse tile (``sparse_tile.v``).

Run by :mod:`rtl_tests.test_tile` through :mod:`rtl_tests.runner`; the environment gives
``RTL_SIDECAR``, ``RTL_MEASURE``, ``RTL_SEED`` and ``RTL_STIMULI``: an ``.npz`` with, per
layer (``names``), its weight stream (``words``: one row of bytes per stream word,
little-endian; ``last``), activations ``x`` (n, B) and the expected ``y`` (m, B): numpy's
product of the golden model's decode with X (int64), never the RTL's own output.

Every Y beat is checked: each row exactly once, its B accumulators equal to the expected
values modulo 2^accumulator_bits (two's complement), bit for bit.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge

from rtl_tests.bench import BenchBase, interrupt_and_reset
from rtl_tests.streams import StreamDriver, StreamMonitor

#: Stall probabilities (weight and activation valid low, Y ready low), used in turn.
STALLS = ((0.3, 0.3), (0.1, 0.6))
#: The reset of a stalled layer comes this many cycles at most (a random number) after
#: the layer's k-th Y row, k drawn from 0 … m − 1: while the layer is in flight.
RESET_JITTER = 16


@dataclasses.dataclass
class Layer:
    """One layer's stimulus: ``x`` items, ``w`` items and the expected rows."""

    name: str
    x: list[dict[str, int]]
    w: list[dict[str, int]]
    expected: np.ndarray


class TileBench(BenchBase):
    """The tile with its ``x`` and ``w`` drivers, the ``y`` monitor and the layers."""

    def __init__(self, dut: Any) -> None:
        super().__init__(dut, ("x", "w"), output="y")
        params = self.sidecar["params"]
        self.acc_bits = params["accumulator_bits"]
        self.act_bits = params["activation_bits"]
        self.batch = params["batch"]
        self.row_bits = params["row_bits"]
        self.bits = 0
        with np.load(os.environ["RTL_STIMULI"]) as z:
            self.layers = [self._layer(z, str(name)) for name in z["names"]]

    def _layer(self, z: Any, name: str) -> Layer:
        mask = (1 << self.act_bits) - 1
        x = [
            {"data": sum((int(v) & mask) << (b * self.act_bits) for b, v in enumerate(row))}
            for row in z[f"{name}/x"]
        ]
        x[-1]["last"] = 1
        words = z[f"{name}/words"]
        last = z[f"{name}/last"]
        w = [
            {"data": int.from_bytes(bytes(row), "little"), "last": int(flag)}
            for row, flag in zip(words, last, strict=True)
        ]
        return Layer(name, x, w, z[f"{name}/y"])

    async def send(self, drivers: dict[str, StreamDriver], layer: Layer) -> None:
        """X, then the weight stream (stops early when the drivers are aborted)."""
        if await drivers["x"].send(layer.x) == len(layer.x):
            await drivers["w"].send(layer.w)

    def rows(self, items: list[dict[str, int]]) -> dict[int, list[int]]:
        """Y beats by row, each accumulator as a signed integer."""
        out: dict[int, list[int]] = {}
        mask = (1 << self.acc_bits) - 1
        for item in items:
            word = item["y"]
            values = [(word >> (b * self.acc_bits)) & mask for b in range(self.batch)]
            signed = [v - ((v >> (self.acc_bits - 1)) << self.acc_bits) for v in values]
            assert item["row"] not in out, f"row {item['row']} came out twice"
            out[item["row"]] = signed
        return out

    def check(self, items: list[dict[str, int]], layer: Layer, what: str, whole: bool = True):
        """Every beat's row and accumulators equal the expected ones (all rows when
        ``whole``); counts the bits compared."""
        got = self.rows(items)
        m = layer.expected.shape[0]
        if whole:
            assert sorted(got) == list(range(m)), (
                f"{what}: rows {sorted(set(range(m)) - set(got))} missing"
            )
        modulus = 1 << self.acc_bits
        for row, values in got.items():
            assert row < m, f"{what}: row {row} beyond the layer's {m}"
            want = [int(v) % modulus for v in layer.expected[row]]
            have = [v % modulus for v in values]
            assert have == want, (
                f"{what}: row {row}: got {values}, expected {list(layer.expected[row])}"
            )
        self.bits += len(got) * (self.row_bits + self.batch * self.acc_bits)

    async def after_rows(self, monitor: StreamMonitor, rows: int, timeout: int) -> None:
        """Once ``rows`` Y rows came out, 0 … :data:`RESET_JITTER` − 1 cycles more."""
        await monitor.wait_for(rows, timeout)
        for _ in range(self.rng.randrange(RESET_JITTER)):
            await RisingEdge(self.clk)

    async def run(self, layer: Layer, stalls: tuple[float, float] = (0.0, 0.0)):
        """Reset, send ``layer`` and check all its rows; returns the drivers and monitor."""
        drivers, monitor = await self.start_streams(*stalls)
        await self.send(drivers, layer)
        m = layer.expected.shape[0]
        await monitor.wait_for(m, 200 * (len(layer.w) + m) + 1000)
        self.check(monitor.items, layer, f"{layer.name} stalls {stalls}")
        return drivers, monitor


@cocotb.test()
async def full_rate(dut: Any) -> None:
    """Every layer with no stall: Y exact; the cycles from the first weight handshake to
    the last Y handshake, both counted, are what the simulator must predict."""
    bench = TileBench(dut)
    figures = {}
    for layer in bench.layers:
        drivers, monitor = await bench.run(layer)
        accepted = drivers["w"].accepted
        figures[layer.name] = {
            "cycles": monitor.cycles[-1] - accepted[0] + 1,
            "rows": int(layer.expected.shape[0]),
            "words": len(layer.w),
            "w_stalls": accepted[-1] - accepted[0] + 1 - len(accepted),
        }
        monitor.stop()
    bench.record("full_rate", {"layers": figures, "bits_compared": bench.bits})


@cocotb.test()
async def random_stalls(dut: Any) -> None:
    """Every layer under random stalls on the activation and weight streams (valid
    low) and on Y (ready low), the two settings of :data:`STALLS` in turn, twice: first
    interrupted by a reset while in flight (:meth:`TileBench.after_rows`: the rows out
    before it are right, nothing is valid after it), then sent whole: Y exact, and no Y beat dropped
    or changed while ready is low (the monitor)."""
    bench = TileBench(dut)
    runs = []
    for k, layer in enumerate(bench.layers):
        stalls = STALLS[k % len(STALLS)]
        drivers, monitor = await bench.start_streams(*stalls)
        m = layer.expected.shape[0]
        rows = bench.rng.randrange(m)
        until = bench.after_rows(monitor, rows, 200 * (len(layer.w) + m) + 1000)
        await interrupt_and_reset(bench, drivers, bench.send(drivers, layer), until=until)
        bench.check(monitor.items, layer, f"{layer.name}: before reset", whole=False)
        rows_before = len(monitor.items)
        monitor.clear()
        await bench.send(drivers, layer)
        await monitor.wait_for(m, 200 * (len(layer.w) + m) + 1000)
        bench.check(monitor.items, layer, f"{layer.name} after reset, stalls {stalls}")
        runs.append(
            {
                "layer": layer.name,
                "valid_stall": stalls[0],
                "ready_stall": stalls[1],
                "rows_before_reset": rows_before,
                "cycles": monitor.cycles[-1] - drivers["w"].accepted[0] + 1,
                "held_cycles_checked": monitor.held,
            }
        )
        monitor.stop()
    bench.record("random_stalls", {"runs": runs, "bits_compared": bench.bits})
