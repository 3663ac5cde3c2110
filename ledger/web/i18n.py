"""The dashboard's template helpers: text and numbers in the request's language (common.i18n)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from common.i18n import LANGUAGES, language, ngettext, use
from common.i18n import _ as gettext_
from common.units import format_number

__all__ = [
    "LANGUAGES",
    "fmt_day",
    "fmt_int",
    "fmt_num",
    "fmt_pct",
    "fmt_when",
    "gettext_",
    "ngettext_",
    "use",
]

# Two users may read the dashboard in two languages at once: each request's task sets its own
# language (common.i18n.use), and the template callables below read it.
ngettext_ = ngettext


def fmt_num(value: float | Decimal | int | None, decimals: int = 1) -> str:
    """``1 482,5`` in French, ``1,482.5`` in English: the reports' own formatting."""
    if value is None:
        return "–"
    return format_number(value, decimals, language())


def fmt_int(value: float | Decimal | int | None) -> str:
    return fmt_num(value, 0)


def fmt_pct(value: float | Decimal | None, decimals: int = 0, signed: bool = False) -> str:
    """A share (0.25) or a change already in percent (+55) is the caller's choice of input."""
    if value is None:
        return "–"
    text = fmt_num(-value if value < 0 else value, decimals)
    sign = ("+" if value > 0 else "−" if value < 0 else "") if signed else ""
    if not signed and value < 0:
        sign = "−"
    return f"{sign}{text}\u00a0%"


def fmt_when(iso: str | None) -> str:
    """An ISO UTC timestamp as the reader writes a date: "21/11/2026 09:12 UTC" in French,
    "2026-11-21 09:12 UTC" else (the office reads dates, not ISO)."""
    if not iso:
        return "–"
    try:
        when = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    day = "%d/%m/%Y" if language() == "fr" else "%Y-%m-%d"
    return when.strftime(f"{day} %H:%M UTC")


def fmt_day(value: date | None) -> str:
    """A day as the reader types it: 31/03/2016 in French (what the period's text fields take),
    ISO in English (what a date field's value is)."""
    if value is None:
        return ""
    return value.strftime("%d/%m/%Y") if language() == "fr" else value.isoformat()
