"""Household compositions per beneficiary code (counts of members, with dates) and the FEAD /
ESF+ counts over a period's visits: the SQL of ledger/funders/fead.py.

A composition is what the office captured once for a code: how many adult women, adult men,
children 0–15 and 16–17 live in the household, and of its members how many are 65 or over,
disabled, migrants (or of foreign background, or a minority), homeless, single parents. It holds
from ``valid_from`` to ``valid_until`` (days, both included; '' = no bound). Codes are stored
as the records' (pseudonymised when the ledger pseudonymises); no name is ever stored.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .dialect import Dialect
from .models import utc_now
from .persons import digests_of
from .privacy import Privacy
from .visit_digests import VisitDigests, period_parts

__all__ = [
    "FIGURES",
    "KINDS",
    "Composition",
    "Households",
    "fead_counts",
    "fead_counts_sql",
    "fead_mass",
    "fead_mass_sql",
]

# member kinds, as columns of ``households`` and fields of :class:`Composition`
KINDS = (
    "women",
    "men",
    "children_0_15",
    "children_16_17",
    "seniors",
    "disabled",
    "migrants",
    "homeless",
    "single_parents",
)
# what a household counts for each figure: SQL over a composition's columns
FIGURES = {
    "persons": "h.women + h.men + h.children_0_15 + h.children_16_17",
    "women": "h.women",
    "men": "h.men",
    "children_15": "h.children_0_15",
    "children_17": "h.children_0_15 + h.children_16_17",
    "seniors": "h.seniors",
    "disabled": "h.disabled",
    "migrants": "h.migrants",
    "homeless": "h.homeless",
    "single_parents": "h.single_parents",
}


@dataclass(frozen=True, slots=True)
class Composition:
    """One household's members from ``since`` to ``until`` (ISO days, both included; '' = no
    bound). ``code`` is the code as shown on the card (the store hashes it when it must)."""

    code: str
    since: str = ""
    until: str = ""
    women: int = 0
    men: int = 0
    children_0_15: int = 0
    children_16_17: int = 0
    seniors: int = 0
    disabled: int = 0
    migrants: int = 0
    homeless: int = 0
    single_parents: int = 0

    @property
    def size(self) -> int:
        return self.women + self.men + self.children_0_15 + self.children_16_17


class Households:
    """The ``households`` table: imported by the office, read by the FEAD report."""

    def __init__(self, db: Dialect, privacy: Privacy) -> None:
        self.db = db
        self.privacy = privacy

    def import_compositions(
        self, compositions: Sequence[Composition], *, replace_all: bool = False
    ) -> int:
        """Store the compositions in one transaction: each code given has its former ones
        replaced; ``replace_all`` forgets every code first. Returns the rows stored."""
        self.privacy.require_writable()
        now = utc_now()
        rows = [
            (
                str(self.privacy.pseudonym(c.code)),
                c.since,
                c.until,
                *(getattr(c, kind) for kind in KINDS),
                now,
            )
            for c in compositions
        ]
        codes = sorted({(row[0],) for row in rows})

        def body() -> None:
            if replace_all:
                self.db.exec("DELETE FROM households")
            else:
                self.db.many("DELETE FROM households WHERE beneficiary = ?", codes)
            if rows:
                self.db.many(
                    f"INSERT INTO households (beneficiary, valid_from, valid_until, "
                    f"{', '.join(KINDS)}, imported_at) "
                    f"VALUES ({', '.join('?' * (len(KINDS) + 4))})",
                    rows,
                )

        self.db.atomic(body)
        return len(rows)

    def of(self, code: str) -> list[dict[str, Any]]:
        """A code's compositions, oldest first (an access request)."""
        return self.db.fetch(
            f"SELECT valid_from, valid_until, {', '.join(KINDS)}, imported_at FROM households "
            "WHERE beneficiary = ? ORDER BY valid_from",
            [self.privacy.pseudonym(code)],
        )

    def follow_erasure(self, stored: str, person_n: int | None) -> None:
        """After an erasure (Privacy.erase, same transaction): the household goes with the
        person's tombstone (found by their integer id), so the periods they came keep their
        members; a code never seen in a record has its compositions removed."""
        tombstone = None
        if person_n is not None:
            found = self.db.exec("SELECT beneficiary FROM person_ids WHERE n = ?", (person_n,))
            tombstone = found[0][0] if found else None
        if tombstone is None or tombstone == stored:
            self.db.exec("DELETE FROM households WHERE beneficiary = ?", (stored,))
        else:
            self.db.exec(
                "UPDATE households SET beneficiary = ? WHERE beneficiary = ?", (tombstone, stored)
            )

    def person_n(self, stored: str | None) -> int | None:
        found = self.db.exec("SELECT n FROM person_ids WHERE beneficiary = ?", (stored,))
        return int(found[0][0]) if found else None


