"""Viterbi decompressor (VD): ``n_in`` stored bits in, ``n_out`` mask bits out per cycle.

Golden model: :mod:`codesign.models.viterbi_decompressor` (bit orders, tap matrix, comparators)
and :class:`codesign.models.viterbi.ViterbiFormat` (whose stored ``inputs`` stream is what this
block reads). Per accepted input the block forms the tap vector
x = u + 2^n_in·s (bits 0 … n_in − 1 the input bits, bit n_in + k flip-flop k; s taken
as 0 on the first cycle of a segment), the raw outputs r = G·x over GF(2) (one XOR tree
per row of G = :func:`~codesign.models.viterbi_decompressor.taps`), and mask bit
j = (Σ_b r[j·n_c + b]·2^b < threshold), one constant comparator per group of ``n_c``
raw rows. The state then loads x mod 2^n_ff (flip-flop k < n_in takes u[k], flip-flop
k ≥ n_in takes flip-flop k − n_in).

Hardware per spec: n_ff state flip-flops, Σ_rows (|row| − 1) two-input XORs before
sharing (|row| = taps in the row), n_out comparators against the constant threshold,
and the registered output (n_out mask bits, ``first``, ``valid``); see
:func:`expected_cells`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from codesign.hw import protocol
from codesign.models.specs import ViterbiSpec
from codesign.models.viterbi_decompressor import tap_width, taps

#: Latency in clock cycles from an input handshake to its output being valid.
LATENCY = 1


def check_params(spec: ViterbiSpec) -> None:
    """Raise ``ValueError`` (naming the parameter and its allowed range) for a VD the
    hardware cannot build: not a :class:`ViterbiSpec`, ``threshold`` unset (the
    comparators hard-wire it), or no tap matrix for the spec."""
    if not isinstance(spec, ViterbiSpec):
        raise ValueError(f"ViterbiDecompressor needs a ViterbiSpec, got {type(spec).__name__}")
    if spec.threshold is None:
        raise ValueError(
            f"ViterbiDecompressor: spec.threshold is unset; the comparators hard-wire it, "
            f"set threshold to an integer in 0..2^n_c={2**spec.n_c}"
        )
    taps(spec)


def input_layout(spec: ViterbiSpec) -> data.StructLayout:
    """Input payload: ``u`` (n_in bits, bit i = u_t[i] of the golden model, i.e. bit i of
    the stored input integer U_t) and ``first`` (1 on the first cycle of a segment: the
    state is zero for this input)."""
    return data.StructLayout({"u": spec.n_in, "first": 1})


def output_layout(spec: ViterbiSpec) -> data.StructLayout:
    """Output payload: ``mask`` (n_out bits, bit j = keep_j of the cycle, i.e. position
    t·n_out + j of the segment for the t-th input since ``first``) and ``first`` (the
    input's ``first``, marking the first mask word of a segment)."""
    return data.StructLayout({"mask": spec.n_out, "first": 1})


def matrices(spec: ViterbiSpec, params: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The constants the circuit hard-wires, for the sidecar.

    ``taps``: G, 0/1 of shape (n_out·n_c, n_in + n_ff), row j·n_c + b is bit b of
    comparator group j, column c multiplies bit c of x; ``comparator_rows``: (n_out, n_c),
    entry (j, b) = the row of G that is bit b (weight 2^b) of group j's value;
    ``threshold``: [threshold], mask bit j = (group value < threshold). ``params`` is
    unused (the block has no parameters besides the spec).
    """
    check_params(spec)
    rows = np.arange(spec.n_out * spec.n_c, dtype=np.int64).reshape(spec.n_out, spec.n_c)
    return {
        "taps": taps(spec),
        "comparator_rows": rows,
        "threshold": np.array([spec.threshold], dtype=np.int64),
    }


#: Handshake gates of :func:`expected_cells`: ``in.ready``, the input handshake and the
#: next ``out.valid``, with one spare for how the flip-flop enables get mapped.
CONTROL_GATES = 4


def compared_bits(spec: ViterbiSpec) -> int:
    """Bits of a group value that can change its comparator: for 0 < threshold < 2^n_c
    the bits at and above the lowest set bit of the threshold (v < m·2^t ⟺
    ⌊v / 2^t⌋ < m), else none (the comparator is constant)."""
    threshold = spec.threshold
    if threshold is None or not 0 < threshold < 2**spec.n_c:
        return 0
    trailing = (threshold & -threshold).bit_length() - 1
    return spec.n_c - trailing


def used_rows(spec: ViterbiSpec) -> np.ndarray:
    """Rows of G that reach a comparator (bool, shape (n_out·n_c,)); see
    :func:`compared_bits`."""
    bits = np.arange(spec.n_out * spec.n_c) % spec.n_c
    return bits >= spec.n_c - compared_bits(spec)


def live_state_bits(spec: ViterbiSpec) -> int:
    """State flip-flops whose value reaches a used tap: flip-flop k is bit n_in + k of x
    and moves on to flip-flop k + n_in, so it is live when a used row taps a column
    n_in + k + d·n_in (d ≥ 0). Synthesis removes the others."""
    used = taps(spec)[used_rows(spec)].any(axis=0)[spec.n_in :]
    return sum(bool(used[k :: spec.n_in].any()) for k in range(spec.n_ff))


def expected_cells(spec: ViterbiSpec) -> dict[str, int]:
    """The VD's cell counts after generic synthesis (:mod:`codesign.hw.synth`), by part.

    * ``dff`` (exact): :func:`live_state_bits` + the mask flip-flops (n_out; none when
      threshold is 0, the mask then being constant 0; one when threshold is 2^n_c, the
      n_out identical bits being merged) + ``first`` + ``out.valid``;
    * ``xor_unshared``: Σ over the used rows of G of (taps − 1), one two-input XOR tree
      per raw output;
    * ``xor_shared``: min(``xor_unshared``, R + Σ_h (2^w_h − w_h − 1)) with R the used
      rows, the network that forms every parity of each half (w_h bits, h = 1, 2) of
      the n_in + n_ff tap bits and one XOR per row;
    * ``compare``: n_out·(:func:`compared_bits` − 1) gates of the constant comparators;
    * ``first``: one gate per live state bit (the state reads as 0 when ``first``);
    * ``comb``: ``xor_shared`` + ``compare`` + ``first`` + :data:`CONTROL_GATES`, the
      estimate of all combinational cells.
    """
    rows = taps(spec)[used_rows(spec)].astype(np.int64)
    width = tap_width(spec)
    halves = (width // 2, width - width // 2)
    unshared = int((rows.sum(axis=1) - 1).sum())
    shared = min(unshared, len(rows) + sum(2**h - h - 1 for h in halves))
    compare = spec.n_out * max(compared_bits(spec) - 1, 0)
    live = live_state_bits(spec)
    mask_bits = spec.n_out if compared_bits(spec) else min(spec.threshold or 0, 1)
    return {
        "dff": live + mask_bits + 2,
        "xor_unshared": unshared,
        "xor_shared": shared,
        "compare": compare,
        "first": live,
        "comb": shared + compare + live + CONTROL_GATES,
    }


class ViterbiDecompressor(wiring.Component):
    """The VD of ``spec`` (``threshold`` set) with a registered output (latency
    :data:`LATENCY` cycle).

    Streams: ``in`` (:func:`input_layout`; a Python keyword, so ``getattr(vd, "in")``)
    → ``out`` (:func:`output_layout`), Verilog ports ``in__valid``, ``in__ready``,
    ``in__payload`` (bits 0 … n_in − 1 = ``u``, bit n_in = ``first``), ``out__valid``,
    ``out__ready``, ``out__payload`` (bits 0 … n_out − 1 = ``mask``, bit n_out =
    ``first``). One mask word per accepted input, in order; ``in.ready = ~out.valid |
    out.ready``, so with ``out.ready`` held high one input passes per cycle, and a
    stalled output holds its word (and the state) without losing or duplicating any.
    The mask word of an input accepted at a clock edge is on ``out`` from that edge on.

    After reset (synchronous ``rst``) the output is empty and the state is zero, as if
    the next input had ``first`` set.
    """

    def __init__(self, spec: ViterbiSpec) -> None:
        check_params(spec)
        self.spec = spec
        super().__init__(
            {
                "in": In(stream.Signature(input_layout(spec))),
                "out": Out(stream.Signature(output_layout(spec))),
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        i, o = getattr(self, "in"), self.out
        spec = self.spec
        g = taps(spec)

        state = Signal(spec.n_ff)
        x = Signal(tap_width(spec))
        m.d.comb += x.eq(Cat(i.p.u, Mux(i.p.first, 0, state)))
        keep = Signal(spec.n_out)
        for j in range(spec.n_out):
            group = Cat(
                *(
                    Cat(*(x[int(c)] for c in np.flatnonzero(g[j * spec.n_c + b]))).xor()
                    for b in range(spec.n_c)
                )
            )
            m.d.comb += keep[j].eq(group < spec.threshold)

        m.d.comb += i.ready.eq(~o.valid | o.ready)
        with m.If(i.valid & i.ready):
            m.d.sync += [
                state.eq(x[: spec.n_ff]),
                o.valid.eq(1),
                o.p.mask.eq(keep),
                o.p.first.eq(i.p.first),
            ]
        with m.Elif(o.ready):
            m.d.sync += o.valid.eq(0)
        return m


def tap_vector_parts(spec: ViterbiSpec, inputs: str) -> list[dict[str, Any]]:
    """The tap vector x = u + 2^n_in·s as the protocol lists it, LSB first: the input
    bits (from ``inputs``), then the n_ff state flip-flops."""
    return [{"source": inputs, "width": spec.n_in}, {"source": "state", "width": spec.n_ff}]


def describe(spec: ViterbiSpec, params: Mapping[str, Any]) -> dict[str, Any]:
    """The block's part of the sidecar's ``protocol`` (:func:`codesign.hw.protocol.build`):
    streams, latency, cycle rule, state after reset and the function, in terms of the
    sidecar's matrices ``taps``, ``comparator_rows`` and ``threshold``."""
    return {
        "streams": {
            "in": protocol.stream(
                "input",
                "one VD input per beat: the n_in stored bits of a cycle and the segment flag",
                "in.ready = ~out.valid | out.ready (combinational on out.ready; no skid buffer)",
                {
                    "u": protocol.field(
                        "the stored input bits U_t of this cycle: bit i is VD input line i "
                        "(bit i of the stored input integer)",
                        "bits",
                    ),
                    "first": protocol.field(
                        "1 on the first input of a segment: the state reads as 0 for this "
                        "input; segments are as long as the source makes them (the spec's "
                        "segment length is not enforced)",
                        "flag",
                    ),
                },
                "inputs in stream order; the state carries from one input to the next "
                "within a segment",
            ),
            "out": protocol.stream(
                "output",
                "one mask word per accepted input, in the same order",
                "driven by the sink; a low ready holds the word and stalls the input",
                {
                    "mask": protocol.field(
                        "bit j = keep (1) or prune (0) of position t*n_out + j of the "
                        "segment, for the t-th input since first",
                        "bits",
                    ),
                    "first": protocol.field("copy of the input's first", "flag"),
                },
                "exactly one beat per accepted input, in input order",
            ),
        },
        "latency": {
            "cycles": LATENCY,
            "from": "in handshake",
            "to": "out.valid",
            "rule": "the mask word of an input accepted at a clock edge is on out from that "
            "edge on (registered output)",
        },
        "cycles": {
            "rule": "one input and one mask word per cycle while no stream stalls",
            "cycles_per_item": 1,
            "item": "input",
        },
        "after_reset": "out is empty and the state is zero, as if the next input had first set",
        "function": {
            "kind": "viterbi_decompressor",
            "rule": "x = u + 2^n_in * s (tap vector: input bits first, then the state's "
            "flip-flops, s = 0 when first; bit k of x is column k of taps); raw = taps . x "
            "over GF(2); mask bit j = (sum_b raw[comparator_rows[j][b]] * 2^b < threshold), "
            "threshold being the one value of the one-element matrix threshold that every "
            "comparator shares; then s = x mod 2^n_ff "
            "(flip-flop k < n_in takes u[k], flip-flop k >= n_in takes flip-flop k - n_in: "
            "newest input in the lowest bits)",
            "tap_vector": tap_vector_parts(spec, "in.payload.u"),
            "state": {"width": spec.n_ff, "next_from_tap_vector_lsb": 0, "zero_on": ["first"]},
            "network": {"matrix": "taps", "over": "gf2"},
            "compare": {
                "rows": "comparator_rows",
                "weights": "lsb_first",
                "op": "less_than",
                "threshold": "threshold",
                "output": "out.payload.mask",
            },
            "copies": {"out.payload.first": "in.payload.first"},
        },
    }
