"""Viterbi search in hardware: per-step weight scores in, the chosen VD input bits out.

Golden model: :func:`codesign.models.viterbi_search.viterbi_search_fixed` (fixed-point scores,
normalised path metrics, tie-breaks) over the trellis of the VD of
:mod:`codesign.models.viterbi_decompressor` (tap vector x = U + 2^n_in·S, next state x mod 2^n_ff,
mask pattern of x = row x of :func:`~codesign.models.viterbi_decompressor.keep_table`). The block
returns exactly the golden inputs, bit for bit, for every segment.

**Datapath (one trellis step per accepted input, all 2^n_ff states in parallel).**

* Branch metrics: for every distinct mask pattern p of the keep table, the sum of the
  step's scores at the set bits of p (pattern p from pattern p with its lowest bit
  cleared plus one score; one adder per pattern with two or more bits, shared).
* Add: candidate(x) = pm[x >> n_in] + branch(pattern(x)) for all 2^(n_ff+n_in) tap
  vectors x, on W + 1 bits (W = :func:`~codesign.models.viterbi_search.metric_bits`).
* Compare-select: next state S' takes the best of its candidates x = S' + h·2^n_ff,
  h = 0 … 2^n_in − 1, in a tournament whose lower-h side wins ties, i.e. the lowest h
  (lowest predecessor, then lowest input) among the best, as in the golden model.
* Normalise: best = the largest selected metric of the step (a max tree over the states);
  pm'[S'] = max(selected[S'] − best, −2^(W−1)), so metrics stay in [−2^(W−1), 0] on W
  bits. At a segment's first step the metrics read as 0 for state 0 and −2^(W−1) for
  the others.
* Survivors: per step one word of 2^n_ff·n_in bits, bits S'·n_in … S'·n_in + n_in − 1 =
  the chosen h of next state S', in two banks (ping-pong; segments alternate between
  them in the order they end) of ``max_segment`` words each (address = step index in
  the segment), each read through a register that takes the written word when the
  bank is written (a read of the address being written sees the new word): a
  synchronous read port transparent to its write port, written out as an asynchronous
  read and a register so that every Verilog tool infers it the same way.
* Traceback after the segment's last step, reading the segment's bank while the next
  segment's search writes the other one: from the lowest state whose normalised metric
  is 0 (the best; taken in the traceback's first cycle, before the next segment's first
  step can change the metrics), one step per cycle from the last step back to the first: with next
  state S' and its h, x = S' + h·2^n_ff, the step's input bits are x mod 2^n_in and the
  previous state x >> n_in. The input bits go into an output buffer bank (two banks of
  ``max_segment`` words of n_in bits, address = step index, the segment's bank parity)
  and are emitted from it in time order while the next traceback fills the other bank.

**Streams.** ``in``: :func:`input_layout` (the n_out scores of a step, ``first``,
``last``); ``out``: :func:`output_layout`, the stream a
:class:`~codesign.hw.viterbi_decompressor.ViterbiDecompressor` reads (``u``: n_in bits, bit i =
u_t[i]; ``first`` on the first step of a segment), so the two connect directly. A
segment ends at a step with ``last`` set or at its ``max_segment``-th step; the next
accepted step starts a new segment whatever its ``first`` flag. A step with ``first``
set always starts a new segment: an unfinished segment before it is dropped (no output).

**Timing.** Steps are accepted at up to one per cycle; ``in.ready`` is a register output
(``in.ready`` = no ended segment waiting for the traceback), independent of
``out.ready``. The traceback of a segment of L steps starts the cycle after its last
step is accepted and takes L cycles (one per step, step 0 last), overlapping the search
of the next segment, whose first step can be accepted in the traceback's first cycle.
The traceback's final step (step 0) waits for the cycle in which the previous segment's
output is drained or emits its last beat; the segment's L outputs are then emitted one
per cycle from the next cycle on. Latency (full rate, previous segment's output drained
in time): the first output is valid L cycles after the edge that accepted the last step
and is taken at the next edge, :func:`latency` = L + 1 cycles between the two handshakes
(the convention of :data:`codesign.hw.relative_decoder.LATENCY`). Steady state with segments of
equal length L back to back, output not stalled: L steps per L cycles
(:func:`segment_cycles`), ``in.ready`` high throughout, L outputs per L cycles with no
bubbles. A segment that ends while the previous traceback is still running (it is
shorter than that traceback plus the wait for the output drain, e.g. a short tail, or
the output is stalled) waits for it: ``in.ready`` is low from the cycle after its last
step through the previous traceback's final step, and high again in the next cycle, the
first of its own traceback (a stall of the input of that many cycles); a stalled output
likewise delays the final traceback step and so, one segment later, the input. The
path-metric loop (add, compare-select, max tree, subtract, clamp) is one combinational
path per cycle.

After reset (synchronous ``rst``) the output is empty and the next step starts a new
segment; memories keep their contents, which are never read before being rewritten.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from codesign.hw import protocol
from codesign.hw.select import select
from codesign.hw.viterbi_decompressor import input_layout as vd_input_layout
from codesign.hw.viterbi_decompressor import tap_vector_parts
from codesign.models.specs import ViterbiSpec
from codesign.models.viterbi_decompressor import keep_table, tap_width
from codesign.models.viterbi_search import DEFAULT_SCORE_BITS, metric_bits

#: Default largest segment length (survivor and output buffer depth).
DEFAULT_MAX_SEGMENT = 256
#: Largest ``max_segment`` the block builds (step counters of 16 bits).
MAX_SEGMENT = 1 << 16
#: Largest n_ff + n_in: at most 4096 add-compare candidates per step.
MAX_TAP_BITS = 12
#: Range of ``score_bits`` (that of the golden model).
SCORE_BITS_RANGE = (2, 16)
#: Synthesised gates per bit of an adder, compare-select or subtract-and-clamp unit
#: (two-input gates of ``abc -g``; 6.3 … 7.0 measured over n_ff = 2 … 6, n_in = 1 … 3).
GATES_PER_ARITH_BIT = 6.5


def latency(steps: int) -> int:
    """Cycles from the handshake of a segment's last step to that of its first output,
    at full rate with the previous segment's output drained: ``steps`` + 1."""
    return steps + 1