def fead_counts_sql(
    store: Any, bounds: tuple[str, str], stations: Sequence[str] | None = None
) -> dict[str, int]:
    """The period's households and, over those with a composition, each figure's sum.

    A household is a beneficiary code (its integer ``person_n``) with at least one live
    weighing in ``bounds`` (record times, start included, end excluded; of ``stations`` when
    given). Its status is the
    composition in force on the day of each of its visits; a figure counts, per household,
    the most members of that kind at any of its visits of the period (a child born mid-year
    is one more person; a child turning 16 stays one child under 18). Returns ``households``,
    ``known`` (with a composition at one visit at least), ``partly`` (known, but a visit
    without one) and the :data:`FIGURES` sums over the known."""
    params: list[Any] = list(bounds)
    # person_n (schema step 5): the covering period index answers the visits' part alone
    where = (
        "r.kind = 'weighing' AND r.voided_by IS NULL AND r.occurred_at >= ? "
        "AND r.occurred_at < ? AND r.person_n IS NOT NULL"
    )
    if stations is not None:
        where += f" AND r.station IN ({', '.join('?' * len(stations)) or 'NULL'})"
        params += list(stations)
    maxes = ", ".join(f"max({sql}) AS {name}" for name, sql in FIGURES.items())
    sums = ", ".join(f"sum({name}) AS {name}" for name in FIGURES)
    # one row per (code, day of visit): the composition in force that day, if any
    rows = store.fetch(
        f"SELECT count(*) AS households, "
        "sum(CASE WHEN days_known > 0 THEN 1 ELSE 0 END) AS known, "
        "sum(CASE WHEN days_known > 0 AND days_known < days THEN 1 ELSE 0 END) AS partly, "
        f"{sums} FROM ("
        "SELECT v.person_n, count(DISTINCT v.day) AS days, "
        "count(DISTINCT CASE WHEN h.beneficiary IS NOT NULL THEN v.day END) AS days_known, "
        f"{maxes} FROM ("
        "SELECT DISTINCT r.person_n, substr(r.occurred_at, 1, 10) AS day "
        f"FROM records r WHERE {where}) v "
        "JOIN person_ids p ON p.n = v.person_n "
        "LEFT JOIN households h ON h.beneficiary = p.beneficiary "
        "AND (h.valid_from = '' OR h.valid_from <= v.day) "
        "AND (h.valid_until = '' OR v.day <= h.valid_until) "
        "GROUP BY v.person_n) per_household",
        params,
    )
    row = rows[0] if rows else {}
    return {key: int(row.get(key) or 0) for key in ("households", "known", "partly", *FIGURES)}


def fead_mass_sql(
    store: Any, bounds: tuple[str, str], stations: Sequence[str] | None = None
) -> dict[str, int]:
    """The period's live weighings: ``net_mg``, ``items``, and ``anonymous`` (items with no
    beneficiary code: given to nobody the report can count)."""
    params: list[Any] = list(bounds)
    where = (
        "r.kind = 'weighing' AND r.voided_by IS NULL AND r.occurred_at >= ? AND r.occurred_at < ?"
    )
    if stations is not None:
        where += f" AND r.station IN ({', '.join('?' * len(stations)) or 'NULL'})"
        params += list(stations)
    rows = store.fetch(
        "SELECT sum(coalesce(r.net_mg, 0)) AS net_mg, count(*) AS items, "
        "sum(CASE WHEN r.person_n IS NULL THEN 1 ELSE 0 END) "
        f"AS anonymous FROM records r WHERE {where}",
        params,
    )
    row = rows[0] if rows else {}
    return {key: int(row.get(key) or 0) for key in ("net_mg", "items", "anonymous")}


