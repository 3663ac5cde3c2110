"""Report figures: kg, items, visits, unique beneficiaries for any period and grouping.

Everything is aggregated in the database with portable SQL (``?`` placeholders through
``store.fetch``), so the same report runs on SQLite and PostgreSQL. Definitions (docs/reports.md):
only ``weighing`` records count; a weighing is *voided* when a ``void`` record points at its
(station, epoch, seq) (``voided_by``); its time is ``occurred_at`` = ``coalesce(corrected_at,
recorded_at)`` (the clock repaired where a boot had no synchronised clock); periods are in UTC,
the end exclusive.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any, Protocol

from common.i18n import _

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

# the record's time, the clock repaired where it could be (``coalesce(corrected_at, recorded_at)``,
# kept by the ledger at ingest, see ledger/migrations.py); indexed with ``kind``
TIME = "r.occurred_at"


class _ReadStore(Protocol):
    dialect: str

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]: ...

    def registries(self) -> Any: ...


# -- periods ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Period:
    """A span of days, ``start`` included, ``end`` excluded (UTC)."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(
                _("the period ends ({end}) before it starts ({start})").format(
                    start=self.start.isoformat(), end=(self.end - timedelta(days=1)).isoformat()
                )
            )

    @classmethod
    def year(cls, y: int) -> Period:
        _check_year(y)
        return cls(date(y, 1, 1), date(y + 1, 1, 1))

    @classmethod
    def quarter(cls, y: int, q: int) -> Period:
        _check_year(y)
        if not 1 <= q <= 4:
            raise ValueError(_("quarter must be 1 to 4, not {q}").format(q=q))
        return cls(date(y, 3 * q - 2, 1), _add_months(date(y, 3 * q - 2, 1), 3))

    @classmethod
    def month(cls, y: int, m: int) -> Period:
        _check_year(y)
        if not 1 <= m <= 12:
            raise ValueError(_("month must be 1 to 12, not {m}").format(m=m))
        return cls(date(y, m, 1), _add_months(date(y, m, 1), 1))

    @classmethod
    def between(cls, start: date, end: date) -> Period:
        """``start`` included, ``end`` excluded."""
        return cls(start, end)

    @classmethod
    def parse(
        cls,
        year: int | str | None = None,
        quarter: int | str | None = None,
        month: int | str | None = None,
        start: date | str | None = None,
        end: date | str | None = None,
    ) -> Period:
        """A period from a form or the command line; ``end`` is the LAST DAY INCLUDED here.

        ``year``; ``year`` + ``quarter`` (1-4, "Q3", "T3"); ``year`` + ``month`` (1-12) or
        ``month`` "2026-10" alone; ``start`` and/or ``end`` ("2026-01-01"; one alone means up to
        today or from the first of that year). Raises ``ValueError`` with a one-line reason.
        """
        if (start or end) and (year or quarter or month):
            raise ValueError(_("give either --from/--to or --year/--quarter/--month, not both"))
        if start or end:
            first = _date(start, "--from") if start else None
            last = _date(end, "--to") if end else None
            if first is None:
                assert last is not None
                first = date(last.year, 1, 1)
            if last is None:
                last = date.today()
            if last < first:
                raise ValueError(
                    _("the period ends ({end}) before it starts ({start})").format(
                        start=first.isoformat(), end=last.isoformat()
                    )
                )
            return cls(first, last + timedelta(days=1))
        if isinstance(month, str) and re.fullmatch(r"\d{4}-\d{1,2}", month.strip()):
            y_text, m_text = month.strip().split("-")
            if year is not None and int(str(year)) != int(y_text):
                raise ValueError(
                    _("--month {month} is not in --year {year}").format(month=month, year=year)
                )
            return cls.month(int(y_text), int(m_text))
        if year is None:
            if quarter or month:
                raise ValueError(_("--quarter and --month need --year"))
            raise ValueError(_("no period: give --year, --quarter, --month or --from/--to"))
        y = _int(year, "--year")
        if quarter and month:
            raise ValueError(_("give --quarter or --month, not both"))
        if quarter:
            q = str(quarter).strip().upper().lstrip("QT")
            return cls.quarter(y, _int(q, "--quarter"))
        if month:
            return cls.month(y, _int(month, "--month"))
        return cls.year(y)

    def previous_year(self) -> Period:
        """The same days one year before (29 February becomes 28). The end is taken from the
        last day included: a period ending on 28 February 2024 (end 29 February, excluded)
        compares with one ending on 28 February 2023 included, not the 27th."""
        return Period(_minus_year(self.start), _minus_year(self.last_day) + timedelta(days=1))

    @property
    def last_day(self) -> date:
        return self.end - timedelta(days=1)

    @property
    def months(self) -> float:
        """Length in months: whole calendar months exactly, else days / 30.436875."""
        if self.start.day == 1 and self.end.day == 1:
            return float((self.end.year - self.start.year) * 12 + self.end.month - self.start.month)
        return (self.end - self.start).days / 30.436875

    def month_keys(self) -> list[str]:
        """``YYYY-MM`` of every month the period touches, in order."""
        keys = []
        day = self.start.replace(day=1)
        while day < self.end:
            keys.append(f"{day.year:04d}-{day.month:02d}")
            day = _add_months(day, 1)
        return keys

    @property
    def label(self) -> str:
        s, e = self.start, self.end
        if s.day == 1 and e.day == 1:
            months = (e.year - s.year) * 12 + e.month - s.month
            if s.month == 1 and months == 12:
                return f"{s.year}"
            if months == 3 and s.month % 3 == 1:
                q = _("Q")  # French: T (trimestre)
                return f"{s.year}-{q}{(s.month + 2) // 3}"
            if months == 1:
                return f"{s.year}-{s.month:02d}"
        return f"{s.isoformat()} → {self.last_day.isoformat()}"

    def bounds(self) -> tuple[str, str]:
        """The period as record times, in the stored format (fixed width: sorts as text)."""
        return (f"{self.start.isoformat()}T00:00:00.000Z", f"{self.end.isoformat()}T00:00:00.000Z")


