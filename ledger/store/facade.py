"""The ledger store: one façade over the concerns (ingest, fleet, registry, privacy, retention,
inquiry), composed over one database dialect (SQLite or PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from sync.wire import Registry, StationStatus

from . import migrations
from .conflicts import DroppedCount, Inquiry, QuarantineCap
from .dialect import Dialect
from .digests import Digests
from .fleet import Fleet
from .households import Composition, Households
from .ingest import Ingest
from .issued import IssuedCodes
from .models import (
    ConflictRow,
    FleetRow,
    HeadRow,
    Incoming,
    IngestResult,
    PurgeResult,
    QuarantineRow,
    SchemaError,
    utc_now,
)
from .privacy import ERASED_TABLES, Privacy
from .profiles import ProfileLine, Profiles
from .registry import Registries
from .retention import Retention
from .sqlite import SQLiteDialect
from .visit_digests import VisitDigests

if TYPE_CHECKING:
    import sqlite_utils

__all__ = [
    "LedgerStore",
    "PostgresLedgerStore",
    "SQLiteLedgerStore",
    "SqlLedgerStore",
    "open_store",
]


class LedgerStore(Protocol):
    """What the ingest service, the CLI, reports and the dashboard need, on either database."""

    pseudonymised: bool

    @property
    def dialect(self) -> str: ...  # "sqlite" | "postgresql"

    def ingest(self, batch: Incoming) -> IngestResult: ...

    def ingest_many(self, batches: Sequence[Incoming]) -> list[IngestResult]: ...

    def quarantine(
        self, topic: str, payload: bytes, reason: str, cap: QuarantineCap | None = None
    ) -> bool: ...

    def update_status(self, status: StationStatus, retained: bool) -> bool: ...

    def head(self, station: str, epoch: str) -> tuple[int, int]: ...

    def heads(self) -> list[HeadRow]: ...

    def fleet(self) -> list[FleetRow]: ...

    def conflicts(self) -> list[ConflictRow]: ...

    def quarantined(self, station: str | None = None) -> list[QuarantineRow]: ...

    def quarantine_dropped(self) -> list[DroppedCount]: ...

    def purge_quarantine(
        self, station: str | None = None, before: str | None = None, *, dry_run: bool = False
    ) -> tuple[int, int]: ...

    def records(self, station: str | None = None) -> Iterator[dict[str, Any]]: ...

    def set_registry(self, registry: Registry, station: str = "all") -> None: ...

    def registries(self) -> dict[str, Registry]: ...

    def registry_version(self) -> int: ...

    def schema_version(self) -> int: ...

    def pseudonym(self, code: str | None) -> str | None: ...

    def import_profiles(
        self, profiles: Iterable[ProfileLine], *, replace_all: bool = False
    ) -> int: ...

    def purge(
        self, before: str, mode: Literal["aggregate", "delete"], *, dry_run: bool = False
    ) -> PurgeResult: ...

    def beneficiary_records(self, code: str) -> list[dict[str, Any]]: ...

    def erase_beneficiary(self, code: str) -> int: ...

    def close(self) -> None: ...

    # read side, shared by reports and the dashboard: portable SQL with ``?`` placeholders
    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]: ...


class SqlLedgerStore:
    """The ledger's rules over one :class:`~ledger.store.dialect.Dialect` (``sql``); the
    schema is brought to the latest version when the store is made."""

    # SQLite: the last erase or purge could not empty the WAL (a reader held it): the old
    # values are still in the -wal file until a later checkpoint
    wal_pending = False

    def __init__(self, sql: Dialect, *, pseudonym_key: bytes | None = None) -> None:
        self.sql = sql
        self.pseudonymised = pseudonym_key is not None
        self.privacy = Privacy(sql, pseudonym_key)
        self.inquiry = Inquiry(sql, self.privacy)
        self.profiles = Profiles(sql, self.privacy)
        self.households = Households(sql, self.privacy)  # FEAD / ESF+ (ledger/funders)
        # month digests: what reports read (ledger/store/digests.py); writers mark changes
        self.digests = Digests(sql)
        # visit digests: what the persons and funders pages read (ledger/store/visit_digests.py)
        self.visit_digests = VisitDigests(sql)
        self.ingestion = Ingest(sql, self.privacy, self.inquiry, self.profiles, self.digests)
        self.stations = Fleet(sql)
        self.registry = Registries(sql)
        self.retention = Retention(sql, self.privacy, self.digests)
        self.issued = IssuedCodes(sql, self.privacy)  # codes printed on cards
        try:
            self._version = self._migrate()
            self.privacy.check_mode()
            self.profiles.fill_scanned()
        except BaseException:
            sql.close()
            raise

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql`` (reports choose their SQL by it)."""
        return self.sql.name

    def _migrate(self) -> int:
        def run() -> tuple[int, list[int]]:
            return migrations.apply(lambda s, p: self.sql.exec(s, p), self.sql.name, utc_now())

        version, _applied = self.sql.atomic(run)
        if version > migrations.LATEST:
            raise SchemaError(
                f"database schema version {version} is newer than this ledger's "
                f"({migrations.LATEST}): upgrade the ledger"
            )
        return version

    def schema_version(self) -> int:
        return self._version

    # -- privacy --------------------------------------------------------------------------
    def require_writable(self) -> None:
        """Raise :class:`PseudonymMismatch` when this store may not write (a pseudonymised
        database opened without its key); the first write of a new database records its mode."""
        self.privacy.require_writable()

    def kept_hash(self, station_hash: str | None) -> str | None:
        return self.privacy.kept_hash(station_hash)

    def pseudonym(self, code: str | None) -> str | None:
        return self.privacy.pseudonym(code)

    def beneficiary_records(self, code: str) -> list[dict[str, Any]]:
        """Every record of one person (an access request), by the code they show."""
        return self.privacy.records_of(code)

    def erase_beneficiary(self, code: str) -> int:
        """An erasure request (Privacy.erase); the old values then leave the files."""
        stored = self.privacy.pseudonym(code)

        def body() -> int:  # the household composition follows the records' tombstone
            person = self.households.person_n(stored)
            erased = self.privacy.erase(code)
            self.households.follow_erasure(str(stored), person)
            return erased

        n = self.sql.atomic(body)
        self.stations.figures_changed()
        self.wal_pending = not self.sql.reclaim((*ERASED_TABLES, "households"))
        return n

    # -- ingest and inquiry -----------------------------------------------------------------
    def ingest(self, batch: Incoming) -> IngestResult:
        """Store a validated batch in one transaction and advance the contiguous head."""
        return self.ingestion.ingest_many([batch])[0]

    def ingest_many(self, batches: Sequence[Incoming]) -> list[IngestResult]:
        """Several batches in one transaction (group commit)."""
        return self.ingestion.ingest_many(batches)

    def quarantine(
        self, topic: str, payload: bytes, reason: str, cap: QuarantineCap | None = None
    ) -> bool:
        """Keep a refused message, within its station's ``cap`` (else counted only: False)."""
        return self.inquiry.quarantine(topic, payload, reason, cap)

    def conflicts(self) -> list[ConflictRow]:
        return self.inquiry.conflicts()

    def quarantined(self, station: str | None = None) -> list[QuarantineRow]:
        return self.inquiry.quarantined(station)

    def quarantine_dropped(self) -> list[DroppedCount]:
        """Per station, the messages that came over its quarantine cap (not kept)."""
        return self.inquiry.dropped()

    def purge_quarantine(
        self, station: str | None = None, before: str | None = None, *, dry_run: bool = False
    ) -> tuple[int, int]:
        """Remove quarantined messages (Inquiry.purge_quarantine): (messages, bytes)."""
        return self.inquiry.purge_quarantine(station, before, dry_run=dry_run)

    # -- fleet ----------------------------------------------------------------------------
    def update_status(self, status: StationStatus, retained: bool) -> bool:
        """Keep the newest status of a station; an older one is ignored (False)."""
        return self.stations.update_status(status)

    def head(self, station: str, epoch: str) -> tuple[int, int]:
        return self.stations.head(station, epoch)

    def heads(self) -> list[HeadRow]:
        return self.stations.heads()

    def change_stamp(self) -> tuple[object, ...]:
        """Differs whenever a record is stored, the registry changes, or profiles, households,
        a purge or an erasure change the figures (for caches)."""
        return self.stations.change_stamp()

    def fleet(self) -> list[FleetRow]:
        return self.stations.fleet()

    # -- registry and profiles ------------------------------------------------------------
    def set_registry(self, registry: Registry, station: str = "all") -> None:
        self.registry.set(registry, station)

    def registries(self) -> dict[str, Registry]:
        return self.registry.all()

    def registry_version(self) -> int:
        return self.registry.version()

    def import_profiles(self, profiles: Iterable[ProfileLine], *, replace_all: bool = False) -> int:
        """Household profile tags for beneficiary codes (Profiles.import_profiles)."""

        def body() -> int:  # who is in which profile may change in any month
            n = self.profiles.import_profiles(profiles, replace_all=replace_all)
            self.digests.changed_all()
            return n

        n = self.sql.atomic(body)
        self.stations.figures_changed()
        return n

    def import_households(
        self, compositions: Sequence[Composition], *, replace_all: bool = False
    ) -> int:
        """Household compositions for beneficiary codes (Households.import_compositions)."""
        n = self.households.import_compositions(compositions, replace_all=replace_all)
        self.stations.figures_changed()
        return n

    # -- retention ------------------------------------------------------------------------
    def purge(
        self, before: str, mode: Literal["aggregate", "delete"], *, dry_run: bool = False
    ) -> PurgeResult:
        result = self.retention.purge(before, mode, dry_run=dry_run)
        if not dry_run:
            self.stations.figures_changed()
            self.wal_pending = not self.sql.reclaim(())
        return result

    # -- reading --------------------------------------------------------------------------
    def records(self, station: str | None = None) -> Iterator[dict[str, Any]]:
        if station is None:
            yield from self.sql.fetch("SELECT * FROM records ORDER BY station, epoch, seq")
        else:
            yield from self.sql.fetch(
                "SELECT * FROM records WHERE station = ? ORDER BY epoch, seq", [station]
            )

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows of a read-only query (portable SQL, ``?`` placeholders)."""
        return self.sql.fetch(sql, params)

    def refresh_digests(self, stop: Callable[[], bool] | None = None) -> int:
        """Build the month digests that are stale (Digests.refresh), then the visit digests
        (their marks follow the month digests': after them), newest month first, a month at a
        time, stopping between two when ``stop()`` says so; how many month digests were built."""
        built = self.digests.refresh(stop)
        for row in self.sql.fetch("SELECT month FROM month_digests ORDER BY month DESC"):
            if stop is not None and stop():
                break
            self.visit_digests.months(str(row["month"]), str(row["month"]))
        return built

    def analyze(self) -> None:
        """Refresh the planner's statistics (benchmarks, after a bulk load)."""
        self.sql.analyze()

    def close(self) -> None:
        self.sql.close()


class SQLiteLedgerStore(SqlLedgerStore):
    """The ledger in one SQLite file (only a constructor: the dialect does the work)."""

    def __init__(self, path: Path | str, *, pseudonym_key: bytes | None = None) -> None:
        self.file = SQLiteDialect(path)
        super().__init__(self.file, pseudonym_key=pseudonym_key)

    @property
    def path(self) -> Path:
        return self.file.path

    @property
    def db(self) -> sqlite_utils.Database:
        return self.file.db


class PostgresLedgerStore(SqlLedgerStore):
    """The ledger in a PostgreSQL database (only a constructor: the dialect does the work)."""

    def __init__(self, url: str, *, pseudonym_key: bytes | None = None) -> None:
        from .pg import PostgresDialect  # psycopg only when PostgreSQL is used

        self.server = PostgresDialect(url)
        super().__init__(self.server, pseudonym_key=pseudonym_key)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def reconnect_tries(self) -> int:
        return self.server.reconnect_tries

    @reconnect_tries.setter
    def reconnect_tries(self, tries: int) -> None:
        self.server.reconnect_tries = tries


def open_store(url: str, *, pseudonym_key: bytes | None = None) -> SqlLedgerStore:
    """A ledger store from its URL: a path or ``sqlite:///path``, or ``postgresql://…``.

    The schema is brought to the latest version on open (``ledger/store/migrations.py``)."""
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresLedgerStore(url, pseudonym_key=pseudonym_key)
    if url.startswith("sqlite:///"):
        return SQLiteLedgerStore(url[len("sqlite:///") - 1 :], pseudonym_key=pseudonym_key)
    if "://" in url:
        raise ValueError(
            f"unsupported database URL {url!r} (use a path, sqlite:///path or postgresql://…)"
        )
    return SQLiteLedgerStore(url, pseudonym_key=pseudonym_key)
