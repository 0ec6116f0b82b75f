"""Tests of codesign.models.gf2 against a slow, independent uint8 reference implementation."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codesign.models import gf2

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
WIDTHS = [1, 2, 63, 64, 65, 127, 128, 129, 191, 200]
KINDS = ["random", "sparse", "zero", "ones", "duplicate_rows", "low_rank"]
DTYPES = [np.uint8, np.int8, np.int64, np.bool_]


def ref_rref(m: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Reduced row echelon form mod 2 and its pivot columns, one column at a time."""
    r = np.array(m, dtype=np.uint8) % 2
    pivots: list[int] = []
    row = 0
    for col in range(r.shape[1]):
        if row == r.shape[0]:
            break
        hits = np.flatnonzero(r[row:, col])
        if hits.size == 0:
            continue
        p = row + hits[0]
        r[[row, p]] = r[[p, row]]
        for other in range(r.shape[0]):
            if other != row and r[other, col]:
                r[other] ^= r[row]
        pivots.append(col)
        row += 1
    return r, pivots


def ref_rank(a: np.ndarray) -> int:
    return len(ref_rref(a)[1])


def ref_solve(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, list[int]] | None:
    """Particular solution (free variables 0) and pivots, or None if inconsistent."""
    n = a.shape[1]
    r, pivots = ref_rref(np.column_stack([a, b]))
    if n in pivots:
        return None
    x = np.zeros(n, dtype=np.uint8)
    for k, p in enumerate(pivots):
        x[p] = r[k, n]
    return x, pivots


def ref_nullspace(a: np.ndarray) -> np.ndarray:
    """One basis vector per free column f: x_f = 1, other free 0, pivots solved from RREF."""
    n = a.shape[1]
    r, pivots = ref_rref(a)
    free = [c for c in range(n) if c not in pivots]
    basis = np.zeros((len(free), n), dtype=np.uint8)
    for i, f in enumerate(free):
        basis[i, f] = 1
        for k, p in enumerate(pivots):
            basis[i, p] = r[k, f]
    return basis


def ref_pack(bits: np.ndarray) -> np.ndarray:
    rows, cols = bits.shape
    nwords = (cols + 63) // 64
    out = np.zeros((rows, nwords), dtype=np.uint64)
    for i in range(rows):
        for w in range(nwords):
            value = 0
            for j in range(w * 64, min(cols, (w + 1) * 64)):
                value |= int(bits[i, j]) << (j - w * 64)
            out[i, w] = value
    return out


def mod2_product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (np.asarray(a, dtype=np.int64) @ np.asarray(b, dtype=np.int64) % 2).astype(np.uint8)


