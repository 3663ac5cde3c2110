"""The reports' SQL: figures per key, the period's distinct counts, purged totals, calibrations.

Portable SQL with ``?`` placeholders through the store's public ``fetch``, so one query runs on
SQLite and PostgreSQL. Definitions (docs/reports.md): only ``weighing`` records count; a weighing
is *voided* when a ``void`` record points at it (``voided_by``); its time is ``occurred_at`` =
``coalesce(corrected_at, recorded_at)``, kept at ingest; bounds are record times in the stored
format (``start`` included, ``end`` excluded). Rows come back as dicts; ledger/reports.py makes
the figures. Nothing here imports the rest of the ledger.

Where the store keeps month digests (ledger/store/digests.py) and the grouping allows it, the
figures come from them (ledger/store/tally.py: the same figures, without reading the records
of whole months); a period's partial months, and reports by beneficiary, read the records.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from . import tally
from .digests import Digests, MonthDigest, split_period
from .facts import PROFILE_JOIN, profile_facts

__all__ = [
    "COUNTED",
    "KEY_COLUMNS",
    "PROFILE_JOIN",
    "ReadStore",
    "calibrations",
    "figures_by_key",
    "period_counts",
    "profile_facts",
    "purged_totals",
    "tune_for_reports",
]


class ReadStore(Protocol):
    """The part of a ledger store the reports read through."""

    @property
    def dialect(self) -> str: ...  # "sqlite" | "postgresql"

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]: ...


# the record's time, the clock repaired where it could be; indexed with ``kind``
TIME = "r.occurred_at"
# a weighing is dead when a void points at it: the ledger keeps the void's seq in ``voided_by``
LIVE = "r.voided_by IS NULL"
# sums first: every figure but the distinct counts, cheap on the covering period index
SUMS = f"""
    count(*) AS weighings,
    sum(CASE WHEN {LIVE} THEN 1 ELSE 0 END) AS items,
    sum(CASE WHEN {LIVE} THEN coalesce(r.net_mg, 0) ELSE 0 END) AS net_mg,
    sum(CASE WHEN {LIVE} THEN coalesce(r.pieces, 0) ELSE 0 END) AS pieces,
    sum(CASE WHEN {LIVE} AND r.source = 'manual' THEN 1 ELSE 0 END) AS manual
"""
# visits and persons as the integer ids the ledger gives them at ingest (migration 5)
DISTINCTS = f""",
    count(DISTINCT CASE WHEN {LIVE} THEN r.visit_n END) AS visits,
    count(DISTINCT CASE WHEN {LIVE} THEN r.person_n END) AS beneficiaries,
    count(DISTINCT CASE WHEN {LIVE} THEN r.referrer END) AS referrers
