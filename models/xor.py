"""XOR-gate fixed-to-fixed encoding of weight bit-planes, format ``xor`` (REFERENCES §2).

A reconstruction of Kwon et al. (CVPR 2020) and Park et al. (ICLR 2022); the choices
marked [ours] in REFERENCES §2 are built as written there.

Storage of a layer W (m, n) under an :class:`~codesign.models.specs.XorSpec`:

1. **Quantization** (:mod:`codesign.models.bitplanes`): W becomes ``value_bits`` bit-planes
   (``uniform`` two's complement or ``binary`` coding) plus float32 scales.
2. **Mask**: the layer's mask is stored in ``spec.mask_format`` with that format's
   spec (:func:`mask_spec`); only its index streams are kept, renamed
   ``mask_<name>``. ``bitmap``, ``csr`` and ``relative`` store the non-zero pattern of
   the quantized layer. ``viterbi`` and ``lbi`` masks come from their own pruning
   search: :meth:`XorFormat.compress` with a sparsity prunes with the mask format's
   ``compress`` and encodes the pruned layer's values on that mask; ``encode`` of a
   given matrix searches a mask for its non-zero pattern and raises
   :class:`~codesign.models.format.FormatError` when the mask misses a non-zero. The mask's
   *slots* — the positions it gives a value to (the non-zeros, plus relative's padding
   zeros and the zero weights a searched mask keeps) — are the **care** positions;
   every other position is don't-care.
3. **Planes**: each plane is read over all m·n positions in row-major order and cut
   into B = ⌈m·n / n_out⌉ blocks of n_out bits (the last block is padded with
   don't-cares). Block t decodes as y_t = M·[x_t; x_{t−1}; …; x_{t−n_s+1}] over GF(2)
   from n_in-bit inputs (layout of M and of the inputs: :func:`xor_matrix` and
   :mod:`codesign.models.xor_encode`); the register is cleared every ``segment`` blocks. The
   encoder (:func:`encode_planes`) picks the inputs so as few care bits as possible
   are wrong, and every wrong care bit becomes a **patch**.
4. **Patches** [ours]: one list per plane, each patch naming its block
   (⌈log2 B⌉ bits) and bit (⌈log2 n_out⌉ bits), sorted by block then bit, plus a
   32-bit patch count per plane. Decoding flips the patched bits, so the scheme is
   lossless: every care bit is reproduced exactly.

Streams: ``mask_*`` (index), ``inputs`` (planes·B elements, n_in bits each, plane by
plane), ``patch_block``, ``patch_bit``, ``patch_count`` (planes elements, 32 bits),
``scales`` (float32, 32 bits each) — all value streams. Index bits = the mask
format's index bits; value bits = input + patch + scale bits.

Encoding efficiency E = care bits / (input bits + patch bits) with care bits = care
positions × planes (REFERENCES §2): the achieved n_out/n_in over the entropy bound
1/(1 − S) (:func:`codesign.models.bounds.entropy_bound`).
"""

from __future__ import annotations

import dataclasses

import numba
import numpy as np

from codesign.limits import Need
from codesign.models.bitmap import BitmapFormat
from codesign.models.bitplanes import SCALE_BITS, BitPlanes, planes_to_values, to_bitplanes
from codesign.models.csr import CsrFormat
from codesign.models.errors import PrecisionError
from codesign.models.format import Decoded, Encoded, Format, FormatError, Stream, ceil_log2
from codesign.models.gf2 import pack, unpack
from codesign.models.lbi import LbiFormat
from codesign.models.relative import RelativeFormat
from codesign.models.specs import LbiSpec, Spec, ViterbiSpec, XorSpec
from codesign.models.viterbi import ViterbiFormat
from codesign.models.workloads import (
    check_weights,
    lost_weights_error,
    quantize_symmetric,
    too_many_lost,
)
from codesign.models.xor_encode import decode_blocks, encode_blocks, traceback_bytes

