"""The period a dashboard page shows: the selector's state, read from the query string."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from urllib.parse import urlencode

from ..period import Period
from .i18n import gettext_ as _

__all__ = ["FIRST_YEAR", "LAST_YEAR", "Choice", "parse_day"]

# the periods one can ask for, as `ledger report` (out of it, the date arithmetic overflows)
FIRST_YEAR, LAST_YEAR = 2000, 2100

# dd/mm/yyyy as the French write it (also with "." or "-"); ISO yyyy-mm-dd is always accepted
_FRENCH_DAY = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})")


def parse_day(text: str) -> date:
    """A day typed in a date field: ``31/03/2016`` (French order) or ``2016-03-31`` (ISO, what a
    link or a browser's own date picker sends). Raises ValueError for anything else."""
    text = text.strip()
    found = _FRENCH_DAY.fullmatch(text)
    if found:
        day, month, year = map(int, found.groups())
        return date(year, month, day)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return date.fromisoformat(text)
    raise ValueError(text)


@dataclass(frozen=True)
class Choice:
    """The period selector's state, from the query string; ``problem`` says what was ignored."""

    year: int
    quarter: int | None = None
    month: int | None = None
    start: date | None = None
    end: date | None = None
    problem: str | None = None

    @classmethod
    def from_query(cls, query: dict[str, str], today: date) -> Choice:
        def number(name: str, low: int, high: int) -> int | None:
            text = (query.get(name) or "").strip()
            if not text:
                return None
            value = int(text)  # ValueError caught below
            if not low <= value <= high:
                raise ValueError(name)
            return value

        def day(name: str) -> date | None:
            text = (query.get(name) or "").strip()
            if not text:
                return None
            value = parse_day(text)
            if not FIRST_YEAR <= value.year <= LAST_YEAR:
                raise ValueError(name)
            return value

        try:
            year = number("year", FIRST_YEAR, LAST_YEAR) or today.year
            month = number("month", 1, 12)
            quarter = None if month else number("quarter", 1, 4)
            start, end = day("from"), day("to")
            if (start is None) != (end is None) or (start and end and end < start):
                raise ValueError("range")
            choice = cls(year, quarter, month, start, end)
            choice.period().previous_year()  # what a report computes: fails here, not later
        except (ValueError, OverflowError):
            return cls(
                today.year,
                problem=_(
                    "That period is not valid (dates from {first} to {last}): showing this year."
                ).format(first=f"{FIRST_YEAR}-01-01", last=f"{LAST_YEAR}-12-31"),
            )
        return choice

    @property
    def query(self) -> str:
        """The query string that selects this period again (links, CSV downloads)."""
        if self.start and self.end:
            return urlencode({"from": self.start.isoformat(), "to": self.end.isoformat()})
        params: dict[str, int] = {"year": self.year}
        if self.month:
            params["month"] = self.month
        elif self.quarter:
            params["quarter"] = self.quarter
        return urlencode(params)

    @property
    def label(self) -> str:
        if self.start and self.end:
            return f"{self.start.isoformat()} – {self.end.isoformat()}"
        if self.month:
            return f"{self.year}-{self.month:02d}"
        if self.quarter:
            return _("Q%(n)s") % {"n": self.quarter} + f" {self.year}"
        return str(self.year)

    def heading(self, lang: str) -> str:
        """The label for a person: a range's days as the reader writes them (31/03/2016 in
        French); ``label`` stays ISO (file names, English)."""
        if self.start and self.end and lang == "fr":
            return f"{self.start:%d/%m/%Y} – {self.end:%d/%m/%Y}"
        return self.label

    def period(self) -> Period:
        if self.start and self.end:
            return Period.between(self.start, self.end + timedelta(days=1))  # "to" is included
        if self.month:
            return Period.month(self.year, self.month)
        if self.quarter:
            return Period.quarter(self.year, self.quarter)
        return Period.year(self.year)
