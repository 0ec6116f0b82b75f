"""Shared cocotb testbench pieces: the bench of a block and the tests every block repeats.

* :class:`BenchBase`: a DUT's sidecar, clock, reset, stream ports, seeded random
  generator and measurement file, with a started driver per input stream and a monitor
  on ``out``;
* :class:`SingleStreamBench`: a bench with one ``in`` stream, a :class:`Scoreboard` on
  every ``out`` field and the sidecar's latency;
* :class:`Stimulus` and :func:`run_random_stalls`: the stalled runs of the ``random_stalls``
  tests;
* :func:`sim_checked`: the full-rate cycles against the simulator's timing rule;
* :func:`seeded_full_rate`, :func:`seeded_random_stalls` and
  :func:`seeded_reset_mid_stream`: the three tests of a one-stream block with seeded
  cases;
* :func:`reset_pairs` and :func:`interrupt_and_reset`: the interrupted and fresh cases
  and the interrupted send and reset of the ``reset_mid_stream`` tests;
* :func:`concat`: the concatenated per-case lists of back-to-back cases.

Each testbench subclasses a bench for its block (spec, cases, checks) and keeps what
genuinely differs (timing schedules, extra streams) local.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import cocotb
from cocotb.triggers import RisingEdge

from rtl_tests.streams import (
    Scoreboard,
    StreamDriver,
    StreamMonitor,
    StreamPort,
    load_sidecar,
    reset,
    settle,
    start_clock,
)

Items = list[dict[str, int]]


def concat(cases: Sequence[Any], *attrs: str) -> tuple[list[Any], ...]:
    """Per attribute name in ``attrs``, the lists of that attribute of ``cases`` joined in
    order."""
    return tuple([item for c in cases for item in getattr(c, attr)] for attr in attrs)


class BenchBase:
    """The DUT with its sidecar, clock, reset, the stream ports of ``sources`` and of
    the output stream ``output``, and a generator seeded by ``RTL_SEED``."""

    def __init__(self, dut: Any, sources: Sequence[str], output: str = "out") -> None:
        self.dut = dut
        self.sources = tuple(sources)
        self.output = output
        self.sidecar = load_sidecar(os.environ["RTL_SIDECAR"])
        ports = self.sidecar["ports"]
        self.clk = getattr(dut, ports["clk"]["port"])
        self.rst = getattr(dut, ports["rst"]["port"])
        self.ports = {name: StreamPort(dut, ports, name) for name in (*self.sources, output)}
        self.rng = random.Random(int(os.environ.get("RTL_SEED", "0")))
        self._clocked = False
        self._drivers: dict[str, StreamDriver] = {}
        self._monitor: StreamMonitor | None = None

    async def start_streams(
        self, valid_stall: float = 0.0, ready_stall: float = 0.0
    ) -> tuple[dict[str, StreamDriver], StreamMonitor]:
        """Clock (once), reset, a driver per input stream and a started monitor (those
        of an earlier call stopped)."""
        if not self._clocked:
            start_clock(self.clk)
            self._clocked = True
        for driver in self._drivers.values():
            driver.stop()
        if self._monitor is not None:
            self._monitor.stop()
        self._drivers = {
            name: StreamDriver(self.ports[name], self.clk, self.rng, valid_stall)
            for name in self.sources
        }
        self._monitor = StreamMonitor(
            self.ports[self.output], self.clk, self.rst, self.rng, ready_stall
        )
        await reset(self.clk, self.rst)
        self._monitor.start()
        return self._drivers, self._monitor

    async def send_items(self, drivers: dict[str, StreamDriver], items: dict[str, Items]) -> None:
        """Send ``items`` (stream -> payloads): one stream directly, several at once."""
        if len(items) == 1:
            ((name, payloads),) = items.items()
            await drivers[name].send(payloads)
            return
        tasks = [cocotb.start_soon(drivers[name].send(items[name])) for name in items]
        for task in tasks:
            await task

    def compared(self) -> dict[str, Any]:
        """Figures of what was compared so far (recorded with every test)."""
        return {"bits_compared": self.scoreboard.bits}

    def record(self, test: str, figures: dict[str, Any]) -> None:
        """Add ``figures`` under ``test`` to the measurement file."""
        path = Path(os.environ["RTL_MEASURE"])
        data = json.loads(path.read_text()) if path.exists() else {}
        data[test] = figures
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


class SingleStreamBench(BenchBase):
    """A bench with one input stream ``in`` (``inp``), the output ``out``, a scoreboard on
    every ``out`` field and the sidecar's ``latency``."""

    def __init__(self, dut: Any) -> None:
        super().__init__(dut, ("in",))
        self.latency: int = self.sidecar["latency"]
        self.inp = self.ports["in"]
        self.out = self.ports["out"]
        self.scoreboard = Scoreboard({f: w for f, (_, w) in self.out.fields.items()})

    async def start(
        self, valid_stall: float = 0.0, ready_stall: float = 0.0
    ) -> tuple[StreamDriver, StreamMonitor]:
        """Clock (once), reset, a driver and a started monitor."""
        drivers, monitor = await self.start_streams(valid_stall, ready_stall)
        return drivers["in"], monitor