__all__ = [
    "MASK_FORMATS",
    "MAX_TRACEBACK_BYTES",
    "SEARCHED_MASKS",
    "MAX_TRANSITIONS_LOG2",
    "PATCH_COUNT_BITS",
    "XorFormat",
    "XorPlanes",
    "decode_planes",
    "exact_search",
    "encode_planes",
    "mask_encoding",
    "mask_spec",
    "xor_matrix",
    "xor_reference",
]

PATCH_COUNT_BITS = 32
"""Width of the per-plane patch count."""

MAX_TRANSITIONS_LOG2 = 24
"""The exact n_s ≥ 2 search visits 2^(n_s·n_in) transitions per block; at most 2^24."""

MAX_TRACEBACK_BYTES = 1 << 27
"""Largest traceback of one segment of the exact n_s ≥ 2 search (128 MiB)."""


def xor_matrix(spec: XorSpec) -> np.ndarray:
    """The XOR matrix M of ``spec``: ``uint8`` 0/1, shape (n_out, n_s·n_in).

    Entries are independent fair bits from ``numpy.random.default_rng(spec.seed)``
    (``integers(0, 2, (n_out, n_s·n_in))``). Row i drives output bit i of a block
    (position t·n_out + i of the plane). Column j·n_in + k multiplies bit k of
    x_{t−j}: columns 0 … n_in−1 take the current input x_t, the next n_in columns
    x_{t−1}, and so on up to x_{t−n_s+1}. Output i = XOR of M[i, c]·v[c] over c, with
    v = [x_t; x_{t−1}; …; x_{t−n_s+1}] and v[j·n_in + k] = bit k of x_{t−j}.
    """
    rng = np.random.default_rng(spec.seed)
    return rng.integers(0, 2, size=(spec.n_out, spec.n_s * spec.n_in), dtype=np.uint8)


@dataclasses.dataclass(frozen=True)
class XorPlanes:
    """Encoded bit-planes.

    ``inputs``: ``uint64`` (planes, B), the n_in-bit input of every block.
    ``patch_plane``, ``patch_block``, ``patch_bit``: ``int64`` (patches,), the wrong
    care bits, sorted by plane, block, bit (position in the plane =
    block·n_out + bit).
    """

    inputs: np.ndarray
    patch_plane: np.ndarray
    patch_block: np.ndarray
    patch_bit: np.ndarray

    def patch_counts(self) -> np.ndarray:
        """Patches per plane, ``int64`` (planes,)."""
        return np.bincount(self.patch_plane, minlength=self.inputs.shape[0]).astype(np.int64)

    def no_patch_blocks(self) -> np.ndarray:
        """Whether each block needs no patch: bool (planes, B)."""
        clean = np.ones(self.inputs.shape, dtype=bool)
        clean[self.patch_plane, self.patch_block] = False
        return clean


