"""cocotb testbench of the generated XOR-gate decoder (``xor_decoder.v``).

Run by :mod:`rtl_tests.test_xor_decoder` through :mod:`rtl_tests.runner`; the environment
gives ``RTL_SIDECAR`` (spec, parameters, latency, port map), ``RTL_MEASURE`` (where the
measured cycle counts go), ``RTL_STIMULI`` (the golden model's cases, see
:mod:`rtl_tests.test_xor_decoder`) and ``RTL_SEED``.

Three input streams are driven (``in``: one block input each, ``first`` every
``spec.segment`` blocks and ``plane`` on block 0 of a plane; ``count``: one patch count
per plane; ``patch``: the planes' patches in order) and ``out`` is monitored. Every
output block is compared bit by bit twice: its bits with the patches undone against the
raw golden decode (``decode_planes``) at all n_out positions, and its bits at the care
positions against the target bit-planes; its ``plane`` flag is compared too.
"""

from __future__ import annotations

import os
from typing import Any

import cocotb
import numpy as np

from codesign.models.specs import XorSpec
from codesign.sim.decoders import stream_cycles, xor_cycles
from rtl_tests.bench import (
    BenchBase,
    Stimulus,
    concat,
    interrupt_and_reset,
    reset_pairs,
    run_random_stalls,
    sim_checked,
)
from rtl_tests.streams import StreamDriver
from rtl_tests.xor_timing import block_cycles

#: Stall probabilities of the stalled runs: (valid low on in/count/patch, out.ready low).
STALLS = ((0.3, 0.3), (0.1, 0.7))
#: Mid-stream resets in the reset test.
RESETS = 4
#: Input streams of the decoder.
SOURCES = ("in", "count", "patch")


def _words(bits: np.ndarray) -> list[int]:
    """Rows of 0/1 ``bits`` (rows, n_out) as integers, bit i = column i."""
    weights = [1 << i for i in range(bits.shape[1])]
    return [sum(w for w, b in zip(weights, row, strict=True) if b) for row in bits.tolist()]


class Case:
    """One stimulus case: what each stream sends; per block, the expected raw bits,
    patch flips, target bits, care mask and cycles under the rule; and the simulator's
    cycles per plane and row of the case's matrix (``sim_rows``, (planes, m))."""

    def __init__(self, name: str, z: Any, spec: XorSpec) -> None:
        self.name = name
        inputs = z[f"{name}/inputs"]
        planes, blocks = inputs.shape
        n_out = spec.n_out
        plane, block, bit = (z[f"{name}/patch_{k}"] for k in ("plane", "block", "bit"))
        self.inputs = [
            {"x": int(inputs[p, t]), "first": int(t % spec.segment == 0), "plane": int(t == 0)}
            for p in range(planes)
            for t in range(blocks)
        ]
        self.counts = [{"count": int(c)} for c in np.bincount(plane, minlength=planes)]
        self.patches = [{"block": int(b), "bit": int(i)} for b, i in zip(block, bit, strict=True)]
        flips = np.zeros((planes * blocks, n_out), dtype=np.uint8)
        flips[plane * blocks + block, bit] = 1
        self.raw = _words(z[f"{name}/raw"].reshape(-1, n_out))
        self.flips = _words(flips)
        self.target = _words(z[f"{name}/target"].reshape(-1, n_out))
        care = np.broadcast_to(z[f"{name}/care"].reshape(blocks, n_out), (planes, blocks, n_out))
        self.care = _words(care.reshape(-1, n_out))
        self.plane_flags = [item["plane"] for item in self.inputs]
        named, at = [], 0
        for count in self.counts:
            named.append([p["block"] for p in self.patches[at : at + count["count"]]])
            at += count["count"]
        self.cycles = block_cycles([blocks] * planes, named)
        shape = tuple(int(s) for s in z[f"{name}/shape"])
        self.sim_rows = xor_cycles(plane, block, planes, n_out, shape)

    def with_first_plane(self, plane: int) -> list[dict[str, int]]:
        """The inputs with the first block's ``plane`` and ``first`` flags set to
        ``plane``."""
        return [{**self.inputs[0], "first": plane, "plane": plane}, *self.inputs[1:]]


class Checker:
    """Compares output blocks with the expected ones and counts the bits compared."""

    def __init__(self, n_out: int) -> None:
        self.n_out = n_out
        self.blocks = 0
        self.raw_bits = 0
        self.care_bits = 0
        self.flag_bits = 0

    def check(self, got: list[dict[str, int]], cases: list[Case], what: str, prefix: bool = False):
        """Assert ``got`` equals the blocks of ``cases`` in order (a prefix of them when
        ``prefix``)."""
        raw = [w for c in cases for w in c.raw]
        flips = [w for c in cases for w in c.flips]
        target = [w for c in cases for w in c.target]
        care = [w for c in cases for w in c.care]
        flags = [f for c in cases for f in c.plane_flags]
        if prefix:
            assert len(got) <= len(raw), f"{what}: {len(got)} blocks > {len(raw)} expected"
        else:
            assert len(got) == len(raw), f"{what}: got {len(got)} blocks, expected {len(raw)}"
        for n, item in enumerate(got):
            bits = item["bits"]
            wrong_raw = (bits ^ flips[n]) ^ raw[n]
            assert not wrong_raw, (
                f"{what}: block {n}: raw bits differ at {self._positions(wrong_raw)}"
            )
            wrong_care = (bits ^ target[n]) & care[n]
            assert not wrong_care, (
                f"{what}: block {n}: care bits differ at {self._positions(wrong_care)}"
            )
            assert item["plane"] == flags[n], f"{what}: block {n}: plane flag {item['plane']}"
            self.raw_bits += self.n_out
            self.care_bits += care[n].bit_count()
            self.flag_bits += 1
        self.blocks += len(got)

    def _positions(self, word: int) -> list[int]:
        return [i for i in range(self.n_out) if word >> i & 1]

    def figures(self) -> dict[str, int]:
        """Blocks and bits compared so far."""
        return {
            "blocks_compared": self.blocks,
            "raw_bits_compared": self.raw_bits,
            "care_bits_compared": self.care_bits,
            "bits_compared": self.raw_bits + self.care_bits + self.flag_bits,
        }