@dataclasses.dataclass
class Stimulus:
    """One stalled run's input: ``items`` per input stream, what the check compares the
    outputs with (``expected``) and how many outputs to wait for (``count``, by default
    ``len(expected)``)."""

    items: dict[str, Items]
    expected: Any
    count: int | None = None

    def __post_init__(self) -> None:
        if self.count is None:
            self.count = len(self.expected)


async def run_random_stalls(
    bench: BenchBase,
    stalls: Sequence[tuple[float, float]],
    stimulus: Callable[[int], Stimulus],
    check: Callable[[Items, Any, str], None],
    count_key: str,
    *,
    timeout_per_item: int,
    latency: int | None = None,
    timed: str = "in",
    noun: str = "input",
    timing: Callable[[dict[str, StreamDriver], StreamMonitor], None] | None = None,
    first: str = "in",
    settle_cycles: int = 8,
) -> None:
    """Run ``stimulus(k)`` under each (valid, ready) stall pair ``stalls[k]`` and record
    the ``random_stalls`` figures: every output checked by ``check(got, expected,
    what)`` (nothing lost, duplicated or reordered), and no output sooner than
    ``latency`` cycles after its handshake on stream ``timed`` (or ``timing(drivers,
    monitor)`` asserts the timing). A run's ``cycles`` start at the first handshake on
    stream ``first``; its output count is recorded under ``count_key``."""
    runs = []
    for k, (valid_stall, ready_stall) in enumerate(stalls):
        drivers, monitor = await bench.start_streams(valid_stall, ready_stall)
        stim = stimulus(k)
        assert stim.count is not None
        await bench.send_items(drivers, stim.items)
        await monitor.wait_for(stim.count, timeout_per_item * stim.count)
        for _ in range(settle_cycles):
            await RisingEdge(bench.clk)
        check(monitor.items, stim.expected, f"stalls {valid_stall}/{ready_stall}")
        if timing is not None:
            timing(drivers, monitor)
        else:
            assert latency is not None, "run_random_stalls needs a latency or a timing check"
            accepted = drivers[timed].accepted
            gaps = [o - i for i, o in zip(accepted, monitor.cycles, strict=True)]
            assert min(gaps) >= latency, f"an output came {min(gaps)} cycles after its {noun}"
        runs.append(
            {
                "valid_stall": valid_stall,
                "ready_stall": ready_stall,
                count_key: stim.count,
                "cycles": monitor.cycles[-1] - drivers[first].accepted[0] + 1,
                "held_cycles_checked": monitor.held,
            }
        )
        monitor.stop()
    bench.record("random_stalls", {"runs": runs, **bench.compared()})


def sim_checked(cycles: int, sim_cycles: int) -> dict[str, int]:
    """``{"sim_cycles": sim_cycles}`` once the measured full-rate ``cycles`` (first input
    handshake to last output, inclusive) are asserted equal to the simulator's
    prediction for the same streams (:func:`codesign.sim.decoders.stream_cycles`)."""
    assert cycles == sim_cycles, (
        f"measured {cycles} cycles; the simulator's timing rule predicts {sim_cycles}"
    )
    return {"sim_cycles": sim_cycles}


