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
        return self._conn

    def last_seq(self) -> int:
        row = self._db().execute("SELECT v FROM meta WHERE k = 'last_seq'").fetchone()
        return int(row[0]) if row else 0

    def read(self, after: int, limit: int) -> list[dict[str, Any]]:
        """Records after ``after``, as compact dicts (empty columns left out, as on the wire)."""
        cursor = self._db().execute(
            "SELECT * FROM records WHERE seq > ? ORDER BY seq LIMIT ?", [after, limit]
        )
        names = [d[0] for d in cursor.description]
        return [
            {k: v for k, v in zip(names, row, strict=True) if v is not None}
            for row in cursor.fetchall()
        ]

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