def segment_cycles(steps: int) -> int:
    """Input cycles a segment of ``steps`` steps occupies at full rate, back to back
    with segments of the same length: ``steps`` (one step per cycle, ``in.ready`` high
    throughout; the traceback overlaps the next segment's search)."""
    return steps


def _check_int(name: str, value: Any, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"ViterbiSearch.{name} must be an integer in {lo}..{hi}, got {value!r}")


def check_params(spec: ViterbiSpec, score_bits: int, max_segment: int) -> None:
    """Raise ``ValueError`` (naming the parameter and its allowed range) for a search the
    hardware cannot build: not a :class:`ViterbiSpec`, ``threshold`` unset (the mask
    patterns are hard-wired), n_ff + n_in > :data:`MAX_TAP_BITS`, ``score_bits`` outside
    :data:`SCORE_BITS_RANGE`, ``max_segment`` outside 1..:data:`MAX_SEGMENT` or below
    ``spec.segment``."""
    if not isinstance(spec, ViterbiSpec):
        raise ValueError(f"ViterbiSearch needs a ViterbiSpec, got {type(spec).__name__}")
    if spec.threshold is None:
        raise ValueError(
            f"ViterbiSearch: spec.threshold is unset; the mask patterns are hard-wired, "
            f"set threshold to an integer in 0..2^n_c={2**spec.n_c}"
        )
    if tap_width(spec) > MAX_TAP_BITS:
        raise ValueError(
            f"ViterbiSearch: n_ff + n_in must be at most {MAX_TAP_BITS} (2^(n_ff+n_in) "
            f"add-compare candidates per step), got {spec.n_ff} + {spec.n_in}"
        )
    _check_int("score_bits", score_bits, *SCORE_BITS_RANGE)
    _check_int("max_segment", max_segment, 1, MAX_SEGMENT)
    if spec.segment > max_segment:
        raise ValueError(
            f"ViterbiSearch.max_segment must be at least spec.segment = {spec.segment} "
            f"(and at most {MAX_SEGMENT}), got {max_segment}"
        )
    keep_table(spec)


