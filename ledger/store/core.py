"""The ledger's storage: every record exactly once, conflicts and quarantine kept, fleet state.

One implementation of the rules (:class:`SqlLedgerStore`) over two databases: SQLite here (one
file, the default) and PostgreSQL in ``store_pg.py`` (a whole network, several workers). The SQL
is written once with ``?`` placeholders in the subset both understand (``ON CONFLICT``,
``coalesce``, ``substr``); the PostgreSQL store translates the placeholders.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

import sqlite_utils

from sync.wire import RECORD_FIELDS, Batch, Registry, StationStatus, genesis_hash

from . import migrations

__all__ = [
    "PSEUDONYM_HEX",
    "IngestResult",
    "LedgerStore",
    "PseudonymMismatch",
    "PurgeResult",
    "SQLiteLedgerStore",
    "SchemaError",
    "SqlLedgerStore",
    "StoreUnavailable",
    "open_store",
    "pseudonym",
]

T = TypeVar("T")

_COLUMNS = list(RECORD_FIELDS)
_BENEFICIARY = _COLUMNS.index("beneficiary")
_HASH = _COLUMNS.index("hash")
_PREV_HASH = _COLUMNS.index("prev_hash")
INSERT_COLUMNS = (*_COLUMNS, "received_at", "occurred_at", "visit_n", "person_n")
_INSERT = (
    f"INSERT INTO records ({', '.join(INSERT_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(INSERT_COLUMNS))})"
)
_WALK_CHUNK = 500
_REKEY_CHUNK = 5000  # records per step of the one-time keying of station hashes
_ID_CHUNK = 500  # keys per lookup of visit/person ids (SQLite's bound on parameters is far)
PSEUDONYM_HEX = 32  # 128 bits of HMAC-SHA256: no collision among millions of codes
_STATUS_COLUMNS = (
    "station",
    "online",
    "session",
    "epoch",
    "version",
    "last_seen",
    "last_seq",
    "synced_through",
    "backlog",
    "last_sync",
    "last_record_at",
    "clock_synced",
    "scale_ok",
    "scale_detail",
    "calibration_age_days",
    "status",
)


class SchemaError(RuntimeError):
    """The database was made by a newer ledger: this one must not write into it."""


class StoreUnavailable(RuntimeError):
    """The database failed (connection lost and not back after bounded retries, disk full…),
    not the message: nothing was stored, nothing is acked, the station sends it again."""


class PseudonymMismatch(RuntimeError):
    """The database was made with another ``pseudonymise`` / ``pseudonym_key`` setting: writing
    would mix hashes of two keys, or raw codes with hashes."""


_CHECK_TEXT = b"pesee-pseudonym-check"
_REDACTED = "(redacted)"


@dataclass(frozen=True, slots=True)
class IngestResult:
    station: str
    epoch: str
    acked_through: int
    received_through: int
    inserted: int
    duplicates: int
    conflicts: tuple[str, ...] = field(default_factory=tuple)


@dataclass(slots=True)
class _Ids:
    """A transaction's integer ids (ledger/migrations.py step 5): (station, visit) -> n and
    the code as received -> (code as stored, n)."""

    visits: dict[tuple[str, str], int] = field(default_factory=dict)
    persons: dict[str, tuple[str, int]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PurgeResult:
    """What a retention purge removed (or would remove, in a dry run)."""

    before: str
    mode: str
    records: int
    aggregated_rows: int
    conflicts: int
    quarantined: int
    dry_run: bool


class LedgerStore(Protocol):
    """What the ingest service, the CLI, reports and the dashboard need, on either database."""

    dialect: str  # "sqlite" | "postgresql"
    pseudonymised: bool

    def ingest(self, batch: Batch) -> IngestResult: ...

    def ingest_many(self, batches: list[Batch]) -> list[IngestResult]: ...

    def quarantine(self, topic: str, payload: bytes, reason: str) -> None: ...

    def update_status(self, status: StationStatus, retained: bool) -> bool: ...

    def head(self, station: str, epoch: str) -> tuple[int, int]: ...

    def heads(self) -> list[dict[str, Any]]: ...

    def fleet(self) -> list[dict[str, Any]]: ...

    def conflicts(self) -> list[dict[str, Any]]: ...

    def quarantined(self) -> list[dict[str, Any]]: ...

    def records(self, station: str | None = None) -> Iterator[dict[str, Any]]: ...

    def set_registry(self, registry: Registry, station: str = "all") -> None: ...

    def registries(self) -> dict[str, Registry]: ...

    def registry_version(self) -> int: ...

    def schema_version(self) -> int: ...

    def pseudonym(self, code: str | None) -> str | None: ...

    def purge(
        self, before: str, mode: Literal["aggregate", "delete"], *, dry_run: bool = False
    ) -> PurgeResult: ...

    def beneficiary_records(self, code: str) -> list[dict[str, Any]]: ...

    def erase_beneficiary(self, code: str) -> int: ...

    def close(self) -> None: ...

    # read side, shared by reports and the dashboard: portable SQL with ``?`` placeholders
    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]: ...


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _newer(status: StationStatus, stored: str | None) -> bool:
    """Whether ``status`` was written after the stored one: a station's own goodbye (its final
    figures), not its Last Will (the figures of when its link started)."""
    try:
        before = json.loads(stored or "{}").get("ts") or ""
    except ValueError:
        before = ""
    return bool(status.ts) and status.ts >= before  # whole seconds: the same second counts


def pseudonym(key: bytes, code: str) -> str:
    """``h:`` + the first :data:`PSEUDONYM_HEX` hex digits of HMAC-SHA256(key, code)."""
    digest = hmac.new(key, code.encode("utf-8"), hashlib.sha256).hexdigest()
    return "h:" + digest[:PSEUDONYM_HEX]


def profile_tags(data: str | None) -> list[str]:
    """The profile tags a record's ``data`` carries (``{"profile": "tag" | ["tag", …]}``)."""
    if not data or '"profile"' not in data:
        return []
    try:
        body = json.loads(data)
    except ValueError:
        return []
    tags = body.get("profile") if isinstance(body, dict) else None
    if isinstance(tags, str):
        tags = [tags]
    if not isinstance(tags, list):
        return []
    return [t.strip() for t in tags if isinstance(t, str) and t.strip()]


