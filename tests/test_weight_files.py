"""Whole model files: every tensor's role, and a catalogue of crafted bad files, each
refused with one line naming the file and the problem (exit code 2 from the CLI)."""

from __future__ import annotations

import io
import json
import os
import re
import struct
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from codesign.experiments.cli.main import main
from codesign.models.errors import WeightsError
from codesign.models.weight_files import (
    BOMB_MIN_BYTES,
    load_weights,
    open_model,
    read_arrays,
    save_model,
    tensor_role,
)

# ---------------------------------------------------------------- builders


def npy(array: np.ndarray) -> bytes:
    """The .npy bytes of ``array`` (object arrays pickled)."""
    out = io.BytesIO()
    np.lib.format.write_array(out, array, allow_pickle=True)
    return out.getvalue()


def npy_header(shape: tuple[int, ...], descr: str = "<f4", version: int = 1) -> bytes:
    """A .npy header (magic, length, dict) declaring ``shape`` of ``descr``, no data."""
    text = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape!r}, }}"
    body = text.encode("latin1") + b" " * (63 - len(text) % 64) + b"\n"
    width = "<H" if version == 1 else "<I"
    return b"\x93NUMPY" + bytes([version, 0]) + struct.pack(width, len(body)) + body


def write_zip(path: Path, members: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression=method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def write_safetensors(path: Path, header: object, data: bytes = b"") -> Path:
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)
    return path


def entry(dtype: str, shape: list[int], begin: int, end: int) -> dict:
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def weights(shape=(3, 4)) -> np.ndarray:
    return np.arange(1, 1 + int(np.prod(shape)), dtype=np.float32).reshape(shape)


def with_nan() -> np.ndarray:
    w = weights()
    w[2, 1] = np.nan
    return w


def good_npz(path: Path) -> Path:
    np.savez(path, w=weights((8, 16)), b=np.ones(8, np.float32))
    return path


def good_safetensors(path: Path) -> Path:
    save_file({"w": weights((8, 16)), "b": np.ones(8, np.float32)}, str(path))
    return path


def truncated(make: Callable[[Path], Path], keep: float) -> Callable[[Path], Path]:
    def build(path: Path) -> Path:
        data = make(path).read_bytes()
        path.write_bytes(data[: int(len(data) * keep)])
        return path

    return build


class Unpickled:
    """Unpickling this would create the marker file named by ``MARKER``."""

    marker = ""

    def __reduce__(self):
        return (open, (self.marker, "w"))


def pickle_npz(path: Path) -> Path:
    Unpickled.marker = str(path.with_suffix(".unpickled"))
    return write_zip(path, {"w.npy": npy(np.array([[Unpickled(), 1]], dtype=object))})


