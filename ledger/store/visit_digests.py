"""Visit digests: each month's live visits as (person, visit, day) ids per station, and its sums
per station and category — what the persons and funders pages read instead of the records.

The month digests (ledger/store/digests.py) keep sets of visits and of persons, not which
person made which visit on which day: visits per person, new persons and the FEAD figures need
that pairing. A visit digest keeps, per month and station, the distinct (person_n, visit_n,
day) of the live weighings that carry a person, and per category the live items, kg and items
without a person. Any period's figures are then unions of a few months (ledger/store/
persons.py, households.py, eco.py), exact: a visit or a person seen in two months counts once.

Exact through every change without a hook of its own: every writer of records marks the
months it changes in ``digest_changes`` (the month digests' change rows, in the writer's own
transaction), and a month digest's rebuild changes its token while deleting those rows. So a
month's records are unchanged as long as its *mark* — the month digest's token, the count of
its pending change rows and the highest of their ids — is unchanged. A visit digest is built
from one statement that reads the month's records and its mark (one snapshot on both
databases), and is saved with that mark; it serves while the month's mark is the same.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from .dialect import Dialect
from .digests import month_bounds, split_period
from .models import utc_now

__all__ = ["BODY_VERSION", "StationMonth", "VisitDigests", "VisitMonth", "period_parts"]

log = logging.getLogger("ledger.store")

BODY_VERSION = 1
_MEMO = 240  # decoded months kept per store (20 years)
_LIVE = "r.kind = 'weighing' AND r.voided_by IS NULL AND r.occurred_at >= ? AND r.occurred_at < ?"
# a month's mark (see the module's docstring): token, pending change rows, their highest id
_MARKS = (
    "SELECT d.month AS month, d.token AS token, "
    "(SELECT count(*) FROM digest_changes c WHERE c.month = d.month) AS pending, "
    "(SELECT max(c.id) FROM digest_changes c WHERE c.month = d.month) AS last_change "
    "FROM month_digests d WHERE d.month >= ? AND d.month <= ?"
)


@dataclass(slots=True)
class StationMonth:
    """One station's live weighings of a month: ``persons``, ``visits`` (None: a weighing
    with no visit) and ``days`` (``YYYY-MM-DD``) as parallel lists, one entry per distinct
    (person, visit, day); ``sums``: category ('' for none) -> [items, net_mg, items without a
    person]."""

    persons: list[int] = field(default_factory=list)
    visits: list[int | None] = field(default_factory=list)
    days: list[str] = field(default_factory=list)
    sums: dict[str, list[int]] = field(default_factory=dict)


@dataclass(slots=True)
class VisitMonth:
    """A month's (or, for a period's partial edge, a part of a month's) station digests."""

    month: str
    mark: str | None  # None: a part, or built while the month's mark could not be read
    stations: dict[str, StationMonth]
    memo: dict[Any, Any] = field(default_factory=dict)  # what readers derived from it

    def of(self, stations: Sequence[str] | None) -> list[StationMonth]:
        """The station digests of ``stations`` (None: every station)."""
        if stations is None:
            return list(self.stations.values())
        return [self.stations[s] for s in dict.fromkeys(stations) if s in self.stations]

    def persons(self, stations: Sequence[str] | None) -> set[int]:
        """The persons with a live weighing in it (at ``stations``), kept with the digest."""
        key = ("persons", None if stations is None else tuple(sorted(set(stations))))
        hit: set[int] | None = self.memo.get(key)
        if hit is None:
            hit = set()
            for part in self.of(stations):
                hit.update(part.persons)
            self.memo[key] = hit
        return hit

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "v": BODY_VERSION,
                "s": {
                    name: [s.persons, s.visits, [int(d[8:10]) for d in s.days], s.sums]
                    for name, s in self.stations.items()
                },
            }
        )

    @classmethod
    def decode(cls, month: str, mark: str, body: bytes) -> VisitMonth | None:
        """None for a body of another version (it is built again)."""
        data = orjson.loads(body)
        if not isinstance(data, dict) or data.get("v") != BODY_VERSION:
            return None
        days = [f"{month}-{d:02d}" for d in range(32)]
        stations = {
            name: StationMonth(persons, visits, [days[d] for d in day_numbers], sums)
            for name, (persons, visits, day_numbers, sums) in data["s"].items()
        }
        return cls(month, mark, stations)


def _mark(row: dict[str, Any]) -> str:
    return f"{row['token'] or ''}|{int(row['pending'] or 0)}|{row['last_change'] or ''}"


