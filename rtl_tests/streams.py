"""Reusable cocotb pieces for valid/ready streams, located through a block's sidecar.

* :class:`StreamPort`: the handles of one stream (``in``, ``out``, …) found from the
  sidecar's ``ports`` map, with payload packing and unpacking by field;
* :class:`StreamDriver`: sends payloads, holding each until accepted, with random idle
  cycles (``valid`` low) and an abort for mid-stream resets;
* :class:`StreamMonitor`: drives ``ready`` with random stalls and records every
  handshake with its cycle;
* :class:`Scoreboard`: compares received payloads with expected ones field by field
  and counts the bits compared;
* :func:`start_clock`, :func:`cycle`, :func:`reset`.

Handshakes are sampled right after a rising edge, when signals still hold the values
the flip-flops sampled at that edge; new values are written then and take effect before
the next edge.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import cocotb
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import RisingEdge

#: Clock period of every RTL test, in ns.
PERIOD_NS = 10


def load_sidecar(path: str | Path) -> dict[str, Any]:
    """The JSON sidecar written by :func:`codesign.hw.build.write`."""
    return json.loads(Path(path).read_text())


def start_clock(clk: Any) -> None:
    """Drive ``clk`` with a :data:`PERIOD_NS` ns clock."""
    Clock(clk, PERIOD_NS, unit="ns").start()


def cycle() -> int:
    """Index of the current clock cycle (rising edge k happens in cycle k)."""
    return round(get_sim_time(unit="ns") / PERIOD_NS)


async def reset(clk: Any, rst: Any, cycles: int = 2) -> None:
    """Hold the synchronous reset ``rst`` high for ``cycles`` rising edges."""
    rst.value = 1
    for _ in range(cycles):
        await RisingEdge(clk)
    rst.value = 0


class StreamPort:
    """The ``valid``, ``ready`` and ``payload`` handles of stream ``name`` of ``dut``.

    ``ports``: the sidecar's ``ports`` map; ``fields`` maps each payload field (the key
    after ``NAME.payload.``) to its ``(lsb, width)`` inside the payload port.
    """

    def __init__(self, dut: Any, ports: dict[str, dict[str, Any]], name: str) -> None:
        self.name = name
        self.valid = getattr(dut, ports[f"{name}.valid"]["port"])
        self.ready = getattr(dut, ports[f"{name}.ready"]["port"])
        self.payload = getattr(dut, ports[f"{name}.payload"]["port"])
        prefix = f"{name}.payload."
        self.fields = {
            key[len(prefix) :]: (entry["lsb"], entry["width"])
            for key, entry in ports.items()
            if key.startswith(prefix)
        }

    def pack(self, item: dict[str, int]) -> int:
        """Payload word of ``item`` (field -> unsigned value; fields not given are 0)."""
        word = 0
        for field, value in item.items():
            lsb, width = self.fields[field]
            if not 0 <= value < 1 << width:
                raise ValueError(f"{self.name}.payload.{field} = {value} does not fit {width} bits")
            word |= value << lsb
        return word

    def unpack(self, word: int) -> dict[str, int]:
        """Field values of a payload word."""
        return {f: (word >> lsb) & ((1 << w) - 1) for f, (lsb, w) in self.fields.items()}


class StreamDriver:
    """Source side of a stream: presents payloads on ``valid``/``payload`` in order.

    Before each payload the driver idles (``valid`` low) for a cycle with probability
    ``stall``, repeatedly; a presented payload is held until a rising edge sees
    ``ready`` high. ``accepted`` lists the cycle of every handshake.
    """

    def __init__(self, port: StreamPort, clk: Any, rng: random.Random, stall: float = 0.0):
        self.port, self.clk, self.rng, self.stall = port, clk, rng, stall
        self.accepted: list[int] = []
        self._abort = False
        port.valid.value = 0

    def abort(self) -> None:
        """Make a running :meth:`send` drop ``valid`` and return at the next edge."""
        self._abort = True

    async def send(self, items: Iterable[dict[str, int]]) -> int:
        """Send ``items`` (field dicts); return how many were accepted."""
        self._abort = False
        sent = 0
        for item in items:
            while self.rng.random() < self.stall:
                self.port.valid.value = 0
                await RisingEdge(self.clk)
                if self._abort:
                    return sent
            self.port.payload.value = self.port.pack(item)
            self.port.valid.value = 1
            while True:
                await RisingEdge(self.clk)
                if self.port.ready.value:
                    self.accepted.append(cycle())
                    sent += 1
                    break
                if self._abort:
                    break
            if self._abort:
                break
        self.port.valid.value = 0
        return sent


class StreamMonitor:
    """Sink side of a stream: drives ``ready`` (low with probability ``stall`` each cycle)
    and records every handshake: ``items`` (field dicts) and ``cycles``."""

    def __init__(self, port: StreamPort, clk: Any, rng: random.Random, stall: float = 0.0):
        self.port, self.clk, self.rng, self.stall = port, clk, rng, stall
        self.items: list[dict[str, int]] = []
        self.cycles: list[int] = []
        self._task: Any = None

    def start(self) -> None:
        """Start recording in the background."""
        self._task = cocotb.start_soon(self._run())

    def stop(self) -> None:
        """Stop recording and drop ``ready``."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self.port.ready.value = 0

    def clear(self) -> None:
        """Forget what was recorded."""
        self.items.clear()
        self.cycles.clear()

    async def wait_for(self, count: int, timeout_cycles: int) -> None:
        """Wait until ``count`` items were recorded (AssertionError after
        ``timeout_cycles`` cycles)."""
        for _ in range(timeout_cycles):
            if len(self.items) >= count:
                return
            await RisingEdge(self.clk)
        raise AssertionError(
            f"{self.port.name}: {len(self.items)} of {count} items after {timeout_cycles} cycles"
        )

    async def _run(self) -> None:
        while True:
            ready = int(self.rng.random() >= self.stall)
            self.port.ready.value = ready
            await RisingEdge(self.clk)
            if ready and self.port.valid.value:
                self.items.append(self.port.unpack(int(self.port.payload.value)))
                self.cycles.append(cycle())


class Scoreboard:
    """Compares received items with expected ones on the fields in ``widths``
    (field -> bits) and counts the items and bits compared."""

    def __init__(self, widths: dict[str, int]) -> None:
        self.widths = widths
        self.items = 0
        self.bits = 0

    def check(
        self, got: Sequence[dict[str, int]], expected: Sequence[dict[str, int]], what: str
    ) -> None:
        """Assert ``got`` equals ``expected`` item by item (count included)."""
        for i, (g, e) in enumerate(zip(got, expected, strict=False)):
            bad = {f: (g[f], e[f]) for f in self.widths if g[f] != e[f]}
            assert not bad, f"{what}: item {i}: field (got, expected) {bad}"
        assert len(got) == len(expected), f"{what}: got {len(got)} items, expected {len(expected)}"
        self.items += len(expected)
        self.bits += len(expected) * sum(self.widths.values())

    def check_prefix(
        self, got: Sequence[dict[str, int]], expected: Sequence[dict[str, int]], what: str
    ) -> None:
        """Assert ``got`` is a prefix of ``expected`` (an interrupted stream)."""
        assert len(got) <= len(expected), f"{what}: {len(got)} items > {len(expected)} expected"
        self.check(got, expected[: len(got)], what)
