"""Report figures for any period and grouping: the builder over the store's report queries.

The SQL is ledger/store/queries.py's; this module turns its rows into :class:`Figures`, rows
and a :class:`Report` (ledger/report_model.py), adds what a retention purge kept, orders the rows
and compares with the same period a year before. Definitions: docs/reports.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import date
from typing import Any, Protocol

from common.i18n import _

from .period import Period
from .report_model import (
    AGGREGATED,
    GROUPINGS,
    PROFILE_TAGS,
    REFERRER_TYPES,
    Figures,
    Names,
    Report,
    Row,
    Subgroup,
    load_names,
    pct_change,
    station_groups,
)
from .store import queries
from .store.profiles import ProfileLine

__all__ = [
    "GROUPINGS",
    "PROFILE_TAGS",
    "REFERRER_TYPES",
    "Figures",
    "Names",
    "Period",
    "Report",
    "Row",
    "build_report",
    "import_profiles",
    "load_names",
    "read_profiles_csv",
    "station_groups",
    "totals",
]


class ReportStore(queries.ReadStore, Protocol):
    """What a report reads: the queries' ``fetch`` and the registries (for names)."""

    def registries(self) -> Any: ...


def _query(
    store: ReportStore,
    period: Period,
    by: Sequence[str],
    names: Names,
    *,
    counted: bool = True,
    totals: dict[str, int] | None = None,
) -> list[dict[str, Any]]:
    return queries.figures_by_key(
        store,
        period.bounds(),
        by,
        groups=names.groups,
        referrer_types=names.referrer_types,
        counted=counted,
        totals=totals,
    )


# -- totals kept by a retention purge (the ``aggregates`` table, docs/privacy.md) ---------------
def _purged(store: ReportStore, period: Period) -> list[dict[str, Any]]:
    """The purge's totals for the whole months of ``period`` (a purge removes whole months)."""
    whole = [
        k
        for k in period.month_keys()
        if period.start <= Period.month(*map(int, k.split("-"))).start
        and Period.month(*map(int, k.split("-"))).end <= period.end
    ]
    if not whole:
        return []
    return queries.purged_totals(store, whole[0], whole[-1])


def _plus(figures: Figures, kept: Mapping[str, Any]) -> Figures:
    """``figures`` with a purged group's kg, items and pieces added."""
    return replace(
        figures,
        net_mg=figures.net_mg + int(kept["net_mg"] or 0),
        items=figures.items + int(kept["items"] or 0),
        pieces=figures.pieces + int(kept["pieces"] or 0),
    )


def _purged_key(grouping: str, kept: Mapping[str, Any], names: Names) -> str:
    if grouping == "group":
        return names.groups.get(str(kept["station"]), "")
    if grouping == "referrer_type":
        return names.referrer_types.get(str(kept["referrer"]), "")
    return str(kept[grouping] or "")


def _figures(row: Mapping[str, Any], months: float, counted: bool = True) -> Figures:
    weighings = int(row.get("weighings") or 0)
    items = int(row.get("items") or 0)
    return Figures(
        net_mg=int(row.get("net_mg") or 0),  # PostgreSQL's sum(bigint) is a numeric
        items=items,
        pieces=int(row.get("pieces") or 0),
        visits=int(row.get("visits") or 0),
        beneficiaries=int(row.get("beneficiaries") or 0),
        referrers=int(row.get("referrers") or 0),
        manual=int(row.get("manual") or 0),
        voided=weighings - items,
        months=months,
        counted=counted,
    )


