"""Persistent key → JSON cache in SQLite, e.g. reasoning paid for once per (intervention, label)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from pathlib import Path
from types import TracebackType
from typing import Any


def cache_key(*parts: object) -> str:
    """A stable key for a tuple of JSON-serialisable parts."""
    payload = json.dumps(parts, ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class ReasoningCache:
    """A JSON-object cache in one SQLite file (WAL mode), safe to share between threads; a
    damaged file raises :class:`~clinsynth.runtime.runfiles.RunFileError` naming it."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30.0)
        try:
            with self._lock, self._db:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS cache (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
                )
        except sqlite3.DatabaseError as exc:
            self._db.close()
            if isinstance(exc, sqlite3.OperationalError):  # locked, I/O: not damage
                raise
            from clinsynth.runtime.runfiles import RunFileError, recovery_hint

            raise RunFileError(
                f"{self.path} is not a readable cache database ({exc}); {recovery_hint(self.path)}"
            ) from exc

    def get(self, key: str) -> dict[str, Any] | None:
        """The value stored under ``key``, or None."""
        with self._lock:
            row = self._db.execute("SELECT value FROM cache WHERE key = ?", (key,)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def put(self, key: str, value: dict[str, Any]) -> None:
        """Store ``value`` (a JSON-serialisable dict) under ``key``, replacing any old value."""
        payload = json.dumps(value, ensure_ascii=False)
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO cache (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, payload),
            )

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM cache").fetchone()[0])

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> ReasoningCache:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
