"""XOR-gate fixed-to-fixed sequential decoder with patches: n_in bits in, n_out bits out.

Golden model: :mod:`codesign.models.xor` (:func:`~codesign.models.xor.xor_matrix`,
:func:`~codesign.models.xor.decode_planes`, the patch lists of
:func:`~codesign.models.xor.encode_planes`) and :mod:`codesign.models.xor_encode`.

**Network.** Block t of a plane decodes as y_t = M·v over GF(2) with
v = [x_t; x_{t−1}; …; x_{t−n_s+1}] (n_s·n_in bits, v[j·n_in + k] = bit k of x_{t−j}) and
M = ``xor_matrix(spec)`` (n_out × n_s·n_in, hard-wired): output bit i is the XOR of the
bits v[c] with M[i, c] = 1, a tree of (weight of row i) − 1 two-input XORs. A shift
register of (n_s − 1)·n_in flip-flops holds x_{t−1} … x_{t−n_s+1} (bits
(j − 1)·n_in … j·n_in − 1 = x_{t−j}); on a block flagged ``first`` or ``plane`` it reads
as zero, so segments decode independently exactly as the golden model clears it at
every segment start. n_s = 1 is the stateless XOR-gate network.

**Patches.** The golden model's patch format, per plane: a patch count
(``patch_count``) and the patches (``patch_block`` = block index within the plane,
``patch_bit`` = bit within the block), sorted by block then bit. The decoder reads the
count of a plane when that plane's first block is accepted, then the plane's patches in
order. One patch register R prefetches the plane's next patch; the stream head is the
one after it. A block whose index R names gets R's bit flipped and R consumed (one patch
per cycle); the block is complete once the next patch of the plane (the stream head, or
none when the count is used up) names another block. Rule, with every stream ready:
a block with k patches takes max(1, k) cycles, except the first block of a plane, which
takes k + 1 cycles when k ≥ 1 (R is empty when a plane starts, so its first patch is
fetched in that block's first cycle). Blocks without patches or with one patch keep
one output per cycle.

**Streams** (Verilog ports ``in__valid``, ``in__ready``, ``in__payload``, ``count__…``,
``patch__…``, ``out__…``; payload fields from bit 0 up in the order listed):

* ``in`` (:func:`input_layout`): ``x`` (n_in bits, bit k = input line k), ``first``
  (first block of a segment: the shift register reads as zero), ``plane`` (first block
  of a plane: block index 0, the plane's patch count is read; implies ``first``).
* ``count`` (:func:`count_layout`): ``count`` (:func:`count_width` bits), patches of the
  plane; one per plane, read with the plane's first block. The golden model stores it
  in 32 bits; every count of a plane of at most 2^block_bits blocks fits this width.
* ``patch`` (:func:`patch_layout`): ``block`` (``block_bits``; the golden model's
  ⌈log2 B⌉-bit field, zero-extended), ``bit`` (:func:`bit_width` bits); ``count`` of
  them per plane, in the golden order.
* ``out`` (:func:`output_layout`): ``bits`` (n_out bits; bit i = position t·n_out + i of
  the plane, patches applied), ``plane`` (1 on the first block of a plane).

Planes hold at most 2^``block_bits`` blocks. Every patch must name a block of its own
plane (as the golden model's do); a patch left over when the next plane starts is
dropped.

**Timing.** ``in.ready = ~busy & (~out.valid | out.ready)`` where ``busy`` means the
output register holds a block that still takes patches; ``count.ready`` is high while
the count of the current plane is wanted (combinationally on the accepted plane start,
then until it arrives); ``patch.ready`` while R is free or being consumed and the plane
has patches left. Output registered: a block accepted at a clock edge that needs no
further patch cycle is on ``out`` from that edge on (:data:`LATENCY` = 1 cycle from the
input handshake to the output); each extra cycle of the rule above adds one. A stalled
``out`` holds its payload. After a synchronous reset the output is empty and the next
accepted block starts a plane, as if flagged ``plane``.

**Registers** (:func:`flip_flops`): shift register (n_s − 1)·n_in; output bits n_out,
out.valid, out.plane; busy and the after-reset flag; the held and the next block index
(``block_bits`` each); patches left (:func:`count_width`) and the count-wanted flag;
R (valid, ``block_bits``, :func:`bit_width`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from codesign.hw import protocol
from codesign.models.format import ceil_log2
from codesign.models.specs import XorSpec
from codesign.models.xor import xor_matrix

#: Clock cycles from an input handshake to its output being valid (no extra patch cycle).
LATENCY = 1
#: Largest ``block_bits`` (a plane of at most 2^32 blocks).
MAX_BLOCK_BITS = 32


def bit_width(n_out: int) -> int:
    """Width of a patch's ``bit`` field: ⌈log2 n_out⌉, at least 1."""
    return max(1, ceil_log2(n_out))


