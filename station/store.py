"""The station's append-only journal in SQLite: gap-free seq, random epoch, UUIDs, a hash chain."""

from __future__ import annotations

import csv
import json
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import sqlite_utils

from sync.wire import KINDS, MAX_MG, genesis_hash, record_hash
from sync.wire import RECORD_FIELDS as FIELDS

__all__ = [
    "FIELDS",
    "KINDS",
    "Store",
    "StoreError",
    "VerifyReport",
    "record_hash",
]

_CONTENT = [f for f in FIELDS if f != "hash"]
_SCHEMA_VERSION = 1
_INSERT = f"INSERT INTO records ({', '.join(FIELDS)}) VALUES ({', '.join('?' * len(FIELDS))})"


class StoreError(Exception):
    """The store cannot be opened or written (disk full, read-only card, corrupt file)."""


@dataclass(frozen=True, slots=True)
class VerifyReport:
    records: int
    first_seq: int | None
    last_seq: int | None
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


class Store:
    """One station journal. Open it from one thread; every write is one durable transaction.

    ``append()`` returns only after SQLite's commit (WAL, ``synchronous=FULL``), so the caller
    may then tell staff the record is safe. It reads the journal's head under SQLite's write
    lock, so another process appending to the same file (a technician's command) stays on the
    chain; the daemon still routes its own entries through its loop (``station.control``).
    """

    def __init__(self, path: Path | str, station: str, *, create: bool = True) -> None:
        self.path = Path(path)
        self.station = station
        if not create and not self.path.exists():
            raise StoreError(f"{self.path}: no such store")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=10, check_same_thread=False)
            self.db = sqlite_utils.Database(conn)
            self.db.enable_wal()
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA busy_timeout=10000")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            conn_ = locals().get("conn")
            if conn_ is not None:
                conn_.close()
            raise StoreError(f"{self.path}: {exc}") from exc
        owner = self._meta("station")
        if owner != station:
            self.db.close()
            raise StoreError(
                f"{self.path} belongs to station {owner!r}, not {station!r}: "
                "fix [station] id, or move this store aside to start a new one"
            )
        self.epoch: str = self._meta("epoch") or ""
        # read after every event by the loop: kept in memory, written only by mark_synced
        self._synced = int(self._meta("synced_through") or 0)
        self.reload_head()

    def reload_head(self) -> None:
        """Take the in-memory head (last seq and hash) from the file again: after a caller's
        transaction of several appends was rolled back, or another process appended."""
        self._last_seq = int(self._meta("last_seq") or 0)
        self._last_hash = self._meta("last_hash") or genesis_hash(self.epoch)

    # -- schema -----------------------------------------------------------------------------
    def _meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT v FROM meta WHERE k = ?", [key]).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str) -> None:
        self.db.execute(
            "INSERT INTO meta(k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
            [key, value],
        )

    def _migrate(self) -> None:
        with self.db.atomic():
            self.db.table("meta").create({"k": str, "v": str}, pk="k", if_not_exists=True)
            version = int(self._meta("schema_version") or 0)
            if version < 1:
                records = self.db.table("records")
                records.create(
                    FIELDS,
                    pk="seq",
                    not_null={
                        "uuid",
                        "epoch",
                        "station",
                        "kind",
                        "recorded_at",
                        "prev_hash",
                        "hash",
                    },
                )
                records.create_index(["uuid"], unique=True)
                records.create_index(["visit"])
                self._set_meta("epoch", uuid.uuid4().hex)
                self._set_meta("station", self.station)
                self._set_meta("created_at", _now())
                self._set_meta("last_seq", "0")
                self._set_meta("synced_through", "0")
            if version > _SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path}: schema {version} is newer than this software ({_SCHEMA_VERSION})"
                )
            if version != _SCHEMA_VERSION:  # opening for reading must not write
                self._set_meta("schema_version", str(_SCHEMA_VERSION))

    # -- writing ----------------------------------------------------------------------------
    def append(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Append one record and commit it durably. Returns the stored row."""
        if kind not in KINDS:
            raise ValueError(f"unknown record kind {kind!r}")
        unknown = set(fields) - set(_CONTENT)
        if unknown:
            raise ValueError(f"unknown record fields: {sorted(unknown)}")
        row: dict[str, Any] = dict.fromkeys(_CONTENT)
        row.update(fields)
        row.update(
            seq=self._last_seq + 1,
            uuid=str(uuid.uuid4()),
            epoch=self.epoch,
            station=self.station,
            kind=kind,
            recorded_at=fields.get("recorded_at") or _now(),
            prev_hash=self._last_hash,
        )
        for name, value in fields.items():
            # what the wire (and so the ledger) will accept, checked before the record exists
            if value is None or name == "data":
                continue
            expected = FIELDS[name]
            is_flag = isinstance(value, bool) and name in (
                "stable",
                "clock_synced",
                "pieces_computed",
            )
            if (
                expected is int
                and not is_flag
                and (isinstance(value, bool) or not isinstance(value, int))
            ):
                raise ValueError(f"{name} must be an integer, not {value!r}")
            if expected is str and not isinstance(value, str):
                raise ValueError(f"{name} must be text, not {value!r}")
            if isinstance(value, str) and len(value) > 4096:
                raise StoreError(f"{name} is too long ({len(value)} characters)")
        for mass in ("gross_mg", "tare_mg", "net_mg", "unit_weight_mg"):
            if row[mass] is not None and not -MAX_MG <= row[mass] <= MAX_MG:
                raise StoreError(f"{mass} {row[mass]} out of range")
        for flag in ("stable", "clock_synced", "pieces_computed"):
            if isinstance(row[flag], bool):
                row[flag] = int(row[flag])
        if isinstance(row["data"], dict):
            row["data"] = json.dumps(row["data"], sort_keys=True, ensure_ascii=False)
        conn = self.db.conn
        # inside a caller's transaction (a bulk load, `with store.db.atomic()`): a savepoint,
        # durable when the caller commits
        nested = conn.in_transaction
        try:
            # The head is read inside a write-locked transaction, so a second process (the
            # technician's CLI while the daemon runs) appends after it, never beside it.
            conn.execute("SAVEPOINT append" if nested else "BEGIN IMMEDIATE")
            try:
                head = dict(
                    conn.execute(
                        "SELECT k, v FROM meta WHERE k IN ('last_seq', 'last_hash')"
                    ).fetchall()
                )
                row["seq"] = int(head.get("last_seq") or 0) + 1
                row["prev_hash"] = head.get("last_hash") or genesis_hash(self.epoch)
                row["hash"] = record_hash(row)
                conn.execute(_INSERT, [row[c] for c in FIELDS])
                self._set_meta("last_seq", str(row["seq"]))
                self._set_meta("last_hash", row["hash"])
                conn.execute("RELEASE append" if nested else "COMMIT")
            except BaseException:
                if nested:
                    conn.execute("ROLLBACK TO append")
                    conn.execute("RELEASE append")
                elif conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StoreError(str(exc)) from exc
        # only after the commit returned: the in-memory head follows the durable one
        self._last_seq = row["seq"]
        self._last_hash = row["hash"]
        return row

    def prune(self, before: str, limit: int = 500) -> int:
        """Delete up to ``limit`` of the oldest records that are synced and recorded before
        ``before`` (ISO time), never the last one; the hash of the last deleted record becomes
        the chain's anchor, so ``verify`` still proves everything that is left."""
        synced = self.synced_through
        with self.db.atomic():
            rows = self.db.execute(
                "SELECT seq, hash, recorded_at FROM records ORDER BY seq LIMIT ?", [limit]
            ).fetchall()
            doomed = []
            for seq, hash_, recorded_at in rows:
                if seq > synced or seq >= self._last_seq or recorded_at >= before:
                    break
                doomed.append((seq, hash_))
            if not doomed:
                return 0
            self.db.execute("DELETE FROM records WHERE seq <= ?", [doomed[-1][0]])
            self._set_meta("anchor_seq", str(doomed[-1][0]))
            self._set_meta("anchor_hash", doomed[-1][1])
        return len(doomed)

    def checkpoint(self) -> None:
        """Fold the WAL back into the database file (at quiet times: fewer writes to the card)."""
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def next_session(self) -> int:
        """Count this start of the daemon (the status messages' ``session``)."""
        with self.db.atomic():
            session = int(self._meta("session") or 0) + 1
            self._set_meta("session", str(session))
        return session

    def piece_weights(self) -> dict[str, int]:
        """Average piece weight (mg) learnt per category by sampling."""
        rows = self.db.execute("SELECT k, v FROM meta WHERE k LIKE 'piece_weight:%'").fetchall()
        return {k.split(":", 1)[1]: int(v) for k, v in rows}

    def set_piece_weight(self, category: str, mg: int) -> None:
        with self.db.atomic():
            self._set_meta(f"piece_weight:{category}", str(mg))

    def mark_synced(self, through: int) -> None:
        """Move the ``synced_through`` watermark forward (never back)."""
        if through <= self._synced:
            return
        with self.db.atomic():
            # the head from the file: another process may have appended since our last append
            self._last_seq = max(self._last_seq, int(self._meta("last_seq") or 0))
            new = min(through, self._last_seq)
            if new <= self._synced:
                return
            self._set_meta("synced_through", str(new))
        self._synced = new  # after the commit, as for the journal's head

    # -- reading ----------------------------------------------------------------------------
    @property
    def last_seq(self) -> int:
        return self._last_seq

    @property
    def synced_through(self) -> int:
        return self._synced

    def get(self, seq: int) -> dict[str, Any] | None:
        rows = list(self.db.query("SELECT * FROM records WHERE seq = ?", [seq]))
        return rows[0] if rows else None

    def records(self, after: int = 0, limit: int | None = None) -> Iterator[dict[str, Any]]:
        sql = "SELECT * FROM records WHERE seq > ? ORDER BY seq"
        params: list[Any] = [after]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        yield from self.db.query(sql, params)

    def count(self, kind: str | None = None) -> int:
        if kind is None:
            return int(self.db.execute("SELECT count(*) FROM records").fetchone()[0])
        return int(
            self.db.execute("SELECT count(*) FROM records WHERE kind = ?", [kind]).fetchone()[0]
        )

    def open_visit(self) -> dict[str, Any] | None:
        """The last ``visit_open`` record not followed by its ``visit_close``, if any."""
        rows = list(
            self.db.query(
                "SELECT * FROM records WHERE kind IN ('visit_open', 'visit_close') "
                "ORDER BY seq DESC LIMIT 1"
            )
        )
        if rows and rows[0]["kind"] == "visit_open":
            return rows[0]
        return None

    def visit_weighings(self, visit: str) -> list[dict[str, Any]]:
        """Weighings of ``visit`` that have not been voided, oldest first."""
        return list(
            self.db.query(
                "SELECT * FROM records r WHERE visit = ? AND kind = 'weighing' AND NOT EXISTS "
                "(SELECT 1 FROM records v WHERE v.visit = r.visit AND v.kind = 'void' "
                "AND v.voids = r.seq) ORDER BY seq",
                [visit],
            )
        )

    def last_of_visit(self, visit: str) -> dict[str, Any] | None:
        rows = list(
            self.db.query(
                "SELECT * FROM records WHERE visit = ? ORDER BY seq DESC LIMIT 1", [visit]
            )
        )
        return rows[0] if rows else None

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
        """Check the chain: seq gap-free, each hash right, each record linked to the previous."""
        problems: list[str] = []
        quick = self.db.execute("PRAGMA quick_check").fetchone()[0]
        if quick != "ok":
            problems.append(f"sqlite quick_check: {quick}")
        anchor_seq = int(self._meta("anchor_seq") or 0)
        expected_prev = self._meta("anchor_hash") or genesis_hash(self.epoch)
        expected_seq: int | None = None
        first: int | None = None
        last: int | None = None
        n = 0
        for row in self.db.query("SELECT * FROM records ORDER BY seq"):
            n += 1
            seq = row["seq"]
            if first is None:
                first = seq
                if seq != anchor_seq + 1:
                    where = f"after the pruning anchor {anchor_seq}" if anchor_seq else "at 1"
                    problems.append(f"seq {seq}: journal does not start {where}")
                    expected_prev = row["prev_hash"]
            elif seq != expected_seq:
                problems.append(f"seq {expected_seq}..{seq - 1}: missing")
            if row["epoch"] != self.epoch:
                problems.append(f"seq {seq}: epoch {row['epoch']} is not this store's")
            if row["prev_hash"] != expected_prev:
                problems.append(f"seq {seq}: chain broken (prev_hash does not match)")
            if record_hash(row) != row["hash"]:
                problems.append(f"seq {seq}: content altered (hash does not match)")
            expected_prev = row["hash"]
            expected_seq = seq + 1
            last = seq
        if (last or 0) != self._last_seq:
            problems.append(f"head: meta says last seq {self._last_seq}, journal ends at {last}")
        elif last is not None and self._meta("last_hash") != expected_prev:
            problems.append("head: meta last_hash does not match the last record")
        return VerifyReport(n, first, last, tuple(problems))

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
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