def corrupt_deflate(path: Path) -> Path:
    rng = np.random.default_rng(0)
    w = rng.integers(-50, 50, size=(64, 64)).astype(np.float32)
    write_zip(path, {"w.npy": npy(w)}, zipfile.ZIP_DEFLATED)
    data = bytearray(path.read_bytes())
    info = zipfile.ZipFile(path).getinfo("w.npy")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    for i in range(start + info.compress_size // 2, start + info.compress_size - 8):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    return path


def zip_bomb(path: Path) -> Path:
    """64 MiB of zeros in a ~64 KiB deflated member (ratio about 1000:1)."""
    size = 4 * BOMB_MIN_BYTES
    with (
        zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf,
        zf.open("w.npy", "w") as f,
    ):
        f.write(npy_header((size // 4,)))
        chunk = bytes(2**20)
        for _ in range(size // len(chunk)):
            f.write(chunk)
    return path


def directory(path: Path) -> Path:
    path.mkdir()
    return path


#: (case id, file name, builder, message): every case must raise one line naming the
#: file and the message, and exit 2 from `codesign compress`.
CATALOGUE: list[tuple[str, str, Callable[[Path], Path], str]] = [
    ("missing", "missing.npz", lambda p: p, "no such file"),
    ("directory", "dir.npz", directory, "is a directory, not a weights file"),
    ("unknown extension", "w.txt", lambda p: p.write_bytes(b"1 2") and p, "unknown extension"),
    ("zero-byte npz", "zero.npz", lambda p: p.write_bytes(b"") or p, "empty file (0 bytes)"),
    (
        "zero-byte safetensors",
        "zero.safetensors",
        lambda p: p.write_bytes(b"") or p,
        "empty file (0 bytes)",
    ),
    (
        "truncated npz",
        "cut.npz",
        truncated(good_npz, 0.6),
        "truncated or corrupt .npz file: a zip archive without its central directory",
    ),
    (
        "truncated safetensors data",
        "cut.safetensors",
        truncated(good_safetensors, 0.8),
        "bytes of tensor data but the file holds",
    ),
    (
        "truncated safetensors header",
        "head.safetensors",
        lambda p: p.write_bytes(struct.pack("<Q", 1000) + b'{"w":') or p,
        "its length field claims 1000 bytes but only 5 follow",
    ),
    (
        "short safetensors",
        "short.safetensors",
        lambda p: p.write_bytes(b"\x01\x02\x03") or p,
        "3 bytes is too short for a .safetensors file",
    ),
    (
        "non-zip npz",
        "text.npz",
        lambda p: p.write_bytes(b"just some text\n") or p,
        "not an .npz file (not a zip archive)",
    ),
    (
        "object array (pickle)",
        "pickle.npz",
        pickle_npz,
        "holds Python objects, a pickle that is refused and never unpickled (dtype object)",
    ),
    (
        "complex npz",
        "complex.npz",
        lambda p: write_zip(p, {"w.npy": npy(np.ones((2, 2), np.complex64))}),
        "holds a complex dtype (dtype complex64)",
    ),
    (
        "complex safetensors",
        "complex.safetensors",
        lambda p: write_safetensors(p, {"w": entry("C64", [2], 0, 16)}, bytes(16)),
        "has dtype 'C64', which is not a supported real numeric dtype",
    ),
    (
        "float8 safetensors",
        "f8.safetensors",
        lambda p: write_safetensors(p, {"w": entry("F8_E4M3", [2, 2], 0, 4)}, bytes(4)),
        "has dtype 'F8_E4M3', which is not a supported real numeric dtype",
    ),
    (
        "timedelta npz",
        "td.npz",
        lambda p: write_zip(p, {"w.npy": npy(np.ones((2, 2), "m8[s]"))}),
        "holds a timedelta dtype",
    ),
    (
        "datetime npz",
        "dt.npz",
        lambda p: write_zip(p, {"w.npy": npy(np.zeros((2, 2), "M8[D]"))}),
        "holds a datetime dtype",
    ),
    (
        "text dtype npz",
        "str.npz",
        lambda p: write_zip(p, {"w.npy": npy(np.array([["a", "b"]]))}),
        "holds a text dtype",
    ),
    (
        "structured dtype npz",
        "rec.npz",
        lambda p: write_zip(p, {"w.npy": npy(np.zeros((2, 2), [("a", "<f4"), ("b", "<i4")]))}),
        "holds a structured or raw-bytes dtype",
    ),
    (
        "empty tensor npz",
        "empty.npz",
        lambda p: write_zip(p, {"w.npy": npy(np.zeros((0, 4), np.float32))}),
        "tensor 'w' has shape 0x4: empty tensors hold no weights",
    ),
    (
        "empty tensor safetensors",
        "empty.safetensors",
        lambda p: write_safetensors(
            p, {"w": entry("F32", [3, 0], 0, 0), "v": entry("F32", [2], 0, 8)}, bytes(8)
        ),
        "tensor 'w' has shape 3x0: empty tensors hold no weights",
    ),
    (
        "NaN npz",
        "nan.npz",
        lambda p: save_model(p, {"w": with_nan()}),
        "tensor 'w': 1 non-finite value(s) (NaN/inf); first at index (2, 1)",
    ),
    (
        "Inf safetensors",
        "inf.safetensors",
        lambda p: save_model(p, {"w": weights(), "b": np.array([1.0, np.inf], np.float32)}),
        "tensor 'b': 1 non-finite value(s) (NaN/inf); first at index (1,)",
    ),
    (
        "header not JSON",
        "json.safetensors",
        lambda p: write_safetensors(p, b"{not json", b""),
        "malformed .safetensors header: not JSON",
    ),
    (
        "header not an object",
        "list.safetensors",
        lambda p: write_safetensors(p, [1, 2]),
        "malformed .safetensors header: expected a JSON object, got list",
    ),
    (
        "header entry keys",
        "keys.safetensors",
        lambda p: write_safetensors(p, {"w": {"dtype": "F32", "shape": [1]}}, bytes(4)),
        "tensor 'w' needs exactly the keys dtype, shape, data_offsets",
    ),
    (
        "header duplicate name",
        "dup.safetensors",
        lambda p: write_safetensors(
            p,
            b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, '
            b'"w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}',
            bytes(8),
        ),
        "malformed .safetensors header: duplicate name 'w'",
    ),
    (
        "header bad shape",
        "shape.safetensors",
        lambda p: write_safetensors(p, {"w": entry("F32", [2, -1], 0, 8)}, bytes(8)),
        "shape must be a list of integers >= 0, got [2, -1]",
    ),
    (
        "header span mismatch",
        "span.safetensors",
        lambda p: write_safetensors(p, {"w": entry("F32", [2, 2], 0, 12)}, bytes(12)),
        "shape [2, 2] of float32 needs 16 bytes but its data_offsets span 12",
    ),
    (
        "header claims beyond the file",
        "huge.safetensors",
        lambda p: write_safetensors(
            p,
            {"v": entry("F32", [4], 0, 16), "w": entry("F32", [2**20, 2**20], 16, 16 + 2**42)},
            bytes(16),
        ),
        "the header declares 4398046511120 bytes of tensor data but the file holds 16 "
        "(truncated, or a header claiming more than the file)",
    ),
    (
        "header overlapping tensors",
        "overlap.safetensors",
        lambda p: write_safetensors(
            p, {"a": entry("F32", [2], 0, 8), "b": entry("F32", [2], 4, 12)}, bytes(12)
        ),
        "tensor 'b' overlaps the tensor before it",
    ),
    (
        "header gap",
        "gap.safetensors",
        lambda p: write_safetensors(
            p, {"a": entry("F32", [2], 0, 8), "b": entry("F32", [2], 12, 20)}, bytes(20)
        ),
        "4 bytes before tensor 'b' belong to no tensor",
    ),
    (
        "trailing bytes",
        "tail.safetensors",
        lambda p: write_safetensors(p, {"a": entry("F32", [2], 0, 8)}, bytes(11)),
        "3 bytes after the last tensor's data belong to no tensor",
    ),
    (
        "npy header claims beyond the member",
        "claims.npz",
        lambda p: write_zip(p, {"w.npy": npy_header((100_000, 100_000)) + bytes(16)}),
        "its .npy header claims shape (100000, 100000) of float32 (40000000000 bytes) but "
        "the member holds 16 bytes of data",
    ),
    (
        "npz member with corrupt deflate",
        "deflate.npz",
        corrupt_deflate,
        "member 'w.npy': corrupt data:",
    ),
    (
        "npz member with a bad .npy header",
        "header.npz",
        lambda p: write_zip(
            p, {"w.npy": b"\x93NUMPY\x01\x00\x20\x00{'descr': '<f4', 'shape': (2,        \n"}
        ),
        "member 'w.npy' is not a valid .npy array: cannot parse its header",
    ),
    (
        "npz member of npy version 3",
        "v3.npz",
        lambda p: write_zip(p, {"w.npy": npy_header((2,), version=3) + bytes(8)}),
        "member 'w.npy' is not a valid .npy array: unsupported .npy format version 3.0",
    ),
    (
        "npz text member",
        "notes.npz",
        lambda p: write_zip(p, {"w.npy": npy(weights()), "notes.txt": b"trained on ...\n"}),
        "member 'notes.txt' is not a .npy array",
    ),
    (
        "npz member holding text",
        "textnpy.npz",
        lambda p: write_zip(p, {"w.npy": b"1.0 2.0 3.0\n4.0 5.0 6.0\n"}),
        "member 'w.npy' is not a valid .npy array: it does not start with the .npy magic",
    ),
    ("zip bomb", "bomb.npz", zip_bomb, "a zip bomb, refused without inflating it"),
    (
        "float64 beyond float32's range",
        "big.npz",
        lambda p: save_model(p, {"w": np.array([[1.0, 1e39], [2.0, -3.0]])}),
        "tensor 'w': 1 float64 value(s) beyond float32's range (|w| > 3.4e+38) would become "
        "±inf as float32, the precision layers are compared at (first at index (0, 1))",
    ),
    (
        "float64 1e308",
        "max.safetensors",
        lambda p: save_model(p, {"w": np.full((2, 3), -1e308)}),
        "tensor 'w': 6 float64 value(s) beyond float32's range",
    ),
    (
        "float64 subnormals",
        "tiny.npz",
        lambda p: save_model(p, {"w": np.array([[0.5, 1e-310], [4e-39, 0.0]])}),
        "tensor 'w': 2 float64 value(s) below float32's normal range (0 < |w| < 1.18e-38) "
        "would become 0 or lose bits as float32",
    ),
    (
        "no weight layer",
        "bias.npz",
        lambda p: save_model(p, {"b": np.ones(4, np.float32), "n": np.int64(3)}),
        "no weight layer (a floating tensor with 2 or more dimensions) found",
    ),
]


@pytest.fixture(params=CATALOGUE, ids=[case[0] for case in CATALOGUE])
def bad_file(request, tmp_path) -> tuple[Path, str]:
    _, name, build, message = request.param
    path = tmp_path / name
    build(path)
    return path, message


def test_every_bad_file_is_refused_with_one_line_naming_it(bad_file):
    path, message = bad_file
    with pytest.raises(WeightsError) as info:
        open_model(path)
    text = str(info.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text


def test_every_bad_file_exits_2_from_the_command_line(bad_file, capsys):
    path, message = bad_file
    code = main(["compress", "--format", "csr", "--weights", str(path), "--sparsity", "0.5"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.startswith(f"codesign: error: {path}: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_a_pickle_is_never_unpickled(tmp_path):
    path = pickle_npz(tmp_path / "evil.npz")
    with pytest.raises(WeightsError, match="never unpickled"):
        open_model(path)
    assert not Path(Unpickled.marker).exists()
    np.load(path, allow_pickle=True)["w"]  # the control: unpickling would create it
    assert Path(Unpickled.marker).exists()


def test_a_zip_bomb_is_refused_before_inflating(tmp_path):
    path = zip_bomb(tmp_path / "bomb.npz")
    assert path.stat().st_size < BOMB_MIN_BYTES // 64
    tracemalloc.start()
    with pytest.raises(WeightsError, match="zip bomb"):
        open_model(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 4 * 2**20  # the 64 MiB member was never inflated


def test_declared_sizes_beyond_the_memory_limit_are_refused(tmp_path):
    path = save_model(tmp_path / "w.safetensors", {"w": weights((64, 64))})
    message = r"its tensors declare 16384 bytes, more than the memory limit of 1000 bytes"
    with pytest.raises(WeightsError, match=message):
        open_model(path, max_bytes=1000)
    assert open_model(path, max_bytes=16384).by_role("layer")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file whatever its mode")
def test_an_unreadable_file_is_refused(tmp_path):
    path = good_npz(tmp_path / "locked.npz")
    path.chmod(0)
    with pytest.raises(WeightsError, match=r"cannot read it \(permission denied\)"):
        open_model(path)


def test_a_permission_error_is_one_line(tmp_path, monkeypatch, capsys):
    """As root no mode bit blocks reading, so the refusal is raised at the open."""
    path = good_npz(tmp_path / "locked.npz")
    real_open = Path.open

    def deny(self, *args, **kwargs):
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", deny)
    assert main(["compress", "--format", "csr", "--weights", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == f"codesign: error: {path}: cannot read it (permission denied)\n"


def test_layers_patterns_must_match(tmp_path):
    path = good_npz(tmp_path / "w.npz")
    with pytest.raises(WeightsError, match=r"--layers 'conv\*' matches no tensor; .* w, b"):
        open_model(path, ["w", "conv*"])
    with pytest.raises(WeightsError, match=r"no weight layer .* selected"):
        open_model(path, ["b"])


# ---------------------------------------------------------------- roles and values


def model_arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "conv.weight": rng.normal(size=(8, 3, 3, 3)).astype(np.float32),
        "conv1d.weight": rng.normal(size=(4, 2, 5)).astype(np.float32),
        "bn.weight": rng.normal(size=8).astype(np.float32),
        "bn.num_batches_tracked": np.array(7, dtype=np.int64),
        "fc.weight": rng.normal(size=(10, 27)).astype(np.float32),
        "fc.bias": rng.normal(size=10).astype(np.float64),
        "half.weight": rng.normal(size=(4, 5)).astype(np.float16),
        "scale": np.array(0.5, dtype=np.float32),
        "int.weight": rng.integers(-8, 8, size=(3, 3)).astype(np.int8),
        "mask": np.ones((2, 2), dtype=bool),
        "embeddings.position_ids": np.arange(6, dtype=np.int64)[None],
        "h.0.attn.bias": np.tril(np.ones((1, 1, 4, 4), dtype=np.float32)),
    }


EXPECTED_ROLES = {
    "conv.weight": ("layer", "4-D kernel 8x3x3x3 as a 8x27 matrix (kernel 3x3)"),
    "conv1d.weight": ("layer", "3-D kernel 4x2x5 as a 4x10 matrix (kernel 5)"),
    "bn.weight": ("side", "float32 vector: stored dense"),
    "bn.num_batches_tracked": (
        "skipped",
        "non-weight buffer (name matches '*num_batches_tracked')",
    ),
    "fc.weight": ("layer", "2-D weight matrix"),
    "fc.bias": ("side", "float64 vector: stored dense"),
    "half.weight": ("layer", "2-D weight matrix"),
    "scale": ("side", "float32 scalar: stored dense"),
    "int.weight": ("skipped", "int8 tensor: not a floating-point weight"),
    "mask": ("skipped", "bool tensor: not a floating-point weight"),
    "embeddings.position_ids": ("skipped", "non-weight buffer (name matches '*position_ids')"),
    "h.0.attn.bias": ("skipped", "non-weight buffer (name matches '*.attn.bias')"),
}


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_every_tensor_gets_one_role(tmp_path, suffix):
    arrays = model_arrays()
    model = open_model(save_model(tmp_path / f"model{suffix}", arrays))
    assert {t.name: (t.role, t.reason) for t in model.tensors} == EXPECTED_ROLES
    conv = next(t for t in model.tensors if t.name == "conv.weight")
    assert conv.matrix_shape == (8, 27) and conv.kernel == (3, 3)
    assert conv.to_dict()["matrix_shape"] == [8, 27] and conv.to_dict()["kernel"] == [3, 3]
    np.testing.assert_array_equal(model.matrix("conv.weight"), arrays["conv.weight"].reshape(8, 27))
    assert model.matrix("half.weight").dtype == np.float32
    np.testing.assert_array_equal(model.arrays["fc.bias"], arrays["fc.bias"].astype(np.float32))
    assert "int.weight" not in model.arrays  # skipped tensors are never read
    assert all(a.flags.writeable and a.flags.c_contiguous for a in model.arrays.values())


def test_layers_selection_skips_the_rest(tmp_path):
    model = open_model(save_model(tmp_path / "m.npz", model_arrays()), ["conv*", "fc.*"])
    roles = {t.name: t.role for t in model.tensors}
    assert [n for n, r in roles.items() if r == "layer"] == [
        "conv.weight",
        "conv1d.weight",
        "fc.weight",
    ]
    assert [n for n, r in roles.items() if r == "side"] == ["fc.bias"]
    assert next(t for t in model.tensors if t.name == "bn.weight").reason == (
        "not selected by --layers"
    )


def test_npz_order_fortran_and_big_endian_arrays(tmp_path):
    w = np.asfortranarray(weights((5, 7)))
    big = weights((3, 2)).astype(">f4")
    path = write_zip(tmp_path / "w.npz", {"z.npy": npy(w), "a.npy": npy(big)})
    loaded = load_weights(path)
    assert list(loaded) == ["z", "a"]
    np.testing.assert_array_equal(loaded["z"], w)
    np.testing.assert_array_equal(loaded["a"], big.astype(np.float32))


def test_deflated_npz_is_read(tmp_path):
    path = tmp_path / "c.npz"
    np.savez_compressed(path, w=weights((30, 40)))
    np.testing.assert_array_equal(load_weights(path)["w"], weights((30, 40)))


def test_bfloat16_safetensors_become_float32(tmp_path):
    values = np.array([[1.5, -2.0], [0.25, 96.0]], dtype=np.float32)
    data = (values.view(np.uint32) >> 16).astype("<u2").tobytes()
    path = write_safetensors(
        tmp_path / "bf16.safetensors", {"w": entry("BF16", [2, 2], 0, 8)}, data
    )
    model = open_model(path)
    assert model.tensors[0].dtype == "bfloat16"
    np.testing.assert_array_equal(model.matrix("w"), values)


def test_read_arrays_returns_every_tensor(tmp_path):
    arrays = read_arrays(save_model(tmp_path / "m.safetensors", model_arrays()))
    assert set(arrays) == set(EXPECTED_ROLES)
    assert arrays["int.weight"].dtype == np.int8 and arrays["scale"].shape == ()


def test_tensor_role_rules():
    assert tensor_role("x", "bfloat16", (4, 4)) == ("layer", "2-D weight matrix")
    assert tensor_role("x", "uint8", (4,))[0] == "skipped"
    assert tensor_role("model.inv_freq", "float32", (16,))[0] == "skipped"


def test_save_model_needs_a_known_extension(tmp_path):
    with pytest.raises(WeightsError, match=r"unknown extension '\.pt'"):
        save_model(tmp_path / "w.pt", {"w": weights()})


def test_messages_name_the_path_once(tmp_path):
    path = tmp_path / "zero.npz"
    path.write_bytes(b"")
    with pytest.raises(WeightsError) as info:
        open_model(path)
    assert len(re.findall(re.escape(str(path)), str(info.value))) == 1
