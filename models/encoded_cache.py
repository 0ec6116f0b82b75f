"""The encoded-layer cache: a layer compressed once, read back by every later run.

Compressing a large layer in a searched format (Viterbi, LBI, XOR) takes seconds to
minutes. :func:`compress_layer` does it once per key and keeps the result on disk, so a
simulation, a sweep stage, a study or a benchmark that needs the same layer again —
or a second stage of the same sweep point — reads it back instead. The key:

* the weights given: SHA-256 of their bytes, with their dtype and shape;
* the format name and its spec (JSON, keys sorted);
* the sparsity (None: no pruning) and the quantize bits (None: the weights as given);
* the code version of :mod:`codesign.models`: SHA-256 of its source files, so a change
  to any encoder starts new entries (the old ones are never read again).

An entry is one ``.npz`` file, ``$CODESIGN_CACHE/encoded/<format>-<key digest>.npz``
(default ``~/.cache/sparse-codesign/encoded``), holding the key itself (checked on
reading), the reference matrix the encoding stands for (as positions and values when
at most a quarter of it is non-zero), every stream of the encoding and its metadata.
Entries are written atomically (:mod:`codesign.files`); one that cannot be read or does
not match its key is dropped, named on stderr (:func:`codesign.files.drop_corrupt`),
and recomputed. A 4096×4096 layer at 90 % takes about 20–40 MB. Nothing is ever
evicted: clear the cache with ``rm -rf "${CODESIGN_CACHE:-$HOME/.cache/sparse-codesign}/encoded"``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from codesign.files import drop_corrupt, replacing
from codesign.models.format import Encoded, Stream
from codesign.models.registry import get_format
from codesign.models.specs import Spec
from codesign.models.workloads import default_cache_dir, quantize_symmetric

SOURCES = Path(__file__).resolve().parent
"""The folder of :mod:`codesign.models`' source files (their digest is the code version)."""

SPARSE_REFERENCE = 0.25
"""Largest non-zero fraction of a reference matrix stored as positions and values."""


