"""Per-request language for the dashboard: sync.i18n's catalogue, chosen by a context variable."""

from __future__ import annotations

import functools
import gettext
from contextvars import ContextVar
from datetime import datetime
from decimal import Decimal

from sync.i18n import DOMAIN, LANGUAGES, LOCALE_DIR

from ..charts import number

__all__ = ["LANGUAGES", "current", "fmt_int", "fmt_num", "fmt_pct", "gettext_", "ngettext_"]

# Two users may read the dashboard in two languages at once: sync.i18n's global language would
# race, so each request sets this variable and the callables below read it.
current: ContextVar[str] = ContextVar("dashboard_language", default="fr")


@functools.cache
def _catalogue(lang: str) -> gettext.NullTranslations:
    return gettext.translation(DOMAIN, LOCALE_DIR, languages=[lang], fallback=True)


def gettext_(message: str) -> str:
    return _catalogue(current.get()).gettext(message)


def ngettext_(singular: str, plural: str, n: int) -> str:
    return _catalogue(current.get()).ngettext(singular, plural, n)


def fmt_num(value: float | Decimal | int | None, decimals: int = 1) -> str:
    """``1 482,5`` in French, ``1,482.5`` in English: the reports' own formatting."""
    if value is None:
        return "–"
    return number(float(value), decimals, current.get())


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
    """An ISO UTC timestamp as "2026-11-21 09:12 UTC" (the office reads dates, not ISO)."""
    if not iso:
        return "–"
    try:
        when = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    return when.strftime("%Y-%m-%d %H:%M UTC")