# -- from the visit digests (ledger/store/visit_digests.py) ---------------------------------------
def fead_counts(
    store: Any, bounds: tuple[str, str], stations: Sequence[str] | None = None
) -> dict[str, int]:
    """:func:`fead_counts_sql`'s figures from the visit digests: each household's days of
    visit from the months' (person, day) ids, its compositions from ``households``."""
    digests = digests_of(store, bounds)
    if digests is None:
        return fead_counts_sql(store, bounds, stations)
    days: dict[int, set[str]] = {}
    for part in period_parts(digests, bounds):
        for s in part.of(stations):
            for person, day in zip(s.persons, s.days, strict=True):
                found = days.get(person)
                if found is None:
                    days[person] = {day}
                else:
                    found.add(day)
    out = dict.fromkeys(("households", "known", "partly", *FIGURES), 0)
    out["households"] = len(days)
    if not days:
        return out
    totals = [0] * len(FIGURES)
    for person, held in _compositions(store, digests).items():
        visited = days.get(person)
        if not visited:
            continue
        ordered = sorted(visited)
        spans: list[tuple[int, int]] = []  # the days each composition holds: index ranges
        matched: list[tuple[Any, ...]] = []
        for since, until, values in held:
            if since is None or until is None:  # NULL bounds match no day, as in SQL
                continue
            low = bisect_left(ordered, since) if since else 0
            high = bisect_right(ordered, until) if until else len(ordered)
            if low < high:
                spans.append((low, high))
                matched.append(values)
        if not matched:
            continue
        known = end = 0  # days with a composition in force: the spans' union
        for low, high in sorted(spans):
            if high > end:
                known += high - max(low, end)
                end = high
        out["known"] += 1
        out["partly"] += known < len(ordered)
        # the most members of each kind at any visit (the columns are NOT NULL)
        most = matched[0] if len(matched) == 1 else tuple(map(max, zip(*matched, strict=True)))
        totals = [a + int(b) for a, b in zip(totals, most, strict=True)]
    out.update(zip(FIGURES, totals, strict=True))
    return out


def _compositions(
    store: Any, digests: VisitDigests
) -> dict[int, list[tuple[Any, Any, tuple[Any, ...]]]]:
    """Every composition by person id: (since, until, the :data:`FIGURES` values). Kept
    beside the digests under ``figures_changed`` (ledger_meta: moves after every household
    import, erasure and purge) and the newest person id (a code seen for the first time gets
    one: its household joins); the key is read before the compositions, so a kept copy is
    never older than its key."""
    stamp = store.fetch(
        "SELECT (SELECT value FROM ledger_meta WHERE name = 'figures_changed') AS changed, "
        "(SELECT max(n) FROM person_ids) AS top"
    )
    key = (stamp[0]["changed"], stamp[0]["top"]) if stamp else None
    hit = digests.kept.get("compositions")
    if hit is not None and key is not None and hit[0] == key:
        found: dict[int, list[tuple[Any, Any, tuple[Any, ...]]]] = hit[1]
        return found
    found = {}
    for row in store.fetch(
        "SELECT p.n AS person_n, h.valid_from AS valid_from, h.valid_until AS valid_until, "
        + ", ".join(f"{sql} AS {name}" for name, sql in FIGURES.items())
        + " FROM households h JOIN person_ids p ON p.beneficiary = h.beneficiary"
    ):
        person, since, until, *values = row.values()
        found.setdefault(int(person), []).append((since, until, tuple(values)))
    digests.kept["compositions"] = (key, found)
    return found


def fead_mass(
    store: Any, bounds: tuple[str, str], stations: Sequence[str] | None = None
) -> dict[str, int]:
    """:func:`fead_mass_sql`'s figures from the visit digests' sums."""
    digests = digests_of(store, bounds)
    if digests is None:
        return fead_mass_sql(store, bounds, stations)
    items = net_mg = anonymous = 0
    for part in period_parts(digests, bounds):
        for s in part.of(stations):
            for n, mg, nobody in s.sums.values():
                items += n
                net_mg += mg
                anonymous += nobody
    return {"net_mg": net_mg, "items": items, "anonymous": anonymous}
