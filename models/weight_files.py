"""Whole model files (``.safetensors``, ``.npz``): read safely, every tensor given a role.

**Reading never trusts the file.** Both formats are parsed here, not handed to a
library that would allocate what a header claims:

* ``.safetensors``: the 8-byte header length must fit the file, the JSON header must be
  an object without duplicate names, every entry needs a known dtype, a shape of
  non-negative integers and ``data_offsets`` whose span equals shape × item size; the
  entries must tile the data region exactly (no overlap, no gap, nothing past the end).
* ``.npz``: a zip archive whose members are all ``NAME.npy``. Each member's ``.npy``
  header is read on its own (at most :data:`MAX_NPY_HEADER` bytes) before any data:
  object arrays are refused and **never unpickled**; the header's shape × item size
  plus the header must equal the size the zip declares for the member; a deflated
  member larger than :data:`BOMB_MIN_BYTES` that inflates more than :data:`BOMB_RATIO`
  times its compressed size is refused as a zip bomb. Data is then inflated in chunks
  into an array of exactly the declared size (the zip reader never yields more than the
  declared size), so a lying archive cannot make the reader allocate more.
* Both: the declared bytes of all tensors together must stay within ``max_bytes``
  (default :func:`codesign.limits.memory_limit`: 75 % of the machine's memory, or
  ``--max-memory``); only real numeric dtypes are arrays (floating, integer, bool:
  complex, datetime, timedelta, strings, structured and object dtypes are refused); an
  empty tensor (a zero dimension) and a NaN or infinite value are refused, and so is a
  float64 value that float32 (the precision every layer is compared at) would turn
  into ±inf or 0 (:class:`~codesign.models.errors.PrecisionError`).

Every problem raises :class:`~codesign.models.errors.WeightsError` with one line naming
the file, the tensor and what is wrong.

**Roles.** Every tensor of a file gets exactly one (:func:`tensor_role`):

* ``layer``: a floating tensor with 2 or more dimensions. A 2-D tensor is a weight
  matrix (out_features, in_features); a tensor with more dimensions is a kernel
  (out, in, k1, k2, …), stored as the matrix (out, in·k1·k2·…) — the im2col lowering —
  with its kernel geometry kept (:attr:`Tensor.kernel`).
* ``side``: a floating tensor with 0 or 1 dimensions (biases, LayerNorm and BatchNorm
  vectors): stored dense at the comparison's value precision and counted in a model's
  totals.
* ``skipped``: an integer or bool tensor (index buffers, counters), a tensor whose name
  matches a known non-weight buffer (:data:`NON_WEIGHT_BUFFERS`), or one the caller's
  name patterns did not select — each with its reason.

Floating tensors are returned as float32 (float16, bfloat16 and float64 are converted:
every layer of a model is compared at one value precision; a float64 tensor only when
every value keeps its meaning); others as stored.
"""

from __future__ import annotations

import abc
import dataclasses
import fnmatch
import io
import json
import math
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from codesign.limits import human, limit_text
from codesign.limits import memory_limit as memory_limit
from codesign.models.errors import PrecisionError, WeightsError

__all__ = [
    "BOMB_MIN_BYTES",
    "BOMB_RATIO",
    "MAX_NPY_HEADER",
    "NON_WEIGHT_BUFFERS",
    "ROLES",
    "ModelFile",
    "Tensor",
    "load_weights",
    "memory_limit",
    "open_model",
    "read_arrays",
    "save_model",
    "select_names",
    "tensor_role",
]

ROLES = ("layer", "side", "skipped")
"""The role of a tensor in a model file (module docstring)."""

NON_WEIGHT_BUFFERS = (
    "*position_ids",
    "*token_type_ids",
    "*num_batches_tracked",
    "*inv_freq",
    "*masked_bias",
    "*.attn.bias",
)
"""Name patterns (``fnmatch``) of buffers that are not weights whatever their dtype:
index buffers, BatchNorm's batch counter, rotary frequencies, causal masks."""

MAX_NPY_HEADER = 10_000
"""Largest ``.npy`` header read (bytes), numpy's own limit."""
MAX_SAFETENSORS_HEADER = 100 * 2**20
"""Largest ``.safetensors`` JSON header read (bytes), the safetensors library's limit."""
BOMB_RATIO = 200
"""Largest inflate ratio (inflated / compressed bytes) of a large deflated member."""
BOMB_MIN_BYTES = 16 * 2**20
"""Members inflating to at most this many bytes are not checked against :data:`BOMB_RATIO`
(a small all-zero buffer compresses a thousandfold and is harmless)."""
_CHUNK = 4 * 2**20


