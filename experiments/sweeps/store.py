"""The results store of a sweep: one SQLite file (stdlib ``sqlite3``, WAL mode) per
sweep directory.

A point's row is keyed by :func:`point_key`, the SHA-256 of the canonical JSON of the
point together with the code version (:func:`code_version`, a digest of the project's
Python sources), so editing the code makes old rows stale instead of reusing them.
Only the sweep's parent process writes, one committed transaction per finished point,
so an interrupted sweep loses at most the points that were running.

Tables: ``meta`` (the sweep's configuration and code version), ``points`` (the sweep's
expanded points in order, rewritten by every run) and ``results`` (one row per
computed point key, kept across runs and configurations).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import codesign.models

#: File name of the store inside a sweep directory.
STORE_FILE = "results.sqlite"
#: Directories (relative to the project root) whose ``*.py`` files make the code version.
SOURCE_DIRS = ("models", "hw", "sim", "experiments")
#: Environment variable that, when set, replaces the computed code version.
CODE_VERSION_ENV = "CODESIGN_CODE_VERSION"
#: The folder holding the subpackages of SOURCE_DIRS (the checkout, or the installed package).
SOURCE_ROOT = Path(codesign.models.__file__).resolve().parent.parent

#: Row statuses; a point without a row is pending.
DONE, FAILED = "done", "failed"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS points (
    idx INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    point TEXT NOT NULL
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


class Store:
    """The SQLite store of one sweep directory (created on first use unless
    ``create=False``, which raises :class:`StoreError` when there is none)."""

    def __init__(self, directory: str | Path, create: bool = True):
        self.directory = Path(directory)
        self.path = self.directory / STORE_FILE
        if not create and not self.path.is_file():
            raise StoreError(
                f"no sweep store in {self.directory} (expected {self.path}); "
                f"run `codesign sweep CONFIG --out {self.directory}` first"
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=30.0)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise StoreError(f"{self.path} is not a sweep store: {exc}") from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def set_sweep(
        self, config: dict[str, Any], points: Sequence[tuple[str, dict]], code: str
    ) -> None:
        """Record the sweep being run: its configuration (JSON in the config's own key
        order, which the report follows), code version and the ``(key, point)`` list
        (replacing the previous run's list), in one transaction."""
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)",
                [("config", json.dumps(config, allow_nan=False)), ("code_version", code)],
            )
            self._db.execute("DELETE FROM points")
            self._db.executemany(
                "INSERT INTO points (idx, key, point) VALUES (?, ?, ?)",
                [(i, key, canonical_json(p)) for i, (key, p) in enumerate(points)],
            )

    def meta(self, name: str) -> Any:
        """The ``config`` (dict) or ``code_version`` (str) of the last run, or None."""
        found = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        if found is None:
            return None
        return json.loads(found[0]) if name == "config" else found[0]

    def points(self) -> list[tuple[str, dict[str, Any]]]:
        """The last run's ``(key, point)`` list, in sweep order."""
        rows = self._db.execute("SELECT key, point FROM points ORDER BY idx")
        return [(key, json.loads(text)) for key, text in rows]

    def statuses(self) -> dict[str, str]:
        """key -> status of every stored row."""
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
        with self._db:
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
        cursor = self._db.execute(
            "SELECT key, point, code_version, status, metrics, error_type, error_message, "
            "traceback, started, finished, worker, attempts FROM results"
        )
        wanted = None if keys is None else set(keys)
        out = {}
        for values in cursor:
            if wanted is None or values[0] in wanted:
                key, point, code, status, metrics, *rest = values
                out[key] = Row(key, json.loads(point), code, status, json.loads(metrics), *rest)
        return out
