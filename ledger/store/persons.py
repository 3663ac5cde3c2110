"""Persons over time: new versus returning in a period, visits per person, first-seen years —
the SQL of ledger/funders/persons.py (integer person and visit ids, schema step 5).

A person is a stored beneficiary code (``person_n``) with a live weighing; a visit a
(station, visit) with one. Bounds are record times (start included, end excluded);
``stations`` restricts every count to those stations (None: every station).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

__all__ = ["ReadStore", "first_years", "new_and_returning", "record_years", "visits_per_person"]

LIVE = "r.kind = 'weighing' AND r.voided_by IS NULL AND r.person_n IS NOT NULL"


class ReadStore(Protocol):
    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]: ...


def _stations(stations: Sequence[str] | None, params: list[Any]) -> str:
    if stations is None:
        return ""
    params += list(stations)
    return f" AND r.station IN ({', '.join('?' * len(stations)) or 'NULL'})"


def new_and_returning(
    store: ReadStore, bounds: tuple[str, str], stations: Sequence[str] | None = None
) -> dict[str, int]:
    """``persons`` of the period and, of them, ``new`` ones: whose first live weighing (at
    ``stations``) is in the period. One pass over the records before the period's end."""
    params: list[Any] = [bounds[0], bounds[1]]
    where = f"{LIVE} AND r.occurred_at < ?" + _stations(stations, params)
    params.append(bounds[0])
    rows = store.fetch(
        "SELECT count(*) AS persons, sum(CASE WHEN p.first >= ? THEN 1 ELSE 0 END) AS new "
        "FROM (SELECT r.person_n, min(r.occurred_at) AS first, max(r.occurred_at) AS last "
        f"FROM records r WHERE {where} GROUP BY r.person_n) p WHERE p.last >= ?",
        params,
    )
    row = rows[0] if rows else {}
    return {"persons": int(row.get("persons") or 0), "new": int(row.get("new") or 0)}


def visits_per_person(
    store: ReadStore, bounds: tuple[str, str], stations: Sequence[str] | None = None
) -> dict[int, int]:
    """How many persons came how many times in the period: {visits: persons}."""
    params: list[Any] = list(bounds)
    where = f"{LIVE} AND r.occurred_at >= ? AND r.occurred_at < ?" + _stations(stations, params)
    rows = store.fetch(
        "SELECT p.visits, count(*) AS persons FROM (SELECT r.person_n, "
        f"count(DISTINCT r.visit_n) AS visits FROM records r WHERE {where} "
        "GROUP BY r.person_n) p GROUP BY p.visits ORDER BY p.visits",
        params,
    )
    return {int(r["visits"]): int(r["persons"]) for r in rows}


def first_years(store: ReadStore) -> dict[str, int]:
    """Persons by the year of their first live weighing: {"2016": 1482, …}."""
    rows = store.fetch(
        "SELECT substr(p.first, 1, 4) AS year, count(*) AS persons FROM (SELECT r.person_n, "
        f"min(r.occurred_at) AS first FROM records r WHERE {LIVE} GROUP BY r.person_n) p "
        "GROUP BY substr(p.first, 1, 4) ORDER BY 1"
    )
    return {str(r["year"]): int(r["persons"]) for r in rows}


def record_years(store: ReadStore) -> tuple[int, int] | None:
    """The first and last year with a weighing (or kept by a purge), None when empty."""
    rows = store.fetch(
        "SELECT min(y) AS first, max(y) AS last FROM ("
        "SELECT substr(min(occurred_at), 1, 4) AS y FROM records WHERE kind = 'weighing' "
        "UNION ALL SELECT substr(max(occurred_at), 1, 4) FROM records WHERE kind = 'weighing' "
        "UNION ALL SELECT substr(min(month), 1, 4) FROM aggregates "
        "UNION ALL SELECT substr(max(month), 1, 4) FROM aggregates) years"
    )
    if not rows or rows[0]["first"] is None:
        return None
    return int(rows[0]["first"]), int(rows[0]["last"])
