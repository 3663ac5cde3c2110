"""Report periods: a span of days in UTC, the first day included, the end excluded.

Built from a year, a quarter, a month or two dates given as the LAST DAY INCLUDED (``--to`` means
the same in ``ledger report``, ``ledger totals`` and on the dashboard: docs/reports.md)."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta

from common.i18n import _

__all__ = ["Period", "from_month", "month_name"]


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

    @property
    def whole_months(self) -> bool:
        return self.start.day == 1 and self.end.day == 1

    def words(self) -> str:
        """The period in a sentence: "in 2016", "in April 2017", "from January to April 2017",
        "from December 2016 to February 2017", "from 2026-01-05 to 2026-03-31"."""
        s, last = self.start, self.last_day
        if not self.whole_months:
            return _("from {first} to {last}").format(first=s.isoformat(), last=last.isoformat())
        if s.month == 1 and last.month == 12 and s.year == last.year:
            return _("in {year}").format(year=s.year)
        if (s.year, s.month) == (last.year, last.month):
            return _("in {month} {year}").format(month=month_name(s.month), year=s.year)
        if s.year == last.year:
            return _("{from_month} to {last_month} {year}").format(
                from_month=from_month(s.month), last_month=month_name(last.month), year=s.year
            )
        return _("{from_month} {first_year} to {last_month} {last_year}").format(
            from_month=from_month(s.month),
            first_year=s.year,
            last_month=month_name(last.month),
            last_year=last.year,
        )

    def reference(self) -> str:
        """This period as the base of a comparison: "2015" (a year), "the same period of
        2016" (within one year), else "the same period a year before"."""
        s, last = self.start, self.last_day
        if self.whole_months and s.month == 1 and last.month == 12 and s.year == last.year:
            return str(s.year)
        if s.year == last.year:
            return _("the same period of {year}").format(year=s.year)
        return _("the same period a year before")

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


def month_name(month: int) -> str:
    """A month's name in the current language ("April", "avril")."""
    return (
        _("January"),
        _("February"),
        _("March"),
        _("April"),
        _("May"),
        _("June"),
        _("July"),
        _("August"),
        _("September"),
        _("October"),
        _("November"),
        _("December"),
    )[month - 1]


def from_month(month: int) -> str:
    """ "from April": its own message, as languages bend it ("d'avril", "de mai")."""
    return (
        _("from January"),
        _("from February"),
        _("from March"),
        _("from April"),
        _("from May"),
        _("from June"),
        _("from July"),
        _("from August"),
        _("from September"),
        _("from October"),
        _("from November"),
        _("from December"),
    )[month - 1]
