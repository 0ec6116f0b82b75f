"""amaranth.sim driver for one-in/one-out stream components, shared by the hardware unit
tests: the first ``full_rate`` cycles run without stalls, then random valid/ready
stalls on both sides."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from amaranth.sim import Simulator


def run_stream(
    dut: Any,
    items: list[Any],
    payload: Callable[[Any], dict[str, int]],
    output: Callable[[Any], Any],
    rng: random.Random,
    full_rate: int = 12,
    limit: int = 1000,
) -> tuple[list[Any], list[int], list[int]]:
    """Feed ``items`` (``payload(item)`` each) into ``dut.in`` and collect one
    ``output(payload)`` per ``dut.out`` handshake until as many outputs as items.

    Returns (outputs, input handshake cycles, output handshake cycles).
    """
    i, o = getattr(dut, "in"), dut.out
    got: list[Any] = []
    in_cycles: list[int] = []
    out_cycles: list[int] = []

    async def bench(ctx: Any) -> None:
        pending, cycle = list(items), 0
        while len(got) < len(items):
            stalled = cycle >= full_rate
            ctx.set(o.ready, int(not stalled or rng.random() < 0.6))
            offer = bool(pending) and (not stalled or rng.random() < 0.7)
            ctx.set(i.valid, int(offer))
            if offer:
                ctx.set(i.payload, payload(pending[0]))
            took = offer and ctx.get(i.ready)
            gave = ctx.get(o.valid) and ctx.get(o.ready)
            value = ctx.get(o.payload)
            await ctx.tick()
            if took:
                pending.pop(0)
                in_cycles.append(cycle)
            if gave:
                got.append(output(value))
                out_cycles.append(cycle)
            cycle += 1
            assert cycle < limit

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return got, in_cycles, out_cycles