class VisitDigests:
    """The ``visit_digests`` table (its month's mark, its body), read through a memo."""

    def __init__(self, db: Dialect) -> None:
        self.db = db
        self._memo: dict[str, VisitMonth] = {}
        self._lock = threading.Lock()
        # what readers keep beside the digests under their own exact keys (households.py)
        self.kept: dict[str, tuple[Any, Any]] = {}

    def months(self, first: str, last: str) -> list[VisitMonth]:
        """The digest of every month from ``first`` to ``last`` (``YYYY-MM``, both included)
        that holds records (or held some), in month order: built now (and saved) where the
        month's records changed since."""
        found = self.db.fetch(
            f"SELECT m.month AS month, m.token AS token, m.pending AS pending, "
            f"m.last_change AS last_change, v.mark AS saved FROM ({_MARKS}) m "
            "LEFT JOIN visit_digests v ON v.month = m.month ORDER BY m.month",
            [first, last],
        )
        out: dict[str, VisitMonth] = {}
        stale: list[str] = []
        for row in found:
            month, mark = str(row["month"]), _mark(row)
            digest = self._cached(month, mark) if row["saved"] == mark else None
            if digest is None:
                stale.append(month)
            else:
                out[month] = digest
        for run in _runs(stale):
            for digest in self._build(run[0], run[-1]):
                out[digest.month] = digest
        return [out[m] for m in sorted(out)]

    def part(self, start: str, end: str) -> VisitMonth:
        """The digest of the records with ``start <= time < end`` (inside one month), from the
        records themselves (a period's partial months; not kept)."""
        month = start[:7]
        found = self._read(start, end, None)
        return found.get(month) or VisitMonth(month, None, {})

    def _cached(self, month: str, mark: str) -> VisitMonth | None:
        with self._lock:
            hit = self._memo.get(month)
        if hit is not None and hit.mark == mark:
            return hit
        rows = self.db.fetch(
            "SELECT body FROM visit_digests WHERE month = ? AND mark = ?", [month, mark]
        )
        if not rows or rows[0]["body"] is None:
            return None
        digest = VisitMonth.decode(month, mark, bytes(rows[0]["body"]))
        if digest is not None:
            self._remember(digest)
        return digest

    def _remember(self, digest: VisitMonth) -> None:
        with self._lock:
            self._memo.pop(digest.month, None)
            self._memo[digest.month] = digest
            while len(self._memo) > _MEMO:
                del self._memo[next(iter(self._memo))]

    def _build(self, first: str, last: str) -> list[VisitMonth]:
        """The months ``first`` to ``last`` from their records, saved with their marks."""
        start, end = month_bounds(first)[0], month_bounds(last)[1]
        built = list(self._read(start, end, (first, last)).values())
        saved = [d for d in built if d.mark is not None]
        if saved:
            try:
                self.db.atomic(lambda: self._save(saved))
            except Exception as exc:  # a read-only file or a lost connection: serve, not keep
                log.debug("visit digests %s..%s not saved: %s", first, last, exc)
        for digest in saved:
            self._remember(digest)
        return built

    def _save(self, digests: Iterable[VisitMonth]) -> None:
        now = utc_now()
        for digest in digests:
            self.db.exec(
                "INSERT INTO visit_digests (month, mark, body, built_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (month) DO UPDATE SET mark = excluded.mark, body = excluded.body, "
                "built_at = excluded.built_at",
                (digest.month, digest.mark, digest.encode(), now),
            )

    def _read(self, start: str, end: str, marks: tuple[str, str] | None) -> dict[str, VisitMonth]:
        """The digests of ``start <= time < end`` by month, from one statement (one snapshot):
        the (station, person, visit, day) of live weighings, the sums per station and category,
        and with ``marks`` (first and last month) each month's mark."""
        params: list[Any] = [start, end, start, end]
        sql = (
            "SELECT 0 AS part, r.station AS station, r.person_n AS a, r.visit_n AS b, "
            "substr(r.occurred_at, 1, 10) AS c, CAST(NULL AS TEXT) AS d, "
            "CAST(0 AS BIGINT) AS n1, CAST(0 AS BIGINT) AS n2, CAST(0 AS BIGINT) AS n3 "
            f"FROM records r WHERE {_LIVE} AND r.person_n IS NOT NULL "
            "GROUP BY r.station, r.person_n, r.visit_n, substr(r.occurred_at, 1, 10) "
            "UNION ALL SELECT 1, r.station, NULL, NULL, substr(r.occurred_at, 1, 7), "
            "coalesce(r.category, ''), count(*), sum(coalesce(r.net_mg, 0)), "
            "sum(CASE WHEN r.person_n IS NULL THEN 1 ELSE 0 END) "
            f"FROM records r WHERE {_LIVE} "
            "GROUP BY r.station, substr(r.occurred_at, 1, 7), coalesce(r.category, '')"
        )
        if marks is not None:
            sql += (
                " UNION ALL SELECT 2, NULL, NULL, NULL, m.month, m.token, m.pending, "
                f"m.last_change, 0 FROM ({_MARKS}) m"
            )
            params += list(marks)
        out: dict[str, VisitMonth] = {}

        def month_of(month: str) -> VisitMonth:
            found = out.get(month)
            if found is None:
                found = out[month] = VisitMonth(month, None, {})
            return found

        mark_of: dict[str, str] = {}
        for part, station, a, b, c, d, n1, n2, n3 in (
            tuple(row.values()) for row in self.db.fetch(sql, params)
        ):
            if part == 0:
                s = month_of(c[:7]).stations.setdefault(station, StationMonth())
                s.persons.append(int(a))
                s.visits.append(None if b is None else int(b))
                s.days.append(str(c))
            elif part == 1:
                s = month_of(c).stations.setdefault(station, StationMonth())
                s.sums[str(d)] = [int(n1), int(n2 or 0), int(n3 or 0)]
            else:
                mark_of[str(c)] = _mark({"token": d, "pending": n1, "last_change": n2})
                month_of(str(c))
        if marks is not None:
            for month, digest in out.items():
                digest.mark = mark_of.get(month)  # None: no month row yet (not kept)
        return out


def _runs(months: list[str]) -> list[list[str]]:
    """``YYYY-MM`` months (sorted) as runs of consecutive months."""
    runs: list[list[str]] = []
    for month in months:
        if runs and month_bounds(runs[-1][-1])[1][:7] == month:
            runs[-1].append(month)
        else:
            runs.append([month])
    return runs


def period_parts(digests: VisitDigests, bounds: tuple[str, str]) -> list[VisitMonth]:
    """The digests of the whole months of ``bounds`` and the parts of its partial months, in
    time order (bounds are record times: start included, end excluded)."""
    first, last, partial = split_period(*bounds)
    parts = [digests.part(a, b) for a, b in partial]
    whole = digests.months(first, last) if first else []
    return sorted([*whole, *parts], key=lambda d: d.month)