def count_width(n_out: int, block_bits: int) -> int:
    """Width of a patch count: bits of 2^block_bits·n_out, the most patches a plane of
    2^block_bits blocks can have."""
    return (n_out << block_bits).bit_length()


def check_params(spec: XorSpec, block_bits: int) -> None:
    """Raise ``ValueError`` (naming the parameter and its range) for a decoder the
    hardware cannot build."""
    if not isinstance(spec, XorSpec):
        raise ValueError(f"XorDecoder needs an XorSpec, got {type(spec).__name__}")
    if (
        isinstance(block_bits, bool)
        or not isinstance(block_bits, int)
        or not 1 <= block_bits <= MAX_BLOCK_BITS
    ):
        raise ValueError(
            f"XorDecoder.block_bits must be an integer in 1..{MAX_BLOCK_BITS}, got {block_bits!r}"
        )


def input_layout(spec: XorSpec) -> data.StructLayout:
    """Input payload: ``x`` (n_in), ``first`` (1), ``plane`` (1)."""
    return data.StructLayout({"x": spec.n_in, "first": 1, "plane": 1})


def count_layout(spec: XorSpec, block_bits: int) -> data.StructLayout:
    """Count payload: ``count`` (:func:`count_width` bits)."""
    return data.StructLayout({"count": count_width(spec.n_out, block_bits)})


def patch_layout(spec: XorSpec, block_bits: int) -> data.StructLayout:
    """Patch payload: ``block`` (``block_bits``), ``bit`` (:func:`bit_width`)."""
    return data.StructLayout({"block": block_bits, "bit": bit_width(spec.n_out)})


def output_layout(spec: XorSpec) -> data.StructLayout:
    """Output payload: ``bits`` (n_out), ``plane`` (1)."""
    return data.StructLayout({"bits": spec.n_out, "plane": 1})


def block_cycles(patches: int, plane_start: bool) -> int:
    """Cycles a block with ``patches`` patches occupies when no stream stalls:
    max(1, patches), plus one for a plane's first block that has a patch."""
    return max(1, patches) + int(plane_start and patches > 0)


def network_xors(spec: XorSpec) -> int:
    """Two-input XORs of the network as built: Σ_i max(weight of row i of M − 1, 0)."""
    weights = xor_matrix(spec).sum(axis=1, dtype=np.int64)
    return int(np.maximum(weights - 1, 0).sum())


def expected_network_xors(spec: XorSpec) -> float:
    """Expected XORs of a random M (fair bits): n_out·(n_s·n_in/2 − 1)."""
    return spec.n_out * (spec.n_s * spec.n_in / 2 - 1)


def flip_flops(spec: XorSpec, block_bits: int) -> int:
    """Flip-flops of the decoder: (n_s − 1)·n_in shift register + n_out output bits +
    3·block_bits (index of the held block, index of the next block, R's block) +
    :func:`count_width` (patches left) + :func:`bit_width` (R's bit) + 6 single bits
    (out.valid, out.plane, busy, after-reset, count wanted, R valid)."""
    return (
        (spec.n_s - 1) * spec.n_in
        + spec.n_out
        + 3 * block_bits
        + count_width(spec.n_out, block_bits)
        + bit_width(spec.n_out)
        + 6
    )