# ---------------------------------------------------------------- dtypes

_FLOATS = ("float16", "bfloat16", "float32", "float64")

#: safetensors dtype code -> (name, numpy dtype of the stored bytes)
_SAFETENSORS_DTYPES = {
    "F64": ("float64", "<f8"),
    "F32": ("float32", "<f4"),
    "F16": ("float16", "<f2"),
    "BF16": ("bfloat16", "<u2"),
    "I64": ("int64", "<i8"),
    "I32": ("int32", "<i4"),
    "I16": ("int16", "<i2"),
    "I8": ("int8", "i1"),
    "U64": ("uint64", "<u8"),
    "U32": ("uint32", "<u4"),
    "U16": ("uint16", "<u2"),
    "U8": ("uint8", "u1"),
    "BOOL": ("bool", "?"),
}
_REFUSED_KINDS = {
    "c": "a complex dtype",
    "M": "a datetime dtype",
    "m": "a timedelta dtype",
    "O": "Python objects, a pickle that is refused and never unpickled",
    "S": "a byte-string dtype",
    "U": "a text dtype",
    "V": "a structured or raw-bytes dtype",
}


def _refused_dtype(dtype: np.dtype) -> str | None:
    """Why ``dtype`` cannot hold weights, or None for a real numeric dtype."""
    if dtype.hasobject:
        return _REFUSED_KINDS["O"]
    return _REFUSED_KINDS.get(dtype.kind)


# ---------------------------------------------------------------- tensors and roles


@dataclasses.dataclass(frozen=True)
class Tensor:
    """One tensor of a model file.

    ``name``; ``dtype``: as stored (``"float32"``, ``"bfloat16"``, ``"int64"``, …);
    ``shape``: as stored; ``role``: one of :data:`ROLES`; ``reason``: why it has that
    role (one phrase, printed beside it).
    """

    name: str
    dtype: str
    shape: tuple[int, ...]
    role: str
    reason: str

    @property
    def size(self) -> int:
        """Number of values."""
        return math.prod(self.shape)

    @property
    def matrix_shape(self) -> tuple[int, int]:
        """A layer's weight matrix (out, in·k1·k2·…); a 2-D tensor's own shape."""
        return self.shape[0], math.prod(self.shape[1:])

    @property
    def kernel(self) -> tuple[int, ...]:
        """A layer's kernel dimensions (k1, k2, …) after (out, in): ``()`` for a matrix."""
        return self.shape[2:]

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form: name, role, reason, dtype, shape; a layer adds its matrix
        shape and kernel."""
        out: dict[str, Any] = {
            "name": self.name,
            "role": self.role,
            "reason": self.reason,
            "dtype": self.dtype,
            "shape": list(self.shape),
        }
        if self.role == "layer":
            out["matrix_shape"] = list(self.matrix_shape)
            out["kernel"] = list(self.kernel)
        return out


def _shape_text(shape: Sequence[int]) -> str:
    return "x".join(map(str, shape)) if shape else "scalar"


def tensor_role(name: str, dtype: str, shape: Sequence[int]) -> tuple[str, str]:
    """``(role, reason)`` of a tensor by its name, dtype name and shape (module
    docstring); selection by the caller's patterns is applied by :func:`open_model`."""
    for pattern in NON_WEIGHT_BUFFERS:
        if fnmatch.fnmatchcase(name, pattern):
            return "skipped", f"non-weight buffer (name matches {pattern!r})"
    if dtype not in _FLOATS:
        return "skipped", f"{dtype} tensor: not a floating-point weight"
    ndim = len(shape)
    if ndim <= 1:
        what = "scalar" if ndim == 0 else "vector"
        return "side", f"{dtype} {what}: stored dense"
    if ndim == 2:
        return "layer", "2-D weight matrix"
    matrix = (shape[0], math.prod(shape[1:]))
    return "layer", (
        f"{ndim}-D kernel {_shape_text(shape)} as a {_shape_text(matrix)} matrix "
        f"(kernel {_shape_text(shape[2:])})"
    )


# ---------------------------------------------------------------- the readers


