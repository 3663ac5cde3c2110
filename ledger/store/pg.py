"""The ledger on PostgreSQL (psycopg 3): the same rules and tables as SQLite, for a network.

Several ``ledger run`` processes may share one database: each batch is one transaction that
first locks its station's ``heads`` row, so batches of one station take turns while other
stations' go in parallel; a deadlock or serialisation failure is retried from the start. A lost
server is reconnected with bounded retries; each loss and each recovery is one line in the log.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from decimal import Decimal
from functools import lru_cache
from typing import Any

import psycopg
from psycopg import errors

from ..redact import error_line
from .dialect import T
from .models import StoreUnavailable

__all__ = ["PostgresDialect", "translate"]

log = logging.getLogger("ledger")

_RETRIES = 8
_RECONNECTS = 6  # a lost server: tries to reconnect, 0.25 s doubling (about 16 s in all)
_TOKENS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\?|%")


@lru_cache(maxsize=512)
def translate(sql: str) -> str:
    """Portable ``?`` placeholders to psycopg's ``%s`` (and a literal ``%`` to ``%%``);
    quoted strings and names are left alone, except their ``%``."""

    def sub(m: re.Match[str]) -> str:
        token = m.group(0)
        if token == "?":
            return "%s"
        return token.replace("%", "%%")

    return _TOKENS.sub(sub, sql)


def _plain(value: Any) -> Any:
    """``sum()`` of integers is NUMERIC here, INTEGER in SQLite: give the same Python types."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _writer(url: str, **options: Any) -> psycopg.Connection[tuple[Any, ...]]:
    """The writing connection. Its statements are planned for their values each time: psycopg
    prepares a statement after five runs, and a generic plan made while a new table's
    statistics were empty kept scanning every record of a station's epoch for a batch's seq
    range (the clock repair's index on (station, epoch, …) taken for the primary key) until
    an ANALYZE: up to half of one worker's server time at 1M records."""
    conn = psycopg.connect(url, autocommit=True, **options)
    conn.execute("SET plan_cache_mode = force_custom_plan")
    return conn