async def seeded_full_rate(
    bench: SingleStreamBench,
    count_key: str,
    figures: Callable[[list[Any], int], dict[str, Any]],
    sim_cycles: Callable[[list[Any]], int],
) -> None:
    """The ``full_rate`` test of a one-stream block whose ``bench.cases(seed)`` gives
    back-to-back cases with ``inputs`` and ``expected``, one output per input: with no
    stalls the cases of seed 1 go in one per cycle and come out exactly, every output
    ``bench.latency`` cycles after its input, and the cycles equal ``sim_cycles(cases)``
    (the simulator's rule on the cases sent, :func:`sim_checked`). Records the output
    count (under ``count_key``), cycles, the prediction, cycles per output, latency,
    ``figures(cases, n)`` and what was compared."""
    driver, monitor = await bench.start()
    cases = bench.cases(seed=1)  # type: ignore[attr-defined]
    inputs, expected = concat(cases, "inputs", "expected")
    await driver.send(inputs)
    await monitor.wait_for(len(expected), bench.latency + 4)
    bench.scoreboard.check(monitor.items, expected, "full rate")
    n = len(expected)
    first_in, last_out = driver.accepted[0], monitor.cycles[-1]
    assert driver.accepted == list(range(first_in, first_in + n)), "input stalled at full rate"
    assert monitor.cycles == list(range(first_in + bench.latency, first_in + bench.latency + n))
    cycles = last_out - first_in + 1
    bench.record(
        "full_rate",
        {
            count_key: n,
            "cycles": cycles,
            **sim_checked(cycles, sim_cycles(cases)),
            "cycles_per_output": (last_out - monitor.cycles[0] + 1) / n,
            "latency": monitor.cycles[0] - first_in,
            **figures(cases, n),
            **bench.compared(),
        },
    )


async def seeded_random_stalls(
    bench: SingleStreamBench, stalls: Sequence[tuple[float, float]], count_key: str
) -> None:
    """:func:`run_random_stalls` of a one-stream block whose ``bench.cases(seed)`` gives
    back-to-back cases with ``inputs`` and ``expected``: run k sends the cases of seed
    10 + k, compared on the scoreboard, no output sooner than ``bench.latency`` cycles
    after its input."""

    def stimulus(k: int) -> Stimulus:
        inputs, expected = concat(bench.cases(seed=10 + k), "inputs", "expected")  # type: ignore[attr-defined]
        return Stimulus({"in": inputs}, expected)

    await run_random_stalls(
        bench,
        stalls,
        stimulus,
        bench.scoreboard.check,
        count_key,
        timeout_per_item=20,
        latency=bench.latency,
    )


async def seeded_reset_mid_stream(
    bench: SingleStreamBench,
    resets: int,
    fresh: Callable[[Any, int], tuple[Items, Items]],
) -> None:
    """The ``reset_mid_stream`` test of a one-stream block whose ``bench.cases(seed)``
    gives cases with ``inputs`` and ``expected``, under stalls (0.2, 0.3) on the cases
    of seed 20: per reset the outputs before it are a prefix of the interrupted case's,
    the output is empty right after it, and the next case, sent as ``fresh(case,
    first)`` gives it (the inputs and the outputs expected, ``first`` = k mod 2), then
    comes out exactly."""
    driver, monitor = await bench.start(0.2, 0.3)
    cases = bench.cases(seed=20)  # type: ignore[attr-defined]
    for k, interrupted, case in reset_pairs(cases, resets):
        await interrupt_and_reset(
            bench, {"in": driver}, driver.send(interrupted.inputs), len(interrupted.inputs)
        )
        bench.scoreboard.check_prefix(monitor.items, interrupted.expected, f"before reset {k}")
        monitor.clear()
        inputs, expected = fresh(case, k % 2)
        await driver.send(inputs)
        await monitor.wait_for(len(expected), 20 * len(expected))
        bench.scoreboard.check(monitor.items, expected, f"after reset {k}")
        monitor.clear()
    bench.record("reset_mid_stream", {"resets": resets, **bench.compared()})


def reset_pairs(cases: Sequence[Any], resets: int) -> Iterator[tuple[int, Any, Any]]:
    """For reset ``k`` of ``resets``: ``k``, the case interrupted (case k, cyclically) and
    the fresh case sent after the reset (the next one)."""
    for k in range(resets):
        yield k, cases[k % len(cases)], cases[(k + 1) % len(cases)]


async def interrupt_and_reset(
    bench: BenchBase,
    drivers: dict[str, StreamDriver],
    send: Awaitable[Any],
    max_cycles: int = 0,
    until: Awaitable[Any] | None = None,
) -> None:
    """Start ``send``, abort every driver after a random 3 … ``max_cycles`` − 1 cycles
    (or once ``until`` is done, when given), reset for 1 … 3 cycles and assert
    ``out.valid`` is low at the edge after."""
    task = cocotb.start_soon(send)
    if until is not None:
        await until
    else:
        for _ in range(bench.rng.randrange(3, max_cycles)):
            await RisingEdge(bench.clk)
    for driver in drivers.values():
        driver.abort()
    await task
    await reset(bench.clk, bench.rst, cycles=bench.rng.randrange(1, 4))
    await settle(bench.clk)
    assert not bench.ports[bench.output].valid.value, "output valid right after reset"
