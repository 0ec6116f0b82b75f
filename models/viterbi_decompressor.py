"""The Viterbi decompressor (VD): the golden model of the mask expander of Viterbi-based
pruning (Lee et al., ICLR 2018).

The VD of a :class:`~codesign.models.specs.ViterbiSpec` is a shift register of K = ``n_ff``
flip-flops fed with ``n_in`` input bits per cycle, a fixed XOR network and ``n_out``
comparators. The paper gives the structure (flip-flops plus XOR gates, p input bits
expanding into q mask bits); the exact wiring below — taps drawn from a seed, one
comparator per group of ``n_c`` raw bits — is this project's reconstruction
(REFERENCES §1 [ours]). The hardware copies these bit orders exactly:

* **Inputs.** Cycle t reads u_t, ``n_in`` bits; as an integer U_t = Σ_i u_t[i]·2^i.
* **State.** s_t, K bits, flip-flop k is bit k of the integer S_t; S_0 = 0 at the
  start of every segment.
* **Tap vector.** x_t = U_t + 2^n_in·S_t: bits 0..n_in−1 are the inputs (bit i = u_t[i]),
  bits n_in..n_in+K−1 the flip-flops (bit n_in + k = s_t[k]). Column c of G multiplies
  bit c of x_t.
* **Shift.** S_{t+1} = x_t mod 2^K: flip-flop k < n_in loads u_t[k], flip-flop k ≥ n_in
  loads flip-flop k − n_in; the top n_in bits of x_t fall off. Equivalently
  x_t = Σ_{d ≥ 0} U_{t−d}·2^(d·n_in) mod 2^(n_in+K), with U_τ = 0 before the segment start.
* **Raw outputs.** r_t = G·x_t over GF(2); G has n_out·n_c rows (:func:`taps`).
* **Comparators.** Mask bit j of cycle t reads raw rows j·n_c … j·n_c + n_c − 1, row
  j·n_c + b being bit b of the group value (row j·n_c is the LSB):
  v_j = Σ_b r_t[j·n_c + b]·2^b; keep_j = (v_j < threshold).
* **Placement.** The matrix (m, n) is flattened row-major; VD cycle t of the whole
  matrix emits the mask of positions t·n_out … t·n_out + n_out − 1 (bit j at
  t·n_out + j). Cycles are cut into segments of ``segment`` cycles (the last one
  shorter), each starting from S = 0; mask bits past the matrix end are dropped.
"""

from __future__ import annotations

import functools

import numba
import numpy as np

from codesign.models.specs import SpecError, ViterbiSpec


def tap_width(spec: ViterbiSpec) -> int:
    """Bits of the tap vector x_t: n_in + n_ff."""
    return spec.n_in + spec.n_ff


@functools.lru_cache(maxsize=64)
def _tap_words(n_in: int, n_ff: int, n_out: int, n_c: int, seed: int) -> tuple[int, ...]:
    width = n_in + n_ff
    order = np.random.default_rng(seed).permutation(np.arange(1, 2**width)).tolist()
    used: set[int] = set()
    rows: list[int] = []
    for group in range(n_out):
        basis: dict[int, int] = {}
        for word in order:
            if len(basis) == n_c:
                break
            if word not in used and _reduce(word, basis):
                _insert(word, basis)
                used.add(word)
                rows.append(word)
        if len(basis) < n_c:
            raise SpecError(
                f"ViterbiSpec: no {n_c} independent unused taps left for comparator group "
                f"{group} with n_in + n_ff = {width} bits; raise n_ff or lower n_out·n_c"
            )
    return tuple(rows)


def _reduce(word: int, basis: dict[int, int]) -> int:
    """``word`` reduced by a GF(2) basis keyed by leading bit (0: in the span)."""
    while word:
        top = word.bit_length() - 1
        if top not in basis:
            return word
        word ^= basis[top]
    return 0


def _insert(word: int, basis: dict[int, int]) -> None:
    word = _reduce(word, basis)
    basis[word.bit_length() - 1] = word


def taps(spec: ViterbiSpec) -> np.ndarray:
    """The XOR network G of the VD: uint8 0/1 of shape (n_out·n_c, n_in + n_ff).

    Row j·n_c + b is bit b of comparator group j; column c multiplies bit c of the tap
    vector x_t (inputs first, then flip-flops; see the module docstring). Drawn from
    ``spec.seed`` only: a ``numpy.random.default_rng(seed)`` permutation of the non-zero
    row values 1 … 2^(n_in+n_ff) − 1 is scanned in order, and each group takes the next
    unused values that are linearly independent of the group's rows so far. Hence no
    zero rows, no duplicate rows, and each group's value is uniform on 0 … 2^n_c − 1
    when x_t is uniform, which makes P(keep) = threshold / 2^n_c.
    """
    words = _tap_words(spec.n_in, spec.n_ff, spec.n_out, spec.n_c, spec.seed)
    cols = np.arange(tap_width(spec), dtype=np.int64)
    return ((np.array(words, dtype=np.int64)[:, None] >> cols) & 1).astype(np.uint8)


def _require_threshold(spec: ViterbiSpec) -> int:
    if spec.threshold is None:
        raise SpecError(
            f"ViterbiSpec.threshold is unset; the comparators need a threshold in "
            f"0..2^n_c={2**spec.n_c} (or give a sparsity to calibrate it)"
        )
    return spec.threshold


