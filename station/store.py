"""The station's append-only journal in SQLite: gap-free seq, random epoch, UUIDs, a hash chain.

This module and its SQL (:mod:`station.journal_sql`: the schema, its upgrade, the reads) are
the only ones that know the journal's tables: the loop writes through :class:`Store`,
the uploader, the demo and status commands read through :class:`JournalReader` (a read-only
connection of their own), and transactions that span several appends are the store's own
(:meth:`Store.transaction`).
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson

from common.i18n import _
from sync.record import KINDS, Record, RecordError, genesis_hash, record_hash
from sync.record import RECORD_FIELDS as FIELDS

from . import journal_sql as sql
from .chain import Head, VerifyReport, walk_chain
from .journal_sql import COLUMNS, INSERT, INSERT_WIRE, SCHEMA_VERSION, has_wire, seal_wire

__all__ = [
    "FIELDS",
    "KINDS",
    "JournalInfo",
    "JournalReader",
    "RecordRefused",
    "Store",
    "StoreError",
    "VerifyReport",
    "journal_info",
    "journal_station",
    "record_hash",
]

log = logging.getLogger("station")

CACHE_KIB = 256  # each connection's page cache (PRAGMA cache_size), KiB


class StoreError(Exception):
    """The store cannot be opened or written (disk full, read-only card, corrupt file)."""


class RecordRefused(StoreError, ValueError):
    """A record the wire (and so the ledger) would refuse: never written."""


@dataclass(frozen=True, slots=True)
class JournalInfo:
    """Who a journal file belongs to, read without writing (``station config check``)."""

    station: str
    last_seq: int
    epoch: str


def _connect(path: Path, *, read_only: bool, exclusive: bool = False) -> sqlite3.Connection:
    if read_only:
        conn = sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, timeout=10, check_same_thread=False
        )
    else:
        conn = sqlite3.connect(path, timeout=10, check_same_thread=False)
    # explicit transactions only: each write below says where its transaction starts
    conn.isolation_level = None
    conn.execute("PRAGMA busy_timeout=10000")
    if exclusive:  # before the first access (a pragma below is one): the WAL index in memory
        conn.execute("PRAGMA locking_mode=EXCLUSIVE")
    # a bounded page cache (SQLite's default grows to 2 MiB a connection with the journal: the
    # loop's writes and the uploader's reads touch a few pages each) and no memory map
    try:
        conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        conn.execute("PRAGMA mmap_size=0")
    except sqlite3.OperationalError:
        # these pragmas open the journal: on a full card (no room for the WAL's -shm file) a
        # reader keeps SQLite's default cache, its first read meets the problem where the
        # daemon handles it; a writer's connection is closed, not left holding the file (the
        # daemon opens it again for itself alone: tests/system/test_full_card.py)
        if not read_only:
            conn.close()
            raise
    return conn


class JournalReader:
    """A journal read on connections of its own, opened read-only (``mode=ro``), one per thread
    that reads: WAL lets them read while the loop writes, and the loop's own connection is never
    shared with another thread (the uploader, the demo, a test, a status page). Its read API is
    the store's (``last_seq``, ``records()``, ``verify()``…), always as committed on disk."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _db(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = _connect(self.path, read_only=True)
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: {exc}") from exc
            self._local.conn = conn
            with self._lock:
                self._conns.append(conn)
        return conn

    def meta(self, key: str) -> str | None:
        return sql.meta(self._db(), key)

    @property
    def station(self) -> str:
        return self.meta("station") or ""

    @property
    def epoch(self) -> str:
        return self.meta("epoch") or ""

    @property
    def last_seq(self) -> int:
        return int(self.meta("last_seq") or 0)

    @property
    def synced_through(self) -> int:
        return int(self.meta("synced_through") or 0)

    def read(self, after: int, limit: int) -> list[dict[str, Any]]:
        """Records after ``after``, as compact dicts (empty columns left out, as on the wire)."""
        # one dict per row, straight from the tuples (the uploader's hot path)
        cursor = self._db().execute(*sql.records_sql(after, limit, None))
        names = [d[0] for d in cursor.description]
        return [{k: v for k, v in zip(names, row, strict=True) if v is not None} for row in cursor]

    def read_wire(self, after: int, limit: int) -> list[tuple[int, bytes | dict[str, Any]]]:
        """Records after ``after`` as (seq, the bytes a batch carries for it), the uploader's
        hot path: no row to rebuild, check or encode. A row written before the journal kept
        these bytes (or a journal never upgraded) comes as (seq, compact dict), as
        :meth:`read` gives it, for the uploader to check and encode as before."""
        conn = self._db()
        # a column is never dropped: once seen, not asked again on this thread's connection
        if not getattr(self._local, "wire", False):
            self._local.wire = has_wire(conn)
            if not self._local.wire:
                return [(int(row["seq"]), row) for row in self.read(after, limit)]
        return sql.read_wire(conn, after, limit)

    def records(
        self, after: int = 0, limit: int | None = None, kind: str | None = None
    ) -> list[dict[str, Any]]:
        return sql.dicts(self._db(), *sql.records_sql(after, limit, kind))

    def get(self, seq: int) -> dict[str, Any] | None:
        rows = sql.dicts(self._db(), f"SELECT {COLUMNS} FROM records WHERE seq = ?", [seq])
        return rows[0] if rows else None

    def count(self, kind: str | None = None) -> int:
        return sql.count(self._db(), kind)

    def piece_weights(self) -> dict[str, int]:
        return sql.piece_weights(self._db())

    def verify(self) -> VerifyReport:
        """As :meth:`Store.verify`, on this reader's connection."""
        return _verify(self._db(), self.path)

    def close(self) -> None:
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            conn.close()
        self._local = threading.local()

    def __enter__(self) -> JournalReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _verify(conn: sqlite3.Connection, path: Path) -> VerifyReport:
    """Check the file (SQLite's full ``integrity_check``: tables AND indexes, since a broken
    index silently hides records from lookups) and the chain: seq gap-free, each hash right,
    each record linked to the previous; and that each record's wire bytes, where kept, are
    that record (the uploader sends them as they are)."""
    problems: list[str] = []
    damage: tuple[str, ...] = ()
    try:
        found = [str(r[0]) for r in conn.execute("PRAGMA integrity_check(20)")]
    except sqlite3.DatabaseError as exc:
        found = [str(exc)]
    if found != ["ok"]:
        damage = tuple(found)
        problems += [_("journal file damaged: {detail}").format(detail=d) for d in found]
    n, first, last = 0, None, None
    try:
        head = Head(
            epoch=sql.meta(conn, "epoch") or "",
            anchor_seq=int(sql.meta(conn, "anchor_seq") or 0),
            anchor_hash=sql.meta(conn, "anchor_hash"),
            last_seq=int(sql.meta(conn, "last_seq") or 0),
            last_hash=sql.meta(conn, "last_hash"),
        )
        wire = has_wire(conn)
        rows = sql.stream(conn, *sql.records_sql(0, None, None, wire=wire))
        n, first, last = walk_chain(
            sql.check_wire(rows, problems) if wire else rows, head, problems
        )
    except sqlite3.DatabaseError as exc:
        problems.append(_("journal file unreadable: {detail}").format(detail=exc))
        damage = damage or (str(exc),)
    return VerifyReport(n, first, last, tuple(problems), damage, str(path))


