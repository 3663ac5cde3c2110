"""The ledger's storage: every record exactly once, conflicts and quarantine kept, fleet state."""

from __future__ import annotations

import json
import operator
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import sqlite_utils

from sync.wire import RECORD_FIELDS, Batch, Registry, StationStatus, genesis_hash

__all__ = ["IngestResult", "LedgerStore", "SQLiteLedgerStore", "open_store"]

_COLUMNS = list(RECORD_FIELDS)
_ROW = operator.itemgetter(*_COLUMNS)
_INSERT = (
    f"INSERT INTO records ({', '.join(_COLUMNS)}, received_at) "
    f"VALUES ({', '.join('?' * len(_COLUMNS))}, ?)"
)


@dataclass(frozen=True, slots=True)
class IngestResult:
    station: str
    epoch: str
    acked_through: int
    received_through: int
    inserted: int
    duplicates: int
    conflicts: tuple[str, ...] = field(default_factory=tuple)


class LedgerStore(Protocol):
    """What the ingest service needs; SQLite here, PostgreSQL for a whole network."""

    def ingest(self, batch: Batch) -> IngestResult: ...

    def ingest_many(self, batches: list[Batch]) -> list[IngestResult]: ...

    def quarantine(self, topic: str, payload: bytes, reason: str) -> None: ...

    def update_status(self, status: StationStatus, retained: bool) -> bool: ...

    def head(self, station: str, epoch: str) -> tuple[int, int]: ...

    def heads(self) -> list[dict[str, Any]]: ...

    def set_registry(self, registry: Registry, station: str = "all") -> None: ...

    def registries(self) -> dict[str, Registry]: ...

    def close(self) -> None: ...

    # read side, shared by reports and the dashboard: portable SQL with ``?`` placeholders
    dialect: str  # "sqlite" | "postgresql"

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]: ...


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class SQLiteLedgerStore:
    """The ledger in one SQLite file (WAL, ``synchronous=FULL``: an ack follows a durable commit).

    One writer: the ingest thread. Readers (CLI, reports) open their own connection.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        self.db = sqlite_utils.Database(conn)
        self.db.enable_wal()
        self.db.execute("PRAGMA synchronous=FULL")
        self._read_lock = threading.Lock()  # one connection: reads from other threads take turns
        self._migrate()

    def _migrate(self) -> None:
        with self.db.atomic():
            cols: dict[str, Any] = dict(RECORD_FIELDS)
            cols["received_at"] = str
            cols["corrected_at"] = str  # recorded_at repaired for an unsynchronised clock
            self.db.table("records").create(
                cols, pk=("station", "epoch", "seq"), if_not_exists=True
            )
            self.db.table("records").create_index(
                ["station", "epoch", "boot_id", "clock_synced"], if_not_exists=True
            )
            self.db.table("records").create_index(["station", "recorded_at"], if_not_exists=True)
            self.db.table("records").create_index(["kind", "recorded_at"], if_not_exists=True)
            self.db.table("records").create_index(["station", "epoch", "voids"], if_not_exists=True)
            self.db.table("heads").create(
                {
                    "station": str,
                    "epoch": str,
                    "acked_through": int,
                    "last_hash": str,
                    "received_through": int,
                    "first_seen": str,
                    "updated_at": str,
                },
                pk=("station", "epoch"),
                if_not_exists=True,
            )
            self.db.table("conflicts").create(
                {
                    "id": int,
                    "station": str,
                    "epoch": str,
                    "seq": int,
                    "kind": str,
                    "existing_hash": str,
                    "new_hash": str,
                    "record": str,
                    "received_at": str,
                },
                pk="id",
                if_not_exists=True,
            )
            self.db.table("quarantine").create(
                {"id": int, "topic": str, "payload": bytes, "reason": str, "received_at": str},
                pk="id",
                if_not_exists=True,
            )
            self.db.table("stations").create(
                {
                    "station": str,
                    "online": int,
                    "session": int,
                    "epoch": str,
                    "version": str,
                    "last_seen": str,
                    "last_seq": int,
                    "synced_through": int,
                    "backlog": int,
                    "last_sync": str,
                    "last_record_at": str,
                    "clock_synced": int,
                    "scale_ok": int,
                    "scale_detail": str,
                    "calibration_age_days": float,
                    "status": str,
                },
                pk="station",
                if_not_exists=True,
            )
            self.db.table("registry").create(
                {"scope": str, "version": int, "body": str, "updated_at": str},
                pk="scope",
                if_not_exists=True,
            )

    # -- ingest ---------------------------------------------------------------------------------
    def ingest(self, batch: Batch) -> IngestResult:
        """Store a validated batch in one transaction and advance the contiguous head."""
        station, epoch = batch.station, batch.epoch
        now = _now()
        conflicts: list[str] = []
        with self.db.atomic():
            head = self.db.execute(
                "SELECT acked_through, last_hash, received_through FROM heads "
                "WHERE station = ? AND epoch = ?",
                [station, epoch],
            ).fetchone()
            if head is None:
                acked, last_hash, received = 0, genesis_hash(epoch), 0
                self.db.execute(
                    "INSERT INTO heads VALUES (?, ?, 0, ?, 0, ?, ?)",
                    [station, epoch, last_hash, now, now],
                )
            else:
                acked, last_hash, received = head
            existing = dict(
                self.db.execute(
                    "SELECT seq, hash FROM records WHERE station = ? AND epoch = ? "
                    "AND seq BETWEEN ? AND ?",
                    [station, epoch, batch.first_seq, batch.last_seq],
                ).fetchall()
            )
            new = []
            for record in batch.records:
                seen = existing.get(record["seq"])
                if seen is None:
                    new.append(record)
                elif seen != record["hash"]:
                    conflicts.append(f"seq {record['seq']}: same key, other content")
                    self._conflict(record, "content", seen, now)
            self.db.conn.executemany(_INSERT, [(*_ROW(r), now) for r in new])
            # advance over consecutive, chained records: first the new ones in memory (the
            # usual in-order case), then from the table (duplicates, or what out-of-order
            # batches left beyond a gap)
            for record in new:
                if record["seq"] != acked + 1:
                    break
                if record["prev_hash"] != last_hash:
                    conflicts.append(f"seq {record['seq']}: not chained to seq {acked}")
                    self._conflict(record, "chain", last_hash, now)
                    break
                acked, last_hash = record["seq"], record["hash"]
            self._correct_times(station, epoch, {r["boot_id"] for r in new if r["boot_id"]})
            received = max(received, batch.last_seq)
            if received > acked:
                acked, last_hash = self._walk(station, epoch, acked, last_hash, conflicts)
            self.db.execute(
                "UPDATE heads SET acked_through = ?, last_hash = ?, received_through = ?, "
                "updated_at = ? WHERE station = ? AND epoch = ?",
                [acked, last_hash, received, now, station, epoch],
            )
        return IngestResult(
            station,
            epoch,
            acked,
            received,
            len(new),
            len(batch.records) - len(new),
            tuple(conflicts),
        )

    def ingest_many(self, batches: list[Batch]) -> list[IngestResult]:
        """Several batches in one transaction: one fsync for all (group commit)."""
        with self.db.atomic():
            return [self.ingest(batch) for batch in batches]

    def _correct_times(self, station: str, epoch: str, boots: set[str]) -> None:
        """A Pi without RTC boots with a stale clock. Within one boot the monotonic clock is
        right, so once a record with a synchronised clock arrives, every unsynchronised record
        of that boot gets ``corrected_at = anchor.recorded_at + (mono_ns - anchor.mono_ns)``,
        the anchor being the boot's first synchronised record. ``recorded_at`` is kept as sent."""
        for boot in boots:
            anchor = self.db.execute(
                "SELECT recorded_at, mono_ns FROM records WHERE station = ? AND epoch = ? "
                "AND boot_id = ? AND clock_synced = 1 AND mono_ns IS NOT NULL "
                "ORDER BY seq LIMIT 1",
                [station, epoch, boot],
            ).fetchone()
            if anchor is None:
                continue
            try:
                base = datetime.fromisoformat(anchor[0].replace("Z", "+00:00"))
            except ValueError:
                continue
            rows = self.db.execute(
                "SELECT seq, mono_ns FROM records WHERE station = ? AND epoch = ? AND boot_id = ? "
                "AND clock_synced = 0 AND corrected_at IS NULL AND mono_ns IS NOT NULL",
                [station, epoch, boot],
            ).fetchall()
            updates = []
            for seq, mono_ns in rows:
                when = base + timedelta(microseconds=(mono_ns - anchor[1]) // 1000)
                text = when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
                updates.append((text, station, epoch, seq))
            self.db.conn.executemany(
                "UPDATE records SET corrected_at = ? WHERE station = ? AND epoch = ? AND seq = ?",
                updates,
            )

    def _walk(
        self, station: str, epoch: str, acked: int, last_hash: str, conflicts: list[str]
    ) -> tuple[int, str]:
        rows = self.db.execute(
            "SELECT seq, prev_hash, hash FROM records WHERE station = ? AND epoch = ? AND seq > ? "
            "ORDER BY seq",
            [station, epoch, acked],
        )
        for seq, prev_hash, hash_ in rows:
            if seq != acked + 1:
                break
            if prev_hash != last_hash:
                conflicts.append(f"seq {seq}: not chained to seq {acked}")
                break
            acked, last_hash = seq, hash_
        return acked, last_hash

    def _conflict(self, record: dict[str, Any], kind: str, existing: str, now: str) -> None:
        known = self.db.execute(
            "SELECT 1 FROM conflicts WHERE station = ? AND epoch = ? AND seq = ? AND kind = ? "
            "AND new_hash = ?",
            [record["station"], record["epoch"], record["seq"], kind, record["hash"]],
        ).fetchone()
        if known:
            return  # the same conflict re-sent: kept once
        self.db.execute(
            "INSERT INTO conflicts (station, epoch, seq, kind, existing_hash, new_hash, record, "
            "received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                record["station"],
                record["epoch"],
                record["seq"],
                kind,
                existing,
                record["hash"],
                json.dumps(record, ensure_ascii=False),
                now,
            ],
        )

    def quarantine(self, topic: str, payload: bytes, reason: str) -> None:
        with self.db.atomic():
            self.db.execute(
                "INSERT INTO quarantine (topic, payload, reason, received_at) VALUES (?, ?, ?, ?)",
                [topic, payload, reason, _now()],
            )

    # -- fleet ----------------------------------------------------------------------------------
    def update_status(self, status: StationStatus, retained: bool) -> bool:
        """Keep the newest status of a station; an older session's (a stale Will) is ignored."""
        with self.db.atomic():
            row = self.db.execute(
                "SELECT session FROM stations WHERE station = ?", [status.station]
            ).fetchone()
            if row is not None and row[0] is not None and status.session < row[0]:
                return False
            values = {
                "station": status.station,
                "online": int(status.online),
                "session": status.session,
                "epoch": status.epoch or None,
                "version": status.version or None,
                "last_seen": _now(),
                "last_seq": status.last_seq,
                "synced_through": status.synced_through,
                "backlog": status.backlog,
                "last_sync": status.last_sync,
                "last_record_at": status.last_record_at,
                "clock_synced": None if status.clock_synced is None else int(status.clock_synced),
                "scale_ok": None if status.scale_ok is None else int(status.scale_ok),
                "scale_detail": status.scale_detail or None,
                "calibration_age_days": status.calibration_age_days,
                "status": json.dumps(
                    {k: getattr(status, k) for k in StationStatus.__slots__}, ensure_ascii=False
                ),
            }
            if not status.online and row is not None:
                # a Will carries little: keep the last known figures, mark offline
                self.db.execute(
                    "UPDATE stations SET online = 0, session = ?, last_seen = ? WHERE station = ?",
                    [status.session, values["last_seen"], status.station],
                )
            else:
                self.db.table("stations").upsert(values, pk="station")
        return True

    def head(self, station: str, epoch: str) -> tuple[int, int]:
        row = self.db.execute(
            "SELECT acked_through, received_through FROM heads WHERE station = ? AND epoch = ?",
            [station, epoch],
        ).fetchone()
        return (0, 0) if row is None else (int(row[0]), int(row[1]))

    def heads(self) -> list[dict[str, Any]]:
        return list(self.db.query("SELECT * FROM heads ORDER BY station, first_seen"))

    def fleet(self) -> list[dict[str, Any]]:
        """One row per station: its last status, its heads, conflicts and last record."""
        return list(
            self.db.query(
                """
                SELECT s.station, s.online, s.last_seen, s.backlog, s.clock_synced, s.scale_ok,
                       s.calibration_age_days, s.version, s.last_record_at,
                       (SELECT sum(h.acked_through) FROM heads h WHERE h.station = s.station)
                           AS records,
                       (SELECT count(*) FROM conflicts c WHERE c.station = s.station) AS conflicts
                FROM stations s
                UNION ALL
                SELECT h.station, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                       sum(h.acked_through), (SELECT count(*) FROM conflicts c
                                              WHERE c.station = h.station)
                FROM heads h WHERE h.station NOT IN (SELECT station FROM stations)
                GROUP BY h.station
                ORDER BY 1
                """
            )
        )

    dialect = "sqlite"

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows of a read-only query (``?`` placeholders), serialised with the writer."""
        with self._read_lock:
            return list(self.db.query(sql, list(params)))

    def conflicts(self) -> list[dict[str, Any]]:
        return list(self.db.query("SELECT * FROM conflicts ORDER BY id"))

    def quarantined(self) -> list[dict[str, Any]]:
        return list(self.db.query("SELECT id, topic, reason, received_at FROM quarantine"))

    def records(self, station: str | None = None) -> Iterator[dict[str, Any]]:
        if station is None:
            yield from self.db.query("SELECT * FROM records ORDER BY station, epoch, seq")
        else:
            yield from self.db.query(
                "SELECT * FROM records WHERE station = ? ORDER BY epoch, seq", [station]
            )

    # -- registry -------------------------------------------------------------------------------
    def set_registry(self, registry: Registry, station: str = "all") -> None:
        body = {
            "version": registry.version,
            "categories": list(registry.categories),
            "referrers": list(registry.referrers),
            "beneficiary_patterns": list(registry.beneficiary_patterns),
            **registry.extra,
        }
        with self.db.atomic():
            self.db.table("registry").upsert(
                {
                    "scope": station,
                    "version": registry.version,
                    "body": json.dumps(body, ensure_ascii=False),
                    "updated_at": _now(),
                },
                pk="scope",
            )

    def registries(self) -> dict[str, Registry]:
        out = {}
        for row in self.db.query("SELECT scope, body FROM registry"):
            body = json.loads(row["body"])
            out[row["scope"]] = Registry(
                body.pop("version"),
                tuple(body.pop("categories", [])),
                tuple(body.pop("referrers", [])),
                tuple(body.pop("beneficiary_patterns", [])),
                body,
            )
        return out

    def registry_version(self) -> int:
        row = self.db.execute("SELECT max(version) FROM registry").fetchone()
        return int(row[0] or 0)

    def close(self) -> None:
        self.db.close()


def open_store(url: str) -> SQLiteLedgerStore:
    """A ledger store from its URL: a path or ``sqlite:///path`` (PostgreSQL comes later)."""
    if url.startswith("sqlite:///"):
        return SQLiteLedgerStore(url[len("sqlite:///") - 1 :])
    if "://" in url:
        raise ValueError(f"unsupported database URL {url!r} (use a path or sqlite:///path)")
    return SQLiteLedgerStore(url)