# -- the report ------------------------------------------------------------------------------------
def build_report(
    store: ReportStore,
    period: Period,
    by: Sequence[str] = (),
    *,
    groups: Mapping[str, str] | Mapping[str, Sequence[str]] | None = None,
    names: Names | None = None,
    compare: bool = True,
    detail: bool = False,
) -> Report:
    """The figures of ``period``: total, rows by up to two groupings, every month, and the same
    period a year before (``compare``). ``groups``: station -> group or group -> stations.

    ``previous`` (the total a year before) and each row's ``previous`` are counted: kg,
    persons and visits year on year. ``monthly`` are quick figures (``counted=False``: kg,
    items, pieces, manual, voided; no distinct counts) unless ``detail`` or the report is by
    month: the distinct counts are what costs time on a million records. By profile, the
    report has a :class:`Subgroup` per tag (persons, kg, structures by type)."""
    by = tuple(by)
    for grouping in by:
        if grouping not in GROUPINGS:
            raise ValueError(
                _("unknown grouping {name!r} (use {known})").format(
                    name=grouping, known=", ".join(GROUPINGS)
                )
            )
    if len(by) > 2:
        raise ValueError(_("at most two groupings"))
    if len(set(by)) != len(by):
        raise ValueError(_("the same grouping twice"))
    if names is None:
        names = load_names(store, groups)
    elif groups is not None:
        names = replace(names, groups=station_groups(groups))
    queries.tune_for_reports(store)
    months = period.months
    full_months = detail or by == ("month",)
    if full_months or store.dialect == "postgresql":
        # PostgreSQL hashes the months in one parallel pass
        by_month = {
            str(r["k0"]): _figures(r, 1.0, full_months)
            for r in _query(store, period, ("month",), names, counted=full_months)
        }
    else:
        # SQLite: a range per month on the period index, no sort of the year's records
        by_month = {}
        for month_key in period.month_keys():
            y, m = map(int, month_key.split("-"))
            whole = Period.month(y, m)
            span = Period(max(whole.start, period.start), min(whole.end, period.end))
            found = _query(store, span, (), names, counted=False)
            by_month[month_key] = _figures(found[0] if found else {}, 1.0, False)
    empty = Figures(months=1.0, counted=full_months)
    purged = _purged(store, period)
    for kept in purged:
        by_month[kept["month"]] = _plus(by_month.get(kept["month"], empty), kept)
    monthly = [(k, by_month.get(k, empty)) for k in period.month_keys()]

    rows: list[Row] = []
    counts: dict[str, int] = {}  # the period's distinct counts, where the rows' pass gave them
    if by == ("month",):
        rows = [Row((k,), (k,), f) for k, f in monthly]
    elif by:
        rows = _order(_grouped(store, period, by, names, purged, counts), by)

    # the months partition the period: their sums are the total's
    sums = {
        figure: sum(getattr(f, figure) for f in by_month.values())
        for figure in ("net_mg", "items", "pieces", "manual", "weighings")
    }
    total = _figures({**sums, **(counts or queries.period_counts(store, period.bounds()))}, months)

    previous = None
    change = None
    before = period.previous_year()
    before_rows: list[Row] = []
    if compare:
        prev_row = _query(store, before, (), names)
        prev = _figures(prev_row[0] if prev_row else {}, before.months)
        purged_before = _purged(store, before)
        for kept in purged_before:
            prev = _plus(prev, kept)
        if prev.weighings:
            previous = prev
            change = pct_change(total.net_mg, prev.net_mg)
        if by:
            # every row against the same key a year before (a month: the same month)
            before_rows = _grouped(store, before, by, names, purged_before)
            last_year = {_a_year_later(row.key, by): row.figures for row in before_rows}
            prev_months = 1.0 if "month" in by else before.months
            rows = [
                replace(row, previous=last_year.get(row.key, Figures(months=prev_months)))
                for row in rows
            ]
    subgroups: tuple[Subgroup, ...] = ()
    if "profile" in by:
        subgroups = _subgroups(store, period, by, rows, before_rows if compare else None, names)
    return Report(
        period,
        by,
        rows,
        total,
        previous,
        change,
        total.referrers,
        monthly,
        names,
        tuple(sorted({str(k["month"]) for k in purged})),
        subgroups,
    )


def _grouped(
    store: ReportStore,
    period: Period,
    by: tuple[str, ...],
    names: Names,
    purged: list[dict[str, Any]],
    counts: dict[str, int] | None = None,
) -> list[Row]:
    """Rows of ``period`` by ``by`` (counted), with what a purge kept where ``by`` allows."""
    rows: list[Row] = []
    row_months = 1.0 if "month" in by else period.months  # a month's row is one month long
    for r in _query(store, period, by, names, totals=counts):
        key = tuple("" if r[f"k{i}"] is None else str(r[f"k{i}"]) for i in range(len(by)))
        label = tuple(names.label(g, k) for g, k in zip(by, key, strict=True))
        rows.append(Row(key, label, _figures(r, row_months)))
    if purged and all(g in AGGREGATED for g in by):
        index = {row.key: i for i, row in enumerate(rows)}
        for kept in purged:
            key = tuple(_purged_key(g, kept, names) for g in by)
            if key not in index:
                index[key] = len(rows)
                label = tuple(names.label(g, k) for g, k in zip(by, key, strict=True))
                rows.append(Row(key, label, Figures(months=row_months)))
            row = rows[index[key]]
            rows[index[key]] = replace(row, figures=_plus(row.figures, kept))
    return rows


