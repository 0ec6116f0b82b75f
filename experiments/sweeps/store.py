"""The results store of a sweep: one SQLite file (stdlib ``sqlite3``, WAL mode) per
sweep directory.

A point's row is keyed by :func:`point_key`, the SHA-256 of the canonical JSON of the
point together with the code version (:func:`code_version`, a digest of the project's
Python sources), so editing the code makes old rows stale instead of reusing them.
Only the sweep's parent process writes, one committed transaction per finished point,
so an interrupted sweep loses at most the points that were running.

Tables: ``results`` (one row per computed point key, kept across runs and shared by
every config run in the directory: a point computed once is never computed again),
``sweeps`` (each config run in the directory, by name, in the order of their first run:
its configuration and code version) and ``sweep_points`` (each config's expanded points
in order, rewritten by its every run). Several configs may share a directory; each
keeps its own point list, so its report shows its own points only.

One sweep at a time writes a store: :meth:`Store.lock` takes an exclusive lock
(``flock`` on ``results.sqlite.lock``, released by the kernel when the holder exits,
even killed) and records who holds it, so that a second sweep is refused with the name
and pid of the running one, or waits.

Every SQLite failure becomes a :class:`StoreError` whose message names the file and
what to do (a folder in its place, another program's database, a read-only file or
folder, a full disk).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import socket
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import codesign.models

#: File name of the store inside a sweep directory.
STORE_FILE = "results.sqlite"
#: File name of the store's lock (beside the store).
LOCK_FILE = "results.sqlite.lock"
#: Directories (relative to the project root) whose ``*.py`` files make the code version.
SOURCE_DIRS = ("models", "hw", "sim", "experiments")
#: Environment variable that, when set, replaces the computed code version.
CODE_VERSION_ENV = "CODESIGN_CODE_VERSION"
#: The folder holding the subpackages of SOURCE_DIRS (the checkout, or the installed package).
SOURCE_ROOT = Path(codesign.models.__file__).resolve().parent.parent

#: Row statuses; a point without a row is pending.
DONE, FAILED = "done", "failed"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sweeps (
    seq INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    config TEXT NOT NULL,
    code_version TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sweep_points (
    sweep INTEGER NOT NULL REFERENCES sweeps (seq),
    idx INTEGER NOT NULL,
    key TEXT NOT NULL,
    point TEXT NOT NULL,
    PRIMARY KEY (sweep, idx)
);
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY,
    point TEXT NOT NULL,
    code_version TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('done', 'failed')),
    metrics TEXT NOT NULL,
    error_type TEXT,
    error_message TEXT,
    traceback TEXT,
    started REAL NOT NULL,
    finished REAL NOT NULL,
    worker TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 1
);
"""
#: The columns of each table of a store, and of the tables of the earlier layout (one
#: config per store: ``meta`` name -> value, ``points``), which is migrated on opening.
_COLUMNS = {
    "sweeps": ["seq", "name", "config", "code_version"],
    "sweep_points": ["sweep", "idx", "key", "point"],
    "results": [
        "key",
        "point",
        "code_version",
        "status",
        "metrics",
        "error_type",
        "error_message",
        "traceback",
        "started",
        "finished",
        "worker",
        "attempts",
    ],
}
_LEGACY_COLUMNS = {"meta": ["name", "value"], "points": ["idx", "key", "point"]}


class StoreError(ValueError):
    """A sweep directory has no usable store."""