@functools.lru_cache(maxsize=64)
def _keep_table(spec: ViterbiSpec) -> np.ndarray:
    threshold = _require_threshold(spec)
    words = np.array(_tap_words(spec.n_in, spec.n_ff, spec.n_out, spec.n_c, spec.seed))
    x = np.arange(2 ** tap_width(spec), dtype=np.int64)
    raw = np.bitwise_count(x[:, None] & words[None, :]) & 1
    groups = raw.reshape(x.size, spec.n_out, spec.n_c).astype(np.int64)
    values = groups @ (1 << np.arange(spec.n_c, dtype=np.int64))
    table = values < threshold
    table.setflags(write=False)
    return table


def keep_table(spec: ViterbiSpec) -> np.ndarray:
    """Mask bits of one cycle for every tap vector: bool of shape (2^(n_in+n_ff), n_out);
    row x = U + 2^n_in·S holds keep_0 … keep_{n_out−1} for input U in state S. Needs
    ``spec.threshold``. Read-only (cached per spec)."""
    return _keep_table(spec)


def matrix_cycles(spec: ViterbiSpec, size: int) -> int:
    """VD cycles that cover ``size`` weights: ⌈size / n_out⌉ (index bits = cycles·n_in)."""
    return -(-size // spec.n_out)


def segment_count(spec: ViterbiSpec, cycles: int) -> int:
    """Segments of ``cycles`` VD cycles: ⌈cycles / segment⌉ (the last may be shorter)."""
    return -(-cycles // spec.segment)


def pack_inputs(spec: ViterbiSpec, inputs: np.ndarray, name: str = "inputs") -> np.ndarray:
    """Per-cycle input integers U_t (int64, shape (cycles,)) of 0/1 ``inputs`` of shape
    (cycles, n_in); bit i of U_t is ``inputs[t, i]``."""
    arr = np.asarray(inputs)
    if arr.ndim != 2 or arr.shape[1] != spec.n_in:
        raise ValueError(f"{name} must have shape (cycles, n_in={spec.n_in}), got {arr.shape}")
    if arr.size and not np.isin(arr, (0, 1)).all():
        raise ValueError(f"{name} must hold only 0/1 bits")
    return arr.astype(np.int64) @ (1 << np.arange(spec.n_in, dtype=np.int64))


def unpack_inputs(spec: ViterbiSpec, words: np.ndarray) -> np.ndarray:
    """Inverse of :func:`pack_inputs`: uint8 0/1 of shape (cycles, n_in)."""
    shifts = np.arange(spec.n_in, dtype=np.int64)
    return ((np.asarray(words, dtype=np.int64)[:, None] >> shifts) & 1).astype(np.uint8)


@numba.njit(cache=True)
def _expand_segment(words, g, seg_len, n_in, tap_mask, table, out):
    """Mask bits of segment ``g`` (cycles g·seg_len … of ``words``) into ``out``, from
    S = 0; x_t = (x_{t−1}·2^n_in + U_t) mod 2^(n_in+n_ff) (= ``tap_mask`` + 1)."""
    n_out = table.shape[1]
    x = 0
    for t in range(g * seg_len, min((g + 1) * seg_len, words.size)):
        x = ((x << n_in) | words[t]) & tap_mask
        for j in range(n_out):
            out[t * n_out + j] = table[x, j]


@numba.njit(cache=True, parallel=True)
def _expand_segments(words, seg_len, n_in, tap_mask, table, out):
    """Mask bits of every cycle into ``out`` (cycles·n_out,) bool: ``words`` (cycles,)
    input integers in segments of ``seg_len`` cycles, each from S = 0 (segments in
    parallel); ``table``: keep_table."""
    for g in numba.prange((words.size + seg_len - 1) // seg_len):
        _expand_segment(words, g, seg_len, n_in, tap_mask, table, out)


def _expand_words(spec: ViterbiSpec, words: np.ndarray, seg_len: int) -> np.ndarray:
    """Mask bits (cycles·n_out,) of input integers ``words`` in segments of ``seg_len``
    (one segment runs on this thread: a parallel launch costs more than it)."""
    out = np.empty(words.size * spec.n_out, dtype=bool)
    tap_mask = 2 ** tap_width(spec) - 1
    seg_len = max(seg_len, 1)
    args = (seg_len, spec.n_in, tap_mask, keep_table(spec), out)
    if words.size <= seg_len:
        _expand_segment(words, 0, *args)
    else:
        _expand_segments(words, *args)
    return out


def expand(spec: ViterbiSpec, inputs: np.ndarray) -> np.ndarray:
    """Mask bits of one segment: ``inputs`` (cycles, n_in) 0/1 from the zero state ->
    bool (cycles, n_out), row t = keep_0 … keep_{n_out−1} of cycle t."""
    words = pack_inputs(spec, inputs)
    return _expand_words(spec, words, words.size).reshape(words.size, spec.n_out)


def expand_matrix(spec: ViterbiSpec, inputs: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The (m, n) bool mask of a whole matrix from its VD inputs (cycles, n_in), cycles =
    ⌈m·n / n_out⌉: segments of ``spec.segment`` cycles, each from the zero state, mask
    bits placed row-major and those past m·n dropped."""
    size = shape[0] * shape[1]
    cycles = matrix_cycles(spec, size)
    words = pack_inputs(spec, inputs)
    if words.size != cycles:
        raise ValueError(
            f"inputs has {words.size} cycles; a {shape[0]}x{shape[1]} matrix needs "
            f"⌈{size}/n_out⌉ = {cycles}"
        )
    return _expand_words(spec, words, spec.segment)[:size].reshape(shape)
