"""cocotb testbench of the generated relative-index decoder (``relative_decoder.v``).

Run by :mod:`rtl_tests.test_relative` through :mod:`rtl_tests.runner`; the environment
gives ``RTL_SIDECAR`` (the JSON sidecar: spec, parameters, latency, port map),
``RTL_MEASURE`` (where the measured cycle counts go), ``RTL_STIMULI`` (an ``.npz`` of
pruned integer weight matrices) and ``RTL_SEED``.

Stimuli are encodings by the golden model (``codesign.models.registry.get_format("relative")``)
of the ``RTL_STIMULI`` matrices and of random (gap, value) streams; every output (row,
col, value, valid_weight) is compared bit by bit with the positions and values of the
golden decode.
"""

from __future__ import annotations

import os
from typing import Any

import cocotb
import numpy as np

from codesign.models.format import Encoded, Stream
from codesign.models.registry import get_format
from codesign.models.specs import RelativeSpec, Spec
from codesign.sim.decoders import relative_cycles, stream_cycles
from rtl_tests.bench import (
    SingleStreamBench,
    seeded_full_rate,
    seeded_random_stalls,
    seeded_reset_mid_stream,
)

FORMAT = get_format("relative")
#: Entries of the random (gap, value) stream.
RANDOM_ENTRIES = 160
#: Stall probabilities of the stalled runs: (input valid low, output ready low).
STALLS = ((0.3, 0.3), (0.1, 0.7))
#: Mid-stream resets per reset test.
RESETS = 4


class Case:
    """One matrix sent to the decoder: its input items, the expected outputs (rows
    modulo 2^row_bits, values as value_bits-bit patterns) and the simulator's cycles
    per row of the matrix (``sim_rows``)."""

    def __init__(self, source: str, enc: Encoded, value_bits: int, row_bits: int) -> None:
        self.source = source
        gaps = enc.streams["gaps"].data
        self.sim_rows = relative_cycles(gaps, enc.shape)
        values = enc.streams["values"].data
        vmask = (1 << value_bits) - 1
        self.inputs = [
            {"gap": int(g), "value": int(v) & vmask, "first": int(i == 0)}
            for i, (g, v) in enumerate(zip(gaps, values, strict=True))
        ]
        decoded = FORMAT.decode(enc)
        pos = np.flatnonzero(decoded.mask.ravel())
        assert pos.size == len(self.inputs), f"{source}: golden decode lost entries"
        n_cols = enc.shape[1]
        flat = decoded.weights.ravel()
        self.expected = [
            {
                "row": int(p // n_cols) % (1 << row_bits),
                "col": int(p % n_cols),
                "value": int(flat[p]) & vmask,
                "valid_weight": int(flat[p] != 0),
            }
            for p in pos
        ]

    def with_first(self, first: int) -> list[dict[str, int]]:
        """The inputs with the first entry's ``first`` flag set to ``first``."""
        return [{**self.inputs[0], "first": first}, *self.inputs[1:]]


class Bench(SingleStreamBench):
    """The DUT with its streams, sidecar and a seeded random generator."""

    def __init__(self, dut: Any) -> None:
        super().__init__(dut)
        self.spec: Spec = RelativeSpec.from_dict(self.sidecar["spec"])
        self.params: dict[str, int] = self.sidecar["params"]

    def cases(self, seed: int) -> list[Case]:
        """Back-to-back stimulus matrices: the weight matrices of ``RTL_STIMULI`` (an
        ``.npz`` of integer (rows, n_cols) matrices, in file order), then a random
        (gap, value) stream."""
        bits = self.params["value_bits"], self.params["row_bits"]
        with np.load(os.environ["RTL_STIMULI"]) as stimuli:
            cases = [Case(name, FORMAT.encode(stimuli[name], self.spec), *bits) for name in stimuli]
        cases.append(Case("random-stream", self._random_stream(seed), *bits))
        return cases

    def _random_stream(self, seed: int) -> Encoded:
        rng = np.random.default_rng(seed)
        r, n_cols, vb = self.spec.r, self.params["n_cols"], self.params["value_bits"]
        gaps = rng.integers(0, 1 << r, size=RANDOM_ENTRIES)
        values = rng.integers(0, 1 << vb, size=RANDOM_ENTRIES) * (rng.random(RANDOM_ENTRIES) > 0.2)
        rows = -(-int((gaps + 1).sum()) // n_cols)
        streams = {"gaps": Stream(gaps, r, "index"), "values": Stream(values, vb, "value")}
        return Encoded(
            format="relative",
            spec=self.spec,
            shape=(rows, n_cols),
            dtype=np.dtype(np.int64),
            streams=streams,
            nnz=int(np.count_nonzero(values)),
            stored_values=RANDOM_ENTRIES,
            index_bits=RANDOM_ENTRIES * r,
            value_bits=RANDOM_ENTRIES * vb,
        )


@cocotb.test()
async def full_rate(dut: Any) -> None:
    """No stalls: one input and one output per cycle, every output LATENCY cycles after
    its input, across back-to-back matrices; the cycles are the simulator's."""
    await seeded_full_rate(
        Bench(dut),
        "entries",
        lambda cases, n: {
            "matrices": [{"source": c.source, "entries": len(c.inputs)} for c in cases],
        },
        lambda cases: stream_cycles("relative", [c.sim_rows for c in cases]),
    )


@cocotb.test()
async def random_stalls(dut: Any) -> None:
    """Random valid and ready stalls: nothing lost, duplicated or reordered, and an
    output never takes fewer than LATENCY cycles after its input."""
    await seeded_random_stalls(Bench(dut), STALLS, "entries")


@cocotb.test()
async def reset_mid_stream(dut: Any) -> None:
    """Reset while a matrix streams in under stalls: the outputs before the reset are a
    prefix of that matrix's, the output is empty after the reset, and a fresh matrix
    (sent with and without its ``first`` flag) then decodes exactly."""
    await seeded_reset_mid_stream(
        Bench(dut), RESETS, lambda case, first: (case.with_first(first), case.expected)
    )