def input_layout(spec: ViterbiSpec, score_bits: int) -> data.StructLayout:
    """Input payload of one trellis step: ``scores`` (n_out signed ``score_bits``-bit
    scores; element j = score of weight t·n_out + j, the weight mask bit j covers),
    ``first`` (starts a new segment), ``last`` (ends the segment)."""
    return data.StructLayout(
        {
            "scores": data.ArrayLayout(signed(score_bits), spec.n_out),
            "first": 1,
            "last": 1,
        }
    )


def output_layout(spec: ViterbiSpec) -> data.StructLayout:
    """Output payload, one beat per step in time order: ``u`` (n_in bits, bit i =
    u_t[i]) and ``first`` (1 on the segment's first step); the input layout of
    :class:`~codesign.hw.viterbi_decompressor.ViterbiDecompressor`."""
    return vd_input_layout(spec)


def patterns(spec: ViterbiSpec) -> np.ndarray:
    """Mask pattern of every tap vector: int64 (2^(n_in+n_ff),), bit j = keep_j of
    :func:`~codesign.models.viterbi_decompressor.keep_table`."""
    table = keep_table(spec).astype(np.int64)
    return table @ (1 << np.arange(spec.n_out, dtype=np.int64))


def sum_patterns(spec: ViterbiSpec) -> list[int]:
    """The patterns with two or more bits whose score sums the block adds (each one
    adder: the pattern with its lowest bit cleared plus one score), in increasing
    order; the closure of the keep table's patterns under clearing the lowest bit."""
    needed: set[int] = set()
    for p in np.unique(patterns(spec)).tolist():
        while p & (p - 1) and p not in needed:
            needed.add(p)
            p &= p - 1
    return sorted(needed)


def state_classes(spec: ViterbiSpec) -> np.ndarray:
    """Class of every state, int64 (2^n_ff,), numbered in order of first appearance.

    Two states are in one class when the circuit computes their next path metrics from
    the same inputs: the same start value (state 0 starts at 0, the others at the floor)
    and, for every h, predecessors of one class and tap vectors of one mask pattern. Their
    metrics and survivors are then equal at every step, and synthesis merges their
    registers and survivor columns. The classes are the least fixed point of that rule
    from all states distinct, the merging an iterated structural-equivalence pass (Yosys
    ``opt_merge``) finds.
    """
    k, n = spec.n_ff, spec.n_in
    pattern = patterns(spec).tolist()
    classes = list(range(1 << k))
    while True:
        keys: dict[tuple, int] = {}
        merged = []
        for s in range(1 << k):
            key = tuple(
                (classes[x >> n], x >> n == 0, pattern[x])
                for x in (s + (h << k) for h in range(1 << n))
            )
            merged.append(keys.setdefault(key, len(keys)))
        if len(keys) == len(set(classes)):
            return np.array(merged, dtype=np.int64)
        classes = merged


