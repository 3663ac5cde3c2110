"""The ledger's storage, a package by concern; ``from ledger.store import …`` is its face.

``facade`` composes the concerns over one database ``dialect`` (``sqlite`` or ``pg``):
``ingest`` (every record once, heads, clock repair, voids), ``conflicts`` (conflicts and the
quarantine), ``fleet`` (station statuses, heads), ``registry``, ``profiles``, ``privacy``
(pseudonyms, keyed hashes, erasure), ``retention`` (purge); ``migrations`` is the frozen
schema; ``models`` the results and typed read rows.
"""

from __future__ import annotations

from .facade import (
    LedgerStore,
    PostgresLedgerStore,
    SQLiteLedgerStore,
    SqlLedgerStore,
    open_store,
)
from .ingest import INSERT_COLUMNS
from .models import (
    ConflictRow,
    FleetRow,
    HeadRow,
    Incoming,
    IngestResult,
    PseudonymMismatch,
    PurgeResult,
    QuarantineRow,
    SchemaError,
    StoreUnavailable,
)
from .privacy import PSEUDONYM_HEX, pseudonym
from .profiles import profile_tags

__all__ = [
    "INSERT_COLUMNS",
    "PSEUDONYM_HEX",
    "ConflictRow",
    "FleetRow",
    "HeadRow",
    "Incoming",
    "IngestResult",
    "LedgerStore",
    "PostgresLedgerStore",
    "PseudonymMismatch",
    "PurgeResult",
    "QuarantineRow",
    "SQLiteLedgerStore",
    "SchemaError",
    "SqlLedgerStore",
    "StoreUnavailable",
    "open_store",
    "profile_tags",
    "pseudonym",
]
