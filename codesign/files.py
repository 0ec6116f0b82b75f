"""Writing output and cache files whole or not at all.

Every file the project writes (caches under ``$CODESIGN_CACHE``, ``--json`` outputs,
reports, CSV tables, figures, Verilog and its sidecar) goes through this module: the
data is written to a hidden temporary file in the target's folder (``.NAME.TOKEN.tmp``
plus the target's suffix), flushed to disk, then renamed over the target with
``os.replace``, which is atomic on POSIX. A reader, or a run killed mid-write, sees the
old file or the new one, never a truncated one; a write that fails removes its temporary
file and leaves the target as it was.

A target that exists and is not a regular file (``/dev/stdout``, ``/dev/null``, a FIFO)
is written in place: it cannot be replaced, and replacing it would be wrong. A symbolic
link is followed: the file it points to is replaced, the link is kept.

Failures raise :class:`OutputError` (an ``OSError``) whose message names the target and
the reason, e.g. ``cannot write /proc/version: Permission denied``. :func:`check_output`
makes the same checks before any work, so that a long command fails at its start.

This module sits at the root of the ``codesign`` package and imports nothing of it:
``codesign.models``, ``codesign.hw``, ``codesign.sim`` and ``codesign.experiments`` may
all import it. :func:`drop_corrupt` is the one way a cache reports an entry it cannot
read (logger ``codesign``; without logging configured, one line on stderr).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import secrets
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

#: Logger of the notices about dropped cache entries.
LOG = logging.getLogger("codesign")


class OutputError(OSError):
    """A file cannot be written; the message names it and the reason."""


def _reason(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "no space left on the device"
    if exc.errno == errno.EROFS:
        return "read-only file system"
    return exc.strerror or str(exc)


def _file_target(path: str | Path) -> Path:
    """``path`` with a symbolic link resolved (the link itself is kept); raises
    :class:`OutputError` when it is a folder."""
    target = Path(path).resolve() if Path(path).is_symlink() else Path(path)
    if target.is_dir():
        raise OutputError(f"cannot write {path}: it is a directory; give a file name")
    return target


def _in_place(target: Path) -> bool:
    """True when ``target`` exists and is not a regular file or a folder (a device, a
    FIFO, a socket): it is written in place, not replaced."""
    try:
        mode = target.stat().st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def _existing_folder(path: str | Path, target: Path) -> Path:
    """The nearest existing folder of ``target``; raises :class:`OutputError` when that
    ancestor is a file."""
    folder = target.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise OutputError(f"cannot write {path}: {folder} is not a directory")
    return folder


def _prepare(path: str | Path) -> Path:
    """The file to write for ``path``, its folder created; raises :class:`OutputError`
    when ``path`` is a folder or its folder cannot be made."""
    target = _file_target(path)
    _existing_folder(path, target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = _reason(exc)
        raise OutputError(f"cannot write {path}: cannot create its folder: {reason}") from None
    return target


def _temporary(target: Path) -> Path:
    return target.with_name(f".{target.stem}.{secrets.token_hex(4)}.tmp{target.suffix}")


def _create(path: str | Path, temp: Path) -> int:
    """Open a new file ``temp`` for writing (mode 0666 less the umask); raises
    :class:`OutputError` naming ``path`` when its folder takes no new file."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    try:
        return os.open(temp, flags, 0o666)
    except OSError as exc:
        reason = "it takes no new files" if exc.errno == errno.ENOENT else _reason(exc)
        raise OutputError(
            f"cannot write {path}: cannot create a file in {temp.parent}: {reason}"
        ) from None


def _discard(temp: Path) -> None:
    """Remove the temporary file ``temp`` if it is there (and can be removed)."""
    with contextlib.suppress(OSError):
        temp.unlink()


def _sync(temp: Path) -> None:
    fd = os.open(temp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _rename(temp: Path, target: Path) -> None:
    """Give ``temp`` the mode of the file it replaces (if any), then rename it."""
    with contextlib.suppress(FileNotFoundError):
        os.chmod(temp, stat.S_IMODE(target.stat().st_mode))
    os.replace(temp, target)


@contextlib.contextmanager
def _errors_name(path: str | Path) -> Iterator[None]:
    try:
        yield
    except OutputError:
        raise
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {_reason(exc)}") from None


def check_output(path: str | Path) -> Path:
    """Check, before any work, that ``path`` can be written: it is not a folder and a
    file can be created beside it (in its nearest existing folder when its folder does
    not exist yet). Leaves nothing behind; raises :class:`OutputError`."""
    target = _file_target(path)
    if _in_place(target):
        return target
    probe = _temporary(_existing_folder(path, target) / target.name)
    os.close(_create(path, probe))
    probe.unlink()
    return target


@contextlib.contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path (same folder and suffix as ``path``) to write the new file
    to; when the block ends without error it replaces ``path``, otherwise it is removed.
    For writers that take a file name (``savefig``, ``np.savez``, ``csv``)."""
    target = _prepare(path)
    if _in_place(target):
        with _errors_name(path):
            yield target
        return
    temp = _temporary(target)
    try:
        with _errors_name(path):
            yield temp
            _sync(temp)
            _rename(temp, target)
    finally:
        _discard(temp)


def _write_fd(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _encoded(data: str | bytes) -> bytes:
    return data.encode() if isinstance(data, str) else data


def write_files(contents: Mapping[str | Path, str | bytes]) -> list[Path]:
    """Write several files as one: every target is checked (not a folder, folder
    creatable) and every temporary file written and flushed before the first rename, so
    a failure leaves all targets as they were (a rename failing half-way, after those
    checks, is the one exception). ``str`` contents are UTF-8 encoded. Returns the
    paths as given."""
    targets = [(path, _prepare(path), _encoded(data)) for path, data in contents.items()]
    temps: dict[Path, Path] = {}
    try:
        for path, target, data in targets:
            if _in_place(target):
                continue
            with _errors_name(path):
                temps[target] = _temporary(target)
                fd = _create(path, temps[target])
                try:
                    _write_fd(fd, data)
                    os.fsync(fd)
                finally:
                    os.close(fd)
        for path, target, data in targets:
            with _errors_name(path):
                if target in temps:
                    _rename(temps[target], target)
                else:
                    with open(target, "wb") as fh:
                        fh.write(data)
    finally:
        for temp in temps.values():
            _discard(temp)
    return [Path(path) for path in contents]


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; its folder is created."""
    return write_files({path: text})[0]


def write_json(path: str | Path, value: Any, **dumps: Any) -> Path:
    """Write ``value`` as indented JSON (``indent=2`` unless given; other ``json.dumps``
    keywords pass through) and a final newline, atomically."""
    dumps.setdefault("indent", 2)
    return write_text(path, json.dumps(value, **dumps) + "\n")


def drop_corrupt(path: str | Path, reason: str) -> None:
    """Remove the unreadable cache entry ``path`` and say so (one line naming the file
    and ``reason``); the caller then recomputes it."""
    with contextlib.suppress(FileNotFoundError):
        Path(path).unlink()
    LOG.warning("codesign: dropped the corrupt cache file %s (%s); recomputing it", path, reason)
