"""cocotb testbench of the generated Viterbi search (``viterbi_search.v``).

Run by :mod:`rtl_tests.test_viterbi_search` through :mod:`rtl_tests.runner`; the
environment gives ``RTL_SIDECAR`` (the JSON sidecar: spec, parameters, latency, port
map), ``RTL_MEASURE`` (where the measured cycle counts go), ``RTL_STIMULI`` (an ``.npz``
of integer score arrays, ``quantize_scores`` of pruned weights and random scores) and
``RTL_SEED``.

Each score array is flattened, padded to whole steps of n_out scores and cut into
segments of ``spec.segment`` steps (``first``/``last`` flags). The expected outputs are
the inputs :func:`codesign.models.viterbi_search.viterbi_search_fixed` chooses (``u`` and the
segment's ``first`` flag, compared bit by bit); in addition the received inputs are
expanded by the golden VD (:func:`codesign.models.viterbi_decompressor.expand_matrix`) and the
scores its mask keeps must add up to the golden best path metric of every segment.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge

from codesign.hw.viterbi_search import latency, segment_cycles
from codesign.models.specs import ViterbiSpec
from codesign.models.viterbi_decompressor import (
    expand_matrix,
    matrix_cycles,
    pack_inputs,
    unpack_inputs,
)
from codesign.models.viterbi_search import viterbi_search_fixed
from rtl_tests.bench import (
    SingleStreamBench,
    Stimulus,
    concat,
    interrupt_and_reset,
    reset_pairs,
    run_random_stalls,
)
from rtl_tests.streams import StreamDriver, StreamMonitor

#: Stall probabilities of the stalled runs: (input valid low, output ready low).
STALLS = ((0.3, 0.3), (0.1, 0.7), (0.6, 0.05))
#: Mid-stream resets in the reset test.
RESETS = 4
#: Segment lengths (steps) of the short_segments test.
SHORT_SEGMENTS = (2, 1, 3, 1, 1, 2, 1, 4, 1)


class Case:
    """One score array sent to the search: its steps and the golden outputs.

    ``segment``: segment length the golden search cuts the array into; ``flags``: send
    ``first``/``last`` on every segment (else only ``first`` on the first step and
    ``last`` on the final one, so the block must close segments at ``max_segment``).
    """

    def __init__(
        self,
        source: str,
        scores: np.ndarray,
        spec: ViterbiSpec,
        score_bits: int,
        flags: bool = True,
    ) -> None:
        self.source = source
        self.spec = spec
        self.scores = np.asarray(scores, dtype=np.int64).ravel()
        self.result = viterbi_search_fixed(spec, self.scores, score_bits)
        cycles = matrix_cycles(spec, self.scores.size)
        padded = np.zeros(cycles * spec.n_out, dtype=np.int64)
        padded[: self.scores.size] = self.scores
        words = padded.reshape(cycles, spec.n_out) & ((1 << score_bits) - 1)
        seg = spec.segment
        self.lengths = [min(seg, cycles - g) for g in range(0, cycles, seg)]
        self.inputs = []
        for t in range(cycles):
            first = t % seg == 0 if flags else t == 0
            last = (t % seg == seg - 1 or t == cycles - 1) if flags else t == cycles - 1
            item = {f"scores.{j}": int(w) for j, w in enumerate(words[t])}
            self.inputs.append({**item, "first": int(first), "last": int(last)})
        self.expected = [
            {"u": int(u), "first": int(t % seg == 0)}
            for t, u in enumerate(pack_inputs(spec, self.result.inputs))
        ]

    def check_metrics(self, got: list[dict[str, int]]) -> None:
        """Expand the received inputs with the golden VD: per segment the kept scores
        must add up to the golden best path metric."""
        words = np.array([item["u"] for item in got], dtype=np.int64)
        mask = expand_matrix(self.spec, unpack_inputs(self.spec, words), (1, self.scores.size))
        kept = np.where(mask.ravel(), self.scores, 0)
        per_segment = self.spec.segment * self.spec.n_out
        sums = [int(kept[k : k + per_segment].sum()) for k in range(0, kept.size, per_segment)]
        assert sums == self.result.path_metrics.tolist(), f"{self.source}: kept score sums"


class Bench(SingleStreamBench):
    """The DUT with its streams, sidecar and a seeded random generator."""

    def __init__(self, dut: Any) -> None:
        super().__init__(dut)
        self.spec = ViterbiSpec.from_dict(self.sidecar["spec"])
        self.score_bits: int = self.sidecar["params"]["score_bits"]
        self.max_segment: int = self.sidecar["params"]["max_segment"]

    def cases(self, spec: ViterbiSpec | None = None, flags: bool = True) -> list[Case]:
        """One case per array of ``RTL_STIMULI`` (file order)."""
        spec = spec or self.spec
        with np.load(os.environ["RTL_STIMULI"]) as stimuli:
            return [Case(name, stimuli[name], spec, self.score_bits, flags) for name in stimuli]


def _concat(cases: list[Case]) -> tuple[list[Any], ...]:
    return concat(cases, "inputs", "expected", "lengths")


def check_all(bench: Bench, cases: list[Case], got: list[dict[str, int]], what: str) -> None:
    """Bit-by-bit comparison with the golden inputs, then the golden-VD metric check."""
    _, expected, _ = _concat(cases)
    bench.scoreboard.check(got, expected, what)
    at = 0
    for case in cases:
        case.check_metrics(got[at : at + len(case.expected)])
        at += len(case.expected)


def full_rate_schedule(lengths: list[int], start: int) -> tuple[list[int], list[int]]:
    """Handshake cycles of every step and output at full rate, from the documented timing:
    a segment's steps on consecutive cycles; its traceback starts the cycle after its
    last step, or after the previous traceback's final step if that one is later (then
    ``in.ready`` is low until it starts); the next segment's first step is accepted in
    the traceback's first cycle; the traceback's final step (step 0) is at or after the
    cycle of the previous segment's last output; its outputs follow on consecutive
    cycles."""
    steps: list[int] = []
    outs: list[int] = []
    s, traced, drained = start, start - 1, start - 1
    for length in lengths:
        steps += range(s, s + length)
        first_trace = max(s + length - 1, traced) + 1
        traced = max(first_trace + length - 1, drained)
        outs += range(traced + 1, traced + 1 + length)
        drained, s = traced + length, first_trace
    return steps, outs


def segment_bounds(lengths: list[int]) -> list[tuple[int, int]]:
    """(first, last) index of every segment in the concatenated step list."""
    bounds, at = [], 0
    for length in lengths:
        bounds.append((at, at + length - 1))
        at += length
    return bounds


@cocotb.test()
async def full_rate(dut: Any) -> None:
    """No stalls, every case back to back: every handshake on the cycle the documented
    timing gives (latency L + 1, a full segment every L cycles), ``in.ready`` high
    across back-to-back segments of equal length (one step per cycle), the outputs of a
    segment on consecutive cycles."""
    bench = Bench(dut)
    driver, monitor = await bench.start()
    cases = bench.cases()
    inputs, expected, lengths = _concat(cases)
    await driver.send(inputs)
    await monitor.wait_for(len(expected), 2 * bench.max_segment + 8)
    check_all(bench, cases, monitor.items, "full rate")
    steps, outs = full_rate_schedule(lengths, driver.accepted[0])
    assert driver.accepted == steps, "step handshakes differ from the documented timing"
    assert monitor.cycles == outs, "output handshakes differ from the documented timing"
    bounds = segment_bounds(lengths)
    full = [k for k, length in enumerate(lengths) if length == bench.spec.segment]
    lat = {monitor.cycles[bounds[k][0]] - driver.accepted[bounds[k][1]] for k in full}
    assert lat == {latency(bench.spec.segment)}, f"latencies {lat}"
    periods = {
        driver.accepted[bounds[k + 1][0]] - driver.accepted[bounds[k][0]]
        for k in full
        if k + 1 < len(lengths)
    }
    assert periods == {segment_cycles(bench.spec.segment)}, f"segment periods {periods}"
    equal = [k for k in range(len(lengths) - 1) if lengths[k] == lengths[k + 1]]
    assert equal, "no back-to-back segments of equal length"
    for k in equal:
        a, b = bounds[k][0], bounds[k + 1][1]
        assert driver.accepted[a : b + 1] == list(
            range(driver.accepted[a], driver.accepted[b] + 1)
        ), f"in.ready low between segments {k} and {k + 1} of equal length"
    bursts = [monitor.cycles[b] - monitor.cycles[a] + 1 for a, b in bounds]
    assert bursts == lengths, "a segment's outputs were not on consecutive cycles"
    n = len(expected)
    bench.record(
        "full_rate",
        {
            "steps": n,
            "segments": len(lengths),
            "cycles": monitor.cycles[-1] - driver.accepted[0] + 1,
            "cycles_per_output": sum(bursts) / n,
            "outputs_per_cycle": n / (monitor.cycles[-1] - driver.accepted[0] + 1),
            "latency": lat.pop(),
            "segment_cycles": periods.pop(),
            "cases": [{"source": c.source, "steps": len(c.inputs)} for c in cases],
            "bits_compared": bench.scoreboard.bits,
        },
    )


@cocotb.test()
async def random_stalls(dut: Any) -> None:
    """Random valid and ready stalls: nothing lost, duplicated or reordered, and no
    segment's first output earlier than L + 1 cycles after its last step."""
    bench = Bench(dut)
    cases = bench.cases()
    inputs, expected, lengths = _concat(cases)

    def segment_latency(drivers: dict[str, StreamDriver], monitor: StreamMonitor) -> None:
        accepted = drivers["in"].accepted
        for (a, b), length in zip(segment_bounds(lengths), lengths, strict=True):
            gap = monitor.cycles[a] - accepted[b]
            assert gap >= latency(length), f"segment output {gap} cycles after its last step"

    await run_random_stalls(
        bench,
        STALLS,
        lambda _: Stimulus({"in": inputs}, cases, len(expected)),
        lambda got, cases, what: check_all(bench, cases, got, what),
        "steps",
        timeout_per_item=40,
        timing=segment_latency,
    )