def build(kind: str, m: int, n: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "random":
        return rng.integers(0, 2, (m, n), dtype=np.uint8)
    if kind == "sparse":
        return (rng.random((m, n)) < 0.05).astype(np.uint8)
    if kind == "zero":
        return np.zeros((m, n), dtype=np.uint8)
    if kind == "ones":
        return np.ones((m, n), dtype=np.uint8)
    if kind == "duplicate_rows":
        base = rng.integers(0, 2, (max(1, m // 2), n), dtype=np.uint8)
        return base[rng.integers(0, len(base), m)]
    inner = int(rng.integers(1, min(m, n) + 1))
    left = rng.integers(0, 2, (m, inner), dtype=np.uint8)
    return mod2_product(left, rng.integers(0, 2, (inner, n), dtype=np.uint8))


@st.composite
def matrices(draw: st.DrawFn, max_rows: int = 90) -> np.ndarray:
    m = draw(st.integers(1, max_rows))
    n = draw(st.sampled_from(WIDTHS) | st.integers(1, 150))
    kind = draw(st.sampled_from(KINDS))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return build(kind, m, n, rng).astype(draw(st.sampled_from(DTYPES)))


@st.composite
def systems(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """A system a @ x = b; b is either in the column space of a or uniformly random."""
    a = draw(matrices())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if draw(st.booleans()):
        b = mod2_product(a, rng.integers(0, 2, a.shape[1]))
    else:
        b = rng.integers(0, 2, a.shape[0], dtype=np.uint8)
    return a, b


def check_solution(a: np.ndarray, b: np.ndarray, sol: gf2.GF2Solution) -> None:
    n = a.shape[1]
    expected = ref_solve(a, b)
    assert expected is not None
    x, pivots = expected
    assert sol.x.dtype == np.uint8 and sol.x.shape == (n,)
    np.testing.assert_array_equal(sol.x, x)
    np.testing.assert_array_equal(sol.pivots, pivots)
    assert sol.pivots.dtype == np.int64 and sol.free.dtype == np.int64
    assert sorted([*sol.pivots, *sol.free]) == list(range(n))
    assert sol.rank == len(pivots)
    np.testing.assert_array_equal(mod2_product(a, sol.x), b)
    check_nullspace(a, sol.nullspace)


def check_nullspace(a: np.ndarray, basis: np.ndarray) -> None:
    n = a.shape[1]
    r = ref_rank(a)
    assert basis.dtype == np.uint8 and basis.shape == (n - r, n)
    np.testing.assert_array_equal(basis, ref_nullspace(a))
    assert not mod2_product(a, basis.T).any()
    assert ref_rank(basis) == n - r


@SETTINGS
@given(matrices())
def test_pack_matches_reference_and_round_trips(a: np.ndarray) -> None:
    words = gf2.pack(a)
    assert words.dtype == np.uint64
    np.testing.assert_array_equal(words, ref_pack(a.astype(np.uint8)))
    back = gf2.unpack(words, a.shape[1])
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, a.astype(np.uint8))


@pytest.mark.parametrize("n", WIDTHS)
def test_pack_1d_matches_first_row_of_2d(n: int) -> None:
    bits = np.random.default_rng(n).integers(0, 2, n, dtype=np.uint8)
    words = gf2.pack(bits)
    assert words.shape == ((n + 63) // 64,)
    np.testing.assert_array_equal(words, gf2.pack(bits[np.newaxis, :])[0])
    np.testing.assert_array_equal(gf2.unpack(words, n), bits)


def test_pack_bit_positions_are_little_endian() -> None:
    bits = np.zeros(130, dtype=np.uint8)
    bits[[0, 63, 64, 129]] = 1
    words = gf2.pack(bits)
    assert words.tolist() == [1 | (1 << 63), 1, 2]


@SETTINGS
@given(matrices())
def test_rank_matches_reference(a: np.ndarray) -> None:
    result = gf2.rank(a)
    assert isinstance(result, int)
    assert result == ref_rank(a)


@SETTINGS
@given(systems())
def test_solve_and_is_consistent_match_reference(system: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = system
    sol = gf2.solve(a, b)
    consistent = ref_solve(a, b) is not None
    assert gf2.is_consistent(a, b) is consistent
    assert (sol is not None) is consistent
    if sol is not None:
        check_solution(a, b, sol)


@SETTINGS
@given(matrices())
def test_nullspace_matches_reference(a: np.ndarray) -> None:
    check_nullspace(a, gf2.nullspace(a))


@SETTINGS
@given(systems(), st.integers(0, 2**32 - 1))
def test_every_combination_of_nullspace_rows_solves(
    system: tuple[np.ndarray, np.ndarray], seed: int
) -> None:
    a, b = system
    sol = gf2.solve(a, b)
    if sol is None:
        return
    coeffs = np.random.default_rng(seed).integers(0, 2, len(sol.free))
    other = sol.x ^ mod2_product(coeffs, sol.nullspace)
    np.testing.assert_array_equal(mod2_product(a, other), b)


@SETTINGS
@given(matrices(), st.integers(0, 2**32 - 1))
def test_matvec_matches_integer_product(a: np.ndarray, seed: int) -> None:
    x = np.random.default_rng(seed).integers(0, 2, a.shape[1]).astype(bool)
    result = gf2.matvec(a, x)
    assert result.dtype == np.uint8 and result.shape == (a.shape[0],)
    np.testing.assert_array_equal(result, mod2_product(a, x))


@SETTINGS
@given(matrices(), st.sampled_from(WIDTHS), st.integers(0, 2**32 - 1))
def test_matmul_matches_integer_product(a: np.ndarray, n: int, seed: int) -> None:
    b = np.random.default_rng(seed).integers(0, 2, (a.shape[1], n), dtype=np.int64)
    result = gf2.matmul(a, b)
    assert result.dtype == np.uint8 and result.shape == (a.shape[0], n)
    np.testing.assert_array_equal(result, mod2_product(a, b))


@pytest.mark.parametrize("m", [1, 3, 64, 130])
@pytest.mark.parametrize("n", [1, 63, 64, 65, 128, 129])
def test_all_functions_on_fixed_shapes(m: int, n: int) -> None:
    rng = np.random.default_rng(1000 * m + n)
    a = rng.integers(0, 2, (m, n), dtype=np.uint8)
    b = mod2_product(a, rng.integers(0, 2, n))
    assert gf2.rank(a) == ref_rank(a)
    sol = gf2.solve(a, b)
    assert sol is not None
    check_solution(a, b, sol)
    check_nullspace(a, gf2.nullspace(a))
    np.testing.assert_array_equal(gf2.matmul(a, a.T), mod2_product(a, a.T))


def test_large_system_matches_reference() -> None:
    rng = np.random.default_rng(7)
    a = build("low_rank", 300, 257, rng)
    b = mod2_product(a, rng.integers(0, 2, 257))
    assert gf2.rank(a) == ref_rank(a)
    sol = gf2.solve(a, b)
    assert sol is not None
    check_solution(a, b, sol)


def test_zero_matrix() -> None:
    a = np.zeros((4, 70), dtype=np.uint8)
    assert gf2.rank(a) == 0
    sol = gf2.solve(a, np.zeros(4, dtype=np.uint8))
    assert sol is not None
    assert not sol.x.any() and sol.pivots.size == 0
    np.testing.assert_array_equal(sol.free, np.arange(70))
    np.testing.assert_array_equal(sol.nullspace, np.eye(70, dtype=np.uint8))
    assert gf2.solve(a, np.array([0, 0, 1, 0])) is None


def test_rank_deficient_rows() -> None:
    rng = np.random.default_rng(3)
    base = rng.integers(0, 2, (5, 100), dtype=np.uint8)
    a = np.vstack([base, base[1], base[0] ^ base[2] ^ base[4], base[3]])
    assert gf2.rank(a) == ref_rank(base) == 5
    b = mod2_product(a, rng.integers(0, 2, 100))
    sol = gf2.solve(a, b)
    assert sol is not None
    check_solution(a, b, sol)
    b_bad = b.copy()
    b_bad[5] ^= 1
    assert not gf2.is_consistent(a, b_bad)
    assert gf2.solve(a, b_bad) is None


def test_overdetermined_consistent_and_inconsistent() -> None:
    rng = np.random.default_rng(4)
    a = rng.integers(0, 2, (200, 40), dtype=np.uint8)
    x = rng.integers(0, 2, 40, dtype=np.uint8)
    b = mod2_product(a, x)
    sol = gf2.solve(a, b)
    assert sol is not None and sol.free.size == 0
    np.testing.assert_array_equal(sol.x, x)
    b[17] ^= 1
    assert not gf2.is_consistent(a, b)
    assert gf2.solve(a, b) is None


def test_underdetermined() -> None:
    rng = np.random.default_rng(5)
    a = rng.integers(0, 2, (30, 150), dtype=np.uint8)
    b = rng.integers(0, 2, 30, dtype=np.uint8)
    sol = gf2.solve(a, b)
    assert sol is not None
    assert sol.rank == 30 and sol.free.size == 120
    check_solution(a, b, sol)


def test_hand_worked_example() -> None:
    a = np.array([[1, 1, 0], [0, 1, 1]])
    sol = gf2.solve(a, np.array([1, 0]))
    assert sol is not None
    assert sol.x.tolist() == [1, 0, 0]
    assert sol.pivots.tolist() == [0, 1]
    assert sol.free.tolist() == [2]
    assert sol.nullspace.tolist() == [[1, 1, 1]]
    assert gf2.solve(np.array([[1, 1], [1, 1]]), np.array([1, 0])) is None


@pytest.mark.parametrize("shape", [(0, 5), (3, 0), (0, 0)])
def test_empty_dimensions(shape: tuple[int, int]) -> None:
    a = np.zeros(shape, dtype=np.uint8)
    m, n = shape
    assert gf2.rank(a) == 0
    assert gf2.pack(a).shape == (m, (n + 63) // 64)
    assert gf2.nullspace(a).shape == (n, n)
    sol = gf2.solve(a, np.zeros(m, dtype=np.uint8))
    assert sol is not None and sol.x.shape == (n,)
    assert gf2.matvec(a, np.zeros(n, dtype=np.uint8)).shape == (m,)


def test_solution_is_frozen_and_read_only() -> None:
    sol = gf2.solve(np.eye(3, dtype=np.uint8), np.array([1, 0, 1]))
    assert sol is not None
    with pytest.raises(dataclasses.FrozenInstanceError):
        sol.x = np.zeros(3, dtype=np.uint8)  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        sol.x[0] = 0


def test_inputs_are_not_modified() -> None:
    a = np.array([[1, 1], [1, 0]], dtype=np.uint8)
    b = np.array([1, 1], dtype=np.uint8)
    gf2.solve(a, b)
    assert a.tolist() == [[1, 1], [1, 0]] and b.tolist() == [1, 1]


A2 = np.ones((2, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: gf2.pack(np.array([[0, 2]])), "bits must contain only 0 and 1, found 2"),
        (lambda: gf2.pack(np.array([0, -1])), "bits must contain only 0 and 1, found -1"),
        (lambda: gf2.pack(np.zeros((2, 2, 2), dtype=int)), r"bits must be a 1-D or 2-D array"),
        (lambda: gf2.pack(np.array(1)), r"bits must be a 1-D or 2-D array"),
        (lambda: gf2.pack(np.array([0.0, 1.0])), "bits must have an integer or bool dtype"),
        (lambda: gf2.unpack(np.zeros(2, dtype=np.int64), 70), "words must have dtype uint64"),
        (lambda: gf2.unpack(np.zeros(3, dtype=np.uint64), 70), "ncols=70 needs 2"),
        (lambda: gf2.unpack(np.zeros(1, dtype=np.uint64), -1), "ncols must be a non-negative"),
        (lambda: gf2.rank(np.ones(3, dtype=np.uint8)), r"a must be a 2-D array, got shape \(3,\)"),
        (lambda: gf2.rank(np.full((2, 2), 3)), "a must contain only 0 and 1"),
        (lambda: gf2.solve(A2, np.ones(3, dtype=np.uint8)), r"b has shape \(3,\), expected \(2,\)"),
        (lambda: gf2.solve(A2, np.ones((2, 1), dtype=np.uint8)), "b must be a 1-D array"),
        (lambda: gf2.solve(A2, np.array([0, 5])), "b must contain only 0 and 1"),
        (lambda: gf2.is_consistent(A2, np.ones(4, dtype=np.uint8)), r"b has shape \(4,\)"),
        (lambda: gf2.nullspace(np.ones((1, 1, 1), dtype=np.uint8)), "a must be a 2-D array"),
        (lambda: gf2.matvec(A2, np.ones(2, np.uint8)), r"x has shape \(2,\), expected \(3,\)"),
        (lambda: gf2.matmul(A2, A2), r"a has shape \(2, 3\) and b has shape \(2, 3\)"),
        (lambda: gf2.matmul(A2, np.ones(3, dtype=np.uint8)), "b must be a 2-D array"),
    ],
)
def test_bad_input_raises_value_error_naming_argument(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
