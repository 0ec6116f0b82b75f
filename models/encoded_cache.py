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

An entry (:mod:`.disk_cache`) is one file, ``$CODESIGN_CACHE/encoded/<format>-<key
digest>.npz`` (default ``~/.cache/sparse-codesign/encoded``), holding the key, the
reference matrix the encoding stands for (as positions and values when at most a quarter
of it is non-zero), every stream of the encoding and its metadata. One that cannot be
read, does not match its key or whose streams do not hold the bits its metadata says is
dropped, named on stderr, and recomputed. A 4096×4096 layer at 90 % takes 20–40 MB.
Nothing is evicted: clear the cache with
``rm -rf "${CODESIGN_CACHE:-$HOME/.cache/sparse-codesign}/encoded"``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from codesign.models.disk_cache import (
    array_digest,
    code_version,
    entry_path,
    read_entry,
    write_entry,
)
from codesign.models.format import Encoded, Stream
from codesign.models.registry import get_format
from codesign.models.specs import Spec
from codesign.models.workloads import quantize_kept

KIND = "encoded"
"""The entries' folder in the cache directory."""

SPARSE_REFERENCE = 0.25
"""Largest non-zero fraction of a reference matrix stored as positions and values."""


def cache_key(
    weights: np.ndarray,
    format_name: str,
    spec: Spec,
    sparsity: float | None,
    quantize: int | None,
) -> dict[str, Any]:
    """The key of an entry (module docstring) as a plain-JSON mapping."""
    return {
        "weights": array_digest(weights),
        "format": format_name,
        "spec": spec.to_json(),
        "sparsity": sparsity,
        "quantize": quantize,
        "models": code_version(),
    }


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
    (when given; refused when that zeroes most kept weights:
    :func:`~codesign.models.workloads.quantize_kept`), pruned to ``sparsity`` (when
    given) with the structure of format ``format_name`` and encoded with ``spec`` — what
    :meth:`~codesign.models.format.Format.compress` returns. With ``cache``, read from the
    entry of its key when there is one, else computed and stored (module docstring)."""
    if not cache:
        return _compress(weights, format_name, spec, sparsity, quantize)
    key = cache_key(weights, format_name, spec, sparsity, quantize)
    path = entry_path(KIND, key, format_name)
    found = read_entry(path, key, _parse)
    if found is not None:
        return found
    reference, enc = _compress(weights, format_name, spec, sparsity, quantize)
    write_entry(path, key, *_arrays(reference, enc))
    return reference, enc


def _compress(
    weights: np.ndarray,
    format_name: str,
    spec: Spec,
    sparsity: float | None,
    quantize: int | None,
) -> tuple[np.ndarray, Encoded]:
    if quantize is not None:
        weights = quantize_kept(weights, quantize, sparsity)
    return get_format(format_name).compress(weights, sparsity, spec)


def _arrays(reference: np.ndarray, enc: Encoded) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays and metadata of an entry holding ``reference`` and ``enc``."""
    arrays: dict[str, np.ndarray] = {}
    flat = reference.reshape(-1)
    positions = np.flatnonzero(flat)
    if positions.size <= SPARSE_REFERENCE * flat.size:
        arrays["reference.positions"] = positions
        arrays["reference.values"] = flat[positions]
    else:
        arrays["reference"] = reference
    for name, stream in enc.streams.items():
        arrays[f"stream.{name}"] = stream.data
    meta = {
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
    return arrays, meta


def _parse(arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> tuple[np.ndarray, Encoded]:
    return _reference(arrays, meta["reference"]), _encoded(arrays, meta)


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