@cocotb.test()
async def reset_mid_stream(dut: Any) -> None:
    """Reset at a random cycle (searching, tracing back or emitting) under stalls: the
    outputs before the reset are a prefix of the golden ones, the output is empty right
    after it, and a fresh stream (its first ``first`` flag set or not) then comes out
    exactly."""
    bench = Bench(dut)
    driver, monitor = await bench.start(0.2, 0.3)
    cases = bench.cases()
    for k, interrupted, fresh in reset_pairs(cases, RESETS):
        await interrupt_and_reset(
            bench, {"in": driver}, driver.send(interrupted.inputs), 3 * len(interrupted.inputs)
        )
        bench.scoreboard.check_prefix(monitor.items, interrupted.expected, f"before reset {k}")
        monitor.clear()
        first = [{**fresh.inputs[0], "first": k % 2}, *fresh.inputs[1:]]
        await driver.send(first)
        await monitor.wait_for(len(fresh.expected), 40 * len(fresh.expected))
        check_all(bench, [fresh], monitor.items, f"after reset {k}")
        monitor.clear()
    bench.record("reset_mid_stream", {"resets": RESETS, **bench.compared()})


@cocotb.test()
async def segment_flags(dut: Any) -> None:
    """Segment boundaries: a stream with ``first`` only on its first step and ``last``
    only on its final one is cut at ``max_segment`` steps (golden search with segment =
    max_segment); a step with ``first`` drops the unfinished segment before it."""
    bench = Bench(dut)
    driver, monitor = await bench.start(0.2, 0.2)
    long_spec = dataclasses.replace(bench.spec, segment=bench.max_segment)
    implicit = bench.cases(long_spec, flags=False)
    inputs, expected, _ = _concat(implicit)
    await driver.send(inputs)
    await monitor.wait_for(len(expected), 40 * len(expected))
    check_all(bench, implicit, monitor.items, "implicit segments")
    monitor.clear()
    cases = bench.cases()
    for k, case in enumerate(cases):
        dropped = cases[(k + 1) % len(cases)].inputs
        cut = bench.rng.randrange(1, min(len(dropped), bench.max_segment - 1) + 1)
        partial = [{**item, "last": 0} for item in dropped[:cut]]
        await driver.send(partial + case.inputs)
        await monitor.wait_for(len(case.expected), 40 * len(case.expected))
        for _ in range(4):
            await RisingEdge(bench.clk)
        check_all(bench, [case], monitor.items, f"restart by first {k}")
        monitor.clear()
    bench.record("segment_flags", {"bits_compared": bench.scoreboard.bits})