def canonical_json(value: Any) -> str:
    """JSON text with sorted keys and no whitespace: equal values give equal text
    whatever the dict ordering (NaN and infinities are rejected)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def code_version(root: Path = SOURCE_ROOT, dirs: Sequence[str] = SOURCE_DIRS) -> str:
    """SHA-256 (hex) over the relative path and bytes of every ``*.py`` file under
    ``root``/``dirs``, in sorted path order. ``$CODESIGN_CODE_VERSION``, when set,
    is returned instead (to pin a store to a version on purpose)."""
    pinned = os.environ.get(CODE_VERSION_ENV)
    if pinned:
        return pinned
    digest = hashlib.sha256()
    files = sorted(p for d in dirs for p in (root / d).rglob("*.py") if p.is_file())
    for path in files:
        rel = path.relative_to(root).as_posix().encode()
        digest.update(len(rel).to_bytes(4, "big") + rel)
        data = path.read_bytes()
        digest.update(len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()


def point_key(point: dict[str, Any], code: str) -> str:
    """The store key of ``point`` under code version ``code``: SHA-256 (hex) of the
    canonical JSON of ``{"code": code, "point": point}``."""
    text = canonical_json({"code": code, "point": point})
    return hashlib.sha256(text.encode()).hexdigest()


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What running one point produced. ``metrics``: name -> number, string or bool;
    ``error``: ``(type, message, traceback)`` of a failure, else None; ``started`` and
    ``finished``: Unix times in seconds; ``worker``: ``host:pid`` that ran it."""

    status: str
    metrics: dict[str, Any]
    error: tuple[str, str, str] | None
    started: float
    finished: float
    worker: str


@dataclasses.dataclass(frozen=True)
class Row:
    """One stored result (see :class:`Outcome`); ``attempts`` counts the runs that
    produced a row for this key (a retried failure increments it)."""

    key: str
    point: dict[str, Any]
    code_version: str
    status: str
    metrics: dict[str, Any]
    error_type: str | None
    error_message: str | None
    traceback: str | None
    started: float
    finished: float
    worker: str
    attempts: int

    @property
    def seconds(self) -> float:
        return self.finished - self.started


def _advice(path: Path, exc: sqlite3.Error) -> str:
    """One line naming the store ``path``, what SQLite reported and what to do."""
    text = str(exc)
    low = text.lower()
    if "readonly" in low:
        return (
            f"{path} is read-only (sqlite: {text}): make it and its folder writable, "
            f"or choose another --out"
        )
    if "disk is full" in low:
        return (
            f"{path}: the disk is full (sqlite: {text}): free some space and rerun the same "
            f"command to resume (committed rows are kept)"
        )
    if "unable to open" in low:
        return (
            f"cannot open {path} (sqlite: {text}): its folder {path.parent} must be a "
            f"writable directory; fix it or choose another --out"
        )
    if "not a database" in low or "malformed" in low:
        return f"{path} is not a sweep store (sqlite: {text}): move it away or choose another --out"
    if "locked" in low:
        return f"{path} is locked by another program (sqlite: {text}): close it and rerun"
    return f"{path}: sqlite: {text}"


