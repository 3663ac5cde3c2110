"""The station journal's SQL below the store: the schema by version, its upgrade, the reads."""

from __future__ import annotations

import logging
import sqlite3
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from common.i18n import _
from sync.record import RECORD_FIELDS, record_hash

__all__ = [
    "COLUMNS",
    "INSERT",
    "INSERT_WIRE",
    "SCHEMA_VERSION",
    "STEPS",
    "WIRE_TABLE",
    "check_wire",
    "count",
    "dicts",
    "has_wire",
    "meta",
    "piece_weights",
    "read_wire",
    "records_sql",
    "seal_wire",
    "stream",
    "unseal_wire",
    "upgrade",
]

log = logging.getLogger("station")
_CRC = 4  # bytes of CRC-32 after a cell's record bytes

_NOT_NULL = frozenset({"uuid", "epoch", "station", "kind", "recorded_at", "prev_hash", "hash"})
_SQL_TYPES = {int: "INTEGER", str: "TEXT"}

# Version 1, the text sqlite-utils wrote (the daemon does not import sqlite-utils: with numpy,
# which it loads when present, it cost ~13 MiB of RSS).
_V1 = (
    'CREATE TABLE IF NOT EXISTS "meta" (\n   "k" TEXT PRIMARY KEY,\n   "v" TEXT\n)',
    'CREATE TABLE IF NOT EXISTS "records" (\n'
    + ",\n".join(
        f'   "{name}" {_SQL_TYPES[kind]}'
        + (" PRIMARY KEY" if name == "seq" else " NOT NULL" if name in _NOT_NULL else "")
        for name, kind in RECORD_FIELDS.items()
    )
    + "\n)",
    'CREATE UNIQUE INDEX IF NOT EXISTS "idx_records_uuid"\n    ON "records" ("uuid")',
    'CREATE INDEX IF NOT EXISTS "idx_records_visit"\n    ON "records" ("visit")',
)
# The statements of each version, in order. A new journal runs them all, so a new file and an
# upgraded one have the same schema, to the byte (tests/station/test_store.py).
STEPS: tuple[tuple[str, ...], ...] = (_V1,)
SCHEMA_VERSION = len(STEPS)

# Each record's bytes as a batch carries them (sync.wire), computed once when the record is
# sealed, so the uploader sends them as they are; a row is deleted once the ledger has acked its
# record (the journal keeps its size) and rows older than the table simply have none (they go
# the old way: read, checked, encoded). A table of its own, added to any journal without a new
# schema version: an older version, after a rollback, opens the file and ignores it.
WIRE_TABLE = (
    'CREATE TABLE IF NOT EXISTS "wire" (\n   "seq" INTEGER PRIMARY KEY,\n   "cell" BLOB NOT NULL\n)'
)

# The record's own columns, in table order: what every read of a record selects.
COLUMNS = ", ".join(RECORD_FIELDS)
INSERT = f"INSERT INTO records ({COLUMNS}) VALUES ({', '.join('?' * len(RECORD_FIELDS))})"
INSERT_WIRE = "INSERT INTO wire (seq, cell) VALUES (?, ?)"
# the cell of a record, read as bytes whatever its type (a damaged one may not be a blob)
_CELL = "(SELECT CAST(cell AS BLOB) FROM wire WHERE wire.seq = records.seq)"


def upgrade(conn: sqlite3.Connection, version: int) -> None:
    """Run the steps after ``version`` (0: a new journal) on ``conn``, then add the wire
    table, inside the caller's transaction (SQLite's DDL is transactional: a step that fails
    leaves the file as it was)."""
    for statements in STEPS[version:]:
        for statement in statements:
            conn.execute(statement)
    conn.execute(WIRE_TABLE)


def has_wire(conn: sqlite3.Connection) -> bool:
    """Whether the journal on ``conn`` has the wire table (a reader may open a file that never
    had it: a card too full for it, an older backup)."""
    found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'wire'")
    return found.fetchone() is not None


def dicts(
    conn: sqlite3.Connection, sql: str, params: list[Any] | None = None
) -> list[dict[str, Any]]:
    return list(stream(conn, sql, params or []))


