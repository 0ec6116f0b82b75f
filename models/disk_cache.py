"""Results kept on disk under a key: the folder, the key digests and the entry files.

The project caches what is slow to compute and cheap to read back — trained models,
encoded layers (:mod:`.encoded_cache`), fine-tuned weights
(:meth:`~codesign.models.workloads.DigitsMLP.finetune`) — under
:func:`default_cache_dir`. A cached result is an *entry*: one ``.npz`` file named after
the SHA-256 of its key (a plain-JSON mapping), holding the result's arrays and a JSON
``meta`` record that repeats the key. A key names everything the result depends on:
digests of the input arrays (:func:`array_digest`) and the code version of
:mod:`codesign.models` (:func:`code_version`, a digest of its sources: after any change
to them, old entries are never read again).

Entries are written atomically (:mod:`codesign.files`). :func:`read_entry` returns None
for a missing entry, and drops an entry that is not a whole ``.npz``, whose key differs
or that its reader refuses (one line on stderr naming the file,
:func:`codesign.files.drop_corrupt`), so the caller recomputes it. Nothing is evicted;
removing the folder (or any file in it) only costs the time to recompute.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from codesign.files import drop_corrupt, replacing

SOURCES = Path(__file__).resolve().parent
"""The folder of :mod:`codesign.models`' source files (their digest is the code version)."""

T = TypeVar("T")


def default_cache_dir() -> Path:
    """The project's cache directory: ``$CODESIGN_CACHE`` if set, else
    ``~/.cache/sparse-codesign`` (trained models, synthesis results, encoded layers,
    fine-tuned weights)."""
    return Path(os.environ.get("CODESIGN_CACHE") or Path.home() / ".cache" / "sparse-codesign")


@functools.cache
def code_version(sources: Path = SOURCES) -> str:
    """SHA-256 (hex, 16 digits) of the ``*.py`` files of ``sources``, in name order."""
    digest = hashlib.sha256()
    for path in sorted(sources.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def array_digest(a: np.ndarray) -> str:
    """SHA-256 (hex) of an array's dtype, shape and bytes (row-major)."""
    digest = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    digest.update(np.ascontiguousarray(a).data)
    return digest.hexdigest()


def entry_path(kind: str, key: dict[str, Any], label: str, cache_dir: Path | None = None) -> Path:
    """The file of the entry with ``key``: ``<cache>/<kind>/<label>-<key digest>.npz``
    (``cache_dir`` default: :func:`default_cache_dir`)."""
    folder = (default_cache_dir() if cache_dir is None else cache_dir) / kind
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
    return folder / f"{label}-{digest}.npz"


def write_entry(
    path: Path, key: dict[str, Any], arrays: dict[str, np.ndarray], meta: dict[str, Any]
) -> None:
    """Write the entry ``path``: ``arrays`` and ``meta`` (plain JSON) with ``key``."""
    record = np.array(json.dumps({**meta, "key": key}))
    with replacing(path) as temp:
        np.savez(temp, **arrays, meta=record)


def read_entry(
    path: Path,
    key: dict[str, Any],
    parse: Callable[[dict[str, np.ndarray], dict[str, Any]], T],
) -> T | None:
    """``parse(arrays, meta)`` of the entry ``path``, or None when there is none; an
    entry that is not a whole ``.npz``, whose key differs from ``key``, or that
    ``parse`` refuses (``ValueError``, ``KeyError``, ``TypeError``) is dropped and
    None returned."""
    if not path.is_file():
        return None
    try:
        if not zipfile.is_zipfile(path):
            raise ValueError("not a whole .npz (zip) file")
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        meta = json.loads(str(arrays.pop("meta")))
        if meta.pop("key") != key:
            raise ValueError("its key differs from the file name's")
        return parse(arrays, meta)
    except (OSError, EOFError, zipfile.BadZipFile, ValueError, KeyError, TypeError) as exc:
        drop_corrupt(path, f"{type(exc).__name__}: {exc}")
        return None
