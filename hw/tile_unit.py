"""A decoder unit of the sparse tile: its bank, a format's decoder from hw/, and the
handoff of decoded rows to its lanes.

Unit d of a :class:`~codesign.models.tile.TileSpec` decodes rows d, d + D, d + 2D, …
(their records, :mod:`codesign.models.tile`) for lanes d, d + D, … in turn. Parts:

* **Bank**: a FIFO of ``bank_words`` stream words (with each record's ``last`` flag),
  written by the tile's dispatcher; ``complete`` counts the rows whose last word is in.
  A word is freed when the unit reads it.
* **Start.** The unit starts a row when its record is complete in the bank, the row's
  lane has a free slot (``space``) and the previous row has no word left to read and
  no item left to decode but possibly this cycle's: back to back, a row occupies the
  unit max(decode cycles, record words) cycles (the decoder's first input comes one
  cycle after the start, the bank's read latency).
* **Read**: one word per cycle from the start until the record's last word. Index
  words enter a shift register (the *gearbox*) from which the decoder takes its items;
  a split record's value words (viterbi, lbi) go straight to the lane's slot. For
  relative and csr every word is index (entries carry their values); reading pauses
  while the gearbox has no room for another word.
* **Decoder** (reused blocks of hw/): ``relative`` —
  :class:`~codesign.hw.relative_decoder.RelativeDecoder`, one entry per cycle
  (``first`` on a row's first entry: the record's gaps restart at every row); ``csr``
  — :class:`~codesign.hw.csr_decoder.CsrDecoder`, the count then one entry per cycle;
  ``viterbi`` — :class:`~codesign.hw.viterbi_decompressor.ViterbiDecompressor`, one step
  of n_out mask bits per cycle (``first`` on a row's first step); ``lbi`` —
  :class:`~codesign.hw.binary_index_decoder.BinaryIndexDecoder`, one tile row per cycle,
  its Iz tiles read from the tile's band buffer (the first offered in the row's start
  cycle, so no load cycle shows).
* **Commit.** The decoder's outputs build the row's mask (and, for relative and csr,
  write its values one byte at a time); one cycle after both the last output and the
  last value word, the unit commits the row to its lane (the mask goes to the slot).
  A row started at cycle s and taking ``busy`` cycles is committed at the end of cycle
  s + busy + 1, so its lane may take it at s + busy + 2.
"""

from __future__ import annotations

from amaranth.hdl import Array, Const, Module, Mux, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from codesign.hw.binary_index_decoder import BinaryIndexDecoder
from codesign.hw.csr_decoder import CsrDecoder
from codesign.hw.relative_decoder import RelativeDecoder
from codesign.hw.select import word
from codesign.hw.tile_lane import lane_write_signature, value_words
from codesign.hw.viterbi_decompressor import ViterbiDecompressor
from codesign.models.tile import VALUE_BITS, TileSpec

#: Formats whose record is an index part (padded to a word) and then the values.
SPLIT_FORMATS = ("viterbi", "lbi")


def word_layout(tile: TileSpec) -> data.StructLayout:
    """A stream word: ``data`` (8·stream_bytes bits) and ``last`` (the record's last)."""
    return data.StructLayout({"data": tile.word_bits, "last": 1})


