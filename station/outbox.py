"""The uploader's read-only view of the station journal, on its own SQLite connection."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

__all__ = ["JournalOutbox"]


class JournalOutbox:
    """Implements :class:`sync.uploader.Outbox`. WAL lets it read while the loop writes; it
    never writes (``mode=ro``), so the loop thread stays the store's only writer."""

    def __init__(self, path: Path, station: str, epoch: str) -> None:
        self.station = station
        self.epoch = epoch
        self._path = path
        self._conn: sqlite3.Connection | None = None

    def _db(self) -> sqlite3.Connection:
        # opened lazily on the uploader's own thread
        if self._conn is None:
            self._conn = sqlite3.connect(
                f"file:{self._path}?mode=ro", uri=True, timeout=10, check_same_thread=False
            )
            self._conn.row_factory = sqlite3.Row
        return self._conn

    def last_seq(self) -> int:
        row = self._db().execute("SELECT v FROM meta WHERE k = 'last_seq'").fetchone()
        return int(row[0]) if row else 0

    def read(self, after: int, limit: int) -> list[dict[str, Any]]:
        rows = self._db().execute(
            "SELECT * FROM records WHERE seq > ? ORDER BY seq LIMIT ?", [after, limit]
        )
        return [dict(r) for r in rows]

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