def _check_year(y: int) -> None:
    if not 1970 <= y <= 2200:
        raise ValueError(_("year out of range: {y}").format(y=y))


def _int(value: int | str, option: str) -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        raise ValueError(
            _("{option} expects a number, not {value!r}").format(option=option, value=value)
        ) from None


def _date(value: date | str, option: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(
            _("{option}: {value!r} is not a date like 2026-01-31").format(
                option=option, value=value
            )
        ) from None


def _add_months(day: date, n: int) -> date:
    index = day.year * 12 + day.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def _minus_year(day: date) -> date:
    last = calendar.monthrange(day.year - 1, day.month)[1]
    return date(day.year - 1, day.month, min(day.day, last))


# -- figures ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Figures:
    """What a report says about a set of live weighings. ``net_mg`` is exact; the rest derives."""

    net_mg: int = 0
    items: int = 0  # live weighings
    pieces: int = 0  # sum of pieces where a counting scale gave them
    visits: int = 0  # distinct (station, visit)
    beneficiaries: int = 0  # distinct codes, all stations together
    referrers: int = 0  # distinct referring structures
    manual: int = 0  # live weighings entered by hand
    voided: int = 0  # weighings of the period cancelled by a void record
    months: float = 1.0  # the period's length, for the monthly averages
    # False: a quick figure (``Report.monthly`` unless grouped by month, ``Report.previous``)
    # without the distinct counts: visits, beneficiaries and referrers are 0, not counted
    counted: bool = True

    @property
    def weighings(self) -> int:
        """Every weighing of the period, voided ones included."""
        return self.items + self.voided

    @property
    def kg(self) -> float:
        return self.net_mg / 1_000_000

    @property
    def tonnes(self) -> float:
        return self.net_mg / 1_000_000_000

    @property
    def monthly_avg_kg(self) -> float:
        return self.kg / self.months if self.months else 0.0

    @property
    def monthly_avg_beneficiaries(self) -> float:
        """Unique beneficiaries of the period divided by its months (as funders count it)."""
        return self.beneficiaries / self.months if self.months else 0.0

    @property
    def kg_per_beneficiary(self) -> float | None:
        return self.kg / self.beneficiaries if self.beneficiaries else None

    @property
    def manual_share(self) -> float:
        return self.manual / self.items if self.items else 0.0

    @property
    def voided_share(self) -> float:
        return self.voided / self.weighings if self.weighings else 0.0

    def as_dict(self) -> dict[str, Any]:
        n = self.counted
        return {
            "net_mg": self.net_mg,
            "kg": self.kg,
            "items": self.items,
            "pieces": self.pieces,
            "visits": self.visits if n else None,
            "beneficiaries": self.beneficiaries if n else None,
            "referrers": self.referrers if n else None,
            "monthly_avg_kg": self.monthly_avg_kg,
            "monthly_avg_beneficiaries": self.monthly_avg_beneficiaries if n else None,
            "kg_per_beneficiary": self.kg_per_beneficiary if n else None,
            "manual": self.manual,
            "manual_share": self.manual_share,
            "voided": self.voided,
            "voided_share": self.voided_share,
            "months": self.months,
        }


@dataclass(frozen=True)
class Row:
    key: tuple[str, ...]  # codes ("" where the record has none)
    label: tuple[str, ...]  # names for people
    figures: Figures


@dataclass(frozen=True)
class Report:
    period: Period
    by: tuple[str, ...]
    rows: list[Row]
    total: Figures
    previous: Figures | None  # the same period a year before
    change_kg_pct: float | None  # kg against that period, in %
    referrers: int  # distinct referring structures in the period
    monthly: list[tuple[str, Figures]]  # every month of the period, empty ones included
    names: Names = field(default_factory=lambda: Names())
    # months whose records a retention purge replaced by totals: their kg, items and pieces
    # are in the figures, their visits and persons are not (docs/reports.md)
    purged_months: tuple[str, ...] = ()

    def purged_note(self) -> str | None:
        """One sentence for the reader when purged months are in the period."""
        if not self.purged_months:
            return None
        months = self.purged_months
        span = months[0] if len(months) == 1 else f"{months[0]} → {months[-1]}"
        note = _(
            "purged months ({months}): kg, items and pieces from the totals kept; visits and "
            "persons not available for purged months"
        ).format(months=span)
        lost = [g for g in self.by if g not in _AGGREGATED]
        if lost:
            note += "; " + _("rows by {by} leave them out").format(by=", ".join(lost))
        return note

    def change_label(self) -> str | None:
        if self.change_kg_pct is None:
            return None
        return f"{self.change_kg_pct:+.0f} %"


# -- groupings and names ---------------------------------------------------------------------------
GROUPINGS: dict[str, str] = {
    "month": "calendar month (YYYY-MM)",
    "category": "category of goods",
    "station": "station",
    "group": "association or group of stations ([groups] in the ledger config)",
    "referrer": "referring structure",
    "referrer_type": "type of referring structure (hospital, CHRS, CCAS…)",
    "profile": "household profile tag (a person with several tags is in several rows)",
    "beneficiary": "beneficiary code",
}

# types of referring structures with readable names; the registry may name others
REFERRER_TYPES: dict[str, tuple[str, str]] = {
    # code: (singular, plural) — English source, translated at run time
    "hospital": ("hospital", "hospitals"),
    "chrs": ("CHRS", "CHRS"),
    "ccas": ("CCAS", "CCAS"),
    "social_services": ("social services", "social services"),
    "association": ("association", "associations"),
    "school": ("school", "schools"),
    "other": ("other structure", "other structures"),
}

# household profile tags (EU FSE+ breakdowns among them); the registry may name others
PROFILE_TAGS: dict[str, str] = {
    "women_with_children": "women with children",
    "single_parent": "single parents",
    "pregnant": "pregnant women",
    "worker": "workers",
    "retired": "retired people",
    "no_rsa": "people not receiving RSA",
    "woman": "women",
    "child": "children aged 15 or less",
    "senior": "people aged 65 or more",
    "disabled": "disabled people",
    "homeless": "homeless people",
}


def _builtin(text: str) -> str:
    # the builtin names above are translated where they are shown
    return {
        "hospital": _("hospital"),
        "hospitals": _("hospitals"),
        "social services": _("social services"),
        "association": _("association"),
        "associations": _("associations"),
        "school": _("school"),
        "schools": _("schools"),
        "other structure": _("other structure"),
        "other structures": _("other structures"),
        "women with children": _("women with children"),
        "single parents": _("single parents"),
        "pregnant women": _("pregnant women"),
        "workers": _("workers"),
        "retired people": _("retired people"),
        "people not receiving RSA": _("people not receiving RSA"),
        "women": _("women"),
        "children aged 15 or less": _("children aged 15 or less"),
        "people aged 65 or more": _("people aged 65 or more"),
        "disabled people": _("disabled people"),
        "homeless people": _("homeless people"),
    }.get(text, text)


@dataclass(frozen=True)
class Names:
    """Codes to names, from the registry the office imported and the ledger config."""

    categories: Mapping[str, str] = field(default_factory=dict)
    referrers: Mapping[str, str] = field(default_factory=dict)
    referrer_types: Mapping[str, str] = field(default_factory=dict)  # referrer code -> type code
    type_names: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # singular, plural
    profile_names: Mapping[str, str] = field(default_factory=dict)
    groups: Mapping[str, str] = field(default_factory=dict)  # station -> group

    def label(self, grouping: str, key: str) -> str:
        if not key:
            return _("(none)")
        if grouping == "category":
            return self.categories.get(key, key)
        if grouping == "referrer":
            return self.referrers.get(key, key)
        if grouping == "referrer_type":
            return self.type_name(key, plural=False)
        if grouping == "profile":
            return self.profile_names.get(key) or _builtin(PROFILE_TAGS.get(key, key))
        return key

    def type_name(self, code: str, plural: bool) -> str:
        names = self.type_names.get(code)
        if names:
            return names[1 if plural else 0]
        known = REFERRER_TYPES.get(code.lower())
        return _builtin(known[1 if plural else 0]) if known else code


def station_groups(
    groups: Mapping[str, str] | Mapping[str, Sequence[str]] | None,
) -> dict[str, str]:
    """station -> group, from either that or the config's ``[groups]`` (group -> stations)."""
    out: dict[str, str] = {}
    for name, value in (groups or {}).items():
        if isinstance(value, str):
            out[name] = value
        else:
            for station in value:
                out.setdefault(station, name)
    return out


def load_names(store: _ReadStore, groups: Mapping[str, Any] | None = None) -> Names:
    """Names from every registry scope (``all`` first, station scopes fill in)."""
    categories: dict[str, str] = {}
    referrers: dict[str, str] = {}
    types: dict[str, str] = {}
    type_names: dict[str, tuple[str, str]] = {}
    profiles: dict[str, str] = {}
    scopes = store.registries()
    for scope in sorted(scopes, key=lambda s: s != "all"):
        reg = scopes[scope]
        for item in reg.categories:
            categories.setdefault(str(item["code"]), str(item.get("name") or item["code"]))
        for item in reg.referrers:
            code = str(item["code"])
            referrers.setdefault(code, str(item.get("name") or code))
            if item.get("type"):
                types.setdefault(code, str(item["type"]).strip().lower())
        for item in reg.extra.get("referrer_types", []) or []:
            if isinstance(item, dict) and item.get("code"):
                name = str(item.get("name") or item["code"])
                type_names.setdefault(
                    str(item["code"]).lower(), (name, str(item.get("plural") or name))
                )
        for item in reg.extra.get("profiles", []) or []:
            if isinstance(item, dict) and item.get("code"):
                profiles.setdefault(str(item["code"]), str(item.get("name") or item["code"]))
    return Names(categories, referrers, types, type_names, profiles, station_groups(groups))


# -- totals kept by a retention purge (the ``aggregates`` table, docs/privacy.md) ---------------
# what the purge keeps per month × station × category × referrer, and the groupings derived from it
_AGGREGATED = ("month", "station", "category", "referrer", "group", "referrer_type")


def _purged(store: _ReadStore, period: Period) -> list[dict[str, Any]]:
    """The purge's totals for the whole months of ``period`` (a purge removes whole months)."""
    whole = [
        k
        for k in period.month_keys()
        if period.start <= Period.month(*map(int, k.split("-"))).start
        and Period.month(*map(int, k.split("-"))).end <= period.end
    ]
    if not whole:
        return []
    return store.fetch(
        "SELECT month, station, category, referrer, net_mg, items, coalesce(pieces, 0) AS pieces "
        "FROM aggregates WHERE month >= ? AND month <= ? ORDER BY month, station",
        [whole[0], whole[-1]],
    )


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


# -- SQL -------------------------------------------------------------------------------------------
# a weighing is dead when a void points at it: the ledger keeps the void's seq in ``voided_by``
_LIVE = "r.voided_by IS NULL"
# sums first: every figure but the distinct counts, cheap on the covering period index
_SUMS = f"""
    count(*) AS weighings,
    sum(CASE WHEN {_LIVE} THEN 1 ELSE 0 END) AS items,
    sum(CASE WHEN {_LIVE} THEN coalesce(r.net_mg, 0) ELSE 0 END) AS net_mg,
    sum(CASE WHEN {_LIVE} THEN coalesce(r.pieces, 0) ELSE 0 END) AS pieces,
    sum(CASE WHEN {_LIVE} AND r.source = 'manual' THEN 1 ELSE 0 END) AS manual
"""
# visits and persons as the integer ids the ledger gives them at ingest (migration 5)
_DISTINCTS = f""",
    count(DISTINCT CASE WHEN {_LIVE} THEN r.visit_n END) AS visits,
    count(DISTINCT CASE WHEN {_LIVE} THEN r.person_n END) AS beneficiaries,
    count(DISTINCT CASE WHEN {_LIVE} THEN r.referrer END) AS referrers
"""
# what each distinct figure counts, and PostgreSQL's GROUPING() bit of the set that counts it
_COUNTED = (
    ("visits", "r.visit_n", 3),
    ("beneficiaries", "r.person_n", 5),
    ("referrers", "r.referrer", 6),
)
_MASK_BITS = 62  # keys a bigint mask holds (bit_or of 2**i)


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


def _case(column: str, mapping: Mapping[str, str], params: list[Any]) -> str:
    """``CASE column WHEN ? THEN ? … END`` (NULL when unmapped): portable, index-free."""
    if not mapping:
        return "CAST(NULL AS TEXT)"
    whens = []
    for code, value in sorted(mapping.items()):
        whens.append("WHEN ? THEN ?")
        params += [code, value]
    return f"CASE {column} {' '.join(whens)} END"


def _profile_source() -> str:
    """(beneficiary, tag) pairs: the tags the office imported (``profiles``) and those scanned
    at the counter, which the ledger keeps at ingest (``scanned_profiles``). UNION: a tag both
    imported and scanned counts once. Two tables joined, however many pairs: no parameters."""
    return (
        "SELECT beneficiary, tag FROM profiles UNION SELECT beneficiary, tag FROM scanned_profiles"
    )


def _key_sql(grouping: str, names: Names, params: list[Any]) -> str:
    if grouping == "month":
        return f"substr({TIME}, 1, 7)"
    if grouping == "group":
        return _case("r.station", names.groups, params)
    if grouping == "referrer_type":
        return _case("r.referrer", names.referrer_types, params)
    if grouping == "profile":
        return "p.tag"
    # NULL and '' are both "(none)": one row, not two the databases order differently
    return f"coalesce(r.{grouping}, '')"


def _query(
    store: _ReadStore,
    period: Period,
    by: Sequence[str],
    names: Names,
    *,
    counted: bool = True,
    totals: dict[str, int] | None = None,
) -> list[dict[str, Any]]:
    """One row of figures per key. ``counted``: with the distinct counts (visits, persons,
    structures); ``totals`` gets the period's own counts where they come at no cost.

    Visits and persons are the integer ids the ledger gives them at ingest. SQLite: one sorted
    ``GROUP BY`` gives sums and ``count(DISTINCT …)`` together. PostgreSQL: the sums, then every
    key's three counts in one pass of bit masks (:func:`_masked_counts`); by profile or with
    more keys than a mask holds, a ``GROUP BY`` subquery per count (a parallel hash, much
    faster there than ``count(DISTINCT …)``)."""
    params: list[Any] = []
    keys = [_key_sql(g, names, params) for g in by]
    join = ""
    if "profile" in by:
        join = f"LEFT JOIN ({_profile_source()}) p ON p.beneficiary = r.beneficiary"
    start, end = period.bounds()
    params += [start, end]
    select = "".join(f"{k} AS k{i}, " for i, k in enumerate(keys))
    positions = [str(i + 1) for i in range(len(keys))]
    group = f"GROUP BY {', '.join(positions)}" if keys else ""
    where = f"r.kind = 'weighing' AND {TIME} >= ? AND {TIME} < ?"
    pg = store.dialect == "postgresql"
    # SQLite: one sort of the period answers sums and distinct counts together
    inline = counted and not pg
    rows = store.fetch(
        f"SELECT {select}{_SUMS}{_DISTINCTS if inline else ''} "
        f"FROM records r {join} WHERE {where} {group}",
        params,
    )
    if not counted or inline:
        return rows
    names_k = [f"k{i}" for i in range(len(keys))]
    if not keys or ("profile" not in by and len(rows) <= _MASK_BITS):
        period_counts = _masked_counts(store, rows if keys else [], select, names_k, params, where)
        if not keys:
            for row in rows:
                row.update(period_counts)
        if totals is not None:
            totals.update(period_counts)
        return rows
    outer = f"GROUP BY {', '.join(names_k)}" if keys else ""
    for figure, column, _bit in _COUNTED:
        found = store.fetch(
            f"SELECT {''.join(f'{k}, ' for k in names_k)}count(*) AS n FROM ("
            f"SELECT {select}1 AS one FROM records r {join} "
            f"WHERE {where} AND {_LIVE} AND {column} IS NOT NULL "
            f"GROUP BY {', '.join([*positions, column])}) s {outer}",
            params,
        )
        per_key = {tuple(v[k] for k in names_k): int(v["n"]) for v in found}
        for row in rows:
            row[figure] = per_key.get(tuple(row[k] for k in names_k), 0)
    return rows


def _period_counts(store: _ReadStore, period: Period) -> dict[str, int]:
    """The period's visits, persons and structures (no sums: the months give those)."""
    start, end = period.bounds()
    where = f"r.kind = 'weighing' AND {TIME} >= ? AND {TIME} < ?"
    if store.dialect == "postgresql":
        return _masked_counts(store, [], "", [], [start, end], where)
    found = store.fetch(
        f"SELECT {', '.join(f'count(DISTINCT {c}) AS {f}' for f, c, _b in _COUNTED)} "
        f"FROM records r WHERE {where} AND {_LIVE}",
        [start, end],
    )
    return {figure: int(found[0][figure] or 0) for figure, _c, _b in _COUNTED}


def _masked_counts(
    store: _ReadStore,
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
    sets = " OR ".join(
        f"(g = {bit} AND c.{column[2:]} IS NOT NULL)" for _f, column, bit in _COUNTED
    )
    found = store.fetch(
        f"SELECT g, count(*) AS n{bits} FROM ("
        "SELECT GROUPING(s.visit_n, s.person_n, s.referrer) AS g, "
        f"s.visit_n, s.person_n, s.referrer, {mask} AS mask "
        f"FROM (SELECT {select}r.visit_n, r.person_n, r.referrer FROM records r "
        f"WHERE {where} AND {_LIVE}) s "
        "GROUP BY GROUPING SETS ((s.visit_n), (s.person_n), (s.referrer))) c "
        f"WHERE {sets} GROUP BY g",
        [*case_params, *params],
    )
    by_set = {int(f["g"]): f for f in found}
    totals: dict[str, int] = {}
    for figure, _column, bit in _COUNTED:
        counted = by_set.get(bit, {})
        totals[figure] = int(counted.get("n") or 0)
        for i, row in enumerate(rows):
            row[figure] = int(counted.get(f"m{i}") or 0)
    return totals


# -- the report ------------------------------------------------------------------------------------
def build_report(
    store: _ReadStore,
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

    ``monthly`` and ``previous`` are quick figures (``counted=False``: kg, items, pieces,
    manual, voided; no distinct counts) unless ``detail`` or the report is by month: the
    distinct counts are what costs time on a million records."""
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
    if store.dialect == "postgresql":
        # hash aggregates of a year's visits want more than the default 4 MB (else: to disk)
        store.fetch("SELECT set_config('work_mem', '64MB', false) AS work_mem")
    elif store.dialect == "sqlite":
        store.fetch("PRAGMA threads = 4")  # the GROUP BY sorts of a year use helper threads
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
        row_months = 1.0 if "month" in by else months  # a month's row is one month long
        for r in _query(store, period, by, names, totals=counts):
            key = tuple("" if r[f"k{i}"] is None else str(r[f"k{i}"]) for i in range(len(by)))
            label = tuple(names.label(g, k) for g, k in zip(by, key, strict=True))
            rows.append(Row(key, label, _figures(r, row_months)))
        if purged and all(g in _AGGREGATED for g in by):
            index = {row.key: i for i, row in enumerate(rows)}
            for kept in purged:
                key = tuple(_purged_key(g, kept, names) for g in by)
                if key not in index:
                    index[key] = len(rows)
                    label = tuple(names.label(g, k) for g, k in zip(by, key, strict=True))
                    rows.append(Row(key, label, Figures(months=row_months)))
                row = rows[index[key]]
                rows[index[key]] = replace(row, figures=_plus(row.figures, kept))
        rows = _order(rows, by)

    # the months partition the period: their sums are the total's
    sums = {
        figure: sum(getattr(f, figure) for f in by_month.values())
        for figure in ("net_mg", "items", "pieces", "manual", "weighings")
    }
    total = _figures({**sums, **(counts or _period_counts(store, period))}, months)

    previous = None
    change = None
    if compare:
        before = period.previous_year()
        prev_row = _query(store, before, (), names, counted=detail)
        prev = _figures(prev_row[0] if prev_row else {}, before.months, detail)
        for kept in _purged(store, before):
            prev = _plus(prev, kept)
        if prev.weighings:
            previous = prev
            if prev.net_mg:
                change = (total.net_mg - prev.net_mg) * 100 / prev.net_mg
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
    )


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
def read_profiles_csv(lines: Iterable[str]) -> list[tuple[str, list[str]]]:
    """``code;tags`` rows (tags separated by ``,`` or ``|``; a header line is allowed; ``,`` as
    column separator also accepted when the tags use ``|``). Raises ValueError naming the line."""
    out: list[tuple[str, list[str]]] = []
    for n, raw in enumerate(lines, start=1):
        line = raw.strip().lstrip("\ufeff")
        if not line or line.startswith("#"):
            continue
        sep = ";" if ";" in line else ("\t" if "\t" in line else ",")
        code, _sep, rest = line.partition(sep)
        code = code.strip().strip('"')
        if n == 1 and code.lower() in {"code", "beneficiary", "beneficiaire", "bénéficiaire"}:
            continue
        tags = [t.strip().strip('"') for t in re.split(r"[,|;]", rest) if t.strip().strip('"')]
        if not code or not tags:
            raise ValueError(_("line {n}: expected code;tag1,tag2").format(n=n))
        bad = [t for t in tags if not re.fullmatch(r"[\w.-]{1,64}", t)]
        if bad:
            raise ValueError(_("line {n}: bad tag {tag!r}").format(n=n, tag=bad[0]))
        out.append((code, tags))
    return out


def import_profiles(
    store: Any, profiles: Iterable[tuple[str, Sequence[str]]], *, replace_all: bool = False
) -> int:
    """Attach tags to beneficiary codes (hashed like the records when the ledger pseudonymises);
    returns the number of (code, tag) pairs stored. A code's tags are replaced by the new ones."""
    pseudonym = getattr(store, "pseudonym", None)
    pairs: list[tuple[str, str]] = []
    codes: list[str] = []
    for code, tags in profiles:
        stored = pseudonym(code) if callable(pseudonym) else code
        codes.append(stored)
        pairs += [(stored, tag) for tag in dict.fromkeys(tags)]

    def write() -> None:
        if replace_all:
            store._exec("DELETE FROM profiles")
        else:
            store._many("DELETE FROM profiles WHERE beneficiary = ?", [(c,) for c in codes])
        if pairs:
            store._many("INSERT INTO profiles (beneficiary, tag) VALUES (?, ?)", pairs)

    # the store's own transaction (table from ledger/migrations.py step 3), both dialects
    store._atomic(write)
    return len(pairs)


# -- the first command, kept: ``ledger totals`` ----------------------------------------------------
def totals(
    store: _ReadStore, by: str, start: str | None = None, end: str | None = None
) -> list[dict[str, Any]]:
    """Rows ``{key, items, net_mg, visits, beneficiaries}`` for ``start <= time < end``."""
    first = date.fromisoformat(start) if start else date(1970, 1, 1)
    last = date.fromisoformat(end) if end else date(2200, 1, 1)
    names = load_names(store)
    rows = _query(store, Period(first, last), (by,), names)
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