def gearbox_bits(tile: TileSpec) -> int:
    """Bits the gearbox holds: two words for the packed formats (an entry fits one word),
    a split format's longest index part plus one word."""
    words = -(-tile.index_bits_max() // tile.word_bits)
    return tile.word_bits * (words + 1 if tile.format in SPLIT_FORMATS else 2)


class DecoderUnit(wiring.Component):
    """Decoder unit ``index`` of ``tile`` (module docstring).

    Ports: ``bank`` (stream of words in), one :func:`lane_write_signature` per lane it
    feeds (``lanes``), the layer's runtime figures (``items``: decoder items per row of a
    split format; ``index_words``: words of a split record's index part; ``col_valid``:
    a 1 for every column of the layer), and for ``lbi`` the two band buffers
    (``iz_bands``) and ``release`` / ``release_band`` (a row of that band buffer is
    done with it).
    """

    def __init__(self, tile: TileSpec, index: int) -> None:
        self.tile, self.index = tile, index
        members = {
            "bank": In(stream.Signature(word_layout(tile))),
            "lanes": Out(lane_write_signature(tile)).array(tile.lanes_per_decoder),
            "items": In(range(tile.n_cols + 1)),
            "index_words": In(range(tile.bank_words + 1)),
            "col_valid": In(tile.n_cols),
        }
        if tile.format == "lbi":
            spec = tile.format_spec
            members["iz_bands"] = In(data.ArrayLayout(band_bits(tile), 2))
            members["release"] = Out(1)
            members["release_band"] = Out(1)
            self.tile_bits = spec.rank * spec.tile_cols
        super().__init__(members)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        t = self.tile
        fmt = t.format
        wb = t.word_bits
        shift = t.stream_bytes.bit_length() - 1
        split = fmt in SPLIT_FORMATS
        lanes = t.lanes_per_decoder

        # ---- bank
        m.submodules.bank = bank = memory.Memory(shape=wb, depth=t.bank_words, init=[])
        bwr = bank.write_port()
        brd = bank.read_port()
        # each word's ``last`` flag, read in the cycle the word's address is (the reader
        # decides then whether the record goes on)
        m.submodules.lasts = lasts = memory.Memory(shape=1, depth=t.bank_words, init=[])
        lwr = lasts.write_port()
        lrd = lasts.read_port(domain="comb")
        wptr = Signal(range(t.bank_words))
        rptr = Signal(range(t.bank_words))
        level = Signal(range(t.bank_words + 1))
        complete = Signal(range(t.bank_words + 1))
        write = self.bank.valid & self.bank.ready
        read = Signal()
        start = Signal()
        m.d.comb += [
            self.bank.ready.eq(level < t.bank_words),
            bwr.addr.eq(wptr),
            bwr.data.eq(self.bank.p.data),
            bwr.en.eq(write),
            brd.addr.eq(rptr),
            lwr.addr.eq(wptr),
            lwr.data.eq(self.bank.p.last),
            lwr.en.eq(write),
            lrd.addr.eq(rptr),
        ]
        with m.If(write):
            m.d.sync += wptr.eq(_next(wptr, t.bank_words))
        with m.If(read):
            m.d.sync += rptr.eq(_next(rptr, t.bank_words))
        m.d.sync += [
            level.eq(level + write - read),
            complete.eq(complete + (write & self.bank.p.last) - start),
        ]

        # ---- reader and the word arriving from the bank (D stage)
        rd_active = Signal()
        rd_j = Signal(range(t.bank_words + 1))
        word_last = lrd.data
        d_valid = Signal()
        d_last = Signal()
        d_j = Signal.like(rd_j)
        j_now = Mux(start, 0, rd_j)
        m.d.sync += [d_valid.eq(read), d_last.eq(word_last), d_j.eq(j_now)]
        with m.If(read):
            m.d.sync += [rd_j.eq(j_now + 1), rd_active.eq(~word_last)]
        d_index = d_valid & ((d_j < self.index_words) if split else 1)
        d_value = d_valid & ~d_index
        first_word = d_valid & (d_j == 0)

        # ---- gearbox: index bits, the arriving word appended
        size = gearbox_bits(t)
        gb = Signal(size)
        gcnt = Signal(range(size + 1))
        win = Signal(size)
        wcnt = Signal(range(size + 1))
        m.d.comb += [
            win.eq(gb | Mux(d_index, brd.data << gcnt, 0)),
            wcnt.eq(gcnt + Mux(d_index, wb, 0)),
        ]

        # ---- feed: items of the row whose words are in the gearbox
        f_left = Signal(range(t.n_cols + 2))
        total = Signal.like(f_left)
        left = Mux(first_word, total, f_left)
        feeding = Signal()
        take_bits = Signal(range(size + 1))
        m.d.comb += feeding.eq(left != 0)
        feed_last = feeding & (left == 1)
        m.d.sync += f_left.eq(left - feeding)
        m.d.sync += [
            gb.eq(Mux(feed_last, 0, win >> take_bits)),
            gcnt.eq(Mux(feed_last, 0, wcnt - take_bits)),
        ]
        room = 1 if split else (wcnt - take_bits <= size - wb)
        m.d.comb += read.eq(start | (rd_active & room))

        # ---- the format's decoder: inputs from the window, outputs (slice, bit, value)
        count = Signal(range(t.n_cols + 1))  # outputs of the head row so far
        out = _DecoderOutputs(t, count)
        if fmt == "lbi":
            self._band_counter(m, start)
        if fmt == "relative":
            self._relative(m, win, first_word, feeding, total, take_bits, out)
        elif fmt == "csr":
            self._csr(m, win, first_word, feeding, total, take_bits, out)
        elif fmt == "viterbi":
            self._viterbi(m, win, first_word, feeding, total, take_bits, out)
        else:
            self._lbi(m, win, first_word, feeding, total, take_bits, out, start)

        # ---- start: record complete, lane slot free, previous row done with its input
        lane_sel = Signal(range(lanes))
        spaces = Array(self.lanes[j].space for j in range(lanes))
        m.d.comb += start.eq(
            (complete != 0) & spaces[lane_sel] & ~rd_active & (~feeding | feed_last)
        )
        with m.If(start):
            m.d.sync += lane_sel.eq(_next(lane_sel, lanes))

        # ---- rows begun and not committed (at most two): their lanes (and LBI bands)
        queue_lane = [Signal(range(lanes), name=f"q{i}_lane") for i in range(2)]
        queue_band = [Signal(name=f"q{i}_band") for i in range(2)]
        queued = Signal(range(3))
        commit = Signal()
        head_lane, head_band = queue_lane[0], queue_band[0]
        row_band = self._band_of_next if fmt == "lbi" else Const(0, 1)
        m.d.sync += queued.eq(queued + start - commit)
        with m.If(commit):
            m.d.sync += [queue_lane[0].eq(queue_lane[1]), queue_band[0].eq(queue_band[1])]
        with m.If(start):
            slot = Mux(queued - commit == 0, 0, 1)
            for i in range(2):
                with m.If(slot == i):
                    m.d.sync += [queue_lane[i].eq(lane_sel), queue_band[i].eq(row_band)]

        # ---- commit: one cycle after the last output and after the last value word
        f_done = Signal()
        r_done = Signal()
        with m.If(commit):
            m.d.sync += [f_done.eq(0), r_done.eq(0)]
        with m.If(feed_last):
            m.d.sync += f_done.eq(1)
        with m.If(d_valid & d_last):
            m.d.sync += r_done.eq(1)
        m.d.comb += commit.eq(f_done & r_done)

        # ---- the mask under construction and the writes into the head row's lane
        builder = Signal(t.n_cols)
        merged = builder | out.mask
        m.d.sync += builder.eq(Mux(commit, 0, merged))
        with m.If(commit):
            m.d.sync += count.eq(0)
        with m.Elif(out.valid):
            m.d.sync += count.eq(count + 1)
        vwr_en = Signal()
        vwr_addr = Signal(range(value_words(t)))
        vwr_data = Signal(wb)
        vwr_be = Signal(t.stream_bytes)
        if split:
            m.d.comb += [
                vwr_en.eq(d_value),
                # the value word's index: d_j >= index_words here; unsigned, so the
                # address is zero- (not sign-) extended
                vwr_addr.eq((d_j - self.index_words).as_unsigned()),
                vwr_data.eq(brd.data),
                vwr_be.eq(-1),
            ]
        else:
            m.d.comb += [
                vwr_en.eq(out.value_valid),
                vwr_addr.eq(count >> shift),
                vwr_data.eq(Const(0, wb) | out.value.replicate(t.stream_bytes)),
                vwr_be.eq(Const(1, t.stream_bytes) << (count[:shift] if shift else 0)),
            ]
        for j in range(lanes):
            port = self.lanes[j]
            here = head_lane == j
            m.d.comb += [
                port.begin.eq(start & (lane_sel == j)),
                port.commit.eq(commit & here),
                port.commit_mask.eq(merged & self.col_valid),
                port.vwr_en.eq(vwr_en & here),
                port.vwr_addr.eq(vwr_addr),
                port.vwr_data.eq(vwr_data),
                port.vwr_be.eq(vwr_be),
            ]
        if fmt == "lbi":
            m.d.comb += [self.release.eq(commit), self.release_band.eq(head_band)]
        return m

    # ------------------------------------------------------------ per-format decoders

    def _relative(self, m, win, first_word, feeding, total, take_bits, out) -> None:
        t = self.tile
        r, cb = t.format_spec.r, t.count_bits
        m.submodules.decoder = dec = RelativeDecoder(
            t.format_spec, n_cols=t.n_cols, value_bits=VALUE_BITS, row_bits=1
        )
        i = getattr(dec, "in")
        count = win[:cb]
        m.d.comb += total.eq(Mux(first_word, Mux(count == 0, 1, count), 0))
        entry = Signal(r + VALUE_BITS)
        m.d.comb += entry.eq(Mux(first_word, win >> cb, win))
        has_entry = ~first_word | (count != 0)
        m.d.comb += [
            i.valid.eq(feeding & has_entry),
            i.p.gap.eq(entry[:r]),
            i.p.value.eq(entry[r : r + VALUE_BITS]),
            i.p.first.eq(first_word),
            take_bits.eq(
                Mux(feeding, Mux(first_word, cb, 0) + Mux(has_entry, r + VALUE_BITS, 0), 0)
            ),
            dec.out.ready.eq(1),
        ]
        out.operand(m, dec.out.valid, dec.out.p.col, dec.out.p.value)

    def _csr(self, m, win, first_word, feeding, total, take_bits, out) -> None:
        t = self.tile
        spec = t.format_spec
        m.submodules.decoder = dec = CsrDecoder(spec.col_bits, spec.ptr_bits, VALUE_BITS)
        m.d.comb += [
            total.eq(Mux(first_word, win[: spec.ptr_bits] + 1, 0)),
            dec.ptr.valid.eq(feeding & first_word),
            dec.ptr.p.count.eq(win[: spec.ptr_bits]),
            dec.entry.valid.eq(feeding & ~first_word),
            dec.entry.p.col.eq(win[: spec.col_bits]),
            dec.entry.p.value.eq(win[spec.col_bits : spec.col_bits + VALUE_BITS]),
            take_bits.eq(
                Mux(feeding, Mux(first_word, spec.ptr_bits, spec.col_bits + VALUE_BITS), 0)
            ),
            dec.out.ready.eq(1),
        ]
        out.operand(m, dec.out.valid & ~dec.out.p.empty, dec.out.p.col, dec.out.p.value)

    def _viterbi(self, m, win, first_word, feeding, total, take_bits, out) -> None:
        t = self.tile
        spec = t.format_spec
        m.submodules.decoder = dec = ViterbiDecompressor(spec)
        i = getattr(dec, "in")
        m.d.comb += [
            total.eq(Mux(first_word, self.items, 0)),
            i.valid.eq(feeding),
            i.p.u.eq(win[: spec.n_in]),
            i.p.first.eq(first_word),
            take_bits.eq(Mux(feeding, spec.n_in, 0)),
            dec.out.ready.eq(1),
        ]
        out.slices(m, dec.out.valid, dec.out.p.mask)

    def _lbi(self, m, win, first_word, feeding, total, take_bits, out, start) -> None:
        t = self.tile
        spec = t.format_spec
        m.submodules.decoder = dec = BinaryIndexDecoder(spec)
        # Iz tiles of the row being fed: the first in the start cycle, the next as each
        # row code is taken
        iz_band = Signal()
        iz_next = Signal(range(t.n_cols + 1))
        iz_left = Signal(range(t.n_cols + 1))
        band_now = Mux(start, self._band_of_next, iz_band)
        tile_now = Mux(start, 0, iz_next)
        offered = start | (iz_left != 0)
        taken = dec.iz.valid & dec.iz.ready
        band_bits_now = Signal(band_bits(t))
        tiles = Signal(self.tile_bits)
        m.d.comb += [
            band_bits_now.eq(Mux(band_now, self.iz_bands[1], self.iz_bands[0])),
            tiles.eq(word(band_bits_now, tile_now, self.tile_bits)),
        ]
        m.d.comb += [
            dec.iz.valid.eq(offered),
            dec.iz.p.codes.eq(tiles),
            total.eq(Mux(first_word, self.items, 0)),
            dec.ip.valid.eq(feeding),
            dec.ip.p.code.eq(win[: spec.rank]),
            dec.ip.p.last.eq(1),
            take_bits.eq(Mux(feeding, spec.rank, 0)),
            dec.out.ready.eq(1),
        ]
        with m.If(start):
            m.d.sync += [iz_band.eq(self._band_of_next), iz_next.eq(Mux(taken, 1, 0))]
            m.d.sync += iz_left.eq(self.items - taken)
        with m.Elif(taken):
            m.d.sync += [iz_next.eq(iz_next + 1), iz_left.eq(iz_left - 1)]
        out.slices(m, dec.out.valid, dec.out.p.mask)

    def _band_counter(self, m: Module, start: Signal) -> None:
        """``self._band_of_next``: the band buffer (parity of r // tile_rows) of the next
        row r this unit starts."""
        t = self.tile
        a, d = t.format_spec.tile_rows, t.decoders
        in_band = Signal(range(a), init=self.index % a)
        band = Signal(init=(self.index // a) % 2)
        self._band_of_next = band
        step = in_band + d
        wraps = Signal(range((a - 1 + d) // a + 1))
        m.d.comb += wraps.eq(0)
        for q in range(1, (a - 1 + d) // a + 1):
            with m.If(step >= q * a):
                m.d.comb += wraps.eq(q)
        with m.If(start):
            m.d.sync += [in_band.eq(step - wraps * a), band.eq(band ^ wraps[0])]


def band_bits(tile: TileSpec) -> int:
    """Bits of an LBI band buffer: whole Iz tiles covering ``n_cols`` columns."""
    spec = tile.format_spec
    return -(-tile.n_cols // spec.tile_cols) * spec.rank * spec.tile_cols


def _next(index: Signal, modulus: int):
    """``index`` + 1 modulo ``modulus``."""
    return Mux(index == modulus - 1, 0, index + 1)


class _DecoderOutputs:
    """What a decoder produces in a cycle: ``mask`` (bits to set in the row's mask),
    ``valid`` (an output this cycle) and, for operand decoders, ``value`` and
    ``value_valid``."""

    def __init__(self, tile: TileSpec, count: Signal) -> None:
        self.tile, self.count = tile, count
        self.mask = Signal(tile.n_cols)
        self.valid = Signal()
        self.value = Signal(VALUE_BITS)
        self.value_valid = Signal()

    def operand(self, m: Module, valid, col, value) -> None:
        """One (column, value) per output."""
        m.d.comb += [
            self.valid.eq(valid),
            self.value_valid.eq(valid),
            self.value.eq(value),
            self.mask.eq(Mux(valid, Const(1, self.tile.n_cols) << col, 0)),
        ]

    def slices(self, m: Module, valid, bits) -> None:
        """One slice of ``len(bits)`` mask bits per output, the row's k-th output (k =
        ``count``) at column k·len."""
        width = len(bits)
        placed = Signal(self.tile.n_cols + width)
        # the offset k·len of a slice in the row is below n_cols: its low bits suffice
        # (a shift by the full product would be 2^bits wide)
        offset = (self.count * width)[: max(1, (self.tile.n_cols - 1).bit_length())]
        m.d.comb += [
            self.valid.eq(valid),
            placed.eq(bits << offset),
            self.mask.eq(Mux(valid, placed[: self.tile.n_cols], 0)),
        ]