class Store:
    """The SQLite store of one sweep directory (created on first use unless
    ``create=False``, which raises :class:`StoreError` when there is none, and opens a
    store it cannot write read-only)."""

    def __init__(self, directory: str | Path, create: bool = True):
        self.directory = Path(directory)
        self.path = self.directory / STORE_FILE
        if self.path.exists() and not self.path.is_file():
            raise StoreError(
                f"{self.path} is a directory, not a sweep store: move it away or choose "
                f"another --out"
            )
        if not create and not self.path.is_file():
            raise StoreError(
                f"no sweep store in {self.directory} (expected {self.path}); "
                f"run `codesign sweep CONFIG --out {self.directory}` first"
            )
        if self.directory.exists() and not self.directory.is_dir():
            raise StoreError(
                f"{self.directory} is a file, not a sweep directory; choose another --out"
            )
        if create:
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"cannot create the sweep directory {self.directory}: "
                    f"{exc.strerror or exc}; choose another --out"
                ) from None
        self._db = self._open(create)

    def _open(self, create: bool) -> sqlite3.Connection:
        """Connect, check the tables and create (or migrate) them; without ``create``, a
        store that cannot be written is opened read-only."""
        modes = ["rwc"] if create else ["rw", "ro"]
        if not create and not os.access(self.directory, os.W_OK):
            modes.append("ro&immutable=1")  # a read-only folder: no sweep can change it
        for mode in modes[:-1]:
            with contextlib.suppress(sqlite3.Error):
                return self._connect(mode)
        try:
            return self._connect(modes[-1])
        except sqlite3.Error as exc:
            raise StoreError(_advice(self.path, exc)) from None

    def _connect(self, mode: str) -> sqlite3.Connection:
        db = sqlite3.connect(f"file:{self.path}?mode={mode}", uri=True, timeout=30.0)
        writable = not mode.startswith("ro")
        try:
            tables = self._tables(db)
            if not writable and ("meta" in tables or "sweeps" not in tables):
                raise StoreError(
                    f"{self.path} was written by an earlier version of codesign and is "
                    f"read-only: make it writable once (it is then upgraded) and rerun"
                )
            if writable:
                db.execute("PRAGMA journal_mode=WAL")
                with db:
                    db.executescript(_SCHEMA)
                    if "meta" in tables:
                        self._migrate(db)
        except BaseException:
            db.close()
            raise
        return db

    def _tables(self, db: sqlite3.Connection) -> set[str]:
        """The store's tables; raises :class:`StoreError` when one of them is not a
        sweep store's (another program's database)."""
        names = {n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        for table, columns in {**_COLUMNS, **_LEGACY_COLUMNS}.items():
            if table in names:
                found = [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
                if found != columns:
                    raise StoreError(
                        f"{self.path} is not a sweep store: its table `{table}` has the "
                        f"columns ({', '.join(found)}), not a sweep's; it belongs to another "
                        f"program: move it away or choose another --out"
                    )
        return names

    @staticmethod
    def _migrate(db: sqlite3.Connection) -> None:
        """Move the one config of the earlier layout (tables ``meta``, ``points``) into
        ``sweeps`` and ``sweep_points``."""
        meta = dict(db.execute("SELECT name, value FROM meta"))
        if "config" in meta:
            config = json.loads(meta["config"])
            seq = db.execute(
                "INSERT INTO sweeps (name, config, code_version) VALUES (?, ?, ?)",
                (config.get("name", "sweep"), meta["config"], meta.get("code_version", "")),
            ).lastrowid
            db.execute(
                "INSERT INTO sweep_points (sweep, idx, key, point) "
                "SELECT ?, idx, key, point FROM points",
                (seq,),
            )
        db.execute("DROP TABLE meta")
        db.execute("DROP TABLE IF EXISTS points")

    @contextlib.contextmanager
    def _sqlite(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise StoreError(_advice(self.path, exc)) from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def lock(
        self, sweep: str, wait: bool = False, waiting: Callable[[str], None] | None = None
    ) -> Iterator[None]:
        """Hold the store's write lock while the sweep ``sweep`` runs. When another
        process holds it: raise :class:`StoreError` naming that sweep and its pid, or,
        with ``wait``, call ``waiting`` with its description and block until it ends."""
        path = self.directory / LOCK_FILE
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except OSError as exc:
            raise StoreError(
                f"cannot create the lock file {path}: {exc.strerror or exc}; make "
                f"{self.directory} writable or choose another --out"
            ) from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder(fd)
                if not wait:
                    raise StoreError(
                        f"{self.path} is in use by {holder}: wait for it to finish or stop "
                        f"it, rerun with --wait, or choose another --out"
                    ) from None
                if waiting is not None:
                    waiting(holder)
                fcntl.flock(fd, fcntl.LOCK_EX)
            info = {"sweep": sweep, "pid": os.getpid(), "host": socket.gethostname()}
            text = json.dumps({**info, "since": time.strftime("%Y-%m-%d %H:%M:%S")})
            os.ftruncate(fd, 0)
            os.pwrite(fd, text.encode(), 0)
            try:
                yield
            finally:
                os.ftruncate(fd, 0)
        finally:
            os.close(fd)

    def set_sweep(
        self, config: dict[str, Any], points: Sequence[tuple[str, dict]], code: str
    ) -> None:
        """Record the run of the config ``config["name"]``: its configuration (JSON in
        the config's own key order, which the report follows), code version and the
        ``(key, point)`` list (replacing the list of its previous run; other configs'
        lists stay), in one transaction."""
        text = json.dumps(config, allow_nan=False)
        with self._sqlite(), self._db:
            self._db.execute(
                """INSERT INTO sweeps (name, config, code_version) VALUES (?, ?, ?)
                   ON CONFLICT (name) DO UPDATE SET
                       config = excluded.config, code_version = excluded.code_version""",
                (config["name"], text, code),
            )
            seq = self._seq(config["name"])
            self._db.execute("DELETE FROM sweep_points WHERE sweep = ?", (seq,))
            self._db.executemany(
                "INSERT INTO sweep_points (sweep, idx, key, point) VALUES (?, ?, ?, ?)",
                [(seq, i, key, canonical_json(p)) for i, (key, p) in enumerate(points)],
            )

    def sweeps(self) -> list[str]:
        """The names of the configs run in this directory, in the order of their first
        run (the first is the directory's own sweep)."""
        with self._sqlite():
            return [n for (n,) in self._db.execute("SELECT name FROM sweeps ORDER BY seq")]

    def _seq(self, sweep: str | None) -> int | None:
        query = "SELECT seq FROM sweeps " + (
            "ORDER BY seq LIMIT 1" if sweep is None else "WHERE name = ?"
        )
        with self._sqlite():
            found = self._db.execute(query, () if sweep is None else (sweep,)).fetchone()
        return None if found is None else found[0]

    def meta(self, name: str, sweep: str | None = None) -> Any:
        """The ``config`` (dict) or ``code_version`` (str) of the last run of the config
        ``sweep`` (default: the directory's first), or None."""
        column = {"config": "config", "code_version": "code_version"}[name]
        with self._sqlite():
            found = self._db.execute(
                f"SELECT {column} FROM sweeps WHERE seq = ?", (self._seq(sweep),)
            ).fetchone()
        if found is None:
            return None
        return json.loads(found[0]) if name == "config" else found[0]

    def points(self, sweep: str | None = None) -> list[tuple[str, dict[str, Any]]]:
        """The ``(key, point)`` list of the last run of the config ``sweep`` (default:
        the directory's first), in sweep order."""
        with self._sqlite():
            rows = self._db.execute(
                "SELECT key, point FROM sweep_points WHERE sweep = ? ORDER BY idx",
                (self._seq(sweep),),
            ).fetchall()
        return [(key, json.loads(text)) for key, text in rows]

    def statuses(self) -> dict[str, str]:
        """key -> status of every stored row."""
        with self._sqlite():
            return dict(self._db.execute("SELECT key, status FROM results"))

    def record(self, key: str, point: dict[str, Any], code: str, outcome: Outcome) -> None:
        """Store ``outcome`` for ``key`` and commit. A failed row is replaced (attempts
        + 1); a done row is never overwritten."""
        error = outcome.error or (None, None, None)
        values = (
            key,
            canonical_json(point),
            code,
            outcome.status,
            json.dumps(outcome.metrics),
            *error,
            outcome.started,
            outcome.finished,
            outcome.worker,
        )
        with self._sqlite(), self._db:
            self._db.execute(
                """INSERT INTO results (key, point, code_version, status, metrics, error_type,
                       error_message, traceback, started, finished, worker)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (key) DO UPDATE SET
                       status = excluded.status, metrics = excluded.metrics,
                       error_type = excluded.error_type,
                       error_message = excluded.error_message,
                       traceback = excluded.traceback, started = excluded.started,
                       finished = excluded.finished, worker = excluded.worker,
                       attempts = results.attempts + 1
                   WHERE results.status != 'done'""",
                values,
            )

    def rows(self, keys: Iterable[str] | None = None) -> dict[str, Row]:
        """key -> :class:`Row`, for ``keys`` (those stored) or every row."""
        wanted = None if keys is None else set(keys)
        out = {}
        with self._sqlite():
            cursor = self._db.execute(
                "SELECT key, point, code_version, status, metrics, error_type, error_message, "
                "traceback, started, finished, worker, attempts FROM results"
            )
            for values in cursor:
                if wanted is None or values[0] in wanted:
                    key, point, code, status, metrics, *rest = values
                    out[key] = Row(key, json.loads(point), code, status, json.loads(metrics), *rest)
        return out


def _holder(fd: int) -> str:
    """Who holds the lock file ``fd``: ``sweep NAME (pid P on HOST, since T)``."""
    try:
        info = json.loads(os.pread(fd, 4096, 0))
        return f"sweep {info['sweep']} (pid {info['pid']} on {info['host']}, since {info['since']})"
    except (ValueError, KeyError, TypeError):
        return "another sweep (starting)"