"""
# what each distinct figure counts, and PostgreSQL's GROUPING() bit of the set that counts it
COUNTED = (
    ("visits", "r.visit_n", 3),
    ("beneficiaries", "r.person_n", 5),
    ("referrers", "r.referrer", 6),
)
MASK_BITS = 62  # keys a bigint mask holds (bit_or of 2**i)
# groupings that are a column of ``records`` as they are (the others are computed below)
KEY_COLUMNS = ("category", "station", "referrer", "beneficiary")


def tune_for_reports(store: ReadStore) -> None:
    """Session settings for a report's aggregates (the connection is the caller's)."""
    if store.dialect == "postgresql":
        # hash aggregates of a year's visits want more than the default 4 MB (else: to disk)
        store.fetch("SELECT set_config('work_mem', '64MB', false) AS work_mem")
    elif store.dialect == "sqlite":
        store.fetch("PRAGMA threads = 4")  # the GROUP BY sorts of a year use helper threads


def _case(column: str, mapping: Mapping[str, str], params: list[Any]) -> str:
    """``CASE column WHEN ? THEN ? … END`` (NULL when unmapped): portable, index-free."""
    if not mapping:
        return "CAST(NULL AS TEXT)"
    whens = []
    for code, value in sorted(mapping.items()):
        whens.append("WHEN ? THEN ?")
        params += [code, value]
    return f"CASE {column} {' '.join(whens)} END"


def _key_sql(
    grouping: str,
    params: list[Any],
    groups: Mapping[str, str],
    referrer_types: Mapping[str, str],
) -> str:
    if grouping == "month":
        return f"substr({TIME}, 1, 7)"
    if grouping == "group":
        return _case("r.station", groups, params)
    if grouping == "referrer_type":
        return _case("r.referrer", referrer_types, params)
    if grouping == "profile":
        return "p.tag"
    if grouping not in KEY_COLUMNS:  # a column name goes into the SQL text: only known ones
        raise ValueError(f"unknown grouping {grouping!r}")
    # NULL and '' are both "(none)": one row, not two the databases order differently
    return f"coalesce(r.{grouping}, '')"


def figures_by_key(
    store: ReadStore,
    bounds: tuple[str, str],
    by: Sequence[str],
    *,
    groups: Mapping[str, str] | None = None,
    referrer_types: Mapping[str, str] | None = None,
    counted: bool = True,
    totals: dict[str, int] | None = None,
) -> list[dict[str, Any]]:
    """One row per key (``k0``, ``k1`` and the sums; with ``counted``, the distinct counts
    too) for records with ``bounds[0] <= time < bounds[1]``. ``groups``: station -> group,
    ``referrer_types``: referrer -> type, for those groupings. ``totals`` gets the period's own
    counts where they come at no cost.

    Visits and persons are the integer ids the ledger gives them at ingest. SQLite: one sorted
    ``GROUP BY`` gives sums and ``count(DISTINCT …)`` together. PostgreSQL: the sums, then every
    key's three counts in one pass of bit masks (:func:`_masked_counts`); by profile or with
    more keys than a mask holds, a ``GROUP BY`` subquery per count (a parallel hash, much
    faster there than ``count(DISTINCT …)``)."""
    digests = _digests(store, bounds) if all(g in tally.DIGESTED for g in by) else None
    if digests is not None:
        rows, counts = tally.figures(
            digests, by, groups=groups, referrer_types=referrer_types, counted=counted
        )
        if totals is not None:
            totals.update(counts)
        if not by and not rows:  # an aggregate without GROUP BY: one row, even of nothing
            rows = [dict(weighings=0, items=0, net_mg=None, pieces=None, manual=None)]
            if counted:
                rows[0].update(counts)
        return rows
    params: list[Any] = []
    keys = [_key_sql(g, params, groups or {}, referrer_types or {}) for g in by]
    join = with_ = ""
    if "profile" in by:
        join, with_ = PROFILE_JOIN, profile_facts(store.dialect)
    params += list(bounds)
    select = "".join(f"{k} AS k{i}, " for i, k in enumerate(keys))
    positions = [str(i + 1) for i in range(len(keys))]
    group = f"GROUP BY {', '.join(positions)}" if keys else ""
    where = f"r.kind = 'weighing' AND {TIME} >= ? AND {TIME} < ?"
    pg = store.dialect == "postgresql"
    # SQLite: one sort of the period answers sums and distinct counts together
    inline = counted and not pg
    rows = store.fetch(
        f"{with_}SELECT {select}{SUMS}{DISTINCTS if inline else ''} "
        f"FROM records r {join} WHERE {where} {group}",
        params,
    )
    if not counted or inline:
        return rows
    names_k = [f"k{i}" for i in range(len(keys))]
    if not keys or ("profile" not in by and len(rows) <= MASK_BITS):
        counts = _masked_counts(store, rows if keys else [], select, names_k, params, where)
        if not keys:
            for row in rows:
                row.update(counts)
        if totals is not None:
            totals.update(counts)
        return rows
    outer = f"GROUP BY {', '.join(names_k)}" if keys else ""
    for figure, column, _bit in COUNTED:
        found = store.fetch(
            f"{with_}SELECT {''.join(f'{k}, ' for k in names_k)}count(*) AS n FROM ("
            f"SELECT {select}1 AS one FROM records r {join} "
            f"WHERE {where} AND {LIVE} AND {column} IS NOT NULL "
            f"GROUP BY {', '.join([*positions, column])}) s {outer}",
            params,
        )
        per_key = {tuple(v[k] for k in names_k): int(v["n"]) for v in found}
        for row in rows:
            row[figure] = per_key.get(tuple(row[k] for k in names_k), 0)
    return rows


def period_counts(store: ReadStore, bounds: tuple[str, str]) -> dict[str, int]:
    """The period's visits, persons and structures (no sums: the months give those)."""
    digests = _digests(store, bounds)
    if digests is not None:
        return tally.figures(digests, ())[1]
    where = f"r.kind = 'weighing' AND {TIME} >= ? AND {TIME} < ?"
    if store.dialect == "postgresql":
        return _masked_counts(store, [], "", [], list(bounds), where)
    found = store.fetch(
        f"SELECT {', '.join(f'count(DISTINCT {c}) AS {f}' for f, c, _b in COUNTED)} "
        f"FROM records r WHERE {where} AND {LIVE}",
        list(bounds),
    )
    return {figure: int(found[0][figure] or 0) for figure, _c, _b in COUNTED}