@dataclasses.dataclass(frozen=True)
class _Entry:
    """A tensor as its file's header declares it: ``raw`` is the numpy dtype of the
    stored bytes (bfloat16: ``<u2``)."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    raw: np.dtype

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.raw.itemsize


class _Reader(abc.ABC):
    """Parses a file's header into entries and reads one entry's values."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def error(self, message: str) -> WeightsError:
        return WeightsError(f"{self.path}: {message}")

    @abc.abstractmethod
    def entries(self) -> list[_Entry]:
        """Every tensor the header declares, checked against the file."""

    @abc.abstractmethod
    def read(self, entry: _Entry) -> np.ndarray:
        """The values of ``entry``, read within its declared size."""


def _read_exact(stream: BinaryIO, out: np.ndarray) -> int:
    """Fill ``out`` from ``stream`` in chunks; return the bytes read (fewer at EOF)."""
    view = memoryview(out).cast("B")
    done = 0
    while done < view.nbytes:
        chunk = stream.read(min(_CHUNK, view.nbytes - done))
        if not chunk:
            break
        view[done : done + len(chunk)] = chunk
        done += len(chunk)
    return done


class _SafetensorsReader(_Reader):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.data_start = 0
        self.offsets: dict[str, tuple[int, int]] = {}

    def entries(self) -> list[_Entry]:
        size = self.path.stat().st_size
        with self.path.open("rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise self.error(
                    f"{size} bytes is too short for a .safetensors file (it starts with an "
                    f"8-byte header length)"
                )
            length = int.from_bytes(head, "little")
            if length > size - 8:
                raise self.error(
                    f"malformed .safetensors header: its length field claims {length} bytes "
                    f"but only {size - 8} follow"
                )
            if length > MAX_SAFETENSORS_HEADER:
                raise self.error(
                    f"malformed .safetensors header: {length} bytes, more than the "
                    f"{MAX_SAFETENSORS_HEADER}-byte limit"
                )
            text = f.read(length)
        self.data_start = 8 + length
        header = self._parse(text)
        entries = [self._entry(name, info) for name, info in header.items()]
        self._check_layout(size - self.data_start)
        return sorted(entries, key=lambda e: self.offsets[e.name][0])

    def _parse(self, text: bytes) -> dict[str, Any]:
        try:
            header = json.loads(text.decode("utf-8"), object_pairs_hook=_unique_keys)
        except _DuplicateKey as exc:
            raise self.error(f"malformed .safetensors header: {exc}") from None
        except (UnicodeDecodeError, ValueError) as exc:
            raise self.error(f"malformed .safetensors header: not JSON ({exc})") from None
        if not isinstance(header, dict):
            raise self.error(
                f"malformed .safetensors header: expected a JSON object, got "
                f"{type(header).__name__}"
            )
        meta = header.pop("__metadata__", {})
        if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
            raise self.error(
                "malformed .safetensors header: __metadata__ must map names to strings"
            )
        return header

    def _entry(self, name: str, info: Any) -> _Entry:
        where = f"malformed .safetensors header: tensor {name!r}"
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise self.error(f"{where} needs exactly the keys dtype, shape, data_offsets")
        code, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if code not in _SAFETENSORS_DTYPES:
            known = ", ".join(_SAFETENSORS_DTYPES)
            raise self.error(
                f"tensor {name!r} has dtype {code!r}, which is not a supported real numeric "
                f"dtype (supported: {known})"
            )
        if not _int_list(shape):
            raise self.error(f"{where}: shape must be a list of integers >= 0, got {shape!r}")
        if not _int_list(offsets) or len(offsets) != 2 or offsets[0] > offsets[1]:
            raise self.error(
                f"{where}: data_offsets must be [begin, end] with 0 <= begin <= end, got "
                f"{offsets!r}"
            )
        dtype, raw = _SAFETENSORS_DTYPES[code]
        entry = _Entry(name, dtype, tuple(shape), np.dtype(raw))
        span = offsets[1] - offsets[0]
        if span != entry.nbytes:
            raise self.error(
                f"{where}: shape {shape} of {dtype} needs {entry.nbytes} bytes but its "
                f"data_offsets span {span}"
            )
        self.offsets[name] = (offsets[0], offsets[1])
        return entry

    def _check_layout(self, data_bytes: int) -> None:
        end = 0
        for name, (begin, stop) in sorted(self.offsets.items(), key=lambda kv: kv[1]):
            if begin < end:
                raise self.error(
                    f"malformed .safetensors header: tensor {name!r} overlaps the tensor "
                    f"before it (data_offsets start at {begin}, previous data ends at {end})"
                )
            if begin > end:
                raise self.error(
                    f"malformed .safetensors header: {begin - end} bytes before tensor "
                    f"{name!r} belong to no tensor"
                )
            end = stop
        if end > data_bytes:
            raise self.error(
                f"the header declares {end} bytes of tensor data but the file holds "
                f"{data_bytes} (truncated, or a header claiming more than the file)"
            )
        if end < data_bytes:
            raise self.error(
                f"{data_bytes - end} bytes after the last tensor's data belong to no tensor"
            )

    def read(self, entry: _Entry) -> np.ndarray:
        begin, _ = self.offsets[entry.name]
        out = np.empty(entry.shape, dtype=entry.raw)
        with self.path.open("rb") as f:
            f.seek(self.data_start + begin)
            got = _read_exact(f, out)
        if got != entry.nbytes:
            raise self.error(f"tensor {entry.name!r}: truncated ({got} of {entry.nbytes} bytes)")
        if entry.dtype == "bfloat16":
            return (out.astype("<u4") << 16).view("<f4")
        return out


