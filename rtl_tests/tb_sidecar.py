"""cocotb testbench driving any generated block from its sidecar alone.

Run by :mod:`rtl_tests.test_sidecar_only`; the environment gives ``RTL_SIDECAR`` and
``RTL_STIMULI``, a JSON file with the input beats of every input stream, the output
beats expected (:mod:`rtl_tests.sidecar_model`) and the full-rate cycles the protocol's
cycle rule gives (or null). The streams, their ports and fields come from the sidecar's
``protocol`` section. Two tests: ``full_rate`` (no stalls: outputs exact, cycles as the
rule says) and ``random_stalls`` (random valid gaps with garbage payloads, random
ready: outputs exact, every offered beat held).
"""

from __future__ import annotations

import json
import os
from typing import Any

import cocotb

from rtl_tests.bench import BenchBase, Stimulus, run_random_stalls
from rtl_tests.streams import Scoreboard

#: Stall probabilities of the stalled run: (valid low on every input, out.ready low).
STALLS = ((0.3, 0.3),)


class Bench(BenchBase):
    """The DUT with the input streams the protocol lists and a scoreboard on ``out``."""

    def __init__(self, dut: Any) -> None:
        with open(os.environ["RTL_STIMULI"]) as f:
            self.stimulus = json.load(f)
        super().__init__(dut, list(self.stimulus["inputs"]))
        fields = self.sidecar["protocol"]["streams"]["out"]["fields"]
        self.scoreboard = Scoreboard({name: f["width"] for name, f in fields.items()})


@cocotb.test()
async def full_rate(dut: Any) -> None:
    """No stalls: every output as the sidecar's function says, and as many cycles from
    the first input handshake to the last output handshake as its cycle rule says."""
    bench = Bench(dut)
    drivers, monitor = await bench.start_streams()
    expected = bench.stimulus["expected"]
    await bench.send_items(drivers, bench.stimulus["inputs"])
    await monitor.wait_for(len(expected), 2 * len(expected) + 64)
    bench.scoreboard.check(monitor.items, expected, "full rate")
    first = min(d.accepted[0] for d in drivers.values())
    cycles = monitor.cycles[-1] - first + 1
    if bench.stimulus["cycles"] is not None:
        assert cycles == bench.stimulus["cycles"], (
            f"{cycles} cycles; the sidecar's cycle rule gives {bench.stimulus['cycles']}"
        )
    bench.record("full_rate", {"outputs": len(expected), "cycles": cycles, **bench.compared()})


@cocotb.test()
async def random_stalls(dut: Any) -> None:
    """Random valid and ready stalls: nothing lost, duplicated or reordered, and no
    output sooner than the protocol's latency after its input (where the latency is
    counted from one stream's handshakes)."""
    bench = Bench(dut)
    expected = bench.stimulus["expected"]
    latency = bench.sidecar["protocol"]["latency"]
    timed = latency["from"].removesuffix(" handshake")
    per_beat = timed in bench.stimulus["inputs"] and len(bench.stimulus["inputs"][timed]) == len(
        expected
    )
    await run_random_stalls(
        bench,
        STALLS,
        lambda _: Stimulus(bench.stimulus["inputs"], expected),
        bench.scoreboard.check,
        "outputs",
        timeout_per_item=60,
        latency=latency["cycles"] if per_beat else None,
        timed=timed,
        timing=None if per_beat else _segment_timing,
        first=next(iter(bench.stimulus["inputs"])),
    )


def _segment_timing(drivers: Any, monitor: Any) -> None:
    """No per-beat latency (the search answers a segment at a time): its segment timing
    is checked by :mod:`rtl_tests.tb_viterbi_search`."""
