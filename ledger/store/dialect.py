"""What a database gives the ledger store: statements, transactions, and a few bulk operations.

The store holds one :class:`Dialect` (composition): :class:`ledger.store.sqlite.SQLiteDialect`
or :class:`ledger.store.pg.PostgresDialect`. The rules are written once, over this interface, in
portable SQL with ``?`` placeholders in the subset both databases understand (``ON CONFLICT``,
``coalesce``, ``substr``); each dialect runs it, and does in its own faster way the few bulk
operations where the two differ (COPY, arrays).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

__all__ = ["Dialect", "T"]

T = TypeVar("T")


class Dialect(Protocol):
    """One database connection (or two) and its spelling of the store's operations."""

    name: str  # "sqlite" | "postgresql", also the schema's dialect (migrations.TYPES)
    for_update: str  # appended to a SELECT that locks its rows ("" where writers take turns)

    def exec(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """One statement inside the current transaction; its rows (none for a write)."""
        ...

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """One statement once per row of parameters."""
        ...

    def atomic(self, body: Callable[[], T]) -> T:
        """Run ``body`` in one transaction (joining the current one if any)."""
        ...

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows of a read-only query, as dicts, with SQLite's Python types on either database."""
        ...

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Many new rows into ``table`` (no conflict expected: the caller checked)."""
        ...

    def number(
        self, table: str, columns: tuple[str, ...], keys: Sequence[tuple[str, ...]]
    ) -> dict[tuple[Any, ...], int]:
        """``n`` of each key of a lookup table (``n`` an identity column), inserted first where
        missing."""
        ...

    def set_voided(self, station: str, epoch: str, pairs: Sequence[tuple[int, int]]) -> None:
        """``voided_by = seq`` on each record ``(target, seq)``, the earliest void winning."""
        ...

    def reclaim(self, tables: Sequence[str]) -> bool:
        """After an erasure or a purge: make the old values leave the files now (SQLite: a WAL
        checkpoint; PostgreSQL: a VACUUM of ``tables``). False when it could not be done yet
        (a reader holds SQLite's WAL: run it again later)."""
        ...

    def analyze(self) -> None:
        """Refresh the planner's statistics (what autovacuum or a nightly ANALYZE does)."""
        ...

    def close(self) -> None: ...