def _int_list(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value
    )


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(f"duplicate name {key!r}")
        out[key] = value
    return out


_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError)


class _NpzReader(_Reader):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.members: dict[str, tuple[zipfile.ZipInfo, int, bool]] = {}

    def entries(self) -> list[_Entry]:
        if not zipfile.is_zipfile(self.path):
            with self.path.open("rb") as f:
                starts_like_zip = f.read(4) == b"PK\x03\x04"
            if starts_like_zip:
                raise self.error(
                    "truncated or corrupt .npz file: a zip archive without its central directory"
                )
            raise self.error("not an .npz file (not a zip archive)")
        try:
            with zipfile.ZipFile(self.path) as zf:
                return [self._entry(zf, info) for info in zf.infolist()]
        except WeightsError:
            raise
        except _ZIP_ERRORS as exc:
            raise self.error(f"corrupt .npz file: {exc}") from None

    def _entry(self, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> _Entry:
        member = info.filename
        if not member.endswith(".npy") or info.is_dir():
            raise self.error(f"member {member!r} is not a .npy array (an .npz holds NAME.npy)")
        name = member[: -len(".npy")]
        if name in self.members:
            raise self.error(f"member {member!r} appears twice")
        if info.flag_bits & 0x1:
            raise self.error(f"member {member!r} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise self.error(
                f"member {member!r} uses zip compression method {info.compress_type}; "
                "only stored and deflated members are read"
            )
        with zf.open(info) as f:
            shape, fortran, dtype, header = self._header(member, f)
        why = _refused_dtype(dtype)
        if why is not None:
            raise self.error(
                f"member {member!r} holds {why} (dtype {dtype}); weights need real numbers"
            )
        entry = _Entry(name, dtype.name, tuple(shape), dtype)
        declared = info.file_size - header
        if declared != entry.nbytes:
            raise self.error(
                f"member {member!r}: its .npy header claims shape {tuple(shape)} of {dtype} "
                f"({entry.nbytes} bytes) but the member holds {max(declared, 0)} bytes of data"
            )
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > BOMB_MIN_BYTES and ratio > BOMB_RATIO:
            raise self.error(
                f"member {member!r} inflates {info.compress_size} bytes to {info.file_size} "
                f"(ratio {ratio:.0f}:1, limit {BOMB_RATIO}:1 above {BOMB_MIN_BYTES} bytes): "
                "a zip bomb, refused without inflating it"
            )
        self.members[name] = (info, header, fortran)
        return entry

    def _header(self, member: str, f: BinaryIO) -> tuple[tuple[int, ...], bool, np.dtype, int]:
        """Shape, Fortran order, dtype and header length (bytes) of a .npy member; its
        data is not read."""
        try:
            prefix = f.read(8)
            if len(prefix) < 8 or prefix[:6] != b"\x93NUMPY":
                raise ValueError("it does not start with the .npy magic string")
            major = prefix[6]
            if major not in (1, 2):
                raise ValueError(f"unsupported .npy format version {major}.{prefix[7]}")
            width = 2 if major == 1 else 4
            raw_len = f.read(width)
            length = int.from_bytes(raw_len, "little")
            if len(raw_len) < width or length > MAX_NPY_HEADER:
                raise ValueError(f"header length {length} exceeds {MAX_NPY_HEADER} bytes")
            text = f.read(length)
            read = (
                np.lib.format.read_array_header_1_0
                if major == 1
                else np.lib.format.read_array_header_2_0
            )
            try:
                shape, fortran, dtype = read(io.BytesIO(raw_len + text))
            except Exception as exc:  # numpy's header parser raises many kinds
                raise ValueError(f"cannot parse its header ({exc})") from None
        except ValueError as exc:
            raise self.error(f"member {member!r} is not a valid .npy array: {exc}") from None
        return tuple(shape), bool(fortran), np.dtype(dtype), 8 + width + length

    def read(self, entry: _Entry) -> np.ndarray:
        info, header, fortran = self.members[entry.name]
        out = np.empty(math.prod(entry.shape), dtype=entry.raw)
        try:
            with zipfile.ZipFile(self.path) as zf, zf.open(info) as f:
                f.read(header)
                got = _read_exact(f, out)
        except _ZIP_ERRORS as exc:
            raise self.error(f"member {info.filename!r}: corrupt data: {exc}") from None
        if got != entry.nbytes:
            raise self.error(f"member {info.filename!r}: truncated ({got} of {entry.nbytes} bytes)")
        if fortran:
            out = out.reshape(entry.shape[::-1]).T
        out = out.reshape(entry.shape)
        if not out.dtype.isnative:
            out = out.astype(out.dtype.newbyteorder("="))
        return np.ascontiguousarray(out)


_READERS = {".npz": _NpzReader, ".safetensors": _SafetensorsReader}


# ---------------------------------------------------------------- opening a file


def _check_path(path: Path) -> None:
    if not path.exists():
        raise WeightsError(f"{path}: no such file")
    if path.is_dir():
        raise WeightsError(f"{path}: is a directory, not a weights file")
    if not path.is_file():
        raise WeightsError(f"{path}: not a regular file")
    try:
        with path.open("rb"):
            size = path.stat().st_size
    except PermissionError:
        raise WeightsError(f"{path}: cannot read it (permission denied)") from None
    except OSError as exc:
        raise WeightsError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if size == 0:
        raise WeightsError(f"{path}: empty file (0 bytes)")


def _reader(path: Path) -> _Reader:
    _check_path(path)
    make = _READERS.get(path.suffix.lower())
    if make is None:
        raise WeightsError(
            f"{path}: unknown extension {path.suffix!r}; expected one of {', '.join(_READERS)}"
        )
    return make(path)


def _checked_entries(reader: _Reader, max_bytes: int | None) -> list[_Entry]:
    entries = reader.entries()
    if not entries:
        raise reader.error("holds no tensors")
    for e in entries:
        if 0 in e.shape:
            raise reader.error(
                f"tensor {e.name!r} has shape {_shape_text(e.shape)}: empty tensors hold no weights"
            )
    total = sum(e.nbytes for e in entries)
    if max_bytes is not None and total > max_bytes:
        raise reader.error(
            f"its tensors declare {total} bytes, more than the memory limit of {max_bytes} bytes"
        )
    if max_bytes is None and total > memory_limit():
        raise reader.error(f"its tensors declare {human(total)}, more than {limit_text()}")
    return entries


def _first(bad: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), bad.shape))