def _hide_codes(
    value: Any, hide: Callable[[str | None], str | None], keyed: Callable[[str | None], str | None]
) -> Any:
    """Every ``beneficiary`` member of a JSON value replaced by its pseudonym, every ``hash``
    and ``prev_hash`` by its keyed form (a station hash re-hashed from the other fields with
    a guessed code would give the code back)."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k == "beneficiary":
                # any type: a code sent as a number or a list is a code all the same
                out[k] = hide(v) if isinstance(v, str) else _REDACTED
            elif k in ("hash", "prev_hash") and isinstance(v, str):
                out[k] = keyed(v)
            else:
                out[k] = _hide_codes(v, hide, keyed)
        return out
    if isinstance(value, list):
        return [_hide_codes(v, hide, keyed) for v in value]
    return value


class SqlLedgerStore(ABC):
    """The ledger's rules, written once; subclasses give a connection and a transaction.

    Ingest of one (station, epoch) is serialised by its ``heads`` row: created if missing
    (``ON CONFLICT DO NOTHING``), then read ``FOR UPDATE`` on PostgreSQL (SQLite has a single
    writer anyway), so two workers given batches of the same station take turns and each
    record is stored once.
    """

    dialect = "sql"
    _for_update = ""
    # SQLite: the last erase or purge could not empty the WAL (a reader held it): the old
    # values are still in the -wal file until a later checkpoint
    wal_pending = False

    def __init__(self, pseudonym_key: bytes | None = None) -> None:
        self._key = pseudonym_key
        self.pseudonymised = pseudonym_key is not None
        self._version = 0
        # set at open when the database was made pseudonymised and no key was given: a reader
        # (the dashboard) may read, nothing may write
        self._mode_error: str | None = None
        self._mode_known = False

    # -- what a dialect provides ----------------------------------------------------------
    @abstractmethod
    def _exec(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Provided by each dialect."""

    @abstractmethod
    def _many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Provided by each dialect."""

    def _insert(self, rows: list[list[Any]]) -> None:
        """New records, columns as :data:`INSERT_COLUMNS`."""
        self._many(_INSERT, rows)

    @abstractmethod
    def _atomic(self, body: Callable[[], T]) -> T:
        """Run ``body`` in one transaction (joining the current one if any)."""

    @abstractmethod
    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Provided by each dialect."""

    @abstractmethod
    def close(self) -> None:
        """Provided by each dialect."""

    # -- schema ---------------------------------------------------------------------------
    def _migrate(self) -> None:
        def run() -> tuple[int, list[int]]:
            return migrations.apply(lambda s, p: self._exec(s, p), self.dialect, _now())

        version, _applied = self._atomic(run)
        if version > migrations.LATEST:
            raise SchemaError(
                f"database schema version {version} is newer than this ledger's "
                f"({migrations.LATEST}): upgrade the ledger"
            )
        self._version = version
        self._check_mode()
        self._fill_scanned_profiles()

    # -- the pseudonymisation mode the database was made with -----------------------------
    def _mode_value(self) -> str:
        if self._key is None:
            return "off"
        return "hmac:" + hmac.new(self._key, _CHECK_TEXT, hashlib.sha256).hexdigest()

    def _check_mode(self) -> None:
        """Compare the opener's setting with the one stored at the database's first write.

        A key given: it must be the database's (or the database new). No key: a database made
        pseudonymised is readable, but every write is refused (:meth:`require_writable`)."""
        rows = self._exec("SELECT value FROM ledger_meta WHERE name = 'pseudonym'")
        if not rows:
            if self._key is not None:
                self._record_mode()
            return
        stored = str(rows[0][0])
        self._mode_known = True
        if stored == self._mode_value():
            if self._key is not None:
                self._key_station_hashes()
            return
        if stored == "off":
            message = (
                "this ledger database stores raw beneficiary codes: it cannot be opened with "
                "pseudonymise = true (the codes already stored would stay raw); set "
                "[ledger] pseudonymise = false or start a new database"
            )
        elif self._key is not None:
            message = (
                "[ledger] pseudonym_key is not the key this database was made with: the same "
                "person would get another hash; use the database's key"
            )
        else:
            message = (
                "this ledger database is pseudonymised: writing needs [ledger] pseudonymise = "
                "true and its pseudonym_key"
            )
        if self._key is not None:
            raise PseudonymMismatch(message)
        self._mode_error = message

    def _record_mode(self) -> None:
        """The database's mode, once, at its first write (or first open with a key)."""
        if self._mode_known:
            return

        def body() -> None:
            self._exec(
                "INSERT INTO ledger_meta (name, value) VALUES ('pseudonym', ?) "
                "ON CONFLICT (name) DO NOTHING",
                (self._mode_value(),),
            )

        self._atomic(body)
        self._mode_known = True
        self._check_mode()  # another process may have recorded another mode first

    def _key_station_hashes(self) -> None:
        """Once per pseudonymised database: station hashes stored by a ledger before they were
        keyed (raw SHA-256 of the record with its raw code) are replaced by their keyed form,
        in records, heads, conflicts (and the JSON each conflict keeps)."""
        done = "SELECT value FROM ledger_meta WHERE name = 'station_hashes'"
        if self._exec(done):
            return

        def body() -> None:
            if self._exec(done):
                return  # another worker did it meanwhile
            after: tuple[Any, ...] = ("", "", -1)
            while True:
                rows = self._exec(
                    "SELECT station, epoch, seq, hash, prev_hash FROM records "
                    "WHERE (station > ?) OR (station = ? AND epoch > ?) "
                    "OR (station = ? AND epoch = ? AND seq > ?) "
                    f"ORDER BY station, epoch, seq LIMIT {_REKEY_CHUNK}",
                    (after[0], after[0], after[1], after[0], after[1], after[2]),
                )
                if not rows:
                    break
                self._many(
                    "UPDATE records SET hash = ?, prev_hash = ? "
                    "WHERE station = ? AND epoch = ? AND seq = ?",
                    [
                        (self.kept_hash(h), self.kept_hash(p), st, ep, seq)
                        for st, ep, seq, h, p in rows
                    ],
                )
                after = tuple(rows[-1][:3])
            heads = self._exec("SELECT station, epoch, last_hash FROM heads")
            self._many(
                "UPDATE heads SET last_hash = ? WHERE station = ? AND epoch = ?",
                [(self.kept_hash(h), st, ep) for st, ep, h in heads],
            )
            conflicts = self._exec("SELECT id, existing_hash, new_hash, record FROM conflicts")
            self._many(
                "UPDATE conflicts SET existing_hash = ?, new_hash = ?, record = ? WHERE id = ?",
                [
                    (
                        self.kept_hash(old),
                        self.kept_hash(new),
                        json.dumps(
                            _hide_codes(json.loads(text), lambda c: c, self.kept_hash),
                            ensure_ascii=False,
                        ),
                        cid,
                    )
                    for cid, old, new, text in conflicts
                ],
            )
            # quarantined payloads kept by an older ledger: redacted the same way now
            for qid, payload in self._exec(
                "SELECT id, payload FROM quarantine WHERE payload IS NOT NULL"
            ):
                kept: bytes | None = None
                with suppress(ValueError, UnicodeDecodeError, RecursionError):
                    body = _hide_codes(json.loads(bytes(payload)), self._rehide, self.kept_hash)
                    kept = json.dumps(body, ensure_ascii=False).encode()
                self._exec("UPDATE quarantine SET payload = ? WHERE id = ?", (kept, qid))
            self._exec(
                "INSERT INTO ledger_meta (name, value) VALUES ('station_hashes', 'keyed') "
                "ON CONFLICT (name) DO NOTHING"
            )

        self._atomic(body)

    def _fill_scanned_profiles(self) -> None:
        """Once per database (schema step 9): the profile tags of records stored before."""
        done = "SELECT value FROM ledger_meta WHERE name = 'scanned_profiles'"
        if self._exec(done):
            return

        def body() -> None:
            if self._exec(done):
                return
            pairs = {
                (str(code), tag)
                for code, data in self._exec(
                    "SELECT DISTINCT beneficiary, data FROM records WHERE data LIKE ? "
                    "AND beneficiary IS NOT NULL",
                    ('%"profile"%',),
                )
                for tag in profile_tags(data)
            }
            self._keep_scanned(sorted(pairs))
            self._exec(
                "INSERT INTO ledger_meta (name, value) VALUES ('scanned_profiles', 'filled') "
                "ON CONFLICT (name) DO NOTHING"
            )

        self._atomic(body)

    def _keep_scanned(self, pairs: Sequence[tuple[str, str]]) -> None:
        if pairs:
            self._many(
                "INSERT INTO scanned_profiles (beneficiary, tag) VALUES (?, ?) "
                "ON CONFLICT (beneficiary, tag) DO NOTHING",
                pairs,
            )

    def _rehide(self, code: str | None) -> str | None:
        """A code of an old quarantined payload: pseudonymised unless it already is."""
        if code is None or code.startswith(("h:", "x:")):
            return code
        return self.pseudonym(code)

    def require_writable(self) -> None:
        """Raise :class:`PseudonymMismatch` when this store may not write (see above); the
        first write of a new database records its mode."""
        if self._mode_error is not None:
            raise PseudonymMismatch(self._mode_error)
        if not self._mode_known:
            self._record_mode()
            if self._mode_error is not None:
                raise PseudonymMismatch(self._mode_error)

    def schema_version(self) -> int:
        return self._version

    # -- privacy --------------------------------------------------------------------------
    def kept_hash(self, station_hash: str | None) -> str | None:
        """What the ledger stores for a station's record hash: HMAC-SHA256(key, hash) (hex)
        when pseudonymising, the hash itself otherwise. Comparisons (duplicates, chain across
        batches, conflicts) are made on this form."""
        if self._key is None or station_hash is None:
            return station_hash
        return hmac.new(self._key, station_hash.encode(), hashlib.sha256).hexdigest()

    def pseudonym(self, code: str | None) -> str | None:
        """What the ledger stores for a beneficiary code: its keyed hash when pseudonymising,
        the code itself otherwise (importers of codes call this too)."""
        if self._key is None or not code:
            return code
        return pseudonym(self._key, code)

    # -- ingest ---------------------------------------------------------------------------
    def ingest(self, batch: Batch) -> IngestResult:
        """Store a validated batch in one transaction and advance the contiguous head."""
        return self.ingest_many([batch])[0]

    def ingest_many(self, batches: list[Batch]) -> list[IngestResult]:
        """Several batches in one transaction: one commit for all (group commit). The heads
        are locked first, in one order, so two workers' groups never wait on each other in a
        cycle."""

        self.require_writable()

        def body() -> list[IngestResult]:
            for station, epoch in sorted({(b.station, b.epoch) for b in batches}):
                self._lock_head(station, epoch, _now())
            ids = self._assign_ids(batches)
            return [self._ingest(batch, ids) for batch in batches]

        return self._atomic(body)

    def _lock_head(self, station: str, epoch: str, now: str) -> tuple[int, str | None, int]:
        self._exec(
            "INSERT INTO heads (station, epoch, acked_through, last_hash, received_through, "
            "first_seen, updated_at) VALUES (?, ?, 0, ?, 0, ?, ?) "
            "ON CONFLICT (station, epoch) DO NOTHING",
            (station, epoch, self.kept_hash(genesis_hash(epoch)), now, now),
        )
        row = self._exec(
            "SELECT acked_through, last_hash, received_through FROM heads "
            "WHERE station = ? AND epoch = ?" + self._for_update,
            (station, epoch),
        )[0]
        # last_hash NULL: the head's record was erased (erase_beneficiary), its hash with it
        return int(row[0]), None if row[1] is None else str(row[1]), int(row[2])

    def _assign_ids(self, batches: list[Batch]) -> _Ids:
        """The visit and person ids of every record in ``batches``, numbered where new.

        Keys go in sorted order, once per transaction: two workers that create the same new
        ids lock them in the same order. An id made for a record that turns out a duplicate
        or a conflict is harmless: it counts nothing, and a purge removes unused ones."""
        ids = _Ids()
        visits = sorted(
            {(b.station, str(r["visit"])) for b in batches for r in b.records if r["visit"]}
        )
        for key, n in self._number("visit_ids", ("station", "visit"), visits).items():
            ids.visits[(str(key[0]), str(key[1]))] = n
        stored: dict[str, str] = {}
        for b in batches:
            for r in b.records:
                code = r["beneficiary"]
                if code and code not in stored:
                    stored[code] = str(self.pseudonym(code))
        numbers = self._number(
            "person_ids", ("beneficiary",), sorted({(c,) for c in stored.values()})
        )
        ids.persons = {code: (kept, numbers[(kept,)]) for code, kept in stored.items()}
        return ids

    def _number(
        self, table: str, columns: tuple[str, ...], keys: Sequence[tuple[str, ...]]
    ) -> dict[tuple[Any, ...], int]:
        """``n`` of each key of a lookup table, inserted first where missing."""
        if not keys:
            return {}
        names = ", ".join(columns)
        self._many(
            f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))}) "
            f"ON CONFLICT ({names}) DO NOTHING",
            keys,
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
            for row in self._exec(f"SELECT n, {names} FROM {table} WHERE {where}", params):
                found[tuple(row[1:])] = int(row[0])
        return found

    def _ingest(self, batch: Batch, ids: _Ids) -> IngestResult:
        station, epoch = batch.station, batch.epoch
        now = _now()
        conflicts: list[str] = []
        acked, last_hash, received = self._lock_head(station, epoch, now)
        existing = dict(
            self._exec(
                "SELECT seq, hash FROM records WHERE station = ? AND epoch = ? "
                "AND seq BETWEEN ? AND ?",
                (station, epoch, batch.first_seq, batch.last_seq),
            )
        )
        # the stored form of each record's hashes (keyed when pseudonymising); the chain
        # inside the batch was checked on the station's own hashes by decode_batch
        kept = {
            r["seq"]: (self.kept_hash(r["hash"]), self.kept_hash(r["prev_hash"]))
            for r in batch.records
        }
        new = []
        for record in batch.records:
            if record["seq"] not in existing:
                if record["seq"] > acked:
                    new.append(record)
                # else: acked once and purged since (retention): never stored again
                continue
            seen = existing[record["seq"]]
            # NULL: an erased person's record, its hash gone; stored, so a duplicate
            if seen is not None and seen != kept[record["seq"]][0]:
                conflicts.append(f"seq {record['seq']}: same key, other content")
                self._conflict(record, "content", seen, now)
        if new:
            self._insert([self._row(r, now, ids, kept[r["seq"]]) for r in new])
            # tags scanned at the counter: one small table for reports by profile
            scanned = {
                (ids.persons[r["beneficiary"]][0], tag)
                for r in new
                if r["beneficiary"] and r["data"]
                for tag in profile_tags(r["data"])
            }
            self._keep_scanned(sorted(scanned))
        # advance over consecutive, chained records: first the new ones in memory (the usual
        # in-order case), then from the table (duplicates, or what out-of-order batches left
        # beyond a gap)
        for record in new:
            if record["seq"] != acked + 1:
                break
            if last_hash is not None and kept[record["seq"]][1] != last_hash:
                conflicts.append(f"seq {record['seq']}: not chained to seq {acked}")
                self._conflict(record, "chain", last_hash, now)
                break
            acked, last_hash = record["seq"], kept[record["seq"]][0]
        if new:
            self._correct_times(station, epoch, {r["boot_id"] for r in new if r["boot_id"]})
            self._mark_voided(station, epoch, new)
        received = max(received, batch.last_seq)
        if received > acked:
            acked, last_hash = self._walk(station, epoch, acked, last_hash, conflicts)
        self._exec(
            "UPDATE heads SET acked_through = ?, last_hash = ?, received_through = ?, "
            "updated_at = ? WHERE station = ? AND epoch = ?",
            (acked, last_hash, received, now, station, epoch),
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

    def _row(
        self, record: dict[str, Any], now: str, ids: _Ids, hashes: tuple[str | None, str | None]
    ) -> list[Any]:
        values = [record[c] for c in _COLUMNS]
        values[_HASH], values[_PREV_HASH] = hashes
        person = ids.persons.get(values[_BENEFICIARY]) if values[_BENEFICIARY] else None
        if person is not None:
            values[_BENEFICIARY] = person[0]
        visit = ids.visits.get((record["station"], record["visit"])) if record["visit"] else None
        values += [now, record["recorded_at"], visit, person[1] if person else None]
        return values

    def _correct_times(self, station: str, epoch: str, boots: set[str]) -> None:
        """A Pi without RTC boots with a stale clock. Within one boot the monotonic clock is
        right, so once a record with a synchronised clock arrives, every unsynchronised record
        of that boot gets ``corrected_at = anchor.recorded_at + (mono_ns - anchor.mono_ns)``,
        the anchor being the boot's first synchronised record. ``recorded_at`` is kept as sent;
        ``occurred_at`` follows ``corrected_at``."""
        for boot in sorted(boots):
            # the usual case, a synchronised clock: nothing waits for repair, skip the anchor
            if not self._exec(
                "SELECT 1 FROM records WHERE station = ? AND epoch = ? AND boot_id = ? "
                "AND clock_synced = 0 AND corrected_at IS NULL AND mono_ns IS NOT NULL LIMIT 1",
                (station, epoch, boot),
            ):
                continue
            anchor = self._exec(
                "SELECT recorded_at, mono_ns FROM records WHERE station = ? AND epoch = ? "
                "AND boot_id = ? AND clock_synced = 1 AND mono_ns IS NOT NULL "
                "ORDER BY seq LIMIT 1",
                (station, epoch, boot),
            )
            if not anchor:
                continue
            anchor_at, anchor_mono = anchor[0]
            try:
                base = datetime.fromisoformat(str(anchor_at).replace("Z", "+00:00"))
            except ValueError:
                continue
            rows = self._exec(
                "SELECT seq, mono_ns FROM records WHERE station = ? AND epoch = ? "
                "AND boot_id = ? AND clock_synced = 0 AND corrected_at IS NULL "
                "AND mono_ns IS NOT NULL",
                (station, epoch, boot),
            )
            updates = []
            for seq, mono_ns in rows:
                when = base + timedelta(microseconds=(int(mono_ns) - int(anchor_mono)) // 1000)
                text = when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
                updates.append((text, text, station, epoch, seq))
            if updates:
                self._many(
                    "UPDATE records SET corrected_at = ?, occurred_at = ? "
                    "WHERE station = ? AND epoch = ? AND seq = ?",
                    updates,
                )

    def _mark_voided(self, station: str, epoch: str, new: list[dict[str, Any]]) -> None:
        """``voided_by`` on the records a void cancels, whichever of the two arrived first."""
        pairs = {
            (int(r["voids"]), int(r["seq"])) for r in new if r["kind"] == "void" and r["voids"]
        }
        # voids that came before the records they cancel (batches out of order)
        pairs.update(
            (int(target), int(seq))
            for target, seq in self._exec(
                "SELECT voids, seq FROM records WHERE station = ? AND epoch = ? "
                "AND kind = 'void' AND voids BETWEEN ? AND ?",
                (station, epoch, new[0]["seq"], new[-1]["seq"]),
            )
        )
        if pairs:
            self._set_voided(station, epoch, sorted(pairs))

    def _set_voided(self, station: str, epoch: str, pairs: list[tuple[int, int]]) -> None:
        """``voided_by = seq`` on each ``(target, seq)``, the earliest void winning."""
        self._many(
            "UPDATE records SET voided_by = ? WHERE station = ? AND epoch = ? AND seq = ? "
            "AND (voided_by IS NULL OR voided_by > ?)",
            [(seq, station, epoch, target, seq) for target, seq in pairs],
        )

    def _walk(
        self, station: str, epoch: str, acked: int, last_hash: str | None, conflicts: list[str]
    ) -> tuple[int, str | None]:
        while True:
            rows = self._exec(
                "SELECT seq, prev_hash, hash FROM records WHERE station = ? AND epoch = ? "
                f"AND seq > ? ORDER BY seq LIMIT {_WALK_CHUNK}",
                (station, epoch, acked),
            )
            for seq, prev_hash, hash_ in rows:
                if seq != acked + 1:
                    return acked, last_hash
                # NULL on either side: an erased person's record (its hashes removed)
                if prev_hash is not None and last_hash is not None and prev_hash != last_hash:
                    message = f"seq {seq}: not chained to seq {acked}"
                    if message not in conflicts:  # said once when it came in this batch
                        conflicts.append(message)
                    return acked, last_hash
                acked, last_hash = int(seq), None if hash_ is None else str(hash_)
            if len(rows) < _WALK_CHUNK:
                return acked, last_hash

    def _conflict(self, record: dict[str, Any], kind: str, existing: str | None, now: str) -> None:
        new_hash = self.kept_hash(record["hash"])
        known = self._exec(
            "SELECT 1 FROM conflicts WHERE station = ? AND epoch = ? AND seq = ? AND kind = ? "
            "AND new_hash = ?",
            (record["station"], record["epoch"], record["seq"], kind, new_hash),
        )
        if known:
            return  # the same conflict re-sent: kept once
        kept = self._hidden(record)
        self._exec(
            "INSERT INTO conflicts (station, epoch, seq, kind, existing_hash, new_hash, record, "
            "received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record["station"],
                record["epoch"],
                record["seq"],
                kind,
                existing,
                new_hash,
                json.dumps(kept, ensure_ascii=False),
                now,
            ),
        )

    def _hidden(self, value: Any) -> Any:
        """A JSON value as the ledger may keep it: codes pseudonymised, hashes keyed."""
        if self._key is None:
            return value
        return _hide_codes(value, self.pseudonym, self.kept_hash)

    def quarantine(self, topic: str, payload: bytes, reason: str) -> None:
        """Keep an invalid message for inquiry: its topic, reason, size and SHA-256, and its
        bytes, except when pseudonymising: then a JSON payload is kept redacted (codes
        pseudonymised whatever their type, hashes keyed) and any other payload (a truncated
        frame, not JSON) keeps no bytes at all: they could hold a raw code."""
        self.require_writable()
        size, digest = len(payload), hashlib.sha256(payload).hexdigest()
        kept: bytes | None = payload
        if self._key is not None:
            kept = None
            with suppress(ValueError, UnicodeDecodeError, RecursionError):
                body = self._hidden(json.loads(payload))
                kept = json.dumps(body, ensure_ascii=False).encode()
        self._atomic(
            lambda: self._exec(
                "INSERT INTO quarantine (topic, payload, reason, received_at, size, sha256) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (topic, kept, reason, _now(), size, digest),
            )
        )

    # -- fleet ----------------------------------------------------------------------------
    def update_status(self, status: StationStatus, retained: bool) -> bool:
        """Keep the newest status of a station; an older session's (a stale Will) is ignored."""
        return self._atomic(lambda: self._update_status(status))

    def _update_status(self, status: StationStatus) -> bool:
        row = self._exec(
            "SELECT session, status FROM stations WHERE station = ?" + self._for_update,
            (status.station,),
        )
        if row and row[0][0] is not None and status.session < row[0][0]:
            return False
        now = _now()
        if not status.online and row and not _newer(status, row[0][1]):
            # a Will, written when the link started: keep the last known figures, mark offline
            self._exec(
                "UPDATE stations SET online = 0, session = ?, last_seen = ? WHERE station = ?",
                (status.session, now, status.station),
            )
            return True
        values = (
            status.station,
            int(status.online),
            status.session,
            status.epoch or None,
            status.version or None,
            now,
            status.last_seq,
            status.synced_through,
            status.backlog,
            status.last_sync,
            status.last_record_at,
            None if status.clock_synced is None else int(status.clock_synced),
            None if status.scale_ok is None else int(status.scale_ok),
            status.scale_detail or None,
            status.calibration_age_days,
            json.dumps(
                {k: getattr(status, k) for k in StationStatus.__slots__}, ensure_ascii=False
            ),
        )
        updates = ", ".join(f"{c} = excluded.{c}" for c in _STATUS_COLUMNS[1:])
        self._exec(
            f"INSERT INTO stations ({', '.join(_STATUS_COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(_STATUS_COLUMNS))}) "
            f"ON CONFLICT (station) DO UPDATE SET {updates}",
            values,
        )
        return True

    def head(self, station: str, epoch: str) -> tuple[int, int]:
        rows = self.fetch(
            "SELECT acked_through, received_through FROM heads WHERE station = ? AND epoch = ?",
            [station, epoch],
        )
        if not rows:
            return (0, 0)
        return int(rows[0]["acked_through"]), int(rows[0]["received_through"])

    def heads(self) -> list[dict[str, Any]]:
        return self.fetch("SELECT * FROM heads ORDER BY station, first_seen")

    def fleet(self) -> list[dict[str, Any]]:
        """One row per station: its last status, its heads, conflicts and last record."""
        return self.fetch(
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

    def conflicts(self) -> list[dict[str, Any]]:
        return self.fetch("SELECT * FROM conflicts ORDER BY id")

    def quarantined(self) -> list[dict[str, Any]]:
        return self.fetch(
            "SELECT id, topic, reason, received_at, size, sha256 FROM quarantine ORDER BY id"
        )

    def records(self, station: str | None = None) -> Iterator[dict[str, Any]]:
        if station is None:
            yield from self.fetch("SELECT * FROM records ORDER BY station, epoch, seq")
        else:
            yield from self.fetch(
                "SELECT * FROM records WHERE station = ? ORDER BY epoch, seq", [station]
            )

    # -- registry -------------------------------------------------------------------------
    def set_registry(self, registry: Registry, station: str = "all") -> None:
        body = {
            "version": registry.version,
            "categories": list(registry.categories),
            "referrers": list(registry.referrers),
            "beneficiary_patterns": list(registry.beneficiary_patterns),
            **registry.extra,
        }
        self._atomic(
            lambda: self._exec(
                "INSERT INTO registry (scope, version, body, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (scope) DO UPDATE SET version = excluded.version, "
                "body = excluded.body, updated_at = excluded.updated_at",
                (station, registry.version, json.dumps(body, ensure_ascii=False), _now()),
            )
        )

    def registries(self) -> dict[str, Registry]:
        out = {}
        for row in self.fetch("SELECT scope, body FROM registry ORDER BY scope"):
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
        rows = self.fetch("SELECT max(version) AS v FROM registry")
        return int(rows[0]["v"] or 0)

    # -- retention and a person's rights (docs/privacy.md) --------------------------------
    def purge(
        self, before: str, mode: Literal["aggregate", "delete"], *, dry_run: bool = False
    ) -> PurgeResult:
        """Remove records that occurred before ``before`` (ISO date); in ``aggregate`` mode
        their live weighings are first added to ``aggregates`` (month × station × category ×
        referrer: kg, items, visits), which keeps totals and drops who received what. Old
        conflicts and quarantined messages go too."""
        if mode not in ("aggregate", "delete"):
            raise ValueError(f"unknown retention mode {mode!r}")
        if not dry_run:
            self.require_writable()

        def body() -> PurgeResult:
            old = "occurred_at < ?"
            groups = self._exec(
                "SELECT substr(occurred_at, 1, 7), station, coalesce(category, ''), "
                "coalesce(referrer, ''), sum(net_mg), count(*), "
                "count(DISTINCT visit), sum(coalesce(pieces, 0)) FROM records "
                f"WHERE {old} AND kind = 'weighing' AND voided_by IS NULL GROUP BY 1, 2, 3, 4",
                (before,),
            )
            counts = [
                self._exec(f"SELECT count(*) FROM records WHERE {old}", (before,))[0][0],
                self._exec("SELECT count(*) FROM conflicts WHERE received_at < ?", (before,))[0][0],
                self._exec("SELECT count(*) FROM quarantine WHERE received_at < ?", (before,))[0][
                    0
                ],
            ]
            if not dry_run:
                if mode == "aggregate" and groups:
                    now = _now()
                    self._many(
                        "INSERT INTO aggregates (month, station, category, referrer, net_mg, "
                        "items, visits, pieces, aggregated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                        "ON CONFLICT (month, station, category, referrer) DO UPDATE SET "
                        "net_mg = aggregates.net_mg + excluded.net_mg, "
                        "items = aggregates.items + excluded.items, "
                        "visits = aggregates.visits + excluded.visits, "
                        "pieces = coalesce(aggregates.pieces, 0) + excluded.pieces, "
                        "aggregated_at = excluded.aggregated_at",
                        [
                            (*g[:4], int(g[4] or 0), int(g[5]), int(g[6]), int(g[7] or 0), now)
                            for g in groups
                        ],
                    )
                self._exec(f"DELETE FROM records WHERE {old}", (before,))
                # ids no record uses any more: their codes go with the records
                self._exec(
                    "DELETE FROM person_ids WHERE n NOT IN "
                    "(SELECT person_n FROM records WHERE person_n IS NOT NULL)"
                )
                # scanned tags of persons with no record left go with their records
                self._exec(
                    "DELETE FROM scanned_profiles WHERE beneficiary NOT IN "
                    "(SELECT beneficiary FROM records WHERE beneficiary IS NOT NULL)"
                )
                self._exec(
                    "DELETE FROM visit_ids WHERE n NOT IN "
                    "(SELECT visit_n FROM records WHERE visit_n IS NOT NULL)"
                )
                self._exec("DELETE FROM conflicts WHERE received_at < ?", (before,))
                self._exec("DELETE FROM quarantine WHERE received_at < ?", (before,))
            return PurgeResult(
                before,
                mode,
                int(counts[0]),
                len(groups) if mode == "aggregate" else 0,
                int(counts[1]),
                int(counts[2]),
                dry_run,
            )

        return self._atomic(body)

    def beneficiary_records(self, code: str) -> list[dict[str, Any]]:
        """Every record of one person (an access request), by the code they show."""
        return self.fetch(
            "SELECT occurred_at, station, kind, category, referrer, net_mg, pieces, voided_by, "
            "seq FROM records WHERE beneficiary = ? ORDER BY occurred_at, station, seq",
            [self.pseudonym(code)],
        )

    def erase_beneficiary(self, code: str) -> int:
        """An erasure request: the person's code replaced by a tombstone of their own in every
        record, profile tag and conflict. Totals and unique counts stay; the link to the code
        is gone."""
        self.require_writable()
        stored = self.pseudonym(code)
        tombstone = "x:" + secrets.token_hex(PSEUDONYM_HEX // 2)

        def body() -> int:
            n = self._exec("SELECT count(*) FROM records WHERE beneficiary = ?", (stored,))[0][0]
            # the person's station hashes go too: with the other fields of a row, a hash (or
            # its keyed form, for whoever holds the key) lets a guessed code be checked. The
            # neighbours' links to them, a head at them and conflicts naming them go as well;
            # ingest takes a NULL hash as "stored" and a NULL link as chained.
            theirs = "(SELECT hash FROM records WHERE beneficiary = ? AND hash IS NOT NULL)"
            self._exec(f"UPDATE heads SET last_hash = NULL WHERE last_hash IN {theirs}", (stored,))
            self._exec(
                f"UPDATE records SET prev_hash = NULL WHERE prev_hash IN {theirs}", (stored,)
            )
            for column in ("existing_hash", "new_hash"):
                self._exec(
                    f"UPDATE conflicts SET {column} = NULL WHERE {column} IN {theirs}", (stored,)
                )
            self._exec(
                "UPDATE records SET hash = NULL, prev_hash = NULL WHERE beneficiary = ?", (stored,)
            )
            self._exec(
                "UPDATE records SET beneficiary = ? WHERE beneficiary = ?", (tombstone, stored)
            )
            # the person's id stays (unique counts unchanged), its code goes
            self._exec(
                "UPDATE person_ids SET beneficiary = ? WHERE beneficiary = ?", (tombstone, stored)
            )
            # household profile tags stay attached to the (now anonymous) person
            for table in ("profiles", "scanned_profiles"):
                self._exec(
                    f"UPDATE {table} SET beneficiary = ? WHERE beneficiary = ?", (tombstone, stored)
                )
            # quarantined messages naming the code (as stored: raw, or pseudonymised in a
            # redacted copy) lose their bytes; topic, reason, size and SHA-256 stay
            needle = str(stored).encode()
            for qid, payload in self._exec(
                "SELECT id, payload FROM quarantine WHERE payload IS NOT NULL"
            ):
                if needle in bytes(payload):
                    self._exec("UPDATE quarantine SET payload = NULL WHERE id = ?", (qid,))
            for cid, text in self._exec(
                "SELECT id, record FROM conflicts WHERE record LIKE ?", (f"%{stored}%",)
            ):
                record = json.loads(text)
                if record.get("beneficiary") == stored:
                    record["beneficiary"] = tombstone
                    record["hash"] = record["prev_hash"] = None
                    self._exec(
                        "UPDATE conflicts SET record = ?, existing_hash = NULL, new_hash = NULL "
                        "WHERE id = ?",
                        (json.dumps(record, ensure_ascii=False), cid),
                    )
            return int(n)

        return self._atomic(body)


class SQLiteLedgerStore(SqlLedgerStore):
    """The ledger in one SQLite file (WAL, ``synchronous=FULL``: an ack follows a durable commit).

    One connection shared by the store's users in this process, taking turns under a lock;
    writes start with ``BEGIN IMMEDIATE``, so two processes on one file wait for each other
    instead of failing.
    """

    dialect = "sqlite"

    def __init__(self, path: Path | str, *, pseudonym_key: bytes | None = None) -> None:
        super().__init__(pseudonym_key)
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
        self.db = sqlite_utils.Database(conn)
        self.db.enable_wal()
        self.db.execute("PRAGMA synchronous=FULL")
        # an erased code or a purged record is overwritten in the file, not left in free pages
        self.db.execute("PRAGMA secure_delete=ON")
        self._lock = threading.RLock()
        self._depth = 0
        self._migrate()

    def _exec(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self.db.conn.execute(sql, tuple(params)).fetchall()

    def _many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._lock:
            self.db.conn.executemany(sql, rows)

    def _atomic(self, body: Callable[[], T]) -> T:
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

    def erase_beneficiary(self, code: str) -> int:
        n = super().erase_beneficiary(code)
        self._checkpoint()
        return n

    def purge(
        self, before: str, mode: Literal["aggregate", "delete"], *, dry_run: bool = False
    ) -> PurgeResult:
        result = super().purge(before, mode, dry_run=dry_run)
        if not dry_run:
            self._checkpoint()
        return result

    def _checkpoint(self) -> None:
        """The WAL still holds the old pages: copy into the file and truncate it now. A reader
        (the dashboard) in the middle of a query makes it busy: ``wal_pending`` says so, and
        ``ledger beneficiary erase`` asks to run it again later."""
        with self._lock:
            # wait for readers a little, not the writer's 30 s: a busy WAL is reported instead
            self.db.conn.execute("PRAGMA busy_timeout = 2000")
            try:
                row = self.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            finally:
                self.db.conn.execute("PRAGMA busy_timeout = 30000")
        self.wal_pending = bool(row and row[0])

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows of a read-only query (``?`` placeholders), in turn with the writer."""
        with self._lock:
            cursor = self.db.conn.execute(sql, tuple(params))
            names = [d[0] for d in cursor.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def close(self) -> None:
        with self._lock:
            self.db.close()


def open_store(url: str, *, pseudonym_key: bytes | None = None) -> SqlLedgerStore:
    """A ledger store from its URL: a path or ``sqlite:///path``, or ``postgresql://…``.

    The schema is brought to the latest version on open (``ledger/migrations.py``)."""
    if url.startswith(("postgresql://", "postgres://")):
        from .pg import PostgresLedgerStore  # psycopg only when PostgreSQL is used

        return PostgresLedgerStore(url, pseudonym_key=pseudonym_key)
    if url.startswith("sqlite:///"):
        return SQLiteLedgerStore(url[len("sqlite:///") - 1 :], pseudonym_key=pseudonym_key)
    if "://" in url:
        raise ValueError(
            f"unsupported database URL {url!r} (use a path, sqlite:///path or postgresql://…)"
        )
    return SQLiteLedgerStore(url, pseudonym_key=pseudonym_key)