@functools.cache
def code_version(sources: Path = SOURCES) -> str:
    """SHA-256 (hex, 16 digits) of the ``*.py`` files of ``sources``, in name order."""
    digest = hashlib.sha256()
    for path in sorted(sources.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def weights_digest(weights: np.ndarray) -> str:
    """SHA-256 (hex) of a matrix's dtype, shape and bytes (row-major)."""
    digest = hashlib.sha256(f"{weights.dtype.str}{weights.shape}".encode())
    digest.update(np.ascontiguousarray(weights).data)
    return digest.hexdigest()


def cache_key(
    weights: np.ndarray,
    format_name: str,
    spec: Spec,
    sparsity: float | None,
    quantize: int | None,
) -> dict[str, Any]:
    """The key of an entry (module docstring) as a plain-JSON mapping."""
    return {
        "weights": weights_digest(weights),
        "format": format_name,
        "spec": spec.to_json(),
        "sparsity": sparsity,
        "quantize": quantize,
        "models": code_version(),
    }


def entry_path(key: dict[str, Any], cache_dir: Path | None = None) -> Path:
    """The file of the entry with ``key`` under ``cache_dir`` (default: the project's
    cache directory, ``$CODESIGN_CACHE``)."""
    folder = (default_cache_dir() if cache_dir is None else cache_dir) / "encoded"
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
    return folder / f"{key['format']}-{digest}.npz"


def compress_layer(
    weights: np.ndarray,
    format_name: str,
    spec: Spec,
    sparsity: float | None,
    quantize: int | None = None,
    *,
    cache: bool = True,
) -> tuple[np.ndarray, Encoded]:
    """``(reference, encoded)`` of ``weights`` (m, n) quantized to ``quantize`` bits
    (when given), pruned to ``sparsity`` (when given) with the structure of format
    ``format_name`` and encoded with ``spec`` — what
    :meth:`~codesign.models.format.Format.compress` returns. With ``cache``, read from the
    entry of its key when there is one, else computed and stored (module docstring)."""
    if not cache:
        return _compress(weights, format_name, spec, sparsity, quantize)
    key = cache_key(weights, format_name, spec, sparsity, quantize)
    path = entry_path(key)
    found = _read(path, key)
    if found is not None:
        return found
    reference, enc = _compress(weights, format_name, spec, sparsity, quantize)
    _write(path, key, reference, enc)
    return reference, enc


def _compress(
    weights: np.ndarray,
    format_name: str,
    spec: Spec,
    sparsity: float | None,
    quantize: int | None,
) -> tuple[np.ndarray, Encoded]:
    if quantize is not None:
        weights = quantize_symmetric(weights, quantize)[0]
    return get_format(format_name).compress(weights, sparsity, spec)


def _write(path: Path, key: dict[str, Any], reference: np.ndarray, enc: Encoded) -> None:
    arrays: dict[str, np.ndarray] = {}
    flat = reference.reshape(-1)
    positions = np.flatnonzero(flat)
    sparse = positions.size <= SPARSE_REFERENCE * flat.size
    if sparse:
        arrays["reference.positions"] = positions
        arrays["reference.values"] = flat[positions]
    else:
        arrays["reference"] = reference
    for name, stream in enc.streams.items():
        arrays[f"stream.{name}"] = stream.data
    meta = {
        "key": key,
        "reference": {"shape": list(reference.shape), "dtype": reference.dtype.str},
        "format": enc.format,
        "spec": enc.spec.to_dict(),
        "shape": list(enc.shape),
        "dtype": np.dtype(enc.dtype).str,
        "streams": {name: [s.width, s.role] for name, s in enc.streams.items()},
        "nnz": enc.nnz,
        "stored_values": enc.stored_values,
        "index_bits": enc.index_bits,
        "value_bits": enc.value_bits,
        "extras": {k: float(v) for k, v in enc.extras.items()},
    }
    arrays["meta"] = np.array(json.dumps(meta))
    with replacing(path) as temp:
        np.savez(temp, **arrays)


def _read(path: Path, key: dict[str, Any]) -> tuple[np.ndarray, Encoded] | None:
    """The entry at ``path``, or None when there is none; an unreadable entry, or one
    whose key or sizes do not match, is dropped (and None returned)."""
    if not path.is_file():
        return None
    try:
        if not zipfile.is_zipfile(path):
            raise ValueError("not a whole .npz (zip) file")
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        meta = json.loads(str(arrays.pop("meta")))
        if meta["key"] != key:
            raise ValueError("its key differs from the file name's")
        return _reference(arrays, meta["reference"]), _encoded(arrays, meta)
    except (OSError, EOFError, zipfile.BadZipFile, ValueError, KeyError, TypeError) as exc:
        drop_corrupt(path, f"{type(exc).__name__}: {exc}")
        return None


def _reference(arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> np.ndarray:
    shape, dtype = tuple(meta["shape"]), np.dtype(meta["dtype"])
    if "reference" in arrays:
        reference = arrays["reference"]
    else:
        reference = np.zeros(int(np.prod(shape)), dtype=dtype)
        reference[arrays["reference.positions"]] = arrays["reference.values"]
    if reference.dtype != dtype:
        raise ValueError(f"reference dtype {reference.dtype}, expected {dtype}")
    return reference.reshape(shape)


def _encoded(arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Encoded:
    streams = {
        name: Stream(arrays[f"stream.{name}"], int(width), role)
        for name, (width, role) in meta["streams"].items()
    }
    enc = Encoded(
        format=meta["format"],
        spec=Spec.from_dict(meta["spec"]),
        shape=(int(meta["shape"][0]), int(meta["shape"][1])),
        dtype=np.dtype(meta["dtype"]),
        streams=streams,
        nnz=int(meta["nnz"]),
        stored_values=int(meta["stored_values"]),
        index_bits=int(meta["index_bits"]),
        value_bits=int(meta["value_bits"]),
        extras=dict(meta["extras"]),
    )
    for role, bits in (("index", enc.index_bits), ("value", enc.value_bits)):
        if enc.stream_bits(role) != bits:
            raise ValueError(f"its {role} streams hold {enc.stream_bits(role)} bits, not {bits}")
    return enc