_F32 = np.finfo(np.float32)


def _values(reader: _Reader, entry: _Entry) -> np.ndarray:
    """A tensor's values, checked finite; floating ones as float32, refusing float64
    values that float32 turns into ±inf (beyond its range) or into 0 or fewer bits
    (below its normal range): every layer is compared as float32, and such a cast
    would change the weights silently (:class:`PrecisionError`)."""
    values = reader.read(entry)
    if entry.dtype not in _FLOATS:
        return values
    bad = ~np.isfinite(values)
    count = int(np.count_nonzero(bad))
    if count:
        raise reader.error(
            f"tensor {entry.name!r}: {count} non-finite value(s) (NaN/inf); first at index "
            f"{_first(bad)}"
        )
    if entry.dtype == "float64":
        mags = np.abs(values)
        for bad, what in (
            (mags > _F32.max, f"beyond float32's range (|w| > {_F32.max:.3g}) would become ±inf"),
            (
                (mags < _F32.tiny) & (mags > 0),
                f"below float32's normal range (0 < |w| < {_F32.tiny:.3g}) would become 0 or "
                "lose bits",
            ),
        ):
            count = int(np.count_nonzero(bad))
            if count:
                raise PrecisionError(
                    f"{reader.path}: tensor {entry.name!r}: {count} float64 value(s) {what} "
                    f"as float32, the precision layers are compared at (first at index "
                    f"{_first(bad)}); rescale the tensor"
                )
    return values.astype(np.float32, copy=False)


