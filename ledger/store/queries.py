"""The reports' SQL: figures per key, the period's distinct counts, purged totals, calibrations.

Portable SQL with ``?`` placeholders through the store's public ``fetch``, so one query runs on
SQLite and PostgreSQL. Definitions (docs/reports.md): only ``weighing`` records count; a weighing
is *voided* when a ``void`` record points at it (``voided_by``); its time is ``occurred_at`` =
``coalesce(corrected_at, recorded_at)``, kept at ingest; bounds are record times in the stored
format (``start`` included, ``end`` excluded). Rows come back as dicts; ledger/reports.py makes
the figures. Nothing here imports the rest of the ledger.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

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
# Household profiles are facts with dates (docs/reports.md): an imported tag holds over its
# spans (``profiles``: since/until, days both included, '' no bound), a tag scanned at the
# counter from the first record that carries it (``scanned_profiles`` names the pairs; the
# partial index ``idx_records_profiled`` finds those records; their ledger time, so a repaired
# clock moves it; NULL when a purge took them: it held before every record left). A weighing is
# in a tag's row when a fact of its person covers its time: ``facts`` are made not to overlap
# (an imported span ends where the scanned fact starts), so a weighing joins a tag once.
_SCANNED_SINCE = (
    "SELECT t.beneficiary, t.tag, min(f.occurred_at) AS since FROM scanned_profiles t "
    "LEFT JOIN records f ON f.beneficiary = t.beneficiary AND f.data LIKE '%\"profile\"%' "
    "AND {contains}(f.data, '\"' || t.tag || '\"') > 0 GROUP BY t.beneficiary, t.tag"
)
_END_OF_DAY = "'T24:00:00.000Z'"  # ISO 8601's end of a day: after its last instant
_FACTS = f"""scanned AS ({_SCANNED_SINCE}),
facts AS (
    SELECT p.beneficiary, p.tag, nullif(p.since, '') AS since_at,
        CASE WHEN s.beneficiary IS NOT NULL
            AND (p.until = '' OR p.until || {_END_OF_DAY} > s.since) THEN s.since
        WHEN p.until = '' THEN CAST(NULL AS TEXT) ELSE p.until || {_END_OF_DAY} END AS before_at
    FROM profiles p LEFT JOIN scanned s ON s.beneficiary = p.beneficiary AND s.tag = p.tag
    WHERE s.beneficiary IS NULL OR (s.since IS NOT NULL AND p.since < s.since)
    UNION ALL SELECT beneficiary, tag, since, CAST(NULL AS TEXT) FROM scanned)"""
PROFILE_JOIN = (
    "LEFT JOIN facts p ON p.beneficiary = r.beneficiary "
    f"AND (p.since_at IS NULL OR p.since_at <= {TIME}) "
    f"AND (p.before_at IS NULL OR {TIME} < p.before_at)"
)


def profile_facts(dialect: str) -> str:
    """The ``WITH`` clause of ``facts`` (beneficiary, tag, since_at, before_at): the
    profiles a report joins (``since_at`` included, ``before_at`` excluded, NULL: no bound)."""
    contains = "strpos" if dialect == "postgresql" else "instr"
    return "WITH " + _FACTS.replace("{contains}", contains) + " "


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
    where = f"r.kind = 'weighing' AND {TIME} >= ? AND {TIME} < ?"
    if store.dialect == "postgresql":
        return _masked_counts(store, [], "", [], list(bounds), where)
    found = store.fetch(
        f"SELECT {', '.join(f'count(DISTINCT {c}) AS {f}' for f, c, _b in COUNTED)} "
        f"FROM records r WHERE {where} AND {LIVE}",
        list(bounds),
    )
    return {figure: int(found[0][figure] or 0) for figure, _c, _b in COUNTED}


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