def journal_info(path: Path | str) -> JournalInfo | None:
    """Who the journal at ``path`` belongs to and how far it goes; None when there is no
    journal there (or not a readable one). Never writes, never creates."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        with JournalReader(path) as reader:
            station = reader.meta("station")
            if station is None:
                return None
            return JournalInfo(station, reader.last_seq, reader.epoch)
    except (sqlite3.Error, StoreError):
        return None


def journal_station(path: Path | str) -> str | None:
    """The station id the journal at ``path`` is bound to (None: no journal there yet)."""
    info = journal_info(path)
    return None if info is None else info.station


class Store:
    """One station journal. Open it from one thread; every write is one durable transaction.

    ``append()`` returns only after SQLite's commit (WAL, ``synchronous=FULL``), so the caller
    may then tell staff the record is safe. Every write takes SQLite's write lock first
    (``BEGIN IMMEDIATE``) and reads the journal's head under it, so another process writing
    the same file (a technician's command) waits its turn and stays on the chain.

    ``rebind_empty``: a journal bound to another station id that never held a record (made by
    a first start on the example config) is bound to ``station`` instead of refused.
    ``exclusive``: this process alone may use the file until it closes it (SQLite's exclusive
    locking: no ``-shm`` file is needed, which a full card may not have room to create).
    """

    def __init__(
        self,
        path: Path | str,
        station: str,
        *,
        create: bool = True,
        rebind_empty: bool = False,
        exclusive: bool = False,
    ) -> None:
        self.path = Path(path)
        self.station = station
        self.exclusive = exclusive
        if not create and not self.path.exists():
            raise StoreError(_("{path}: no such journal").format(path=self.path))
        conn: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = _connect(self.path, read_only=False, exclusive=exclusive)
            self._conn = conn
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode=wal")
            conn.execute("PRAGMA synchronous=FULL")
            self._migrate()
            owner = sql.meta(conn, "station")
            if owner != station:
                self._rebind(str(owner), rebind_empty)
        except sqlite3.DatabaseError as exc:
            if conn is not None:
                conn.close()
            raise StoreError(f"{self.path}: {exc}") from exc
        except BaseException:
            if conn is not None:
                conn.close()
            raise
        self.epoch: str = sql.meta(conn, "epoch") or ""
        # read after every event by the loop: kept in memory, written only by mark_synced
        self._synced = int(sql.meta(conn, "synced_through") or 0)
        self._reload_head()

    def _rebind(self, owner: str, allowed: bool) -> None:
        records = int(self._conn.execute("SELECT count(*) FROM records").fetchone()[0])
        empty = records == 0 and int(sql.meta(self._conn, "last_seq") or 0) == 0
        if allowed and empty:
            with self._write():
                self._set_meta("station", self.station)
                # nothing was ever recorded under the old id: a new epoch keeps them apart
                self._set_meta("epoch", uuid.uuid4().hex)
            log.warning(
                _("empty journal %s was made for station %r: now bound to %r"),
                self.path,
                owner,
                self.station,
            )
            return
        if empty:
            raise StoreError(
                _(
                    "{path} was made for station {owner!r}, not {station!r}, and holds no "
                    "record yet: starting the station binds it to {station!r}"
                ).format(path=self.path, owner=owner, station=self.station)
            )
        raise StoreError(
            _(
                "{path} belongs to station {owner!r}, not {station!r}, and holds {n} records: "
                'put back [station] id = "{owner}" in the configuration, or move this journal '
                "aside (sudo mv {path} {path}.old) to start a new one"
            ).format(path=self.path, owner=owner, station=self.station, n=records)
        )

    def _reload_head(self) -> None:
        """Take the in-memory head (last seq and hash) from the file again: after a transaction
        of several appends was rolled back, or another process appended."""
        self._last_seq = int(sql.meta(self._conn, "last_seq") or 0)
        self._last_hash = sql.meta(self._conn, "last_hash") or genesis_hash(self.epoch)

    # -- schema -----------------------------------------------------------------------------
    def _set_meta(self, key: str, value: str) -> None:
        self._conn.execute(
            "INSERT INTO meta(k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
            [key, value],
        )

    def _schema_version(self) -> int:
        has_meta = self._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
        ).fetchone()
        return int(sql.meta(self._conn, "schema_version") or 0) if has_meta else 0

    def _migrate(self) -> None:
        version = self._schema_version()
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: schema {version} is newer than this software ({SCHEMA_VERSION})"
            )
        if version == SCHEMA_VERSION and has_wire(self._conn):
            self._wire = True  # appends keep each record's wire bytes
            return  # opening for reading must not write (nor take the write lock)
        try:
            with self._write():
                # read again under the write lock: another process may have made it meanwhile
                version = self._schema_version()
                sql.upgrade(self._conn, version)
                if version < 1:
                    self._set_meta("epoch", uuid.uuid4().hex)
                    self._set_meta("station", self.station)
                    self._set_meta("created_at", _now())
                    self._set_meta("last_seq", "0")
                    self._set_meta("synced_through", "0")
                self._set_meta("schema_version", str(SCHEMA_VERSION))
            self._wire = True
        except sqlite3.OperationalError as exc:
            if version < 1:
                raise
            # a journal with records that cannot take the step now (a full card, a read-only
            # file): it stays as it was and works as before, its new records without wire
            # bytes (sent the old way); the next open with room upgrades it
            with contextlib.suppress(sqlite3.Error):
                if self._conn.in_transaction:  # a failed COMMIT may leave it open
                    self._conn.execute("ROLLBACK")
            self._wire = has_wire(self._conn)
            log.warning(
                _("journal %s not upgraded this time (%s): it works as before"), self.path, exc
            )

    # -- transactions -----------------------------------------------------------------------
    @contextlib.contextmanager
    def _write(self) -> Iterator[None]:
        """One write transaction, taking the write lock first (``BEGIN IMMEDIATE``): a deferred
        read-then-write transaction fails at once ("database is locked") when another process
        committed in between, whatever the busy timeout. Nested: a savepoint."""
        conn = self._conn
        nested = conn.in_transaction
        conn.execute("SAVEPOINT store" if nested else "BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if conn.in_transaction:  # an error may already have ended the transaction
                if nested:
                    conn.execute("ROLLBACK TO store")
                    conn.execute("RELEASE store")
                else:
                    conn.execute("ROLLBACK")
            raise
        conn.execute("RELEASE store" if nested else "COMMIT")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Store]:
        """Several appends as ONE durable transaction: all of them or none (a manual entry, a
        bulk load). It holds the write lock from the start, so what is read inside it (e.g.
        :meth:`request_seqs`) and the appends see the same journal as any other process.
        Raises :class:`StoreError` with nothing written when the commit fails."""
        try:
            with self._write():
                yield self
        except sqlite3.Error as exc:
            self._rolled_back()
            raise StoreError(str(exc)) from exc
        except BaseException:
            self._rolled_back()
            raise

    def _rolled_back(self) -> None:
        # each append moved the in-memory head; the rollback undid them on disk
        with contextlib.suppress(sqlite3.Error):
            self._reload_head()

    # -- writing ----------------------------------------------------------------------------
    def append(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Append one record and commit it durably (inside :meth:`transaction`: when it
        commits). Returns the stored row. A record the wire would refuse (a field's type,
        length or bound: :class:`sync.record.Record`'s one validation) raises
        :class:`RecordRefused` and nothing is written."""
        content: dict[str, Any] = {
            **fields,
            "uuid": str(uuid.uuid4()),
            "epoch": self.epoch,
            "station": self.station,
            "kind": kind,
            "recorded_at": fields.get("recorded_at") or _now(),
        }
        conn = self._conn
        try:
            with self._write():
                # the head read under the write lock: another process appends after it
                head = dict(
                    conn.execute(
                        "SELECT k, v FROM meta WHERE k IN ('last_seq', 'last_hash')"
                    ).fetchall()
                )
                record = Record.seal(
                    **content,
                    seq=int(head.get("last_seq") or 0) + 1,
                    prev_hash=head.get("last_hash") or genesis_hash(self.epoch),
                )
                row = record.to_row()
                conn.execute(INSERT, list(row.values()))
                if self._wire:  # the bytes a batch carries, computed once (sync.wire)
                    cell = seal_wire(orjson.dumps(record.to_wire()))
                    conn.execute(INSERT_WIRE, [record.seq, cell])
                self._set_meta("last_seq", str(record.seq))
                self._set_meta("last_hash", record.hash)
        except RecordError as exc:
            raise RecordRefused(exc.reason) from exc
        except sqlite3.Error as exc:
            raise StoreError(str(exc)) from exc
        # only after the commit returned: the in-memory head follows the durable one
        self._last_seq = record.seq
        self._last_hash = record.hash
        return row

    def prune(self, before: str, limit: int = 500) -> int:
        """Delete up to ``limit`` of the oldest records that are synced and recorded before
        ``before`` (ISO time), never the last one; the hash of the last deleted record becomes
        the chain's anchor, so ``verify`` still proves everything that is left."""
        try:
            with self._write():
                synced = int(sql.meta(self._conn, "synced_through") or 0)
                last = int(sql.meta(self._conn, "last_seq") or 0)
                rows = self._conn.execute(
                    "SELECT seq, hash, recorded_at FROM records ORDER BY seq LIMIT ?", [limit]
                ).fetchall()
                doomed = []
                for seq, hash_, recorded_at in rows:
                    if seq > synced or seq >= last or recorded_at >= before:
                        break
                    doomed.append((seq, hash_))
                if not doomed:
                    return 0
                self._conn.execute("DELETE FROM records WHERE seq <= ?", [doomed[-1][0]])
                if self._wire:
                    self._conn.execute("DELETE FROM wire WHERE seq <= ?", [doomed[-1][0]])
                self._set_meta("anchor_seq", str(doomed[-1][0]))
                self._set_meta("anchor_hash", doomed[-1][1])
        except sqlite3.Error as exc:
            raise StoreError(str(exc)) from exc
        return len(doomed)

    def forget_sent(self, limit: int = 5000) -> int:
        """Delete the wire bytes of up to ``limit`` acked records; how many went. At quiet
        times (the loop's housekeeping), not at each ack: during a backlog's drain that delete
        would hold the loop, which answers the button."""
        if not self._wire:
            return 0
        try:
            with self._write():
                synced = int(sql.meta(self._conn, "synced_through") or 0)
                gone = self._conn.execute(
                    "DELETE FROM wire WHERE seq IN "
                    "(SELECT seq FROM wire WHERE seq <= ? ORDER BY seq LIMIT ?)",
                    [synced, limit],
                )
                return int(gone.rowcount)
        except sqlite3.Error as exc:
            raise StoreError(str(exc)) from exc

    def checkpoint(self) -> None:
        """Fold the WAL back into the database file (at quiet times: fewer writes to the card)."""
        try:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            raise StoreError(str(exc)) from exc

    def next_session(self) -> int:
        """Count this start of the daemon (the status messages' ``session``)."""
        try:
            with self._write():
                session = int(sql.meta(self._conn, "session") or 0) + 1
                self._set_meta("session", str(session))
        except sqlite3.Error as exc:
            raise StoreError(str(exc)) from exc
        return session

    def session(self) -> int:
        """The last session counted by :meth:`next_session` (0: never)."""
        return int(sql.meta(self._conn, "session") or 0)

    def piece_weights(self) -> dict[str, int]:
        """Average piece weight (mg) learnt per category by sampling."""
        return sql.piece_weights(self._conn)

    def set_piece_weight(self, category: str, mg: int) -> None:
        try:
            with self._write():
                self._set_meta(f"piece_weight:{category}", str(mg))
        except sqlite3.Error as exc:
            raise StoreError(str(exc)) from exc

    def mark_synced(self, through: int) -> None:
        """Move the ``synced_through`` watermark forward (never back)."""
        if through <= self._synced:
            return
        try:
            with self._write():
                # the head from the file: another process may have appended since our last one
                self._last_seq = max(self._last_seq, int(sql.meta(self._conn, "last_seq") or 0))
                new = min(through, self._last_seq)
                if new <= self._synced:
                    return
                self._set_meta("synced_through", str(new))
        except sqlite3.Error as exc:
            raise StoreError(str(exc)) from exc
        self._synced = new  # after the commit, as for the journal's head

    # -- reading ----------------------------------------------------------------------------
    @staticmethod
    def reader(path: Path | str) -> JournalReader:
        """A read-only view of the journal at ``path`` for another thread or process."""
        return JournalReader(path)

    @property
    def last_seq(self) -> int:
        return self._last_seq

    @property
    def synced_through(self) -> int:
        return self._synced

    def get(self, seq: int) -> dict[str, Any] | None:
        rows = sql.dicts(self._conn, f"SELECT {COLUMNS} FROM records WHERE seq = ?", [seq])
        return rows[0] if rows else None

    def records(
        self, after: int = 0, limit: int | None = None, kind: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """Records in seq order, streamed (a journal may be larger than the Pi's memory)."""
        yield from sql.stream(self._conn, *sql.records_sql(after, limit, kind))

    def count(self, kind: str | None = None) -> int:
        return sql.count(self._conn, kind)

    def open_visit(self) -> dict[str, Any] | None:
        """The last ``visit_open`` record not followed by its ``visit_close``, if any."""
        rows = sql.dicts(
            self._conn,
            f"SELECT {COLUMNS} FROM records WHERE kind IN ('visit_open', 'visit_close') "
            "ORDER BY seq DESC LIMIT 1",
        )
        if rows and rows[0]["kind"] == "visit_open":
            return rows[0]
        return None

    def visit_weighings(self, visit: str) -> list[dict[str, Any]]:
        """Weighings of ``visit`` that have not been voided, oldest first."""
        return sql.dicts(
            self._conn,
            f"SELECT {COLUMNS} FROM records r WHERE visit = ? AND kind = 'weighing' AND NOT EXISTS "
            "(SELECT 1 FROM records v WHERE v.visit = r.visit AND v.kind = 'void' "
            "AND v.voids = r.seq) ORDER BY seq",
            [visit],
        )

    def last_of_visit(self, visit: str) -> dict[str, Any] | None:
        rows = sql.dicts(
            self._conn,
            f"SELECT {COLUMNS} FROM records WHERE visit = ? ORDER BY seq DESC LIMIT 1",
            [visit],
        )
        return rows[0] if rows else None

    def request_seqs(self, request_id: str) -> list[int]:
        """The seqs of the manual weighings written for ``request_id`` (oldest first): a retry
        of a request already in the journal must write nothing."""
        rows = self._conn.execute(
            "SELECT seq, data FROM records WHERE kind = 'weighing' AND source = 'manual' "
            "AND instr(data, ?) > 0 ORDER BY seq",
            [request_id],
        ).fetchall()
        seqs = []
        for seq, data in rows:
            with contextlib.suppress(ValueError, AttributeError):
                if json.loads(data).get("request") == request_id:
                    seqs.append(int(seq))
        return seqs

    def summary(self) -> dict[str, Any]:
        last = self.get(self._last_seq) if self._last_seq else None
        return {
            "path": str(self.path),
            "station": self.station,
            "epoch": self.epoch,
            "records": self.count(),
            "weighings": self.count("weighing"),
            "voids": self.count("void"),
            "last_seq": self._last_seq,
            "synced_through": self.synced_through,
            "backlog": self._last_seq - self.synced_through,
            "last_record_at": last["recorded_at"] if last else None,
        }

    # -- proofs -----------------------------------------------------------------------------
    def verify(self) -> VerifyReport:
        """Check the file and the chain (see :func:`_verify`)."""
        report = _verify(self._conn, self.path)
        with contextlib.suppress(sqlite3.Error):
            self._reload_head()
        return report

    def export(self, out: IO[str], fmt: str = "jsonl", after: int = 0) -> int:
        """Write records as JSON lines or CSV; returns how many."""
        n = 0
        if fmt == "csv":
            writer = csv.DictWriter(out, fieldnames=list(FIELDS))
            writer.writeheader()
            for row in self.records(after):
                writer.writerow(row)
                n += 1
        elif fmt == "jsonl":
            for row in self.records(after):
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
                n += 1
        else:
            raise ValueError(f"unknown format {fmt!r}")
        return n

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
