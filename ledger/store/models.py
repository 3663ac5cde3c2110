"""What the ledger store returns and raises: results, typed read rows (NULL columns as ``None``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, Protocol, Self

__all__ = [
    "ConflictRow",
    "FleetRow",
    "HeadRow",
    "Incoming",
    "IngestResult",
    "PseudonymMismatch",
    "PurgeResult",
    "QuarantineRow",
    "ReadRow",
    "SchemaError",
    "StoreUnavailable",
    "utc_now",
]


class SchemaError(RuntimeError):
    """The database was made by a newer ledger: this one must not write into it."""


class StoreUnavailable(RuntimeError):
    """The database failed (connection lost and not back after bounded retries, disk full…),
    not the message: nothing was stored, nothing is acked, the station sends it again."""


class PseudonymMismatch(RuntimeError):
    """The database was made with another ``pseudonymise`` / ``pseudonym_key`` setting: writing
    would mix hashes of two keys, or raw codes with hashes."""


def utc_now() -> str:
    """Now as the ledger writes times: ISO-8601 UTC, milliseconds, ``Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Incoming(Protocol):
    """A batch as ingest reads it: a decoded :class:`sync.wire.Batch` (Records), or one the
    decode process accepted (:class:`sync.wire.BatchRows`: its rows, as the child made
    them from the records it checked)."""

    @property
    def station(self) -> str: ...

    @property
    def epoch(self) -> str: ...

    @property
    def rows(self) -> Sequence[tuple[Any, ...]]:
        """Each record's fields in ``sync.wire.RECORD_FIELDS`` order, absent ones None."""
        ...


@dataclass(frozen=True, slots=True)
class IngestResult:
    station: str
    epoch: str
    acked_through: int
    received_through: int
    inserted: int
    duplicates: int
    conflicts: tuple[str, ...] = field(default_factory=tuple)


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


class ReadRow(Mapping[str, Any]):
    """A typed row that also reads as a mapping (``row["station"]``, ``dict(row)``), so code
    written for the dict rows of old keeps working; new code uses the attributes, which
    ``mypy --strict`` checks, NULLs included."""

    __slots__ = ()

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> Self:
        """The row from a query's dict (columns named as the fields; extra columns ignored)."""
        return cls(**{f.name: row[f.name] for f in fields(cls)})  # type: ignore[arg-type]

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]

    def __getitem__(self, key: str) -> Any:
        if not isinstance(key, str) or key not in self._names():
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    def _names(self) -> tuple[str, ...]:
        return tuple(f.name for f in fields(self))  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True, eq=True)
class FleetRow(ReadRow):
    """One station: its last status (all NULL for a station known only by its records), its
    records acked and conflicts kept. Flags are 0/1 as stored."""

    station: str
    online: int | None
    last_seen: str | None
    backlog: int | None
    clock_synced: int | None
    scale_ok: int | None
    calibration_age_days: float | None
    version: str | None
    last_record_at: str | None
    records: int | None  # NULL: a status but no record yet
    conflicts: int
    # messages of this station kept in quarantine, and those dropped over its cap (> 0: the
    # station floods the quarantine, [ledger] quarantine_max_*; `ledger quarantine purge`)
    quarantined: int = 0
    quarantine_dropped: int = 0

    @property
    def flooding(self) -> bool:
        """Whether the station sent more invalid messages than its quarantine cap keeps."""
        return self.quarantine_dropped > 0


@dataclass(frozen=True, slots=True, eq=True)
class ConflictRow(ReadRow):
    """A record received with other content than the one stored, or not chained to it. The
    hashes are NULL once the person of either record was erased (``erase_beneficiary``)."""

    id: int
    station: str
    epoch: str
    seq: int
    kind: str  # "content" | "chain"
    existing_hash: str | None
    new_hash: str | None
    record: str  # the received record as JSON (codes pseudonymised, hashes keyed)
    received_at: str


@dataclass(frozen=True, slots=True, eq=True)
class QuarantineRow(ReadRow):
    """A refused message (its bytes stay in the table: ``payload``)."""

    id: int
    topic: str
    reason: str
    received_at: str
    size: int | None  # NULL: kept by a ledger older than schema step 7
    sha256: str | None
    station: str | None = None  # of the topic ("" none); NULL: kept before schema step 13


@dataclass(frozen=True, slots=True, eq=True)
class HeadRow(ReadRow):
    """How far one (station, epoch) is stored: contiguous and chained (``acked_through``) and
    the highest seq seen (``received_through``)."""

    station: str
    epoch: str
    acked_through: int
    last_hash: str | None  # NULL: the head's record was erased, its hash with it
    received_through: int
    first_seen: str
    updated_at: str