def meta(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT v FROM meta WHERE k = ?", [key]).fetchone()
    return None if row is None else str(row[0])


def records_sql(
    after: int, limit: int | None, kind: str | None, *, wire: bool = False
) -> tuple[str, list[Any]]:
    # a cell read as bytes whatever its type: a damaged one may no longer be a blob
    cell = f", {_CELL} AS wire" if wire else ""
    sql = f"SELECT {COLUMNS}{cell} FROM records WHERE seq > ?"
    params: list[Any] = [after]
    if kind is not None:
        sql += " AND kind = ?"
        params.append(kind)
    sql += " ORDER BY seq"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return sql, params


def count(conn: sqlite3.Connection, kind: str | None) -> int:
    if kind is None:
        return int(conn.execute("SELECT count(*) FROM records").fetchone()[0])
    return int(conn.execute("SELECT count(*) FROM records WHERE kind = ?", [kind]).fetchone()[0])


def piece_weights(conn: sqlite3.Connection) -> dict[str, int]:
    rows = conn.execute("SELECT k, v FROM meta WHERE k LIKE 'piece_weight:%'").fetchall()
    return {k.split(":", 1)[1]: int(v) for k, v in rows}


def stream(conn: sqlite3.Connection, sql: str, params: list[Any]) -> Iterator[dict[str, Any]]:
    cursor = conn.execute(sql, params)
    names = [d[0] for d in cursor.description]
    for row in cursor:
        yield dict(zip(names, row, strict=True))


def seal_wire(data: bytes) -> bytes:
    """A ``wire`` cell: the record's bytes, then their CRC-32. A card can flip a bit of the
    cell and not of the columns: the uploader then sends the record from its columns instead
    of bytes the ledger would refuse, with the whole batch around them, at every resend."""
    return data + zlib.crc32(data).to_bytes(_CRC, "big")


def unseal_wire(cell: object) -> bytes | None:
    """The record's bytes of a ``wire`` cell, or None: no cell, or one that is not whole."""
    if type(cell) is not bytes or len(cell) <= _CRC:
        return None
    data = cell[:-_CRC]
    return data if zlib.crc32(data).to_bytes(_CRC, "big") == cell[-_CRC:] else None


def read_wire(
    conn: sqlite3.Connection, after: int, limit: int
) -> list[tuple[int, bytes | dict[str, Any]]]:
    """Up to ``limit`` records after ``after`` as (seq, wire bytes) on a journal that has the
    column; a row without its bytes (written before the upgrade, or a damaged cell) comes as
    (seq, compact dict), as :meth:`JournalReader.read` gives it, for the old way of sending."""
    cells = conn.execute(
        "SELECT seq, CAST(cell AS BLOB) FROM wire WHERE seq > ? ORDER BY seq LIMIT ?",
        [after, limit],
    ).fetchall()
    # the usual case: a cell for every record after ``after`` (seqs have no gaps), read from
    # the small table alone; else each record with its cell, if any
    if not (
        cells
        and cells[0][0] == after + 1
        and cells[-1][0] == after + len(cells)
        and (len(cells) == limit or cells[-1][0] >= _last(conn))
    ):
        cells = conn.execute(
            f"SELECT seq, {_CELL} FROM records WHERE seq > ? ORDER BY seq LIMIT ?", [after, limit]
        ).fetchall()
    rows = [(seq, unseal_wire(cell)) for seq, cell in cells]
    missing = [seq for seq, data in rows if data is None]
    if not missing:
        return rows  # type: ignore[return-value]  # the usual case: every cell whole
    # those read whole from their columns, in one query (a row never changes once written)
    cursor = conn.execute(
        f"SELECT {COLUMNS}, {_CELL} IS NOT NULL FROM records WHERE seq IN "
        f"({', '.join('?' * len(missing))})",
        missing,
    )
    names = tuple(RECORD_FIELDS)
    whole = {}
    for *row, had_cell in cursor:
        whole[row[0]] = {k: v for k, v in zip(names, row, strict=True) if v is not None}
        if had_cell:
            log.warning(
                _("seq %d: the bytes kept for sending are damaged: sent from its columns"),
                row[0],
            )
    return [(seq, data if data is not None else whole[seq]) for seq, data in rows]


def _last(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT coalesce(max(seq), 0) FROM records").fetchone()[0])


def check_wire(rows: Iterable[dict[str, Any]], problems: list[str]) -> Iterator[dict[str, Any]]:
    """The rows (each with a ``wire`` member, which is taken out) in order; a row whose wire
    bytes are not its record adds that to ``problems`` before it is yielded, so the finding
    comes in seq order with the chain walk's (``station db verify``)."""
    for row in rows:
        wire = row.pop("wire")
        if wire is not None and not _wire_matches(row, wire):
            problems.append(
                _("seq {seq}: the bytes kept for sending are not this record").format(
                    seq=row["seq"]
                )
            )
        yield row


def _wire_matches(row: dict[str, Any], wire: object) -> bool:
    data = unseal_wire(wire)
    try:
        sent = None if data is None else orjson.loads(data)
    except orjson.JSONDecodeError:
        sent = None
    compact = {k: v for k, v in row.items() if v is not None}
    # types too: true == 1 in Python, and the ledger refuses a flag sent as true
    if (
        type(sent) is dict
        and sent == compact
        and all(type(sent[k]) is type(v) for k, v in compact.items())
    ):
        return True
    # columns that no longer match their own hash: the chain walk reports the row as altered,
    # and bytes cannot be judged against them (one finding per row)
    return bool(record_hash(row) != row["hash"])
