"""Persons over time, as coordinators ask: new versus returning persons in a period, how often
they came (visits per person), and a trend over several years (kg, persons, visits, new persons
and the change from one year to the next). Definitions: docs/reports.md."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from common.i18n import _, ngettext, speaking
from common.units import format_mass, format_number, kg_text

from ..period import Period
from ..reports import build_report
from ..store.persons import first_years, new_and_returning, record_years, visits_per_person
from .pages import DASH, Page, Section, csv_bytes, decimal_text, page_html, page_table, period_line

__all__ = [
    "BANDS",
    "PersonsReport",
    "TrendReport",
    "TrendRow",
    "build_persons",
    "build_trend",
    "persons_csv",
    "persons_html",
    "persons_json",
    "persons_table",
    "trend_csv",
    "trend_html",
    "trend_json",
    "trend_table",
]

# visits per person, banded as a coordinator reads them: (first, last included; None = no end)
BANDS: tuple[tuple[int, int | None], ...] = ((1, 1), (2, 2), (3, 5), (6, 11), (12, None))


@dataclass(frozen=True)
class PersonsReport:
    period: Period
    persons: int
    new: int  # first live weighing (at these stations) in the period
    visits: dict[int, int]  # visits -> persons
    stations: tuple[str, ...] | None = None

    @property
    def returning(self) -> int:
        return self.persons - self.new

    @property
    def total_visits(self) -> int:
        return sum(v * n for v, n in self.visits.items())

    @property
    def mean_visits(self) -> float | None:
        return self.total_visits / self.persons if self.persons else None

    @property
    def median_visits(self) -> float | None:
        """The middle person's visits (the mean of the two middle ones for an even count)."""
        if not self.persons:
            return None
        ranks = sorted(self.visits.items())

        def at(rank: int) -> int:  # the visits of the rank-th person (0-based), fewest first
            for visits, persons in ranks:
                if rank < persons:
                    return visits
                rank -= persons
            raise IndexError(rank)

        middle = self.persons // 2
        if self.persons % 2:
            return float(at(middle))
        return (at(middle - 1) + at(middle)) / 2

    def bands(self) -> list[tuple[str, int]]:
        out = []
        for first, last in BANDS:
            n = sum(p for v, p in self.visits.items() if v >= first and (last is None or v <= last))
            key = (
                str(first) if first == last else f"{first}+" if last is None else f"{first}-{last}"
            )
            out.append((key, n))
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "period": {
                "label": self.period.label,
                "from": self.period.start.isoformat(),
                "to": self.period.last_day.isoformat(),
            },
            "stations": list(self.stations) if self.stations is not None else None,
            "persons": self.persons,
            "new": self.new,
            "returning": self.returning,
            "visits": self.total_visits,
            "mean_visits_per_person": self.mean_visits,
            "median_visits_per_person": self.median_visits,
            "visits_per_person": {str(v): n for v, n in sorted(self.visits.items())},
            "bands": dict(self.bands()),
        }


def build_persons(
    store: Any, period: Period, *, stations: Sequence[str] | None = None
) -> PersonsReport:
    bounds = period.bounds()
    found = new_and_returning(store, bounds, stations)
    return PersonsReport(
        period,
        found["persons"],
        found["new"],
        visits_per_person(store, bounds, stations),
        tuple(stations) if stations is not None else None,
    )


@dataclass(frozen=True)
class TrendRow:
    year: int
    net_mg: int
    items: int
    visits: int
    persons: int
    new: int


@dataclass(frozen=True)
class TrendReport:
    rows: list[TrendRow]
    purged: tuple[str, ...] = ()  # purged months in the years shown: kg kept, persons not

    @staticmethod
    def change(now: int, before: int | None) -> float | None:
        """(now − before) ÷ before in %, None without a year before or from nothing."""
        if not before:
            return None
        return (now - before) * 100 / before

    def changes(self, row: int, figure: str) -> float | None:
        if row == 0:
            return None
        return self.change(getattr(self.rows[row], figure), getattr(self.rows[row - 1], figure))

    def as_dict(self) -> dict[str, Any]:
        return {
            "purged_months": list(self.purged),
            "years": [
                {
                    "year": r.year,
                    "net_mg": r.net_mg,
                    "kg": kg_text(r.net_mg),
                    "items": r.items,
                    "visits": r.visits,
                    "persons": r.persons,
                    "new_persons": r.new,
                    **{
                        f"change_{f}_pct": self.changes(i, f)
                        for f in ("net_mg", "persons", "visits")
                    },
                }
                for i, r in enumerate(self.rows)
            ],
        }


def build_trend(store: Any, first: int | None = None, last: int | None = None) -> TrendReport:
    """Every year from ``first`` to ``last`` (default: the years the ledger holds), each with
    the report's own figures (``ledger report --year Y``: purged months' kg included) and the
    persons first seen that year."""
    years = record_years(store)
    if years is None and (first is None or last is None):
        return TrendReport([])
    low = first if first is not None else years[0] if years else 0
    high = last if last is not None else years[1] if years else 0
    if high < low:
        raise ValueError(_("the last year is before the first"))
    new = first_years(store)
    rows: list[TrendRow] = []
    purged: list[str] = []
    for year in range(low, high + 1):
        report = build_report(store, Period.year(year), compare=False)
        t = report.total
        rows.append(
            TrendRow(year, t.net_mg, t.items, t.visits, t.beneficiaries, new.get(str(year), 0))
        )
        purged += report.purged_months
    return TrendReport(rows, tuple(purged))


