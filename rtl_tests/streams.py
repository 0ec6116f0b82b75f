"""Reusable cocotb pieces for valid/ready streams, located through a block's sidecar.

* :class:`StreamPort`: the handles of one stream (``in``, ``out``, …) found from the
  sidecar's ``ports`` map, with payload packing and unpacking by field;
* :class:`StreamDriver`: sends payloads, holding each until accepted, with random idle
  cycles (``valid`` low, the payload random garbage: a block must not read it) and an
  abort for mid-stream resets;
* :class:`StreamMonitor`: drives ``ready`` with random stalls, records every handshake
  with its cycle, and fails when the block drops ``valid`` or changes the payload of a
  beat it offered while ``ready`` was low;
* :class:`Scoreboard`: compares received payloads with expected ones field by field
  and counts the bits compared;
* :func:`start_clock`, :func:`cycle`, :func:`align`, :func:`reset`, :func:`settle`.

Timing, the same under an event-driven simulator (Icarus) and a cycle-based one
(Verilator): the testbench writes right after a rising edge, and samples at the falling
edge before the next one (:func:`settle`), when every signal has settled and still
holds what the flip-flops will see at that rising edge. A handshake sampled so belongs
to that rising edge (:func:`cycle` after it).
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
from cocotb.triggers import FallingEdge, RisingEdge

#: Clock period of every RTL test, in ns.
PERIOD_NS = 10
#: Cycles a driver waits for ``ready`` on one beat before it fails.
PATIENCE = 2000


def load_sidecar(path: str | Path) -> dict[str, Any]:
    """The JSON sidecar written by :func:`codesign.hw.build.write`."""
    return json.loads(Path(path).read_text())


def start_clock(clk: Any) -> None:
    """Drive ``clk`` with a :data:`PERIOD_NS` ns clock."""
    Clock(clk, PERIOD_NS, unit="ns").start()


def cycle() -> int:
    """Index of the current clock cycle (rising edge k happens in cycle k)."""
    return round(get_sim_time(unit="ns") / PERIOD_NS)


async def settle(clk: Any) -> None:
    """Wait for the falling edge: the signals as the next rising edge will see them."""
    await FallingEdge(clk)


async def align(clk: Any) -> None:
    """Return right after a rising edge: at once if this is one, else at the next."""
    if get_sim_time(unit="ps") % (PERIOD_NS * 1000):
        await RisingEdge(clk)


async def reset(clk: Any, rst: Any, cycles: int = 2) -> None:
    """Hold the synchronous reset ``rst`` high for ``cycles`` rising edges."""
    rst.value = 1
    for _ in range(cycles):
        await RisingEdge(clk)
    rst.value = 0


class StreamPort:
    """The ``valid``, ``ready`` and ``payload`` handles of stream ``name`` of ``dut``.

    ``ports``: the sidecar's ``ports`` map; ``fields`` maps each payload field (the key
    after ``NAME.payload.``) to its ``(lsb, width)`` inside the payload port; ``width``
    is the payload port's width.
    """

    def __init__(self, dut: Any, ports: dict[str, dict[str, Any]], name: str) -> None:
        self.name = name
        self.valid = getattr(dut, ports[f"{name}.valid"]["port"])
        self.ready = getattr(dut, ports[f"{name}.ready"]["port"])
        self.payload = getattr(dut, ports[f"{name}.payload"]["port"])
        self.width: int = ports[f"{name}.payload"]["port_width"]
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
    ``ready`` high. While ``valid`` is low (idle cycles, between and after sends) the
    payload is new random bits every cycle. ``accepted`` lists the cycle of every
    handshake. :meth:`stop` ends the background garbage.
    """

    def __init__(self, port: StreamPort, clk: Any, rng: random.Random, stall: float = 0.0):
        self.port, self.clk, self.rng, self.stall = port, clk, rng, stall
        self.accepted: list[int] = []
        self._abort = False
        self._presenting = False
        port.valid.value = 0
        self._garbage()
        self._task = cocotb.start_soon(self._idle())

    def _garbage(self) -> None:
        self.port.payload.value = self.rng.getrandbits(self.port.width)

    async def _idle(self) -> None:
        while True:
            await RisingEdge(self.clk)
            if not self._presenting:
                self._garbage()

    def stop(self) -> None:
        """Stop the idle garbage and drop ``valid``."""
        self._task.cancel()
        self.port.valid.value = 0

    def abort(self) -> None:
        """Make a running :meth:`send` drop ``valid`` and return at the next edge."""
        self._abort = True

    def _idle_now(self) -> None:
        self._presenting = False
        self.port.valid.value = 0
        self._garbage()

    async def send(self, items: Iterable[dict[str, int]]) -> int:
        """Send ``items`` (field dicts) from the next rising edge on (at once right after
        one); return how many were accepted."""
        self._abort = False
        await align(self.clk)
        sent = 0
        for item in items:
            while self.rng.random() < self.stall:
                self._idle_now()
                await RisingEdge(self.clk)
                if self._abort:
                    return sent
            self._presenting = True
            self.port.payload.value = self.port.pack(item)
            self.port.valid.value = 1
            for _ in range(PATIENCE):
                await settle(self.clk)
                ready = bool(self.port.ready.value)
                await RisingEdge(self.clk)
                if ready:
                    self.accepted.append(cycle())
                    sent += 1
                    break
                if self._abort:
                    break
            else:
                raise AssertionError(
                    f"{self.port.name}: beat {sent} not taken after {PATIENCE} cycles"
                )
            if self._abort:
                break
        self._idle_now()
        return sent


class StreamMonitor:
    """Sink side of a stream: drives ``ready`` (low with probability ``stall`` each cycle)
    and records every handshake: ``items`` (field dicts) and ``cycles``.

    A beat offered (``valid`` high) while ``ready`` is low must be offered again, with the
    same payload, at the next edge, unless ``rst`` is high at that edge; otherwise the
    monitor fails (AssertionError in its task, again from :meth:`wait_for`).
    """

    def __init__(
        self, port: StreamPort, clk: Any, rst: Any, rng: random.Random, stall: float = 0.0
    ):
        self.port, self.clk, self.rst, self.rng, self.stall = port, clk, rst, rng, stall
        self.items: list[dict[str, int]] = []
        self.cycles: list[int] = []
        self.error: str | None = None
        self.held = 0
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
        ``timeout_cycles`` cycles, or at once when the hold rule was broken)."""
        for _ in range(timeout_cycles):
            assert self.error is None, self.error
            if len(self.items) >= count:
                return
            await RisingEdge(self.clk)
        assert self.error is None, self.error
        raise AssertionError(
            f"{self.port.name}: {len(self.items)} of {count} items after {timeout_cycles} cycles"
        )

    def _fail(self, what: str) -> None:
        self.error = f"{self.port.name}: {what} while ready was low (cycle {cycle()})"
        raise AssertionError(self.error)

    async def _run(self) -> None:
        offered: int | None = None
        while True:
            ready = int(self.rng.random() >= self.stall)
            self.port.ready.value = ready
            await settle(self.clk)
            valid = bool(self.port.valid.value)
            payload = int(self.port.payload.value) if valid else None
            if offered is not None:
                if not valid:
                    self._fail("valid dropped")
                if payload != offered:
                    self._fail(f"payload changed from {offered:#x} to {payload:#x}")
                self.held += 1
            resetting = bool(self.rst.value)
            await RisingEdge(self.clk)
            if ready and valid:
                assert payload is not None
                self.items.append(self.port.unpack(payload))
                self.cycles.append(cycle())
            offered = payload if valid and not ready and not resetting else None


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