class XorDecoder(wiring.Component):
    """Sequential XOR-gate decoder with a patch stage (module docstring: streams, rule,
    latency :data:`LATENCY`).

    Parameters: ``spec`` (n_in, n_out, n_s, seed → M), ``block_bits``
    (1..:data:`MAX_BLOCK_BITS`, width of a block index; planes of at most
    2^block_bits blocks).
    """

    def __init__(self, spec: XorSpec, block_bits: int = 16) -> None:
        check_params(spec, block_bits)
        self.spec = spec
        self.block_bits = block_bits
        self.matrix = xor_matrix(spec)
        super().__init__(
            {
                "in": In(stream.Signature(input_layout(spec))),
                "count": In(stream.Signature(count_layout(spec, block_bits))),
                "patch": In(stream.Signature(patch_layout(spec, block_bits))),
                "out": Out(stream.Signature(output_layout(spec))),
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        i, c, p, o = getattr(self, "in"), self.count, self.patch, self.out
        spec = self.spec
        state_bits = (spec.n_s - 1) * spec.n_in

        fresh = Signal(init=1)
        busy = Signal()
        cur = Signal(self.block_bits)
        nxt = Signal(self.block_bits, init=1)
        remaining = Signal(count_width(spec.n_out, self.block_bits))
        stale = Signal()
        r_valid = Signal()
        r_block = Signal(self.block_bits)
        r_bit = Signal(bit_width(spec.n_out))

        accept = Signal()
        start = Signal()
        active = Signal()
        index = Signal(self.block_bits)
        m.d.comb += [
            i.ready.eq(~busy & (~o.valid | o.ready)),
            accept.eq(i.valid & i.ready),
            start.eq(accept & (i.p.plane | fresh)),
            active.eq(accept | busy),
            index.eq(Mux(accept, Mux(start, 0, nxt), cur)),
        ]

        # Patch side: the block's plane count (read now or pending), R and the stream head.
        wanted = Signal()
        known = Signal()
        left = Signal.like(remaining)
        m.d.comb += [
            wanted.eq(start | stale),
            c.ready.eq(wanted),
            known.eq(~wanted | c.valid),
            left.eq(Mux(wanted, c.p.count, remaining)),
        ]
        r_here = Signal()
        r_match = Signal()
        hit = Signal()
        done = Signal()
        m.d.comb += [
            r_here.eq(r_valid & ~start),
            r_match.eq(r_here & (r_block == index)),
            hit.eq(active & r_match),
            done.eq(
                (r_here & ~r_match) | (known & ((left == 0) | (p.valid & (p.p.block != index))))
            ),
            p.ready.eq(known & (left != 0) & (~r_here | hit)),
        ]
        fetch = p.valid & p.ready
        with m.If(known):
            m.d.sync += remaining.eq(Mux(fetch, left - 1, left))
        m.d.sync += stale.eq(wanted & ~c.valid)
        with m.If(fetch):
            m.d.sync += [r_valid.eq(1), r_block.eq(p.p.block), r_bit.eq(p.p.bit)]
        with m.Elif(hit | start):
            m.d.sync += r_valid.eq(0)

        # Network: v = [x_t; x_{t-1}; ...], the past cleared at a segment start.
        clear = i.p.first | i.p.plane | fresh
        v = Signal(spec.n_s * spec.n_in)
        if state_bits:
            past = Signal(state_bits)
            m.d.comb += v.eq(Cat(i.p.x, Mux(clear, 0, past)))
            with m.If(accept):
                m.d.sync += past.eq(v[:state_bits])
        else:
            m.d.comb += v.eq(i.p.x)
        y = Signal(spec.n_out)
        for row, taps in enumerate(self.matrix):
            cols = np.flatnonzero(taps)
            if cols.size:
                m.d.comb += y[row].eq(Cat(*(v[int(col)] for col in cols)).xor())

        flip = Signal(spec.n_out)
        m.d.comb += flip.eq(Cat(*(hit & (r_bit == b) for b in range(spec.n_out))))
        with m.If(active):
            m.d.sync += [o.p.bits.eq(Mux(accept, y, o.p.bits) ^ flip), busy.eq(~done)]
        with m.If(accept):
            m.d.sync += [cur.eq(index), nxt.eq(index + 1), fresh.eq(0), o.p.plane.eq(start)]
        with m.If(active & done):
            m.d.sync += o.valid.eq(1)
        with m.Elif(o.ready):
            m.d.sync += o.valid.eq(0)
        return m


def matrices(spec: XorSpec, params: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The sidecar's derived matrix: ``M`` = ``xor_matrix(spec)`` (n_out × n_s·n_in)."""
    return {"M": xor_matrix(spec)}


def describe(spec: XorSpec, params: Mapping[str, Any]) -> dict[str, Any]:
    """The block's part of the sidecar's ``protocol`` (:func:`codesign.hw.protocol.build`),
    in terms of the sidecar's matrix ``M``."""
    block_bits = params["block_bits"]
    history = [
        {"source": "in.payload.x", "width": spec.n_in, "age": age} for age in range(spec.n_s)
    ]
    return {
        "streams": {
            "in": protocol.stream(
                "input",
                "one block input per beat: the n_in stored bits x_t of a block and its flags",
                "in.ready = ~busy & (~out.valid | out.ready), busy = the output register "
                "holds a block that still takes patches",
                {
                    "x": protocol.field("x_t: bit k is input line k of the network", "bits"),
                    "first": protocol.field(
                        "1 on the first block of a segment: the older inputs x_t-1 .. "
                        "read as zero for this block",
                        "flag",
                    ),
                    "plane": protocol.field(
                        "1 on the first block of a bit-plane: its block index is 0 and the "
                        "plane's patch count is read; implies first",
                        "flag",
                    ),
                },
                "blocks of a plane in order (block index = beats since the one flagged "
                f"plane, at most 2^block_bits = {1 << block_bits} blocks per plane), planes "
                "one after another",
            ),
            "count": protocol.stream(
                "input",
                "the patch count of a plane, one beat per plane",
                "count.ready is high while the current plane's count is wanted: "
                "combinationally in the cycle its first block is accepted (count.ready "
                "follows in.valid), then until a count arrives",
                {"count": protocol.field("patches of the plane", "unsigned")},
                "one count per plane, in plane order, taken with or after the plane's first block",
            ),
            "patch": protocol.stream(
                "input",
                "one patch per beat: a bit to flip in one block of the current plane",
                "patch.ready is high while the patch register is free or being consumed "
                "and the plane has patches left (its count not used up)",
                {
                    "block": protocol.field(
                        "index of the patched block within its plane (0 = the block flagged plane)",
                        "unsigned",
                    ),
                    "bit": protocol.field(
                        "bit of out.payload.bits to flip, 0 .. n_out-1", "unsigned"
                    ),
                },
                "count patches per plane, sorted by block then bit; a block may have "
                "several; every patch names a block of its own plane (a patch left over "
                "when the next plane starts is dropped)",
            ),
            "out": protocol.stream(
                "output",
                "one decoded block per accepted input, patches applied",
                "driven by the sink; a low ready holds the block and stalls the input",
                {
                    "bits": protocol.field(
                        "bit i = (M . v)[i] xor (1 for every patch of this block naming bit "
                        "i): position t*n_out + i of the plane",
                        "bits",
                    ),
                    "plane": protocol.field("1 on the first block of a plane", "flag"),
                },
                "exactly one beat per accepted input, in input order",
            ),
        },
        "latency": {
            "cycles": LATENCY,
            "from": "in handshake",
            "to": "out.valid",
            "rule": "a block that needs no further patch cycle is on out from the edge that "
            "accepted it; each extra cycle of the cycle rule adds one",
        },
        "cycles": {
            "rule": "with every stream ready, a block with k patches takes max(1, k) cycles, "
            "plus one when it is the first block of its plane and k >= 1 (the plane's first "
            "patch is fetched in that block's first cycle); one patch is applied per cycle",
            "cycles_per_item": 1,
            "item": "block",
            "cycles_per_patch": 1,
            "extra_cycles_plane_start_with_patches": 1,
        },
        "after_reset": "out is empty and the next accepted block starts a plane, as if "
        "flagged plane; a count or patch of the interrupted plane not yet taken must not "
        "be sent",
        "function": {
            "kind": "xor_decoder",
            "rule": "v = [x_t; x_t-1; ...; x_t-n_s+1] (v[j*n_in + k] = bit k of x_t-j, the "
            "older inputs zero at a block flagged first or plane and after reset); bits = "
            "M . v over GF(2), then every patch of the block flips its bit (two patches of "
            "one bit cancel). The spec fields segment, value_bits, quant, mask_format, "
            "mask_threshold and dp_states shape the stored streams, not this circuit",
            "tap_vector": history,
            "history": {"blocks": spec.n_s - 1, "zero_on": ["first", "plane"]},
            "network": {"matrix": "M", "over": "gf2", "output": "out.payload.bits"},
            "patches": {
                "count_stream": "count",
                "patch_stream": "patch",
                "counts_per": "plane",
                "sorted_by": ["block", "bit"],
                "block_index": "from 0 at the block flagged plane",
                "effect": "flip",
                "max_blocks_per_plane": 1 << block_bits,
            },
            "plane_start": "a block flagged plane, or the first block accepted after reset",
        },
    }
