"""What the dashboard's pages read: the reports of a period (cached), the fleet, table helpers."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from common.i18n import speaking

from ..charts import bars_svg, monthly_kg_svg
from ..config import LedgerConfig
from ..report_render import row_sentences, summary_lines
from ..reports import Report, Row, build_report, load_names
from ..store import open_store
from . import i18n
from .choice import Choice
from .i18n import gettext_ as _

__all__ = [
    "GROUPS",
    "SENTENCES",
    "Dashboard",
    "Overview",
    "figure_columns",
    "group_title",
    "month_rows",
    "row_label",
]

log = logging.getLogger("ledger.web")

# the overview's panels; by profile and by type of structure with the funders' sentences
GROUPS = ("category", "referrer", "referrer_type", "profile", "station")
SENTENCES = ("referrer_type", "profile")


def group_title(by: str) -> str:
    return {
        "month": _("By month"),
        "category": _("By category"),
        "referrer": _("By referring structure"),
        "station": _("By station"),
        "group": _("By association"),
        "referrer_type": _("By type of structure"),
        "profile": _("By household profile"),
    }[by]


def figure_columns() -> list[tuple[str, str]]:
    """(Figures attribute, header) of every grouped table, in display order."""
    return [
        ("kg", _("kg")),
        ("items", _("items")),
        ("visits", _("visits")),
        ("beneficiaries", _("beneficiaries")),
        ("kg_per_beneficiary", _("kg per beneficiary")),
    ]


def month_rows(report: Report) -> list[Row]:
    """Every month of the period as a row, empty months included (a gap is a fact too)."""
    return [Row((key,), (key,), figures) for key, figures in report.monthly]


def row_label(row: Row) -> str:
    """The row's names; "(none)" in the request's language (reports translate it globally)."""
    return " / ".join(
        label if key else _("(none)") for key, label in zip(row.key, row.label, strict=True)
    )


@dataclass(frozen=True)
class Overview:
    reports: dict[str, Report]  # by grouping
    charts: dict[str, str]  # inline SVG by grouping, and "month"
    summary: list[str]  # the office's sentences
    sentences: dict[str, list[str]]  # by grouping: "332 women with children (2.2 t) referred…"
    at: str  # when computed (UTC), shown: figures may be up to [dashboard] cache_seconds old


@dataclass(frozen=True)
class _Cached:
    at: float  # time.monotonic()
    version: tuple[Any, ...]
    value: Overview


class Dashboard:
    """What the pages read. A yearly report over a big network takes seconds per grouping, so
    results are kept: reused while no record arrived (``version``), and for ``cache_seconds``
    anyway while records stream in; this year's is computed at start-up."""

    KEEP = 48  # cached overviews (periods × languages)

    def __init__(self, config: LedgerConfig, store_url: str) -> None:
        self.config = config
        self.store_url = store_url
        self.store: Any = None  # the reports' connection
        self.fleet_store: Any = None  # its own: the fleet page never waits for a report
        self.lock = threading.Lock()  # the reports' connection and the cache
        self.fleet_lock = threading.Lock()
        self.cache: dict[tuple[Any, ...], _Cached] = {}

    def open(self) -> None:
        self.store = open_store(self.store_url)
        self.fleet_store = open_store(self.store_url)

    def close(self) -> None:
        for store in (self.store, self.fleet_store):
            if store is not None:
                store.close()
        self.store = self.fleet_store = None

    @property
    def groupings(self) -> tuple[str, ...]:
        """The overview's tables: by association too when the config groups the stations."""
        return (*GROUPS, "group") if self.config.groups else GROUPS

    def version(self) -> tuple[Any, ...]:
        """Changes whenever a record is stored or the registry (names) changes: cheap (heads
        has a row per station journal)."""
        return tuple(self.store.change_stamp())

    def reports(
        self, choice: Choice, groupings: tuple[str, ...], lang: str, charts: bool = False
    ) -> Overview:
        """One report per grouping (the first also gives the totals, the months and last year's),
        their charts, and the summary sentences. In ``lang``: the reports' and charts' names use
        the global catalogue, switched under report_render's lock."""
        key = (choice, groupings, lang, charts)
        with self.lock:
            version = self.version()
            hit = self.cache.get(key)
            fresh = self.config.dashboard.cache_seconds
            if hit and (hit.version == version or time.monotonic() - hit.at < fresh):
                return hit.value
            value = self._compute(choice, groupings, lang, charts)
            self.cache[key] = _Cached(time.monotonic(), version, value)
            while len(self.cache) > self.KEEP:
                oldest = min(self.cache, key=lambda k: self.cache[k].at)
                del self.cache[oldest]
            return value

    def _compute(
        self, choice: Choice, groupings: tuple[str, ...], lang: str, charts: bool
    ) -> Overview:
        i18n.use(lang)  # this thread's titles (the warm-up runs outside any request)
        period = choice.period()
        svg: dict[str, str] = {}
        with speaking(lang):
            names = load_names(self.store, self.config.groups)
            # the first report gives the months and last year's figures with their visits and
            # persons (``detail``): the month table shows what `ledger report --by month` says
            out = {
                by: build_report(
                    self.store, period, (by,), names=names, compare=n == 0, detail=n == 0
                )
                for n, by in enumerate(groupings)
            }
            main = out[groupings[0]]
            empty = not main.total.weighings
            summary = [] if empty else summary_lines(main, lang)
            sentences = {by: row_sentences(out[by], lang) for by in groupings if by in SENTENCES}
            if charts and not empty:
                svg["month"] = monthly_kg_svg(main, lang=lang)
                for by in groupings:
                    rows = out[by].rows
                    if by == "profile":  # the untagged majority would flatten the profiles' bars
                        rows = [row for row in rows if row.key[0]]
                    svg[by] = bars_svg(rows, group_title(by), lang=lang, limit=12)
        return Overview(out, svg, summary, sentences, datetime.now(UTC).strftime("%H:%M:%S UTC"))

    def warm(self, lang: str) -> None:
        """This year's overview computed ahead, so the first visitor does not wait for it."""
        try:
            choice = Choice(datetime.now(UTC).year)
            self.reports(choice, self.groupings, lang, True)
        except Exception:  # a warm-up failing must not stop the server; a visit shows why
            log.exception("dashboard: warming up this year's figures failed")

    def fleet(self) -> tuple[list[dict[str, Any]], int]:
        """Each station's state, and how many messages wait in quarantine."""
        with self.fleet_lock:
            rows = [dict(r) for r in self.fleet_store.fleet()]  # typed rows: add a column
            quarantined = len(self.fleet_store.quarantined())
        due = self.config.dashboard.calibration_days
        for row in rows:
            age = row.get("calibration_age_days")
            row["calibration_due"] = None if age is None else age >= due
            # over its quarantine cap ([ledger] quarantine_max_*): a station sending garbage
            row["flooding"] = (row.get("quarantine_dropped") or 0) > 0
        return rows, quarantined