@cocotb.test()
async def short_segments(dut: Any) -> None:
    """Short segments back to back (:data:`SHORT_SEGMENTS` steps, random scores): a
    one-step segment right after a longer one is traced back while the output still
    drains, its first traceback step waiting as the next segment starts. Full rate, then
    ready stalls: every output exact."""
    bench = Bench(dut)
    top = (1 << (bench.score_bits - 1)) - 1
    total = sum(SHORT_SEGMENTS) * bench.spec.n_out
    scores = np.array([bench.rng.randint(-top, top) for _ in range(total)])
    cases, at = [], 0
    for k, steps in enumerate(SHORT_SEGMENTS):
        size = steps * bench.spec.n_out
        spec = dataclasses.replace(bench.spec, segment=steps)
        cases.append(Case(f"short-{k}", scores[at : at + size], spec, bench.score_bits))
        at += size
    inputs, expected, _ = _concat(cases)
    for ready_stall in (0.0, 0.5):
        driver, monitor = await bench.start(0.0, ready_stall)
        await driver.send(inputs)
        await monitor.wait_for(len(expected), 40 * len(expected))
        check_all(bench, cases, monitor.items, f"short segments, ready stall {ready_stall}")
    bench.record("short_segments", {"segments": len(cases), **bench.compared()})