def _a_year_later(key: tuple[str, ...], by: tuple[str, ...]) -> tuple[str, ...]:
    """A key of the year before as the period's: its month one year on, the rest as is."""
    return tuple(
        f"{int(k[:4]) + 1:04d}{k[4:]}" if g == "month" and k else k
        for g, k in zip(by, key, strict=True)
    )


def _subgroups(
    store: ReportStore,
    period: Period,
    by: tuple[str, ...],
    rows: list[Row],
    before_rows: list[Row] | None,
    names: Names,
) -> tuple[Subgroup, ...]:
    """Each profile's persons, kg and structures by type, for the funders' sentences."""
    if by == ("profile",):
        now = {row.key[0]: row.figures for row in rows}
        then = {row.key[0]: row.figures for row in before_rows or []}
    else:
        now = {row.key[0]: row.figures for row in _grouped(store, period, ("profile",), names, [])}
        then = {}
        if before_rows is not None:
            before = period.previous_year()
            then = {
                row.key[0]: row.figures for row in _grouped(store, before, ("profile",), names, [])
            }
    # structures that referred each profile's weighings: distinct codes per type
    per_type: dict[str, dict[str, list[int]]] = {}  # tag -> type -> [structures, mg]
    for r in _query(store, period, ("profile", "referrer"), names, counted=False):
        tag, referrer = str(r["k0"] or ""), str(r["k1"] or "")
        if not tag or not referrer or not int(r["items"] or 0):
            continue
        kind = names.referrer_types.get(referrer) or "other"
        sums = per_type.setdefault(tag, {}).setdefault(kind, [0, 0])
        sums[0] += 1
        sums[1] += int(r["net_mg"] or 0)
    out = []
    for tag, figures in now.items():
        if not tag or not figures.beneficiaries:
            continue
        kinds = sorted(per_type.get(tag, {}).items(), key=lambda kv: (-kv[1][0], -kv[1][1], kv[0]))
        previous = None
        if before_rows is not None:
            previous = then.get(tag, Figures(months=period.previous_year().months))
        out.append(Subgroup(tag, figures, previous, tuple((k, v[0]) for k, v in kinds)))
    return tuple(sorted(out, key=lambda s: (-s.figures.beneficiaries, s.tag)))


def _order(rows: list[Row], by: tuple[str, ...]) -> list[Row]:
    """Months in time order; other keys by kg, biggest first ("(none)" last); the second
    grouping within the first."""
    first_kg: dict[str, int] = {}
    for row in rows:
        first_kg[row.key[0]] = first_kg.get(row.key[0], 0) + row.figures.net_mg

    def rank(grouping: str, key: str, kg: int) -> tuple[Any, ...]:
        if grouping == "month":
            return (key == "", key)
        return (key == "", -kg, key)

    def sort_key(row: Row) -> tuple[Any, ...]:
        parts = rank(by[0], row.key[0], first_kg[row.key[0]])
        if len(by) > 1:
            parts += rank(by[1], row.key[1], row.figures.net_mg)
        return parts

    return sorted(rows, key=sort_key)


# -- household profiles imported by the office -----------------------------------------------------
_HEADER = {"code", "beneficiary", "beneficiaire", "bénéficiaire"}
_SINCE = {"since", "from", "depuis", "du", "debut", "début"}
_UNTIL = {"until", "to", "jusqu'au", "jusqu_au", "au", "fin"}
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _day(text: str, n: int) -> str:
    """A day of a profiles file ('' when empty), checked."""
    text = text.strip().strip('"')
    if not text:
        return ""
    try:
        if _DAY.fullmatch(text):
            return date.fromisoformat(text).isoformat()
    except ValueError:
        pass
    raise ValueError(_("line {n}: {value!r} is not a date like 2016-03-01").format(n=n, value=text))