def _blocks(length: int, n_out: int) -> int:
    return -(-length // n_out)


def exact_search(spec: XorSpec) -> bool:
    """Whether the n_s ≥ 2 encoder of ``spec`` runs the exact trellis search: its
    2^((n_s−1)·n_in) states are at most ``spec.dp_states`` (else GF(2) elimination;
    :mod:`codesign.models.xor_encode`)."""
    return spec.n_s >= 2 and (spec.n_s - 1) * spec.n_in <= spec.dp_states.bit_length() - 1


def _check_search(spec: XorSpec, blocks: int) -> None:
    """Reject exact n_s ≥ 2 searches too large to run (transitions or traceback memory)."""
    if not exact_search(spec):
        return
    log2_transitions = spec.n_s * spec.n_in
    if log2_transitions > MAX_TRANSITIONS_LOG2:
        raise FormatError(
            f"XorSpec n_s={spec.n_s}, n_in={spec.n_in}: the exact search visits "
            f"2^{log2_transitions} transitions per block; n_s·n_in must be <= "
            f"{MAX_TRANSITIONS_LOG2}, or dp_states < 2^{(spec.n_s - 1) * spec.n_in} "
            f"for the elimination search"
        )
    seg = min(spec.segment, blocks)
    need = traceback_bytes(spec.n_in, spec.n_s, seg)
    if need > MAX_TRACEBACK_BYTES:
        fit = max(1, MAX_TRACEBACK_BYTES // traceback_bytes(spec.n_in, spec.n_s, 1))
        raise FormatError(
            f"XorSpec.segment={spec.segment}: the exact search's traceback needs {need} bytes "
            f"per segment (limit {MAX_TRACEBACK_BYTES}); use segment <= {fit}, or "
            f"dp_states < 2^{(spec.n_s - 1) * spec.n_in} for the elimination search"
        )


def _pack_blocks(bits: np.ndarray, n_out: int) -> np.ndarray:
    """Rows of 0/1 ``bits`` (rows, L) cut into n_out-bit blocks, zero-padded and
    packed: ``uint64`` (rows, B, W)."""
    rows, length = bits.shape
    blocks = _blocks(length, n_out)
    padded = np.zeros((rows, blocks * n_out), dtype=np.uint8)
    padded[:, :length] = bits
    return pack(padded.reshape(rows * blocks, n_out)).reshape(rows, blocks, -1)


def encode_planes(bits: np.ndarray, care: np.ndarray, spec: XorSpec) -> XorPlanes:
    """Encode bit-planes with the XOR decoder of ``spec``.

    Args:
        bits: 0/1 array (planes, L), each row a plane in scan order.
        care: bool (L,), True at care positions (shared by the planes).
        spec: the decoder (n_in, n_out, n_s, seed, segment).

    Returns:
        The inputs and the patches; :func:`decode_planes` of the inputs with the
        patches applied equals ``bits`` at every care position.
    """
    bits = np.asarray(bits)
    care = np.asarray(care, dtype=bool)
    if bits.ndim != 2 or care.shape != (bits.shape[1],):
        raise ValueError(
            f"bits must be (planes, L) and care (L,); got shapes {bits.shape} and {care.shape}"
        )
    blocks = _blocks(bits.shape[1], spec.n_out)
    _check_search(spec, blocks)
    data = _pack_blocks(bits, spec.n_out)
    mask = _pack_blocks(care[np.newaxis], spec.n_out)[0]
    inputs, residual = encode_blocks(
        data, mask, xor_matrix(spec), spec.n_in, spec.n_s, spec.segment, exact=exact_search(spec)
    )
    wrong = unpack(residual.reshape(-1, residual.shape[2]), spec.n_out)
    plane, block, bit = np.nonzero(wrong.reshape(bits.shape[0], blocks, spec.n_out))
    return XorPlanes(inputs, plane.astype(np.int64), block.astype(np.int64), bit.astype(np.int64))


def decode_planes(inputs: np.ndarray, spec: XorSpec, length: int) -> np.ndarray:
    """Decoder output of ``inputs`` (planes, B): ``uint8`` 0/1 (planes, ``length``),
    patches not applied."""
    words = decode_blocks(inputs, xor_matrix(spec), spec.n_in, spec.n_s, spec.segment)
    bits = unpack(words.reshape(-1, words.shape[2]), spec.n_out)
    return bits.reshape(inputs.shape[0], -1)[:, :length].copy()


def xor_reference(weights: np.ndarray, spec: XorSpec) -> np.ndarray:
    """The matrix an encoding of ``weights`` (m, n) stands for: the quantized values
    (float32 dequantized for floating input, the integers for integer input) at the
    non-zero weights, zero elsewhere."""
    return _quantize(weights, spec)[1]


def _quantize(weights: np.ndarray, spec: XorSpec) -> tuple[BitPlanes, np.ndarray]:
    """The bit-planes of ``weights`` and the matrix they stand for; a quantization that
    turns most of the non-zero (kept) weights into 0 is refused (:class:`PrecisionError`,
    :func:`~codesign.models.workloads.too_many_lost`)."""
    planes = to_bitplanes(weights, spec.value_bits, spec.quant)
    values = planes.values()
    kept = weights != 0
    lost = int(np.count_nonzero(kept & (values == 0)))
    if too_many_lost(lost, int(kept.sum())):
        if spec.quant == "uniform":
            scale = float(planes.scales[0])
            what = f"xor's quantization to XorSpec.value_bits={spec.value_bits}"
            kept_n, bits = int(kept.sum()), spec.value_bits

            def lost_at(b: int) -> int:
                return int(np.count_nonzero(kept & (quantize_symmetric(weights, b)[0] == 0)))

            raise lost_weights_error(
                what, "value_bits=", lost, kept_n, weights, scale, bits, lost_at
            )
        raise PrecisionError(
            f"xor's binary coding to XorSpec.value_bits={spec.value_bits} turns {lost:,} of "
            f"the {int(kept.sum()):,} kept weights into 0; raise value_bits or prune them"
        )
    return planes, np.where(kept, values, 0).astype(planes.dtype)


SEARCHED_MASKS = ("viterbi", "lbi")
"""Mask formats whose mask comes from their own pruning search, not from a given mask."""


#: The formats a mask may be stored in (``XorSpec.mask_format``), by name.
MASK_FORMATS: dict[str, Format] = {
    cls.name: cls() for cls in (BitmapFormat, CsrFormat, RelativeFormat, ViterbiFormat, LbiFormat)
}


def _mask_format(spec: XorSpec) -> Format:
    return MASK_FORMATS[spec.mask_format]


def mask_spec(spec: XorSpec, shape: tuple[int, int]) -> Spec:
    """The spec of the mask format of ``spec`` for an (m, n) matrix: its default, with
    ``viterbi``'s threshold = ``spec.mask_threshold`` and ``lbi``'s tiles clipped to the
    matrix (rank clipped to the tiles)."""
    if spec.mask_format == "viterbi":
        return ViterbiSpec(threshold=spec.mask_threshold)
    if spec.mask_format == "lbi":
        return LbiSpec().fitted(shape)
    return _mask_format(spec).spec_type()


def _mask_bundle(spec: XorSpec, streams: dict[str, Stream], shape: tuple[int, int]) -> Encoded:
    """The mask format's encoding of ``shape`` from its index ``streams`` (names without
    the ``mask_`` prefix) plus a 1-bit unit value broadcast to every slot."""
    unit = np.ones(1, dtype=np.uint8)
    full = {**streams, "values": Stream(unit, 1, "value")}
    bits = sum(s.bits for s in streams.values())
    return Encoded(spec.mask_format, mask_spec(spec, shape), shape, unit.dtype, full, 0, 0, bits, 0)


def mask_encoding(enc: Encoded) -> Encoded:
    """The mask of an ``xor`` encoding as an encoding of its mask format (spec:
    :func:`mask_spec`): the ``mask_*`` index streams under their own names, a 1-bit unit
    value broadcast to every slot, ``index_bits`` = the mask's bits. Decoding it gives
    the care positions as its mask."""
    streams = {k[5:]: s for k, s in enc.streams.items() if k.startswith("mask_")}
    return _mask_bundle(enc.spec, streams, enc.shape)


def _searched_mask(nonzero: np.ndarray, spec: XorSpec) -> Encoded:
    """A ``viterbi`` / ``lbi`` encoding whose mask keeps every True of ``nonzero``
    (m, n), or :class:`FormatError`: such a mask comes from a pruning search."""
    advice = (
        f"XorSpec.mask_format={spec.mask_format!r} takes its mask from a pruning search; "
        f"use compress with a sparsity (or mask_format bitmap, csr or relative)"
    )
    if spec.mask_format == "viterbi" and spec.mask_threshold is None:
        raise FormatError(f"{advice}: mask_threshold is unset")
    mask_fmt = _mask_format(spec)
    mask_enc = mask_fmt.encode(nonzero.astype(np.uint8), mask_spec(spec, nonzero.shape))
    missed = int(np.count_nonzero(nonzero & ~mask_fmt.decode(mask_enc).mask))
    if missed:
        raise FormatError(
            f"{advice}: the mask found misses {missed} of the "
            f"{int(np.count_nonzero(nonzero))} non-zeros of this matrix"
        )
    return mask_enc


def _mask_of(reference: np.ndarray, spec: XorSpec) -> Encoded:
    """The mask format's encoding of the non-zeros of ``reference``."""
    nonzero = reference != 0
    if spec.mask_format in SEARCHED_MASKS:
        return _searched_mask(nonzero, spec)
    return _mask_format(spec).encode(nonzero.astype(np.uint8))


def _slots(spec: XorSpec, streams: dict[str, Stream], shape: tuple[int, int]) -> np.ndarray:
    """The positions the mask format stores a value at, bool (m, n): its index
    ``streams`` decoded with a unit value broadcast to every slot."""
    return _mask_format(spec).decode(_mask_bundle(spec, streams, shape)).mask


class XorFormat(Format):
    """Mask in another format + XOR-encoded value bit-planes with patches."""

    name = "xor"
    summary = "value bit-planes from XOR gates (inputs + patches), mask in another format"
    memory_per_weight = 120

    def memory_needs(self, shape: tuple[int, int], spec: XorSpec | None = None) -> list[Need]:
        """The layer's storage (bit-planes included), the search of a ``viterbi`` /
        ``lbi`` mask (that format's own needs beyond storage), and per thread of the
        exact n_s ≥ 2 search its trellis: the traceback of a segment (one input per
        state and block) and the path metrics and decoded words of every state."""
        spec = XorSpec() if spec is None else spec
        needs = super().memory_needs(shape, spec)
        if spec.mask_format in SEARCHED_MASKS:
            needs += _mask_format(spec).memory_needs(shape, mask_spec(spec, shape))[1:]
        if exact_search(spec):
            total = _blocks(shape[0] * shape[1], spec.n_out)
            blocks = min(spec.segment, total)
            states = 1 << ((spec.n_s - 1) * spec.n_in)
            words = -(-spec.n_out // 64)
            per_thread = traceback_bytes(spec.n_in, spec.n_s, blocks) + states * (8 * words + 16)
            segments = spec.value_bits * -(-total // blocks)
            threads = min(numba.get_num_threads(), segments)
            needs.append(
                Need(
                    threads * per_thread,
                    f"the exact search's trellis of 2^{(spec.n_s - 1) * spec.n_in} states "
                    f"× {blocks:,} blocks per segment, {threads} thread(s)",
                    "segment, n_s or n_in (or dp_states below the state count for the "
                    "elimination search)",
                )
            )
        return needs

    def value_precision(self, enc: Encoded) -> int:
        """``value_bits``: xor stores every value as that many bit-planes, quantizing
        floating input itself (its reference is then the quantized matrix)."""
        return enc.spec.value_bits

    def prune(self, weights: np.ndarray, sparsity: float, spec: Spec | None = None) -> np.ndarray:
        """W∘mask of the mask format's own pruning for ``viterbi`` / ``lbi`` masks (its
        spec: :func:`mask_spec`), global magnitude pruning otherwise."""
        spec = spec if isinstance(spec, XorSpec) else XorSpec()
        if spec.mask_format in SEARCHED_MASKS:
            return self._searched(weights, sparsity, spec)[0]
        return super().prune(weights, sparsity, spec)

    def compress(
        self, weights: np.ndarray, sparsity: float | None, spec: XorSpec | None = None
    ) -> tuple[np.ndarray, Encoded]:
        """Prune (when ``sparsity`` is given) and encode; the reference is
        :func:`xor_reference` of the pruned layer (the quantized values).

        ``viterbi`` / ``lbi`` masks with a sparsity: the mask format's ``compress`` of
        ``weights`` at ``sparsity`` (its spec: :func:`mask_spec`) gives the pruned layer
        and the mask, and the values of the pruned layer are encoded on that mask (the
        encoded spec carries the viterbi mask's calibrated ``mask_threshold``)."""
        spec = self.spec_type() if spec is None else spec
        check_weights(weights)
        if sparsity is not None and spec.mask_format in SEARCHED_MASKS:
            if not isinstance(spec, XorSpec):
                raise FormatError(f"format 'xor' needs a XorSpec, got {type(spec).__name__}")
            pruned, mask_enc = self._searched(weights, sparsity, spec)
            if spec.mask_format == "viterbi":
                spec = dataclasses.replace(spec, mask_threshold=mask_enc.spec.threshold)
            planes, reference = _quantize(pruned, spec)
            return reference, self._store(planes, reference, spec, mask_enc)
        pruned = weights if sparsity is None else self.prune(weights, sparsity, spec)
        enc = self.encode(pruned, spec)
        return xor_reference(pruned, spec), enc

    def _searched(
        self, weights: np.ndarray, sparsity: float, spec: XorSpec
    ) -> tuple[np.ndarray, Encoded]:
        return _mask_format(spec).compress(weights, sparsity, mask_spec(spec, weights.shape))

    def _encode(self, weights: np.ndarray, spec: XorSpec) -> Encoded:
        planes, reference = _quantize(weights, spec)
        return self._store(planes, reference, spec, _mask_of(reference, spec))

    def _store(
        self, planes: BitPlanes, reference: np.ndarray, spec: XorSpec, mask_enc: Encoded
    ) -> Encoded:
        """Encode the ``planes`` of ``reference`` (m, n) on the slots of ``mask_enc``."""
        mask_streams = {k: s for k, s in mask_enc.streams.items() if s.role == "index"}
        care = _slots(spec, mask_streams, reference.shape)
        if spec.quant == "binary" and np.any(care & (reference == 0)):
            raise FormatError(
                f"XorSpec.mask_format={spec.mask_format!r} keeps "
                f"{int(np.count_nonzero(care & (reference == 0)))} positions whose weight is "
                f"zero, which quant='binary' (values ±alpha sums) cannot decode to zero; use "
                f"quant='uniform'"
            )
        n_planes = spec.value_bits
        code = encode_planes(planes.planes.reshape(n_planes, -1), care.ravel(), spec)
        blocks = code.inputs.shape[1]
        n_patches = code.patch_block.size
        widths = (ceil_log2(blocks), ceil_log2(spec.n_out))
        streams = {f"mask_{k}": s for k, s in mask_streams.items()}
        streams.update(
            inputs=Stream(code.inputs.ravel(), spec.n_in, "value"),
            patch_block=Stream(code.patch_block, widths[0], "value"),
            patch_bit=Stream(code.patch_bit, widths[1], "value"),
            patch_count=Stream(code.patch_counts(), PATCH_COUNT_BITS, "value"),
            scales=Stream(planes.scales, SCALE_BITS, "value"),
        )
        input_bits = n_planes * blocks * spec.n_in
        patch_bits = n_patches * sum(widths) + n_planes * PATCH_COUNT_BITS
        scale_bits = planes.scales.size * SCALE_BITS
        care_positions = int(care.sum())
        care_bits = care_positions * n_planes
        extras = {
            **{f"mask_{k}": v for k, v in mask_enc.extras.items()},
            "efficiency": care_bits / (input_bits + patch_bits),
            "patch_bits": float(patch_bits),
            "mask_bits": float(mask_enc.index_bits),
            "input_bits": float(input_bits),
            "scale_bits": float(scale_bits),
            "care_bits": float(care_bits),
            "entropy_bound": reference.size / care_positions if care_positions else np.inf,
            "no_patch_block_fraction": float(code.no_patch_blocks().mean()),
        }
        enc = self._bundle(
            reference,
            spec,
            streams,
            index_bits=mask_enc.index_bits,
            value_bits=input_bits + patch_bits + scale_bits,
            extras=extras,
        )
        return dataclasses.replace(enc, stored_values=care_positions)

    def decode(self, enc: Encoded) -> Decoded:
        spec: XorSpec = enc.spec
        m, n = enc.shape
        care = _mask_format(spec).decode(mask_encoding(enc)).mask
        inputs = enc.streams["inputs"].data.reshape(spec.value_bits, -1)
        bits = decode_planes(inputs, spec, m * n)
        plane = np.repeat(
            np.arange(spec.value_bits), enc.streams["patch_count"].data.astype(np.int64)
        )
        position = enc.streams["patch_block"].data * spec.n_out + enc.streams["patch_bit"].data
        bits[plane, position] ^= 1
        values = planes_to_values(
            bits.reshape(spec.value_bits, m, n), enc.streams["scales"].data, spec.quant, enc.dtype
        )
        return Decoded(np.where(care, values, 0).astype(enc.dtype), care)