class PostgresDialect:
    """A PostgreSQL database given by URL (``postgresql://user@host/db``).

    Two connections: one for writes (its own transactions), one in autocommit for reads
    (reports, the dashboard), so a long report never holds the ingest back.
    """

    name = "postgresql"
    for_update = " FOR UPDATE"

    def __init__(self, url: str) -> None:
        self.url = url
        self.reconnect_tries = _RECONNECTS
        self.conn = _writer(url)
        self._lock = threading.RLock()
        self._depth = 0
        # a connection failed and is not back yet: its loss is logged once, its recovery once
        self._lost = False
        self._reader_lost = False
        self._reader: psycopg.Connection[tuple[Any, ...]] | None = None
        self._read_lock = threading.Lock()
        self._types: dict[tuple[str, tuple[str, ...]], list[str]] = {}
        # per lookup table: were most keys new the last time (number)
        self._mostly_new: dict[str, bool] = {}

    def exec(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            cursor = self.conn.execute(translate(sql), tuple(params))
            return cursor.fetchall() if cursor.description is not None else []

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._lock, self.conn.cursor() as cursor:
            cursor.executemany(translate(sql), rows)

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        # COPY: several times faster than INSERTs for a batch of hundreds of records; binary,
        # so no value is formatted as text and parsed again (the columns' types said once)
        copy_sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
        with self._lock:
            types = self._column_types(table, tuple(columns))
            with self.conn.cursor() as cursor, cursor.copy(copy_sql) as copy:
                copy.set_types(types)
                for row in rows:
                    copy.write_row(row)

    def _column_types(self, table: str, columns: tuple[str, ...]) -> list[str]:
        """The server's type of each column (for a binary COPY), asked once per table."""
        key = (table, columns)
        if key not in self._types:
            found: dict[str, str] = dict(
                self.conn.execute(
                    "SELECT attname, atttypid::regtype::text FROM pg_attribute "
                    "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
                    (table,),
                ).fetchall()
            )
            self._types[key] = [found[c] for c in columns]
        return self._types[key]

    def number(
        self, table: str, columns: tuple[str, ...], keys: Sequence[tuple[str, ...]]
    ) -> dict[tuple[Any, ...], int]:
        # the keys as arrays (binary parameters, %b: not written out as quoted text). Each key
        # is looked up once where it can be: a table whose keys came mostly new last time
        # (visits) is inserted into first, the new ids RETURNING; one whose keys were mostly
        # known (persons) is read first and only the missing keys are inserted. Whatever a
        # concurrent worker inserted meanwhile (ON CONFLICT skips it, once committed) is read
        # last, in a statement of its own that sees that commit.
        if not keys:
            return {}
        names = ", ".join(columns)
        unnest = f"unnest({', '.join(['%b::text[]'] * len(columns))})"
        select = f"SELECT n, {names} FROM {table} WHERE ({names}) IN (SELECT * FROM {unnest})"
        insert = (
            f"INSERT INTO {table} ({names}) SELECT * FROM {unnest} "
            f"ON CONFLICT ({names}) DO NOTHING RETURNING n, {names}"
        )
        found: dict[tuple[Any, ...], int] = {}

        def run(sql: str, wanted: Sequence[tuple[str, ...]]) -> list[tuple[str, ...]]:
            arrays = [list(column) for column in zip(*wanted, strict=True)]
            for row in self.conn.execute(sql, arrays).fetchall():
                found[tuple(row[1:])] = int(row[0])
            return [key for key in wanted if key not in found]

        with self._lock:
            if self._mostly_new.get(table, True):
                missing = run(insert, keys)
                self._mostly_new[table] = 2 * len(missing) < len(keys)
                if missing:
                    run(select, missing)
            else:
                missing = run(select, keys)
                self._mostly_new[table] = 2 * len(missing) >= len(keys)
                raced = run(insert, missing) if missing else []
                if raced:
                    run(select, raced)
        return found

    def set_voided(self, station: str, epoch: str, pairs: Sequence[tuple[int, int]]) -> None:
        # one statement per target, all three primary key columns equal: its plan reads that
        # row whatever the statistics say. (One UPDATE joining the pairs' arrays, planned
        # while a new table's statistics were empty, hashed every record of the station's
        # epoch instead: ~17 ms a batch at 1M, half of one worker's server time.)
        first: dict[int, int] = {}
        for target, seq in pairs:  # two voids of one record: the first wins
            if target not in first or seq < first[target]:
                first[target] = seq
        self.many(
            "UPDATE records SET voided_by = ? WHERE station = ? AND epoch = ? AND seq = ? "
            "AND (voided_by IS NULL OR voided_by > ?)",
            [(seq, station, epoch, target, seq) for target, seq in sorted(first.items())],
        )

    def atomic(self, body: Callable[[], T]) -> T:
        with self._lock:
            if self._depth:
                return body()
            for attempt in range(_RETRIES):
                try:
                    self._depth = 1
                    with self.conn.transaction():
                        return body()
                except (errors.DeadlockDetected, errors.SerializationFailure):
                    if attempt == _RETRIES - 1:
                        raise
                    time.sleep(0.01 * 2**attempt)  # the other worker finishes meanwhile
                except psycopg.OperationalError as exc:
                    # the database failed, not the data: reconnect and run the body again (a
                    # commit lost with the link is harmless, ingest is idempotent); past the
                    # bound, StoreUnavailable: the caller acks nothing and quarantines nothing
                    if not (self.conn.closed or self.conn.broken) or attempt == _RETRIES - 1:
                        raise StoreUnavailable(f"database failed: {exc}") from exc
                    self._reconnect(exc)
                finally:
                    self._depth = 0
            raise AssertionError("unreachable")

    def _reconnect(self, cause: Exception) -> None:
        """A new writing connection, with bounded retries and back-off."""
        if not self._lost:
            self._lost = True
            log.warning("PostgreSQL connection lost (writes), reconnecting: %s", error_line(cause))
        with suppress(Exception):
            self.conn.close()
        for attempt in range(self.reconnect_tries):
            time.sleep(0.25 * 2**attempt)
            try:
                self.conn = _writer(self.url, connect_timeout=5)
            except psycopg.OperationalError:
                continue
            self._lost = False
            log.warning("PostgreSQL connection back (writes)")
            return
        raise StoreUnavailable(f"database unreachable: {cause}") from cause

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows of a read-only query (``?`` placeholders) on the reading connection."""
        with self._read_lock:
            try:
                cursor = self._reading().execute(translate(sql), tuple(params))
            except psycopg.OperationalError as exc:
                if self._reader is None or not self._reader.broken:
                    raise
                # the server restarted since the last read: one new connection, one retry
                cursor = self._reading(exc).execute(translate(sql), tuple(params))
            names = [d.name for d in cursor.description or ()]
            return [dict(zip(names, map(_plain, row), strict=True)) for row in cursor.fetchall()]

    def _reading(self, cause: Exception | None = None) -> psycopg.Connection[tuple[Any, ...]]:
        """The reading connection, opened again when it was lost (one log line for the loss,
        one for the recovery; a server still down raises to the reader)."""
        reader = self._reader
        if reader is not None and not (reader.closed or reader.broken):
            return reader
        if reader is not None and not self._reader_lost:
            self._reader_lost = True
            why = f": {error_line(cause)}" if cause is not None else ""
            log.warning("PostgreSQL connection lost (reads), reconnecting%s", why)
        self._reader = psycopg.connect(self.url, autocommit=True)
        if self._reader_lost:
            self._reader_lost = False
            log.warning("PostgreSQL connection back (reads)")
        return self._reader

    def reclaim(self, tables: Sequence[str]) -> bool:
        """The old row versions stay in the table files until a vacuum: run it now."""
        if tables:
            with self._lock:
                self.conn.execute(f"VACUUM {', '.join(tables)}")
        return True

    def analyze(self) -> None:
        with self._lock:
            self.conn.execute("VACUUM ANALYZE records")

    def close(self) -> None:
        with self._read_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None
        with self._lock:
            self.conn.close()