# -- renderings ------------------------------------------------------------------------------------
def _persons_page(report: PersonsReport, lang: str) -> Page:
    def n(value: int) -> str:
        return format_number(value, 0, lang)

    mean, median = report.mean_visits, report.median_visits
    lines = [
        ngettext("{period}: {n} person", "{period}: {n} persons", report.persons).format(
            period=report.period.label, n=n(report.persons)
        ),
        _("{new} new, {returning} returning (seen before the period)").format(
            new=n(report.new), returning=n(report.returning)
        ),
    ]
    if mean is not None and median is not None:
        lines.append(
            _("{visits} visits: {mean} per person on average, median {median}").format(
                visits=n(report.total_visits),
                mean=format_number(mean, 1, lang),
                median=format_number(median, 1, lang),
            )
        )
    rows = [[key, n(count)] for key, count in report.bands()]
    return Page(
        _("Persons {period}").format(period=report.period.label),
        period_line(
            report.period.start.isoformat(), report.period.last_day.isoformat(), report.stations
        ),
        lines,
        [Section(_("Visits per person"), [_("visits"), _("persons")], rows, {1})],
        [
            _(
                "New: the person's first live weighing (at these stations) is in the period; "
                "records removed by a purge are not seen."
            )
        ],
    )


def persons_table(report: PersonsReport, lang: str | None = None, *, width: int = 100) -> str:
    with speaking(lang) as lang:
        return page_table(_persons_page(report, lang), width)


def persons_html(report: PersonsReport, lang: str | None = None) -> str:
    with speaking(lang) as lang:
        return page_html(_persons_page(report, lang), lang)


def persons_json(report: PersonsReport) -> str:
    return json.dumps(report.as_dict(), ensure_ascii=False, indent=1)


def persons_csv(report: PersonsReport, *, sep: str = ",", excel: bool = False) -> bytes:
    """``figure,value`` rows: persons, new, returning, visits, then one row per visits count."""
    rows: list[list[Any]] = [
        ["persons", report.persons],
        ["new", report.new],
        ["returning", report.returning],
        ["visits", report.total_visits],
    ]
    rows += [[f"persons_with_{v}_visits", p] for v, p in sorted(report.visits.items())]
    return csv_bytes(["figure", "value"], rows, sep, excel)


def _pct(value: float | None, lang: str) -> str:
    """A change as people write it: "+55 %", "-3 %", "–" when there is none."""
    if value is None:
        return DASH
    text = format_number(Decimal(str(value)), 0, lang) + " %"
    return "+" + text if value > 0 else text


def _trend_page(report: TrendReport, lang: str) -> Page:
    def n(value: int) -> str:
        return format_number(value, 0, lang)

    heads = [
        _("year"),
        _("kg"),
        _("change"),
        _("persons"),
        _("change"),
        _("new persons"),
        _("visits"),
        _("change"),
    ]
    rows = [
        [
            str(r.year),
            format_number(Decimal(kg_text(r.net_mg)), 1, lang),
            _pct(report.changes(i, "net_mg"), lang),
            n(r.persons),
            _pct(report.changes(i, "persons"), lang),
            n(r.new),
            n(r.visits),
            _pct(report.changes(i, "visits"), lang),
        ]
        for i, r in enumerate(report.rows)
    ]
    lines = []
    if report.rows:
        first, last = report.rows[0], report.rows[-1]
        lines.append(
            _("{first}–{last}: {mass}, {persons} persons first seen").format(
                first=first.year,
                last=last.year,
                mass=format_mass(sum(r.net_mg for r in report.rows), "t", 1, lang),
                persons=n(sum(r.new for r in report.rows)),
            )
        )
    notes = [_("Change: against the year before, for kg, persons and visits.")]
    if report.purged:
        notes.append(
            _(
                "Purged months ({months}): their kg are kept, their persons and visits are not."
            ).format(months=", ".join(report.purged))
        )
    return Page(
        _("Trend over the years"),
        "",
        lines,
        [Section(_("By year"), heads, rows, set(range(1, len(heads))))],
        notes,
    )


def trend_table(report: TrendReport, lang: str | None = None, *, width: int = 100) -> str:
    with speaking(lang) as lang:
        return page_table(_trend_page(report, lang), width)


def trend_html(report: TrendReport, lang: str | None = None) -> str:
    with speaking(lang) as lang:
        return page_html(_trend_page(report, lang), lang)


def trend_json(report: TrendReport) -> str:
    return json.dumps(report.as_dict(), ensure_ascii=False, indent=1)


def trend_csv(report: TrendReport, *, sep: str = ",", excel: bool = False) -> bytes:
    header = [
        "year",
        "kg",
        "net_mg",
        "items",
        "visits",
        "persons",
        "new_persons",
        "change_kg_pct",
        "change_persons_pct",
        "change_visits_pct",
    ]

    def pct(value: float | None) -> str:
        return "" if value is None else decimal_text(f"{value:.1f}", excel)

    rows: list[list[Any]] = [
        [
            r.year,
            decimal_text(kg_text(r.net_mg), excel),
            r.net_mg,
            r.items,
            r.visits,
            r.persons,
            r.new,
            pct(report.changes(i, "net_mg")),
            pct(report.changes(i, "persons")),
            pct(report.changes(i, "visits")),
        ]
        for i, r in enumerate(report.rows)
    ]
    return csv_bytes(header, rows, sep, excel)