def read_profiles_csv(lines: Iterable[str]) -> list[tuple[str, list[str], str, str]]:
    """``code;tags[;since[;until]]`` rows: tags separated by ``,`` or ``|``, ``since`` and
    ``until`` the first and last days the tags hold (both included; empty: no bound). A header
    line is allowed (it may name the columns: code, tags, since, until); ``,`` as column
    separator is accepted when the tags use ``|``; ``code;tag1;tag2`` still reads as two tags.
    Returns (code, tags, since, until); raises ValueError naming the line."""
    out: list[tuple[str, list[str], str, str]] = []
    columns: dict[str, int] = {}
    for n, raw in enumerate(lines, start=1):
        line = raw.strip().lstrip("\ufeff")
        if not line or line.startswith("#"):
            continue
        sep = ";" if ";" in line else ("\t" if "\t" in line else ",")
        fields = [f.strip().strip('"') for f in line.split(sep)]
        if not out and not columns and fields[0].lower() in _HEADER:
            names = [f.lower() for f in fields]
            columns = {
                "since": next((i for i, f in enumerate(names) if f in _SINCE), -1),
                "until": next((i for i, f in enumerate(names) if f in _UNTIL), -1),
            }
            continue
        code, rest = fields[0], fields[1:]
        since = until = ""
        if columns:
            since = _day(fields[columns["since"]], n) if 0 <= columns["since"] < len(fields) else ""
            until = _day(fields[columns["until"]], n) if 0 <= columns["until"] < len(fields) else ""
            dated = {columns["since"], columns["until"]}
            rest = [f for i, f in enumerate(fields) if i and i not in dated]
        elif (
            len(rest) > 1 and all(not f or _DAY.fullmatch(f) for f in rest[1:3]) and len(rest) <= 3
        ):
            since = _day(rest[1], n)
            until = _day(rest[2], n) if len(rest) > 2 else ""
            rest = rest[:1]
        tags = [t.strip() for f in rest for t in re.split(r"[,|]", f) if t.strip()]
        if not code or not tags:
            raise ValueError(_("line {n}: expected code;tag1,tag2").format(n=n))
        bad = [t for t in tags if not re.fullmatch(r"[\w.-]{1,64}", t)]
        if bad:
            raise ValueError(_("line {n}: bad tag {tag!r}").format(n=n, tag=bad[0]))
        if since and until and until < since:
            raise ValueError(
                _("line {n}: the tags end ({until}) before they start ({since})").format(
                    n=n, until=until, since=since
                )
            )
        out.append((code, tags, since, until))
    return out


class ProfileStore(Protocol):
    """The store's profiles import (one transaction, codes pseudonymised as the records')."""

    def import_profiles(
        self, profiles: Iterable[ProfileLine], *, replace_all: bool = False
    ) -> int: ...


def import_profiles(
    store: ProfileStore,
    profiles: Iterable[ProfileLine],
    *,
    replace_all: bool = False,
) -> int:
    """Attach tags to beneficiary codes (hashed like the records when the ledger pseudonymises);
    returns the number of (code, tag, span) stored. A code's tags are replaced by the new ones
    (every line of that code: a line may give the days they hold); ``replace_all`` forgets
    every tag first. The store's own method, kept here for callers."""
    return store.import_profiles(profiles, replace_all=replace_all)


# -- the first command, kept: ``ledger totals`` ----------------------------------------------------
# no period given: every record the ledger holds (the years a period accepts)
ALL_TIME = Period(date(1970, 1, 1), date(2200, 1, 1))


def totals(store: ReportStore, by: str, period: Period | None = None) -> list[dict[str, Any]]:
    """Rows ``{key, items, net_mg, visits, beneficiaries}`` of ``period`` (every record when
    None), biggest first; a period's ``end`` is excluded, as everywhere (``--to`` gives the last
    day included: :meth:`Period.parse`)."""
    names = load_names(store)
    rows = _query(store, period or ALL_TIME, (by,), names)
    out = [
        {
            "key": r["k0"],
            "items": int(r["items"] or 0),
            "net_mg": int(r["net_mg"] or 0),
            "visits": int(r["visits"] or 0),
            "beneficiaries": int(r["beneficiaries"] or 0),
        }
        for r in rows
        if int(r["items"] or 0)
    ]
    return sorted(out, key=lambda r: -r["net_mg"])
