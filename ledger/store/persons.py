"""Persons over time: new versus returning in a period, visits per person, first-seen years —
what ledger/funders/persons.py reads (integer person and visit ids, schema step 5).

A person is a stored beneficiary code (``person_n``) with a live weighing; a visit a
(station, visit) with one. Bounds are record times (start included, end excluded);
``stations`` restricts every count to those stations (None: every station).

Where the store keeps visit digests (ledger/store/visit_digests.py) the figures are unions of
the months' id sets, never a pass over the records of whole months; each ``*_sql`` function is
the same figure from the records (a store without digests), kept as the reference.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Any, Protocol

from .digests import month_bounds
from .visit_digests import VisitDigests, VisitMonth, period_parts

__all__ = [
    "ReadStore",
    "digests_of",
    "first_years",
    "first_years_sql",
    "new_and_returning",
    "new_and_returning_sql",
    "persons_before",
    "record_years",
    "visits_per_person",
    "visits_per_person_sql",
]

LIVE = "r.kind = 'weighing' AND r.voided_by IS NULL AND r.person_n IS NOT NULL"


class ReadStore(Protocol):
    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]: ...


def _stations(stations: Sequence[str] | None, params: list[Any]) -> str:
    if stations is None:
        return ""
    params += list(stations)
    return f" AND r.station IN ({', '.join('?' * len(stations)) or 'NULL'})"


def new_and_returning_sql(
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


def visits_per_person_sql(
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


def first_years_sql(store: ReadStore) -> dict[str, int]:
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


# -- from the visit digests ----------------------------------------------------------------------
_TIME_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}T")


def digests_of(store: Any, bounds: tuple[str, str] | None = None) -> VisitDigests | None:
    """The store's visit digests, None where it keeps none (or the bounds are not times)."""
    found = getattr(store, "visit_digests", None)
    if not isinstance(found, VisitDigests):
        return None
    if bounds is not None and not all(_TIME_TEXT.match(b) for b in bounds):
        return None
    return found


def _previous(month: str) -> str:
    y, m = int(month[:4]), int(month[5:7])
    return f"{y - 1:04d}-12" if m == 1 else f"{y:04d}-{m - 1:02d}"


def persons_before(
    digests: VisitDigests, start: str, stations: Sequence[str] | None = None
) -> set[int]:
    """The persons with a live weighing (at ``stations``) before ``start`` (a record time)."""
    month = start[:7]
    parts: list[VisitMonth] = digests.months("0000-01", _previous(month))
    month_start = month_bounds(month)[0]
    if start > month_start:
        parts.append(digests.part(month_start, start))
    return set().union(*(p.persons(stations) for p in parts))


def new_and_returning(
    store: ReadStore, bounds: tuple[str, str], stations: Sequence[str] | None = None
) -> dict[str, int]:
    """``persons`` of the period and, of them, ``new`` ones: whose first live weighing (at
    ``stations``) is in the period — those not seen before it."""
    digests = digests_of(store, bounds)
    if digests is None:
        return new_and_returning_sql(store, bounds, stations)
    persons = set().union(*(p.persons(stations) for p in period_parts(digests, bounds)))
    before = persons_before(digests, bounds[0], stations) if persons else set()
    return {"persons": len(persons), "new": len(persons - before)}


def _pairs(part: VisitMonth, stations: Sequence[str] | None) -> set[int]:
    """The month's distinct (person, visit) as ``person << 40 | visit``, kept with it."""
    key = ("pairs", None if stations is None else tuple(sorted(set(stations))))
    hit: set[int] | None = part.memo.get(key)
    if hit is None:
        hit = set()
        for s in part.of(stations):
            hit.update(
                (p << 40) | v for p, v in zip(s.persons, s.visits, strict=True) if v is not None
            )
        part.memo[key] = hit
    return hit


def visits_per_person(
    store: ReadStore, bounds: tuple[str, str], stations: Sequence[str] | None = None
) -> dict[int, int]:
    """How many persons came how many times in the period: {visits: persons} (a person whose
    weighings carry no visit came 0 times)."""
    digests = digests_of(store, bounds)
    if digests is None:
        return visits_per_person_sql(store, bounds, stations)
    parts = period_parts(digests, bounds)
    pairs = set().union(*(_pairs(p, stations) for p in parts))
    per_person = Counter(x >> 40 for x in pairs)
    out = Counter(per_person.values())
    persons = set().union(*(p.persons(stations) for p in parts))
    if len(persons) > len(per_person):
        out[0] = len(persons) - len(per_person)
    return dict(sorted(out.items()))


def first_years(store: ReadStore) -> dict[str, int]:
    """Persons by the year of their first live weighing: {"2016": 1482, …}."""
    digests = digests_of(store)
    if digests is None:
        return first_years_sql(store)
    seen: set[int] = set()
    out: dict[str, int] = {}
    for month in digests.months("0000-01", "9999-12"):
        new = month.persons(None) - seen
        if new:
            out[month.month[:4]] = out.get(month.month[:4], 0) + len(new)
            seen |= new
    return out
