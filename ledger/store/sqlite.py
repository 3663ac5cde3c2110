"""The ledger in one SQLite file (WAL, ``synchronous=FULL``: an ack follows a durable commit)."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from itertools import chain
from pathlib import Path
from typing import Any

import sqlite_utils

from .dialect import T

__all__ = ["SQLiteDialect"]

_ID_CHUNK = 500  # keys per lookup of visit/person ids (SQLite's bound on parameters is far)
_OPEN_TIMEOUT_S = 30.0  # how long a writer waits for another (the busy timeout)
_MULTI_ROWS = 128  # rows per multi-row INSERT (x 39 columns: under SQLite's 32766 parameters)


class SQLiteDialect:
    """One connection shared by the store's users in this process, taking turns under a lock;
    writes start with ``BEGIN IMMEDIATE``, so two processes on one file wait for each other
    instead of failing."""

    name = "sqlite"
    for_update = ""  # a single writer anyway

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path, timeout=_OPEN_TIMEOUT_S, check_same_thread=False, isolation_level=None
        )
        self.db = sqlite_utils.Database(conn)
        self._enable_wal()
        self.db.execute("PRAGMA synchronous=FULL")
        # an erased code or a purged record is overwritten in the file, not left in free pages
        self.db.execute("PRAGMA secure_delete=ON")
        self._lock = threading.RLock()
        self._depth = 0

    def _enable_wal(self) -> None:
        """WAL mode, once per file. Two processes (or workers) opening a new file together: the
        switch of one makes the other's fail at once with "database is locked" (SQLite does not
        wait on its busy timeout there): try again, for at most the connection's timeout."""
        deadline = time.monotonic() + _OPEN_TIMEOUT_S
        while True:
            try:
                self.db.enable_wal()
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def exec(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self.db.conn.execute(sql, tuple(params)).fetchall()

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._lock:
            self.db.conn.executemany(sql, rows)

    def atomic(self, body: Callable[[], T]) -> T:
        with self._lock:
            if self._depth:
                return body()
            self.db.conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                result = body()
                self.db.conn.execute("COMMIT")
                return result
            except BaseException:
                if self.db.conn.in_transaction:
                    self.db.conn.execute("ROLLBACK")
                raise
            finally:
                self._depth = 0

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows of a read-only query, in turn with the writer."""
        with self._lock:
            cursor = self.db.conn.execute(sql, tuple(params))
            names = [d[0] for d in cursor.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        self._rows(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ", len(columns), rows, "")

    def _rows(self, head: str, width: int, rows: Sequence[Sequence[Any]], tail: str) -> None:
        """Rows inserted by multi-row statements of 2^k rows each: one step (one release of
        the GIL) per statement instead of per row, and a few statement texts, all cached."""
        one = "(" + ", ".join("?" * width) + ")"
        with self._lock:
            execute = self.db.conn.execute
            start, left = 0, len(rows)
            while left:
                n = min(_MULTI_ROWS, 1 << (left.bit_length() - 1))
                params = list(chain.from_iterable(rows[start : start + n]))
                execute(head + ", ".join([one] * n) + tail, params)
                start += n
                left -= n

    def number(
        self, table: str, columns: tuple[str, ...], keys: Sequence[tuple[str, ...]]
    ) -> dict[tuple[Any, ...], int]:
        """The missing keys inserted, then looked up in chunks."""
        if not keys:
            return {}
        names = ", ".join(columns)
        self._rows(
            f"INSERT INTO {table} ({names}) VALUES ",
            len(columns),
            keys,
            f" ON CONFLICT ({names}) DO NOTHING",
        )
        found: dict[tuple[Any, ...], int] = {}
        last = columns[-1]
        for k in range(0, len(keys), _ID_CHUNK):
            chunk = keys[k : k + _ID_CHUNK]
            if len(columns) == 1:
                where, params = f"{last} IN ({', '.join('?' * len(chunk))})", [c[0] for c in chunk]
            else:  # (station, visit): one station per batch, a few per transaction
                parts, params = [], []
                for first in sorted({c[0] for c in chunk}):
                    values = [c[1] for c in chunk if c[0] == first]
                    parts.append(
                        f"({columns[0]} = ? AND {last} IN ({', '.join('?' * len(values))}))"
                    )
                    params += [first, *values]
                where = " OR ".join(parts)
            for row in self.exec(f"SELECT n, {names} FROM {table} WHERE {where}", params):
                found[tuple(row[1:])] = int(row[0])
        return found

    def set_voided(self, station: str, epoch: str, pairs: Sequence[tuple[int, int]]) -> None:
        self.many(
            "UPDATE records SET voided_by = ? WHERE station = ? AND epoch = ? AND seq = ? "
            "AND (voided_by IS NULL OR voided_by > ?)",
            [(seq, station, epoch, target, seq) for target, seq in pairs],
        )

    def reclaim(self, tables: Sequence[str]) -> bool:
        """The WAL still holds the old pages: copy into the file and truncate it now. A reader
        (the dashboard) in the middle of a query makes it busy: False, run it again later."""
        with self._lock:
            # wait for readers a little, not the writer's 30 s: a busy WAL is reported instead
            self.db.conn.execute("PRAGMA busy_timeout = 2000")
            try:
                row = self.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            finally:
                self.db.conn.execute("PRAGMA busy_timeout = 30000")
        return not (row and row[0])

    def analyze(self) -> None:
        self.exec("ANALYZE")

    def close(self) -> None:
        with self._lock:
            self.db.close()