_TIME_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}T")


def _digests(store: ReadStore, bounds: tuple[str, str]) -> list[MonthDigest] | None:
    """The digests of the whole months of ``bounds`` and the cells of its partial months, in
    time order; None where the store keeps no digests (or the bounds are not record times)."""
    source = getattr(store, "digests", None)
    start, end = bounds
    if not isinstance(source, Digests) or not (_TIME_TEXT.match(start) and _TIME_TEXT.match(end)):
        return None
    first, last, partial = split_period(start, end)
    # a month the period only partly covers: from its records
    parts = [source.part(a, b) for a, b in partial]
    whole = source.months(first, last) if first else []
    return sorted([*whole, *parts], key=lambda d: d.month)


def _masked_counts(
    store: ReadStore,
    rows: list[dict[str, Any]],
    select: str,
    names_k: list[str],
    params: list[Any],
    where: str,
) -> dict[str, int]:
    """PostgreSQL: every key's visits, persons and structures in one parallel pass; returns
    the period's own three counts, which come with them.

    Each visit (person, structure) gets the ``bit_or`` of its keys' bits (key i, the i-th row
    the sums found: ``2**i``); a key's count is the number of visits whose mask has its bit.
    The three are GROUPING SETS of one scan, hashed on integers."""
    whens: list[str] = []
    case_params: list[Any] = []
    for i, row in enumerate(rows):
        tests = []
        for name in names_k:
            if row[name] is None:
                tests.append(f"s.{name} IS NULL")
            else:
                tests.append(f"s.{name} = ?")
                case_params.append(row[name])
        whens.append(f"WHEN {' AND '.join(tests)} THEN {1 << i}")
    bits = "".join(
        f", sum(CASE WHEN (mask & {1 << i}) <> 0 THEN 1 ELSE 0 END) AS m{i}"
        for i in range(len(rows))
    )
    mask = f"bit_or(CASE {' '.join(whens)} ELSE 0 END)" if whens else "0"
    sets = " OR ".join(f"(g = {bit} AND c.{column[2:]} IS NOT NULL)" for _f, column, bit in COUNTED)
    found = store.fetch(
        f"SELECT g, count(*) AS n{bits} FROM ("
        "SELECT GROUPING(s.visit_n, s.person_n, s.referrer) AS g, "
        f"s.visit_n, s.person_n, s.referrer, {mask} AS mask "
        f"FROM (SELECT {select}r.visit_n, r.person_n, r.referrer FROM records r "
        f"WHERE {where} AND {LIVE}) s "
        "GROUP BY GROUPING SETS ((s.visit_n), (s.person_n), (s.referrer))) c "
        f"WHERE {sets} GROUP BY g",
        [*case_params, *params],
    )
    by_set = {int(f["g"]): f for f in found}
    totals: dict[str, int] = {}
    for figure, _column, bit in COUNTED:
        counted = by_set.get(bit, {})
        totals[figure] = int(counted.get("n") or 0)
        for i, row in enumerate(rows):
            row[figure] = int(counted.get(f"m{i}") or 0)
    return totals


def purged_totals(store: ReadStore, first_month: str, last_month: str) -> list[dict[str, Any]]:
    """What a retention purge kept (``aggregates``) for the months ``first_month`` to
    ``last_month`` (``YYYY-MM``, both included): month, station, category, referrer, net_mg,
    items, pieces."""
    return store.fetch(
        "SELECT month, station, category, referrer, net_mg, items, coalesce(pieces, 0) AS pieces "
        "FROM aggregates WHERE month >= ? AND month <= ? ORDER BY month, station",
        [first_month, last_month],
    )


def calibrations(store: ReadStore, station: str | None = None) -> list[dict[str, Any]]:
    """Every calibration record (zero, span, check) of the stations, or of ``station``, in time
    order: station, seq, recorded_at, reason, operator, scale_id, data (JSON text)."""
    where, params = "kind = 'calibration'", []
    if station:
        where += " AND station = ?"
        params.append(station)
    return store.fetch(
        "SELECT station, seq, recorded_at, reason, operator, scale_id, data FROM records "
        f"WHERE {where} ORDER BY recorded_at, station, seq",
        params,
    )