class Bench(BenchBase):
    """The DUT with its streams, sidecar, cases and a seeded random generator."""

    def __init__(self, dut: Any) -> None:
        super().__init__(dut, SOURCES)
        self.spec = XorSpec.from_dict(self.sidecar["spec"])
        self.latency: int = self.sidecar["latency"]
        self.checker = Checker(self.spec.n_out)
        with np.load(os.environ["RTL_STIMULI"]) as z:
            self.cases = [Case(str(name), z, self.spec) for name in z["names"]]

    start = BenchBase.start_streams

    def items(self, cases: list[Case], first_plane: int = 1) -> dict[str, list[dict[str, int]]]:
        """What each stream sends for ``cases`` back to back (the first block's ``plane``
        and ``first`` flags set to ``first_plane``)."""
        inputs, counts, patches = concat(cases, "inputs", "counts", "patches")
        if first_plane != 1:
            inputs = cases[0].with_first_plane(first_plane) + inputs[len(cases[0].inputs) :]
        return {"in": inputs, "count": counts, "patch": patches}

    async def send(
        self, drivers: dict[str, StreamDriver], cases: list[Case], first_plane: int = 1
    ) -> None:
        """Send ``cases`` back to back on all three streams at once."""
        await self.send_items(drivers, self.items(cases, first_plane))

    def compared(self) -> dict[str, Any]:
        """Blocks and bits compared so far."""
        return self.checker.figures()


@cocotb.test()
async def full_rate(dut: Any) -> None:
    """No stalls: every block takes exactly the cycles of the rule (one cycle without
    patches or with one patch), its output comes that many cycles after its input, across
    back-to-back cases (planes and segments restarting); the total is the simulator's
    (one decoder taking the planes one after another)."""
    bench = Bench(dut)
    drivers, monitor = await bench.start()
    cases = bench.cases
    expected_cycles = [c for case in cases for c in case.cycles]
    await bench.send(drivers, cases)
    await monitor.wait_for(len(expected_cycles), max(expected_cycles) + 4)
    bench.checker.check(monitor.items, cases, "full rate")
    accepted, out = drivers["in"].accepted, monitor.cycles
    assert np.diff(accepted).tolist() == expected_cycles[:-1], "input cycles differ from the rule"
    latencies = [o - a for a, o in zip(accepted, out, strict=True)]
    assert latencies == expected_cycles, "output cycles differ from the rule"
    per_case, start = {}, 0
    for case in cases:
        n = len(case.inputs)
        span = out[start + n - 1] - accepted[start] + 1 - bench.latency
        per_case[case.name] = {
            "blocks": n,
            "planes": len(case.counts),
            "patches": len(case.patches),
            "cycles": span,
            "cycles_per_output": span / n,
        }
        start += n
    n = len(expected_cycles)
    cycles = out[-1] - accepted[0] + 1
    bench.record(
        "full_rate",
        {
            "blocks": n,
            "cycles": cycles,
            **sim_checked(cycles, stream_cycles("xor", [c.sim_rows for c in cases])),
            "cycles_per_output": (out[-1] - accepted[0] + 1 - bench.latency) / n,
            "latency": min(latencies),
            "cases": per_case,
            **bench.checker.figures(),
        },
    )


@cocotb.test()
async def random_stalls(dut: Any) -> None:
    """Random valid stalls on the three input streams and ready stalls on ``out``:
    nothing lost, duplicated or reordered, no output sooner than the latency after its
    input."""
    bench = Bench(dut)
    blocks = sum(len(c.inputs) for c in bench.cases)
    await run_random_stalls(
        bench,
        STALLS,
        lambda _: Stimulus(bench.items(bench.cases), bench.cases, blocks),
        bench.checker.check,
        "blocks",
        timeout_per_item=40,
        latency=bench.latency,
    )


@cocotb.test()
async def reset_mid_stream(dut: Any) -> None:
    """Reset while a case streams in under stalls: the outputs before the reset are a
    prefix of that case's, the output is empty right after the reset, and a fresh case
    (its first block sent with and without the ``plane`` flag) then decodes exactly."""
    bench = Bench(dut)
    drivers, monitor = await bench.start(0.2, 0.3)
    cases = bench.cases
    for k, interrupted, fresh in reset_pairs(cases, RESETS):
        await interrupt_and_reset(
            bench, drivers, bench.send(drivers, [interrupted]), len(interrupted.inputs)
        )
        bench.checker.check(monitor.items, [interrupted], f"before reset {k}", prefix=True)
        monitor.clear()
        await bench.send(drivers, [fresh], first_plane=k % 2)
        await monitor.wait_for(len(fresh.inputs), 40 * len(fresh.inputs))
        bench.checker.check(monitor.items, [fresh], f"after reset {k}")
        monitor.clear()
    bench.record("reset_mid_stream", {"resets": RESETS, **bench.compared()})
