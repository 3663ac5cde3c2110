"""The ledger's storage, a package by concern; ``from ledger.store import …`` is its face."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .core import (
    INSERT_COLUMNS,
    PSEUDONYM_HEX,
    IngestResult,
    LedgerStore,
    PseudonymMismatch,
    PurgeResult,
    SchemaError,
    SQLiteLedgerStore,
    SqlLedgerStore,
    StoreUnavailable,
    open_store,
    profile_tags,
    pseudonym,
)

if TYPE_CHECKING:
    from .pg import PostgresLedgerStore

__all__ = [
    "INSERT_COLUMNS",
    "PSEUDONYM_HEX",
    "IngestResult",
    "LedgerStore",
    "PostgresLedgerStore",
    "PseudonymMismatch",
    "PurgeResult",
    "SQLiteLedgerStore",
    "SchemaError",
    "SqlLedgerStore",
    "StoreUnavailable",
    "open_store",
    "profile_tags",
    "pseudonym",
]


def __getattr__(name: str) -> object:
    # psycopg only when PostgreSQL is used
    if name == "PostgresLedgerStore":
        from .pg import PostgresLedgerStore

        return PostgresLedgerStore
    raise AttributeError(name)