def matrices(spec: ViterbiSpec, params: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The constants the circuit hard-wires, for the sidecar: ``keep_table``, 0/1 of
    shape (2^(n_in+n_ff), n_out), row x = mask bits of tap vector x = U + 2^n_in·S."""
    check_params(spec, **params)
    return {"keep_table": keep_table(spec).astype(np.uint8)}


def expected_cells(spec: ViterbiSpec, score_bits: int, max_segment: int) -> dict[str, int]:
    """What the synthesised block is built from, and the cell counts it should reach.

    With W = :func:`~codesign.models.viterbi_search.metric_bits`, D = ``max_segment``, N = 2^n_ff
    states and C = the :func:`state_classes` (C ≤ N; synthesis merges equivalent states):

    * ``candidates`` = 2^(n_ff+n_in), the nominal adders; ``adders``: those left after
      merging, distinct (predecessor class, mask pattern) pairs with a non-empty pattern
      (an empty pattern adds nothing), W + 1 bits each;
    * ``compare_selects``: C·(2^n_in − 1) in the add-compare-select plus N − 1 in the max
      tree, W + 1 bits; ``normalisers``: C subtract-and-clamp units, W + 1 bits;
    * ``pattern_adders``: :func:`sum_patterns` (narrow, score_bits + a few bits);
    * ``survivor_bits`` = 2·D·C·n_in (two banks; nominal 2·D·N·n_in), ``buffer_bits`` =
      2·D·n_in (two banks);
    * ``dff`` (exact): survivor + buffer storage, C·W path metrics, the two C·n_in
      survivor read registers, five step counters of ⌈log2 D⌉ bits, n_ff traceback state
      bits and six flags;
    * ``mux_bits``: the memory read multiplexers, 2·(D − 1)·(C + 1)·n_in, plus 2·C·n_in
      for the transparent reads, (C + 1)·n_in for the bank selects and (N − 1)·n_in for
      the traceback's survivor select;
    * ``gates``: the expected two-input gates, inverters and multiplexers (all cells but
      flip-flops): :data:`GATES_PER_ARITH_BIT` per bit of the adders, compare-selects and
      normalisers plus one per mux bit.
    """
    k, n = spec.n_ff, spec.n_in
    states = 1 << k
    width = metric_bits(spec, score_bits)
    classes = state_classes(spec)
    count = int(classes.max()) + 1
    pattern = patterns(spec).tolist()
    adders = len(
        {(classes[x >> n], x >> n == 0, pattern[x]) for x in range(1 << (k + n)) if pattern[x]}
    )
    compare_selects = count * ((1 << n) - 1) + states - 1
    survivor = 2 * max_segment * count * n
    buffer = 2 * max_segment * n
    control = 5 * (max_segment - 1).bit_length() + k + 6
    mux = (
        2 * (max_segment - 1) * (count + 1) * n + 2 * count * n + (count + 1) * n + (states - 1) * n
    )
    arith = (width + 1) * (adders + compare_selects + count)
    return {
        "metric_bits": width,
        "states": states,
        "state_classes": count,
        "candidates": 1 << (k + n),
        "adders": adders,
        "compare_selects": compare_selects,
        "normalisers": count,
        "pattern_adders": len(sum_patterns(spec)),
        "survivor_bits": survivor,
        "buffer_bits": buffer,
        "dff": survivor + buffer + count * width + 2 * count * n + control,
        "mux_bits": mux,
        "gates": round(GATES_PER_ARITH_BIT * arith) + mux,
    }


def _tournament(items: list[tuple[Any, Any]], m: Module, width: int) -> tuple[Any, Any]:
    """(value, index) of the largest value of ``items`` [(value, index)], the earlier
    item winning ties; a balanced tree of compare-selects."""
    while len(items) > 1:
        merged = []
        for k in range(0, len(items) - 1, 2):
            (lv, li), (rv, ri) = items[k], items[k + 1]
            take = Signal()
            value = Signal(signed(width))
            m.d.comb += [take.eq(rv > lv), value.eq(Mux(take, rv, lv))]
            index = None if li is None else Mux(take, ri, li)
            merged.append((value, index))
        if len(items) % 2:
            merged.append(items[-1])
        items = merged
    return items[0]


def _lowest_set(flags: list[Any]) -> tuple[Any, Any]:
    """(any flag set, index of the lowest set flag) of ``flags``, a balanced tree."""
    items = [(f, Cat()) for f in flags]
    while len(items) > 1:
        merged = []
        for k in range(0, len(items), 2):
            (lf, li), (rf, ri) = items[k], items[k + 1]
            merged.append((lf | rf, Cat(Mux(lf, li, ri), ~lf)))
        items = merged
    return items[0]


class ViterbiSearch(wiring.Component):
    """The Viterbi search of ``spec`` (``threshold`` set) on ``score_bits``-bit scores,
    segments of at most ``max_segment`` steps (see the module docstring for the datapath
    and timing; :func:`latency`, :func:`segment_cycles`).

    Parameters: ``spec`` (n_ff + n_in ≤ :data:`MAX_TAP_BITS`), ``score_bits``
    (:data:`SCORE_BITS_RANGE`, default 8), ``max_segment`` (spec.segment ..
    :data:`MAX_SEGMENT`, default :data:`DEFAULT_MAX_SEGMENT`).

    Streams: ``in`` (:func:`input_layout`; a Python keyword, so ``getattr(vs, "in")``)
    → ``out`` (:func:`output_layout`). Verilog ports ``in__valid``, ``in__ready``,
    ``in__payload`` (bits j·score_bits … (j+1)·score_bits − 1 = score j, two's
    complement; then ``first``, then ``last``), ``out__valid``, ``out__ready``,
    ``out__payload`` (bits 0 … n_in − 1 = ``u``, bit n_in = ``first``).
    """

    def __init__(
        self,
        spec: ViterbiSpec,
        score_bits: int = DEFAULT_SCORE_BITS,
        max_segment: int = DEFAULT_MAX_SEGMENT,
    ) -> None:
        check_params(spec, score_bits, max_segment)
        self.spec = spec
        self.score_bits = score_bits
        self.max_segment = max_segment
        self.metric_bits = metric_bits(spec, score_bits)
        super().__init__(
            {
                "in": In(stream.Signature(input_layout(spec, score_bits))),
                "out": Out(stream.Signature(output_layout(spec))),
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        i, o = getattr(self, "in"), self.out
        spec = self.spec
        n_in, n_ff = spec.n_in, spec.n_ff
        states = 1 << n_ff
        width = self.metric_bits
        floor = -(1 << (width - 1))
        depth = self.max_segment

        # control
        at_start = Signal(init=1)
        waddr = Signal(range(depth))
        wbank = Signal()
        queued = Signal()
        tracing = Signal()
        trace_first = Signal()
        t = Signal(range(depth))
        seg_last = Signal(range(depth))
        tb_state = Signal(n_ff)
        out_idx = Signal(range(depth))
        out_end = Signal(range(depth))

        tbank = Signal()
        obank = Signal()
        m.d.comb += [tbank.eq(wbank ^ ~queued), obank.eq(tbank ^ tracing)]
        restart = at_start | i.p.first
        step_addr = Signal(range(depth))
        m.d.comb += step_addr.eq(Mux(restart, 0, waddr))
        closing = i.p.last | (step_addr == depth - 1)
        drained = ~o.valid | (o.ready & (out_idx == out_end))
        advance = tracing & ((t != 0) | drained)
        trace_done = advance & (t == 0)
        m.d.comb += i.ready.eq(~queued)
        accept = i.valid & i.ready

        # branch metrics: one sum per mask pattern
        top = (1 << (self.score_bits - 1)) - 1
        sums: dict[int, Any] = {0: 0}
        for j in range(spec.n_out):
            sums[1 << j] = i.p.scores[j]
        for p in sum_patterns(spec):
            count = p.bit_count()
            total = Signal(range(-count * top, count * top + 1), name=f"branch_{p:x}")
            m.d.comb += total.eq(sums[p & (p - 1)] + i.p.scores[(p & -p).bit_length() - 1])
            sums[p] = total

        # add-compare-select over all states, then normalise
        pm = [Signal(signed(width), name=f"pm_{s}") for s in range(states)]
        start = [Mux(restart, 0 if s == 0 else floor, pm[s]) for s in range(states)]
        cands = []
        for x, p in enumerate(patterns(spec).tolist()):
            cand = Signal(signed(width + 1), name=f"cand_{x}")
            m.d.comb += cand.eq(start[x >> n_in] + sums[p])
            cands.append(cand)
        selected, picks = [], []
        for s in range(states):
            value, index = _tournament(
                [(cands[s + h * states], h) for h in range(1 << n_in)], m, width + 1
            )
            pick = Signal(n_in, name=f"pick_{s}")
            m.d.comb += pick.eq(index)
            selected.append(value)
            picks.append(pick)
        best, _ = _tournament([(v, None) for v in selected], m, width + 1)
        pm_next = []
        for s in range(states):
            diff = Signal(signed(width + 2), name=f"norm_{s}")  # the whole difference
            m.d.comb += diff.eq(selected[s] - best)
            pm_next.append(Mux(diff < floor, Const(floor, signed(width)), diff[:width].as_signed()))

        # survivor memory banks: the search writes bank wbank, the traceback reads tbank
        words = []
        for b in range(2):
            bank = memory.Memory(shape=states * n_in, depth=depth, init=[])
            m.submodules[f"survivors_{b}"] = bank
            sw = bank.write_port()
            sr = bank.read_port(domain="comb")
            writing = accept & (wbank == b)
            m.d.comb += [
                sw.addr.eq(step_addr),
                sw.data.eq(Cat(*picks)),
                sw.en.eq(writing),
                sr.addr.eq(Mux(writing, step_addr, t - 1)),
            ]
            # The read register, transparent to the write (a write reads its own address):
            # the pattern every tool maps to a synchronous read-first-bypassed port.
            read = Signal(states * n_in, name=f"survivor_word_{b}", reset_less=True)
            with m.If(writing | (advance & (tbank == b))):
                m.d.sync += read.eq(Mux(writing, sw.data, sr.data))
            words.append(read)
        word = Signal(states * n_in)
        m.d.comb += word.eq(Mux(tbank, words[1], words[0]))

        # traceback into output buffer bank tbank; the output reads bank obank
        _, end_state = _lowest_set([v == 0 for v in pm])
        current = Signal(n_ff)
        m.d.comb += current.eq(Mux(trace_first, end_state, tb_state))
        x = Cat(current, select([word[s * n_in : (s + 1) * n_in] for s in range(states)], current))
        reads = []
        for b in range(2):
            buffer = memory.Memory(shape=n_in, depth=depth, init=[])
            m.submodules[f"buffer_{b}"] = buffer
            bw = buffer.write_port()
            br = buffer.read_port(domain="comb")
            m.d.comb += [
                bw.addr.eq(t),
                bw.data.eq(x[:n_in]),
                bw.en.eq(advance & (tbank == b)),
                br.addr.eq(out_idx),
            ]
            reads.append(br.data)

        # output
        m.d.comb += [o.p.u.eq(Mux(obank, reads[1], reads[0])), o.p.first.eq(out_idx == 0)]
        with m.If(o.valid & o.ready):
            with m.If(out_idx == out_end):
                m.d.sync += o.valid.eq(0)
            with m.Else():
                m.d.sync += out_idx.eq(out_idx + 1)
        with m.If(advance):
            m.d.sync += [tb_state.eq(x[n_in:]), trace_first.eq(0), t.eq(t - 1)]
            with m.If(t == 0):
                m.d.sync += [
                    tracing.eq(0),
                    o.valid.eq(1),
                    out_idx.eq(0),
                    out_end.eq(seg_last),
                ]
                with m.If(queued):
                    m.d.sync += [
                        queued.eq(0),
                        tracing.eq(1),
                        trace_first.eq(1),
                        t.eq(waddr - 1),
                        seg_last.eq(waddr - 1),
                    ]
        with m.Elif(trace_first):
            # The first step waits (a one-step segment waiting for the output to drain):
            # keep the end state, as the next segment's first step may change pm.
            m.d.sync += [tb_state.eq(end_state), trace_first.eq(0)]
        with m.If(accept):
            m.d.sync += [pm[s].eq(pm_next[s]) for s in range(states)]
            m.d.sync += [waddr.eq(step_addr + 1), at_start.eq(closing)]
            with m.If(closing):
                m.d.sync += wbank.eq(~wbank)
                with m.If(tracing & ~trace_done):
                    m.d.sync += queued.eq(1)
                with m.Else():
                    m.d.sync += [
                        tracing.eq(1),
                        trace_first.eq(1),
                        t.eq(step_addr),
                        seg_last.eq(step_addr),
                    ]
        return m


def describe(spec: ViterbiSpec, params: Mapping[str, Any]) -> dict[str, Any]:
    """The block's part of the sidecar's ``protocol`` (:func:`codesign.hw.protocol.build`),
    in terms of the sidecar's matrix ``keep_table``."""
    score_bits, depth = params["score_bits"], params["max_segment"]
    width = metric_bits(spec, score_bits)
    top = (1 << (score_bits - 1)) - 1
    return {
        "streams": {
            "in": protocol.stream(
                "input",
                "one trellis step per beat: the scores of the n_out weights the step's mask "
                "bits cover, and the segment flags",
                "in.ready is a register output: high unless an ended segment waits for the "
                "traceback (independent of out.ready within the cycle)",
                {
                    "scores": protocol.field(
                        "element j = score of weight t*n_out + j (the one mask bit j covers), "
                        "within range (the most negative code is not used: the metric "
                        "width is sized for |score| <= 2^(score_bits-1) - 1)",
                        "array",
                        element_width=score_bits,
                        elements=spec.n_out,
                        element_encoding="signed",
                        range=[-top, top],
                    ),
                    "first": protocol.field(
                        "1: this step starts a new segment (an unfinished segment before it "
                        "is dropped, no output)",
                        "flag",
                    ),
                    "last": protocol.field(
                        f"1: this step ends the segment (a segment also ends at its "
                        f"max_segment = {depth}-th step)",
                        "flag",
                    ),
                },
                "steps in time order; the step after a segment's end starts a new segment "
                "whatever its first flag",
            ),
            "out": protocol.stream(
                "output",
                "the chosen VD input bits, one beat per step of every completed segment, in "
                "time order; the input stream of the viterbi_decompressor block",
                "driven by the sink; a low ready holds the beat, and one segment later the input",
                {
                    "u": protocol.field("u_t: bit i = VD input line i of step t", "bits"),
                    "first": protocol.field("1 on the first step of a segment", "flag"),
                },
                "the L beats of a segment after its L steps are in, segments in order",
            ),
        },
        "latency": {
            "cycles": latency(spec.segment),
            "from": "handshake of a segment's last step",
            "to": "handshake of its first output",
            "rule": "L + 1 cycles for a segment of L steps at full rate with the previous "
            "segment's output drained (L = the spec's segment length here)",
        },
        "cycles": {
            "rule": "one step per cycle; segments of equal length back to back keep "
            "in.ready high and out busy without bubbles (the traceback of a segment overlaps "
            "the search of the next); a segment shorter than the traceback before it waits",
            "cycles_per_item": 1,
            "item": "step",
        },
        "after_reset": "out is empty and the next step starts a new segment; memories keep "
        "their contents, which are never read before being rewritten",
        "function": {
            "kind": "viterbi_search",
            "rule": "per step, for every tap vector x = u + 2^n_in * s: candidate = pm[s] + "
            "(sum of the step's scores at the set bits of keep_table[x]); next state s' = x "
            "mod 2^n_ff takes its best candidate (ties: lowest x); pm'[s'] = max(best(s') - "
            "max over states of best, floor); a segment starts from pm = 0 for state 0 and "
            "floor for the others; after its last step the traceback starts from the lowest "
            "state whose metric is 0 and emits u = x mod 2^n_in of every step's choice",
            "tap_vector": tap_vector_parts(spec, "u"),
            "keep_table": "keep_table",
            "metric": {"bits": width, "floor": -(1 << (width - 1)), "start_state": 0},
            "ties": "lowest tap vector",
            "max_segment": depth,
        },
    }