def read_arrays(path: str | Path, max_bytes: int | None = None) -> dict[str, np.ndarray]:
    """Every tensor of a ``.npz`` / ``.safetensors`` file by name, in file order, read and
    checked as the module docstring says (floating tensors as float32)."""
    reader = _reader(Path(path))
    return {e.name: _values(reader, e) for e in _checked_entries(reader, max_bytes)}


@dataclasses.dataclass(frozen=True)
class ModelFile:
    """A checked model file: ``tensors`` in file order with their roles, and the values
    of the non-skipped ones (``arrays``: name -> float32 array as stored; use
    :meth:`matrix` for a layer's weight matrix)."""

    path: Path
    tensors: tuple[Tensor, ...]
    arrays: dict[str, np.ndarray]

    def by_role(self, role: str) -> list[Tensor]:
        """The tensors of one role of :data:`ROLES`, in file order."""
        return [t for t in self.tensors if t.role == role]

    def matrix(self, name: str) -> np.ndarray:
        """A layer's weight matrix, float32 (out, in·k1·k2·…)."""
        tensor = next(t for t in self.tensors if t.name == name)
        return self.arrays[name].reshape(tensor.matrix_shape)


def select_names(
    names: Sequence[str], patterns: Iterable[str] | None, where: str
) -> set[str] | None:
    """The names matched by at least one of ``patterns`` (``fnmatch``; None: no
    selection). A pattern matching no name raises :class:`WeightsError` starting with
    ``where`` (the file or model) and listing a few names."""
    if patterns is None:
        return None
    chosen: set[str] = set()
    for pattern in patterns:
        hits = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
        if not hits:
            sample = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
            raise WeightsError(
                f"{where}: --layers {pattern!r} matches no tensor; its tensors are named "
                f"like {sample}"
            )
        chosen.update(hits)
    return chosen


def open_model(
    path: str | Path, layers: Iterable[str] | None = None, max_bytes: int | None = None
) -> ModelFile:
    """Open a ``.npz`` or ``.safetensors`` model file: check it (module docstring), give
    every tensor its role and read the values of the layer and side tensors.

    ``layers``: name patterns (``fnmatch``, e.g. ``"encoder.layer.0.*"``); when given,
    a tensor no pattern matches is skipped ("not selected by --layers") and a pattern
    matching nothing is an error. ``max_bytes``: limit on the bytes all tensors declare
    (default :func:`memory_limit`). Raises :class:`WeightsError` (one line) for every
    problem, and when no layer is left.
    """
    path = Path(path)
    reader = _reader(path)
    entries = _checked_entries(reader, max_bytes)
    chosen = select_names([e.name for e in entries], layers, str(path))
    tensors = []
    for e in entries:
        if chosen is not None and e.name not in chosen:
            role, reason = "skipped", "not selected by --layers"
        else:
            role, reason = tensor_role(e.name, e.dtype, e.shape)
        tensors.append(Tensor(e.name, e.dtype, e.shape, role, reason))
    if not any(t.role == "layer" for t in tensors):
        found = "; ".join(f"{t.name} ({t.dtype} {_shape_text(t.shape)})" for t in tensors[:4])
        raise WeightsError(
            f"{path}: no weight layer (a floating tensor with 2 or more dimensions) "
            f"{'selected' if chosen is not None else 'found'}; tensors: {found}"
            f"{'; ...' if len(tensors) > 4 else ''}"
        )
    arrays = {
        e.name: _values(reader, e)
        for e, t in zip(entries, tensors, strict=True)
        if t.role != "skipped"
    }
    return ModelFile(path, tuple(tensors), arrays)


def load_weights(path: str | Path, layers: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """The weight matrices (layer tensors) of a model file by name, in file order:
    float32 (out, in·k1·k2·…); see :func:`open_model`."""
    model = open_model(path, layers)
    return {t.name: model.matrix(t.name) for t in model.by_role("layer")}


def save_model(path: str | Path, arrays: dict[str, np.ndarray]) -> Path:
    """Write ``arrays`` (name -> array, C-contiguous) as ``.safetensors`` or ``.npz``
    (uncompressed) by the path's extension; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    contiguous = {k: np.require(v, requirements="C") for k, v in arrays.items()}
    if path.suffix.lower() == ".safetensors":
        from safetensors.numpy import save_file

        save_file(contiguous, str(path))
    elif path.suffix.lower() == ".npz":
        np.savez(path, **contiguous)
    else:
        raise WeightsError(
            f"{path}: unknown extension {path.suffix!r}; expected one of {', '.join(_READERS)}"
        )
    return path
