"""cocotb testbench of the generated Viterbi decompressor (``viterbi_decompressor.v``).

Run by :mod:`rtl_tests.test_viterbi_decompressor` through :mod:`rtl_tests.runner`; the
environment gives ``RTL_SIDECAR`` (the JSON sidecar: spec, latency, port map, taps),
``RTL_MEASURE`` (where the measured cycle counts go), ``RTL_STIMULI`` (an ``.npz`` with,
per matrix, the golden encoding's VD input integers ``NAME.inputs`` and the golden
decode's mask ``NAME.mask``) and ``RTL_SEED``.

A matrix is sent as its VD cycles in order, ``first`` set every ``spec.segment`` cycles
(as :func:`codesign.models.viterbi_decompressor.expand_matrix` cuts segments); a random stream
has random input bits and random segment lengths (the simulator's rule reads it as a
matrix of one row). The expected mask word of every cycle is
:func:`codesign.models.viterbi_decompressor.expand` of its segment (all n_out bits, the last cycle
of a matrix included), checked first against the golden decode's mask; every output
(``mask``, ``first``) is compared bit by bit.
"""

from __future__ import annotations

import os
from typing import Any

import cocotb
import numpy as np

from codesign.models.specs import ViterbiSpec
from codesign.models.viterbi_decompressor import expand, unpack_inputs
from codesign.sim.decoders import stream_cycles, viterbi_cycles
from rtl_tests.bench import (
    SingleStreamBench,
    seeded_full_rate,
    seeded_random_stalls,
    seeded_reset_mid_stream,
)

#: VD cycles of the random stream.
RANDOM_CYCLES = 120
#: Stall probabilities of the stalled runs: (input valid low, output ready low).
STALLS = ((0.3, 0.3), (0.1, 0.7))
#: Mid-stream resets per reset test.
RESETS = 4


class Case:
    """One input stream: ``inputs`` ({"u", "first"} per cycle), the golden ``expected``
    outputs ({"mask", "first"} per cycle) and the simulator's cycles per row of the
    ``shape`` (m, n) matrix the stream covers (``sim_rows``)."""

    def __init__(
        self,
        source: str,
        spec: ViterbiSpec,
        words: np.ndarray,
        lengths: list[int],
        shape: tuple[int, int],
    ):
        self.source = source
        self.segments = len(lengths)
        self.sim_rows = viterbi_cycles(spec.n_out, shape)
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

    def with_first(self, first: int) -> tuple[list[dict[str, int]], list[dict[str, int]]]:
        """The inputs and expected outputs with the first cycle's ``first`` flag set to
        ``first``."""
        return (
            [{**self.inputs[0], "first": first}, *self.inputs[1:]],
            [{**self.expected[0], "first": first}, *self.expected[1:]],
        )

    def mask_bits(self, n_out: int) -> np.ndarray:
        """The expected mask bits in stream order (cycle t, bit j at t·n_out + j)."""
        words = np.array([e["mask"] for e in self.expected], dtype=np.int64)
        return ((words[:, None] >> np.arange(n_out)) & 1).ravel().astype(bool)


class Bench(SingleStreamBench):
    """The DUT with its streams, sidecar and a seeded random generator."""

    def __init__(self, dut: Any) -> None:
        super().__init__(dut)
        self.spec = ViterbiSpec.from_dict(self.sidecar["spec"])

    def cases(self, seed: int) -> list[Case]:
        """Back-to-back streams: the golden encodings of ``RTL_STIMULI`` (in file order,
        each checked against its golden decode), then a random stream."""
        spec, cases = self.spec, []
        with np.load(os.environ["RTL_STIMULI"]) as stimuli:
            names = [key.removesuffix(".inputs") for key in stimuli if key.endswith(".inputs")]
            for name in names:
                words, mask = stimuli[f"{name}.inputs"], stimuli[f"{name}.mask"]
                full, tail = divmod(len(words), spec.segment)
                lengths = [spec.segment] * full + [tail] * (tail > 0)
                case = Case(name, spec, words, lengths, mask.shape)
                got = case.mask_bits(spec.n_out)[: mask.size]
                assert np.array_equal(got, mask.ravel()), f"{name}: expand != golden decode"
                cases.append(case)
        rng = np.random.default_rng(seed)
        words = rng.integers(0, 1 << spec.n_in, size=RANDOM_CYCLES)
        lengths: list[int] = [1, 1]
        while sum(lengths) < RANDOM_CYCLES:
            lengths.append(int(rng.integers(1, 2 * spec.segment + 1)))
        lengths[-1] -= sum(lengths) - RANDOM_CYCLES
        cases.append(Case("random-stream", spec, words, lengths, (1, RANDOM_CYCLES * spec.n_out)))
        return cases


@cocotb.test()
async def full_rate(dut: Any) -> None:
    """No stalls: one input and one mask word per cycle, every output LATENCY cycles
    after its input, across back-to-back matrices and segments; the cycles are the
    simulator's."""
    bench = Bench(dut)
    await seeded_full_rate(
        bench,
        "outputs",
        lambda cases, n: {
            "mask_bits": n * bench.spec.n_out,
            "streams": [
                {"source": c.source, "cycles": len(c.inputs), "segments": c.segments} for c in cases
            ],
        },
        lambda cases: stream_cycles("viterbi", [c.sim_rows for c in cases]),
    )


@cocotb.test()
async def random_stalls(dut: Any) -> None:
    """Random valid and ready stalls: nothing lost, duplicated or reordered (a stall
    holds the state), and an output never takes fewer than LATENCY cycles."""
    await seeded_random_stalls(Bench(dut), STALLS, "outputs")


@cocotb.test()
async def reset_mid_stream(dut: Any) -> None:
    """Reset in the middle of a segment under stalls: the outputs before the reset are a
    prefix of that stream's, the output is empty after the reset, and a fresh stream
    (its first cycle sent with and without ``first``: the reset zeroes the state) then
    expands exactly."""
    await seeded_reset_mid_stream(Bench(dut), RESETS, Case.with_first)
